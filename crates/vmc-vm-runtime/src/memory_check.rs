//! Does the guest fit in `-m`? Checked before anything expensive (building the image's
//! initramfs, setting up KVM), so a VM too small for its image is refused at once, with the
//! `-m` to give, instead of the guest kernel panicking seconds later.
//!
//! The image's root filesystem reaches the guest as an initramfs: the VMM copies the archive
//! into guest RAM above the kernel, and the kernel unpacks it into its root tmpfs, which may
//! take at most half of the RAM the kernel has not reserved when it mounts it — and then the
//! kernel image and the archive are reserved. So the guest needs, besides the kernel, the
//! archive once and its unpacked files twice; and, once the archive is freed, room for the
//! workload beside the unpacked files.
//!
//! Checked against the guest kernel of kernels/build.sh (12 MiB in memory) in
//! scripts/kvm-sandbox, by the smallest `-m` (in 4 MiB steps) each image booted in, and what
//! this model asks for: busybox (3.4 MiB unpacked) 32 MiB / 32 MiB; busybox + 16000 files of
//! 100 bytes (66 MiB of pages, 7 MiB of archive) 160 / 163; busybox + 64 MiB 220 / 228;
//! busybox + 160 MiB 516 / 522.

use crate::error::VmRuntimeError;
use std::collections::HashSet;
use std::fs;
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use vmc_vm::config::MIN_MEMORY_BYTES;

/// RAM the guest kernel takes for itself while it boots, beyond its image: page tables,
/// per-CPU areas, slabs, the unpacker's buffers.
const KERNEL_WORKING_BYTES: u64 = 8 << 20;

/// RAM the workload and the init get at the least once the guest has booted.
const WORKLOAD_FLOOR_BYTES: u64 = 6 << 20;

/// The kernel's share of all of RAM: its page structures (64 bytes per 4 KiB page, 1/64) and
/// the page cache's indexes, together about 1/48.
const KERNEL_SHARE_DIVISOR: u64 = 48;

/// What the guest holds in RAM before its workload runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestFootprint {
    /// The guest memory the running kernel occupies (`vmc_vm::kernel::memory_range`).
    pub kernel: Range<u64>,
    /// Bytes of the initramfs archives the VMM copies into guest RAM.
    pub initramfs_bytes: u64,
    /// Bytes the unpacked initramfs takes in the guest's root tmpfs (file data in whole pages).
    pub unpacked_bytes: u64,
}

impl GuestFootprint {
    /// The least guest RAM this guest boots and runs in, in whole MiB.
    pub fn required_bytes(&self) -> u64 {
        let kernel = self.kernel.end - self.kernel.start + KERNEL_WORKING_BYTES;
        // While the kernel unpacks, the archive is reserved and the tmpfs may take half of
        // the rest.
        let unpacking = kernel + self.initramfs_bytes + 2 * self.unpacked_bytes;
        // Afterwards the archive is freed; the workload needs room beside the files.
        let running = kernel + self.unpacked_bytes + WORKLOAD_FLOOR_BYTES;
        let usable = unpacking.max(running);
        // The kernel's share comes on top: usable = total * (1 - 1/divisor).
        let total = usable + usable.div_ceil(KERNEL_SHARE_DIVISOR - 1);
        // The VMM places the archive above the kernel, below the top of RAM.
        let placed = self.kernel.end + self.initramfs_bytes;
        total
            .max(placed)
            .next_multiple_of(1 << 20)
            .max(MIN_MEMORY_BYTES)
    }
}

/// Refuses `memory_bytes` of guest RAM when `footprint` does not fit in it, naming the `-m`
/// that does.
pub fn check_fits(memory_bytes: u64, footprint: &GuestFootprint) -> Result<(), VmRuntimeError> {
    let required = footprint.required_bytes();
    if memory_bytes >= required {
        return Ok(());
    }
    Err(VmRuntimeError::ImageDoesNotFit {
        memory_mib: memory_bytes >> 20,
        image_mib: footprint.unpacked_bytes.div_ceil(1 << 20),
        required_mib: required >> 20,
    })
}

/// What an image's initramfs takes: the archive's size and the unpacked files' pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImageSize {
    /// Bytes of file data and symlink targets, each counted once (hard links share theirs).
    pub data_bytes: u64,
    /// Those bytes in whole 4 KiB pages, as the guest's tmpfs stores them.
    pub page_bytes: u64,
    /// Entries of the tree.
    pub entries: u64,
}

/// Bytes of one page of the guest's tmpfs.
const PAGE_BYTES: u64 = 4096;

/// Bytes an archive entry takes beyond its data: the newc header (110 bytes), the name and
/// padding, on average.
const ARCHIVE_ENTRY_OVERHEAD: u64 = 110 + 64;

/// Symbolic links longer than this take a page of tmpfs; shorter ones live in the inode.
const SHORT_SYMLINK_BYTES: u64 = 128;

