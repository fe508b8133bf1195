//! The benchmark report: what was run, on what, and what it measured; and its writers.
//!
//! A [`BenchReport`] holds, per mode, every measured run's milestones and phase durations,
//! the per-phase statistics and the memory run's time series. [`BenchReport::write_all`]
//! writes it as `report.json` (+ `report.schema.json`), `runs.csv`, `memory.csv`,
//! `report.md`, `startup.svg` and `memory.svg`; [`table::render`] formats it for a terminal.

pub mod csv;
pub mod firecracker;
pub mod json;
pub mod markdown;
pub mod plots;
pub mod table;

use crate::phases::{self, Phase, PhaseDuration};
use crate::{BenchError, HostFacts, MemorySample, Stats};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use vmc_runtime::timeline::Mark;
use vmc_runtime::{Milestone, Mode};

/// The identifier of this report format, stored in every report.json.
pub const SCHEMA_ID: &str = "vmc-bench-report/1";

/// Everything one `vmc bench` invocation measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// Always [`SCHEMA_ID`].
    pub schema: String,
    /// When the benchmark ran (RFC 3339, UTC).
    pub created: String,
    /// What was run and how often.
    pub settings: BenchSettings,
    /// The machine it ran on.
    pub host: HostFacts,
    /// The results of each mode, in the order they were run.
    pub modes: Vec<ModeReport>,
}

/// What `vmc bench` was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchSettings {
    /// The image reference.
    pub image: String,
    /// The command given after `--` (empty: the image's default command).
    pub command: Vec<String>,
    /// Measured runs per mode.
    pub runs: usize,
    /// Unmeasured warm-up runs per mode before the measured ones.
    pub warmup: usize,
    /// `--memory`: container limit / VM guest RAM, in bytes (None: vmc's default).
    pub memory_bytes: Option<u64>,
    /// `--cpus`: container quota / vCPU count (None: vmc's default).
    pub cpus: Option<f64>,
    /// How often the memory run was sampled, in milliseconds.
    pub sample_interval_ms: u64,
}

/// The results of one mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeReport {
    /// The mode.
    pub mode: Mode,
    /// Each measured run.
    pub runs: Vec<RunRecord>,
    /// Statistics per phase over the runs, in milliseconds: the steps, then the totals.
    pub phase_stats: Vec<PhaseStats>,
    /// The memory run, when one was made.
    pub memory: Option<MemoryRun>,
    /// The machine this mode ran on when it is not the report's `host`: a mode added from
    /// another report (e.g. VM runs made inside scripts/kvm-sandbox). `None`: the report's host.
    pub ran_on: Option<HostFacts>,
}

/// One measured run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// 1-based position among the mode's measured runs.
    pub index: usize,
    /// The status vmc would exit with for this run.
    pub exit_code: i32,
    /// The milestones as the runtime recorded them.
    pub milestones: Vec<Mark>,
    /// Durations between consecutive milestones.
    pub steps: Vec<PhaseDuration>,
    /// Startup, boot to init and whole-run durations.
    pub totals: Vec<PhaseDuration>,
}

/// Whether a phase is a step between consecutive milestones or a total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseKind {
    /// Between two consecutive milestones.
    Step,
    /// One of [`Phase::TOTALS`].
    Total,
}

/// The statistics of one phase over a mode's runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseStats {
    /// The phase.
    #[serde(flatten)]
    pub phase: Phase,
    /// Step or total.
    pub kind: PhaseKind,
    /// Its label in tables and plots.
    pub label: String,
    /// Statistics of its duration, in milliseconds.
    pub ms: Stats,
}

/// The memory run of one mode: the workload's memory sampled over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryRun {
    /// The workload's command.
    pub command: Vec<String>,
    /// The status vmc would exit with for this run.
    pub exit_code: i32,
    /// The run's milestones.
    pub milestones: Vec<Mark>,
    /// The samples, in time order.
    pub samples: Vec<MemorySample>,
    /// What the samples add up to.
    pub summary: MemorySummary,
}

/// The memory run in a few numbers (all in bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemorySummary {
    /// How many samples were taken.
    pub sample_count: usize,
    /// Memory reserved up front: the VM's guest RAM; 0 for a container.
    pub reserved_bytes: u64,
    /// The most the workload held: peak resident guest RAM (VM) or the cgroup's peak charge.
    pub peak_workload_bytes: u64,
    /// What the workload held at the last sample (the last before it exited): for the
    /// memory-cycle scenario, after it freed its allocation.
    pub last_workload_bytes: u64,
    /// The median runtime overhead: VMM RSS minus resident guest RAM, or the supervisor's RSS.
    pub overhead_median_bytes: u64,
    /// The largest runtime overhead seen.
    pub overhead_max_bytes: u64,
}

