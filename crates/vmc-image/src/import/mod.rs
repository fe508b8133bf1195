//! Importing images from docker-archive tarballs, OCI layouts and plain root filesystems.

mod docker_archive;
mod oci_layout;
mod rootfs;
mod source;

use crate::compression::{open_tar_stream, Compression};
use crate::config::Change;
use crate::error::{ImageError, IoContext, Result};
use crate::layout::Layout;
use crate::reference::TaggedName;
use oci_spec::image::{Descriptor, Digest, MediaType};
use source::SourceDir;
use std::path::Path;
use std::str::FromStr;

/// What `vmc import` was asked to do besides reading the source.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `name[:tag]` to give the image (overrides the source's own names).
    pub tag: Option<String>,
    /// Docker-style `--change` instructions (rootfs imports only, like `docker import`).
    pub changes: Vec<Change>,
    /// The reference name of the one image to take from an OCI layout that holds several
    /// (`vmc import DIR:REF`).
    pub reference: Option<String>,
}

/// An image whose blobs are all in the store but which is not in `index.json` yet.
#[derive(Debug, Clone)]
pub(crate) struct Staged {
    /// Descriptor of the manifest blob.
    pub manifest: Descriptor,
    /// Names the source gave the image (RepoTags, ref annotations, file name).
    pub names: Vec<TaggedName>,
}

/// Which image of a source holding several to take.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pick<'a> {
    /// The only one (a source with several is an error).
    Only,
    /// The one with this reference name (`vmc import DIR:REF`).
    Named(&'a str),
    /// The one at this position (`vmc load` takes each in turn).
    Nth(usize),
}

/// The kinds of source `vmc import` recognises.
enum SourceKind {
    OciLayoutDir,
    DockerArchiveDir,
    RootfsDir,
    ArchiveTar,
    RootfsTar,
}

/// Copies the image at `path` into `layout`; the caller then adds it to the index. Names are
/// the source's own (RepoTags, ref annotations), else one derived from the file name.
pub(crate) fn stage(
    layout: &Layout,
    path: &Path,
    options: &ImportOptions,
    show: bool,
) -> Result<Staged> {
    let kind = detect(path)?;
    if !options.changes.is_empty() && !matches!(kind, SourceKind::RootfsDir | SourceKind::RootfsTar)
    {
        return Err(ImageError::UnsupportedSource {
            path: path.to_path_buf(),
            reason: "--change applies only to plain rootfs imports (like `docker import`)".into(),
        });
    }
    let wanted = options.reference.as_deref();
    if wanted.is_some() && !matches!(kind, SourceKind::OciLayoutDir | SourceKind::ArchiveTar) {
        return Err(ImageError::UnsupportedSource {
            path: path.to_path_buf(),
            reason: "SOURCE:REF picks an image of an OCI layout; this is not one".into(),
        });
    }
    // Canonical, so that `vmc import .` is named after the directory.
    let real = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let source_name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut staged = match kind {
        SourceKind::RootfsDir => rootfs::import_dir(layout, path, &options.changes, show)?,
        SourceKind::RootfsTar => rootfs::import_tar(layout, path, &options.changes, show)?,
        SourceKind::OciLayoutDir | SourceKind::DockerArchiveDir | SourceKind::ArchiveTar => {
            let archive = ArchiveSource::open(layout, path, &kind)?;
            let pick = wanted.map_or(Pick::Only, Pick::Named);
            if wanted.is_some() && !archive.is_oci {
                return Err(ImageError::UnsupportedSource {
                    path: path.to_path_buf(),
                    reason: "SOURCE:REF picks an image of an OCI layout; this is a docker-archive"
                        .into(),
                });
            }
            archive.stage(layout, pick, &source_name, show)?
        }
    };
    if staged.names.is_empty() {
        staged
            .names
            .extend(TaggedName::from_file_stem(&source_name));
    }
    Ok(staged)
}

/// Stages every image of a docker-archive or OCI layout (directory or tar), for `vmc load`:
/// each named by the source, or unnamed.
pub(crate) fn stage_all(layout: &Layout, path: &Path, show: bool) -> Result<Vec<Staged>> {
    let kind = detect(path)?;
    if !matches!(
        kind,
        SourceKind::OciLayoutDir | SourceKind::DockerArchiveDir | SourceKind::ArchiveTar
    ) {
        return Err(ImageError::UnsupportedSource {
            path: path.to_path_buf(),
            reason: "vmc load takes a docker-archive or an OCI archive (`vmc import` takes a root filesystem)".into(),
        });
    }
    let archive = ArchiveSource::open(layout, path, &kind)?;
    let count = if archive.is_oci {
        oci_layout::count(&archive.dir)?
    } else {
        docker_archive::count(&archive.dir)?
    };
    (0..count)
        .map(|nth| archive.stage(layout, Pick::Nth(nth), "", show))
        .collect()
}

