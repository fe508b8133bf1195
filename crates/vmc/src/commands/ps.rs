//! `vmc ps` and `vmc rm`: list and remove runs.

use crate::modes::{runtime_for, ModeOptions};
use crate::state::{RunRecord, RunStatus, RunStore};
use crate::units::{ago, unix_now};
use anyhow::{bail, Result};
use clap::Args;
use vmc_runtime::text::{escape, to_json_pretty};

/// Options of `vmc ps`.
#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all runs, also those that have exited.
    #[arg(short, long)]
    pub all: bool,
    /// Print only run ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the records as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Options of `vmc rm`.
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Also stop and remove runs that are still running.
    #[arg(short, long)]
    pub force: bool,
    /// Runs to remove: names or id prefixes.
    #[arg(required = true)]
    pub runs: Vec<String>,
}

/// Prints the runs like `docker ps`.
pub fn ps(args: PsArgs) -> Result<u8> {
    let records: Vec<RunRecord> = RunStore::open()?
        .list()?
        .into_iter()
        .filter(|r| args.all || r.status() == RunStatus::Running)
        .collect();
    if args.json {
        println!("{}", to_json_pretty(&records)?);
        return Ok(0);
    }
    if args.quiet {
        for record in &records {
            println!("{}", &record.id[..12]);
        }
        return Ok(0);
    }
    println!(
        "{:<12}  {:<10}  {:<16}  {:<24}  {:<14}  {:<22}  NAME",
        "RUN ID", "MODE", "IMAGE", "COMMAND", "CREATED", "STATUS"
    );
    for record in &records {
        println!(
            "{:<12}  {:<10}  {:<16}  {:<24}  {:<14}  {:<22}  {}",
            &record.id[..12],
            record.mode.as_str(),
            truncate(&escape(&record.image), 16),
            truncate(&format!("\"{}\"", escape(&record.command.join(" "))), 24),
            ago(unix_now() - record.created as i64),
            status_text(record.status()),
            escape(&record.name)
        );
    }
    Ok(0)
}

/// Removes runs; running ones only with `--force` (their supervisor is killed first, through a
/// pidfd and only while it is still the recorded process).
pub fn rm(args: RmArgs) -> Result<u8> {
    let store = RunStore::open()?;
    let mut failed = false;
    for reference in &args.runs {
        if let Err(err) = remove_one(&store, reference, args.force) {
            eprintln!("vmc: {}", escape(&format!("{err:#}")));
            failed = true;
        } else {
            println!("{}", escape(reference));
        }
    }
    Ok(if failed { 1 } else { 0 })
}

fn remove_one(store: &RunStore, reference: &str, force: bool) -> Result<()> {
    let record = store.find(reference)?;
    if record.status() == RunStatus::Running {
        if !force {
            bail!("run {reference} is still running: stop it first or use `vmc rm -f`");
        }
        if let Some(supervisor) = record.supervisor() {
            supervisor.kill()?;
        }
    }
    let runtime = runtime_for(record.mode, &ModeOptions::default())?;
    runtime
        .cleanup(&record.id, &store.run_dir(&record.id))
        .map_err(|err| anyhow::anyhow!(err))?;
    store.remove(&record.id)
}

fn status_text(status: RunStatus) -> String {
    match status {
        RunStatus::Running => "Running".into(),
        RunStatus::Exited(outcome) => format!("Exited ({})", outcome.exit_code()),
        RunStatus::Dead => "Dead".into(),
    }
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        text.chars().take(width - 1).collect::<String>() + "…"
    }
}
