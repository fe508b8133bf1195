//! Import a plain root filesystem (a directory, `.tar` or `.tar.gz`) as a single-layer image
//! with a default config (`Cmd ["/bin/sh"]`, `PATH`), edited by `--change` instructions.
//! `created` is `$SOURCE_DATE_EPOCH` when set, else now.

use super::{descriptor, layer_media_type, Staged};
use crate::compression::{open_tar_stream, Compression};
use crate::config::{Change, ImageConfig};
use crate::digest::{HashingReader, HashingWriter};
use crate::error::{ImageError, IoContext, Result};
use crate::layout::Layout;
use crate::progress::Progress;
use crate::timefmt::{format_rfc3339, now_rfc3339};
use flate2::write::GzEncoder;
use oci_spec::image::{
    Arch, Descriptor, HistoryBuilder, ImageConfigurationBuilder, ImageManifestBuilder, MediaType,
    Os, RootFsBuilder,
};
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// Packs the directory `dir` into a gzip'd layer and stores it as an image.
pub(crate) fn import_dir(
    layout: &Layout,
    dir: &Path,
    changes: &[Change],
    show: bool,
) -> Result<Staged> {
    let progress = Progress::new(show, 0, "packing rootfs");
    let gzip = GzEncoder::new(layout.blob_writer()?, flate2::Compression::fast());
    let mut builder = tar::Builder::new(HashingWriter::new(gzip));
    builder.follow_symlinks(false);
    append_tree(&mut builder, dir, Path::new(""), &progress)?;
    let tar_out = builder.into_inner().io_ctx("packing", dir)?;
    let (gzip, diff_id, _) = tar_out.finish();
    let blob = gzip.finish().io_ctx("compressing", dir)?;
    let (digest, size) = layout.commit_writer(blob)?;
    let layer = descriptor(MediaType::ImageLayerGzip, size, &digest)?;
    write_image(layout, layer, diff_id, changes)
}

/// Appends the contents of `dir` (in sorted order, for reproducible layers) under `prefix`.
fn append_tree(
    builder: &mut tar::Builder<impl Write>,
    dir: &Path,
    prefix: &Path,
    progress: &Progress,
) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .io_ctx("listing", dir)?
        .collect::<std::io::Result<_>>()
        .io_ctx("listing", dir)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = prefix.join(entry.file_name());
        let meta = entry.metadata().io_ctx("inspecting", &path)?;
        match special_entry_type(&meta) {
            Some(kind) => append_special(builder, kind, &meta, &name).io_ctx("packing", &path)?,
            // A tar archive cannot hold a socket (nor does `docker export`'s): left out.
            None if meta.file_type().is_socket() => continue,
            None => builder
                .append_path_with_name(&path, &name)
                .io_ctx("packing", &path)?,
        }
        progress.advance(meta.len());
        if meta.is_dir() {
            append_tree(builder, &path, &name, progress)?;
        }
    }
    Ok(())
}

/// The tar entry type of a device node or FIFO; `None` for every other kind of file.
fn special_entry_type(meta: &fs::Metadata) -> Option<tar::EntryType> {
    let kind = meta.file_type();
    if kind.is_char_device() {
        Some(tar::EntryType::Char)
    } else if kind.is_block_device() {
        Some(tar::EntryType::Block)
    } else if kind.is_fifo() {
        Some(tar::EntryType::Fifo)
    } else {
        None
    }
}

/// Appends a device node or FIFO as `name`, with its owner, mode, time and device numbers
/// (the tar crate's own path for them fails on a name given apart from the source path).
fn append_special(
    builder: &mut tar::Builder<impl Write>,
    kind: tar::EntryType,
    meta: &fs::Metadata,
    name: &Path,
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    header.set_entry_type(kind);
    header.set_size(0);
    let device = meta.rdev();
    header.set_device_major(nix::sys::stat::major(device) as u32)?;
    header.set_device_minor(nix::sys::stat::minor(device) as u32)?;
    builder.append_data(&mut header, name, std::io::empty())
}

/// Stores the tarball `file` (plain or gzip'd) as the layer of a new image.
pub(crate) fn import_tar(
    layout: &Layout,
    file: &Path,
    changes: &[Change],
    show: bool,
) -> Result<Staged> {
    let compression = Compression::of_file(file)?;
    let (diff_id, _) = HashingReader::new(open_tar_stream(file)?)
        .finish()
        .map_err(|e| ImageError::UnsupportedSource {
            path: file.to_path_buf(),
            reason: e.to_string(),
        })?;
    let reader = File::open(file).io_ctx("opening", file)?;
    let size = reader.metadata().map(|m| m.len()).unwrap_or(0);
    let progress = Progress::new(show, size, "copying rootfs");
    let (digest, size) = layout.ingest(reader, None, &file.display().to_string(), &progress)?;
    let layer = descriptor(layer_media_type(compression), size, &digest)?;
    write_image(layout, layer, diff_id, changes)
}

/// Writes the config and manifest of a single-layer image.
fn write_image(
    layout: &Layout,
    layer: Descriptor,
    diff_id: String,
    changes: &[Change],
) -> Result<Staged> {
    let bad = |e: oci_spec::OciSpecError| ImageError::Malformed {
        what: "generated image".into(),
        reason: e.to_string(),
    };
    let mut runtime = ImageConfig::rootfs_default();
    for change in changes {
        runtime.apply(change);
    }
    // Honour SOURCE_DATE_EPOCH (reproducible builds): the same tree then gives the same ID.
    let created = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .map(format_rfc3339)
        .unwrap_or_else(now_rfc3339);
    let history = HistoryBuilder::default()
        .created(created.clone())
        .created_by("vmc import")
        .build()
        .map_err(bad)?;
    let config = ImageConfigurationBuilder::default()
        .created(created)
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .config(runtime.to_oci())
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![diff_id])
                .build()
                .map_err(bad)?,
        )
        .history(vec![history])
        .build()
        .map_err(bad)?;
    let config_bytes = serde_json::to_vec(&config).map_err(|e| ImageError::Malformed {
        what: "generated config".into(),
        reason: e.to_string(),
    })?;
    let config_digest = layout.write_blob_bytes(&config_bytes)?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(
            MediaType::ImageConfig,
            config_bytes.len() as u64,
            &config_digest,
        )?)
        .layers(vec![layer])
        .build()
        .map_err(bad)?;
    let bytes = serde_json::to_vec(&manifest).map_err(|e| ImageError::Malformed {
        what: "generated manifest".into(),
        reason: e.to_string(),
    })?;
    let digest = layout.write_blob_bytes(&bytes)?;
    Ok(Staged {
        manifest: descriptor(MediaType::ImageManifest, bytes.len() as u64, &digest)?,
        names: Vec::new(),
    })
}
