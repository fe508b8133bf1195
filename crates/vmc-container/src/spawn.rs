//! Starting the container's first process with `clone3(2)`, straight into the run's cgroup v2
//! directory (`CLONE_INTO_CGROUP`, Linux 5.7).
//!
//! Moving a process afterwards by writing its pid to `cgroup.procs` takes the cgroup
//! threadgroup lock for writing, which waits for an RCU grace period: about 10 ms on this
//! 2-CPU host, three times a whole run. A process born in the cgroup skips that. On older
//! kernels, which refuse the flag, the process is created outside and the caller moves it.

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
    let result = match clone3(&args) {
        // Before 5.7 the kernel rejects the larger struct (E2BIG) or the flag (EINVAL).
        Err(Errno::E2BIG | Errno::EINVAL) if cgroup.is_some() => {
            args.flags &= !CLONE_INTO_CGROUP;
            args.cgroup = 0;
            clone3(&args).map(|pid| (pid, false))
        }
        other => other.map(|pid| (pid, cgroup.is_some())),
    };
    let (pid, in_cgroup) = result?;
    if pid == 0 {
        let status = child();
        // SAFETY: _exit ends the child at once, without running the parent's atexit
        // handlers or flushing its stdio buffers (copies of the parent's).
        unsafe { libc::_exit(status as libc::c_int) };
    }
    Ok(Spawned {
        pid: Pid::from_raw(pid),
        in_cgroup,
    })
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
}
