//! The on-disk OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`) with atomic writes.

use crate::digest::{self, HashingReader, HashingWriter};
use crate::error::{ImageError, IoContext, Result};
use crate::progress::Progress;
use nix::fcntl::{Flock, FlockArg};
use oci_spec::image::{ImageIndex, ImageIndexBuilder};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The content of the `oci-layout` file.
const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// An OCI image layout directory plus a scratch directory on the same filesystem.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    scratch: PathBuf,
}

impl Layout {
    /// Opens the layout at `root`, creating `oci-layout`, `index.json` and `blobs/sha256` if
    /// missing. Temporary files go to `scratch`, which must be on the same filesystem.
    pub fn open(root: &Path, scratch: &Path) -> Result<Layout> {
        let layout = Layout {
            root: root.to_path_buf(),
            scratch: scratch.to_path_buf(),
        };
        let blobs = root.join("blobs/sha256");
        fs::create_dir_all(&blobs).io_ctx("creating", &blobs)?;
        fs::create_dir_all(scratch).io_ctx("creating", scratch)?;
        if !root.join("oci-layout").exists() {
            layout.write_atomic(&root.join("oci-layout"), OCI_LAYOUT.as_bytes())?;
        }
        if !root.join("index.json").exists() {
            let _lock = layout.lock_index()?;
            if !root.join("index.json").exists() {
                layout.write_index(&empty_index())?;
            }
        }
        Ok(layout)
    }

