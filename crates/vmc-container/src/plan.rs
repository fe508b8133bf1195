//! The container's filesystem setup as a list of steps, built by vmc before `clone` and
//! carried out by the child without allocating.
//!
//! Building the list in the parent keeps the child trivial (it only loops over the steps)
//! and makes the layout testable without namespaces.

use crate::error::ContainerError;
use crate::layer::WritableLayer;
use crate::masks::READ_ONLY_PATHS;
use crate::report::Event;
use nix::mount::MsFlags;
use std::ffi::{CStr, CString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use vmc_runtime::rootfs::{self, AboveRoot};
use vmc_runtime::{BindMount, NetworkMode};

/// Where a run's overlay root filesystem lives.
///
/// The writable layer is on the host's disk, in the run's directory ([`WritableLayer`]): the
/// workload's files are disk blocks, not memory, and they stay for a later run until the run
/// is removed. The overlay itself is mounted only in the container's mount namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayDirs {
    /// The image's read-only rootfs (overlay lowerdir).
    pub lower: PathBuf,
    /// The run's writable layer (overlay upperdir).
    pub upper: PathBuf,
    /// Overlay's scratch directory (overlay workdir), on the upper's filesystem.
    pub work: PathBuf,
    /// Where the combined tree is mounted and becomes the container's root.
    pub merged: PathBuf,
    /// Mount with `volatile`: the overlay skips syncing the upper filesystem, at its unmount
    /// too. Only for a layer that is thrown away when the run ends, which need not survive a
    /// crash of the host (overlay refuses to mount such a layer again).
    pub volatile: bool,
}

impl OverlayDirs {
    /// The overlay of `lower` with the writable layer of the run directory `run_dir`.
    pub fn in_run_dir(run_dir: &Path, lower: &Path) -> Self {
        let layer = WritableLayer::of(run_dir);
        OverlayDirs {
            lower: lower.to_path_buf(),
            upper: layer.upper().to_path_buf(),
            work: layer.work().to_path_buf(),
            merged: layer.merged().to_path_buf(),
            volatile: false,
        }
    }

    /// The same overlay, mounted `volatile` if `volatile` (see [`OverlayDirs::volatile`]).
    pub fn with_volatile(mut self, volatile: bool) -> Self {
        self.volatile = volatile;
        self
    }

    /// The overlay mount options.
    pub fn options(&self) -> String {
        format!(
            "lowerdir={},upperdir={},workdir={}{}",
            self.lower.display(),
            self.upper.display(),
            self.work.display(),
            if self.volatile { ",volatile" } else { "" }
        )
    }
}

/// One step of the filesystem setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Makes every mount private so nothing propagates back to the host.
    MakePrivate,
    /// `mount(2)`.
    Mount {
        /// Source (device, fs name or bind source).
        source: CString,
        /// Mount point.
        target: CString,
        /// File system type, `None` for binds and remounts.
        fstype: Option<CString>,
        /// Mount flags.
        flags: MsFlags,
        /// File-system specific options.
        data: Option<CString>,
    },
    /// Remounts the bind mount at `target` read-only, keeping its other (locked) flags.
    RemountReadOnly(CString),
    /// Hides `path`: an empty read-only tmpfs over a directory, `null` bound over a file.
    /// A missing path is skipped (and reported).
    Mask {
        /// What to hide.
        path: CString,
        /// The container's /dev/null.
        null: CString,
    },
    /// Binds `path` on itself and remounts it read-only; a missing path is skipped (and
    /// reported).
    ReadOnly(CString),
    /// `mkdir` of a directory whose parent exists (an existing directory is fine).
    Mkdir(CString),
    /// `mkdir -p`.
    MkdirAll(CString),
    /// Creates an empty file if missing (mount point for a file bind).
    Touch(CString),
    /// Creates a character device node with mode 0666.
    CharDevice {
        /// Node path.
        path: CString,
        /// Major number.
        major: u64,
        /// Minor number.
        minor: u64,
    },
    /// `symlink(target, link)`.
    Symlink {
        /// What the link points to.
        target: CString,
        /// The link's path.
        link: CString,
    },
    /// Makes `new_root` the root: `pivot_root(".", ".")` inside it, then detaches the old root.
    PivotRoot(CString),
    /// Reports a setup milestone to the parent.
    Report(Event),
}

