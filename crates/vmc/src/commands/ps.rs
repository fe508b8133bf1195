//! `vmc ps`, `vmc rm`, `vmc container prune` and `vmc container inspect`: list, remove and
//! show runs.

use crate::format::{print_all, Template};
use crate::modes::{runtime_for, ModeOptions};
use crate::units::{ago, human_duration, unix_now};
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::io::BufRead;
use vmc_runs::{RunRecord, RunStatus, RunStore};
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
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Print each run with a Go-template: '{{.ID}} {{.Status}}', '{{json .}}', 'table …'
    /// (fields: ID Image Command CreatedAt RunningFor Status State Names Mode).
    #[arg(long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// Show only the runs that match: status=created|running|exited|dead (implies -a).
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
}

/// `vmc container …`: runs, as Docker's `container` group names them.
#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// Remove every run that is not running (exited or dead).
    Prune(PruneArgs),
    /// Show runs' records and specs as JSON.
    Inspect(ContainerInspectArgs),
}

/// Options of `vmc container prune`.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// Options of `vmc container inspect`.
#[derive(Args, Debug)]
pub struct ContainerInspectArgs {
    /// Print each run's details with a Go-template over the JSON's fields: '{{.State.Status}}'.
    #[arg(short, long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// Runs to show: names or id prefixes.
    #[arg(required = true)]
    pub runs: Vec<String>,
}

