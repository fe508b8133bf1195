//! Starting the container's first process with `clone3(2)`, straight into the run's cgroup v2
//! directory (`CLONE_INTO_CGROUP`, Linux 5.7).
//!
//! Moving a process afterwards by writing its pid to `cgroup.procs` takes the cgroup
//! threadgroup lock for writing, which waits for an RCU grace period: about 10 ms on this
//! 2-CPU host, three times a whole run. A process born in the cgroup skips that. On older
//! kernels, which refuse the flag, the process is created outside and the caller moves it;
//! where `clone3` itself is missing (before 5.3, or hidden by a seccomp profile such as
//! Docker's, which answers ENOSYS so that callers fall back), plain `clone(2)` is used.

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `CLONE_INTO_CGROUP` (not in libc's constants for every target yet).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// The new process, and whether it was born in the cgroup asked for.
#[derive(Debug, Clone, Copy)]
pub struct Spawned {
    /// Its pid (in vmc's PID namespace).
    pub pid: Pid,
    /// False when the kernel does not know `CLONE_INTO_CGROUP` (or no cgroup was given).
    pub in_cgroup: bool,
    /// The system call that made it: `clone3`, or `clone` where clone3 is missing.
    pub call: &'static str,
}

/// Creates a child with the namespaces of `flags`, in the cgroup v2 directory `cgroup` when
/// given, which runs `child` and exits with its status. Like `fork`, the child continues on
/// a copy of the caller's stack and memory; it gets SIGCHLD as its exit signal.
///
/// # Safety
/// As after `fork` in a multi-threaded program, `child` must not allocate or take locks:
/// the other threads do not exist in the child and may have held them.
pub unsafe fn spawn(
    flags: CloneFlags,
    cgroup: Option<BorrowedFd>,
    child: impl FnOnce() -> isize,
) -> nix::Result<Spawned> {
    let mut args = CloneArgs {
        flags: flags.bits() as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(dir) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = dir.as_raw_fd() as u64;
    }
    let mut in_cgroup = cgroup.is_some();
    let mut call = "clone3";
    let mut result = clone3(&args);
    if in_cgroup && matches!(result, Err(Errno::E2BIG | Errno::EINVAL)) {
        // Before 5.7 the kernel rejects the larger struct (E2BIG) or the flag (EINVAL).
        args.flags &= !CLONE_INTO_CGROUP;
        args.cgroup = 0;
        in_cgroup = false;
        result = clone3(&args);
    }
    if result == Err(Errno::ENOSYS) {
        in_cgroup = false;
        call = "clone";
        result = clone(flags);
    }
    let pid = result?;
    if pid == 0 {
        let status = child();
        // SAFETY: _exit ends the child at once, without running the parent's atexit
        // handlers or flushing its stdio buffers (copies of the parent's).
        unsafe { libc::_exit(status as libc::c_int) };
    }
    Ok(Spawned {
        pid: Pid::from_raw(pid),
        in_cgroup,
        call,
    })
}

/// Creates a sibling of the caller (`CLONE_PARENT`: the caller's parent is its parent, and
/// reaps it) that runs `child` and exits with its status. Returns its pid in the caller's
/// PID namespace. The sibling is born in the namespaces the caller has joined for its children
/// (a PID namespace joined with `setns`).
///
/// # Safety
/// As for [`spawn`]: `child` must not allocate or take locks.
pub unsafe fn spawn_sibling(child: impl FnOnce() -> isize) -> nix::Result<Pid> {
    // The plain system call: clone3 refuses an exit signal with CLONE_PARENT, and the kernel
    // gives the sibling the caller's own exit signal anyway.
    let pid = clone(CloneFlags::CLONE_PARENT)?;
    if pid == 0 {
        let status = child();
        // SAFETY: as in `spawn`.
        unsafe { libc::_exit(status as libc::c_int) };
    }
    Ok(Pid::from_raw(pid))
}

/// The raw system call: the child's pid in the parent, 0 in the child.
fn clone3(args: &CloneArgs) -> nix::Result<libc::pid_t> {
    // SAFETY: args is a valid clone_args of the size given; without CLONE_VM or a stack the
    // child is a copy-on-write duplicate of this process, as with fork.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    Errno::result(rc).map(|pid| pid as libc::pid_t)
}

/// `clone(2)` like fork (no new stack), with SIGCHLD: the child's pid, 0 in the child.
fn clone(flags: CloneFlags) -> nix::Result<libc::pid_t> {
    let flags = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: without CLONE_VM and with a null stack the child is a copy-on-write duplicate of
    // this process, as with fork; the tid and tls arguments are unused without their flags.
    let rc = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    Errno::result(rc).map(|pid| pid as libc::pid_t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_runs_and_its_status_comes_back() {
        // SAFETY: the child only returns a constant.
        let spawned = unsafe { spawn(CloneFlags::empty(), None, || 7) }.unwrap();
        assert!(!spawned.in_cgroup);
        let status = nix::sys::wait::waitpid(spawned.pid, None).unwrap();
        assert_eq!(status, nix::sys::wait::WaitStatus::Exited(spawned.pid, 7));
    }

    #[test]
    fn plain_clone_fallback_behaves_like_fork() {
        let pid = clone(CloneFlags::empty()).unwrap();
        if pid == 0 {
            // SAFETY: the child ends at once without touching the parent's state.
            unsafe { libc::_exit(9) };
        }
        let pid = Pid::from_raw(pid);
        let status = nix::sys::wait::waitpid(pid, None).unwrap();
        assert_eq!(status, nix::sys::wait::WaitStatus::Exited(pid, 9));
    }
}
