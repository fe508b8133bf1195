//! Per-run cgroups: `vmc/<run id>` with memory, CPU and pids limits and Docker's device
//! rules, on cgroup v2 (unified) or v1 (one hierarchy per controller, including the "hybrid"
//! layout where v2 is mounted at `unified/` without controllers).
//!
//! [`Hierarchy::detect`] looks at a cgroup root (normally `/sys/fs/cgroup`; unit tests use a
//! fake directory and mount table) and [`Hierarchy::create`] makes the run's cgroup behind the
//! [`RunCgroup`] trait, implemented by [`v1::V1Cgroup`] and [`v2::V2Cgroup`]. On v1 the run
//! has a cgroup in every hierarchy the host mounts, so that the cgroup namespace the
//! container unshares has the run's own cgroup as its root everywhere; [`mount`] shows those
//! hierarchies inside the container.

pub mod bpf_devices;
pub mod devices;
pub mod mount;
pub mod v1;
pub mod v2;

use crate::error::ContainerError;
use devices::DeviceRule;
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
    /// Moves process `pid` into the cgroup (in every hierarchy it spans).
    fn add_process(&self, pid: i32) -> Result<(), ContainerError>;
    /// Files a single-threaded process writes "0" into to move itself into the cgroup's v1
    /// hierarchies that enforce limits, first thing. On cgroup v1 a thread moving itself
    /// through `tasks` skips the global threadgroup lock, whose write side waits for an RCU
    /// grace period (milliseconds, the largest cost of a start).
    fn self_join_files(&self) -> Vec<PathBuf>;
    /// The `tasks` files of the other v1 hierarchies, which the process joins before it
    /// unshares its cgroup namespace, so that the namespace is rooted at the run's cgroup in
    /// every hierarchy.
    fn late_join_files(&self) -> Vec<PathBuf>;
    /// Creates the cgroups behind [`RunCgroup::late_join_files`] (while the process builds
    /// its filesystem). Returns how many.
    fn create_late(&self) -> Result<usize, ContainerError>;
    /// The cgroup v2 directory of the run (pure v2, or `unified/` on a hybrid host), which
    /// the first process is cloned into (`CLONE_INTO_CGROUP`, again without the lock).
    fn v2_dir(&self) -> Option<&Path>;
    /// Denies every device but `rules` (v1: the devices controller; v2: a BPF program).
    /// Returns how, for the trace.
    fn restrict_devices(&self, rules: &[DeviceRule]) -> Result<String, ContainerError>;
    /// How many times the kernel's OOM killer killed a process of this cgroup.
    fn oom_kills(&self) -> u64;
    /// A reader for the cgroup's current and peak memory use.
    fn memory(&self) -> CgroupMemory;
    /// Kills every process left in the cgroup, waits until it is empty and removes it.
    fn remove(&self) -> Result<(), ContainerError>;
}

/// One cgroup v1 hierarchy mounted under the cgroup root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Its mount point, e.g. `/sys/fs/cgroup/cpu,cpuacct`.
    pub dir: PathBuf,
    /// Its controllers (and name) as mount options, e.g. `cpu,cpuacct` or `name=systemd`.
    pub options: String,
}

impl V1Hierarchy {
    /// Whether the hierarchy carries `controller`.
    pub fn has(&self, controller: &str) -> bool {
        self.options.split(',').any(|o| o == controller)
    }
}

/// The cgroup layout of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// Pure cgroup v2: one tree at `root` with all controllers.
    V2 {
        /// The cgroup2 mount.
        root: PathBuf,
    },
    /// cgroup v1: one mount per hierarchy.
    V1 {
        /// The directory holding the mounts.
        root: PathBuf,
        /// Every v1 hierarchy mounted directly under `root`.
        hierarchies: Vec<V1Hierarchy>,
        /// The controller-less cgroup2 mount of a hybrid host (`root/unified`).
        unified: Option<PathBuf>,
        /// Symbolic links under `root` naming a hierarchy (`cpu -> cpu,cpuacct`).
        links: Vec<(String, String)>,
    },
}

/// Mount options that are not a controller or a hierarchy name.
const GENERIC_OPTIONS: [&str; 8] = [
    "rw",
    "ro",
    "noprefix",
    "xattr",
    "clone_children",
    "cpuset_v2_mode",
    "favordynmods",
    "nofavordynmods",
];

