//! What can go wrong while checking timelines and writing reports.

use std::path::PathBuf;
use vmc_runtime::{Milestone, Mode};

/// Errors of the benchmark library; each message names the problem and what to do.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A run's timeline lacks a milestone its mode must record.
    #[error("the {} run's timeline has no '{}' milestone: the {} runtime did not record it", mode.as_str(), milestone.label(), mode.as_str())]
    MissingMilestone {
        /// The mode of the run.
        mode: Mode,
        /// The milestone that is missing.
        milestone: Milestone,
    },
    /// A run's timeline holds a milestone its mode never passes.
    #[error("the {} run's timeline has a '{}' milestone, which that mode cannot pass: fix the runtime that recorded it", mode.as_str(), milestone.label())]
    UnexpectedMilestone {
        /// The mode of the run.
        mode: Mode,
        /// The milestone that should not be there.
        milestone: Milestone,
    },
    /// A milestone was recorded more than once.
    #[error("the {} run's timeline records '{}' more than once: fix the runtime that recorded it", mode.as_str(), milestone.label())]
    RepeatedMilestone {
        /// The mode of the run.
        mode: Mode,
        /// The milestone recorded twice.
        milestone: Milestone,
    },
    /// Two milestones are out of order.
    #[error("the {} run's timeline has '{}' ({:?}) before '{}' ({:?}): the runtime's clock readings are out of order", mode.as_str(), later.label(), later_at, earlier.label(), earlier_at)]
    OutOfOrder {
        /// The mode of the run.
        mode: Mode,
        /// The milestone that should come first.
        earlier: Milestone,
        /// When it was recorded.
        earlier_at: std::time::Duration,
        /// The milestone that should come after it.
        later: Milestone,
        /// When it was recorded.
        later_at: std::time::Duration,
    },
    /// A report file could not be written.
    #[error("cannot write {}: {source} (check that the output directory is writable)", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A report to combine with this one measured something else.
    #[error("cannot combine the reports: {0}")]
    IncompatibleReport(String),
    /// A report could not be serialised as JSON.
    #[error("cannot encode the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A CSV file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// Why.
        source: csv::Error,
    },
    /// A plot could not be drawn.
    #[error("cannot draw {}: {message}", path.display())]
    Plot {
        /// The SVG file.
        path: PathBuf,
        /// What plotters reported.
        message: String,
    },
}