impl fmt::Display for Op {
    /// Describes the step for error messages, without allocating (the child formats these).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::MakePrivate => f.write_str("making / a private mount tree"),
            Op::Mount {
                source,
                target,
                fstype,
                ..
            } => write!(
                f,
                "mounting {} ({}) on {}",
                text(source),
                fstype.as_deref().map_or("bind", text),
                text(target)
            ),
            Op::RemountReadOnly(target) => write!(f, "remounting {} read-only", text(target)),
            Op::Mask { path, .. } => write!(f, "masking {}", text(path)),
            Op::ReadOnly(path) => write!(f, "making {} read-only", text(path)),
            Op::Mkdir(path) | Op::MkdirAll(path) => {
                write!(f, "creating directory {}", text(path))
            }
            Op::Touch(path) => write!(f, "creating file {}", text(path)),
            Op::CharDevice { path, .. } => write!(f, "creating device {}", text(path)),
            Op::Symlink { link, .. } => write!(f, "creating symlink {}", text(link)),
            Op::PivotRoot(root) => write!(f, "pivot_root into {}", text(root)),
            Op::Report(_) => f.write_str("reporting progress"),
        }
    }
}

/// A C string as text for messages (no allocation).
pub fn text(s: &CStr) -> &str {
    std::str::from_utf8(s.to_bytes()).unwrap_or("<non-UTF-8 path>")
}

/// Converts a path to a C string.
pub fn cpath(path: &Path) -> Result<CString, ContainerError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| ContainerError::NulByte {
        what: "path",
        value: path.display().to_string(),
    })
}

fn cstr(s: &str) -> CString {
    // Only called with literals and formatted numbers, which contain no NUL byte.
    CString::new(s).unwrap_or_default()
}

/// What the filesystem setup depends on.
#[derive(Debug, Clone)]
pub struct RootfsPlan<'a> {
    /// The overlay directories.
    pub overlay: &'a OverlayDirs,
    /// The run's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` to bind (files in the
    /// run directory), before the volumes so that a volume can replace one.
    pub etc_files: &'a [BindMount],
    /// Host directories to bind.
    pub volumes: &'a [BindMount],
    /// Whether the container has its own network namespace.
    pub network: NetworkMode,
    /// Whether vmc runs unprivileged in a user namespace (no mknod; sysfs needs a netns).
    pub rootless: bool,
    /// The host path of the pty slave to show as /dev/console, with `--tty`.
    pub console: Option<&'a Path>,
    /// `--privileged`: nothing masked or read-only, /sys writable.
    pub privileged: bool,
    /// The paths to mask (Docker's, [`crate::masks::masked_paths`]) unless privileged.
    pub masked: &'a [String],
}

/// The character devices of a container's /dev: name, major, minor.
const DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

