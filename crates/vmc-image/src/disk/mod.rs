//! VM mode's disks: the image's root filesystem as a read-only erofs image, made once per image
//! ID and cached at `$VMC_HOME/disks/<image-id>-v1.erofs` (deleted with the image), and each
//! run's scratch disk ([`scratch`]). [`crate::Store::rootfs_disk`] and
//! [`crate::Store::scratch_disk`] are the entry points.

pub mod erofs;
pub mod scratch;
mod tool;

use crate::digest::is_sha256_hex;
use crate::error::{ImageError, IoContext, Result};
use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vmc_runtime::signals::SignalCatcher;

/// The directory of cached root filesystem disks below the vmc home.
pub const CACHE_DIR: &str = "disks";

/// The end of a cached disk's file name: the format and the version of the recipe ([`erofs`]),
/// so that a changed recipe never picks up disks made by the old one.
const DISK_SUFFIX: &str = "-v1.erofs";

/// An image's root filesystem disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsDisk {
    /// The disk file (hand it to the guest read-only).
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// How long building it took; `None` when it came from the cache.
    pub built_in: Option<Duration>,
}

/// The paths of the tools VM mode's disks are made with (mkfs.erofs, mkfs.ext4), or the
/// error naming the package to install for the first one missing (for `vmc doctor`).
pub fn locate_tools() -> Result<Vec<PathBuf>> {
    [&erofs::MKFS_EROFS, &scratch::MKFS_EXT4]
        .iter()
        .map(|tool| tool.locate())
        .collect()
}

/// The cached disk of image `image_id` below `home`, building it from `rootfs` (in a temporary
/// file in `temp_dir`, renamed into place: concurrent runs are safe) if it is not there. A
/// cached disk that fails [`erofs::check`] is an error naming the file. An ending signal
/// caught by `signals` stops the build and removes its temporary file.
pub(crate) fn cached_rootfs_disk(
    home: &Path,
    temp_dir: &Path,
    image_id: &str,
    rootfs: &Path,
    signals: &SignalCatcher,
) -> Result<RootfsDisk> {
    if !is_sha256_hex(image_id) {
        return Err(ImageError::InvalidReference {
            reference: image_id.to_string(),
            reason: "an image ID is 64 lowercase hex digits".into(),
        });
    }
    let dir = home.join(CACHE_DIR);
    let path = dir.join(format!("{image_id}{DISK_SUFFIX}"));
    if let Some(bytes) = checked_if_present(&path)? {
        return Ok(RootfsDisk {
            path,
            bytes,
            built_in: None,
        });
    }
    std::fs::create_dir_all(&dir).io_ctx("creating", &dir)?;
    let started = Instant::now();
    let temp = tempfile::Builder::new()
        .prefix("disk-")
        .tempfile_in(temp_dir)
        .io_ctx("creating a temporary file in", temp_dir)?;
    erofs::build(rootfs, temp.path(), signals)?;
    let bytes = erofs::check(temp.path())?.map_err(|reason| ImageError::ToolFailed {
        tool: "mkfs.erofs",
        input: rootfs.to_path_buf(),
        reason: format!("it wrote an image vmc cannot use: {reason}"),
    })?;
    temp.as_file().sync_all().io_ctx("syncing", temp.path())?;
    let built_in = Some(started.elapsed());
    match temp.persist_noclobber(&path) {
        Ok(_) => {
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .io_ctx("syncing", &dir)?;
            Ok(RootfsDisk {
                path,
                bytes,
                built_in,
            })
        }
        // Another run stored the same disk first: use theirs (ours is deleted with `temp`).
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {
            let bytes = checked_if_present(&path)?.unwrap_or(bytes);
            Ok(RootfsDisk {
                path,
                bytes,
                built_in,
            })
        }
        Err(e) => Err(e.error).io_ctx("storing", &path),
    }
}

/// The size of the intact disk at `path`; `None` if there is none; an error if it is damaged.
fn checked_if_present(path: &Path) -> Result<Option<u64>> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        other => other.io_ctx("inspecting", path)?,
    };
    match erofs::check(path)? {
        Ok(bytes) => Ok(Some(bytes)),
        Err(reason) => Err(ImageError::CorruptDisk {
            path: path.to_path_buf(),
            reason,
        }),
    }
}

/// Removes the cached disks of image `image_id` (for `vmc rmi`); returns how many.
pub(crate) fn remove_cached_disks(home: &Path, image_id: &str) -> Result<usize> {
    remove_disks_where(home, |id| id == image_id)
}

/// Removes the cached disks of every image whose ID is not in `keep` (for `vmc image prune`),
/// including disks of older recipes; returns how many.
pub(crate) fn remove_disks_except(home: &Path, keep: &HashSet<String>) -> Result<usize> {
    remove_disks_where(home, |id| !keep.contains(id))
}

/// Removes the cached disks whose image ID `doomed` accepts; returns how many.
fn remove_disks_where(home: &Path, doomed: impl Fn(&str) -> bool) -> Result<usize> {
    let dir = home.join(CACHE_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        other => other.io_ctx("listing", &dir)?,
    };
    let mut removed = 0;
    for entry in entries {
        let path = entry.io_ctx("listing", &dir)?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let image_id = name.split_once('-').map(|(id, _)| id);
        if image_id.is_some_and(|id| is_sha256_hex(id) && doomed(id)) {
            std::fs::remove_file(&path).io_ctx("removing", &path)?;
            removed += 1;
        }
    }
    Ok(removed)
}
