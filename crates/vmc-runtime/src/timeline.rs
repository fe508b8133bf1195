//! Timing points shared by both modes, on one monotonic host clock.
//!
//! A [`Timeline`] starts when vmc starts. Runtimes add [`Milestone`]s (the phases that are
//! compared across modes) and free-text trace steps (what happened, for `vmc run --trace`).

use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// The phases of a run, in the order they happen. METHODOLOGY.md says where each is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Milestone {
    /// vmc's `main` started.
    VmcStart,
    /// The runtime is built: VMM and guest memory set up, or namespaces and cgroup made.
    RuntimeReady,
    /// The guest kernel reported its entry (VM only).
    KernelEntry,
    /// The first process of the workload's world runs (guest init, or the container child).
    InitStarted,
    /// The workload's command is about to be executed.
    WorkloadExec,
    /// The workload has exited.
    WorkloadExit,
    /// Everything the run created is gone.
    TornDown,
}

impl Milestone {
    /// A short label for tables and plots.
    pub fn label(self) -> &'static str {
        match self {
            Milestone::VmcStart => "vmc start",
            Milestone::RuntimeReady => "runtime ready",
            Milestone::KernelEntry => "kernel entry",
            Milestone::InitStarted => "init started",
            Milestone::WorkloadExec => "workload exec",
            Milestone::WorkloadExit => "workload exit",
            Milestone::TornDown => "torn down",
        }
    }
}

/// One milestone reached, as an offset from the timeline's origin.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    /// Which milestone.
    pub milestone: Milestone,
    /// Time since vmc started.
    #[serde(with = "duration_micros")]
    pub at: Duration,
}

/// One annotated step of the run, for the teaching trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Time since vmc started.
    #[serde(with = "duration_micros")]
    pub at: Duration,
    /// What happened, in one line (e.g. "KVM_CREATE_VM", "pivot_root into the image").
    pub what: String,
}

/// The milestones and steps of one run.
#[derive(Debug, Clone)]
pub struct Timeline {
    origin: Instant,
    marks: Vec<Mark>,
    steps: Vec<Step>,
}

impl Timeline {
    /// Starts a timeline whose origin is `origin` (vmc's start) and marks [`Milestone::VmcStart`].
    pub fn starting_at(origin: Instant) -> Self {
        Timeline {
            origin,
            marks: vec![Mark {
                milestone: Milestone::VmcStart,
                at: Duration::ZERO,
            }],
            steps: Vec::new(),
        }
    }

    /// The instant all offsets are measured from.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// Records that `milestone` is reached now.
    pub fn mark(&mut self, milestone: Milestone) {
        self.mark_at(milestone, Instant::now());
    }

    /// Records that `milestone` was reached at `instant` (e.g. when a guest's port write trapped).
    pub fn mark_at(&mut self, milestone: Milestone, instant: Instant) {
        let at = instant.saturating_duration_since(self.origin);
        self.marks.push(Mark { milestone, at });
    }

    /// Records a trace step that happened now.
    pub fn step(&mut self, what: impl Into<String>) {
        self.step_at(what, Instant::now());
    }

    /// Records a trace step that happened at `instant`.
    pub fn step_at(&mut self, what: impl Into<String>, instant: Instant) {
        let at = instant.saturating_duration_since(self.origin);
        self.steps.push(Step {
            at,
            what: what.into(),
        });
    }

    /// The milestones, in the order they were recorded.
    pub fn marks(&self) -> &[Mark] {
        &self.marks
    }

    /// The trace steps, in the order they were recorded.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// When `milestone` was reached, if it was.
    pub fn offset_of(&self, milestone: Milestone) -> Option<Duration> {
        self.marks
            .iter()
            .find(|m| m.milestone == milestone)
            .map(|m| m.at)
    }
}

/// Serde support for a `Duration` as whole microseconds, the unit of vmc's JSON
/// (`#[serde(with = "vmc_runtime::timeline::duration_micros")]`).
pub mod duration_micros {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Writes `d` as whole microseconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_micros() as u64)
    }

    /// Reads whole microseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_micros)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_offsets_from_origin() {
        let origin = Instant::now();
        let mut timeline = Timeline::starting_at(origin);
        timeline.mark_at(Milestone::WorkloadExec, origin + Duration::from_millis(5));
        assert_eq!(
            timeline.offset_of(Milestone::VmcStart),
            Some(Duration::ZERO)
        );
        assert_eq!(
            timeline.offset_of(Milestone::WorkloadExec),
            Some(Duration::from_millis(5))
        );
        assert_eq!(timeline.offset_of(Milestone::KernelEntry), None);
    }

    #[test]
    fn marks_serialize_as_micros() {
        let mark = Mark {
            milestone: Milestone::InitStarted,
            at: Duration::from_micros(1500),
        };
        let json = serde_json::to_string(&mark).unwrap();
        assert_eq!(json, r#"{"milestone":"init_started","at":1500}"#);
    }
}