impl RootfsPlan<'_> {
    /// The steps that build the container's filesystem and switch into it.
    pub fn ops(&self) -> Result<Vec<Op>, ContainerError> {
        let merged = &self.overlay.merged;
        let inside = |rel: &str| cpath(&merged.join(rel));
        for name in SPECIAL_MOUNT_POINTS {
            self.check_special_mount_point(name)?;
        }
        let mut ops = vec![
            Op::MakePrivate,
            Op::Mkdir(cpath(&self.overlay.upper)?),
            Op::Mkdir(cpath(&self.overlay.work)?),
            Op::Mkdir(cpath(merged)?),
            Op::Mount {
                source: cstr("overlay"),
                target: cpath(merged)?,
                fstype: Some(cstr("overlay")),
                flags: MsFlags::empty(),
                data: Some(overlay_options(self.overlay)?),
            },
            Op::Report(Event::Overlay),
            Op::Mkdir(inside("proc")?),
            Op::Mount {
                source: cstr("proc"),
                target: inside("proc")?,
                fstype: Some(cstr("proc")),
                flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                data: None,
            },
            Op::Mkdir(inside("dev")?),
            Op::Mount {
                source: cstr("tmpfs"),
                target: inside("dev")?,
                fstype: Some(cstr("tmpfs")),
                flags: MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
                data: Some(cstr("mode=755,size=65536k")),
            },
        ];
        for (name, major, minor) in DEVICES {
            let path = inside(&format!("dev/{name}"))?;
            if self.rootless {
                // A user namespace may not create device nodes: bind the host's instead.
                ops.push(Op::Touch(path.clone()));
                ops.push(bind(cstr(&format!("/dev/{name}")), path, false));
            } else {
                ops.push(Op::CharDevice { path, major, minor });
            }
        }
        let devpts_options = if self.rootless {
            "newinstance,ptmxmode=0666,mode=0620"
        } else {
            "newinstance,ptmxmode=0666,mode=0620,gid=5"
        };
        ops.extend([
            Op::Mkdir(inside("dev/pts")?),
            Op::Mount {
                source: cstr("devpts"),
                target: inside("dev/pts")?,
                fstype: Some(cstr("devpts")),
                flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
                data: Some(cstr(devpts_options)),
            },
            symlink("pts/ptmx", inside("dev/ptmx")?),
            Op::Mkdir(inside("dev/shm")?),
            Op::Mount {
                source: cstr("shm"),
                target: inside("dev/shm")?,
                fstype: Some(cstr("tmpfs")),
                flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                data: Some(cstr("mode=1777,size=65536k")),
            },
            symlink("/proc/self/fd", inside("dev/fd")?),
            symlink("/proc/self/fd/0", inside("dev/stdin")?),
            symlink("/proc/self/fd/1", inside("dev/stdout")?),
            symlink("/proc/self/fd/2", inside("dev/stderr")?),
        ]);
        if let Some(console) = self.console {
            ops.push(Op::Touch(inside("dev/console")?));
            ops.push(bind(cpath(console)?, inside("dev/console")?, false));
        }
        ops.push(Op::Mkdir(inside("sys")?));
        // Writable only with --privileged, as in Docker.
        let mut sys_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        if !self.privileged {
            sys_flags |= MsFlags::MS_RDONLY;
        }
        if self.rootless && self.network == NetworkMode::Host {
            // sysfs may only be mounted by the owner of the network namespace: bind the host's.
            ops.push(bind(cstr("/sys"), inside("sys")?, true));
            if !self.privileged {
                ops.push(Op::RemountReadOnly(inside("sys")?));
            }
        } else {
            ops.push(Op::Mount {
                source: cstr("sysfs"),
                target: inside("sys")?,
                fstype: Some(cstr("sysfs")),
                flags: sys_flags,
                data: None,
            });
        }
        ops.push(Op::Report(Event::SpecialFs));
        for file in self.etc_files {
            ops.extend(self.bind_ops(file, "the run's file")?);
        }
        if !self.volumes.is_empty() {
            for volume in self.volumes {
                ops.extend(self.bind_ops(volume, "volume target")?);
            }
            ops.push(Op::Report(Event::Volumes));
        }
        if !self.privileged {
            // Last, as runc does: a volume cannot uncover a masked path.
            let null = inside("dev/null")?;
            for path in self.masked {
                ops.push(Op::Mask {
                    path: inside(path.trim_start_matches('/'))?,
                    null: null.clone(),
                });
            }
            for path in READ_ONLY_PATHS {
                ops.push(Op::ReadOnly(inside(path.trim_start_matches('/'))?));
            }
            ops.push(Op::Report(Event::Masked));
        }
        ops.push(Op::PivotRoot(cpath(merged)?));
        ops.push(Op::Report(Event::PivotRoot));
        Ok(ops)
    }

    /// Refuses an image whose `/NAME` (`proc`, `dev` or `sys`, where vmc mounts its own
    /// filesystems) is anything but a directory or absent, as runc refuses a symlinked /proc:
    /// before `pivot_root` the kernel follows the image's symlink out of the root, so the
    /// filesystem (and the masks and read-only paths below it) would land on a host path in
    /// the container's mount namespace and the workload would get none of them.
    fn check_special_mount_point(&self, name: &str) -> Result<(), ContainerError> {
        let wanted = Path::new("/").join(name);
        let resolved = rootfs::resolve(&self.overlay.lower, &wanted, AboveRoot::Clamp)?;
        let absent = match resolved.rest.first() {
            Some(first) => std::fs::symlink_metadata(resolved.dir.join(first)).is_err(),
            None => false,
        };
        if resolved.in_root() == wanted && (resolved.rest.is_empty() || absent) {
            return Ok(());
        }
        Err(ContainerError::Unsupported(format!(
            "the image's {wanted:?} is not a directory (it leads to {:?}): vmc mounts its own {wanted:?} there; rebuild the image with {wanted:?} a plain directory or without it",
            resolved.in_root()
        )))
    }

    /// The steps that bind one volume (or one of the run's files: `what` names it in
    /// errors). The target is resolved inside the image's rootfs
    /// (the overlay's lower layer: the upper one is empty when the container starts), so the
    /// directories and the file the child creates lie on a symlink-free path inside the
    /// container's root: an image's `data -> /etc` makes `-v SRC:/data/x` create `/etc/x`
    /// of the container, never of the host.
    fn bind_ops(&self, volume: &BindMount, what: &str) -> Result<Vec<Op>, ContainerError> {
        if volume
            .target
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(ContainerError::Unsupported(format!(
                "{what} {} contains '..': give a plain absolute path",
                volume.target.display()
            )));
        }
        let refuse =
            |why: String| ContainerError::Unsupported(format!("{what} {:?} {why}", volume.target));
        let resolved = rootfs::resolve(&self.overlay.lower, &volume.target, AboveRoot::Clamp)?;
        let inside = resolved.in_root();
        if inside == Path::new("/") {
            return Err(refuse(
                "resolves to / in the image: give a target below /".into(),
            ));
        }
        if let Some(tree) = through_proc(&inside) {
            return Err(refuse(format!(
                "resolves to {inside:?} in the image, inside {tree}, which vmc makes and which leads into the container's procfs: choose another target"
            )));
        }
        if let Some(first) = resolved.rest.first() {
            let existing = resolved.dir.join(first);
            if let Ok(meta) = std::fs::symlink_metadata(&existing) {
                if !meta.is_file() {
                    return Err(refuse(format!(
                        "resolves to {inside:?}, which is not a directory or a regular file in the image: choose another target"
                    )));
                }
            }
        }
        let target_path = self
            .overlay
            .merged
            .join(inside.strip_prefix("/").unwrap_or(&inside));
        let target = cpath(&target_path)?;
        let mut ops = Vec::new();
        if volume.host.is_dir() {
            ops.push(Op::MkdirAll(target.clone()));
        } else {
            if let Some(parent) = target_path.parent() {
                ops.push(Op::MkdirAll(cpath(parent)?));
            }
            ops.push(Op::Touch(target.clone()));
        }
        ops.push(bind(cpath(&volume.host)?, target.clone(), true));
        if volume.readonly {
            ops.push(Op::RemountReadOnly(target));
        }
        Ok(ops)
    }
}

