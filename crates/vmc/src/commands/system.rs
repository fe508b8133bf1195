//! `vmc system df` and `vmc system prune`: what the store takes, and reclaiming it.

use crate::commands::ps::remove_one;
use crate::units::human_size;
use anyhow::Result;
use clap::{Args, Subcommand};
use std::io::{BufRead, IsTerminal, Write};
use vmc_image::Store;
use vmc_runs::{RunRecord, RunStore};
use vmc_runtime::paths::disk_usage;
use vmc_runtime::text::escape;

/// `vmc system SUBCOMMAND`
#[derive(Subcommand)]
pub enum SystemCommand {
    /// Show the disk space images, runs and caches take.
    Df,
    /// Remove stopped runs, untagged images and caches (with -a every image no run uses).
    Prune(PruneArgs),
}

/// `vmc system prune [-a] [-f]`
#[derive(Args)]
pub struct PruneArgs {
    /// Also remove every image no run uses, not only untagged ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// Runs a `vmc system …` subcommand.
pub fn system(command: SystemCommand) -> Result<u8> {
    match command {
        SystemCommand::Df => df(),
        SystemCommand::Prune(args) => prune(args),
    }
}

/// What the store holds: one row per kind, as `docker system df`.
struct Usage {
    rows: Vec<[String; 5]>,
    total: u64,
}

fn usage(store: &Store, runs: &RunStore) -> Result<Usage> {
    let images = store.list()?;
    let records = runs.list()?;
    let used_by_a_run = |id: &str| records.iter().any(|r| r.image_id == id);
    let parts = store.usage();
    let unused_images: u64 = images
        .iter()
        .filter(|i| !used_by_a_run(&i.id))
        .map(|i| i.size)
        .sum();
    let run_bytes = |r: &RunRecord| disk_usage(&runs.run_dir(&r.id));
    let stopped: Vec<&RunRecord> = records.iter().filter(|r| !r.status().is_live()).collect();
    // A cache of an image a run uses is active; the rest goes with a prune (-a for the
    // caches of tagged images no run uses).
    let cache_active = |name: &str| records.iter().any(|r| name.starts_with(&r.image_id));
    let caches: u64 = parts.caches.iter().map(|c| c.bytes).sum();
    let runs_total: u64 = records.iter().map(run_bytes).sum();
    let row = |kind: &str, total: usize, active: usize, size: u64, reclaimable: u64| {
        let share = (reclaimable.min(size) * 100)
            .checked_div(size)
            .map(|percent| format!(" ({percent}%)"))
            .unwrap_or_default();
        [
            kind.to_string(),
            total.to_string(),
            active.to_string(),
            human_size(size),
            format!("{}{share}", human_size(reclaimable.min(size))),
        ]
    };
    Ok(Usage {
        rows: vec![
            row(
                "Images",
                images.len(),
                images.iter().filter(|i| used_by_a_run(&i.id)).count(),
                parts.blobs,
                unused_images,
            ),
            row(
                "Runs",
                records.len(),
                records.len() - stopped.len(),
                runs_total,
                stopped.iter().map(|r| run_bytes(r)).sum(),
            ),
            row(
                "Caches",
                parts.caches.len(),
                parts
                    .caches
                    .iter()
                    .filter(|c| cache_active(&c.name))
                    .count(),
                caches,
                parts
                    .caches
                    .iter()
                    .filter(|c| !cache_active(&c.name))
                    .map(|c| c.bytes)
                    .sum(),
            ),
        ],
        total: parts.blobs + caches + runs_total,
    })
}

/// `vmc system df`.
pub fn df() -> Result<u8> {
    let usage = usage(&Store::open_default()?, &RunStore::open()?)?;
    println!(
        "{:<8}  {:>6}  {:>6}  {:>10}  RECLAIMABLE",
        "TYPE", "TOTAL", "ACTIVE", "SIZE"
    );
    for [kind, total, active, size, reclaimable] in usage.rows {
        println!("{kind:<8}  {total:>6}  {active:>6}  {size:>10}  {reclaimable}");
    }
    Ok(0)
}

/// `vmc system prune`: stopped runs, then images (untagged, or with `-a` all that no run
/// uses), then the store's stale caches and leftovers; prints what went and the space freed.
pub fn prune(args: PruneArgs) -> Result<u8> {
    let what = if args.all {
        "all stopped runs, all images without a run, and all caches"
    } else {
        "all stopped runs, all untagged images, and stale caches"
    };
    if !args.force && !confirm(what)? {
        println!("Nothing removed.");
        return Ok(1);
    }
    let store = Store::open_default()?;
    let runs = RunStore::open()?;
    let before = usage(&store, &runs)?.total;
    let mut status = 0;
    let stopped: Vec<RunRecord> = runs
        .list()?
        .into_iter()
        .filter(|r| !r.status().is_live())
        .collect();
    if !stopped.is_empty() {
        println!("Deleted runs:");
    }
    for record in &stopped {
        match remove_one(&runs, &record.id, false) {
            Ok(()) => println!("{}", record.id),
            Err(err) => {
                eprintln!("vmc: {}", escape(&format!("{err:#}")));
                status = vmc_runtime::outcome::EXIT_VMC_FAILED as u8;
            }
        }
    }
    let user_of = |id: &str| {
        runs.running_user_of(id)
            .unwrap_or_else(|err| Some(format!("a run (the run records are unreadable: {err:#})")))
    };
    if args.all {
        for image in store.list()? {
            if image.names.is_empty() || user_of(&image.id).is_some() {
                continue;
            }
            let report = store.remove_with(&image.id, true, user_of)?;
            for name in &report.untagged {
                println!("Untagged: {}", escape(name));
            }
            if let Some(id) = &report.deleted {
                println!("Deleted: sha256:{id}");
            }
        }
    }
    let report = store.prune(user_of)?;
    for image in &report.images {
        println!("Deleted: sha256:{}", escape(image));
    }
    let after = usage(&store, &runs)?.total;
    println!(
        "Total reclaimed space: {}",
        human_size(before.saturating_sub(after))
    );
    Ok(status)
}

/// Asks on the terminal whether to remove `what`, as `docker system prune` does.
fn confirm(what: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("vmc system prune removes {what}: add -f to confirm (stdin is not a terminal to ask on)");
    }
    print!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
