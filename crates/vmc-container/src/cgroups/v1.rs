//! cgroup v1: the run's cgroup is one directory `vmc/<id>` in every hierarchy of the host
//! (and in the controller-less cgroup2 tree of a hybrid host).

use super::devices::DeviceRule;
use super::{
    cpu_quota_us, keyed_value, kill_and_remove, make_dir, read_u64, write_control, CgroupMemory,
    Limits, RunCgroup, V1Hierarchy, CPU_PERIOD_US, PARENT,
};
use crate::error::ContainerError;
use std::path::{Path, PathBuf};

/// The hierarchies a v1 host offers.
#[derive(Debug, Clone, Copy)]
pub struct Mounts<'a> {
    /// The directory holding the mounts (for messages).
    pub root: &'a Path,
    /// Every v1 hierarchy.
    pub hierarchies: &'a [V1Hierarchy],
    /// The cgroup2 mount of a hybrid host.
    pub unified: Option<&'a Path>,
}

impl Mounts<'_> {
    /// The hierarchy carrying `controller`, or the error naming it.
    fn require(&self, controller: &'static str) -> Result<&V1Hierarchy, ContainerError> {
        self.hierarchies
            .iter()
            .find(|h| h.has(controller))
            .ok_or_else(|| ContainerError::MissingController {
                controller,
                root: self.root.to_path_buf(),
            })
    }
}

/// A run's cgroup on a v1 host: `vmc/<id>` in every hierarchy, so that its cgroup namespace
/// shows the run's own cgroup everywhere. The hierarchies that enforce a limit are made
/// before the first process exists (it joins them at once); the others while it builds its
/// filesystem (it joins them before unsharing its cgroup namespace).
#[derive(Debug)]
pub struct V1Cgroup {
    /// The directory holding the hierarchies (for messages).
    root: PathBuf,
    /// In the memory hierarchy (accounting, OOM detection; it is removed first).
    memory: PathBuf,
    /// In the cpu and pids hierarchies, when those limits are set.
    limited: Vec<PathBuf>,
    /// In every other hierarchy.
    others: Vec<PathBuf>,
    /// In the cpuset hierarchy (one of `others`), when the host has one.
    cpuset: Option<PathBuf>,
    /// In the devices hierarchy, when the host has one.
    devices: Option<PathBuf>,
    /// In the cgroup2 tree of a hybrid host.
    unified: Option<PathBuf>,
}

impl V1Cgroup {
    /// Creates `vmc/<id>` in the memory hierarchy, the hierarchies `limits` need and the
    /// cgroup2 tree of a hybrid host, and writes the limits.
    pub fn create(
        mounts: &Mounts,
        id: &str,
        limits: &Limits,
    ) -> Result<(V1Cgroup, Vec<String>), ContainerError> {
        let run = |h: &V1Hierarchy| h.dir.join(PARENT).join(id);
        let memory = run(mounts.require("memory")?);
        let cpu = limits
            .cpus
            .map(|_| mounts.require("cpu").map(run))
            .transpose()?;
        let pids = limits
            .pids_limit
            .map(|_| mounts.require("pids").map(run))
            .transpose()?;
        let limited: Vec<PathBuf> = cpu.iter().chain(pids.iter()).cloned().collect();
        let cgroup = V1Cgroup {
            root: mounts.root.to_path_buf(),
            others: mounts
                .hierarchies
                .iter()
                .map(run)
                .filter(|dir| *dir != memory && !limited.contains(dir))
                .collect(),
            limited,
            memory,
            cpuset: mounts.hierarchies.iter().find(|h| h.has("cpuset")).map(run),
            devices: mounts
                .hierarchies
                .iter()
                .find(|h| h.has("devices"))
                .map(run),
            unified: mounts.unified.map(|u| u.join(PARENT).join(id)),
        };
        let mut settings = Vec::new();
        let result = cgroup
            .make_dirs()
            .and_then(|()| cgroup.write_limits(limits, &cpu, &pids, &mut settings));
        if let Err(err) = result {
            // Do not leave half-made cgroups behind.
            let _ = cgroup.remove();
            return Err(err);
        }
        Ok((cgroup, settings))
    }

