//! Import from the legacy `docker save` format: `manifest.json` listing a config file and
//! layer tarballs.

use super::source::{parse_json, SourceDir};
use super::{descriptor, layer_media_type, local_name, Staged};
use crate::compression::Compression;
use crate::error::{ImageError, IoContext, Result};
use crate::layout::Layout;
use crate::progress::Progress;
use crate::reference::TaggedName;
use oci_spec::image::{ImageManifestBuilder, MediaType};
use serde::Deserialize;
use std::fs::File;

/// One image in `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// How many images the docker-archive `src` holds.
pub(crate) fn count(src: &SourceDir) -> Result<usize> {
    let images: Vec<ArchiveImage> = parse_json(&src.read("manifest.json")?, "manifest.json")?;
    Ok(images.len())
}

/// Copies one image of a docker-archive into `layout`, writing an OCI manifest for it: the
/// `nth` (`vmc load`), else the only one.
pub(crate) fn import(
    layout: &Layout,
    src: &SourceDir,
    nth: Option<usize>,
    show: bool,
) -> Result<Staged> {
    let images: Vec<ArchiveImage> = parse_json(&src.read("manifest.json")?, "manifest.json")?;
    let image = match (nth, images.as_slice()) {
        (Some(nth), images) => images
            .get(nth)
            .ok_or_else(|| malformed(&format!("the archive has no image number {}", nth + 1)))?,
        (None, [one]) => one,
        (None, []) => return Err(malformed("the archive holds no image")),
        (None, many) => {
            return Err(malformed(&format!(
                "the archive holds {} images; vmc import takes one: load them all with `vmc load -i FILE`",
                many.len()
            )))
        }
    };
    let config_bytes = src.read(&image.config)?;
    if let Some(named) = digest_in_name(&image.config) {
        let what = format!("config {}", image.config);
        crate::digest::verify(&what, &named, &crate::digest::sha256_of(&config_bytes))?;
    }
    let config_digest = layout.write_blob_bytes(&config_bytes)?;
    let mut layers = Vec::new();
    for (index, layer) in image.layers.iter().enumerate() {
        let path = src.file(layer)?;
        let compression = Compression::of_file(&path)?;
        let file = File::open(&path).io_ctx("opening", &path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let progress = Progress::new(
            show,
            size,
            format!("layer {}/{}", index + 1, image.layers.len()),
        );
        let named = digest_in_name(layer);
        let (digest, size) = layout.ingest(file, named.as_deref(), layer, &progress)?;
        layers.push(descriptor(layer_media_type(compression), size, &digest)?);
    }
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(
            MediaType::ImageConfig,
            config_bytes.len() as u64,
            &config_digest,
        )?)
        .layers(layers)
        .build()
        .map_err(|e| malformed(&e.to_string()))?;
    let bytes = serde_json::to_vec(&manifest).map_err(|e| malformed(&e.to_string()))?;
    let digest = layout.write_blob_bytes(&bytes)?;
    let names = image
        .repo_tags
        .iter()
        .flatten()
        .filter_map(|t| local_name(t))
        .collect();
    Ok(Staged {
        manifest: descriptor(MediaType::ImageManifest, bytes.len() as u64, &digest)?,
        names,
    })
}

/// The `RepoTags` of a `manifest.json` with exactly one image (empty otherwise).
pub(crate) fn repo_tags(manifest_json: &[u8]) -> Vec<TaggedName> {
    match serde_json::from_slice::<Vec<ArchiveImage>>(manifest_json).as_deref() {
        Ok([one]) => one
            .repo_tags
            .iter()
            .flatten()
            .filter_map(|t| local_name(t))
            .collect(),
        _ => Vec::new(),
    }
}

/// The digest a content-addressed archive path promises: `<hex>.json` (config) or
/// `blobs/sha256/<hex>` (newer Docker). Legacy `<id>/layer.tar` ids are not digests.
fn digest_in_name(path: &str) -> Option<String> {
    let name = path.rsplit('/').next()?;
    let hex = name.strip_suffix(".json").unwrap_or(name);
    let content_addressed = path.ends_with(".json") || path.contains("blobs/sha256/");
    (content_addressed && crate::digest::is_sha256_hex(hex)).then(|| format!("sha256:{hex}"))
}

fn malformed(reason: &str) -> ImageError {
    ImageError::Malformed {
        what: "docker archive manifest.json".into(),
        reason: reason.to_string(),
    }
}
