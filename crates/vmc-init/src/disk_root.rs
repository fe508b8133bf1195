//! The image's root filesystem from disks: the image disk (erofs, read-only) as the lower layer
//! of an overlay whose upper and work directories live on the run's scratch disk (ext4), so a
//! run never changes the image and its writes cost disk, not guest RAM. The init then moves
//! /dev, /proc and /sys into the overlay and makes it the root, as `switch_root` does (an
//! initramfs cannot be left with `pivot_root`): `mount --move NEW /`, `chroot .`.

use crate::error::InitError;
use crate::mounts::create_dir;
use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::unistd::{chdir, chroot};
use std::os::unix::fs::PermissionsExt;
use vmc_protocol::root_disks::{IMAGE_DEVICE, IMAGE_FSTYPE, SCRATCH_DEVICE, SCRATCH_FSTYPE};

/// Where the image disk is mounted (inside the initramfs, then hidden by the switch).
const IMAGE_MOUNT: &str = "/vmc/image";
/// Where the scratch disk is mounted.
const SCRATCH_MOUNT: &str = "/vmc/scratch";
/// The overlay's writable layer and its work directory, on the scratch disk.
const UPPER_DIR: &str = "/vmc/scratch/upper";
const WORK_DIR: &str = "/vmc/scratch/work";
/// Where the overlay is assembled before it becomes `/`.
const NEW_ROOT: &str = "/vmc/root";

/// The mounts of the initramfs that move into the new root (with their submounts: /dev/pts
/// and /dev/shm go with /dev).
const MOVED_MOUNTS: [&str; 3] = ["/dev", "/proc", "/sys"];

/// Mounts the disks and the overlay and switches root into it. Needs /dev (the disks' nodes)
/// and /proc mounted; afterwards they, and /sys, are where they were, in the new root.
pub fn switch_to_disk_root() -> Result<(), InitError> {
    mount_disk(
        IMAGE_DEVICE,
        IMAGE_FSTYPE,
        IMAGE_MOUNT,
        MsFlags::MS_RDONLY,
        None,
    )?;
    // No journal and no inode-table zeroing thread: the disk dies with the run.
    mount_disk(
        SCRATCH_DEVICE,
        SCRATCH_FSTYPE,
        SCRATCH_MOUNT,
        MsFlags::MS_NOATIME,
        Some("noinit_itable"),
    )?;
    for dir in [UPPER_DIR, WORK_DIR, NEW_ROOT] {
        create_dir(dir, 0o755)?;
    }
    let options = format!("lowerdir={IMAGE_MOUNT},upperdir={UPPER_DIR},workdir={WORK_DIR}");
    mount(
        Some("overlay"),
        NEW_ROOT,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(|errno| InitError::Mount {
        fstype: "overlay",
        target: NEW_ROOT,
        errno,
    })?;
    for point in MOVED_MOUNTS {
        let target = format!("{NEW_ROOT}{point}");
        // The image may lack the mount point, or have a symlink or file there (which mount
        // would follow or refuse): a real directory is made in the overlay, not the image.
        ensure_real_dir(&target, 0o755)?;
        mount(
            Some(point),
            target.as_str(),
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(|errno| InitError::SwitchRoot {
            step: "moving a mount into the new root",
            path: point.into(),
            errno,
        })?;
    }
    ensure_real_dir(&format!("{NEW_ROOT}/tmp"), 0o1777)?;
    let switch = |step: &'static str, result: nix::Result<()>| {
        result.map_err(|errno| InitError::SwitchRoot {
            step,
            path: NEW_ROOT.into(),
            errno,
        })
    };
    switch("entering", chdir(NEW_ROOT))?;
    switch(
        "moving to /",
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>),
    )?;
    switch("chroot into", chroot("."))?;
    switch("entering", chdir("/"))
}

/// Mounts the disk `device` (filesystem `fstype`) at `target`, saying what the guest lacks
/// when it cannot.
fn mount_disk(
    device: &'static str,
    fstype: &'static str,
    target: &'static str,
    flags: MsFlags,
    options: Option<&str>,
) -> Result<(), InitError> {
    create_dir(target, 0o755)?;
    mount(Some(device), target, Some(fstype), flags, options).map_err(|errno| {
        InitError::DiskMount {
            device,
            fstype,
            target,
            errno,
            hint: disk_mount_hint(errno, fstype),
        }
    })
}

/// What a failed disk mount most likely means.
fn disk_mount_hint(errno: Errno, fstype: &str) -> &'static str {
    match (errno, fstype) {
        (Errno::ENOENT | Errno::ENXIO, _) => {
            "the disk is missing: the VMM did not attach it, or the guest kernel lacks CONFIG_VIRTIO_BLK / CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES"
        }
        (Errno::ENODEV, "erofs") => "the guest kernel lacks CONFIG_EROFS_FS",
        (Errno::ENODEV, _) => "the guest kernel lacks CONFIG_EXT4_FS",
        (Errno::EINVAL | Errno::EUCLEAN | Errno::EIO, _) => {
            "the disk does not hold a filesystem the guest can read (a damaged disk cache: remove it and run again)"
        }
        _ => "",
    }
}

/// Makes `path` a directory unless it already is one (not a symlink to one): whatever else
/// the image has there is removed (in the overlay: the image is untouched), and a new directory
/// gets `mode` exactly (with the sticky bit, which mkdir's umask handling may drop). This is
/// also how the workload's /tmp comes to exist when the image has none; an image's own /tmp
/// is kept, on the overlay (disk, not RAM, as in container mode).
fn ensure_real_dir(path: &str, mode: u32) -> Result<(), InitError> {
    let fs_error = |action: &'static str| {
        move |source| InitError::Fs {
            action,
            path: path.into(),
            source,
        }
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => std::fs::remove_file(path).map_err(fs_error("removing"))?,
        Err(_) => {}
    }
    create_dir(path, mode)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(fs_error("setting the mode of"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_become_real_directories() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
        std::os::unix::fs::symlink("/etc", at("dev")).unwrap();
        std::fs::write(at("proc"), "a file").unwrap();
        std::fs::create_dir(at("sys")).unwrap();
        std::fs::set_permissions(at("sys"), std::fs::Permissions::from_mode(0o700)).unwrap();
        for name in ["dev", "proc", "sys"] {
            ensure_real_dir(&at(name), 0o755).unwrap();
        }
        ensure_real_dir(&at("tmp"), 0o1777).unwrap();
        let mode = |name: &str| {
            let meta = std::fs::symlink_metadata(at(name)).unwrap();
            assert!(meta.is_dir(), "{name}");
            meta.permissions().mode() & 0o7777
        };
        assert_eq!(mode("dev"), 0o755, "the symlink was replaced");
        assert_eq!(mode("proc"), 0o755, "the file was replaced");
        assert_eq!(mode("sys"), 0o700, "an existing directory is kept as it is");
        assert_eq!(mode("tmp"), 0o1777, "sticky and world-writable");
        assert!(
            std::path::Path::new("/etc").is_dir(),
            "the symlink's target is untouched"
        );
    }

    #[test]
    fn hints_name_the_missing_piece() {
        assert!(disk_mount_hint(Errno::ENODEV, "erofs").contains("CONFIG_EROFS_FS"));
        assert!(disk_mount_hint(Errno::ENODEV, "ext4").contains("CONFIG_EXT4_FS"));
        assert!(disk_mount_hint(Errno::ENXIO, "ext4").contains("did not attach"));
        assert_eq!(disk_mount_hint(Errno::EPERM, "ext4"), "");
    }
}
