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
mod run_config;

pub use run_config::{ConfigError, RunConfig, TerminalSize};

/// Where the guest init lives inside the initramfs (the kernel command line says `rdinit=/vmc/init`).
pub const INIT_PATH: &str = "/vmc/init";

/// Where the per-run settings live inside the initramfs.
pub const RUN_CONFIG_PATH: &str = "/vmc/run.json";
