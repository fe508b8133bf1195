//! The errors of the image store.
//!
//! Their messages quote what images hold (layer entry names become paths, manifests and
//! configs give reasons): every such part is escaped ([`vmc_runtime::text`]) so that a hostile
//! layer cannot put escape sequences on the operator's terminal.

use std::path::PathBuf;
use vmc_runtime::text::{escape, escape_path};

/// Everything that can go wrong while importing, resolving, removing or unpacking images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A filesystem operation failed.
    #[error("{action} {}: {}", escape_path(path), escape(&source.to_string()))]
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
    #[error("no such image: {} (see `vmc images`)", escape(.0))]
    NotFound(String),
    /// An ID prefix matches more than one image.
    #[error("image ID prefix {} is ambiguous: it matches {} (give more hex digits)", escape(prefix), matches.join(", "))]
    Ambiguous {
        /// The prefix given.
        prefix: String,
        /// The short IDs it matches.
        matches: Vec<String>,
    },
    /// A reference or `--tag` value is malformed.
    #[error("invalid image reference {reference:?}: {}", escape(reason))]
    InvalidReference {
        /// The reference given.
        reference: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The image cannot be deleted while something uses it.
    #[error(
        "image {} is in use by {}: wait for it to end (vmc ps), then remove the image",
        escape(image),
        escape(user)
    )]
    InUse {
        /// The reference given.
        image: String,
        /// What uses it.
        user: String,
    },
    /// The import source is not something vmc can import.
    #[error("cannot import {}: {}", escape_path(path), escape(reason))]
    UnsupportedSource {
        /// The source path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Content does not hash to the digest that names it.
    #[error(
        "digest mismatch for {}: expected {}, got {} (the source is corrupt or was modified)",
        escape(what),
        escape(expected),
        escape(actual)
    )]
    DigestMismatch {
        /// Which blob or layer.
        what: String,
        /// The digest the metadata promises.
        expected: String,
        /// The digest of the bytes read.
        actual: String,
    },
    /// A JSON document (manifest, index, config) is malformed.
    #[error("malformed {}: {}", escape(what), escape(reason))]
    Malformed {
        /// Which document.
        what: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A layer contains an entry that would write outside the root filesystem or is otherwise unsafe.
    #[error("refusing layer {}: entry {entry:?} {}", escape(layer), escape(reason))]
    UnsafeEntry {
        /// The layer digest.
        layer: String,
        /// The tar entry path.
        entry: String,
        /// Why it was refused.
        reason: String,
    },
    /// A layer tarball could not be read (truncated or corrupt).
    #[error("layer {} is corrupt or truncated: {}", escape(layer), escape(reason))]
    CorruptLayer {
        /// The layer digest.
        layer: String,
        /// The reader's complaint.
        reason: String,
    },
    /// An external program vmc needs is not installed.
    #[error("{tool} is not installed: {purpose} (install the {package} package, e.g. apt-get install {package})")]
    MissingTool {
        /// The program's name.
        tool: &'static str,
        /// What vmc needs it for.
        purpose: &'static str,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// A signal ended the run while an external program built its disk (the program was
    /// killed, its output removed).
    #[error(transparent)]
    Interrupted(#[from] vmc_runtime::signals::Interrupted),
    /// An external program failed.
    #[error("{tool} failed on {}: {}", escape_path(input), escape(reason))]
    ToolFailed {
        /// The program's name.
        tool: &'static str,
        /// What it was working on.
        input: PathBuf,
        /// Its exit status and the last line it printed.
        reason: String,
    },
    /// A cached disk image fails its checks (truncated, overwritten, not what vmc built).
    #[error(
        "cached disk {} is corrupt: {} (delete it with `rm {}`; the next VM run rebuilds it)",
        escape_path(path),
        escape(reason),
        escape_path(path)
    )]
    CorruptDisk {
        /// The cached disk file.
        path: PathBuf,
        /// Which check failed.
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
