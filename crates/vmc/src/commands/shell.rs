//! `vmc version` and `vmc completion`: facts about vmc itself and its shell completions.

use anyhow::Result;
use clap::{Args, ValueEnum};
use clap_complete::Shell;
use std::io::Write;
use vmc_runtime::text::escape;

/// `vmc version`
#[derive(Args, Debug)]
pub struct VersionArgs {}

/// `vmc completion SHELL`
#[derive(Args, Debug)]
pub struct CompletionArgs {
    /// The shell to write completions for.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// The shells vmc writes completions for.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CompletionShell {
    /// Bash: `source <(vmc completion bash)`.
    Bash,
    /// Zsh: `vmc completion zsh > "${fpath[1]}/_vmc"`.
    Zsh,
    /// Fish: `vmc completion fish > ~/.config/fish/completions/vmc.fish`.
    Fish,
}

impl From<CompletionShell> for Shell {
    fn from(shell: CompletionShell) -> Shell {
        match shell {
            CompletionShell::Bash => Shell::Bash,
            CompletionShell::Zsh => Shell::Zsh,
            CompletionShell::Fish => Shell::Fish,
        }
    }
}

/// Prints vmc's version, the host kernel container mode runs on, and the guest kernel VM mode
/// boots (`vmc doctor` checks both modes in depth).
pub fn version(_args: VersionArgs) -> Result<u8> {
    println!("vmc version {}", env!("CARGO_PKG_VERSION"));
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|r| r.trim().to_string())
        .unwrap_or_else(|err| format!("unknown ({err})"));
    println!("container mode: host kernel Linux {}", escape(&release));
    match vmc_vm::kernel::default_kernel() {
        Ok(path) => println!(
            "VM mode: guest kernel {}",
            escape(&path.display().to_string())
        ),
        Err(err) => println!("VM mode: {err}"),
    }
    Ok(0)
}

/// Writes the completion script for `shell` of the command line `cli` to stdout (a reader
/// that stops early, such as `head`, is not an error).
pub fn completion(args: CompletionArgs, mut cli: clap::Command) -> Result<u8> {
    let mut script = Vec::new();
    clap_complete::generate(Shell::from(args.shell), &mut cli, "vmc", &mut script);
    match std::io::stdout().write_all(&script) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(err).context("writing the completion script"))
        }
        _ => Ok(0),
    }
}
