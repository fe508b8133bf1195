//! cgroup v2: the run's cgroup is `<root>/vmc/<id>` in the single unified tree.

use super::devices::DeviceRule;
use super::{
    bpf_devices, cpu_quota_us, keyed_value, kill_and_remove, make_dir, write_control, CgroupMemory,
    Limits, RunCgroup, CPU_PERIOD_US, PARENT,
};
use crate::error::ContainerError;
use std::path::{Path, PathBuf};

/// A run's cgroup on a v2 host.
#[derive(Debug)]
pub struct V2Cgroup {
    dir: PathBuf,
}

impl V2Cgroup {
    /// Enables the controllers `limits` needs for `vmc/`, creates `vmc/<id>` and writes the
    /// limits. The memory controller is always enabled (accounting and OOM detection).
    pub fn create(
        root: &Path,
        id: &str,
        limits: &Limits,
    ) -> Result<(V2Cgroup, Vec<String>), ContainerError> {
        let mut needed = vec!["memory"];
        if limits.cpus.is_some() {
            needed.push("cpu");
        }
        if limits.pids_limit.is_some() {
            needed.push("pids");
        }
        let available =
            std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        if let Some(missing) = needed
            .iter()
            .find(|c| !available.split_whitespace().any(|a| a == **c))
        {
            return Err(ContainerError::MissingController {
                controller: missing,
                root: root.to_path_buf(),
            });
        }
        let parent = root.join(PARENT);
        make_dir(&parent)?;
        enable_controllers(root, &needed)?;
        enable_controllers(&parent, &needed)?;
        let cgroup = V2Cgroup {
            dir: parent.join(id),
        };
        make_dir(&cgroup.dir)?;
        let mut settings = Vec::new();
        if let Err(err) = cgroup.write_limits(limits, &mut settings) {
            let _ = cgroup.remove();
            return Err(err);
        }
        Ok((cgroup, settings))
    }

    fn write_limits(
        &self,
        limits: &Limits,
        settings: &mut Vec<String>,
    ) -> Result<(), ContainerError> {
        if let Some(bytes) = limits.memory_bytes {
            settings.push(write_control(&self.dir, "memory.max", &bytes.to_string())?);
            // The file exists only when the kernel accounts swap.
            if self.dir.join("memory.swap.max").exists() {
                settings.push(write_control(&self.dir, "memory.swap.max", "0")?);
            }
        }
        if let Some(cpus) = limits.cpus {
            let value = format!("{} {CPU_PERIOD_US}", cpu_quota_us(cpus));
            settings.push(write_control(&self.dir, "cpu.max", &value)?);
        }
        if let Some(max) = limits.pids_limit {
            settings.push(write_control(&self.dir, "pids.max", &max.to_string())?);
        }
        Ok(())
    }
}

