//! Reading files of an import source directory without leaving it.

use crate::error::{ImageError, IoContext, Result};
use std::path::{Path, PathBuf};

/// A source directory (a docker-archive or OCI layout, possibly unpacked from a tarball).
pub(crate) struct SourceDir {
    root: PathBuf,
}

impl SourceDir {
    /// Opens `root`.
    pub fn open(root: &Path) -> Result<SourceDir> {
        let root = root.canonicalize().io_ctx("resolving", root)?;
        Ok(SourceDir { root })
    }

    /// The path of the regular file `relative` inside the source; symlinks may not leave it.
    pub fn file(&self, relative: &str) -> Result<PathBuf> {
        let missing = |reason: &str| ImageError::Malformed {
            what: format!("{} in {}", relative, self.root.display()),
            reason: reason.to_string(),
        };
        let joined = self.root.join(relative.trim_start_matches('/'));
        let real = joined
            .canonicalize()
            .map_err(|_| missing("the file is missing"))?;
        if !real.starts_with(&self.root) {
            return Err(missing("the path leads outside the source"));
        }
        if !real.is_file() {
            return Err(missing("not a regular file"));
        }
        Ok(real)
    }

    /// The path of the blob `sha256:<hex>` in an OCI layout.
    pub fn blob(&self, digest: &str) -> Result<PathBuf> {
        let hex = crate::digest::sha256_hex(digest)?;
        self.file(&format!("blobs/sha256/{hex}"))
    }

    /// Reads a small file.
    pub fn read(&self, relative: &str) -> Result<Vec<u8>> {
        let path = self.file(relative)?;
        std::fs::read(&path).io_ctx("reading", &path)
    }
}

/// Parses JSON, naming the document in the error.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::Malformed {
        what: what.to_string(),
        reason: e.to_string(),
    })
}
