//! Why a VM run could not start or did not report how the workload ended.

use std::path::PathBuf;

/// A failure of VM mode, from checking the run's resources to the guest's end.
#[derive(Debug, thiserror::Error)]
pub enum VmRuntimeError {
    /// `-m` is below what a Linux guest needs.
    #[error("-m {size} is too small for a VM: in VM mode -m is the guest's RAM, and a guest needs at least {min_mib} MiB because its kernel is loaded at 16 MiB and needs room above it to boot (give -m {min_mib}m or more)")]
    MemoryTooSmall {
        /// The size given, for humans.
        size: String,
        /// The smallest guest RAM, in MiB.
        min_mib: u64,
    },
    /// The kernel and the guest init's initramfs do not fit in `-m`.
    #[error("-m {memory_mib}m is too small for this guest kernel in a VM: the kernel ({kernel_mib} MiB in memory) and the guest init's initramfs need {required_mib} MiB of guest RAM (give -m {required_mib}m or more)")]
    KernelDoesNotFit {
        /// The guest RAM given, in MiB.
        memory_mib: u64,
        /// The kernel's extent in guest memory, in MiB.
        kernel_mib: u64,
        /// The least guest RAM that fits, in MiB.
        required_mib: u64,
    },
    /// `--cpus` is not a number of vCPUs.
    #[error("--cpus {0} is not a vCPU count: give a number from 1 to 254")]
    NotAVcpuCount(f64),
    /// The host's KVM cannot boot Linux (the probe's explanation).
    #[error("{0}")]
    KvmCannotRunLinux(String),
    /// What the command asks for cannot be done in a VM (why, and what to do instead).
    #[error("{0}")]
    Unsupported(&'static str),
    /// `/dev/kvm` opens, yet the probe could not run.
    #[error("KVM is unavailable")]
    KvmUnavailable,
    /// A file or directory of the run could not be made.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What failed ("create", "write").
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The image store failed (the image's disk, the scratch disk, the init's initramfs).
    #[error(transparent)]
    Image(#[from] vmc_image::ImageError),
    /// The workload's user could not be resolved in the image.
    #[error(transparent)]
    User(#[from] vmc_runtime::user::UserError),
    /// The VMM failed.
    #[error(transparent)]
    Vm(#[from] vmc_vm::VmError),
    /// The guest init found that the guest kernel lacks drivers a run needs (their options).
    #[error("the guest kernel lacks {0}, which VM mode needs: build the guest kernel with kernels/build.sh (kernels/vmc-guest.config has every option), or give --kernel one built with them")]
    KernelLacksDrivers(String),
    /// A signal ended the run before the guest started (vmc removes the run).
    #[error(transparent)]
    Interrupted(#[from] vmc_runtime::signals::Interrupted),
    /// The guest ended without reporting the workload's status.
    #[error("the guest ended ({reason:?}) without reporting the workload's exit status; last console output:\n{console}")]
    NoExitStatus {
        /// How the VM ended.
        reason: vmc_vm::ExitReason,
        /// The end of the guest's console output, escaped.
        console: String,
    },
}

impl VmRuntimeError {
    /// The signal that ended the run's setup, if that is what this is.
    pub(crate) fn interrupted(&self) -> Option<vmc_runtime::signals::Interrupted> {
        match self {
            Self::Interrupted(interrupted)
            | Self::Image(vmc_image::ImageError::Interrupted(interrupted)) => Some(*interrupted),
            _ => None,
        }
    }

    /// An I/O failure to `action` `path`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}