/// The directories of the image where vmc mounts its own procfs, /dev tmpfs and sysfs.
const SPECIAL_MOUNT_POINTS: [&str; 3] = ["proc", "dev", "sys"];

/// The links into procfs that vmc itself puts in a container's `/dev`.
const DEV_LINKS_TO_PROC: [&str; 4] = ["/dev/fd", "/dev/stdin", "/dev/stdout", "/dev/stderr"];

/// Which tree leading into the container's procfs `path` (inside the container, free of the
/// image's symlinks) lies in: `/proc`, or a link vmc makes in `/dev` to `/proc/self/fd`.
/// Through procfs's magic links (`/proc/self/root`, `/proc/self/cwd`, `/proc/self/fd/N`) a
/// path can reach the host before `pivot_root`, so vmc never creates anything there.
pub(crate) fn through_proc(path: &Path) -> Option<&'static str> {
    std::iter::once("/proc")
        .chain(DEV_LINKS_TO_PROC)
        .find(|tree| path.starts_with(tree))
}

fn overlay_options(dirs: &OverlayDirs) -> Result<CString, ContainerError> {
    let options = dirs.options();
    CString::new(options.clone()).map_err(|_| ContainerError::NulByte {
        what: "overlay path",
        value: options,
    })
}

fn bind(source: CString, target: CString, recursive: bool) -> Op {
    let mut flags = MsFlags::MS_BIND;
    if recursive {
        flags |= MsFlags::MS_REC;
    }
    Op::Mount {
        source,
        target,
        fstype: None,
        flags,
        data: None,
    }
}

