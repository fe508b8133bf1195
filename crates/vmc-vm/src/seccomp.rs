//! The VMM's seccomp filters, one per kind of thread, as Firecracker confines its own.
//!
//! Each filter allows only the system calls its threads were seen to make (`strace -f` of
//! real VM runs: `vmc run` with and without `-i`/`-t`, signals, `vmc bench`), with argument
//! filters where they narrow a call a lot: `ioctl` by request number (KVM_RUN only on vCPU
//! threads; the KVM set-up requests only on the main thread), `mmap`/`mprotect` never with
//! `PROT_EXEC`, `clone` only for threads (`clone3`, whose flags a filter cannot read, fails
//! with ENOSYS so that glibc falls back to `clone`), `tgkill` only with the vCPU kick signal
//! or SIGABRT. Anything else traps: a SIGSYS handler prints one line naming the thread and the
//! system call, and vmc exits with status 125.
//!
//! A filter is inherited by the threads its thread starts and never lifted, so the main
//! filter (the thread that runs a VM) allows what vmc does for the rest of the process — later
//! VMs' set-up, run records, reports, `vmc bench`'s memory sampler — but no KVM_RUN, no
//! `execve`, no sockets, no processes. The threads of every VM start from a launcher thread
//! ([`crate::threads`]) whose filter allows just what they need.

use crate::error::VmError;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use vmm_sys_util::ioctl::{ioctl_expr, _IOC_NONE, _IOC_READ, _IOC_WRITE};

/// The exit status of vmc after a thread made a forbidden system call (vmc's own failure).
const EXIT_FORBIDDEN_SYSCALL: i32 = 125;

/// The kinds of VMM thread, each confined by its own filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadKind {
    /// The thread that runs the VM ("vmc-vm", started by `Vm::run`): starts the device,
    /// vCPU and I/O threads, waits for the vCPUs, then ends.
    Main,
    /// A vCPU thread: KVM_RUN and the port devices.
    Vcpu,
    /// A thread of the channel's host ends: stdin into its stream, a stream out to stdout or
    /// stderr, or the signals onto the control stream.
    Io,
    /// The device event loop ([`crate::devices::event_loop`]): virtio queues and disk I/O.
    Devices,
    /// The thread the vCPU and I/O threads start from ([`crate::threads`]).
    Launcher,
}

impl ThreadKind {
    /// How the one-line error message names the thread.
    fn label(self) -> &'static str {
        match self {
            ThreadKind::Main => "main",
            ThreadKind::Vcpu => "vCPU",
            ThreadKind::Io => "I/O",
            ThreadKind::Devices => "device event loop",
            ThreadKind::Launcher => "launcher",
        }
    }
}

thread_local! {
    /// The filter this thread carries, if it took one of ours (read by the SIGSYS handler).
    static CONFINED_AS: Cell<Option<ThreadKind>> = const { Cell::new(None) };
}

/// The filter of ours the calling thread carries, if any.
pub fn confined_as() -> Option<ThreadKind> {
    CONFINED_AS.get()
}

/// The compiled filters: BPF programs ready to install.
pub struct Filters {
    main: BpfProgram,
    vcpu: BpfProgram,
    io: BpfProgram,
    devices: BpfProgram,
    launcher: BpfProgram,
    /// Makes `clone3` fail with ENOSYS; installed with the filters that allow threads.
    no_clone3: BpfProgram,
}

/// The filters, compiled once per process, with the SIGSYS handler installed.
pub fn filters() -> Result<&'static Filters, VmError> {
    static FILTERS: OnceLock<Result<Filters, String>> = OnceLock::new();
    FILTERS
        .get_or_init(|| {
            let filters = Filters::compile().map_err(|err| err.to_string())?;
            fix_malloc_arena_limit();
            vmm_sys_util::signal::register_signal_handler(libc::SIGSYS, on_sigsys)
                .map_err(|err| format!("cannot install the SIGSYS handler: {err}"))?;
            Ok(filters)
        })
        .as_ref()
        .map_err(|reason| VmError::SeccompCompile(reason.clone()))
}

