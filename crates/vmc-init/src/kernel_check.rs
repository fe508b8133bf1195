//! Which of the drivers a run needs the guest kernel lacks, read from /proc and /sys before
//! they are used: a kernel built without one is then named for what it lacks, instead of
//! failing later on a missing disk or socket.

use std::path::Path;
use vmc_protocol::kernel_drivers::{GuestDriver, MissingDrivers};

/// Where each device driver shows in sysfs once the kernel has it (built in: vmc's guest
/// kernel has no modules).
const DRIVER_DIRS: [(GuestDriver, &str); 3] = [
    (
        GuestDriver::VirtioMmio,
        "sys/bus/platform/drivers/virtio-mmio",
    ),
    (GuestDriver::VirtioBlk, "sys/bus/virtio/drivers/virtio_blk"),
    (
        GuestDriver::Vsock,
        "sys/bus/virtio/drivers/vmw_vsock_virtio_transport",
    ),
];

/// The filesystems the kernel must list in /proc/filesystems.
const FILESYSTEMS: [(GuestDriver, &str); 3] = [
    (GuestDriver::Erofs, "erofs"),
    (GuestDriver::Ext4, "ext4"),
    (GuestDriver::Overlay, "overlay"),
];

/// The drivers the kernel whose /proc and /sys are mounted under `root` lacks, of those a run
/// needs: the vsock channel always, the disks and their filesystems when `root_disks`.
pub fn missing_drivers(root: &Path, root_disks: bool) -> MissingDrivers {
    let needed = |driver: GuestDriver| root_disks || driver == GuestDriver::Vsock;
    let mut missing = MissingDrivers::default();
    for (driver, dir) in DRIVER_DIRS {
        if needed(driver) && !root.join(dir).is_dir() {
            missing.insert(driver);
        }
    }
    let filesystems = std::fs::read_to_string(root.join("proc/filesystems")).unwrap_or_default();
    for (driver, name) in FILESYSTEMS {
        if needed(driver) && !lists_filesystem(&filesystems, name) {
            missing.insert(driver);
        }
    }
    missing
}

/// Whether /proc/filesystems' text lists `name` (lines `[nodev]\tNAME`).
fn lists_filesystem(filesystems: &str, name: &str) -> bool {
    filesystems
        .lines()
        .any(|line| line.split_whitespace().last() == Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake /proc and /sys under a temporary root: every driver, minus `without`.
    fn kernel_root(without: &[GuestDriver]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for (driver, dir) in DRIVER_DIRS {
            if !without.contains(&driver) {
                std::fs::create_dir_all(root.path().join(dir)).unwrap();
            }
        }
        let mut filesystems = String::from("nodev\tsysfs\nnodev\ttmpfs\n");
        for (driver, name) in FILESYSTEMS {
            if !without.contains(&driver) {
                let nodev = if driver == GuestDriver::Overlay {
                    "nodev"
                } else {
                    ""
                };
                filesystems.push_str(&format!("{nodev}\t{name}\n"));
            }
        }
        std::fs::create_dir(root.path().join("proc")).unwrap();
        std::fs::write(root.path().join("proc/filesystems"), filesystems).unwrap();
        root
    }

    #[test]
    fn a_complete_kernel_lacks_nothing() {
        assert!(missing_drivers(kernel_root(&[]).path(), true).is_empty());
    }

    #[test]
    fn each_missing_driver_is_named() {
        for driver in GuestDriver::ALL {
            let missing = missing_drivers(kernel_root(&[driver]).path(), true);
            assert_eq!(missing.iter().collect::<Vec<_>>(), vec![driver]);
        }
        let missing = missing_drivers(
            kernel_root(&[GuestDriver::Erofs, GuestDriver::Overlay]).path(),
            true,
        );
        assert_eq!(
            missing.config_options(),
            "CONFIG_EROFS_FS, CONFIG_OVERLAY_FS"
        );
    }

    #[test]
    fn without_disks_only_the_channel_is_needed() {
        let root = kernel_root(&[GuestDriver::Erofs, GuestDriver::VirtioBlk]);
        assert!(missing_drivers(root.path(), false).is_empty());
        let root = kernel_root(&[GuestDriver::Vsock]);
        assert_eq!(
            missing_drivers(root.path(), false)
                .iter()
                .collect::<Vec<_>>(),
            vec![GuestDriver::Vsock]
        );
    }

    #[test]
    fn a_filesystem_is_a_whole_name() {
        assert!(lists_filesystem("nodev\toverlay\n\text4\n", "ext4"));
        assert!(!lists_filesystem("\text4\n", "ext"));
        assert!(!lists_filesystem("", "erofs"));
    }
}
