//! The errors of the image store.

use std::path::PathBuf;

/// Everything that can go wrong while importing, resolving, removing or unpacking images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A filesystem operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What vmc was doing ("reading", "creating", ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The vmc home cannot be made private to its owner.
    #[error("cannot make the vmc home {} private (mode 0700): {error} (own it, or point VMC_HOME elsewhere)", home.display())]
    PrivateHome {
        /// The vmc home.
        home: PathBuf,
        /// The underlying error (in the message, not a source: the CLI prints each once).
        error: std::io::Error,
    },
    /// No image matches the reference.
    #[error("no such image: {0} (see `vmc images`)")]
    NotFound(String),
    /// An ID prefix matches more than one image.
    #[error("image ID prefix {prefix} is ambiguous: it matches {} (give more hex digits)", matches.join(", "))]
    Ambiguous {
        /// The prefix given.
        prefix: String,
        /// The short IDs it matches.
        matches: Vec<String>,
    },
    /// A reference or `--tag` value is malformed.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The reference given.
        reference: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The image cannot be deleted while something uses it.
    #[error(
        "image {image} is in use by {user}: wait for it to end (vmc ps), then remove the image"
    )]
    InUse {
        /// The reference given.
        image: String,
        /// What uses it.
        user: String,
    },
    /// The import source is not something vmc can import.
    #[error("cannot import {}: {reason}", path.display())]
    UnsupportedSource {
        /// The source path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Content does not hash to the digest that names it.
    #[error("digest mismatch for {what}: expected {expected}, got {actual} (the source is corrupt or was modified)")]
    DigestMismatch {
        /// Which blob or layer.
        what: String,
        /// The digest the metadata promises.
        expected: String,
        /// The digest of the bytes read.
        actual: String,
    },
    /// A JSON document (manifest, index, config) is malformed.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which document.
        what: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A layer contains an entry that would write outside the root filesystem or is otherwise unsafe.
    #[error("refusing layer {layer}: entry {entry:?} {reason}")]
    UnsafeEntry {
        /// The layer digest.
        layer: String,
        /// The tar entry path.
        entry: String,
        /// Why it was refused.
        reason: String,
    },
    /// A layer tarball could not be read (truncated or corrupt).
    #[error("layer {layer} is corrupt or truncated: {reason}")]
    CorruptLayer {
        /// The layer digest.
        layer: String,
        /// The reader's complaint.
        reason: String,
    },
    /// A `--change` instruction is not understood.
    #[error("invalid --change {0:?}: expected one of CMD, ENTRYPOINT, ENV, WORKDIR, USER followed by a value, e.g. 'CMD [\"/bin/sh\"]'")]
    InvalidChange(String),
}

/// Result type of this crate.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;

/// Adds path context to I/O errors.
pub(crate) trait IoContext<T> {
    /// Wraps the error as [`ImageError::Io`] with `action` and `path`.
    fn io_ctx(self, action: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io_ctx(self, action: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| ImageError::Io {
            action,
            path: path.to_path_buf(),
            source,
        })
    }
}
