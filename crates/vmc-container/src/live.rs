//! What `vmc exec` needs to find a running container: the workload's host pid and start time,
//! whether the run is rootless, and its spec (user, environment, working directory,
//! confinement). It is the runtime's own file in the run's directory, apart from the CLI's run
//! records.
//!
//! The supervising vmc writes it as a temporary file while the container process sets itself
//! up (a process keeps its start time across `execve`), and renames it into place once the
//! workload is executed: an exec never joins a container that is half built, and publishing
//! it costs no write. It stays when the workload exits — its start time then names no
//! process, and a later run of the directory replaces it — so that an ending run frees
//! nothing a full disk could give to the CLI's last record; [`remove`] deletes it with the
//! run.

use crate::error::ContainerError;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use vmc_runtime::process::start_time;
use vmc_runtime::RunSpec;

/// The file's name in the run directory.
const FILE: &str = "container.json";

/// A running container as its supervisor records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LiveContainer {
    /// The workload's pid in vmc's PID namespace (PID 1 of the container's).
    pub pid: i32,
    /// Its start time (`/proc/PID/stat` field 22): a later holder of the pid has another.
    pub start_time: u64,
    /// The container has its own user namespace (vmc ran without root).
    pub rootless: bool,
    /// What the run was started with.
    pub spec: RunSpec,
}

impl LiveContainer {
    /// The record of the container process `pid` of `spec`; `None` when it has exited
    /// already.
    pub fn of(pid: i32, rootless: bool, spec: &RunSpec) -> Option<Self> {
        Some(LiveContainer {
            pid,
            start_time: start_time(pid)?,
            rootless,
            spec: spec.clone(),
        })
    }

    /// Writes the record into `run_dir` under a temporary name: [`publish`] puts it in place.
    pub fn prepare(&self, run_dir: &Path) -> Result<(), ContainerError> {
        let bytes = serde_json::to_vec(self).map_err(io::Error::other);
        let tmp = tmp_file(run_dir);
        bytes
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .map_err(|source| {
                let _ = std::fs::remove_file(&tmp);
                ContainerError::RunDir {
                    action: "write",
                    path: tmp.clone(),
                    source,
                }
            })
    }

    /// The record in `run_dir`, if its workload is still the recorded process. `run` names
    /// the run in the error.
    pub fn load(run_dir: &Path, run: &str) -> Result<Self, ContainerError> {
        let not_running = || ContainerError::NotRunning(run.to_string());
        let bytes = match std::fs::read(file(run_dir)) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(not_running()),
            Err(source) => {
                return Err(ContainerError::RunDir {
                    action: "read",
                    path: file(run_dir),
                    source,
                })
            }
        };
        let live: LiveContainer = serde_json::from_slice(&bytes).map_err(|err| {
            ContainerError::Setup(format!(
                "{} is damaged ({err}): remove the run with `vmc rm -f {run}`",
                file(run_dir).display()
            ))
        })?;
        if !live.is_alive() {
            return Err(not_running());
        }
        Ok(live)
    }

    /// Whether the recorded workload still runs (its pid has the recorded start time).
    pub fn is_alive(&self) -> bool {
        self.pid > 0 && start_time(self.pid) == Some(self.start_time)
    }
}

/// Puts the record [`LiveContainer::prepare`] wrote in place: from now on `vmc exec` finds the
/// workload.
pub(crate) fn publish(run_dir: &Path) -> Result<(), ContainerError> {
    std::fs::rename(tmp_file(run_dir), file(run_dir)).map_err(|source| ContainerError::RunDir {
        action: "publish",
        path: file(run_dir),
        source,
    })
}

/// Deletes the record (published or not) from `run_dir`; missing is fine.
pub(crate) fn remove(run_dir: &Path) -> io::Result<()> {
    for path in [file(run_dir), tmp_file(run_dir)] {
        match std::fs::remove_file(path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
    }
    Ok(())
}

/// Deletes a record [`LiveContainer::prepare`] wrote that was never published (the run
/// failed before its workload ran).
pub(crate) fn discard_unpublished(run_dir: &Path) {
    let _ = std::fs::remove_file(tmp_file(run_dir));
}

fn file(run_dir: &Path) -> PathBuf {
    run_dir.join(FILE)
}

fn tmp_file(run_dir: &Path) -> PathBuf {
    run_dir.join(format!("{FILE}.tmp"))
}