impl RunRecord {
    /// Records run number `index` from its milestones.
    pub fn new(index: usize, exit_code: i32, milestones: &[Mark]) -> RunRecord {
        RunRecord {
            index,
            exit_code,
            milestones: milestones.to_vec(),
            steps: phases::steps(milestones),
            totals: phases::totals(milestones),
        }
    }
}

impl ModeReport {
    /// The report of `mode` from its measured runs and optional memory run.
    pub fn new(mode: Mode, runs: Vec<RunRecord>, memory: Option<MemoryRun>) -> ModeReport {
        let phase_stats = phase_stats(&runs);
        ModeReport {
            mode,
            runs,
            phase_stats,
            memory,
            ran_on: None,
        }
    }

    /// The statistics of `phase` counted as a step or as a total, if any run passed it.
    /// (A container's one step from runtime ready to init started is also the boot-to-init
    /// total.)
    pub fn stats_of(&self, phase: Phase, kind: PhaseKind) -> Option<&PhaseStats> {
        self.phase_stats
            .iter()
            .find(|s| s.phase == phase && s.kind == kind)
    }

    /// The statistics of the total `phase` (one of [`Phase::TOTALS`]).
    pub fn total(&self, phase: Phase) -> Option<&Stats> {
        self.stats_of(phase, PhaseKind::Total).map(|s| &s.ms)
    }

    /// The steps from vmc start to workload exec with their statistics, in order.
    pub fn startup_steps(&self) -> impl Iterator<Item = &PhaseStats> {
        self.phase_stats.iter().filter(|s| {
            s.kind == PhaseKind::Step
                && phases::MILESTONE_ORDER
                    .iter()
                    .position(|&m| m == s.phase.to)
                    <= phases::MILESTONE_ORDER
                        .iter()
                        .position(|&m| m == Milestone::WorkloadExec)
        })
    }
}

impl MemoryRun {
    /// The memory run of `command` from its milestones and samples. Samples taken after the
    /// workload exited are dropped: from then on the runtime is tearing the run down, and a
    /// probe may read memory that is already being released.
    pub fn new(
        command: Vec<String>,
        exit_code: i32,
        milestones: &[Mark],
        samples: Vec<MemorySample>,
    ) -> MemoryRun {
        let exit = milestones
            .iter()
            .find(|m| m.milestone == Milestone::WorkloadExit)
            .map(|m| m.at);
        let samples: Vec<MemorySample> = samples
            .into_iter()
            .filter(|s| !matches!(exit, Some(exit) if s.at > exit))
            .collect();
        let summary = MemorySummary::of(&samples);
        MemoryRun {
            command,
            exit_code,
            milestones: milestones.to_vec(),
            samples,
            summary,
        }
    }

    /// When the workload was executed, if the run recorded it.
    pub fn workload_exec(&self) -> Option<std::time::Duration> {
        self.milestones
            .iter()
            .find(|m| m.milestone == Milestone::WorkloadExec)
            .map(|m| m.at)
    }
}

impl MemorySummary {
    /// Summarises `samples` (in time order).
    pub fn of(samples: &[MemorySample]) -> MemorySummary {
        let reserved_bytes = samples.iter().map(|s| s.reading.reserved_bytes).max();
        let peak_workload_bytes = samples
            .iter()
            .map(|s| {
                s.reading
                    .workload_bytes
                    .max(s.reading.peak_bytes.unwrap_or(0))
            })
            .max();
        let last_workload_bytes = samples.last().map(|s| s.reading.workload_bytes);
        let overheads: Vec<f64> = samples
            .iter()
            .map(|s| s.reading.overhead_bytes as f64)
            .collect();
        let overhead = Stats::of(&overheads);
        MemorySummary {
            sample_count: samples.len(),
            reserved_bytes: reserved_bytes.unwrap_or(0),
            peak_workload_bytes: peak_workload_bytes.unwrap_or(0),
            last_workload_bytes: last_workload_bytes.unwrap_or(0),
            overhead_median_bytes: overhead.map_or(0, |s| s.median as u64),
            overhead_max_bytes: overhead.map_or(0, |s| s.max as u64),
        }
    }
}

