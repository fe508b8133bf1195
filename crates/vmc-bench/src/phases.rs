//! From a run's milestones to the durations of its phases.
//!
//! A phase is the span between two milestones. The *steps* of a run are the spans between
//! consecutive milestones it recorded (vmc start → runtime ready → kernel entry (VM only) →
//! init started → workload exec → workload exit → torn down); the *totals* are the spans
//! compared across modes: startup (vmc start → workload exec), boot to init (runtime ready →
//! init started, the span Firecracker's boot-time figure covers) and the whole run.

use crate::BenchError;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use vmc_runtime::timeline::Mark;
use vmc_runtime::{Milestone, Mode};

/// The milestones in the order a run passes them.
pub const MILESTONE_ORDER: [Milestone; 7] = [
    Milestone::VmcStart,
    Milestone::RuntimeReady,
    Milestone::KernelEntry,
    Milestone::InitStarted,
    Milestone::WorkloadExec,
    Milestone::WorkloadExit,
    Milestone::TornDown,
];

/// The span between two milestones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Phase {
    /// Where the span starts.
    pub from: Milestone,
    /// Where the span ends.
    pub to: Milestone,
}

impl Phase {
    /// From vmc's start until the workload's command is executed: the startup cost.
    pub const STARTUP: Phase = Phase::new(Milestone::VmcStart, Milestone::WorkloadExec);
    /// From a ready runtime until the first process of the workload's world runs; for a VM
    /// this is Firecracker's "InstanceStart to /sbin/init" boot time.
    pub const BOOT_TO_INIT: Phase = Phase::new(Milestone::RuntimeReady, Milestone::InitStarted);
    /// From vmc's start until everything the run created is gone.
    pub const WHOLE_RUN: Phase = Phase::new(Milestone::VmcStart, Milestone::TornDown);
    /// The totals every report shows, in this order.
    pub const TOTALS: [Phase; 3] = [Phase::STARTUP, Phase::BOOT_TO_INIT, Phase::WHOLE_RUN];

    /// The span from `from` to `to`.
    pub const fn new(from: Milestone, to: Milestone) -> Phase {
        Phase { from, to }
    }

    /// The name of a total ("startup", "boot to init", "whole run"), `None` for a step.
    pub fn total_name(self) -> Option<&'static str> {
        match self {
            Phase::STARTUP => Some("startup"),
            Phase::BOOT_TO_INIT => Some("boot to init"),
            Phase::WHOLE_RUN => Some("whole run"),
            _ => None,
        }
    }

    /// The span as "init started → workload exec".
    pub fn label(self) -> String {
        format!("{} → {}", self.from.label(), self.to.label())
    }
}

/// How long one phase of one run took.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PhaseDuration {
    /// The phase.
    #[serde(flatten)]
    pub phase: Phase,
    /// Its duration, in microseconds when serialised.
    #[serde(
        rename = "duration_us",
        with = "vmc_runtime::timeline::duration_micros"
    )]
    pub duration: Duration,
}

/// The steps of a run: the durations between consecutive milestones it recorded, in
/// milestone order (the first recording of each milestone counts).
pub fn steps(marks: &[Mark]) -> Vec<PhaseDuration> {
    let reached: Vec<(Milestone, Duration)> = MILESTONE_ORDER
        .iter()
        .filter_map(|&m| offset_of(marks, m).map(|at| (m, at)))
        .collect();
    reached
        .windows(2)
        .map(|pair| PhaseDuration {
            phase: Phase::new(pair[0].0, pair[1].0),
            duration: pair[1].1.saturating_sub(pair[0].1),
        })
        .collect()
}

/// The totals ([`Phase::TOTALS`]) of a run, leaving out those whose milestones it lacks.
pub fn totals(marks: &[Mark]) -> Vec<PhaseDuration> {
    Phase::TOTALS
        .iter()
        .filter_map(|&phase| {
            let from = offset_of(marks, phase.from)?;
            let to = offset_of(marks, phase.to)?;
            Some(PhaseDuration {
                phase,
                duration: to.saturating_sub(from),
            })
        })
        .collect()
}

/// The milestones a run in `mode` must record: all of them, except kernel entry for a
/// container, which has no kernel of its own.
pub fn required_milestones(mode: Mode) -> Vec<Milestone> {
    MILESTONE_ORDER
        .iter()
        .copied()
        .filter(|&m| mode == Mode::Vm || m != Milestone::KernelEntry)
        .collect()
}

/// Checks that a run's milestones are complete for `mode`, each recorded once, nothing
/// foreign to the mode, and in order on the clock.
pub fn validate(marks: &[Mark], mode: Mode) -> Result<(), BenchError> {
    let required = required_milestones(mode);
    for mark in marks {
        if !required.contains(&mark.milestone) {
            return Err(BenchError::UnexpectedMilestone {
                mode,
                milestone: mark.milestone,
            });
        }
    }
    for &milestone in &required {
        match marks.iter().filter(|m| m.milestone == milestone).count() {
            0 => return Err(BenchError::MissingMilestone { mode, milestone }),
            1 => {}
            _ => return Err(BenchError::RepeatedMilestone { mode, milestone }),
        }
    }
    for pair in required.windows(2) {
        let (earlier_at, later_at) = (offset_of(marks, pair[0]), offset_of(marks, pair[1]));
        if let (Some(earlier_at), Some(later_at)) = (earlier_at, later_at) {
            if later_at < earlier_at {
                return Err(BenchError::OutOfOrder {
                    mode,
                    earlier: pair[0],
                    earlier_at,
                    later: pair[1],
                    later_at,
                });
            }
        }
    }
    Ok(())
}