    /// The layout directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The scratch directory for temporary files.
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }

    /// The path of the blob named by `digest` (`sha256:<hex>`).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self
            .root
            .join("blobs/sha256")
            .join(digest::sha256_hex(digest)?))
    }

    /// True if the blob is present.
    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).map(|p| p.is_file()).unwrap_or(false)
    }

    /// Reads a whole (small) blob and checks its digest.
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let path = self.blob_path(digest)?;
        let bytes = fs::read(&path).io_ctx("reading blob", &path)?;
        digest::verify(
            &format!("blob {digest}"),
            digest,
            &digest::sha256_of(&bytes),
        )?;
        Ok(bytes)
    }

    /// Stores `bytes` as a blob and returns its digest.
    pub fn write_blob_bytes(&self, bytes: &[u8]) -> Result<String> {
        let digest = digest::sha256_of(bytes);
        let path = self.blob_path(&digest)?;
        if !path.is_file() {
            self.write_atomic(&path, bytes)?;
        }
        Ok(digest)
    }

    /// Streams `reader` into a new blob, hashing it on the way. With `expected`, a different
    /// digest is an error and nothing is stored. Returns `(digest, size)`.
    pub fn ingest(
        &self,
        reader: impl Read,
        expected: Option<&str>,
        what: &str,
        progress: &Progress,
    ) -> Result<(String, u64)> {
        let mut temp = self.temp_file()?;
        let mut reader = HashingReader::new(progress.wrap_read(reader));
        io::copy(&mut reader, temp.as_file_mut()).io_ctx("writing", temp.path())?;
        let (digest, size) = reader.finish().io_ctx("reading", Path::new(what))?;
        if let Some(expected) = expected {
            digest::verify(what, expected, &digest)?;
        }
        self.persist_blob(temp, &digest)?;
        Ok((digest, size))
    }

    /// Returns a writer for a blob whose digest is known only at the end; finish it with
    /// [`Layout::commit_writer`].
    pub fn blob_writer(&self) -> Result<HashingWriter<tempfile::NamedTempFile>> {
        Ok(HashingWriter::new(self.temp_file()?))
    }

    /// Stores what was written to `writer` as a blob; returns `(digest, size)`.
    pub fn commit_writer(
        &self,
        writer: HashingWriter<tempfile::NamedTempFile>,
    ) -> Result<(String, u64)> {
        let (temp, digest, size) = writer.finish();
        self.persist_blob(temp, &digest)?;
        Ok((digest, size))
    }

    /// Fsyncs `temp` and renames it to the blob path of `digest` (unless present already).
    fn persist_blob(&self, temp: tempfile::NamedTempFile, digest: &str) -> Result<()> {
        let path = self.blob_path(digest)?;
        if path.is_file() {
            return Ok(());
        }
        temp.as_file().sync_all().io_ctx("syncing", temp.path())?;
        set_readable(temp.path())?;
        temp.persist(&path).map_err(|e| ImageError::Io {
            action: "storing blob",
            path: path.clone(),
            source: e.error,
        })?;
        Ok(())
    }

    /// Reads `index.json`.
    pub fn read_index(&self) -> Result<ImageIndex> {
        let path = self.root.join("index.json");
        let bytes = fs::read(&path).io_ctx("reading", &path)?;
        serde_json::from_slice(&bytes).map_err(|e| ImageError::Malformed {
            what: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Replaces `index.json` atomically. Hold [`Layout::lock_index`] around read-modify-write.
    pub fn write_index(&self, index: &ImageIndex) -> Result<()> {
        let bytes = serde_json::to_vec(index).map_err(|e| ImageError::Malformed {
            what: "index.json".into(),
            reason: e.to_string(),
        })?;
        self.write_atomic(&self.root.join("index.json"), &bytes)
    }

    /// Takes the exclusive lock that serialises `index.json` updates.
    pub fn lock_index(&self) -> Result<Flock<File>> {
        lock_file(&self.lock_path("index.lock"), FlockArg::LockExclusive)
    }

    /// Takes the garbage-collection lock: shared while blobs are added (imports), exclusive
    /// while unreferenced blobs are deleted. Returns `None` if `try_exclusive` and it is busy.
    pub fn lock_gc(&self, exclusive: bool, try_only: bool) -> Result<Option<Flock<File>>> {
        let arg = match (exclusive, try_only) {
            (true, true) => FlockArg::LockExclusiveNonblock,
            (true, false) => FlockArg::LockExclusive,
            (false, true) => FlockArg::LockSharedNonblock,
            (false, false) => FlockArg::LockShared,
        };
        match lock_file(&self.lock_path("gc.lock"), arg) {
            Ok(lock) => Ok(Some(lock)),
            Err(ImageError::Io { source, .. })
                if try_only && source.kind() == io::ErrorKind::WouldBlock =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Lock files live next to the scratch directory, outside the OCI layout.
    fn lock_path(&self, name: &str) -> PathBuf {
        self.scratch.with_file_name(format!("images.{name}"))
    }

    /// The digests of all blobs present.
    pub fn blob_digests(&self) -> Result<Vec<String>> {
        let dir = self.root.join("blobs/sha256");
        let mut digests = Vec::new();
        for entry in fs::read_dir(&dir).io_ctx("listing", &dir)? {
            let name = entry.io_ctx("listing", &dir)?.file_name();
            if let Some(hex) = name.to_str().filter(|h| digest::is_sha256_hex(h)) {
                digests.push(format!("sha256:{hex}"));
            }
        }
        Ok(digests)
    }

    /// Deletes a blob; returns its size (0 if it was already gone).
    pub fn remove_blob(&self, digest: &str) -> Result<u64> {
        let path = self.blob_path(digest)?;
        let size = fs::symlink_metadata(&path).map(|m| m.len()).unwrap_or(0);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e).io_ctx("removing", &path),
            _ => Ok(size),
        }
    }

    /// A new temporary file in the scratch directory (deleted when dropped).
    pub fn temp_file(&self) -> Result<tempfile::NamedTempFile> {
        tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&self.scratch)
            .io_ctx("creating a temporary file in", &self.scratch)
    }

    /// Writes `dest` by writing a temporary file, fsyncing and renaming it over `dest`.
    pub fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<()> {
        let mut temp = self.temp_file()?;
        temp.write_all(bytes).io_ctx("writing", temp.path())?;
        temp.as_file().sync_all().io_ctx("syncing", temp.path())?;
        set_readable(temp.path())?;
        temp.persist(dest).map_err(|e| ImageError::Io {
            action: "replacing",
            path: dest.to_path_buf(),
            source: e.error,
        })?;
        if let Some(dir) = dest.parent() {
            // Make the rename itself durable.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .io_ctx("syncing", dir)?;
        }
        Ok(())
    }
}

/// Opens (creating) `path` and takes a flock on it.
fn lock_file(path: &Path, arg: FlockArg) -> Result<Flock<File>> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .io_ctx("opening lock file", path)?;
    Flock::lock(file, arg).map_err(|(_, errno)| ImageError::Io {
        action: "locking",
        path: path.to_path_buf(),
        source: io::Error::from(errno),
    })
}

/// Temporary files are created 0600; blobs and index are world-readable like other tools'.
fn set_readable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).io_ctx("chmod", path)
}

/// An index with no manifests.
fn empty_index() -> ImageIndex {
    ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(oci_spec::image::MediaType::ImageIndex)
        .manifests(Vec::new())
        .build()
        .expect("an index with schema version and manifests is complete")
}
