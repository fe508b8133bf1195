//! Per-run scratch disks: a sparse ext4 file per VM run that holds the overlay's upper and work
//! directories (`/dev/vdb`), so what a workload writes costs host disk, not guest RAM, and
//! vanishes with the run.
//!
//! `mkfs.ext4` formats one template per vmc home (`$VMC_HOME/cache/`), once; each run gets a
//! sparse copy of it (only its few MiB of metadata are copied, the rest stays a hole), which
//! is cheaper than running mkfs per run. The template is vmc's own, made from no input: if it
//! is damaged it is simply made again.

use super::tool::Tool;
use crate::error::{IoContext, Result};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use vmc_runtime::signals::SignalCatcher;

/// The apparent size of a scratch disk: what a run can write at most. Sparse, so it costs
/// only what is written (a fresh one holds about 4 MiB).
pub const SCRATCH_DISK_BYTES: u64 = 8 << 30;

/// The template's file name under `$VMC_HOME/cache` (size and recipe version in the name).
const TEMPLATE_NAME: &str = "scratch-disk-8g-v1.ext4";

/// The tool that formats the template.
pub(super) const MKFS_EXT4: Tool = Tool {
    name: "mkfs.ext4",
    package: "e2fsprogs",
    purpose: "VM mode formats each run's scratch disk (the overlay's writable layer) with it",
};

/// Where an ext4 superblock's magic number (0xEF53, little-endian) lies in the file.
const EXT4_MAGIC_OFFSET: u64 = 1024 + 0x38;

/// A run's scratch disk; the file is deleted when this is dropped.
#[derive(Debug)]
pub struct ScratchDisk {
    path: PathBuf,
}

