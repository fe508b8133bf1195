//! Applies image layers to a directory, refusing anything that would write outside it.
//!
//! Every parent directory of an entry is resolved component by component inside the root
//! (symlinks are followed as if the root were `/`, `..` may not climb above it, and a symlink
//! may not lead to a directory that does not exist yet), so no write can land outside.
//! Whiteouts (`.wh.NAME`) and opaque markers (`.wh..wh..opq`) only hide content of lower
//! layers, never entries of the layer that carries them.

mod applier;

use crate::compression::open_tar_stream;
use crate::digest::{self, HashingReader};
use crate::error::{ImageError, IoContext, Result};
use crate::progress::Progress;
use applier::Applier;
use nix::sys::stat;
use nix::sys::time::TimeVal;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// One layer blob to apply.
#[derive(Debug, Clone)]
pub struct LayerBlob {
    /// Path of the blob file.
    pub path: PathBuf,
    /// The blob digest (`sha256:…`) it must hash to.
    pub digest: String,
    /// The digest of the uncompressed tar (`rootfs.diff_ids`), when the config has it.
    pub diff_id: Option<String>,
}

/// Applies `layers` in order to the existing directory `root`.
pub fn unpack_layers(root: &Path, layers: &[LayerBlob], show_progress: bool) -> Result<()> {
    let mut dir_times = HashMap::new();
    for (index, layer) in layers.iter().enumerate() {
        verify_blob(layer, index, layers.len(), show_progress)?;
        apply_layer(root, layer, &mut dir_times)?;
    }
    // Directory mtimes last (creating children changes them), deepest first, and only for
    // paths that are still directories; the topmost layer's time wins.
    let mut dirs: Vec<(PathBuf, u64)> = dir_times.into_iter().collect();
    dirs.sort_by_key(|(path, _)| std::cmp::Reverse(path.components().count()));
    for (path, mtime) in dirs {
        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            set_mtime(&path, mtime).io_ctx("setting mtime of", &path)?;
        }
    }
    Ok(())
}

/// Checks that the blob file still hashes to its digest before anything is unpacked.
fn verify_blob(layer: &LayerBlob, index: usize, count: usize, show_progress: bool) -> Result<()> {
    let file = File::open(&layer.path).io_ctx("opening layer", &layer.path)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let progress = Progress::new(show_progress, size, format!("layer {}/{count}", index + 1));
    let (actual, _) = HashingReader::new(progress.wrap_read(file))
        .finish()
        .io_ctx("reading layer", &layer.path)?;
    digest::verify(&format!("layer {}", layer.digest), &layer.digest, &actual)
}

/// Applies one layer blob to `root`, checking the uncompressed digest if known.
fn apply_layer(
    root: &Path,
    layer: &LayerBlob,
    dir_times: &mut HashMap<PathBuf, u64>,
) -> Result<()> {
    let corrupt = |e: io::Error| ImageError::CorruptLayer {
        layer: layer.digest.clone(),
        reason: e.to_string(),
    };
    let mut plain = HashingReader::new(open_tar_stream(&layer.path)?);
    // Where the data of the last entry ended, and the read error that stopped the walk.
    let mut last_end = 0;
    let mut stopped = None;
    {
        let mut archive = tar::Archive::new(&mut plain);
        let mut applier = Applier::new(root, &layer.digest, dir_times);
        for entry in archive.entries().map_err(corrupt)? {
            match entry {
                Ok(mut entry) => {
                    last_end = entry.raw_file_position() + entry.size();
                    applier.apply(&mut entry)?;
                }
                Err(e) => {
                    stopped = Some(e);
                    break;
                }
            }
        }
    }
    // Some writers (umoci 0.4.7) end the stream right after the last entry's data, without
    // padding or end-of-archive blocks. That is accepted; any other short read is not.
    if let Some(e) = stopped {
        if last_end == 0 || plain.bytes_read() != last_end {
            return Err(corrupt(e));
        }
    }
    let (diff_id, _) = plain.finish().map_err(corrupt)?;
    if let Some(expected) = &layer.diff_id {
        digest::verify(
            &format!("uncompressed layer {}", layer.digest),
            expected,
            &diff_id,
        )?;
    }
    Ok(())
}

/// Removes whatever is at `path` (a directory recursively, never following symlinks).
pub(crate) fn remove_any(path: &Path) -> Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.io_ctx("removing", path)
}

/// Sets the modification (and access) time without following a final symlink.
fn set_mtime(path: &Path, mtime: u64) -> io::Result<()> {
    let time = TimeVal::new(mtime as i64, 0);
    stat::lutimes(path, &time, &time).map_err(io::Error::from)
}
