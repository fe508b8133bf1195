//! `vmc logs`: a detached run's output, from its log (Docker's json-file lines).

use anyhow::{bail, Result};
use clap::Args;
use std::io::Write;
use vmc_runs::follow::follow;
use vmc_runs::log::{LogEntry, LogReader, LOG_FILE, ROTATED_LOG_FILE};
use vmc_runs::RunStore;

/// Options of `vmc logs`.
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow the log: print new output as it comes, until the run ends.
    #[arg(short, long)]
    pub follow: bool,
    /// Print only the last N lines ("all" for every line).
    #[arg(short = 'n', long, value_name = "N", default_value = "all")]
    pub tail: String,
    /// Prefix each line with the time it was written (RFC 3339, nanoseconds).
    #[arg(short, long)]
    pub timestamps: bool,
    /// The run: name or id prefix.
    pub run: String,
}

/// Prints a run's log: stdout lines on stdout, stderr lines on stderr, as the workload wrote
/// them.
pub fn logs(args: LogsArgs) -> Result<u8> {
    let tail = match args.tail.as_str() {
        "all" => None,
        n => Some(n.parse::<usize>().map_err(|_| {
            anyhow::anyhow!("invalid --tail {n:?}: give a number of lines, or all")
        })?),
    };
    let store = RunStore::open()?;
    let record = store.find(&args.run)?;
    let dir = store.run_dir(&record.id);
    let has_log = dir.join(LOG_FILE).exists() || dir.join(ROTATED_LOG_FILE).exists();
    if !has_log && !record.detached {
        bail!(
            "run {} was attached: its output went to the terminal that ran it; vmc keeps a log of detached runs (vmc run -d)",
            args.run
        );
    }
    let mut reader = LogReader::open(&dir);
    let mut entries = reader.read_available();
    if let Some(n) = tail {
        entries.drain(..entries.len().saturating_sub(n));
    }
    print_entries(&entries, args.timestamps);
    if args.follow && record.status().is_live() {
        if let Some(supervisor) = record.supervisor() {
            follow(&dir, &mut reader, &supervisor, |entries| {
                print_entries(&entries, args.timestamps)
            })?;
        }
    }
    Ok(0)
}

/// Writes entries where the workload wrote them, flushed.
pub fn print_entries(entries: &[LogEntry], timestamps: bool) {
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    for entry in entries {
        let out: &mut dyn Write = if entry.stream == "stderr" {
            &mut stderr
        } else {
            &mut stdout
        };
        if timestamps {
            let _ = write!(out, "{} ", entry.time);
        }
        let _ = out.write_all(entry.log.as_bytes());
    }
    let _ = stdout.flush();
    let _ = stderr.flush();
}

/// Prints the stderr lines of run `id`'s log on stderr (what a workload that could not start
/// said).
pub fn print_stderr_of(store: &RunStore, id: &str) {
    let entries: Vec<LogEntry> = LogReader::open(&store.run_dir(id))
        .read_available()
        .into_iter()
        .filter(|e| e.stream == "stderr")
        .collect();
    print_entries(&entries, false);
}