    fn make_dirs(&self) -> Result<(), ContainerError> {
        let early = std::iter::once(&self.memory).chain(&self.limited);
        for dir in early.chain(self.unified.iter()) {
            make_dir(dir)?;
        }
        Ok(())
    }

    fn write_limits(
        &self,
        limits: &Limits,
        cpu: &Option<PathBuf>,
        pids: &Option<PathBuf>,
        settings: &mut Vec<String>,
    ) -> Result<(), ContainerError> {
        if let Some(bytes) = limits.memory_bytes {
            let value = bytes.to_string();
            settings.push(write_control(
                &self.memory,
                "memory.limit_in_bytes",
                &value,
            )?);
            // Memory+swap equal to memory means no swap; the file exists only with swap accounting.
            if self.memory.join("memory.memsw.limit_in_bytes").exists() {
                settings.push(write_control(
                    &self.memory,
                    "memory.memsw.limit_in_bytes",
                    &value,
                )?);
            }
        }
        if let (Some(dir), Some(cpus)) = (cpu, limits.cpus) {
            settings.push(write_control(
                dir,
                "cpu.cfs_period_us",
                &CPU_PERIOD_US.to_string(),
            )?);
            settings.push(write_control(
                dir,
                "cpu.cfs_quota_us",
                &cpu_quota_us(cpus).to_string(),
            )?);
        }
        if let (Some(dir), Some(max)) = (pids, limits.pids_limit) {
            settings.push(write_control(dir, "pids.max", &max.to_string())?);
        }
        Ok(())
    }

    /// The run's directory in every v1 hierarchy, memory first.
    fn dirs(&self) -> impl Iterator<Item = &PathBuf> {
        std::iter::once(&self.memory)
            .chain(&self.limited)
            .chain(&self.others)
    }
}

/// Copies `cpuset.cpus` and `cpuset.mems` from the parent of `dir` where they are empty.
fn inherit_cpuset(dir: &Path) -> Result<(), ContainerError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let value = |d: &Path| std::fs::read_to_string(d.join(file)).unwrap_or_default();
        if value(dir).trim().is_empty() {
            write_control(dir, file, value(parent).trim())?;
        }
    }
    Ok(())
}

