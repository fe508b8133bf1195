//! Measuring vmc's two run modes side by side.
//!
//! `vmc bench` runs an image as a microVM and as a container, alternately, and hands this
//! crate what the runs recorded: each run's [`vmc_runtime::Timeline`] (turned into phase
//! durations by [`phases`] and summarised by [`stats`]) and, for one extra run per mode, a
//! memory time series taken by the [`sampler::MemorySampler`]. [`report`] writes the result
//! as a terminal table, JSON (with a schema), CSV, Markdown and SVG plots; [`host`] describes
//! the machine the numbers come from.

pub mod error;
pub mod host;
pub mod phases;
pub mod report;
pub mod sampler;
pub mod stats;

pub use error::BenchError;
pub use host::{hypervisor_signature, CgroupLayout, HostFacts, KvmFacts, KvmKind};
pub use phases::{Phase, PhaseDuration};
pub use report::{BenchReport, MemoryRun, MemorySummary, ModeReport, RunRecord};
pub use sampler::{MemorySample, MemorySampler};
pub use stats::Stats;