impl BenchReport {
    /// Writes every report file into `dir` (created if missing); returns their paths.
    pub fn write_all(&self, dir: &Path) -> Result<Vec<PathBuf>, BenchError> {
        std::fs::create_dir_all(dir).map_err(|source| BenchError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let files = vec![
            json::write_report(self, &dir.join(json::REPORT_FILE))?,
            json::write_schema(&dir.join(json::SCHEMA_FILE))?,
            csv::write_runs(self, &dir.join(csv::RUNS_FILE))?,
            csv::write_memory(self, &dir.join(csv::MEMORY_FILE))?,
            plots::write_startup(self, &dir.join(plots::STARTUP_FILE))?,
            plots::write_memory(self, &dir.join(plots::MEMORY_FILE))?,
            markdown::write(self, &dir.join(markdown::REPORT_FILE))?,
        ];
        Ok(files)
    }

    /// The report of `mode`, if it was benchmarked.
    pub fn mode(&self, mode: Mode) -> Option<&ModeReport> {
        self.modes.iter().find(|m| m.mode == mode)
    }

    /// How the modes were run, in words: "vm and container runs interleaved", "container
    /// runs; vm runs made on another machine".
    pub fn schedule(&self) -> String {
        let names = |imported: bool| -> Vec<&str> {
            self.modes
                .iter()
                .filter(|m| m.ran_on.is_some() == imported)
                .map(|m| m.mode.as_str())
                .collect()
        };
        let (here, elsewhere) = (names(false), names(true));
        let mut text = match here.len() {
            0 => String::new(),
            1 => format!("{} runs", here[0]),
            _ => format!("{} runs interleaved", here.join(" and ")),
        };
        if !elsewhere.is_empty() {
            if !text.is_empty() {
                text += "; ";
            }
            text += &format!("{} runs made on another machine", elsewhere.join(" and "));
        }
        text
    }

    /// The machine `mode` ran on, if it was benchmarked.
    pub fn host_of(&self, mode: Mode) -> Option<&HostFacts> {
        self.mode(mode)
            .map(|m| m.ran_on.as_ref().unwrap_or(&self.host))
    }

    /// Puts the modes of `other` (a report of the same image and command, made elsewhere)
    /// before this report's modes, each remembering the machine it ran on.
    pub fn add_modes_from(&mut self, other: BenchReport) -> Result<(), BenchError> {
        if other.schema != SCHEMA_ID {
            return Err(BenchError::IncompatibleReport(format!(
                "it is a {:?} report, this vmc reads {SCHEMA_ID}",
                other.schema
            )));
        }
        let (mine, theirs) = (&self.settings, &other.settings);
        if (&mine.image, &mine.command) != (&theirs.image, &theirs.command) {
            return Err(BenchError::IncompatibleReport(format!(
                "it measured `{} {}`, this benchmark `{} {}`",
                theirs.image,
                theirs.command.join(" "),
                mine.image,
                mine.command.join(" ")
            )));
        }
        let mut added = Vec::new();
        for mut mode in other.modes {
            if self.mode(mode.mode).is_some() {
                return Err(BenchError::IncompatibleReport(format!(
                    "both reports measured {} mode",
                    mode.mode.as_str()
                )));
            }
            mode.ran_on = mode.ran_on.or_else(|| Some(other.host.clone()));
            added.push(mode);
        }
        added.append(&mut self.modes);
        self.modes = added;
        Ok(())
    }
}

/// Per-phase statistics over `runs`: each step in milestone order, then each total.
fn phase_stats(runs: &[RunRecord]) -> Vec<PhaseStats> {
    let mut step_phases: Vec<Phase> = Vec::new();
    for run in runs {
        for step in &run.steps {
            if !step_phases.contains(&step.phase) {
                step_phases.push(step.phase);
            }
        }
    }
    let rank = |m: Milestone| phases::MILESTONE_ORDER.iter().position(|&x| x == m);
    step_phases.sort_by_key(|p| (rank(p.from), rank(p.to)));
    let collect = |phase: Phase, kind: PhaseKind, pick: fn(&RunRecord) -> &[PhaseDuration]| {
        let samples: Vec<f64> = runs
            .iter()
            .flat_map(|run| pick(run).iter().filter(|d| d.phase == phase))
            .map(|d| d.duration.as_secs_f64() * 1000.0)
            .collect();
        let label = match kind {
            PhaseKind::Step => phase.label(),
            PhaseKind::Total => phase.total_name().unwrap_or_default().to_string(),
        };
        Stats::of(&samples).map(|ms| PhaseStats {
            phase,
            kind,
            label,
            ms,
        })
    };
    let steps = step_phases
        .into_iter()
        .filter_map(|p| collect(p, PhaseKind::Step, |r| &r.steps));
    let totals = Phase::TOTALS
        .into_iter()
        .filter_map(|p| collect(p, PhaseKind::Total, |r| &r.totals));
    steps.chain(totals).collect()
}

/// Writes `contents` to `path`, naming the file in the error.
fn write_file(path: &Path, contents: &[u8]) -> Result<PathBuf, BenchError> {
    std::fs::write(path, contents).map_err(|source| BenchError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(path.to_path_buf())
}

/// Formats a byte count with a binary unit: "0 B", "812 KiB", "3.2 MiB", "1.50 GiB".
pub fn format_bytes(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} B")
    } else if b < KIB * KIB {
        format!("{:.0} KiB", b / KIB)
    } else if b < KIB * KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else {
        format!("{:.2} GiB", b / (KIB * KIB * KIB))
    }
}

