//! `vmc-supervisor ID`: the supervisor of detached run ID, started by `vmc run -d` and
//! `vmc start` (see `vmc_runs::supervisor`). A binary of its own, without the CLI, so that the
//! one process each detached run keeps is small.

#[path = "../modes/select.rs"]
mod select;

use std::process::ExitCode;
use vmc_runtime::outcome::EXIT_VMC_FAILED;
use vmc_vm_runtime::VmOptions;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(id), None) = (args.next(), args.next()) else {
        eprintln!("usage: vmc-supervisor RUN-ID (started by `vmc run -d` and `vmc start`)");
        return ExitCode::from(EXIT_VMC_FAILED as u8);
    };
    let status =
        vmc_runs::supervisor::supervise(|mode| select::runtime(mode, VmOptions::default()), &id);
    ExitCode::from(status as u8)
}
