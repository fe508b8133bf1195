//! Per-run cgroups: `vmc/<run id>` with memory, CPU and pids limits, on cgroup v2 (unified)
//! or v1 (one hierarchy per controller, including the "hybrid" layout where v2 is mounted at
//! `unified/` without controllers).
//!
//! [`Hierarchy::detect`] looks at a cgroup root (normally `/sys/fs/cgroup`; unit tests use a
//! fake directory) and [`Hierarchy::create`] makes the run's cgroup behind the [`RunCgroup`]
//! trait, implemented by [`v1::V1Cgroup`] and [`v2::V2Cgroup`].

pub mod v1;
pub mod v2;

use crate::error::ContainerError;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the host's cgroup filesystems are mounted.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

/// The directory under each hierarchy that holds all run cgroups.
pub const PARENT: &str = "vmc";

/// How long removal waits for a killed cgroup to become empty.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The limits a run's cgroup enforces.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    /// Memory limit in bytes (swap is not allowed on top of it).
    pub memory_bytes: Option<u64>,
    /// CPU quota in CPUs (1.5 = 150 ms of CPU time per 100 ms period).
    pub cpus: Option<f64>,
    /// Maximum number of processes.
    pub pids_limit: Option<i64>,
}

impl From<vmc_runtime::Resources> for Limits {
    fn from(resources: vmc_runtime::Resources) -> Self {
        Limits {
            memory_bytes: resources.memory_bytes,
            cpus: resources.cpus,
            pids_limit: resources.pids_limit,
        }
    }
}

/// The CFS period vmc uses for CPU quotas, in microseconds.
pub const CPU_PERIOD_US: u64 = 100_000;

/// The CPU quota per [`CPU_PERIOD_US`] for `cpus` CPUs, in microseconds (at least 1 ms).
pub fn cpu_quota_us(cpus: f64) -> u64 {
    ((cpus * CPU_PERIOD_US as f64).round() as u64).max(1000)
}

/// One run's cgroup, in whichever cgroup version the host uses.
pub trait RunCgroup {
    /// The cgroup's path for messages, e.g. `/sys/fs/cgroup/memory/vmc/<id>`.
    fn describe(&self) -> String;
    /// Moves process `pid` into the cgroup (in every hierarchy it spans).
    fn add_process(&self, pid: i32) -> Result<(), ContainerError>;
    /// Files a single-threaded process writes "0" into to move itself into the cgroup, or
    /// none when the cgroup version needs [`RunCgroup::add_process`] instead. On cgroup v1 a
    /// thread moving itself through `tasks` skips the global threadgroup lock, whose write
    /// side waits for an RCU grace period (milliseconds, the largest cost of a start).
    fn self_join_files(&self) -> Vec<PathBuf>;
    /// How many times the kernel's OOM killer killed a process of this cgroup.
    fn oom_kills(&self) -> u64;
    /// A reader for the cgroup's current and peak memory use.
    fn memory(&self) -> CgroupMemory;
    /// Kills every process left in the cgroup, waits until it is empty and removes it.
    fn remove(&self) -> Result<(), ContainerError>;
}

/// The cgroup layout of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// Pure cgroup v2: one tree at `root` with all controllers.
    V2 {
        /// The cgroup2 mount.
        root: PathBuf,
    },
    /// cgroup v1: one mount per controller (absent controllers are `None`).
    V1 {
        /// The directory holding the per-controller mounts.
        root: PathBuf,
        /// The memory controller's mount.
        memory: Option<PathBuf>,
        /// The cpu controller's mount.
        cpu: Option<PathBuf>,
        /// The pids controller's mount.
        pids: Option<PathBuf>,
    },
}

impl Hierarchy {
    /// Finds out which cgroup version is mounted at `root`.
    pub fn detect(root: &Path) -> Result<Hierarchy, ContainerError> {
        if root.join("cgroup.controllers").exists() {
            return Ok(Hierarchy::V2 {
                root: root.to_path_buf(),
            });
        }
        let controller = |dir: &str, probe: &str| {
            let path = root.join(dir);
            path.join(probe).exists().then_some(path)
        };
        let memory = controller("memory", "memory.limit_in_bytes");
        let cpu = controller("cpu", "cpu.cfs_quota_us");
        // The root of the pids hierarchy has no pids.* files.
        let pids = controller("pids", "cgroup.procs");
        if memory.is_none() && cpu.is_none() && pids.is_none() {
            return Err(ContainerError::NoCgroups(root.to_path_buf()));
        }
        Ok(Hierarchy::V1 {
            root: root.to_path_buf(),
            memory,
            cpu,
            pids,
        })
    }

