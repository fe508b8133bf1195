//! What a VM is made of, and the limits it is checked against.

use crate::error::VmError;
use crate::kernel::KernelImage;
use std::path::PathBuf;
use std::time::Duration;

/// The smallest guest RAM accepted: a Linux kernel is loaded at 16 MiB and needs room above it.
pub const MIN_MEMORY_BYTES: u64 = 32 << 20;
/// The most vCPUs a VM can have (APIC IDs 0..=253; 254 is the IOAPIC's, 255 is broadcast).
pub const MAX_VCPUS: usize = 254;

/// A VM to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmConfig {
    /// Guest RAM in bytes; all of it is mapped at creation and kept for the VM's life.
    pub memory_bytes: u64,
    /// Number of vCPUs (one host thread each).
    pub vcpus: u8,
    /// The guest kernel (an ELF vmlinux or a bzImage), its headers read.
    pub kernel: KernelImage,
    /// Initrd files, concatenated in this order into one initrd region (empty: no initrd).
    pub initrd: Vec<PathBuf>,
    /// The kernel command line; each device appends its own parameters to it (e.g.
    /// `virtio_mmio.device=4K@0xd0000000:5` per virtio device).
    pub cmdline: String,
    /// Show the guest kernel's console messages from the start; when `false`, console output
    /// is shown only from the moment the guest init reports that it started.
    pub console: bool,
    /// The host↔guest channel (a virtio-vsock device) carrying the workload's stdio and the
    /// host's control messages; `None`: no vsock device.
    pub vsock: Option<VsockConfig>,
    /// Whether the VMM's threads run under their seccomp filters ([`crate::seccomp`]).
    pub seccomp: VmmSeccomp,
    /// The guest's disks, as virtio-blk devices: disk `i` is `/dev/vd{a+i}`.
    pub disks: Vec<DiskConfig>,
    /// The boot watchdog: if the guest reports no milestone on the exit device within this
    /// time after its vCPUs start (a kernel that hangs before the init), [`crate::Vm::run`]
    /// ends the VM with [`VmError::BootTimedOut`]. `None`: wait as long as it takes.
    pub boot_timeout: Option<Duration>,
}

/// A host file the guest sees as a virtio-blk disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskConfig {
    /// The file: raw disk contents, its size the disk's (in whole 512-byte sectors).
    pub path: PathBuf,
    /// Opened read-only and offered to the guest as a read-only disk (writes fail).
    pub read_only: bool,
}

/// Whether the VMM confines its threads with seccomp filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VmmSeccomp {
    /// A filter per thread kind (main, vCPU, I/O), installed before the guest runs; the
    /// calling thread keeps the main filter for the rest of its life.
    #[default]
    Confined,
    /// No filters (`--security-opt seccomp=unconfined`, for debugging).
    Unconfined,
}

/// What the host↔guest channel ([`vmc_protocol::channel`]) carries besides the workload's
/// stdout and stderr, which it always carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VsockConfig {
    /// vmc's stdin goes to the workload (`-i`), its end included.
    pub stdin: bool,
    /// The signals vmc receives (SIGINT, SIGTERM, …) go to the guest init, which signals the
    /// workload ([`vmc_runtime::signals`]); otherwise they act on vmc as usual.
    pub forward_signals: bool,
    /// The workload has a terminal (`-t`): with `forward_signals`, a change of vmc's window
    /// size (SIGWINCH) resizes it.
    pub terminal: bool,
}

impl VmConfig {
    /// Checks memory and vCPU counts against the fixed limits, this host's RAM and KVM's
    /// vCPU limit (`kvm_max_vcpus`, from KVM_CAP_MAX_VCPUS).
    pub fn validate(&self, host_ram_bytes: u64, kvm_max_vcpus: usize) -> Result<(), VmError> {
        let mib = |bytes: u64| bytes >> 20;
        if self.memory_bytes < MIN_MEMORY_BYTES {
            return Err(VmError::MemoryTooSmall {
                requested_mib: mib(self.memory_bytes),
                minimum_mib: mib(MIN_MEMORY_BYTES),
            });
        }
        if self.memory_bytes > host_ram_bytes {
            return Err(VmError::MemoryTooLarge {
                requested_mib: mib(self.memory_bytes),
                host_mib: mib(host_ram_bytes),
            });
        }
        if !self.memory_bytes.is_multiple_of(4096) {
            return Err(VmError::MemoryUnaligned {
                requested: self.memory_bytes,
            });
        }
        if self.vcpus == 0 {
            return Err(VmError::NoVcpus);
        }
        let limit = MAX_VCPUS.min(kvm_max_vcpus);
        if usize::from(self.vcpus) > limit {
            return Err(VmError::TooManyVcpus {
                requested: self.vcpus,
                limit,
            });
        }
        Ok(())
    }
}

/// This host's physical RAM in bytes.
pub fn host_ram_bytes() -> u64 {
    // SAFETY: sysinfo only writes into the zeroed struct we pass.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid, writable sysinfo struct.
    if unsafe { libc::sysinfo(&mut info) } != 0 {
        return u64::MAX;
    }
    info.totalram * u64::from(info.mem_unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(memory_bytes: u64, vcpus: u8) -> VmConfig {
        VmConfig {
            memory_bytes,
            vcpus,
            kernel: KernelImage::unread("vmlinux"),
            initrd: Vec::new(),
            cmdline: String::new(),
            console: false,
            vsock: None,
            seccomp: VmmSeccomp::Confined,
            disks: Vec::new(),
            boot_timeout: None,
        }
    }

    #[test]
    fn accepts_sane_sizes() {
        config(256 << 20, 2).validate(24 << 30, 1024).unwrap();
    }

    #[test]
    fn rejects_bad_memory() {
        let err = config(16 << 20, 1).validate(24 << 30, 1024).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--memory 16 MiB is too small: a VM needs at least 32 MiB"
        );
        let err = config(32 << 30, 1).validate(24 << 30, 1024).unwrap_err();
        assert!(matches!(
            err,
            VmError::MemoryTooLarge {
                requested_mib: 32768,
                host_mib: 24576
            }
        ));
        let err = config((64 << 20) + 1, 1)
            .validate(24 << 30, 1024)
            .unwrap_err();
        assert!(matches!(err, VmError::MemoryUnaligned { .. }));
    }

    #[test]
    fn rejects_bad_vcpu_counts() {
        assert!(matches!(
            config(64 << 20, 0).validate(24 << 30, 1024),
            Err(VmError::NoVcpus)
        ));
        assert!(matches!(
            config(64 << 20, 255).validate(24 << 30, 1024),
            Err(VmError::TooManyVcpus { limit: 254, .. })
        ));
        assert!(matches!(
            config(64 << 20, 9).validate(24 << 30, 8),
            Err(VmError::TooManyVcpus { limit: 8, .. })
        ));
    }

    #[test]
    fn host_ram_is_known() {
        assert!(host_ram_bytes() > MIN_MEMORY_BYTES);
    }
}
