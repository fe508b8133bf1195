//! The cgroup filesystem inside the container, at `/sys/fs/cgroup`.
//!
//! The child mounts it right after unsharing its cgroup namespace, once it is in the run's
//! cgroup in every hierarchy: each mount's root is then the run's own cgroup, so the workload
//! sees its limits and nothing of the host's tree. v2: one cgroup2 mount. v1 (as Docker lays
//! it out): a tmpfs holding one mount per hierarchy, the host's links between them (`cpu ->
//! cpu,cpuacct`) and, on a hybrid host, `unified`. Everything is read-only, nosuid, nodev
//! and noexec unless the run is `--privileged`.

use super::Hierarchy;
use crate::error::ContainerError;
use crate::plan::{cpath, Op};
use crate::report::Event;
use nix::mount::MsFlags;
use std::ffi::CString;
use std::path::Path;

/// Where the container sees its cgroups.
pub const INSIDE: &str = "/sys/fs/cgroup";

/// The steps that mount the cgroup filesystem (paths inside the container's root).
pub fn ops(hierarchy: &Hierarchy, writable: bool) -> Result<Vec<Op>, ContainerError> {
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if !writable {
        flags |= MsFlags::MS_RDONLY;
    }
    let inside = Path::new(INSIDE);
    let cgroup_mount = |fstype: &std::ffi::CStr, target: &Path, options: Option<&str>| {
        Ok::<Op, ContainerError>(Op::Mount {
            source: CString::from(c"cgroup"),
            target: cpath(target)?,
            fstype: Some(CString::from(fstype)),
            flags,
            data: options
                .map(|o| {
                    CString::new(o).map_err(|_| ContainerError::NulByte {
                        what: "cgroup mount option",
                        value: o.to_string(),
                    })
                })
                .transpose()?,
        })
    };
    let mut ops = Vec::new();
    match hierarchy {
        Hierarchy::V2 { .. } => ops.push(cgroup_mount(c"cgroup2", inside, None)?),
        Hierarchy::V1 {
            hierarchies,
            unified,
            links,
            ..
        } => {
            let tmpfs = |flags| Op::Mount {
                source: CString::from(c"tmpfs"),
                target: CString::from(c"/sys/fs/cgroup"),
                fstype: Some(CString::from(c"tmpfs")),
                flags,
                data: Some(CString::from(c"mode=755")),
            };
            ops.push(tmpfs(flags.difference(MsFlags::MS_RDONLY)));
            for h in hierarchies {
                let Some(name) = h.dir.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                ops.push(Op::Mkdir(cpath(&inside.join(name))?));
                ops.push(cgroup_mount(
                    c"cgroup",
                    &inside.join(name),
                    Some(&h.options),
                )?);
            }
            if let Some(name) = unified
                .as_ref()
                .and_then(|u| u.file_name())
                .and_then(|n| n.to_str())
            {
                ops.push(Op::Mkdir(cpath(&inside.join(name))?));
                ops.push(cgroup_mount(c"cgroup2", &inside.join(name), None)?);
            }
            for (link, target) in links {
                ops.push(Op::Symlink {
                    target: cpath(Path::new(target))?,
                    link: cpath(&inside.join(link))?,
                });
            }
            if !writable {
                ops.push(tmpfs(flags | MsFlags::MS_REMOUNT));
            }
        }
    }
    ops.push(Op::Report(Event::CgroupFs));
    Ok(ops)
}