/// A docker-archive or OCI layout as a directory: the source itself, or a tarball unpacked
/// into scratch space (removed when this is dropped).
struct ArchiveSource {
    dir: SourceDir,
    is_oci: bool,
    _staging: Option<tempfile::TempDir>,
}

impl ArchiveSource {
    fn open(layout: &Layout, path: &Path, kind: &SourceKind) -> Result<ArchiveSource> {
        let staging = match kind {
            SourceKind::ArchiveTar => Some(unpack_archive(layout, path)?),
            _ => None,
        };
        let root = staging.as_ref().map_or(path, |s| s.path());
        Ok(ArchiveSource {
            dir: SourceDir::open(root)?,
            is_oci: root.join("oci-layout").is_file(),
            _staging: staging,
        })
    }

    fn stage(&self, layout: &Layout, pick: Pick, source_name: &str, show: bool) -> Result<Staged> {
        if self.is_oci {
            oci_layout::import(layout, &self.dir, pick, source_name, show)
        } else {
            let nth = match pick {
                Pick::Nth(nth) => Some(nth),
                Pick::Only | Pick::Named(_) => None,
            };
            docker_archive::import(layout, &self.dir, nth, show)
        }
    }
}

/// Unpacks a docker-archive or OCI layout tarball into scratch space.
fn unpack_archive(layout: &Layout, path: &Path) -> Result<tempfile::TempDir> {
    let staging = tempfile::Builder::new()
        .prefix("import-")
        .tempdir_in(layout.scratch())
        .io_ctx("creating a directory in", layout.scratch())?;
    let mut archive = tar::Archive::new(open_tar_stream(path)?);
    archive
        .unpack(staging.path())
        .map_err(|e| ImageError::UnsupportedSource {
            path: path.to_path_buf(),
            reason: format!("cannot read the archive: {e}"),
        })?;
    Ok(staging)
}

/// Recognises the source by its shape and, for tarballs, by the names inside.
fn detect(path: &Path) -> Result<SourceKind> {
    let unsupported = |reason: String| ImageError::UnsupportedSource {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| unsupported(e.to_string()))?;
    if meta.is_dir() {
        return Ok(if path.join("oci-layout").is_file() {
            SourceKind::OciLayoutDir
        } else if path.join("manifest.json").is_file() {
            SourceKind::DockerArchiveDir
        } else {
            SourceKind::RootfsDir
        });
    }
    let not_tar = |e: std::io::Error| {
        unsupported(format!(
            "not a tar archive (plain, gzip or zstd), OCI layout or directory ({e})"
        ))
    };
    let mut archive = tar::Archive::new(open_tar_stream(path)?);
    let mut is_archive = false;
    let mut entries = 0usize;
    for entry in archive.entries().map_err(not_tar)? {
        let entry = entry.map_err(not_tar)?;
        let name = entry.path().map_err(not_tar)?;
        let name = name.to_string_lossy();
        let name = name.trim_start_matches("./");
        is_archive |= name == "oci-layout" || name == "manifest.json";
        entries += 1;
    }
    if entries == 0 {
        return Err(unsupported(
            "the archive is empty or not a tar archive".into(),
        ));
    }
    Ok(if is_archive {
        SourceKind::ArchiveTar
    } else {
        SourceKind::RootfsTar
    })
}

/// Builds a descriptor, checking the digest syntax.
pub(crate) fn descriptor(media_type: MediaType, size: u64, digest: &str) -> Result<Descriptor> {
    let digest = Digest::from_str(digest).map_err(|e| ImageError::Malformed {
        what: format!("digest {digest:?}"),
        reason: e.to_string(),
    })?;
    Ok(Descriptor::new(media_type, size, digest))
}

/// The layer media type matching a blob's compression.
pub(crate) fn layer_media_type(compression: Compression) -> MediaType {
    match compression {
        Compression::None => MediaType::ImageLayer,
        Compression::Gzip => MediaType::ImageLayerGzip,
        Compression::Zstd => MediaType::ImageLayerZstd,
    }
}

/// Turns a Docker-style name (`docker.io/library/busybox:latest`) into a local one.
pub(crate) fn local_name(name: &str) -> Option<TaggedName> {
    let short = name
        .strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("docker.io/"))
        .unwrap_or(name);
    TaggedName::parse(short).ok()
}