fn symlink(target: &str, link: CString) -> Op {
    Op::Symlink {
        target: cstr(target),
        link,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlay() -> OverlayDirs {
        OverlayDirs::in_run_dir(Path::new("/run/r1"), Path::new("/images/busybox"))
    }

    /// A plan over `dirs` with nothing extra: no files, volumes or network, as root, confined.
    fn plan(dirs: &OverlayDirs) -> RootfsPlan<'_> {
        RootfsPlan {
            overlay: dirs,
            etc_files: &[],
            volumes: &[],
            network: NetworkMode::None,
            rootless: false,
            console: None,
            privileged: false,
            masked: &[],
        }
    }

    fn mount_targets(ops: &[Op]) -> Vec<(String, String)> {
        ops.iter()
            .filter_map(|op| match op {
                Op::Mount { target, fstype, .. } => Some((
                    text(target).to_string(),
                    fstype.as_deref().map_or("bind", text).to_string(),
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn overlay_options_name_all_layers() {
        assert_eq!(
            overlay().options(),
            "lowerdir=/images/busybox,upperdir=/run/r1/upper,workdir=/run/r1/work"
        );
        assert_eq!(
            overlay().with_volatile(true).options(),
            "lowerdir=/images/busybox,upperdir=/run/r1/upper,workdir=/run/r1/work,volatile"
        );
    }

    #[test]
    fn root_plan_mounts_and_creates_devices() {
        let dirs = overlay();
        let plan = plan(&dirs);
        let ops = plan.ops().unwrap();
        assert_eq!(ops[0], Op::MakePrivate);
        let m = "/run/r1/merged";
        assert_eq!(
            &ops[1..4],
            [
                Op::Mkdir(cstr("/run/r1/upper")),
                Op::Mkdir(cstr("/run/r1/work")),
                Op::Mkdir(cstr(m))
            ]
        );
        let expected: Vec<(String, String)> = [
            (m.to_string(), "overlay"),
            (format!("{m}/proc"), "proc"),
            (format!("{m}/dev"), "tmpfs"),
            (format!("{m}/dev/pts"), "devpts"),
            (format!("{m}/dev/shm"), "tmpfs"),
            (format!("{m}/sys"), "sysfs"),
        ]
        .into_iter()
        .map(|(t, f)| (t, f.to_string()))
        .collect();
        assert_eq!(mount_targets(&ops), expected);
        let devices = ops
            .iter()
            .filter(|op| matches!(op, Op::CharDevice { .. }))
            .count();
        assert_eq!(devices, 6);
        assert!(ops.contains(&Op::CharDevice {
            path: cstr(&format!("{m}/dev/null")),
            major: 1,
            minor: 3
        }));
        assert_eq!(ops[ops.len() - 2], Op::PivotRoot(cstr(m)));
        assert_eq!(ops.last(), Some(&Op::Report(Event::PivotRoot)));
    }

    #[test]
    fn rootless_binds_devices_and_host_sysfs() {
        let dirs = overlay();
        let plan = RootfsPlan {
            network: NetworkMode::Host,
            rootless: true,
            console: Some(Path::new("/dev/pts/7")),
            ..plan(&dirs)
        };
        let ops = plan.ops().unwrap();
        assert!(!ops.iter().any(|op| matches!(op, Op::CharDevice { .. })));
        let targets = mount_targets(&ops);
        let m = "/run/r1/merged";
        assert!(targets.contains(&(format!("{m}/dev/null"), "bind".into())));
        assert!(targets.contains(&(format!("{m}/dev/console"), "bind".into())));
        assert!(targets.contains(&(format!("{m}/sys"), "bind".into())));
        assert!(ops.contains(&Op::RemountReadOnly(cstr(&format!("{m}/sys")))));
    }

    #[test]
    fn volumes_are_bound_and_read_only_remounted() {
        let dirs = overlay();
        let volumes = [BindMount {
            host: PathBuf::from("/tmp"),
            target: PathBuf::from("/data"),
            readonly: true,
        }];
        let plan = RootfsPlan {
            volumes: &volumes,
            ..plan(&dirs)
        };
        let ops = plan.ops().unwrap();
        let target = cstr("/run/r1/merged/data");
        let bind_at = ops
            .iter()
            .position(|op| matches!(op, Op::Mount { source, .. } if text(source) == "/tmp"))
            .unwrap();
        assert_eq!(ops[bind_at - 1], Op::MkdirAll(target.clone()));
        assert_eq!(ops[bind_at + 1], Op::RemountReadOnly(target));
        let bad = [BindMount {
            host: PathBuf::from("/tmp"),
            target: PathBuf::from("/data/../../etc"),
            readonly: false,
        }];
        let plan = RootfsPlan {
            volumes: &bad,
            ..plan
        };
        assert!(plan.ops().is_err());
    }

    /// The MkdirAll/Touch targets of binding a host directory at `target` over `lower`.
    fn volume_targets(lower: &Path, target: &str) -> Result<Vec<String>, String> {
        let dirs = OverlayDirs::in_run_dir(Path::new("/run/r1"), lower);
        let volumes = [BindMount {
            host: PathBuf::from("/tmp"),
            target: PathBuf::from(target),
            readonly: false,
        }];
        let plan = RootfsPlan {
            volumes: &volumes,
            ..plan(&dirs)
        };
        let ops = plan.ops().map_err(|e| e.to_string())?;
        Ok(ops
            .iter()
            .filter_map(|op| match op {
                Op::MkdirAll(path) | Op::Touch(path) => Some(text(path).to_string()),
                _ => None,
            })
            .collect())
    }

    #[test]
    fn the_runs_etc_files_are_bound_before_the_volumes_inside_the_image() {
        let lower = tempfile::tempdir().unwrap();
        let l = lower.path();
        std::fs::create_dir_all(l.join("etc")).unwrap();
        // An image's /etc/hosts may lead anywhere: the bind lands inside the image's root.
        std::os::unix::fs::symlink("/var/hosts", l.join("etc/hosts")).unwrap();
        let dirs = OverlayDirs::in_run_dir(Path::new("/run/r1"), l);
        let file = |name: &str| BindMount {
            host: PathBuf::from(format!("/run/r1/{name}")),
            target: PathBuf::from(format!("/etc/{name}")),
            readonly: false,
        };
        let etc_files = [file("hosts"), file("resolv.conf")];
        let volumes = [BindMount {
            host: PathBuf::from("/srv/hosts"),
            target: PathBuf::from("/etc/hosts"),
            readonly: true,
        }];
        let plan = RootfsPlan {
            etc_files: &etc_files,
            volumes: &volumes,
            ..plan(&dirs)
        };
        let binds: Vec<(String, String)> = plan
            .ops()
            .unwrap()
            .iter()
            .filter_map(|op| match op {
                Op::Mount {
                    source,
                    target,
                    fstype: None,
                    ..
                } if !text(source).starts_with("/dev") => {
                    Some((text(source).to_string(), text(target).to_string()))
                }
                _ => None,
            })
            .collect();
        let m = dirs.merged.display().to_string();
        assert_eq!(
            binds,
            [
                ("/run/r1/hosts".to_string(), format!("{m}/var/hosts")),
                (
                    "/run/r1/resolv.conf".to_string(),
                    format!("{m}/etc/resolv.conf")
                ),
                ("/srv/hosts".to_string(), format!("{m}/var/hosts")),
            ]
        );
    }

    #[test]
    fn volume_targets_resolve_through_the_images_symlinks_inside_its_root() {
        let lower = tempfile::tempdir().unwrap();
        let l = lower.path();
        std::fs::create_dir_all(l.join("usr/lib")).unwrap();
        std::os::unix::fs::symlink("/some/host/dir", l.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../../../../some/host/dir", l.join("usr/rel"))
            .unwrap();
        std::os::unix::fs::symlink("lib/../../../../etc", l.join("usr/up")).unwrap();
        std::os::unix::fs::symlink("usr/lib", l.join("lib")).unwrap();
        let m = "/run/r1/merged";
        for (target, expected) in [
            ("/abs/sub/dir", format!("{m}/some/host/dir/sub/dir")),
            ("/usr/rel/sub", format!("{m}/some/host/dir/sub")),
            ("/usr/up/x", format!("{m}/etc/x")),
            ("/lib/x", format!("{m}/usr/lib/x")),
            ("/plain", format!("{m}/plain")),
        ] {
            assert_eq!(volume_targets(l, target).unwrap(), [expected], "{target}");
        }
    }

    #[test]
    fn an_image_whose_proc_dev_or_sys_is_no_directory_is_refused() {
        let image = tempfile::tempdir().unwrap();
        let l = image.path();
        let dirs = OverlayDirs::in_run_dir(Path::new("/run/r1"), l);
        // Absent, then a plain directory: both fine.
        assert!(plan(&dirs).ops().is_ok());
        for name in ["proc", "dev", "sys"] {
            std::fs::create_dir(l.join(name)).unwrap();
        }
        assert!(plan(&dirs).ops().is_ok());
        let refused = |name: &str| {
            plan(&dirs)
                .ops()
                .unwrap_err()
                .to_string()
                .contains(&format!("the image's \"/{name}\" is not a directory"))
        };
        for (name, kinds) in [
            ("proc", ["/etc", "../etc", "."]),
            ("dev", ["/tmp", "sub/../..", "/dev2"]),
            ("sys", ["/proc/../etc", "..", "/"]),
        ] {
            std::fs::remove_dir(l.join(name)).unwrap();
            for target in kinds {
                std::os::unix::fs::symlink(target, l.join(name)).unwrap();
                assert!(refused(name), "/{name} -> {target}");
                std::fs::remove_file(l.join(name)).unwrap();
            }
            std::fs::write(l.join(name), "a file").unwrap();
            assert!(refused(name), "/{name} a file");
            std::fs::remove_file(l.join(name)).unwrap();
            std::fs::create_dir(l.join(name)).unwrap();
        }
    }

    #[test]
    fn volume_targets_into_proc_the_root_or_special_files_are_refused() {
        let lower = tempfile::tempdir().unwrap();
        let l = lower.path();
        std::fs::create_dir_all(l.join("proc")).unwrap();
        std::os::unix::fs::symlink("/proc/self/root/tmp", l.join("escape")).unwrap();
        std::os::unix::fs::symlink("/dev/fd/5", l.join("fd")).unwrap();
        std::os::unix::fs::symlink("..", l.join("top")).unwrap();
        std::os::unix::fs::symlink("loop", l.join("loop")).unwrap();
        nix::unistd::mkfifo(
            &l.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        for (target, needle) in [
            ("/escape/x", "inside /proc"),
            ("/proc", "inside /proc"),
            ("/fd/x", "inside /dev/fd"),
            ("/top", "resolves to / in the image"),
            ("/loop/x", "symlink loop"),
            ("/fifo", "not a directory or a regular file"),
        ] {
            let err = volume_targets(l, target).unwrap_err();
            assert!(err.contains(needle), "{target}: {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
        }
        assert_eq!(through_proc(Path::new("/processes")), None);
        assert_eq!(through_proc(Path::new("/dev/shm/x")), None);
    }

    fn docker_masks() -> Vec<String> {
        crate::masks::MASKED_PATHS
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn docker_paths_are_masked_and_read_only_after_volumes() {
        let dirs = overlay();
        let masked = docker_masks();
        let volumes = [BindMount {
            host: PathBuf::from("/tmp"),
            target: PathBuf::from("/data"),
            readonly: false,
        }];
        let plan = RootfsPlan {
            volumes: &volumes,
            masked: &masked,
            ..plan(&dirs)
        };
        let ops = plan.ops().unwrap();
        let m = "/run/r1/merged";
        let null = cstr(&format!("{m}/dev/null"));
        let first_mask = ops
            .iter()
            .position(|op| matches!(op, Op::Mask { .. }))
            .unwrap();
        let volumes_done = ops
            .iter()
            .position(|op| op == &Op::Report(Event::Volumes))
            .unwrap();
        assert!(first_mask > volumes_done);
        let expected: Vec<Op> = masked
            .iter()
            .map(|p| Op::Mask {
                path: cstr(&format!("{m}{p}")),
                null: null.clone(),
            })
            .chain(
                ["bus", "fs", "irq", "sys", "sysrq-trigger"]
                    .iter()
                    .map(|p| Op::ReadOnly(cstr(&format!("{m}/proc/{p}")))),
            )
            .chain([
                Op::Report(Event::Masked),
                Op::PivotRoot(cstr(m)),
                Op::Report(Event::PivotRoot),
            ])
            .collect();
        assert_eq!(&ops[first_mask..], expected.as_slice());
        assert!(expected.contains(&Op::Mask {
            path: cstr(&format!("{m}/proc/keys")),
            null: null.clone()
        }));
        assert!(expected.contains(&Op::Mask {
            path: cstr(&format!("{m}/sys/firmware")),
            null
        }));
        let sysfs = ops
            .iter()
            .find_map(|op| match op {
                Op::Mount { fstype, flags, .. } if fstype.as_deref() == Some(c"sysfs") => {
                    Some(*flags)
                }
                _ => None,
            })
            .unwrap();
        assert!(sysfs.contains(MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC));
    }

    #[test]
    fn privileged_masks_nothing_and_mounts_sys_writable() {
        let dirs = overlay();
        let masked = docker_masks();
        let plan = RootfsPlan {
            privileged: true,
            masked: &masked,
            ..plan(&dirs)
        };
        let ops = plan.ops().unwrap();
        assert!(!ops.iter().any(|op| matches!(
            op,
            Op::Mask { .. } | Op::ReadOnly(_) | Op::RemountReadOnly(_)
        )));
        assert!(!ops.contains(&Op::Report(Event::Masked)));
        assert!(ops.iter().any(|op| matches!(op,
            Op::Mount { fstype, flags, .. }
                if fstype.as_deref() == Some(c"sysfs") && !flags.contains(MsFlags::MS_RDONLY))));
    }

    #[test]
    fn ops_describe_themselves() {
        let op = bind(cstr("/a"), cstr("/b"), false);
        assert_eq!(op.to_string(), "mounting /a (bind) on /b");
        assert_eq!(Op::PivotRoot(cstr("/m")).to_string(), "pivot_root into /m");
        let mask = Op::Mask {
            path: cstr("/m/proc/kcore"),
            null: cstr("/m/dev/null"),
        };
        assert_eq!(mask.to_string(), "masking /m/proc/kcore");
        assert_eq!(
            Op::ReadOnly(cstr("/m/proc/sys")).to_string(),
            "making /m/proc/sys read-only"
        );
    }
}
