//! The run directories, `$VMC_HOME/runs/<id>/`: the record (`state.json`), the spec a run is
//! started from again (`spec.json`), the log (`container.log`) and the control FIFO
//! (`control`).

use crate::error::{Result, RunsError};
use crate::record::RunRecord;
use std::path::{Path, PathBuf};
use vmc_runtime::RunSpec;

/// The directory of all runs.
#[derive(Debug, Clone)]
pub struct RunStore {
    dir: PathBuf,
}

impl RunStore {
    /// Opens (and creates) the run directory `$VMC_HOME/runs`, in a home private to its owner
    /// (as the image store makes it: `vmc ps` may be the first command run).
    pub fn open() -> Result<Self> {
        let home = vmc_runtime::paths::vmc_home();
        vmc_runtime::paths::ensure_private_home(&home).map_err(|err| {
            RunsError::io(
                format!(
                    "cannot make the vmc home {} private to its owner: give VMC_HOME a directory of its own",
                    home.display()
                ),
                err,
            )
        })?;
        Self::at(vmc_runtime::paths::runs_dir())
    }

    /// Opens (and creates) a run directory at `dir`.
    pub fn at(dir: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&dir).map_err(|err| {
            RunsError::io(
                format!("cannot create the run directory {}", dir.display()),
                err,
            )
        })?;
        Ok(RunStore { dir })
    }

    /// The directory of run `id`.
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Writes `record` atomically into its run directory (created if needed).
    pub fn save(&self, record: &RunRecord) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(record)
            .map_err(|err| RunsError::json("encoding a run record", err))?;
        self.write_atomically(&record.id, "state.json", &bytes)
    }

    /// Keeps the spec of run `spec.id`, which `vmc start` runs again.
    pub fn save_spec(&self, spec: &RunSpec) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(spec)
            .map_err(|err| RunsError::json("encoding a run spec", err))?;
        self.write_atomically(&spec.id, "spec.json", &bytes)
    }

    /// The spec run `id` was started from.
    pub fn load_spec(&self, id: &str) -> Result<RunSpec> {
        let path = self.run_dir(id).join("spec.json");
        let bytes = match std::fs::read(&path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(RunsError::NoSpec(id[..12.min(id.len())].to_string()))
            }
            other => other
                .map_err(|err| RunsError::io(format!("cannot read {}", path.display()), err))?,
        };
        serde_json::from_slice(&bytes)
            .map_err(|err| RunsError::json(format!("cannot read {}", path.display()), err))
    }

    fn write_atomically(&self, id: &str, file: &str, bytes: &[u8]) -> Result<()> {
        let dir = self.run_dir(id);
        std::fs::create_dir_all(&dir)
            .map_err(|err| RunsError::io(format!("cannot create {}", dir.display()), err))?;
        let tmp = dir.join(format!("{file}.tmp"));
        if let Err(err) = std::fs::write(&tmp, bytes) {
            // A full disk leaves a partial file: do not keep it taking space.
            let _ = std::fs::remove_file(&tmp);
            return Err(RunsError::io(
                format!("cannot write {}", tmp.display()),
                err,
            ));
        }
        std::fs::rename(&tmp, dir.join(file))
            .map_err(|err| RunsError::io(format!("cannot write the {file} of run {id}"), err))
    }

    /// The record of run `id` as it is on disk now.
    pub fn load(&self, id: &str) -> Result<RunRecord> {
        read_record(&self.run_dir(id).join("state.json"))
            .ok_or_else(|| RunsError::NoSuchRun(id.to_string()))
    }

    /// All records, oldest first. Directories without a readable record are skipped.
    pub fn list(&self) -> Result<Vec<RunRecord>> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|err| RunsError::io(format!("cannot list {}", self.dir.display()), err))?;
        let mut records: Vec<RunRecord> = entries
            .filter_map(|entry| read_record(&entry.ok()?.path().join("state.json")))
            .collect();
        records.sort_by_key(|r| r.created);
        Ok(records)
    }

    /// Finds a run by name, full id or unique id prefix.
    pub fn find(&self, reference: &str) -> Result<RunRecord> {
        let records = self.list()?;
        if let Some(record) = records.iter().find(|r| r.name == reference) {
            return Ok(record.clone());
        }
        let mut matches = records
            .into_iter()
            .filter(|r| !reference.is_empty() && r.id.starts_with(reference));
        match (matches.next(), matches.next()) {
            (Some(record), None) => Ok(record),
            (None, _) => Err(RunsError::NoSuchRun(reference.to_string())),
            (Some(_), Some(_)) => Err(RunsError::AmbiguousRun(reference.to_string())),
        }
    }

    /// What uses image `image_id` now: the first live run of it, described for an error
    /// message.
    pub fn running_user_of(&self, image_id: &str) -> Result<Option<String>> {
        Ok(self
            .list()?
            .into_iter()
            .find(|r| r.image_id == image_id && r.status().is_live())
            .map(|r| format!("the running {} run {}", r.mode.as_str(), r.name)))
    }

    /// Whether some run already uses `name`.
    pub fn name_taken(&self, name: &str) -> Result<bool> {
        Ok(self.list()?.iter().any(|r| r.name == name))
    }

    /// Whether run `id` is live now (its record says Created or Up).
    pub fn is_live(&self, id: &str) -> bool {
        self.load(id).is_ok_and(|r| r.status().is_live())
    }

    /// Deletes the directory of run `id`: record, spec, log and control FIFO.
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.run_dir(id);
        match std::fs::remove_dir_all(&dir) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(RunsError::io(
                format!("cannot remove {}", dir.display()),
                err,
            )),
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
    std::fs::File::open("/dev/urandom")
        .and_then(|mut urandom| std::io::Read::read_exact(&mut urandom, &mut bytes))
        .map_err(|err| RunsError::io("cannot read /dev/urandom", err))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_64_hex_digits() {
        let id = new_run_id().unwrap();
        assert_eq!(id.len(), 64);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(id, new_run_id().unwrap());
    }
}