    /// "v1" or "v2", for messages.
    pub fn version(&self) -> &'static str {
        match self {
            Hierarchy::V1 { .. } => "v1",
            Hierarchy::V2 { .. } => "v2",
        }
    }

    /// Creates the cgroup `vmc/<id>` and writes `limits` into it. Returns the cgroup and the
    /// settings written, as `file=value` strings for the trace.
    pub fn create(
        &self,
        id: &str,
        limits: &Limits,
    ) -> Result<(Box<dyn RunCgroup>, Vec<String>), ContainerError> {
        match self {
            Hierarchy::V2 { root } => {
                let (cgroup, settings) = v2::V2Cgroup::create(root, id, limits)?;
                Ok((Box::new(cgroup), settings))
            }
            Hierarchy::V1 {
                root,
                memory,
                cpu,
                pids,
            } => {
                let mounts = v1::Mounts {
                    root,
                    memory: memory.as_deref(),
                    cpu: cpu.as_deref(),
                    pids: pids.as_deref(),
                };
                let (cgroup, settings) = v1::V1Cgroup::create(&mounts, id, limits)?;
                Ok((Box::new(cgroup), settings))
            }
        }
    }

    /// Kills the processes of `vmc/<id>` and removes it, in every hierarchy where it exists
    /// (the leftovers of a crashed vmc). Returns whether anything was found.
    pub fn remove_leftover(&self, id: &str) -> Result<bool, ContainerError> {
        let dirs: Vec<PathBuf> = match self {
            Hierarchy::V2 { root } => vec![root.join(PARENT).join(id)],
            Hierarchy::V1 { root, .. } => std::fs::read_dir(root)
                .map_err(|source| ContainerError::Cgroup {
                    action: "cannot list".into(),
                    path: root.clone(),
                    source,
                })?
                .flatten()
                .map(|entry| entry.path().join(PARENT).join(id))
                .collect(),
        };
        let mut found = false;
        for dir in dirs.iter().filter(|dir| dir.is_dir()) {
            found = true;
            kill_and_remove(dir, None)?;
        }
        Ok(found)
    }

    /// The memory reader of run `id`'s cgroup (which need not exist yet).
    pub fn memory_of(&self, id: &str) -> Result<CgroupMemory, ContainerError> {
        match self {
            Hierarchy::V2 { root } => Ok(v2::memory_reader(&root.join(PARENT).join(id))),
            Hierarchy::V1 { root, memory, .. } => {
                let memory =
                    memory
                        .as_deref()
                        .ok_or_else(|| ContainerError::MissingController {
                            controller: "memory",
                            root: root.clone(),
                        })?;
                Ok(v1::memory_reader(&memory.join(PARENT).join(id)))
            }
        }
    }
}

/// Reads a run cgroup's memory use: what the issue-6 memory sampler polls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMemory {
    current: PathBuf,
    peak: PathBuf,
}

impl CgroupMemory {
    /// The memory reader of run `id` on this host (`/sys/fs/cgroup`, v1 or v2).
    pub fn for_run(id: &str) -> Result<CgroupMemory, ContainerError> {
        Hierarchy::detect(Path::new(DEFAULT_ROOT))?.memory_of(id)
    }

    /// Current and peak memory use in bytes (v2 `memory.current`/`memory.peak`, v1
    /// `memory.usage_in_bytes`/`memory.max_usage_in_bytes`). The peak is `None` on kernels
    /// older than 5.19 with cgroup v2, which have no `memory.peak`.
    pub fn read(&self) -> io::Result<(u64, Option<u64>)> {
        let current = read_u64(&self.current)?;
        let peak = match read_u64(&self.peak) {
            Ok(peak) => Some(peak),
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) => return Err(err),
        };
        Ok((current, peak))
    }
}

/// Reads a file holding one decimal number.
pub(crate) fn read_u64(path: &Path) -> io::Result<u64> {
    let text = std::fs::read_to_string(path)?;
    text.trim().parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a number: {text:?}"),
        )
    })
}

/// The value of `key` in a flat-keyed file such as `memory.events` ("oom_kill 3").
pub(crate) fn keyed_value(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok())?
    })
}