impl ScratchDisk {
    /// The disk file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDisk {
    fn drop(&mut self) {
        // Nothing to report to: the run is over, and a file already gone is fine.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Creates the scratch disk `dest` (which must not exist) as a sparse copy of the template
/// in `cache_dir`, formatting the template first (in `temp_dir`) if it is missing or damaged.
pub(crate) fn create(
    cache_dir: &Path,
    temp_dir: &Path,
    dest: &Path,
    signals: &SignalCatcher,
) -> Result<ScratchDisk> {
    let template = template(cache_dir, temp_dir, signals)?;
    let mut target = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .io_ctx("creating", dest)?;
    // From here on the disk is removed again should anything fail.
    let disk = ScratchDisk {
        path: dest.to_path_buf(),
    };
    copy_sparse(&template, &mut target).io_ctx("copying the scratch disk template to", dest)?;
    Ok(disk)
}

/// The template's path, formatted now if it is not there or not intact.
fn template(cache_dir: &Path, temp_dir: &Path, signals: &SignalCatcher) -> Result<PathBuf> {
    let path = cache_dir.join(TEMPLATE_NAME);
    if is_intact_template(&path) {
        return Ok(path);
    }
    std::fs::create_dir_all(cache_dir).io_ctx("creating", cache_dir)?;
    let temp = tempfile::Builder::new()
        .prefix("scratch-disk-")
        .tempfile_in(temp_dir)
        .io_ctx("creating a temporary file in", temp_dir)?;
    temp.as_file()
        .set_len(SCRATCH_DISK_BYTES)
        .io_ctx("sizing", temp.path())?;
    let args: Vec<&OsStr> = [
        "-q",
        "-F",
        // A scratch disk dies with its run: no journal to write, no blocks kept for root.
        "-O",
        "^has_journal",
        "-m",
        "0",
        // Leave the inode tables unwritten (the file stays sparse), the root directory root's.
        "-E",
        "lazy_itable_init=1,nodiscard,root_owner=0:0",
        "-L",
        "vmc-scratch",
    ]
    .iter()
    .map(OsStr::new)
    .chain([temp.path().as_os_str()])
    .collect();
    MKFS_EXT4.run(&args, temp.path(), signals)?;
    temp.as_file().sync_all().io_ctx("syncing", temp.path())?;
    temp.persist(&path)
        .map_err(|e| e.error)
        .io_ctx("storing", &path)?;
    Ok(path)
}

/// Whether `path` is a regular file of [`SCRATCH_DISK_BYTES`] with an ext4 superblock.
fn is_intact_template(path: &Path) -> bool {
    let Ok(mut file) = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    else {
        return false;
    };
    let mut magic = [0u8; 2];
    file.metadata()
        .is_ok_and(|m| m.is_file() && m.len() == SCRATCH_DISK_BYTES)
        && file.seek(SeekFrom::Start(EXT4_MAGIC_OFFSET)).is_ok()
        && file.read_exact(&mut magic).is_ok()
        && u16::from_le_bytes(magic) == 0xEF53
}

/// Copies `source` to the empty file `target`: the data ranges only (found with SEEK_DATA and
/// SEEK_HOLE), so the holes stay holes and the copy is as sparse as the source.
fn copy_sparse(source: &Path, target: &mut File) -> io::Result<()> {
    use nix::unistd::{lseek, Whence};
    let mut source = File::open(source)?;
    let len = source.metadata()?.len();
    target.set_len(len)?;
    let mut offset = 0;
    while offset < len as i64 {
        let data = match lseek(&source, offset, Whence::SeekData) {
            Ok(data) => data,
            // No data after `offset`: the rest is a hole.
            Err(nix::errno::Errno::ENXIO) => break,
            Err(errno) => return Err(errno.into()),
        };
        let hole = lseek(&source, data, Whence::SeekHole)?;
        source.seek(SeekFrom::Start(data as u64))?;
        target.seek(SeekFrom::Start(data as u64))?;
        copy_range(&mut source, target, (hole - data) as u64)?;
        offset = hole;
    }
    Ok(())
}

/// Copies `len` bytes from `source` to `target` at their current offsets with plain reads and
/// writes: not `io::copy`, whose copy_file_range the VMM's seccomp filter refuses on the thread
/// that ran an earlier VM (`vmc bench` makes a scratch disk per run in one process).
fn copy_range(source: &mut File, target: &mut File, len: u64) -> io::Result<()> {
    let mut buffer = vec![0u8; 256 * 1024];
    let mut left = len;
    while left > 0 {
        let want = buffer
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        let got = source.read(&mut buffer[..want])?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the template shrank while being copied",
            ));
        }
        target.write_all(&buffer[..got])?;
        left -= got as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileExt, MetadataExt};

    #[test]
    fn sparse_copies_keep_data_and_holes() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        let file = File::create(&source).unwrap();
        file.set_len(64 << 20).unwrap();
        file.write_all_at(b"start", 0).unwrap();
        file.write_all_at(b"middle", 32 << 20).unwrap();
        file.write_all_at(b"end", (64 << 20) - 3).unwrap();
        let target_path = dir.path().join("target");
        let mut target = File::create(&target_path).unwrap();
        copy_sparse(&source, &mut target).unwrap();
        assert_eq!(
            std::fs::read(&target_path).unwrap(),
            std::fs::read(&source).unwrap()
        );
        let allocated = std::fs::metadata(&target_path).unwrap().blocks() * 512;
        assert!(
            allocated <= 1 << 20,
            "{allocated} bytes allocated for 14 bytes of data"
        );
    }

    #[test]
    fn a_damaged_template_is_not_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(TEMPLATE_NAME);
        assert!(!is_intact_template(&path), "missing");
        let file = File::create(&path).unwrap();
        file.set_len(SCRATCH_DISK_BYTES).unwrap();
        assert!(!is_intact_template(&path), "no superblock");
        file.write_all_at(&0xEF53u16.to_le_bytes(), EXT4_MAGIC_OFFSET)
            .unwrap();
        assert!(is_intact_template(&path));
        file.set_len(SCRATCH_DISK_BYTES / 2).unwrap();
        assert!(!is_intact_template(&path), "truncated");
    }
}