impl ImageSize {
    /// The size of the image's archive: its data plus each entry's header and name.
    pub fn archive_bytes(&self) -> u64 {
        self.data_bytes + self.entries * ARCHIVE_ENTRY_OVERHEAD
    }

    /// Adds a file of `bytes` (such as the guest init the archive carries).
    pub fn add_file(&mut self, bytes: u64) {
        self.entries += 1;
        self.data_bytes += bytes;
        self.page_bytes += bytes.next_multiple_of(PAGE_BYTES);
    }

    /// Measures the tree at `rootfs` (without following symbolic links).
    pub fn of_tree(rootfs: &Path) -> Result<Self, VmRuntimeError> {
        let mut size = ImageSize::default();
        let mut seen_inodes = HashSet::new();
        let mut pending: Vec<PathBuf> = vec![rootfs.to_path_buf()];
        while let Some(dir) = pending.pop() {
            let entries = fs::read_dir(&dir).map_err(VmRuntimeError::io("read", &dir))?;
            for entry in entries {
                let entry = entry.map_err(VmRuntimeError::io("read", &dir))?;
                let meta = entry
                    .metadata()
                    .map_err(VmRuntimeError::io("inspect", entry.path()))?;
                size.entries += 1;
                let kind = meta.file_type();
                if kind.is_dir() {
                    pending.push(entry.path());
                } else if kind.is_symlink() {
                    size.data_bytes += meta.len();
                    if meta.len() > SHORT_SYMLINK_BYTES {
                        size.page_bytes += PAGE_BYTES;
                    }
                } else if kind.is_file()
                    && (meta.nlink() == 1 || seen_inodes.insert((meta.dev(), meta.ino())))
                {
                    size.data_bytes += meta.len();
                    size.page_bytes += meta.len().next_multiple_of(PAGE_BYTES);
                }
            }
        }
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guest kernel of kernels/build.sh with an image of `initramfs_kib` of archive and
    /// `unpacked_kib` of pages.
    fn footprint(initramfs_kib: u64, unpacked_kib: u64) -> GuestFootprint {
        GuestFootprint {
            kernel: 0x100_0000..0x1c1_8000,
            initramfs_bytes: initramfs_kib << 10,
            unpacked_bytes: unpacked_kib << 10,
        }
    }

    #[test]
    fn busybox_needs_only_the_smallest_vm() {
        let busybox = footprint(3530, 3480);
        assert_eq!(busybox.required_bytes(), MIN_MEMORY_BYTES);
        check_fits(MIN_MEMORY_BYTES, &busybox).unwrap();
    }

    #[test]
    fn the_model_asks_at_least_what_the_measured_guests_needed() {
        // (archive KiB, unpacked KiB, the smallest -m in MiB that booted in the sandbox, in
        // 4 MiB steps): see the module's documentation.
        for (initramfs_kib, unpacked_kib, booted_mib) in [
            (7_070, 67_480, 160),
            (69_070, 69_010, 220),
            (167_380, 167_310, 516),
        ] {
            let required_mib = footprint(initramfs_kib, unpacked_kib).required_bytes() >> 20;
            assert!(
                (booted_mib..booted_mib + 16).contains(&required_mib),
                "{unpacked_kib} KiB unpacked: asks {required_mib} MiB, booted in {booted_mib} MiB"
            );
        }
    }

    #[test]
    fn a_vm_too_small_for_its_image_is_one_line_naming_the_size_to_give() {
        let image = footprint(170 << 10, 180 << 10);
        let required = image.required_bytes();
        assert_eq!(required % (1 << 20), 0);
        check_fits(required, &image).unwrap();
        let err = check_fits(256 << 20, &image).unwrap_err().to_string();
        let give = format!("give -m {}m or more", required >> 20);
        assert!(
            err.starts_with("-m 256m is too small") && err.contains(&give),
            "{err}"
        );
        assert!(err.contains("(180 MiB)"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    #[test]
    fn the_tree_is_measured_in_pages_with_hard_links_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/b/small"), [1u8; 10]).unwrap();
        fs::write(root.join("big"), vec![2u8; 5000]).unwrap();
        fs::hard_link(root.join("big"), root.join("a/big-again")).unwrap();
        std::os::unix::fs::symlink("a/b/small", root.join("link")).unwrap();
        std::os::unix::fs::symlink("x".repeat(200), root.join("long-link")).unwrap();
        let size = ImageSize::of_tree(root).unwrap();
        assert_eq!(size.entries, 7);
        assert_eq!(size.data_bytes, 10 + 5000 + 9 + 200);
        assert_eq!(size.page_bytes, 4096 + 8192 + 4096);
        assert!(size.archive_bytes() > size.data_bytes);
        let mut with_init = size;
        with_init.add_file(4097);
        assert_eq!(with_init.entries, 8);
        assert_eq!(with_init.page_bytes, size.page_bytes + 8192);
    }
}
