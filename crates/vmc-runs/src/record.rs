//! A run's record, `$VMC_HOME/runs/<id>/state.json`: what `vmc ps` shows, and Docker's states.
//!
//! Each record is written atomically (temp file + rename) when a run is created, when its
//! workload starts and when it ends, so a crash leaves a record that names a dead supervisor:
//! `vmc ps` shows such runs as `Dead` and `vmc rm` cleans up what they left. The supervisor
//! is named by its pid, start time and boot id ([`crate::process`]), so a pid that the kernel
//! has since given to another process is neither shown as running nor signalled.

use crate::process::ProcessIdentity;
use serde::{Deserialize, Serialize};
use vmc_runtime::{ExitOutcome, Mode, RunSpec};

/// What vmc knows about one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run id (64 hex digits).
    pub id: String,
    /// The user-chosen or generated name.
    pub name: String,
    /// How the image is run.
    pub mode: Mode,
    /// The image reference as given on the command line.
    pub image: String,
    /// The image's ID (empty in records written before vmc kept it).
    #[serde(default)]
    pub image_id: String,
    /// The workload's argv.
    pub command: Vec<String>,
    /// Seconds since the epoch when the run was created.
    pub created: u64,
    /// The pid of the process supervising the run: the `vmc run` of an attached run, the
    /// supervisor of a detached one.
    pub supervisor_pid: i32,
    /// The supervisor's start time (`/proc/PID/stat` field 22). Records written before vmc
    /// kept it have none: their pid proves nothing, so they count as dead.
    #[serde(default)]
    pub supervisor_start_time: Option<u64>,
    /// The host's boot id when the supervisor started.
    #[serde(default)]
    pub boot_id: Option<String>,
    /// Seconds since the epoch when the workload last started (exec), if it has.
    #[serde(default)]
    pub started: Option<u64>,
    /// Seconds since the epoch when the workload last ended, if it has.
    #[serde(default)]
    pub finished: Option<u64>,
    /// Whether the run is detached: a supervisor process of its own keeps its log.
    #[serde(default)]
    pub detached: bool,
    /// Whether the run is removed when its workload ends (`--rm`).
    #[serde(default)]
    pub auto_remove: bool,
    /// The signal `vmc stop` sends first (the image's StopSignal; SIGTERM when it has none).
    #[serde(default = "default_stop_signal")]
    pub stop_signal: i32,
    /// The log's size cap in bytes (`--log-opt max-size`), if any.
    #[serde(default)]
    pub log_max_size: Option<u64>,
    /// How the workload last ended, once it has.
    pub outcome: Option<ExitOutcome>,
}

fn default_stop_signal() -> i32 {
    libc::SIGTERM
}

/// The state a run is in, Docker's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// The supervisor is alive and the workload has not started yet.
    Created,
    /// The supervisor is alive and the workload runs.
    Up,
    /// The workload ended with this outcome.
    Exited(ExitOutcome),
    /// The supervisor ended, or cannot be told apart from another process, without recording
    /// an outcome.
    Dead,
}

impl RunStatus {
    /// Whether a supervisor still holds the run (Created or Up).
    pub fn is_live(self) -> bool {
        matches!(self, RunStatus::Created | RunStatus::Up)
    }

    /// Docker's word for the state (`docker ps --filter status=`).
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Created => "created",
            RunStatus::Up => "running",
            RunStatus::Exited(_) => "exited",
            RunStatus::Dead => "dead",
        }
    }
}

impl RunRecord {
    /// Creates the record of the run `spec` of `image` (as given on the command line),
    /// created now and supervised, for now, by this process.
    pub fn creating(name: &str, mode: Mode, image: &str, spec: &RunSpec) -> Self {
        let mut record = RunRecord {
            id: spec.id.clone(),
            name: name.to_string(),
            mode,
            image: image.to_string(),
            image_id: spec.image_id.clone(),
            command: spec.args.clone(),
            created: unix_now(),
            supervisor_pid: 0,
            supervisor_start_time: None,
            boot_id: None,
            started: None,
            finished: None,
            detached: false,
            auto_remove: false,
            stop_signal: default_stop_signal(),
            log_max_size: None,
            outcome: None,
        };
        record.supervised_by_this_process();
        record
    }

    /// Names this process as the run's supervisor.
    pub fn supervised_by_this_process(&mut self) {
        let me = ProcessIdentity::current();
        self.supervisor_pid = std::process::id() as i32;
        self.supervisor_start_time = me.as_ref().map(|me| me.start_time);
        self.boot_id = me.map(|me| me.boot_id);
    }

    /// The supervisor as recorded, if the record names it beyond its pid.
    pub fn supervisor(&self) -> Option<ProcessIdentity> {
        Some(ProcessIdentity {
            pid: self.supervisor_pid,
            start_time: self.supervisor_start_time?,
            boot_id: self.boot_id.clone()?,
        })
    }

    /// The run's status, checking whether its supervisor is still alive.
    pub fn status(&self) -> RunStatus {
        match self.outcome {
            Some(outcome) => RunStatus::Exited(outcome),
            None if !self.supervisor().is_some_and(|s| s.is_alive()) => RunStatus::Dead,
            None if self.started.is_some() => RunStatus::Up,
            None => RunStatus::Created,
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_of_this_process() -> RunRecord {
        let spec_json = serde_json::json!({
            "id": "ab", "name": "n", "mode": "container", "image": "busybox", "image_id": "cd",
            "command": [], "created": 0, "supervisor_pid": 0, "outcome": null,
        });
        let mut record: RunRecord = serde_json::from_value(spec_json).unwrap();
        record.supervised_by_this_process();
        record
    }

    #[test]
    fn states_follow_the_supervisor_and_the_workload() {
        let mut record = record_of_this_process();
        assert_eq!(record.status(), RunStatus::Created);
        record.started = Some(1);
        assert_eq!(record.status(), RunStatus::Up);
        record.supervisor_pid = i32::MAX;
        assert_eq!(record.status(), RunStatus::Dead);
        record.outcome = Some(ExitOutcome::Exited(3));
        assert_eq!(record.status(), RunStatus::Exited(ExitOutcome::Exited(3)));
        assert_eq!(record.stop_signal, libc::SIGTERM, "the default stop signal");
    }

    #[test]
    fn a_reused_pid_or_an_old_record_is_not_running() {
        let mut record = record_of_this_process();
        record.supervisor_start_time = record.supervisor_start_time.map(|t| t + 1);
        assert_eq!(record.status(), RunStatus::Dead, "another start time");
        let mut json = serde_json::to_value(record_of_this_process()).unwrap();
        let fields = json.as_object_mut().unwrap();
        fields.remove("supervisor_start_time");
        fields.remove("boot_id");
        let old: RunRecord = serde_json::from_value(json).unwrap();
        assert_eq!(old.supervisor(), None);
        assert_eq!(old.status(), RunStatus::Dead, "a pid alone proves nothing");
    }
}
