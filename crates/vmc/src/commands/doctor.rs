//! `vmc doctor`: what this host offers each run mode, and what to fix.

use crate::commands::run::ModeArg;
use clap::Args;
use std::fs;
use vmc_vm::probe::{self, KvmAccess, Verdict};

/// Arguments of `vmc doctor`.
#[derive(Args)]
pub struct DoctorArgs {
    /// Exit with status 1 unless every check of this mode passed (for scripts).
    #[arg(long, value_enum, value_name = "MODE")]
    pub check: Option<ModeArg>,
}

/// Prints one line per check. Without `--check` it always succeeds (the lines say what is
/// missing); with it, the status says whether that mode can run on this host.
pub fn doctor(args: DoctorArgs) -> anyhow::Result<u8> {
    let mut checks = Checks::default();
    println!("VM mode");
    let report = probe::probe();
    match &report.access {
        KvmAccess::Available {
            api_version,
            max_vcpus,
        } => {
            checks.vm(true, "/dev/kvm", "present and accessible");
            checks.vm(
                true,
                "KVM API",
                &format!("version {api_version}, up to {max_vcpus} vCPUs per VM"),
            );
        }
        KvmAccess::Unavailable(reason) => checks.vm(false, "/dev/kvm", reason),
    }
    if let Some(verdict) = &report.verdict {
        checks.vm(
            *verdict == Verdict::Full,
            "KVM probe",
            &format!(
                "{} ({:.1} ms)",
                verdict.message(),
                report.elapsed.as_secs_f64() * 1000.0
            ),
        );
    }
    match vmc_vm::kernel::default_kernel() {
        Ok(path) => checks.vm(true, "guest kernel", &path.display().to_string()),
        Err(err) => checks.vm(false, "guest kernel", &err.to_string()),
    }
    match vmc_image::disk::locate_tools() {
        Ok(paths) => {
            let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            checks.vm(true, "disk tools", &paths.join(", "));
        }
        Err(err) => checks.vm(false, "disk tools", &err.to_string()),
    }

    println!("container mode");
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let (ok, cgroups) = describe_cgroups(&mounts, |mount| {
        fs::read_to_string(format!("{mount}/cgroup.controllers")).unwrap_or_default()
    });
    checks.container(ok, "cgroups", &cgroups);
    let overlay = fs::read_to_string("/proc/filesystems")
        .map(|list| list.lines().any(|l| l.ends_with("\toverlay")))
        .unwrap_or(false);
    checks.container(
        overlay,
        "overlayfs",
        if overlay {
            "available"
        } else {
            "not available: load it with `modprobe overlay`"
        },
    );
    let (ok, userns) = user_namespaces();
    // User namespaces matter only for running without root; they do not fail the check.
    line(ok, "user namespaces", &userns);
    let passed = match args.check {
        None => true,
        Some(ModeArg::Vm) => checks.vm_ok,
        Some(ModeArg::Container) => checks.container_ok,
    };
    Ok(if passed { 0 } else { 1 })
}

/// Which modes have passed every check so far.
struct Checks {
    vm_ok: bool,
    container_ok: bool,
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            vm_ok: true,
            container_ok: true,
        }
    }
}

impl Checks {
    /// Prints a VM-mode check and remembers a failure.
    fn vm(&mut self, ok: bool, what: &str, detail: &str) {
        self.vm_ok &= ok;
        line(ok, what, detail);
    }

    /// Prints a container-mode check and remembers a failure.
    fn container(&mut self, ok: bool, what: &str, detail: &str) {
        self.container_ok &= ok;
        line(ok, what, detail);
    }
}

/// Prints one check result.
fn line(ok: bool, what: &str, detail: &str) {
    let mark = if ok { "ok  " } else { "FAIL" };
    println!("  [{mark}] {what:<16} {detail}");
}

/// The cgroup layout described by `mounts` (the text of /proc/self/mounts): v2 (unified),
/// v1, or hybrid, with the controllers of each hierarchy. `v2_controllers` reads a cgroup2
/// mount's `cgroup.controllers`.
fn describe_cgroups(mounts: &str, v2_controllers: impl Fn(&str) -> String) -> (bool, String) {
    let mut v1_controllers = Vec::new();
    let mut v2_mount = None;
    for mount in mounts.lines() {
        let fields: Vec<&str> = mount.split_whitespace().collect();
        let [_, target, fstype, options, ..] = fields[..] else {
            continue;
        };
        match fstype {
            "cgroup2" => v2_mount = Some(target.to_string()),
            "cgroup" => v1_controllers.extend(
                options
                    .split(',')
                    .filter(|o| KNOWN_V1_CONTROLLERS.contains(o))
                    .map(str::to_string),
            ),
            _ => {}
        }
    }
    let v2_controllers = v2_mount
        .as_ref()
        .map(|mount| v2_controllers(mount).trim().to_string());
    let v2_text = |controllers: &str| {
        if controllers.is_empty() {
            "no controllers".to_string()
        } else {
            format!("controllers: {controllers}")
        }
    };
    match (v1_controllers.is_empty(), v2_controllers) {
        (true, Some(v2)) => (!v2.is_empty(), format!("v2 (unified), {}", v2_text(&v2))),
        (false, Some(v2)) => (
            true,
            format!(
                "hybrid: v1 controllers {}; v2 at {} with {}",
                v1_controllers.join(","),
                v2_mount.unwrap_or_default(),
                v2_text(&v2)
            ),
        ),
        (false, None) => (
            true,
            format!("v1, controllers {}", v1_controllers.join(",")),
        ),
        (true, None) => (
            false,
            "no cgroup filesystem mounted: mount cgroup2 on /sys/fs/cgroup".into(),
        ),
    }
}

/// cgroup v1 controller names, to tell them apart from mount options.
const KNOWN_V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "pids",
    "blkio",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "perf_event",
    "hugetlb",
    "rdma",
    "misc",
];

/// Whether new user namespaces can be created.
fn user_namespaces() -> (bool, String) {
    let max = fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    match max {
        Some(0) => (false, "disabled: sysctl user.max_user_namespaces=0".into()),
        Some(max) => (true, format!("enabled (up to {max})")),
        None => (
            false,
            "not supported by this kernel (no /proc/sys/user/max_user_namespaces)".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pure_v2() {
        let mounts = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n";
        let (ok, text) = describe_cgroups(mounts, |_| "cpu memory pids\n".into());
        assert!(ok);
        assert_eq!(text, "v2 (unified), controllers: cpu memory pids");
    }

    #[test]
    fn hybrid_v1_with_empty_unified() {
        let mounts = "tmpfs /sys/fs/cgroup tmpfs ro 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nsdelegate 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,nosuid,memory 0 0
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0
";
        let (ok, text) = describe_cgroups(mounts, |mount| {
            assert_eq!(mount, "/sys/fs/cgroup/unified");
            String::new()
        });
        assert!(ok);
        assert_eq!(
            text,
            "hybrid: v1 controllers memory,cpu,cpuacct; v2 at /sys/fs/cgroup/unified with no controllers"
        );
    }

    #[test]
    fn no_cgroups() {
        let (ok, text) = describe_cgroups("proc /proc proc rw 0 0\n", |_| String::new());
        assert!(!ok);
        assert!(text.contains("mount cgroup2"));
    }
}
