//! `vmc stop`, `kill`, `wait`, `start` and `restart`: they act on a run's supervisor, through
//! its control channel and its pidfd, whatever the mode.

use crate::modes::{runtime_for, ModeOptions};
use crate::signals::parse_signal;
use anyhow::{bail, Context, Result};
use clap::Args;
use vmc_runs::log::LogReader;
use vmc_runs::supervisor::Started;
use vmc_runs::{control, RunRecord, RunStatus, RunStore, RunsError};
use vmc_runtime::text::escape;

/// How long `vmc stop` waits for the supervisor to go after the SIGKILL, in ms.
const KILLED_WAIT_MS: i32 = 10_000;

/// Options of `vmc stop` and `vmc restart`.
#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait after the stop signal before SIGKILL.
    #[arg(
        short = 't',
        long = "time",
        value_name = "SECONDS",
        default_value_t = 10
    )]
    pub time: u32,
    /// The runs: names or id prefixes.
    #[arg(required = true)]
    pub runs: Vec<String>,
}

/// Options of `vmc kill`.
#[derive(Args, Debug)]
pub struct KillArgs {
    /// The signal: a name (TERM, SIGUSR1) or a number.
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    /// Runs to signal: names or id prefixes.
    #[arg(required = true)]
    pub runs: Vec<String>,
}

/// Options of `vmc wait`.
#[derive(Args, Debug)]
pub struct WaitArgs {
    /// Runs to wait for: names or id prefixes.
    #[arg(required = true)]
    pub runs: Vec<String>,
}

/// Options of `vmc start`.
#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach: print the run's output until it ends, and exit with its status.
    #[arg(short, long)]
    pub attach: bool,
    /// Runs to start: names or id prefixes.
    #[arg(required = true)]
    pub runs: Vec<String>,
}

/// Runs `action` on each reference, printing the reference on success and one line per
/// failure; the status is 1 when any failed, as Docker's.
fn for_each(runs: &[String], mut action: impl FnMut(&RunStore, &str) -> Result<()>) -> Result<u8> {
    let store = RunStore::open()?;
    let mut failed = false;
    for reference in runs {
        match action(&store, reference) {
            Ok(()) => println!("{}", escape(reference)),
            Err(err) => {
                eprintln!("vmc: {}", escape(&format!("{err:#}")));
                failed = true;
            }
        }
    }
    Ok(u8::from(failed))
}

/// `vmc stop`: the run's stop signal, then SIGKILL after `-t` seconds.
pub fn stop(args: StopArgs) -> Result<u8> {
    for_each(&args.runs, |store, reference| {
        stop_run(store, &store.find(reference)?, args.time)
    })
}

/// Stops `record`'s run if it is live: its stop signal, SIGKILL after `seconds`, and waits
/// until its supervisor is gone (the run torn down and its outcome recorded).
pub fn stop_run(store: &RunStore, record: &RunRecord, seconds: u32) -> Result<()> {
    let Some(supervisor) = live_supervisor(record) else {
        return Ok(());
    };
    if !signal_live(store, record, record.stop_signal)? {
        return Ok(());
    }
    let grace_ms = i32::try_from(u64::from(seconds) * 1000).unwrap_or(i32::MAX);
    if supervisor.wait_gone(Some(grace_ms))? {
        return Ok(());
    }
    kill_run(store, record)
}

/// SIGKILLs `record`'s workload if the run is live and waits until its supervisor is gone.
pub fn kill_run(store: &RunStore, record: &RunRecord) -> Result<()> {
    let Some(supervisor) = live_supervisor(record) else {
        return Ok(());
    };
    if signal_live(store, record, libc::SIGKILL)? && !supervisor.wait_gone(Some(KILLED_WAIT_MS))? {
        bail!(
            "run {} did not end within {}s of SIGKILL: see `vmc ps -a`, then `vmc rm -f {}`",
            record.name,
            KILLED_WAIT_MS / 1000,
            record.name
        );
    }
    Ok(())
}

/// The supervisor of a live run.
fn live_supervisor(record: &RunRecord) -> Option<vmc_runs::process::ProcessIdentity> {
    record.supervisor().filter(|_| record.status().is_live())
}

/// Sends `signal` to the run's workload through its supervisor; false when no supervisor
/// listens any more (the run has just ended).
fn signal_live(store: &RunStore, record: &RunRecord, signal: i32) -> Result<bool> {
    match control::send(&store.run_dir(&record.id), &record.name, signal) {
        Err(RunsError::NotRunning(_)) => Ok(false),
        other => other.map(|()| true).map_err(Into::into),
    }
}