/// Sets glibc's limit on malloc arenas to its own default (8 per CPU) before any thread is
/// confined. Left unset, glibc works the limit out when a thread needs the ninth arena, by
/// reading /sys/devices/system/cpu/online: an `openat` that a confined thread (a VM with
/// several vCPU and stream threads) must not make.
fn fix_malloc_arena_limit() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let limit = i32::try_from(cpus.saturating_mul(8)).unwrap_or(i32::MAX);
    // SAFETY: mallopt only changes a malloc parameter; M_ARENA_MAX takes any positive count.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, limit) };
}

impl Filters {
    fn compile() -> seccompiler::Result<Filters> {
        let arch = TargetArch::x86_64;
        let program = |rules: Rules| -> seccompiler::Result<BpfProgram> {
            let filter =
                SeccompFilter::new(rules.0, SeccompAction::Trap, SeccompAction::Allow, arch)?;
            filter.try_into().map_err(seccompiler::Error::Backend)
        };
        let no_clone3 = SeccompFilter::new(
            [(libc::SYS_clone3, Vec::new())].into_iter().collect(),
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
            arch,
        )?;
        let (vcpu, io, devices) = (vcpu_rules()?, io_rules()?, devices_rules()?);
        let mut launcher = vcpu.clone();
        launcher.merge(io.clone());
        launcher.merge(devices.clone());
        launcher.merge(thread_start_rules()?);
        // The threads it starts install their own filter.
        launcher
            .allow_arg(libc::SYS_prctl, 0, &[libc::PR_SET_NO_NEW_PRIVS as u64])?
            .allow_arg(
                libc::SYS_seccomp,
                0,
                &[libc::SECCOMP_SET_MODE_FILTER as u64],
            )?;
        Ok(Filters {
            main: program(main_rules()?)?,
            vcpu: program(vcpu)?,
            io: program(io)?,
            devices: program(devices)?,
            launcher: program(launcher)?,
            no_clone3: no_clone3.try_into().map_err(seccompiler::Error::Backend)?,
        })
    }

    /// Confines the calling thread with the filter of `kind` (also setting no_new_privs, which
    /// an unprivileged filter needs). Does nothing if this thread already carries it.
    /// Allocates nothing: a forked child may call it.
    pub fn confine_this_thread(&self, kind: ThreadKind) -> Result<(), VmError> {
        if CONFINED_AS.get() == Some(kind) {
            return Ok(());
        }
        let failed = |source| VmError::SeccompApply {
            thread: kind.label(),
            source,
        };
        let program = match kind {
            ThreadKind::Main => &self.main,
            ThreadKind::Vcpu => &self.vcpu,
            ThreadKind::Io => &self.io,
            ThreadKind::Devices => &self.devices,
            ThreadKind::Launcher => &self.launcher,
        };
        if matches!(kind, ThreadKind::Main | ThreadKind::Launcher) {
            seccompiler::apply_filter(&self.no_clone3).map_err(failed)?;
        }
        seccompiler::apply_filter(program).map_err(failed)?;
        CONFINED_AS.set(Some(kind));
        Ok(())
    }
}

/// Allowed system calls, each with the argument rules one of which must match (none: any
/// arguments).
#[derive(Clone, Default)]
struct Rules(BTreeMap<i64, Vec<SeccompRule>>);

impl Rules {
    /// Allows `syscalls` with any arguments.
    fn allow(&mut self, syscalls: &[libc::c_long]) -> &mut Self {
        for &syscall in syscalls {
            self.0.insert(syscall, Vec::new());
        }
        self
    }