impl RunCgroup for V1Cgroup {
    fn add_process(&self, pid: i32) -> Result<(), ContainerError> {
        for dir in self.dirs().chain(self.unified.iter()) {
            write_control(dir, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    fn self_join_files(&self) -> Vec<PathBuf> {
        std::iter::once(&self.memory)
            .chain(&self.limited)
            .map(|dir| dir.join("tasks"))
            .collect()
    }

    fn late_join_files(&self) -> Vec<PathBuf> {
        self.others.iter().map(|dir| dir.join("tasks")).collect()
    }

    fn create_late(&self) -> Result<usize, ContainerError> {
        for dir in &self.others {
            make_dir(dir)?;
        }
        if let Some(dir) = &self.cpuset {
            // A cpuset cgroup takes no task until it has CPUs and memory nodes: copy the
            // parent's (first into vmc/, which the kernel made empty too).
            if let Some(parent) = dir.parent() {
                inherit_cpuset(parent)?;
            }
            inherit_cpuset(dir)?;
        }
        Ok(self.others.len())
    }

    fn v2_dir(&self) -> Option<&Path> {
        self.unified.as_deref()
    }

    fn restrict_devices(&self, rules: &[DeviceRule]) -> Result<String, ContainerError> {
        let dir = self
            .devices
            .as_ref()
            .ok_or_else(|| ContainerError::MissingController {
                controller: "devices",
                root: self.root.clone(),
            })?;
        write_control(dir, "devices.deny", "a")?;
        for rule in rules {
            write_control(dir, "devices.allow", &rule.to_string())?;
        }
        Ok(format!(
            "everything denied, then {} rules allowed (v1 devices.allow)",
            rules.len()
        ))
    }

    fn oom_kills(&self) -> u64 {
        // Kernels since 4.13 count kills in memory.oom_control; older ones only count limit
        // hits, which together with a SIGKILL death is the best evidence they offer.
        keyed_value(&self.memory.join("memory.oom_control"), "oom_kill")
            .or_else(|| read_u64(&self.memory.join("memory.failcnt")).ok())
            .unwrap_or(0)
    }

    fn memory(&self) -> CgroupMemory {
        memory_reader(&self.memory)
    }

    fn remove(&self) -> Result<(), ContainerError> {
        // Kill through the memory hierarchy (it holds every process), then remove the others.
        let mut result = kill_and_remove(&self.memory, None);
        for dir in self.dirs().skip(1).chain(self.unified.iter()) {
            let removed = kill_and_remove(dir, None);
            result = result.and(removed);
        }
        result
    }
}

/// The memory reader for the v1 memory cgroup `dir`.
pub(crate) fn memory_reader(dir: &Path) -> CgroupMemory {
    CgroupMemory {
        current: dir.join("memory.usage_in_bytes"),
        peak: dir.join("memory.max_usage_in_bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::devices::DEFAULT_RULES;
    use super::*;

    /// A fake v1 host: hierarchy dirs with `vmc/` pre-made, as mkdir on cgroupfs would, and
    /// a cpuset root with CPUs and memory nodes.
    fn fake_root(with_memsw: bool, names: &[&str]) -> (tempfile::TempDir, Vec<V1Hierarchy>) {
        let root = tempfile::tempdir().unwrap();
        let hierarchies = names
            .iter()
            .map(|name| {
                let dir = root.path().join(name);
                std::fs::create_dir_all(dir.join(PARENT)).unwrap();
                V1Hierarchy {
                    options: name.to_string(),
                    dir,
                }
            })
            .collect();
        if with_memsw {
            // On a real host the kernel creates this file in every new memory cgroup.
            let dir = root.path().join("memory/vmc/run1");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("memory.memsw.limit_in_bytes"), "").unwrap();
        }
        if names.contains(&"cpuset") {
            std::fs::write(root.path().join("cpuset/cpuset.cpus"), "0-3\n").unwrap();
            std::fs::write(root.path().join("cpuset/cpuset.mems"), "0\n").unwrap();
        }
        (root, hierarchies)
    }

    const ALL: [&str; 6] = [
        "memory",
        "cpu,cpuacct",
        "pids",
        "cpuset",
        "devices",
        "freezer",
    ];

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap()
    }

    #[test]
    fn joins_every_hierarchy_and_writes_all_limits() {
        let (root, hierarchies) = fake_root(true, &ALL);
        std::fs::create_dir_all(root.path().join("unified/vmc")).unwrap();
        let unified = root.path().join("unified");
        let m = Mounts {
            root: root.path(),
            hierarchies: &hierarchies,
            unified: Some(&unified),
        };
        let limits = Limits {
            memory_bytes: Some(32 << 20),
            cpus: Some(1.5),
            pids_limit: Some(64),
        };
        let (cgroup, settings) = V1Cgroup::create(&m, "run1", &limits).unwrap();
        let run = |c: &str| root.path().join(c).join("vmc/run1");
        // Only what the limits need exists before the first process does.
        assert!(!run("freezer").exists() && !run("cpuset").exists());
        let early = ["memory", "cpu,cpuacct", "pids"];
        let late = ["cpuset", "devices", "freezer"];
        let tasks = |names: &[&str]| -> Vec<PathBuf> {
            names.iter().map(|c| run(c).join("tasks")).collect()
        };
        assert_eq!(cgroup.self_join_files(), tasks(&early));
        assert_eq!(cgroup.late_join_files(), tasks(&late));
        assert_eq!(cgroup.create_late().unwrap(), 3);
        assert_eq!(
            read(&run("memory").join("memory.limit_in_bytes")),
            "33554432"
        );
        assert_eq!(
            read(&run("memory").join("memory.memsw.limit_in_bytes")),
            "33554432"
        );
        assert_eq!(read(&run("cpu,cpuacct").join("cpu.cfs_quota_us")), "150000");
        assert_eq!(
            read(&run("cpu,cpuacct").join("cpu.cfs_period_us")),
            "100000"
        );
        assert_eq!(read(&run("pids").join("pids.max")), "64");
        assert!(settings.contains(&"pids.max=64".to_string()));
        // cpuset: CPUs and memory nodes copied down through vmc/.
        assert_eq!(read(&root.path().join("cpuset/vmc/cpuset.cpus")), "0-3");
        assert_eq!(read(&run("cpuset").join("cpuset.cpus")), "0-3");
        assert_eq!(read(&run("cpuset").join("cpuset.mems")), "0");
        assert_eq!(cgroup.v2_dir(), Some(run("unified").as_path()));
        cgroup.add_process(4242).unwrap();
        for c in ALL.iter().chain(&["unified"]) {
            assert_eq!(read(&run(c).join("cgroup.procs")), "4242");
        }
    }

    #[test]
    fn without_limits_the_run_still_has_a_cgroup_in_every_hierarchy() {
        let (root, hierarchies) = fake_root(false, &["memory", "pids", "freezer"]);
        let m = Mounts {
            root: root.path(),
            hierarchies: &hierarchies,
            unified: None,
        };
        let (cgroup, settings) = V1Cgroup::create(&m, "run2", &Limits::default()).unwrap();
        assert!(settings.is_empty());
        assert_eq!(cgroup.create_late().unwrap(), 2);
        for c in ["memory", "pids", "freezer"] {
            assert!(root.path().join(c).join("vmc/run2").is_dir());
        }
        assert!(!root
            .path()
            .join("memory/vmc/run2/memory.memsw.limit_in_bytes")
            .exists());
        assert_eq!(cgroup.v2_dir(), None);
        assert_eq!(cgroup.self_join_files().len(), 1);
        assert_eq!(cgroup.late_join_files().len(), 2);
    }

    #[test]
    fn missing_controller_is_named() {
        let (root, hierarchies) = fake_root(false, &["memory"]);
        let m = Mounts {
            root: root.path(),
            hierarchies: &hierarchies,
            unified: None,
        };
        let limits = Limits {
            pids_limit: Some(10),
            ..Limits::default()
        };
        let err = V1Cgroup::create(&m, "run3", &limits).unwrap_err();
        assert!(err.to_string().contains("\"pids\""), "{err}");
        assert!(!root.path().join("memory/vmc/run3").exists());
        // Devices rules need the devices hierarchy.
        let (cgroup, _) = V1Cgroup::create(&m, "run3", &Limits::default()).unwrap();
        let err = cgroup.restrict_devices(&DEFAULT_RULES).unwrap_err();
        assert!(err.to_string().contains("\"devices\""), "{err}");
    }

    #[test]
    fn devices_are_denied_then_allowed_one_rule_per_write() {
        let (root, hierarchies) = fake_root(false, &["memory", "devices"]);
        let m = Mounts {
            root: root.path(),
            hierarchies: &hierarchies,
            unified: None,
        };
        let (cgroup, _) = V1Cgroup::create(&m, "run5", &Limits::default()).unwrap();
        cgroup.create_late().unwrap();
        let how = cgroup.restrict_devices(&DEFAULT_RULES).unwrap();
        assert!(how.contains("12 rules allowed (v1 "), "{how}");
        let dir = root.path().join("devices/vmc/run5");
        assert_eq!(read(&dir.join("devices.deny")), "a");
        // A fake file keeps the last write; the kernel appends each rule.
        assert_eq!(read(&dir.join("devices.allow")), "c 10:200 rwm");
    }

    #[test]
    fn oom_kills_and_memory_are_read() {
        let (root, hierarchies) = fake_root(false, &["memory"]);
        let m = Mounts {
            root: root.path(),
            hierarchies: &hierarchies,
            unified: None,
        };
        let (cgroup, _) = V1Cgroup::create(&m, "run4", &Limits::default()).unwrap();
        let dir = root.path().join("memory/vmc/run4");
        std::fs::write(dir.join("memory.failcnt"), "5\n").unwrap();
        assert_eq!(cgroup.oom_kills(), 5);
        std::fs::write(
            dir.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(cgroup.oom_kills(), 1);
        std::fs::write(dir.join("memory.usage_in_bytes"), "4096\n").unwrap();
        std::fs::write(dir.join("memory.max_usage_in_bytes"), "8192\n").unwrap();
        assert_eq!(cgroup.memory().read().unwrap(), (4096, Some(8192)));
    }
}