/// Formats milliseconds to the hundredth ("0.15", "12.44", "1530.40"), so columns align.
pub fn format_ms(ms: f64) -> String {
    format!("{ms:.2}")
}

#[cfg(test)]
pub(crate) mod sample;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_cover_steps_then_totals() {
        let report = sample::report();
        let vm = report.mode(Mode::Vm).unwrap();
        let labels: Vec<&str> = vm.phase_stats.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(
            labels,
            vec![
                "vmc start → runtime ready",
                "runtime ready → kernel entry",
                "kernel entry → init started",
                "init started → workload exec",
                "workload exec → workload exit",
                "workload exit → torn down",
                "startup",
                "boot to init",
                "whole run",
            ]
        );
        assert_eq!(vm.total(Phase::STARTUP).unwrap().count, vm.runs.len());
        assert_eq!(vm.startup_steps().count(), 4);
        let container = report.mode(Mode::Container).unwrap();
        assert_eq!(container.startup_steps().count(), 3);
    }

    #[test]
    fn memory_summary_reads_peak_last_and_overhead() {
        let report = sample::report();
        let vm = report.mode(Mode::Vm).unwrap().memory.as_ref().unwrap();
        // The sample VM keeps its 64 MiB resident after the guest frees it.
        assert_eq!(vm.summary.reserved_bytes, 128 << 20);
        assert_eq!(vm.summary.peak_workload_bytes, 70 << 20);
        assert_eq!(vm.summary.last_workload_bytes, 70 << 20);
        let ctr = report
            .mode(Mode::Container)
            .unwrap()
            .memory
            .as_ref()
            .unwrap();
        assert_eq!(ctr.summary.reserved_bytes, 0);
        assert_eq!(ctr.summary.peak_workload_bytes, 65 << 20);
        assert_eq!(ctr.summary.last_workload_bytes, 1 << 20);
        // Nothing sampled after the workload exited is kept.
        let exit = ctr.milestones[4].at;
        assert!(ctr.samples.iter().all(|s| s.at <= exit));
        assert!(ctr.summary.overhead_median_bytes > 0);
        assert!(ctr.summary.overhead_max_bytes >= ctr.summary.overhead_median_bytes);
    }

    #[test]
    fn modes_from_another_report_keep_their_host() {
        let mut here = sample::report();
        here.modes.retain(|m| m.mode == Mode::Container);
        here.host.kvm.kind = crate::KvmKind::Unavailable;
        let mut sandbox = sample::report();
        sandbox.modes.retain(|m| m.mode == Mode::Vm);
        sandbox.host.kernel = "Linux 6.1.0-emulated x86_64".into();
        here.add_modes_from(sandbox.clone()).unwrap();
        let modes: Vec<Mode> = here.modes.iter().map(|m| m.mode).collect();
        assert_eq!(modes, [Mode::Vm, Mode::Container]);
        assert_eq!(here.host_of(Mode::Vm), Some(&sandbox.host));
        assert_eq!(here.host_of(Mode::Container), Some(&here.host));
        assert_eq!(
            here.schedule(),
            "container runs; vm runs made on another machine"
        );
        assert_eq!(
            sample::report().schedule(),
            "vm and container runs interleaved"
        );
        // The same mode twice, or another workload, cannot be combined.
        assert!(here.add_modes_from(sandbox.clone()).is_err());
        let mut other_command = sandbox;
        other_command.settings.command = vec!["/bin/false".into()];
        let mut fresh = sample::report();
        fresh.modes.retain(|m| m.mode == Mode::Container);
        let err = fresh.add_modes_from(other_command).unwrap_err();
        assert!(err.to_string().contains("/bin/false"), "{err}");
    }

    #[test]
    fn formats_bytes_and_milliseconds() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(3 << 20), "3.0 MiB");
        assert_eq!(format_bytes(1536 << 20), "1.50 GiB");
        assert_eq!(format_ms(0.1534), "0.15");
        assert_eq!(format_ms(12.444), "12.44");
        assert_eq!(format_ms(1530.4), "1530.40");
    }
}