/// Options of `vmc inspect`, which shows a run or an image.
#[derive(Args, Debug)]
pub struct InspectAnyArgs {
    /// Print the details with a Go-template over the JSON's fields, matched without regard
    /// to case: '{{.State.Status}}' of a run, '{{json .Config.Cmd}}' of an image.
    #[arg(short, long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// A run's name or id prefix, or an image's name[:tag] or ID prefix.
    pub name: String,
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
    let statuses = status_filter(&args.filter)?;
    // Each run's status is read once (it looks at its supervisor in /proc): the filter, the
    // STATUS column and --format all see the same one.
    let (records, run_statuses): (Vec<RunRecord>, Vec<RunStatus>) = RunStore::open()?
        .list()?
        .into_iter()
        .map(|record| {
            let status = record.status();
            (record, status)
        })
        .filter(|(_, status)| match &statuses {
            Some(names) => names.contains(&status.name()),
            None => args.all || status.is_live(),
        })
        .unzip();
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
    if let Some(format) = &args.format {
        let template = Template::parse(format)?;
        let rows: Vec<Value> = records
            .iter()
            .zip(&run_statuses)
            .map(|(record, status)| format_fields(record, *status))
            .collect();
        print_all(&template, &rows)?;
        return Ok(0);
    }
    // Docker's tabwriter sizes the columns to their text: CREATED and STATUS vary the most.
    let now = unix_now();
    let created: Vec<String> = records
        .iter()
        .map(|record| ago(now - record.created as i64))
        .collect();
    let statuses: Vec<String> = records
        .iter()
        .zip(&run_statuses)
        .map(|(record, status)| status_text(record, *status))
        .collect();
    let created_width = column_width(&created, "CREATED");
    let status_width = column_width(&statuses, "STATUS");
    println!(
        "{:<12}  {:<10}  {:<16}  {:<24}  {:<created_width$}  {:<status_width$}  NAME",
        "RUN ID", "MODE", "IMAGE", "COMMAND", "CREATED", "STATUS"
    );
    for ((record, created), status) in records.iter().zip(&created).zip(&statuses) {
        println!(
            "{:<12}  {:<10}  {:<16}  {:<24}  {:<created_width$}  {:<status_width$}  {}",
            &record.id[..12],
            record.mode.as_str(),
            truncate(&escape(&record.image), 16),
            truncate(&format!("\"{}\"", escape(&record.command.join(" "))), 24),
            created,
            status,
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

/// Removes one run (`vmc rm`): a running one only with `force`.
pub(crate) fn remove_one(store: &RunStore, reference: &str, force: bool) -> Result<()> {
    let record = store.find(reference)?;
    if record.status().is_live() {
        if !force {
            bail!("run {reference} is still running: stop it first or use `vmc rm -f`");
        }
        // Through the supervisor, which tears the run down; a supervisor that does not
        // answer (or has no control channel) is killed, and the cleanup below does the rest.
        let _ = crate::commands::lifecycle::kill_run(store, &record);
        if let Some(supervisor) = record.supervisor().filter(|s| s.is_alive()) {
            supervisor.kill()?;
        }
    }
    remove_stopped(store, &record)
}

/// Removes what the stopped run of `record` left and its directory.
fn remove_stopped(store: &RunStore, record: &RunRecord) -> Result<()> {
    let runtime = runtime_for(record.mode, &ModeOptions::default())?;
    runtime
        .cleanup(&record.id, &store.run_dir(&record.id))
        .map_err(|err| anyhow::anyhow!(err))?;
    Ok(store.remove(&record.id)?)
}

/// The statuses `--filter status=` asks for, or `None` without a filter.
fn status_filter(filters: &[String]) -> Result<Option<Vec<&'static str>>> {
    const NAMES: [&str; 4] = ["created", "running", "exited", "dead"];
    if filters.is_empty() {
        return Ok(None);
    }
    filters
        .iter()
        .map(|filter| match filter.split_once('=') {
            Some(("status", value)) => NAMES.iter().find(|n| **n == value).copied().ok_or_else(|| {
                anyhow::anyhow!("invalid --filter {filter:?}: the status is one of created, running, exited, dead")
            }),
            _ => bail!("invalid --filter {filter:?}: vmc filters by status=created|running|exited|dead"),
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// A run's fields for `--format`, under Docker's names; `status` is the run's.
fn format_fields(record: &RunRecord, status: RunStatus) -> Value {
    serde_json::json!({
        "ID": &record.id[..12],
        "FullID": &record.id,
        "Image": &record.image,
        "Command": format!("\"{}\"", record.command.join(" ")),
        "CreatedAt": vmc_image::timefmt::format_rfc3339(record.created as i64),
        "RunningFor": ago(unix_now() - record.created as i64),
        "Status": status_text(record, status),
        "State": status.name(),
        "Names": &record.name,
        "Mode": record.mode.as_str(),
    })
}

/// Docker's STATUS column for a run in `status`: `Up 3 seconds`, `Exited (0) 2 minutes ago`,
/// `Created`, `Dead`.
fn status_text(record: &RunRecord, status: RunStatus) -> String {
    let since = |time: Option<u64>| unix_now() - time.unwrap_or(record.created) as i64;
    match status {
        RunStatus::Created => "Created".into(),
        RunStatus::Up => format!("Up {}", human_duration(since(record.started))),
        RunStatus::Exited(outcome) => match record.finished {
            Some(_) => format!(
                "Exited ({}) {}",
                outcome.exit_code(),
                ago(since(record.finished))
            ),
            None => format!("Exited ({})", outcome.exit_code()),
        },
        RunStatus::Dead => "Dead".into(),
    }
}

/// `vmc container …`.
pub fn container(command: ContainerCommand) -> Result<u8> {
    match command {
        ContainerCommand::Prune(args) => prune(args),
        ContainerCommand::Inspect(args) => inspect(args),
    }
}

/// `vmc container prune`: removes the runs that are not live, after a confirmation unless
/// `-f`.
fn prune(args: PruneArgs) -> Result<u8> {
    if !args.force {
        eprint!("WARNING! This will remove all stopped runs.\nAre you sure you want to continue? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    let store = RunStore::open()?;
    println!("Deleted Runs:");
    let mut status = 0;
    for record in store.list()? {
        if record.status().is_live() {
            continue;
        }
        match remove_stopped(&store, &record) {
            Ok(()) => println!("{}", record.id),
            Err(err) => {
                eprintln!("vmc: {}", escape(&format!("{err:#}")));
                status = 1;
            }
        }
    }
    Ok(status)
}

/// `vmc container inspect`: each run's record, its status and its spec, as a JSON array.
fn inspect(args: ContainerInspectArgs) -> Result<u8> {
    let store = RunStore::open()?;
    let records = args
        .runs
        .iter()
        .map(|reference| store.find(reference))
        .collect::<Result<Vec<_>, _>>()?;
    print_runs(&store, records, args.format.as_deref())
}

/// `vmc inspect NAME`: the run of that name or id prefix if there is one (as `vmc container
/// inspect` shows it), else the image (as `vmc image inspect`): Docker looks in that order.
pub fn inspect_run_or_image(args: InspectAnyArgs) -> Result<u8> {
    let store = RunStore::open()?;
    match store.find(&args.name) {
        Ok(record) => print_runs(&store, vec![record], args.format.as_deref()),
        Err(vmc_runs::RunsError::NoSuchRun(_)) => {
            match vmc_image::Store::open_default()?.resolve(&args.name) {
                Ok(image) => crate::commands::image::print_image(&image, args.format.as_deref()),
                Err(vmc_image::ImageError::NotFound(_)) => bail!(
                    "no such run or image: {} (see `vmc ps -a` and `vmc images`)",
                    escape(&args.name)
                ),
                Err(err) => Err(err.into()),
            }
        }
        Err(err) => Err(err.into()),
    }
}

/// Prints the details of `records`: a JSON array, or `format` applied to each.
fn print_runs(store: &RunStore, records: Vec<RunRecord>, format: Option<&str>) -> Result<u8> {
    let mut shown = Vec::new();
    for record in records {
        let spec = store.load_spec(&record.id).ok();
        let status = record.status();
        shown.push(serde_json::json!({
            "Id": record.id,
            "Name": record.name,
            "State": {
                "Status": status.name(),
                "Running": status == RunStatus::Up,
                "ExitCode": match status {
                    RunStatus::Exited(outcome) => Some(outcome.exit_code()),
                    _ => None,
                },
                "Pid": record.supervisor_pid,
                "StartedAt": record.started,
                "FinishedAt": record.finished,
            },
            "LogPath": record.detached.then(|| store.run_dir(&record.id).join(vmc_runs::log::LOG_FILE)),
            "Record": record,
            "Spec": spec,
        }));
    }
    match format {
        Some(format) => print_all(&Template::parse(format)?, &shown)?,
        None => println!("{}", to_json_pretty(&shown)?),
    }
    Ok(0)
}

/// The width of a table column: its widest value or its header, whichever is wider.
fn column_width(values: &[String], header: &str) -> usize {
    values
        .iter()
        .map(|value| value.chars().count())
        .chain([header.len()])
        .max()
        .unwrap_or(0)
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        text.chars().take(width - 1).collect::<String>() + "…"
    }
}
