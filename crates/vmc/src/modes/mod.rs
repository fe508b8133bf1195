//! Choosing the runtime for a mode. Everything else in the CLI sees only `dyn Runtime`.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use vmc_runtime::{Mode, Runtime};
use vmc_vm_runtime::{VmOptions, VmRuntime};

/// Options only one mode uses (VM mode's kernel and console).
#[derive(Args, Debug, Default, Clone)]
pub struct ModeOptions {
    /// Guest kernel (ELF vmlinux or bzImage) for VM mode [default: the one kernels/build.sh built].
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,
    /// Show the guest kernel's console messages (VM mode).
    #[arg(long)]
    pub console: bool,
}

/// The runtime that implements `mode`.
pub fn runtime_for(mode: Mode, options: &ModeOptions) -> Result<Box<dyn Runtime>> {
    Ok(match mode {
        Mode::Container => Box::new(vmc_container::ContainerRuntime::new()),
        Mode::Vm => Box::new(VmRuntime::new(VmOptions {
            kernel: options.kernel.clone(),
            console: options.console,
        })),
    })
}