/// Adds the `needed` controllers to `dir/cgroup.subtree_control` unless they are already on.
fn enable_controllers(dir: &Path, needed: &[&str]) -> Result<(), ContainerError> {
    let enabled = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    let missing: Vec<String> = needed
        .iter()
        .filter(|c| !enabled.split_whitespace().any(|e| e == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if !missing.is_empty() {
        write_control(dir, "cgroup.subtree_control", &missing.join(" "))?;
    }
    Ok(())
}

impl RunCgroup for V2Cgroup {
    fn add_process(&self, pid: i32) -> Result<(), ContainerError> {
        write_control(&self.dir, "cgroup.procs", &pid.to_string()).map(drop)
    }

    fn self_join_files(&self) -> Vec<PathBuf> {
        // v2 has no per-thread move outside threaded subtrees: the process is cloned in.
        Vec::new()
    }

    fn late_join_files(&self) -> Vec<PathBuf> {
        Vec::new()
    }

    fn create_late(&self) -> Result<usize, ContainerError> {
        Ok(0)
    }

    fn v2_dir(&self) -> Option<&Path> {
        Some(&self.dir)
    }

    fn restrict_devices(&self, rules: &[DeviceRule]) -> Result<String, ContainerError> {
        let length = bpf_devices::restrict(&self.dir, rules)?;
        Ok(format!(
            "everything denied, then {} rules allowed (v2 BPF device program, {length} instructions)",
            rules.len()
        ))
    }

    fn oom_kills(&self) -> u64 {
        keyed_value(&self.dir.join("memory.events"), "oom_kill").unwrap_or(0)
    }

    fn memory(&self) -> CgroupMemory {
        memory_reader(&self.dir)
    }

    fn remove(&self) -> Result<(), ContainerError> {
        let kill_file = self
            .dir
            .join("cgroup.kill")
            .exists()
            .then_some("cgroup.kill");
        kill_and_remove(&self.dir, kill_file)
    }
}

/// The memory reader for the v2 cgroup `dir`.
pub(crate) fn memory_reader(dir: &Path) -> CgroupMemory {
    CgroupMemory {
        current: dir.join("memory.current"),
        peak: dir.join("memory.peak"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_root(controllers: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), controllers).unwrap();
        std::fs::write(root.path().join("cgroup.subtree_control"), "memory\n").unwrap();
        root
    }

    #[test]
    fn enables_controllers_and_writes_limits() {
        let root = fake_root("cpuset cpu io memory hugetlb pids rdma misc\n");
        let limits = Limits {
            memory_bytes: Some(64 << 20),
            cpus: Some(0.5),
            pids_limit: Some(32),
        };
        let (cgroup, settings) = V2Cgroup::create(root.path(), "r1", &limits).unwrap();
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
        // Already-enabled controllers are not written again.
        assert_eq!(
            read(root.path().join("cgroup.subtree_control")),
            "+cpu +pids"
        );
        assert_eq!(
            read(root.path().join("vmc/cgroup.subtree_control")),
            "+memory +cpu +pids"
        );
        let dir = root.path().join("vmc/r1");
        assert_eq!(read(dir.join("memory.max")), "67108864");
        assert_eq!(read(dir.join("cpu.max")), "50000 100000");
        assert_eq!(read(dir.join("pids.max")), "32");
        assert!(!dir.join("memory.swap.max").exists());
        assert_eq!(
            settings,
            ["memory.max=67108864", "cpu.max=50000 100000", "pids.max=32"]
        );
        cgroup.add_process(77).unwrap();
        assert_eq!(read(dir.join("cgroup.procs")), "77");
        assert_eq!(cgroup.v2_dir(), Some(dir.as_path()));
        assert!(cgroup.self_join_files().is_empty());
        // A plain directory is no cgroup: the program cannot be attached (or, unprivileged,
        // not even loaded), and the error says which step failed.
        let err = cgroup
            .restrict_devices(&super::super::devices::DEFAULT_RULES)
            .unwrap_err()
            .to_string();
        assert!(err.contains("device-control BPF program"), "{err}");
    }

    #[test]
    fn missing_controller_is_named() {
        let root = fake_root("cpu memory\n");
        let limits = Limits {
            pids_limit: Some(8),
            ..Limits::default()
        };
        let err = V2Cgroup::create(root.path(), "r2", &limits).unwrap_err();
        assert!(err.to_string().contains("\"pids\""), "{err}");
        assert!(!root.path().join("vmc/r2").exists());
    }

    #[test]
    fn reads_oom_kills_and_memory() {
        let root = fake_root("memory\n");
        let (cgroup, _) = V2Cgroup::create(root.path(), "r3", &Limits::default()).unwrap();
        let dir = root.path().join("vmc/r3");
        assert_eq!(cgroup.oom_kills(), 0);
        std::fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(cgroup.oom_kills(), 1);
        std::fs::write(dir.join("memory.current"), "1000\n").unwrap();
        assert_eq!(cgroup.memory().read().unwrap(), (1000, None));
        std::fs::write(dir.join("memory.peak"), "3000\n").unwrap();
        assert_eq!(cgroup.memory().read().unwrap(), (1000, Some(3000)));
    }
}
