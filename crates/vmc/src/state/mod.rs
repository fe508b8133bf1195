//! Per-run records under `$VMC_HOME/runs/<id>/state.json`, the source of `vmc ps` and `vmc rm`.
//!
//! Each record is written atomically (temp file + rename) when a run starts and again when it
//! ends, so a crash of vmc leaves a record that says "running" with the pid of a dead vmc:
//! `vmc ps` shows such runs as `dead` and `vmc rm` cleans up what they left. The supervising
//! vmc is named by its pid, start time and boot id ([`process`]), so a pid that the kernel has
//! since given to another process is neither shown as running nor killed by `vmc rm -f`.

pub mod process;

use anyhow::{bail, Context, Result};
use process::ProcessIdentity;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use vmc_runtime::{ExitOutcome, Mode, RunSpec};

/// What `vmc ps` knows about one run.
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
    /// The pid of the vmc process supervising the run.
    pub supervisor_pid: i32,
    /// The supervisor's start time (`/proc/PID/stat` field 22). Records written before vmc
    /// kept it have none: their pid proves nothing, so they count as dead.
    #[serde(default)]
    pub supervisor_start_time: Option<u64>,
    /// The host's boot id when the supervisor started.
    #[serde(default)]
    pub boot_id: Option<String>,
    /// How the workload ended, once it has.
    pub outcome: Option<ExitOutcome>,
}

/// The state a run is in, as `vmc ps` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// The supervising vmc is alive and the workload has not ended.
    Running,
    /// The workload ended with this outcome.
    Exited(ExitOutcome),
    /// The supervising vmc ended, or cannot be told apart from another process, without
    /// recording an outcome.
    Dead,
}

impl RunRecord {
    /// Creates the record of the run `spec` of `image` (as given on the command line) that
    /// starts now, supervised by this process.
    pub fn starting(name: &str, mode: Mode, image: &str, spec: &RunSpec) -> Self {
        let me = ProcessIdentity::current();
        RunRecord {
            id: spec.id.clone(),
            name: name.to_string(),
            mode,
            image: image.to_string(),
            image_id: spec.image_id.clone(),
            command: spec.args.clone(),
            created: crate::units::unix_now().max(0) as u64,
            supervisor_pid: std::process::id() as i32,
            supervisor_start_time: me.as_ref().map(|me| me.start_time),
            boot_id: me.map(|me| me.boot_id),
            outcome: None,
        }
    }

    /// The supervising vmc as recorded, if the record names it beyond its pid.
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
            None if self.supervisor().is_some_and(|s| s.is_alive()) => RunStatus::Running,
            None => RunStatus::Dead,
        }
    }
}

/// The directory of all run records.
pub struct RunStore {
    dir: PathBuf,
}

impl RunStore {
    /// Opens (and creates) the run directory `$VMC_HOME/runs`, in a home private to its owner
    /// (as the image store makes it: `vmc ps` may be the first command run).
    pub fn open() -> Result<Self> {
        let home = vmc_runtime::paths::vmc_home();
        vmc_runtime::paths::ensure_private_home(&home).with_context(|| {
            format!(
                "cannot make the vmc home {} private to its owner: give VMC_HOME a directory of its own",
                home.display()
            )
        })?;
        let dir = vmc_runtime::paths::runs_dir();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the run directory {}", dir.display()))?;
        Ok(RunStore { dir })
    }

    /// The scratch directory of run `id`.
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Writes `record` atomically into its run directory (created if needed).
    pub fn save(&self, record: &RunRecord) -> Result<()> {
        let dir = self.run_dir(&record.id);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let tmp = dir.join("state.json.tmp");
        if let Err(err) = std::fs::write(&tmp, serde_json::to_vec_pretty(record)?) {
            // A full disk leaves a partial file: do not keep it taking space.
            let _ = std::fs::remove_file(&tmp);
            return Err(err).with_context(|| format!("cannot write {}", tmp.display()));
        }
        std::fs::rename(&tmp, dir.join("state.json"))
            .with_context(|| format!("cannot write the state of run {}", record.id))?;
        Ok(())
    }

    /// All records, oldest first. Directories without a readable record are skipped.
    pub fn list(&self) -> Result<Vec<RunRecord>> {
        let mut records = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path().join("state.json");
            if let Some(record) = read_record(&path) {
                records.push(record);
            }
        }
        records.sort_by_key(|r| r.created);
        Ok(records)
    }

    /// Finds a run by name, full id or unique id prefix.
    pub fn find(&self, reference: &str) -> Result<RunRecord> {
        let records = self.list()?;
        if let Some(record) = records.iter().find(|r| r.name == reference) {
            return Ok(record.clone());
        }
        let matches: Vec<_> = records
            .into_iter()
            .filter(|r| r.id.starts_with(reference))
            .collect();
        match matches.len() {
            1 => Ok(matches.into_iter().next().expect("one match")),
            0 => bail!("no such run: {reference} (see `vmc ps -a`)"),
            _ => bail!("run id prefix {reference} is ambiguous: give more digits"),
        }
    }

    /// What uses image `image_id` now: the first running run of it, described for an error
    /// message.
    pub fn running_user_of(&self, image_id: &str) -> Result<Option<String>> {
        Ok(self
            .list()?
            .into_iter()
            .find(|r| r.image_id == image_id && r.status() == RunStatus::Running)
            .map(|r| format!("the running {} run {}", r.mode.as_str(), r.name)))
    }

    /// Whether some run already uses `name`.
    pub fn name_taken(&self, name: &str) -> Result<bool> {
        Ok(self.list()?.iter().any(|r| r.name == name))
    }

    /// Deletes the record and scratch directory of run `id`.
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.run_dir(id);
        match std::fs::remove_dir_all(&dir) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(err).with_context(|| format!("cannot remove {}", dir.display()))
            }
            _ => Ok(()),
        }
    }
}

fn read_record(path: &Path) -> Option<RunRecord> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A new random run id: 64 hex digits from the kernel's random source.
pub fn new_run_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    let mut urandom = std::fs::File::open("/dev/urandom").context("cannot open /dev/urandom")?;
    std::io::Read::read_exact(&mut urandom, &mut bytes).context("cannot read /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_of_this_process() -> RunRecord {
        let me = ProcessIdentity::current().unwrap();
        RunRecord {
            id: "ab".into(),
            name: "n".into(),
            mode: Mode::Container,
            image: "busybox".into(),
            image_id: "cd".into(),
            command: Vec::new(),
            created: 0,
            supervisor_pid: me.pid,
            supervisor_start_time: Some(me.start_time),
            boot_id: Some(me.boot_id),
            outcome: None,
        }
    }

    #[test]
    fn record_of_a_dead_supervisor_is_dead() {
        let mut record = record_of_this_process();
        assert_eq!(record.status(), RunStatus::Running);
        record.supervisor_pid = i32::MAX;
        assert_eq!(record.status(), RunStatus::Dead);
        record.outcome = Some(ExitOutcome::Exited(3));
        assert_eq!(record.status(), RunStatus::Exited(ExitOutcome::Exited(3)));
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

    #[test]
    fn run_ids_are_64_hex_digits() {
        let id = new_run_id().unwrap();
        assert_eq!(id.len(), 64);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(id, new_run_id().unwrap());
    }
}