/// What [`ops`] mounts, for the trace.
pub fn describe(hierarchy: &Hierarchy, writable: bool) -> String {
    let mode = if writable {
        "writable (--privileged)"
    } else {
        "read-only"
    };
    match hierarchy {
        Hierarchy::V2 { .. } => {
            format!("cgroup2 mounted {mode} at {INSIDE}, rooted at the run's cgroup")
        }
        Hierarchy::V1 {
            hierarchies,
            unified,
            ..
        } => {
            let mut names: Vec<String> = hierarchies.iter().map(|h| h.options.clone()).collect();
            if unified.is_some() {
                names.push("unified (cgroup2)".into());
            }
            format!(
                "cgroup filesystem mounted {mode} at {INSIDE}, rooted at the run's cgroup: {} hierarchies ({})",
                names.len(),
                names.join(" ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::fake_hybrid_host;
    use super::super::Limits;
    use super::*;
    use crate::plan::text;

    fn summary(ops: &[Op]) -> Vec<String> {
        ops.iter()
            .map(|op| match op {
                Op::Mount {
                    target,
                    fstype,
                    flags,
                    data,
                    ..
                } => format!(
                    "{} {} {}{}{}",
                    fstype.as_deref().map_or("bind", text),
                    text(target),
                    if flags.contains(MsFlags::MS_REMOUNT) {
                        "remount "
                    } else {
                        ""
                    },
                    if flags.contains(MsFlags::MS_RDONLY) {
                        "ro"
                    } else {
                        "rw"
                    },
                    data.as_deref()
                        .map_or(String::new(), |d| format!(" {}", text(d)))
                ),
                Op::Mkdir(path) => format!("mkdir {}", text(path)),
                Op::Symlink { target, link } => format!("ln {} {}", text(link), text(target)),
                Op::Report(event) => format!("report {event:?}"),
                other => format!("{other}"),
            })
            .collect()
    }

    #[test]
    fn v1_hierarchies_are_mounted_read_only_under_a_tmpfs() {
        let root = tempfile::tempdir().unwrap();
        let mountinfo = fake_hybrid_host(root.path());
        let hierarchy = Hierarchy::v1_from_mountinfo(root.path(), &mountinfo).unwrap();
        let mut ops = summary(&ops(&hierarchy, false).unwrap());
        // Links come in directory order.
        ops[15..17].sort();
        assert_eq!(
            ops,
            [
                "tmpfs /sys/fs/cgroup rw mode=755",
                "mkdir /sys/fs/cgroup/cpu,cpuacct",
                "cgroup /sys/fs/cgroup/cpu,cpuacct ro cpu,cpuacct",
                "mkdir /sys/fs/cgroup/cpuset",
                "cgroup /sys/fs/cgroup/cpuset ro cpuset",
                "mkdir /sys/fs/cgroup/memory",
                "cgroup /sys/fs/cgroup/memory ro memory",
                "mkdir /sys/fs/cgroup/devices",
                "cgroup /sys/fs/cgroup/devices ro devices",
                "mkdir /sys/fs/cgroup/pids",
                "cgroup /sys/fs/cgroup/pids ro pids",
                "mkdir /sys/fs/cgroup/systemd",
                "cgroup /sys/fs/cgroup/systemd ro name=systemd",
                "mkdir /sys/fs/cgroup/unified",
                "cgroup2 /sys/fs/cgroup/unified ro",
                "ln /sys/fs/cgroup/cpu cpu,cpuacct",
                "ln /sys/fs/cgroup/cpuacct cpu,cpuacct",
                "tmpfs /sys/fs/cgroup remount ro mode=755",
                "report CgroupFs",
            ]
        );
        let text = describe(&hierarchy, false);
        assert!(text.contains("read-only"), "{text}");
        assert!(text.contains("7 hierarchies (cpu,cpuacct cpuset memory devices pids name=systemd unified (cgroup2))"), "{text}");
    }

    #[test]
    fn privileged_v1_mounts_are_writable() {
        let root = tempfile::tempdir().unwrap();
        let mountinfo = fake_hybrid_host(root.path());
        let hierarchy = Hierarchy::v1_from_mountinfo(root.path(), &mountinfo).unwrap();
        let ops = summary(&ops(&hierarchy, true).unwrap());
        assert!(ops.iter().all(|op| !op.contains(" ro")), "{ops:#?}");
        assert!(!ops.iter().any(|op| op.contains("remount")));
    }

    /// The v2 path of a `Hierarchy` on a fake root: detection, the run's cgroup, the mount.
    #[test]
    fn v2_host_gets_one_read_only_cgroup2_mount() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        let hierarchy = Hierarchy::detect(root.path()).unwrap();
        assert_eq!(hierarchy.version(), "v2");
        let (cgroup, _) = hierarchy.create("r9", &Limits::default()).unwrap();
        assert_eq!(cgroup.v2_dir(), Some(root.path().join("vmc/r9").as_path()));
        assert_eq!(
            summary(&ops(&hierarchy, false).unwrap()),
            ["cgroup2 /sys/fs/cgroup ro", "report CgroupFs"]
        );
        assert_eq!(
            summary(&ops(&hierarchy, true).unwrap()),
            ["cgroup2 /sys/fs/cgroup rw", "report CgroupFs"]
        );
        assert!(describe(&hierarchy, false).starts_with("cgroup2 mounted read-only"));
    }
}
