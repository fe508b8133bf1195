//! VM mode: an image and a run spec become a KVM microVM whose root filesystem is the image as
//! a read-only disk under an overlay on a per-run scratch disk, with `vmc-init` (embedded in
//! this crate by build.rs) as PID 1 from a small initramfs.
//!
//! [`VmRuntime`] implements `vmc_runtime::Runtime`: it checks the resources and the host's
//! KVM, writes out the embedded init, gets (or builds) the image's disk, makes the run's
//! scratch disk and settings archive, and hands the VM to `vmc_vm`.

mod cmdline;
mod disks;
pub mod embedded_init;
mod error;
mod guest_settings;
mod kvm_check;
mod kvm_probe_cache;
mod memory_check;
mod memory_probe;
mod outcome;
mod resources;
pub mod run_archive;
mod runtime;

pub use error::VmRuntimeError;
pub use resources::DEFAULT_MEMORY_BYTES;
pub use runtime::{VmOptions, VmRuntime, DEFAULT_BOOT_TIMEOUT};