/// When `milestone` was first recorded.
fn offset_of(marks: &[Mark], milestone: Milestone) -> Option<Duration> {
    marks
        .iter()
        .find(|m| m.milestone == milestone)
        .map(|m| m.at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks(points: &[(Milestone, u64)]) -> Vec<Mark> {
        points
            .iter()
            .map(|&(milestone, ms)| Mark {
                milestone,
                at: Duration::from_millis(ms),
            })
            .collect()
    }

    fn vm_run() -> Vec<Mark> {
        marks(&[
            (Milestone::VmcStart, 0),
            (Milestone::RuntimeReady, 10),
            (Milestone::KernelEntry, 12),
            (Milestone::InitStarted, 112),
            (Milestone::WorkloadExec, 115),
            (Milestone::WorkloadExit, 120),
            (Milestone::TornDown, 130),
        ])
    }

    fn container_run() -> Vec<Mark> {
        marks(&[
            (Milestone::VmcStart, 0),
            (Milestone::RuntimeReady, 4),
            (Milestone::InitStarted, 6),
            (Milestone::WorkloadExec, 7),
            (Milestone::WorkloadExit, 9),
            (Milestone::TornDown, 12),
        ])
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn steps_span_consecutive_milestones() {
        let steps = steps(&vm_run());
        let got: Vec<(Milestone, Milestone, Duration)> = steps
            .iter()
            .map(|p| (p.phase.from, p.phase.to, p.duration))
            .collect();
        assert_eq!(
            got,
            vec![
                (Milestone::VmcStart, Milestone::RuntimeReady, ms(10)),
                (Milestone::RuntimeReady, Milestone::KernelEntry, ms(2)),
                (Milestone::KernelEntry, Milestone::InitStarted, ms(100)),
                (Milestone::InitStarted, Milestone::WorkloadExec, ms(3)),
                (Milestone::WorkloadExec, Milestone::WorkloadExit, ms(5)),
                (Milestone::WorkloadExit, Milestone::TornDown, ms(10)),
            ]
        );
    }

    #[test]
    fn steps_skip_milestones_a_container_lacks() {
        let steps = steps(&container_run());
        assert_eq!(steps.len(), 5);
        assert_eq!(
            steps[1].phase,
            Phase::new(Milestone::RuntimeReady, Milestone::InitStarted)
        );
        assert_eq!(steps[1].duration, ms(2));
    }

    #[test]
    fn totals_cover_startup_boot_and_whole_run() {
        let totals = totals(&vm_run());
        let got: Vec<(&str, Duration)> = totals
            .iter()
            .map(|p| (p.phase.total_name().unwrap(), p.duration))
            .collect();
        assert_eq!(
            got,
            vec![
                ("startup", ms(115)),
                ("boot to init", ms(102)),
                ("whole run", ms(130))
            ]
        );
    }

    #[test]
    fn totals_leave_out_what_a_run_did_not_reach() {
        let mut run = container_run();
        run.retain(|m| m.milestone != Milestone::TornDown);
        let names: Vec<&str> = totals(&run)
            .iter()
            .map(|p| p.phase.total_name().unwrap())
            .collect();
        assert_eq!(names, vec!["startup", "boot to init"]);
    }

    #[test]
    fn complete_timelines_validate() {
        validate(&vm_run(), Mode::Vm).unwrap();
        validate(&container_run(), Mode::Container).unwrap();
    }

    #[test]
    fn a_vm_run_needs_kernel_entry() {
        let err = validate(&container_run(), Mode::Vm).unwrap_err();
        assert!(matches!(
            err,
            BenchError::MissingMilestone {
                milestone: Milestone::KernelEntry,
                ..
            }
        ));
        assert!(err.to_string().contains("'kernel entry'"), "{err}");
    }

    #[test]
    fn a_container_run_has_no_kernel_entry() {
        let err = validate(&vm_run(), Mode::Container).unwrap_err();
        assert!(matches!(
            err,
            BenchError::UnexpectedMilestone {
                milestone: Milestone::KernelEntry,
                ..
            }
        ));
    }

    #[test]
    fn out_of_order_and_repeated_milestones_are_rejected() {
        let mut run = container_run();
        run[3].at = ms(5); // workload exec before init started (6 ms)
        assert!(matches!(
            validate(&run, Mode::Container),
            Err(BenchError::OutOfOrder {
                earlier: Milestone::InitStarted,
                later: Milestone::WorkloadExec,
                ..
            })
        ));
        let mut run = container_run();
        run.push(Mark {
            milestone: Milestone::WorkloadExit,
            at: ms(10),
        });
        assert!(matches!(
            validate(&run, Mode::Container),
            Err(BenchError::RepeatedMilestone { .. })
        ));
    }

    #[test]
    fn phase_durations_serialise_with_milestone_names() {
        let json = serde_json::to_string(&steps(&container_run())[0]).unwrap();
        assert_eq!(
            json,
            r#"{"from":"vmc_start","to":"runtime_ready","duration_us":4000}"#
        );
    }
}
