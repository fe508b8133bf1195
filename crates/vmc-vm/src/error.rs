//! Everything that can go wrong creating or running a VM, each as one line naming the
//! problem and the fix.

use std::io;
use std::path::PathBuf;

/// A VM could not be created or ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// `/dev/kvm` does not exist.
    #[error("/dev/kvm does not exist: load the kvm_intel or kvm_amd module, or enable virtualization (VT-x/AMD-V) in the BIOS")]
    KvmMissing,
    /// `/dev/kvm` exists but this user may not open it.
    #[error("no permission to open /dev/kvm: add your user to the kvm group (sudo usermod -aG kvm $USER) and log in again")]
    KvmPermission,
    /// `/dev/kvm` could not be opened for another reason.
    #[error("cannot open /dev/kvm: {0}")]
    KvmOpen(#[source] io::Error),
    /// A KVM ioctl failed.
    #[error("{what} failed: {source}")]
    Kvm {
        /// The operation, e.g. "KVM_CREATE_VM".
        what: &'static str,
        /// The ioctl's error.
        source: kvm_ioctls::Error,
    },
    /// Less memory than any guest can boot with.
    #[error("--memory {requested_mib} MiB is too small: a VM needs at least {minimum_mib} MiB")]
    MemoryTooSmall {
        /// Requested MiB.
        requested_mib: u64,
        /// The minimum in MiB.
        minimum_mib: u64,
    },
    /// More memory than the host has.
    #[error(
        "--memory {requested_mib} MiB is more than this host's {host_mib} MiB of RAM: ask for less"
    )]
    MemoryTooLarge {
        /// Requested MiB.
        requested_mib: u64,
        /// Host RAM in MiB.
        host_mib: u64,
    },
    /// Memory size not a whole number of pages.
    #[error("--memory {requested} bytes is not a multiple of 4 KiB: round it (e.g. to whole MiB)")]
    MemoryUnaligned {
        /// Requested bytes.
        requested: u64,
    },
    /// Zero vCPUs.
    #[error("--cpus 0: a VM needs at least one vCPU")]
    NoVcpus,
    /// More vCPUs than KVM (or the MP table) allows.
    #[error(
        "--cpus {requested} is more than this host's KVM allows ({limit}): ask for fewer vCPUs"
    )]
    TooManyVcpus {
        /// Requested vCPUs.
        requested: u8,
        /// The limit: min(254, KVM_CAP_MAX_VCPUS).
        limit: usize,
    },
    /// The kernel image does not exist.
    #[error("guest kernel {0} not found: build one with kernels/build.sh or pass --kernel PATH")]
    KernelMissing(PathBuf),
    /// No kernel was given and none is installed.
    #[error("no guest kernel: build one with kernels/build.sh (or pass --kernel PATH)")]
    NoDefaultKernel,
    /// The kernel is neither an ELF vmlinux nor a bzImage.
    #[error("{0} is not a guest kernel (neither an x86-64 ELF vmlinux nor a bzImage): pass --kernel PATH to a Linux kernel image")]
    NotAKernel(PathBuf),
    /// The kernel does not fit in guest RAM.
    #[error(
        "kernel {path} does not fit in {memory_mib} MiB of guest RAM: give the VM more --memory"
    )]
    KernelTooLarge {
        /// The kernel image.
        path: PathBuf,
        /// Guest RAM in MiB.
        memory_mib: u64,
    },
    /// An initrd part does not exist or cannot be read.
    #[error("cannot read initrd {path}: {source}")]
    InitrdUnreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Kernel + initrd do not fit below the initrd's address limit.
    #[error("the initrd ({size_mib} MiB) does not fit in guest RAM next to the kernel: give the VM more --memory")]
    InitrdTooLarge {
        /// Initrd size in MiB (rounded up).
        size_mib: u64,
    },
    /// A kernel or initrd file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The command line is too long or has a NUL byte.
    #[error(
        "the kernel command line is {len} bytes or contains a NUL byte: the limit is {max} bytes"
    )]
    BadCmdline {
        /// Its length.
        len: usize,
        /// The longest accepted.
        max: usize,
    },
    /// Guest RAM could not be allocated or written.
    #[error("cannot set up guest RAM: {0}")]
    GuestMemory(String),
    /// A host resource (eventfd, thread, signal handler) could not be created.
    #[error("cannot {what}: {source}")]
    Host {
        /// What failed, e.g. "create the serial interrupt eventfd".
        what: &'static str,
        /// Why.
        source: io::Error,
    },
    /// The VMM's seccomp filters could not be built (or their SIGSYS handler installed).
    #[error("cannot build the VMM's seccomp filters: {0} (--security-opt seccomp=unconfined runs the VM without them)")]
    SeccompCompile(String),
    /// A VMM thread could not take its seccomp filter (e.g. a kernel without seccomp).
    #[error("cannot confine the VMM's {thread} thread with its seccomp filter: {source} (--security-opt seccomp=unconfined runs the VM without the VMM's filters)")]
    SeccompApply {
        /// The kind of thread: "main", "vCPU", "I/O", "launcher".
        thread: &'static str,
        /// Why.
        source: seccompiler::Error,
    },
    /// Two devices were given overlapping ranges (a bug in the VMM's layout).
    #[error("cannot place a device at {space} {base:#x} (+{len:#x}): the range is empty or overlaps another device's, a bug in vmc's device layout")]
    DeviceConflict {
        /// "I/O port" or "MMIO".
        space: &'static str,
        /// Start of the range.
        base: u64,
        /// Its length.
        len: u64,
    },
    /// A device could not be set up.
    #[error("cannot set up the {device} device: {reason}")]
    DeviceSetup {
        /// Which device, e.g. "virtio-blk vda".
        device: String,
        /// Why.
        reason: String,
    },
    /// A disk file does not exist or cannot be opened.
    #[error("cannot open disk {path}: {source}: pass a readable regular file (writable too unless the disk is read-only)")]
    DiskUnreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// More virtio devices than the VM has MMIO slots and interrupt lines for.
    #[error("{requested} virtio devices (disks and others) asked for, but a VM has room for {limit}: give it fewer disks")]
    TooManyDevices {
        /// Devices asked for.
        requested: usize,
        /// The slots there are.
        limit: usize,
    },
    /// `run` was called twice.
    #[error("this VM has already run: create a new one")]
    AlreadyRan,
    /// The guest touched a physical address with neither RAM nor a device.
    #[error("the guest accessed physical address {addr:#x} (RIP {rip:#x}), beyond its {memory_mib} MiB of RAM (--memory) where no device is: give the VM more --memory or fix the guest")]
    OutsideRam {
        /// Guest physical address.
        addr: u64,
        /// Guest RIP.
        rip: u64,
        /// Guest RAM in MiB.
        memory_mib: u64,
    },
    /// The guest triple-faulted before reporting a workload status.
    #[error("the guest triple-faulted (KVM_EXIT_SHUTDOWN{}) before its init reported: the guest kernel crashed; show the console to see its last messages", rip_text(*.rip))]
    TripleFault {
        /// Guest RIP, when KVM still knows it (AMD resets the vCPU on shutdown).
        rip: Option<u64>,
    },
    /// KVM could not emulate/deliver something for the guest.
    #[error("KVM failed to run the guest (KVM_EXIT_INTERNAL_ERROR, suberror {suberror}) at RIP {rip:#x}: run `vmc doctor` to check whether this host's KVM can run Linux guests")]
    InternalError {
        /// `kvm_run.internal.suberror` (1 = emulation failure).
        suberror: u32,
        /// Guest RIP.
        rip: u64,
    },
    /// The CPU refused to enter the guest.
    #[error("the CPU refused to enter the guest (KVM_EXIT_FAIL_ENTRY, hardware reason {reason:#x}) at RIP {rip:#x}: the vCPU state is invalid for this host's CPU")]
    FailEntry {
        /// `hardware_entry_failure_reason`.
        reason: u64,
        /// Guest RIP.
        rip: u64,
    },
    /// The guest reported no milestone within the boot watchdog's bound.
    #[error("the guest did not report that its init started within {} s: its kernel hung or is very slow, and the VM was stopped (`--console` shows the kernel's output; on a slow or emulated host give more time with --boot-timeout SECONDS)", .timeout.as_secs_f64())]
    BootTimedOut {
        /// The bound that passed.
        timeout: std::time::Duration,
    },
    /// The guest kernel panicked (seen on its console) and rebooted.
    #[error("guest kernel panicked: {0}")]
    GuestPanicked(String),
    /// A KVM exit the VMM does not handle.
    #[error("unexpected KVM exit {what} at RIP {rip:#x}")]
    UnexpectedExit {
        /// The exit, debug-formatted.
        what: String,
        /// Guest RIP.
        rip: u64,
    },
}

/// ", RIP 0x…" when the RIP is known.
fn rip_text(rip: Option<u64>) -> String {
    rip.map(|rip| format!(" at RIP {rip:#x}"))
        .unwrap_or_default()
}