impl Hierarchy {
    /// Finds out which cgroup version is mounted at `root` (v1 hierarchies from this
    /// process's mount table).
    pub fn detect(root: &Path) -> Result<Hierarchy, ContainerError> {
        if root.join("cgroup.controllers").exists() {
            return Ok(Hierarchy::V2 {
                root: root.to_path_buf(),
            });
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        Self::v1_from_mountinfo(root, &mountinfo)
    }

    /// The v1 layout under `root` as mount table `mountinfo` (`/proc/self/mountinfo`'s
    /// format) describes it.
    pub fn v1_from_mountinfo(root: &Path, mountinfo: &str) -> Result<Hierarchy, ContainerError> {
        let mut hierarchies: Vec<V1Hierarchy> = Vec::new();
        let mut unified = None;
        for line in mountinfo.lines() {
            let Some((mount, fs)) = line.split_once(" - ") else {
                continue;
            };
            let (Some(point), mut fs) = (mount.split(' ').nth(4), fs.split(' ')) else {
                continue;
            };
            let dir = PathBuf::from(point);
            // Escaped names (\040 for a space) are not cgroup hierarchies vmc made or knows.
            if point.contains('\\') || dir.parent() != Some(root) {
                continue;
            }
            match (fs.next(), fs.nth(1)) {
                (Some("cgroup"), Some(options)) => {
                    let options = options
                        .split(',')
                        .filter(|o| {
                            o.starts_with("name=")
                                || !(o.contains('=') || GENERIC_OPTIONS.contains(o))
                        })
                        .collect::<Vec<_>>()
                        .join(",");
                    // A later mount on the same point hides the earlier one.
                    hierarchies.retain(|h| h.dir != dir);
                    hierarchies.push(V1Hierarchy { dir, options });
                }
                (Some("cgroup2"), _) => unified = Some(dir),
                _ => {}
            }
        }
        if hierarchies.is_empty() {
            return Err(ContainerError::NoCgroups(root.to_path_buf()));
        }
        let links = std::fs::read_dir(root)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|entry| {
                        let target = std::fs::read_link(entry.path()).ok()?;
                        let target = target.to_str()?.to_string();
                        hierarchies
                            .iter()
                            .any(|h| h.dir.file_name() == Some(target.as_ref()))
                            .then(|| Some((entry.file_name().to_str()?.to_string(), target)))?
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Hierarchy::V1 {
            root: root.to_path_buf(),
            hierarchies,
            unified,
            links,
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
                hierarchies,
                unified,
                ..
            } => {
                let mounts = v1::Mounts {
                    root,
                    hierarchies,
                    unified: unified.as_deref(),
                };
                let (cgroup, settings) = v1::V1Cgroup::create(&mounts, id, limits)?;
                Ok((Box::new(cgroup), settings))
            }
        }
    }

    /// Kills the processes of `vmc/<id>` and removes it, in every hierarchy where it exists
    /// (the leftovers of a crashed vmc). Returns whether anything was found.
    pub fn remove_leftover(&self, id: &str) -> Result<bool, ContainerError> {
        let dirs = self.run_cgroup_dirs(id)?;
        for dir in &dirs {
            kill_and_remove(dir, None)?;
        }
        Ok(!dirs.is_empty())
    }

    /// The directories of run `id`'s cgroup `vmc/<id>` that exist: one on v2; on v1 one per
    /// hierarchy, plus the one in `unified/` of a hybrid host.
    pub fn run_cgroup_dirs(&self, id: &str) -> Result<Vec<PathBuf>, ContainerError> {
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
        Ok(dirs.into_iter().filter(|dir| dir.is_dir()).collect())
    }

    /// The memory reader of run `id`'s cgroup (which need not exist yet).
    pub fn memory_of(&self, id: &str) -> Result<CgroupMemory, ContainerError> {
        match self {
            Hierarchy::V2 { root } => Ok(v2::memory_reader(&root.join(PARENT).join(id))),
            Hierarchy::V1 {
                root, hierarchies, ..
            } => {
                let memory = hierarchies
                    .iter()
                    .find(|h| h.has("memory"))
                    .ok_or_else(|| ContainerError::MissingController {
                        controller: "memory",
                        root: root.clone(),
                    })?;
                Ok(v1::memory_reader(&memory.dir.join(PARENT).join(id)))
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

    /// A mount table line for `point` (the host's format: optional fields, then " - ").
    pub(crate) fn mount_line(point: &Path, fstype: &str, options: &str) -> String {
        format!(
            "40 31 0:37 / {} rw,nosuid,nodev,noexec,relatime shared:9 - {fstype} {fstype} {options}\n",
            point.display()
        )
    }

    /// A fake hybrid host like this one: hierarchies as directories, their mount table, a
    /// co-mounted cpu,cpuacct with its two links.
    pub(crate) fn fake_hybrid_host(root: &Path) -> String {
        let mut mountinfo = mount_line(Path::new("/sys/fs/cgroup"), "tmpfs", "rw,mode=755");
        for (dir, options) in [
            ("cpu,cpuacct", "rw,cpu,cpuacct"),
            ("cpuset", "rw,cpuset,clone_children"),
            ("memory", "rw,memory"),
            ("devices", "rw,devices"),
            ("pids", "rw,pids"),
            (
                "systemd",
                "rw,xattr,release_agent=/lib/systemd/agent,name=systemd",
            ),
        ] {
            std::fs::create_dir_all(root.join(dir).join(PARENT)).unwrap();
            mountinfo += &mount_line(&root.join(dir), "cgroup", options);
        }
        std::fs::create_dir_all(root.join("unified")).unwrap();
        mountinfo += &mount_line(&root.join("unified"), "cgroup2", "rw,nsdelegate");
        // Not directly under the root: ignored.
        mountinfo += &mount_line(&root.join("memory/vmc"), "cgroup", "rw,memory");
        for link in ["cpu", "cpuacct"] {
            std::os::unix::fs::symlink("cpu,cpuacct", root.join(link)).unwrap();
        }
        mountinfo
    }

    #[test]
    fn detects_every_v1_hierarchy_from_the_mount_table() {
        let root = tempfile::tempdir().unwrap();
        let mountinfo = fake_hybrid_host(root.path());
        let hierarchy = Hierarchy::v1_from_mountinfo(root.path(), &mountinfo).unwrap();
        let Hierarchy::V1 {
            hierarchies,
            unified,
            mut links,
            ..
        } = hierarchy.clone()
        else {
            panic!("not v1: {hierarchy:?}");
        };
        let found: Vec<(String, &str)> = hierarchies
            .iter()
            .map(|h| {
                (
                    h.dir.file_name().unwrap().to_string_lossy().into_owned(),
                    h.options.as_str(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("cpu,cpuacct".to_string(), "cpu,cpuacct"),
                ("cpuset".to_string(), "cpuset"),
                ("memory".to_string(), "memory"),
                ("devices".to_string(), "devices"),
                ("pids".to_string(), "pids"),
                ("systemd".to_string(), "name=systemd"),
            ]
        );
        assert!(hierarchies[0].has("cpu") && hierarchies[0].has("cpuacct"));
        assert!(!hierarchies[0].has("cpuset"));
        assert_eq!(unified, Some(root.path().join("unified")));
        links.sort();
        assert_eq!(
            links,
            [
                ("cpu".to_string(), "cpu,cpuacct".to_string()),
                ("cpuacct".to_string(), "cpu,cpuacct".to_string())
            ]
        );
        assert_eq!(hierarchy.version(), "v1");
        // A v1 host without the hybrid cgroup2 mount.
        let pure: String = mountinfo
            .lines()
            .filter(|l| !l.contains("cgroup2"))
            .map(|l| format!("{l}\n"))
            .collect();
        let Hierarchy::V1 { unified, .. } =
            Hierarchy::v1_from_mountinfo(root.path(), &pure).unwrap()
        else {
            panic!("not v1");
        };
        assert_eq!(unified, None);
    }

    #[test]
    fn no_cgroup_filesystem_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        let err = Hierarchy::detect(root.path()).unwrap_err();
        assert!(err.to_string().contains("no cgroup filesystem"), "{err}");
        // A cgroup2 mount alone, but not at the root, is no v1 host either.
        let only_unified = mount_line(&root.path().join("unified"), "cgroup2", "rw");
        assert!(Hierarchy::v1_from_mountinfo(root.path(), &only_unified).is_err());
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
        let mountinfo = fake_hybrid_host(root.path());
        for dir in ["memory", "pids", "systemd", "unified"] {
            std::fs::create_dir_all(root.path().join(dir).join("vmc/abc")).unwrap();
        }
        let hierarchy = Hierarchy::v1_from_mountinfo(root.path(), &mountinfo).unwrap();
        assert!(hierarchy.remove_leftover("abc").unwrap());
        for dir in ["memory", "pids", "systemd", "unified"] {
            assert!(!root.path().join(dir).join("vmc/abc").exists());
        }
        assert!(!hierarchy.remove_leftover("abc").unwrap());
    }
}
