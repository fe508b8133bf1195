//! `vmc`: run one image as a KVM microVM or as a Linux container, and measure both.

mod commands;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use vmc_runtime::outcome::EXIT_VMC_FAILED;

/// Run one image as a KVM microVM or as a Linux namespace container, and measure both.
#[derive(Parser)]
#[command(name = "vmc", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands; each lives in its own module under `commands/`.
#[derive(Subcommand)]
enum Command {}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version go to stdout with status 0; usage errors exit 125 like Docker.
            let status = if err.use_stderr() { EXIT_VMC_FAILED } else { 0 };
            let _ = err.print();
            return ExitCode::from(status as u8);
        }
    };
    match cli.command.execute() {
        Ok(status) => ExitCode::from(status),
        Err(err) => {
            eprintln!("vmc: {err:#}");
            ExitCode::from(EXIT_VMC_FAILED as u8)
        }
    }
}

impl Command {
    /// Runs the subcommand; returns the process exit status.
    fn execute(self) -> anyhow::Result<u8> {
        match self {}
    }
}
