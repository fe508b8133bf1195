//! Choosing the runtime for a mode. Everything else in the CLI sees only `dyn Runtime`.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;
use vmc_runtime::{Mode, Runtime};
use vmc_vm_runtime::VmOptions;

/// Options only one mode uses (VM mode's kernel and console).
#[derive(Args, Debug, Default, Clone)]
pub struct ModeOptions {
    /// Guest kernel (ELF vmlinux or bzImage) for VM mode [default: the one kernels/build.sh built].
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,
    /// Show the guest kernel's console messages (VM mode).
    #[arg(long)]
    pub console: bool,
    /// Stop a VM whose kernel has not started the guest init after SECONDS (VM mode) [default: 60].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub boot_timeout: Option<u64>,
}

pub mod select;

/// The runtime that implements `mode`.
pub fn runtime_for(mode: Mode, options: &ModeOptions) -> Result<Box<dyn Runtime>> {
    Ok(select::runtime(
        mode,
        VmOptions {
            kernel: options.kernel.clone(),
            console: options.console,
            boot_timeout: options.boot_timeout.map(Duration::from_secs),
        },
    ))
}

/// The supervisor binary of detached runs, `vmc-supervisor` beside vmc's own.
pub fn supervisor_program() -> Result<std::path::PathBuf> {
    let program = std::env::current_exe()
        .context("cannot find vmc's own binary")?
        .with_file_name("vmc-supervisor");
    if !program.is_file() {
        anyhow::bail!(
            "the supervisor of detached runs {} is missing: it is built with vmc (cargo build -p vmc)",
            program.display()
        );
    }
    Ok(program)
}
