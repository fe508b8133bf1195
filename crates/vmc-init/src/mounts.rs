//! The pseudo filesystems every Linux userland expects.

use crate::error::InitError;
use nix::mount::{mount, MsFlags};
use std::os::unix::fs::{symlink, DirBuilderExt};
use std::path::Path;

/// One filesystem the init mounts unless the guest already has it.
struct PseudoFs {
    fstype: &'static str,
    target: &'static str,
    flags: MsFlags,
    options: &'static str,
}

const NOSUID_NODEV_NOEXEC: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// In mount order: /proc first (it tells what is mounted), parents before children.
const PSEUDO_FILESYSTEMS: [PseudoFs; 6] = [
    PseudoFs {
        fstype: "proc",
        target: "/proc",
        flags: NOSUID_NODEV_NOEXEC,
        options: "",
    },
    PseudoFs {
        fstype: "sysfs",
        target: "/sys",
        flags: NOSUID_NODEV_NOEXEC,
        options: "",
    },
    PseudoFs {
        fstype: "devtmpfs",
        target: "/dev",
        flags: MsFlags::MS_NOSUID,
        options: "mode=0755",
    },
    PseudoFs {
        fstype: "devpts",
        target: "/dev/pts",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC),
        options: "newinstance,ptmxmode=0666,mode=0620,gid=5",
    },
    PseudoFs {
        fstype: "tmpfs",
        target: "/dev/shm",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        options: "mode=1777",
    },
    PseudoFs {
        fstype: "tmpfs",
        target: "/tmp",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        options: "mode=1777",
    },
];

/// The conventional /dev symlinks devtmpfs does not create.
const DEV_SYMLINKS: [(&str, &str); 4] = [
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
];

/// Mounts /proc, /sys, /dev, /dev/pts, /dev/shm and /tmp (skipping those already mounted,
/// creating missing mount points) and adds the /dev symlinks.
pub fn mount_pseudo_filesystems() -> Result<(), InitError> {
    for fs in &PSEUDO_FILESYSTEMS {
        if is_mount_point(fs.target) {
            continue;
        }
        create_dir(fs.target, 0o755)?;
        let options = (!fs.options.is_empty()).then_some(fs.options);
        mount(
            Some(fs.fstype),
            fs.target,
            Some(fs.fstype),
            fs.flags,
            options,
        )
        .map_err(|errno| InitError::Mount {
            fstype: fs.fstype,
            target: fs.target,
            errno,
        })?;
    }
    for (link, target) in DEV_SYMLINKS {
        if Path::new(link).symlink_metadata().is_err() {
            symlink(target, link).map_err(|source| InitError::Fs {
                action: "creating",
                path: link.into(),
                source,
            })?;
        }
    }
    Ok(())
}

/// Whether something is mounted at `target` (false while /proc itself is not mounted).
fn is_mount_point(target: &str) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|info| mount_points(&info).any(|point| point == target))
        .unwrap_or(false)
}

/// The mount points listed in a /proc/self/mountinfo text (field 5).
fn mount_points(mountinfo: &str) -> impl Iterator<Item = &str> {
    mountinfo.lines().filter_map(|line| line.split(' ').nth(4))
}

/// Creates `path` and its missing parents with `mode`.
pub fn create_dir(path: &str, mode: u32) -> Result<(), InitError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|source| InitError::Fs {
            action: "creating",
            path: path.into(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mount_points_from_mountinfo() {
        let info = "22 1 0:21 / / rw,relatime - rootfs rootfs rw\n\
                    23 22 0:5 / /proc rw,nosuid,nodev,noexec - proc proc rw\n\
                    24 22 0:6 / /dev rw,nosuid - devtmpfs devtmpfs rw,mode=755\n";
        let points: Vec<_> = mount_points(info).collect();
        assert_eq!(points, ["/", "/proc", "/dev"]);
    }

    #[test]
    fn mounts_are_ordered_parents_first() {
        for (i, fs) in PSEUDO_FILESYSTEMS.iter().enumerate() {
            for later in &PSEUDO_FILESYSTEMS[i + 1..] {
                assert!(
                    !fs.target.starts_with(&format!("{}/", later.target)),
                    "{} is mounted before its parent {}",
                    fs.target,
                    later.target
                );
            }
        }
    }
}
