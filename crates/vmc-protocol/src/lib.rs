//! The contract between vmc on the host and `vmc-init`, PID 1 inside the microVM, defined
//! once for both sides.
//!
//! The host serializes a [`RunConfig`] to [`RUN_CONFIG_PATH`] in a small per-run initramfs
//! archive; the guest init reads it back, runs the workload with its stdio and the host's
//! control messages on the vsock streams of [`channel`], and reports its progress and exit
//! status through the VMM's exit device ([`exit_device`]). This crate holds only that contract
//! (no OS code), so the host can depend on it without pulling in the init itself.

pub mod channel;
pub mod exit_device;
pub mod kernel_drivers;
mod run_config;

pub use run_config::{ConfigError, EtcFile, RunConfig, TerminalSize};

/// Where the guest init lives inside the initramfs (the kernel command line says `rdinit=/vmc/init`).
pub const INIT_PATH: &str = "/vmc/init";

/// Where the per-run settings live inside the initramfs.
pub const RUN_CONFIG_PATH: &str = "/vmc/run.json";

/// Where the image's root filesystem comes from when [`RunConfig::root_disks`] is set: the
/// VMM attaches the image's disk first and the run's scratch disk second.
pub mod root_disks {
    /// The image's root filesystem, read-only: the disk vmc-image builds (erofs).
    pub const IMAGE_DEVICE: &str = "/dev/vda";
    /// The filesystem of [`IMAGE_DEVICE`].
    pub const IMAGE_FSTYPE: &str = "erofs";
    /// The run's scratch disk, holding the overlay's upper and work directories.
    pub const SCRATCH_DEVICE: &str = "/dev/vdb";
    /// The filesystem of [`SCRATCH_DEVICE`].
    pub const SCRATCH_FSTYPE: &str = "ext4";
}
