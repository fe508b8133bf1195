//! cgroup v1: the run's cgroup is one directory `vmc/<id>` in each controller's hierarchy.

use super::{
    cpu_quota_us, keyed_value, kill_and_remove, make_dir, read_u64, write_control, CgroupMemory,
    Limits, RunCgroup, CPU_PERIOD_US, PARENT,
};
use crate::error::ContainerError;
use std::path::{Path, PathBuf};

/// The controller mounts a v1 host offers.
#[derive(Debug, Clone, Copy)]
pub struct Mounts<'a> {
    /// The directory holding the mounts (for messages).
    pub root: &'a Path,
    /// The memory hierarchy.
    pub memory: Option<&'a Path>,
    /// The cpu hierarchy.
    pub cpu: Option<&'a Path>,
    /// The pids hierarchy.
    pub pids: Option<&'a Path>,
}

/// A run's cgroup on a v1 host: always in the memory hierarchy (for accounting and OOM
/// detection), in the cpu and pids hierarchies only when those limits are set.
#[derive(Debug)]
pub struct V1Cgroup {
    memory: PathBuf,
    others: Vec<PathBuf>,
}

impl V1Cgroup {
    /// Creates `vmc/<id>` in the hierarchies `limits` needs and writes the limits.
    pub fn create(
        mounts: &Mounts,
        id: &str,
        limits: &Limits,
    ) -> Result<(V1Cgroup, Vec<String>), ContainerError> {
        let require = |mount: Option<&Path>, controller: &'static str| {
            mount.map(|m| m.join(PARENT).join(id)).ok_or_else(|| {
                ContainerError::MissingController {
                    controller,
                    root: mounts.root.to_path_buf(),
                }
            })
        };
        let memory = require(mounts.memory, "memory")?;
        let cpu = limits
            .cpus
            .map(|_| require(mounts.cpu, "cpu"))
            .transpose()?;
        let pids = limits
            .pids_limit
            .map(|_| require(mounts.pids, "pids"))
            .transpose()?;
        let cgroup = V1Cgroup {
            memory,
            others: cpu.iter().chain(pids.iter()).cloned().collect(),
        };
        let mut settings = Vec::new();
        let result = cgroup.write_limits(limits, &cpu, &pids, &mut settings);
        if let Err(err) = result {
            // Do not leave half-made cgroups behind.
            let _ = cgroup.remove();
            return Err(err);
        }
        Ok((cgroup, settings))
    }

    fn write_limits(
        &self,
        limits: &Limits,
        cpu: &Option<PathBuf>,
        pids: &Option<PathBuf>,
        settings: &mut Vec<String>,
    ) -> Result<(), ContainerError> {
        make_dir(&self.memory)?;
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
            make_dir(dir)?;
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
            make_dir(dir)?;
            settings.push(write_control(dir, "pids.max", &max.to_string())?);
        }
        Ok(())
    }

    fn dirs(&self) -> impl Iterator<Item = &PathBuf> {
        std::iter::once(&self.memory).chain(self.others.iter())
    }
}

impl RunCgroup for V1Cgroup {
    fn describe(&self) -> String {
        self.dirs()
            .map(|dir| dir.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn add_process(&self, pid: i32) -> Result<(), ContainerError> {
        for dir in self.dirs() {
            write_control(dir, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    fn self_join_files(&self) -> Vec<PathBuf> {
        self.dirs().map(|dir| dir.join("tasks")).collect()
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
        for dir in &self.others {
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
    use super::*;

    /// A fake v1 host: controller dirs with `vmc/` pre-made, as mkdir on cgroupfs would.
    fn fake_root(with_memsw: bool) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for controller in ["memory", "cpu", "pids"] {
            std::fs::create_dir_all(root.path().join(controller).join(PARENT)).unwrap();
        }
        if with_memsw {
            // On a real host the kernel creates this file in every new memory cgroup.
            let dir = root.path().join("memory/vmc/run1");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("memory.memsw.limit_in_bytes"), "").unwrap();
        }
        root
    }

    fn mounts(root: &Path) -> (PathBuf, PathBuf, PathBuf) {
        (root.join("memory"), root.join("cpu"), root.join("pids"))
    }

    #[test]
    fn writes_all_limits() {
        let root = fake_root(true);
        let (memory, cpu, pids) = mounts(root.path());
        let limits = Limits {
            memory_bytes: Some(32 << 20),
            cpus: Some(1.5),
            pids_limit: Some(64),
        };
        let m = Mounts {
            root: root.path(),
            memory: Some(&memory),
            cpu: Some(&cpu),
            pids: Some(&pids),
        };
        let (cgroup, settings) = V1Cgroup::create(&m, "run1", &limits).unwrap();
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        let run = |c: &Path| c.join("vmc/run1");
        assert_eq!(
            read(&run(&memory).join("memory.limit_in_bytes")),
            "33554432"
        );
        assert_eq!(
            read(&run(&memory).join("memory.memsw.limit_in_bytes")),
            "33554432"
        );
        assert_eq!(read(&run(&cpu).join("cpu.cfs_quota_us")), "150000");
        assert_eq!(read(&run(&cpu).join("cpu.cfs_period_us")), "100000");
        assert_eq!(read(&run(&pids).join("pids.max")), "64");
        assert!(settings.contains(&"pids.max=64".to_string()));
        assert_eq!(
            cgroup.self_join_files(),
            [
                run(&memory).join("tasks"),
                run(&cpu).join("tasks"),
                run(&pids).join("tasks")
            ]
        );
        cgroup.add_process(4242).unwrap();
        for c in [&memory, &cpu, &pids] {
            assert_eq!(read(&run(c).join("cgroup.procs")), "4242");
        }
    }

    #[test]
    fn only_memory_hierarchy_without_cpu_and_pids_limits() {
        let root = fake_root(false);
        let (memory, cpu, pids) = mounts(root.path());
        let m = Mounts {
            root: root.path(),
            memory: Some(&memory),
            cpu: Some(&cpu),
            pids: Some(&pids),
        };
        let (cgroup, settings) = V1Cgroup::create(&m, "run2", &Limits::default()).unwrap();
        assert!(settings.is_empty());
        assert!(memory.join("vmc/run2").is_dir());
        assert!(!cpu.join("vmc/run2").exists());
        assert!(!pids.join("vmc/run2").exists());
        assert!(!memory.join("vmc/run2/memory.memsw.limit_in_bytes").exists());
        assert_eq!(
            cgroup.describe(),
            memory.join("vmc/run2").display().to_string()
        );
    }

    #[test]
    fn missing_controller_is_named() {
        let root = fake_root(false);
        let (memory, _, _) = mounts(root.path());
        let m = Mounts {
            root: root.path(),
            memory: Some(&memory),
            cpu: None,
            pids: None,
        };
        let limits = Limits {
            pids_limit: Some(10),
            ..Limits::default()
        };
        let err = V1Cgroup::create(&m, "run3", &limits).unwrap_err();
        assert!(err.to_string().contains("\"pids\""), "{err}");
        assert!(!memory.join("vmc/run3").exists());
    }

    #[test]
    fn oom_kills_and_memory_are_read() {
        let root = fake_root(false);
        let (memory, _, _) = mounts(root.path());
        let m = Mounts {
            root: root.path(),
            memory: Some(&memory),
            cpu: None,
            pids: None,
        };
        let (cgroup, _) = V1Cgroup::create(&m, "run4", &Limits::default()).unwrap();
        let dir = memory.join("vmc/run4");
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