/// Writes `value` to the control file `dir/file`; returns "file=value" for the trace.
pub(crate) fn write_control(dir: &Path, file: &str, value: &str) -> Result<String, ContainerError> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(|source| ContainerError::Cgroup {
        action: format!("cannot write {value:?} to"),
        path,
        source,
    })?;
    Ok(format!("{file}={value}"))
}

/// Creates `dir` (and `vmc/` above it when missing).
pub(crate) fn make_dir(dir: &Path) -> Result<(), ContainerError> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|source| cannot_create(dir, source))
        }
        Err(source) => Err(cannot_create(dir, source)),
    }
}

fn cannot_create(dir: &Path, source: io::Error) -> ContainerError {
    ContainerError::Cgroup {
        action: "cannot create".into(),
        path: dir.to_path_buf(),
        source,
    }
}

/// The process ids listed in `dir/cgroup.procs` (none when the file is missing).
pub(crate) fn processes(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect()
}

/// SIGKILLs everything in `dir` (with `cgroup.kill` when `kill_file` names it), waits until the
/// cgroup is empty, then removes it. A missing directory counts as removed.
pub(crate) fn kill_and_remove(dir: &Path, kill_file: Option<&str>) -> Result<(), ContainerError> {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) if err.raw_os_error() == Some(libc::EBUSY) => {}
            Err(source) => {
                return Err(ContainerError::Cgroup {
                    action: "cannot remove".into(),
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
        if Instant::now() > deadline {
            return Err(ContainerError::CgroupBusy(dir.to_path_buf()));
        }
        let killed_at_once =
            kill_file.is_some_and(|file| std::fs::write(dir.join(file), "1").is_ok());
        if !killed_at_once {
            for pid in processes(dir) {
                // A process that already exited makes kill fail with ESRCH: nothing to do.
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_v2_by_cgroup_controllers() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        assert_eq!(
            Hierarchy::detect(root.path()).unwrap(),
            Hierarchy::V2 {
                root: root.path().to_path_buf()
            }
        );
    }

    #[test]
    fn detects_v1_controllers_and_hybrid_layout() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("memory")).unwrap();
        std::fs::write(root.path().join("memory/memory.limit_in_bytes"), "").unwrap();
        // Hybrid: an empty cgroup2 mount at unified/ does not make the host v2.
        std::fs::create_dir_all(root.path().join("unified")).unwrap();
        let hierarchy = Hierarchy::detect(root.path()).unwrap();
        assert_eq!(
            hierarchy,
            Hierarchy::V1 {
                root: root.path().to_path_buf(),
                memory: Some(root.path().join("memory")),
                cpu: None,
                pids: None,
            }
        );
        assert_eq!(hierarchy.version(), "v1");
    }

    #[test]
    fn no_cgroup_filesystem_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        let err = Hierarchy::detect(root.path()).unwrap_err();
        assert!(err.to_string().contains("no cgroup filesystem"), "{err}");
    }

    #[test]
    fn cpu_quota_scales_with_cpus() {
        assert_eq!(cpu_quota_us(1.0), 100_000);
        assert_eq!(cpu_quota_us(0.5), 50_000);
        assert_eq!(cpu_quota_us(2.25), 225_000);
        assert_eq!(cpu_quota_us(0.0001), 1000);
    }

    #[test]
    fn keyed_values_are_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("memory.events");
        std::fs::write(&file, "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\n").unwrap();
        assert_eq!(keyed_value(&file, "oom_kill"), Some(1));
        assert_eq!(keyed_value(&file, "oom"), Some(2));
        assert_eq!(keyed_value(&file, "missing"), None);
    }

    #[test]
    fn leftovers_are_removed_from_every_v1_hierarchy() {
        let root = tempfile::tempdir().unwrap();
        for controller in ["memory", "pids", "freezer"] {
            std::fs::create_dir_all(root.path().join(controller).join("vmc/abc")).unwrap();
        }
        std::fs::write(root.path().join("memory/memory.limit_in_bytes"), "").unwrap();
        let hierarchy = Hierarchy::detect(root.path()).unwrap();
        assert!(hierarchy.remove_leftover("abc").unwrap());
        for controller in ["memory", "pids", "freezer"] {
            assert!(!root.path().join(controller).join("vmc/abc").exists());
        }
        assert!(!hierarchy.remove_leftover("abc").unwrap());
    }
}
