//! The image's root filesystem as an erofs image: built by `mkfs.erofs` (erofs-utils), checked
//! by reading its superblock back.
//!
//! erofs is Linux's read-only filesystem for images: mkfs.erofs fills it straight from a
//! directory (no root, no loop mount), keeping ownership, modes (setuid and setgid included),
//! hard links, symlinks, device nodes, FIFOs, xattrs (file capabilities among them) and
//! modification times. The image is uncompressed, so the guest kernel needs no decompressor
//! and spends no time decompressing (METHODOLOGY.md: erofs against ext4).

use super::tool::Tool;
use crate::error::{IoContext, Result};
use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use vmc_runtime::signals::SignalCatcher;

/// The tool that builds erofs images.
pub(super) const MKFS_EROFS: Tool = Tool {
    name: "mkfs.erofs",
    package: "erofs-utils",
    purpose: "VM mode hands the guest the image's root filesystem as an erofs disk made by it",
};

/// Where the superblock starts (the first 1 KiB is left for boot sectors).
const SUPERBLOCK_OFFSET: usize = 1024;
/// `EROFS_SUPER_MAGIC_V1`, little-endian at the superblock's start.
const MAGIC: u32 = 0xE0F5_E1E2;
/// `EROFS_FEATURE_COMPAT_SB_CHKSUM`: the superblock carries a CRC32C of itself.
const FEATURE_COMPAT_SB_CHKSUM: u32 = 0x1;
/// The only block size a 4 KiB-page guest kernel mounts (`blkszbits` 12).
const BLOCK_SIZE: usize = 4096;

/// Writes an erofs image of the directory `rootfs` to `out` (replacing what `out` holds);
/// an ending signal caught by `signals` stops it ([`Tool::run`]).
pub fn build(rootfs: &Path, out: &Path, signals: &SignalCatcher) -> Result<()> {
    let args: [&OsStr; 4] = [
        OsStr::new("--quiet"),
        // Per-file modification times, as in the rootfs (1.5's default, said explicitly).
        OsStr::new("--preserve-mtime"),
        out.as_os_str(),
        rootfs.as_os_str(),
    ];
    MKFS_EROFS.run(&args, rootfs, signals)
}

/// Checks that the file at `path` is a whole erofs image as [`build`] makes them: a regular
/// file (not a symlink) with the erofs magic, 4 KiB blocks, a superblock whose checksum
/// matches, and exactly the length its block count says. Returns that length, or why not.
pub fn check(path: &Path) -> Result<std::result::Result<u64, String>> {
    let mut file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .io_ctx("opening", path)?;
    let meta = file.metadata().io_ctx("inspecting", path)?;
    if !meta.is_file() {
        return Ok(Err("it is not a regular file".into()));
    }
    let mut block = Vec::with_capacity(BLOCK_SIZE);
    (&mut file)
        .take(BLOCK_SIZE as u64)
        .read_to_end(&mut block)
        .io_ctx("reading", path)?;
    Ok(check_superblock(&block, meta.len()))
}

/// [`check`] on the image's first block `block` and its file length `len`.
fn check_superblock(block: &[u8], len: u64) -> std::result::Result<u64, String> {
    if block.len() < BLOCK_SIZE {
        return Err(format!(
            "it is {len} bytes long, shorter than one {BLOCK_SIZE}-byte block"
        ));
    }
    let superblock = &block[SUPERBLOCK_OFFSET..BLOCK_SIZE];
    let u32_at =
        |at: usize| u32::from_le_bytes(superblock[at..at + 4].try_into().expect("4 bytes"));
    if u32_at(0) != MAGIC {
        return Err("it has no erofs superblock (bad magic number)".into());
    }
    if superblock[12] != BLOCK_SIZE.trailing_zeros() as u8 {
        return Err(format!(
            "its block size is 2^{} bytes, not {BLOCK_SIZE}",
            superblock[12]
        ));
    }
    if u32_at(8) & FEATURE_COMPAT_SB_CHKSUM == 0 {
        return Err("its superblock carries no checksum".into());
    }
    let mut zeroed = superblock.to_vec();
    zeroed[4..8].fill(0);
    let (stored, computed) = (u32_at(4), crc32c_register(&zeroed));
    if stored != computed {
        return Err(format!(
            "its superblock checksum is {stored:#010x}, the superblock hashes to {computed:#010x}"
        ));
    }
    let expected = u64::from(u32_at(36)) * BLOCK_SIZE as u64;
    if len != expected {
        return Err(format!(
            "it is {len} bytes long, its superblock says {expected} (truncated or extended)"
        ));
    }
    Ok(len)
}

/// CRC32C (Castagnoli) of `bytes` as the kernel's `crc32c(~0, ...)` computes it for erofs:
/// the register starts at all ones and is not inverted at the end.
fn crc32c_register(bytes: &[u8]) -> u32 {
    const POLYNOMIAL: u32 = 0x82F6_3B78; // reflected 0x1EDC6F41
    bytes.iter().fold(!0u32, |mut crc, &byte| {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLYNOMIAL
            } else {
                crc >> 1
            };
        }
        crc
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // The CRC32C check value of "123456789" is 0xE3069283 after the final inversion.
        assert_eq!(!crc32c_register(b"123456789"), 0xE306_9283);
    }

    /// A first block with a valid superblock for an image of `blocks` blocks.
    fn first_block(blocks: u32) -> Vec<u8> {
        let mut block = vec![0u8; BLOCK_SIZE];
        let sb = &mut block[SUPERBLOCK_OFFSET..];
        sb[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        sb[8..12].copy_from_slice(&FEATURE_COMPAT_SB_CHKSUM.to_le_bytes());
        sb[12] = 12;
        sb[36..40].copy_from_slice(&blocks.to_le_bytes());
        let crc = crc32c_register(sb);
        sb[4..8].copy_from_slice(&crc.to_le_bytes());
        block
    }

    #[test]
    fn superblock_checks_catch_each_kind_of_damage() {
        let good = first_block(3);
        assert_eq!(check_superblock(&good, 3 * 4096), Ok(3 * 4096));
        let short = check_superblock(&good, 2 * 4096).unwrap_err();
        assert!(short.contains("truncated"), "{short}");
        assert!(check_superblock(&good[..100], 100)
            .unwrap_err()
            .contains("shorter"));
        let mut flipped = good.clone();
        flipped[SUPERBLOCK_OFFSET + 200] ^= 1;
        assert!(check_superblock(&flipped, 3 * 4096)
            .unwrap_err()
            .contains("checksum"));
        let mut wrong_magic = good.clone();
        wrong_magic[SUPERBLOCK_OFFSET] ^= 1;
        assert!(check_superblock(&wrong_magic, 3 * 4096)
            .unwrap_err()
            .contains("magic"));
        let mut big_blocks = first_block(3);
        big_blocks[SUPERBLOCK_OFFSET + 12] = 16;
        assert!(check_superblock(&big_blocks, 3 * 4096)
            .unwrap_err()
            .contains("block size"));
    }
}