    /// Allows `syscall` when its argument `index` is one of `values` (compared as 32 bits,
    /// as the kernel reads ioctl requests, fcntl commands and signal numbers).
    fn allow_arg(
        &mut self,
        syscall: libc::c_long,
        index: u8,
        values: &[u64],
    ) -> seccompiler::Result<&mut Self> {
        let rules = values
            .iter()
            .map(|&value| {
                let condition =
                    SeccompCondition::new(index, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, value)?;
                SeccompRule::new(vec![condition])
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.add(syscall, rules);
        Ok(self)
    }

    /// Allows `syscall` when `argument & mask == value`.
    fn allow_masked(
        &mut self,
        syscall: libc::c_long,
        index: u8,
        mask: u64,
        value: u64,
    ) -> seccompiler::Result<&mut Self> {
        let condition = SeccompCondition::new(
            index,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(mask),
            value,
        )?;
        self.add(syscall, vec![SeccompRule::new(vec![condition])?]);
        Ok(self)
    }

    /// Adds argument rules for `syscall` (an unconditional allow stays unconditional).
    fn add(&mut self, syscall: libc::c_long, rules: Vec<SeccompRule>) {
        match self.0.get_mut(&syscall) {
            Some(existing) if existing.is_empty() => {}
            Some(existing) => existing.extend(rules),
            None => {
                self.0.insert(syscall, rules);
            }
        }
    }

    /// Allows everything `other` allows too.
    fn merge(&mut self, other: Rules) {
        for (syscall, rules) in other.0 {
            if rules.is_empty() {
                self.0.insert(syscall, rules);
            } else {
                self.add(syscall, rules);
            }
        }
    }
}

/// KVM's ioctl type.
const KVMIO: u32 = kvm_bindings::KVMIO;

/// An ioctl request number, as the kernel's `_IOC` macros build it.
const fn request(dir: u32, nr: u32, size: usize) -> u64 {
    ioctl_expr(dir, KVMIO, nr, size as u32) as u64
}

/// The vCPU thread's requests: run, and read the registers for an error message.
const VCPU_IOCTLS: [u64; 2] = [
    request(_IOC_NONE, 0x80, 0), // KVM_RUN
    request(
        _IOC_READ,
        0x81,
        std::mem::size_of::<kvm_bindings::kvm_regs>(),
    ), // KVM_GET_REGS
];

/// The main thread's KVM requests: creating a VM (the probe's, and later VMs of the
/// process), its RAM, interrupt controllers, vCPUs and their boot state, and the serial
/// interrupts' irqfds, the virtio devices' irqfds and ioeventfds.
const MAIN_KVM_IOCTLS: [u64; 22] = {
    use kvm_bindings::{
        kvm_cpuid2, kvm_fpu, kvm_ioeventfd, kvm_irqfd, kvm_lapic_state, kvm_msrs, kvm_pit_config,
        kvm_regs, kvm_sregs, kvm_userspace_memory_region,
    };
    use std::mem::size_of;
    const RW: u32 = _IOC_READ | _IOC_WRITE;
    [
        request(_IOC_NONE, 0x00, 0),                // KVM_GET_API_VERSION
        request(_IOC_NONE, 0x01, 0),                // KVM_CREATE_VM
        request(_IOC_NONE, 0x03, 0),                // KVM_CHECK_EXTENSION
        request(_IOC_NONE, 0x04, 0),                // KVM_GET_VCPU_MMAP_SIZE
        request(RW, 0x05, size_of::<kvm_cpuid2>()), // KVM_GET_SUPPORTED_CPUID
        request(_IOC_NONE, 0x41, 0),                // KVM_CREATE_VCPU
        request(_IOC_WRITE, 0x46, size_of::<kvm_userspace_memory_region>()), // KVM_SET_USER_MEMORY_REGION
        request(_IOC_NONE, 0x47, 0),                                         // KVM_SET_TSS_ADDR
        request(_IOC_NONE, 0x60, 0),                                         // KVM_CREATE_IRQCHIP
        request(_IOC_WRITE, 0x76, size_of::<kvm_irqfd>()),                   // KVM_IRQFD
        request(_IOC_WRITE, 0x77, size_of::<kvm_pit_config>()),              // KVM_CREATE_PIT2
        request(_IOC_WRITE, 0x79, size_of::<kvm_ioeventfd>()),               // KVM_IOEVENTFD
        request(_IOC_WRITE, 0x82, size_of::<kvm_regs>()),                    // KVM_SET_REGS
        request(_IOC_READ, 0x83, size_of::<kvm_sregs>()),                    // KVM_GET_SREGS
        request(_IOC_WRITE, 0x84, size_of::<kvm_sregs>()),                   // KVM_SET_SREGS
        request(_IOC_WRITE, 0x89, size_of::<kvm_msrs>()),                    // KVM_SET_MSRS
        request(_IOC_WRITE, 0x8d, size_of::<kvm_fpu>()),                     // KVM_SET_FPU
        request(_IOC_READ, 0x8e, size_of::<kvm_lapic_state>()),              // KVM_GET_LAPIC
        request(_IOC_WRITE, 0x8f, size_of::<kvm_lapic_state>()),             // KVM_SET_LAPIC
        request(_IOC_WRITE, 0x90, size_of::<kvm_cpuid2>()),                  // KVM_SET_CPUID2
        request(_IOC_NONE, 0xa3, 0),                                         // KVM_GET_TSC_KHZ
        request(_IOC_READ, 0x81, size_of::<kvm_regs>()),                     // KVM_GET_REGS
    ]
};

/// Terminal requests: is it a terminal, raw mode on and off (`-t`), its window size.
const TERMINAL_IOCTLS: [u64; 5] = [
    libc::TCGETS,
    libc::TCSETS,
    libc::TCSETSW,
    libc::TCSETSF,
    libc::TIOCGWINSZ,
];

/// The clone flags that make a thread (and no new namespace), and the bits checked.
const THREAD_CLONE_MASK: u64 = (libc::CLONE_THREAD
    | libc::CLONE_VM
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u64;
const THREAD_CLONE_FLAGS: u64 = (libc::CLONE_THREAD | libc::CLONE_VM) as u64;

/// What every thread does: memory, locks, signal masks, time and sleeping, writing (console
/// output and interrupt eventfds), closing its descriptors, ending, and aborting on a panic.
fn common_rules() -> seccompiler::Result<Rules> {
    let mut rules = Rules::default();
    rules.allow(&[
        libc::SYS_brk,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_madvise,
        libc::SYS_futex,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigreturn,
        libc::SYS_sigaltstack,
        libc::SYS_sched_yield,
        libc::SYS_sched_getaffinity,
        libc::SYS_gettid,
        libc::SYS_getpid,
        libc::SYS_clock_gettime,
        libc::SYS_clock_nanosleep,
        libc::SYS_nanosleep,
        libc::SYS_restart_syscall,
        libc::SYS_write,
        libc::SYS_close,
        libc::SYS_exit,
        libc::SYS_exit_group,
    ]);
    let exec = libc::PROT_EXEC as u64;
    rules
        .allow_masked(libc::SYS_mmap, 2, exec, 0)?
        .allow_masked(libc::SYS_mprotect, 2, exec, 0)?
        // std checks that a descriptor is open before closing it (debug builds).
        .allow_arg(libc::SYS_fcntl, 1, &[libc::F_GETFD as u64])?
        .allow_arg(libc::SYS_tgkill, 2, &[libc::SIGABRT as u64])?;
    Ok(rules)
}

/// A vCPU thread: KVM_RUN, port I/O to the devices.
fn vcpu_rules() -> seccompiler::Result<Rules> {
    let mut rules = common_rules()?;
    rules.allow_arg(libc::SYS_ioctl, 1, &VCPU_IOCTLS)?;
    Ok(rules)
}

/// A thread of the channel's host ends: waits for and reads stdin, its eventfds or the
/// signalfd, writes stdout/stderr and the device's wake-up eventfd (`write`, in the common
/// set), waits on its stream buffer (`futex`), and reads the terminal's window size.
fn io_rules() -> seccompiler::Result<Rules> {
    let mut rules = common_rules()?;
    rules.allow(&[libc::SYS_read, libc::SYS_poll]).allow_arg(
        libc::SYS_ioctl,
        1,
        &[libc::TIOCGWINSZ],
    )?;
    Ok(rules)
}

/// The device event loop: waits on its epoll instance, reads the queue eventfds, moves disk
/// data between files and guest RAM (`preadv`/`pwritev`, `fdatasync` for a flush), and raises
/// interrupts (writes to irqfds).
fn devices_rules() -> seccompiler::Result<Rules> {
    let mut rules = common_rules()?;
    rules.allow(&[
        libc::SYS_epoll_wait,
        libc::SYS_epoll_pwait,
        libc::SYS_read,
        libc::SYS_preadv,
        libc::SYS_pwritev,
        libc::SYS_fdatasync,
    ]);
    Ok(rules)
}

/// Starting a thread, and what the new thread does before its own filter is in place.
fn thread_start_rules() -> seccompiler::Result<Rules> {
    let mut rules = Rules::default();
    rules
        .allow(&[libc::SYS_clone3, libc::SYS_set_robust_list, libc::SYS_rseq])
        .allow_masked(libc::SYS_clone, 0, THREAD_CLONE_MASK, THREAD_CLONE_FLAGS)?
        .allow_arg(libc::SYS_prctl, 0, &[libc::PR_SET_NAME as u64])?;
    Ok(rules)
}

/// The thread that runs a VM, for the rest of the process: it waits for and kicks the vCPU
/// threads, tears the VM down, and goes on with vmc's work — creating later VMs (the KVM
/// set-up requests, guest RAM, the device event loop's epoll instance, disk files), files in $VMC_HOME (run records, initramfs, reports), reading
/// /proc and memory residency (the memory probe), the terminal, starting threads.
fn main_rules() -> seccompiler::Result<Rules> {
    let mut rules = common_rules()?;
    rules.merge(thread_start_rules()?);
    let kick = (vmm_sys_util::signal::SIGRTMIN() + 1) as u64;
    let mut ioctls = MAIN_KVM_IOCTLS.to_vec();
    ioctls.extend(TERMINAL_IOCTLS);
    rules
        .allow(&[
            libc::SYS_openat,
            libc::SYS_read,
            libc::SYS_pread64,
            libc::SYS_lseek,
            libc::SYS_fstat,
            libc::SYS_newfstatat,
            libc::SYS_statx,
            libc::SYS_access,
            libc::SYS_readlink,
            libc::SYS_getdents64,
            libc::SYS_mkdir,
            libc::SYS_mkdirat,
            libc::SYS_rename,
            libc::SYS_renameat,
            libc::SYS_renameat2,
            libc::SYS_unlink,
            libc::SYS_unlinkat,
            libc::SYS_rmdir,
            libc::SYS_symlink,
            libc::SYS_chmod,
            libc::SYS_fchmod,
            libc::SYS_fchown,
            libc::SYS_lchown,
            libc::SYS_utimensat,
            libc::SYS_flock,
            libc::SYS_fsync,
            libc::SYS_fdatasync,
            libc::SYS_ftruncate,
            libc::SYS_poll,
            libc::SYS_eventfd2,
            libc::SYS_epoll_create1,
            libc::SYS_epoll_ctl,
            libc::SYS_signalfd4,
            libc::SYS_mincore,
            libc::SYS_sysinfo,
            libc::SYS_uname,
            libc::SYS_getrandom,
            libc::SYS_getuid,
            libc::SYS_geteuid,
            libc::SYS_getgid,
            libc::SYS_getegid,
        ])
        .allow_arg(libc::SYS_ioctl, 1, &ioctls)?
        .allow_arg(
            libc::SYS_fcntl,
            1,
            &[
                libc::F_GETFD,
                libc::F_SETFD,
                libc::F_GETFL,
                libc::F_SETFL,
                libc::F_DUPFD_CLOEXEC,
            ]
            .map(|cmd| cmd as u64),
        )?
        .allow_arg(libc::SYS_tgkill, 2, &[kick])?;
    Ok(rules)
}

/// The `_sigsys` member of the siginfo of a seccomp trap (x86-64 layout).
#[repr(C)]
struct SigsysInfo {
    _signo: libc::c_int,
    _errno: libc::c_int,
    _code: libc::c_int,
    _call_addr: *mut libc::c_void,
    syscall: libc::c_int,
    _arch: libc::c_uint,
}

/// SIGSYS from a filter: prints one line naming the thread and the system call, then ends
/// vmc. Only async-signal-safe calls (`write`, `_exit`), which every filter allows.
extern "C" fn on_sigsys(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo; for SIGSYS its union is `_sigsys`, whose
    // layout SigsysInfo mirrors.
    let syscall = unsafe { (*info.cast::<SigsysInfo>()).syscall };
    let thread = CONFINED_AS.get().map_or("unconfined", ThreadKind::label);
    let mut line = LineBuf::default();
    line.push(b"vmc: the VMM's ");
    line.push(thread.as_bytes());
    line.push(b" thread made system call ");
    line.push_number(syscall);
    line.push(b", which its seccomp filter forbids: this is a bug in vmc, please report it (--security-opt seccomp=unconfined runs the VM without the VMM's filters)\n");
    // SAFETY: writes the initialised part of a stack buffer, then ends the process without
    // running anything else in this (possibly compromised) state.
    unsafe {
        libc::write(libc::STDERR_FILENO, line.bytes.as_ptr().cast(), line.len);
        libc::_exit(EXIT_FORBIDDEN_SYSCALL);
    }
}

/// A fixed buffer for the SIGSYS message (no allocation in a signal handler).
struct LineBuf {
    bytes: [u8; 512],
    len: usize,
}

impl Default for LineBuf {
    fn default() -> Self {
        LineBuf {
            bytes: [0; 512],
            len: 0,
        }
    }
}

impl LineBuf {
    fn push(&mut self, text: &[u8]) {
        let n = text.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&text[..n]);
        self.len += n;
    }

    fn push_number(&mut self, number: libc::c_int) {
        let mut digits = [0u8; 12];
        let mut at = digits.len();
        let mut rest = i64::from(number).unsigned_abs();
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        if number < 0 {
            self.push(b"-");
        }
        self.push(&digits[at..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::FromRawFd;

    /// Runs `call` in a forked child confined as `kind`; returns the child's exit status and
    /// what it wrote to stderr. A call the filter allows returns, and the child exits with
    /// what `call` returned (an errno, say); a forbidden one ends the child with status 125.
    fn in_confined_child(kind: ThreadKind, call: fn() -> i32) -> (i32, String) {
        let (status, text) = confined_child_status(kind, call);
        assert!(
            libc::WIFEXITED(status),
            "the child did not exit: {status:#x}"
        );
        (libc::WEXITSTATUS(status), text)
    }

    /// As `in_confined_child`, but returns the child's raw wait status (it may be killed).
    fn confined_child_status(kind: ThreadKind, call: fn() -> i32) -> (i32, String) {
        let filters = filters().unwrap();
        let mut pipe = [0; 2];
        // SAFETY: `pipe` has room for the two descriptors.
        assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
        // SAFETY: the child only calls dup2, confine_this_thread (no allocation, no locks),
        // `call` (a raw system call) and _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: in the child: async-signal-safe calls only.
            unsafe {
                libc::dup2(pipe[1], libc::STDERR_FILENO);
                if filters.confine_this_thread(kind).is_err() {
                    libc::_exit(99);
                }
                libc::_exit(call());
            }
        }
        // SAFETY: the parent's copy of the write end is closed once; the read end is owned by
        // the File from here on.
        let mut stderr = unsafe {
            libc::close(pipe[1]);
            std::fs::File::from_raw_fd(pipe[0])
        };
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        let mut status = 0;
        // SAFETY: waits for our own child, writing its status into `status`.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        (status, text)
    }

    /// The errno of the last failed call.
    fn errno() -> i32 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    fn forbidden(thread: &str, syscall: libc::c_long) -> (i32, String) {
        (
            EXIT_FORBIDDEN_SYSCALL,
            format!("vmc: the VMM's {thread} thread made system call {syscall}, which its seccomp filter forbids: this is a bug in vmc, please report it (--security-opt seccomp=unconfined runs the VM without the VMM's filters)\n"),
        )
    }

    fn kvm_run() -> i32 {
        // SAFETY: an ioctl on an invalid descriptor only fails (EBADF) once the filter allows it.
        unsafe { libc::ioctl(-1, VCPU_IOCTLS[0] as libc::c_ulong, 0) };
        errno()
    }

    /// The bit that marks an x32-ABI system call number.
    const X32_SYSCALL_BIT: libc::c_long = 0x4000_0000;

    /// getpid through the x32 ABI (its number with bit 30 set), as a 64-bit process may call it.
    fn x32_getpid() -> i32 {
        // SAFETY: getpid has no arguments and no effect; the filter decides before the kernel
        // looks the number up.
        unsafe { libc::syscall(X32_SYSCALL_BIT | libc::SYS_getpid) };
        errno()
    }

    /// getpid through the i386 ABI (int 0x80, its number 20), which a 64-bit process may use.
    fn i386_getpid() -> i32 {
        let ret: i64;
        // SAFETY: int 0x80 with eax = 20 is the i386 getpid: no arguments, no memory touched;
        // the registers the 32-bit entry may change are declared clobbered.
        unsafe {
            std::arch::asm!("int 0x80", inlateout("rax") 20i64 => ret,
                out("r8") _, out("r9") _, out("r10") _, out("r11") _);
        }
        i32::from(ret > 0)
    }

    #[test]
    fn x32_and_i386_calls_are_refused_on_every_thread_kind() {
        for kind in [
            ThreadKind::Main,
            ThreadKind::Vcpu,
            ThreadKind::Io,
            ThreadKind::Devices,
            ThreadKind::Launcher,
        ] {
            let thread = kind.label();
            // The allowed getpid, under the x32 ABI's number, traps like any unlisted call.
            assert_eq!(
                in_confined_child(kind, x32_getpid),
                forbidden(thread, X32_SYSCALL_BIT | libc::SYS_getpid),
                "{thread}"
            );
            // A foreign architecture fails the filter's arch check: the process is killed.
            let (status, text) = confined_child_status(kind, i386_getpid);
            assert!(
                libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS,
                "{thread}: i386 getpid gave status {status:#x}, {text:?}"
            );
        }
    }

    #[test]
    fn a_vcpu_thread_opening_a_socket_is_stopped_with_one_line() {
        let socket = || {
            // SAFETY: creates a socket (or is stopped by the filter); the child then exits.
            unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
            0
        };
        assert_eq!(
            in_confined_child(ThreadKind::Vcpu, socket),
            forbidden("vCPU", libc::SYS_socket)
        );
        assert_eq!(
            in_confined_child(ThreadKind::Io, socket),
            forbidden("I/O", libc::SYS_socket)
        );
    }

    #[test]
    fn kvm_run_is_allowed_on_vcpu_threads_only() {
        assert_eq!(
            in_confined_child(ThreadKind::Vcpu, kvm_run),
            (libc::EBADF, String::new())
        );
        assert_eq!(
            in_confined_child(ThreadKind::Main, kvm_run),
            forbidden("main", libc::SYS_ioctl)
        );
        assert_eq!(
            in_confined_child(ThreadKind::Io, kvm_run),
            forbidden("I/O", libc::SYS_ioctl)
        );
        let create_vm = || {
            // SAFETY: as in kvm_run, with KVM_CREATE_VM.
            unsafe { libc::ioctl(-1, MAIN_KVM_IOCTLS[1] as libc::c_ulong, 0) };
            errno()
        };
        assert_eq!(
            in_confined_child(ThreadKind::Main, create_vm),
            (libc::EBADF, String::new())
        );
        assert_eq!(
            in_confined_child(ThreadKind::Vcpu, create_vm),
            forbidden("vCPU", libc::SYS_ioctl)
        );
    }

    #[test]
    fn the_main_filter_refuses_processes_programs_and_executable_memory() {
        let fork = || {
            // SAFETY: a raw fork (no atfork handlers); a child that exists exits at once.
            if unsafe { libc::syscall(libc::SYS_fork) } == 0 {
                // SAFETY: the new child ends at once.
                unsafe { libc::_exit(0) };
            }
            0
        };
        assert_eq!(
            in_confined_child(ThreadKind::Main, fork),
            forbidden("main", libc::SYS_fork)
        );
        let process_clone = || {
            // SAFETY: clone without CLONE_VM behaves like fork; the child exits at once.
            if unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) } == 0 {
                // SAFETY: the new child ends at once.
                unsafe { libc::_exit(0) };
            }
            0
        };
        assert_eq!(
            in_confined_child(ThreadKind::Main, process_clone),
            forbidden("main", libc::SYS_clone)
        );
        let clone3 = || {
            // SAFETY: clone3 with a null argument fails; the filter makes it fail with ENOSYS.
            unsafe { libc::syscall(libc::SYS_clone3, 0, 0) };
            errno()
        };
        assert_eq!(
            in_confined_child(ThreadKind::Main, clone3),
            (libc::ENOSYS, String::new()),
            "glibc falls back to clone, whose flags the filter checks"
        );
        let execve = || {
            // SAFETY: execve of a NULL path fails (EFAULT) if the filter lets it through.
            unsafe { libc::syscall(libc::SYS_execve, 0, 0, 0) };
            0
        };
        assert_eq!(
            in_confined_child(ThreadKind::Main, execve),
            forbidden("main", libc::SYS_execve)
        );
        let executable_mapping = || {
            // SAFETY: maps a fresh anonymous page (or is stopped by the filter).
            let page = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_EXEC,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            i32::from(page == libc::MAP_FAILED)
        };
        assert_eq!(
            in_confined_child(ThreadKind::Main, executable_mapping),
            forbidden("main", libc::SYS_mmap)
        );
    }

    #[test]
    fn the_device_thread_moves_disk_data_but_opens_nothing_and_runs_no_vcpu() {
        let preadv = || {
            // SAFETY: preadv of no buffers on an invalid descriptor fails (EBADF) once allowed.
            unsafe { libc::preadv(-1, std::ptr::null(), 0, 0) };
            errno()
        };
        assert_eq!(
            in_confined_child(ThreadKind::Devices, preadv),
            (libc::EBADF, String::new())
        );
        let open = || {
            // SAFETY: opens a NUL-terminated path read-only (or is stopped by the filter).
            unsafe { libc::open(c"/etc/hostname".as_ptr(), libc::O_RDONLY) };
            0
        };
        assert_eq!(
            in_confined_child(ThreadKind::Devices, open),
            forbidden("device event loop", libc::SYS_openat)
        );
        assert_eq!(
            in_confined_child(ThreadKind::Devices, kvm_run),
            forbidden("device event loop", libc::SYS_ioctl)
        );
    }

    #[test]
    fn an_io_thread_may_read_the_window_size() {
        let window_size = || {
            // SAFETY: an all-zero winsize is valid.
            let mut size: libc::winsize = unsafe { std::mem::zeroed() };
            // SAFETY: TIOCGWINSZ writes into `size` (or fails: stdin may not be a terminal).
            unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TIOCGWINSZ, &mut size) };
            0
        };
        assert_eq!(
            in_confined_child(ThreadKind::Io, window_size),
            (0, String::new())
        );
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        let mut line = LineBuf::default();
        line.push_number(0);
        line.push(b" ");
        line.push_number(435);
        line.push(b" ");
        line.push_number(-7);
        assert_eq!(&line.bytes[..line.len], b"0 435 -7");
    }
}
