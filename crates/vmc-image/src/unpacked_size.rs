//! An image's size as Docker shows it: the bytes of the files its layers hold once unpacked,
//! whatever the layers' compression. Counted once per layer (reading its tar stream) and kept
//! in `$VMC_HOME/layer-sizes/<hex digest>`, removed with the layer's blob.

use crate::compression::open_tar_stream;
use crate::digest;
use crate::error::{ImageError, IoContext, Result};
use crate::layout::Layout;
use std::path::{Path, PathBuf};

/// The directory of the counted sizes, under the vmc home.
pub(crate) const SIZES_DIR: &str = "layer-sizes";

/// The counted sizes of a store's layers.
pub(crate) struct LayerSizes<'a> {
    dir: PathBuf,
    layout: &'a Layout,
}

impl<'a> LayerSizes<'a> {
    /// The sizes kept under `home` for the blobs of `layout`.
    pub(crate) fn new(home: &Path, layout: &'a Layout) -> Self {
        LayerSizes {
            dir: home.join(SIZES_DIR),
            layout,
        }
    }

    /// The unpacked bytes of layer `layer_digest`: the kept count, else counted now and kept.
    /// A layer that cannot be read to its end (a damaged blob, refused when it is unpacked)
    /// counts as its `stored` bytes, so that listing the images still works.
    pub(crate) fn of(&self, layer_digest: &str, stored: u64) -> Result<u64> {
        let kept = self.kept_path(layer_digest)?;
        if let Some(bytes) = std::fs::read_to_string(&kept)
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            return Ok(bytes);
        }
        let Ok(bytes) = count(&self.layout.blob_path(layer_digest)?) else {
            return Ok(stored);
        };
        std::fs::create_dir_all(&self.dir).io_ctx("creating", &self.dir)?;
        self.layout
            .write_atomic(&kept, format!("{bytes}\n").as_bytes())?;
        Ok(bytes)
    }

    /// Removes the kept count of a layer whose blob is gone.
    pub(crate) fn forget(&self, layer_digest: &str) -> Result<()> {
        let kept = self.kept_path(layer_digest)?;
        match std::fs::remove_file(&kept) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(err).io_ctx("removing", &kept)
            }
            _ => Ok(()),
        }
    }

    fn kept_path(&self, layer_digest: &str) -> Result<PathBuf> {
        Ok(self.dir.join(digest::sha256_hex(layer_digest)?))
    }
}

/// The bytes of the regular files in the layer tar at `path` (plain, gzip or zstd); links,
/// directories and whiteouts take none, as in Docker's count of an unpacked layer.
fn count(path: &Path) -> Result<u64> {
    let malformed = |e: std::io::Error| ImageError::Malformed {
        what: format!("layer {}", path.display()),
        reason: e.to_string(),
    };
    let mut archive = tar::Archive::new(open_tar_stream(path)?);
    let mut bytes = 0u64;
    for entry in archive.entries().map_err(malformed)? {
        let entry = entry.map_err(malformed)?;
        if entry.header().entry_type().is_file() {
            bytes = bytes.saturating_add(entry.size());
        }
    }
    Ok(bytes)
}