/// `vmc kill`: one signal to each run's workload.
pub fn kill(args: KillArgs) -> Result<u8> {
    let signal = parse_signal(&args.signal)?;
    for_each(&args.runs, |store, reference| {
        let record = store.find(reference)?;
        if !record.status().is_live() {
            return Err(RunsError::NotRunning(reference.to_string()).into());
        }
        control::send(&store.run_dir(&record.id), reference, signal)?;
        Ok(())
    })
}

/// `vmc wait`: blocks until each run has ended and prints its exit status.
pub fn wait(args: WaitArgs) -> Result<u8> {
    let store = RunStore::open()?;
    let mut failed = false;
    for reference in &args.runs {
        match wait_run(&store, reference) {
            Ok(code) => println!("{code}"),
            Err(err) => {
                eprintln!("vmc: {}", escape(&format!("{err:#}")));
                failed = true;
            }
        }
    }
    Ok(u8::from(failed))
}

/// Waits until the run `reference` has ended; its exit status.
fn wait_run(store: &RunStore, reference: &str) -> Result<i32> {
    let record = store.find(reference)?;
    // Read once: it looks for the supervisor in /proc.
    let live = record.status().is_live();
    if record.auto_remove && live {
        let outcome = match store.hold_for_wait(&record.id)? {
            Some(hold) => vmc_runs::wait::wait_outcome(store, &record, hold)?,
            None => None,
        };
        return outcome.map(|outcome| outcome.exit_code()).with_context(|| {
            format!("run {reference} was removed before vmc wait could read its exit status")
        });
    }
    if live {
        if let Some(supervisor) = record.supervisor() {
            supervisor.wait_gone(None)?;
        }
    }
    let ended = store
        .load(&record.id)
        .with_context(|| format!("run {reference} was removed when it ended (--rm)"))?;
    match ended.status() {
        RunStatus::Exited(outcome) => Ok(outcome.exit_code()),
        _ => bail!(
            "run {reference} ended without an exit status (its supervisor died): see `vmc ps -a`"
        ),
    }
}

/// `vmc start`: runs exited runs again, detached, from their saved spec.
pub fn start(args: StartArgs) -> Result<u8> {
    if args.attach {
        let [reference] = args.runs.as_slice() else {
            bail!("start -a takes one run: give one name or id");
        };
        let store = RunStore::open()?;
        let record = store.find(reference)?;
        return start_attached(&store, &record);
    }
    for_each(&args.runs, |store, reference| {
        let record = store.find(reference)?;
        match start_run(store, &record)? {
            Started::Up => Ok(()),
            Started::Ended(code) => {
                crate::commands::logs::print_stderr_of(store, &record.id);
                bail!("run {reference} ended at once with status {code}")
            }
            Started::Interrupted(signal) => bail!(
                "run {reference} was interrupted by {} before its workload started",
                signal.as_str()
            ),
        }
    })
}

/// Starts the run of `record` again (a live run is left as it is) under a new supervisor,
/// from the same spec and run directory, whose writable layer it finds again.
pub fn start_run(store: &RunStore, record: &RunRecord) -> Result<Started> {
    if record.status().is_live() {
        return Ok(Started::Up);
    }
    // The spec is checked before anything is touched.
    store.load_spec(&record.id)?;
    // An exited run was torn down by its supervisor; a dead one may have left mounts,
    // cgroups or processes.
    if record.status() == RunStatus::Dead {
        let runtime = runtime_for(record.mode, &ModeOptions::default())?;
        runtime
            .cleanup(&record.id, &store.run_dir(&record.id))
            .map_err(|err| anyhow::anyhow!(err))?;
    }
    let program = crate::modes::supervisor_program()?;
    Ok(vmc_runs::supervisor::spawn(&program, &record.id)?)
}

/// `vmc start -a`: starts the run and prints its output until it ends; its exit status.
fn start_attached(store: &RunStore, record: &RunRecord) -> Result<u8> {
    let dir = store.run_dir(&record.id);
    let mut reader = LogReader::at_end(&dir);
    start_run(store, record)?;
    let started = store.load(&record.id)?;
    if let Some(supervisor) = started.supervisor() {
        vmc_runs::follow::follow(&dir, &mut reader, &supervisor, |entries| {
            crate::commands::logs::print_entries(&entries, false)
        })?;
    }
    Ok(wait_run(store, &record.id)? as u8)
}

/// `vmc restart`: stop, then start.
pub fn restart(args: StopArgs) -> Result<u8> {
    for_each(&args.runs, |store, reference| {
        let record = store.find(reference)?;
        stop_run(store, &record, args.time)?;
        match start_run(store, &store.load(&record.id)?)? {
            Started::Up => Ok(()),
            Started::Ended(code) => bail!("run {reference} ended at once with status {code}"),
            Started::Interrupted(signal) => bail!(
                "run {reference} was interrupted by {} before its workload started",
                signal.as_str()
            ),
        }
    })
}
