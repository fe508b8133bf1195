//! `vmc exec`: run a command in a running run, as `docker exec` does.

use crate::commands::run::{check_terminal, set_env};
use crate::modes::{runtime_for, ModeOptions};
use anyhow::{anyhow, bail, Result};
use clap::Args;
use vmc_runs::{RunStatus, RunStore};
use vmc_runtime::signals::Interrupted;
use vmc_runtime::text::escape;
use vmc_runtime::{ExecSpec, RunOption, Support};

/// Options of `vmc exec`. Everything after the run's name belongs to the command.
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Start the command and return at once; its output is discarded.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep stdin connected to the command.
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the command a pseudo-terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Set an environment variable (KEY=VALUE, or KEY to copy it from vmc's environment).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory inside the run (absolute) [default: the run's].
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// User to run as: name or uid, optionally :group or :gid, from the run's /etc/passwd
    /// [default: the run's].
    #[arg(short = 'u', long = "user", value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// The run (name or id prefix), then the command and its arguments.
    #[arg(
        required = true,
        num_args = 2..,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_names = ["RUN", "CMD"]
    )]
    pub run_and_command: Vec<String>,
}

/// Runs `vmc exec`; returns the command's exit status.
pub fn exec(args: ExecArgs) -> Result<u8> {
    let (reference, command) = args
        .run_and_command
        .split_first()
        .ok_or_else(|| anyhow!("give the run and a command"))?;
    check_terminal(args.tty, args.interactive, "the command")?;
    let store = RunStore::open()?;
    let record = store.find(reference)?;
    let runtime = runtime_for(record.mode, &ModeOptions::default())?;
    if let Support::Refused(why) = runtime.support(RunOption::Exec) {
        bail!(
            "vmc exec is not supported in {} mode: {why}",
            record.mode.as_str()
        );
    }
    if record.status() != RunStatus::Up {
        bail!(
            "run {} is not running: `vmc exec` needs a running run (see `vmc ps -a`)",
            escape(reference)
        );
    }
    let mut env = Vec::new();
    for entry in &args.env {
        set_env(&mut env, entry);
    }
    let spec = ExecSpec {
        args: command.to_vec(),
        env,
        workdir: args.workdir,
        user: args.user,
        tty: args.tty,
        interactive: args.interactive,
        detach: args.detach,
    };
    match runtime.exec(&record.id, &store.run_dir(&record.id), &spec) {
        Ok(outcome) => Ok(outcome.exit_code() as u8),
        Err(err) => match err.downcast_ref::<Interrupted>() {
            Some(interrupted) => {
                eprintln!(
                    "vmc: interrupted by {} before the command started",
                    interrupted.0
                );
                Ok(interrupted.exit_code() as u8)
            }
            None => Err(anyhow!(err)),
        },
    }
}
