//! VM mode: an image and a run spec become a KVM microVM that boots the image as an initramfs
//! with `vmc-init` (embedded in this crate by build.rs) as PID 1.
//!
//! [`VmRuntime`] implements `vmc_runtime::Runtime`: it checks the resources and the host's
//! KVM, writes out the embedded init, builds (or reuses) the image's initramfs and the run's
//! settings archive, and hands the VM to `vmc_vm`.

mod cmdline;
pub mod embedded_init;
mod error;
mod guest_settings;
mod kvm_check;
mod kvm_probe_cache;
mod memory_check;
mod memory_probe;
mod resources;
pub mod run_archive;
mod runtime;

pub use error::VmRuntimeError;
pub use resources::DEFAULT_MEMORY_BYTES;
pub use runtime::{VmOptions, VmRuntime};
