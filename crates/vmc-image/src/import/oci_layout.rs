//! Import from an OCI image layout (what `skopeo copy … oci:DIR:REF` and `umoci` write, and
//! the OCI form of `docker save`).

use super::source::{parse_json, SourceDir};
use super::{local_name, Pick, Staged};
use crate::digest;
use crate::error::{ImageError, IoContext, Result};
use crate::index::REF_NAME;
use crate::layout::Layout;
use crate::progress::Progress;
use crate::reference::TaggedName;
use oci_spec::image::{Arch, Descriptor, ImageIndex, ImageManifest, MediaType, Os};
use std::fs::File;

/// Annotation containerd/Docker use for the full image name.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// How many images the layout `src` holds.
pub(crate) fn count(src: &SourceDir) -> Result<usize> {
    let index: ImageIndex = parse_json(&src.read("index.json")?, "index.json")?;
    Ok(index.manifests().len())
}

/// Copies one image of the layout `src` into `layout`: the one `pick` names, else the only
/// one. `source_name` (the directory's or archive's name) is the repository of an image whose
/// reference name is only a version tag.
pub(crate) fn import(
    layout: &Layout,
    src: &SourceDir,
    pick: Pick,
    source_name: &str,
    show: bool,
) -> Result<Staged> {
    let index: ImageIndex = parse_json(&src.read("index.json")?, "index.json")?;
    let refs = || -> String {
        let refs: Vec<String> = index
            .manifests()
            .iter()
            .map(|d| ref_names(d).join("/"))
            .collect();
        refs.join(", ")
    };
    let wanted = match pick {
        Pick::Named(name) => Some(name),
        Pick::Nth(nth) => {
            let top = index.manifests().get(nth).ok_or_else(|| {
                malformed(
                    "index.json",
                    &format!("the layout has no image number {}", nth + 1),
                )
            })?;
            return import_top(layout, src, top.clone(), Vec::new(), source_name, show);
        }
        Pick::Only => None,
    };
    let top = match (wanted, index.manifests().as_slice()) {
        (Some(wanted), manifests) => match manifests
            .iter()
            .find(|d| ref_names(d).iter().any(|n| n == wanted))
        {
            Some(one) => one.clone(),
            None => {
                return Err(malformed(
                    "index.json",
                    &format!(
                        "the layout has no image named {wanted:?} (it has: {})",
                        refs()
                    ),
                ))
            }
        },
        (None, [one]) => one.clone(),
        (None, []) => return Err(malformed("index.json", "the layout holds no image")),
        (None, many) => {
            return Err(malformed(
                "index.json",
                &format!(
                    "the layout holds {} images ({}); pick one with `vmc import DIR:REF` or load them all with `vmc load -i FILE`",
                    many.len(),
                    refs()
                ),
            ));
        }
    };
    let names = if wanted.is_none() {
        docker_repo_tags(src)
    } else {
        Vec::new()
    };
    import_top(layout, src, top, names, source_name, show)
}

/// Copies the image of index entry `top`, named `names` or else by its reference name.
fn import_top(
    layout: &Layout,
    src: &SourceDir,
    top: Descriptor,
    mut names: Vec<TaggedName>,
    source_name: &str,
    show: bool,
) -> Result<Staged> {
    if names.is_empty() {
        names = ref_names(&top)
            .iter()
            .filter_map(|n| layout_ref_name(n, source_name))
            .collect();
    }
    let manifest_desc = select_manifest(src, &top)?;
    let manifest_path = src.blob(manifest_desc.digest().as_ref())?;
    let manifest_bytes = std::fs::read(&manifest_path).io_ctx("reading", &manifest_path)?;
    let manifest_digest = manifest_desc.digest().to_string();
    digest::verify(
        &format!("manifest {manifest_digest}"),
        &manifest_digest,
        &digest::sha256_of(&manifest_bytes),
    )?;
    let manifest: ImageManifest = parse_json(&manifest_bytes, "image manifest")?;
    for blob in std::iter::once(manifest.config()).chain(manifest.layers()) {
        copy_blob(layout, src, blob, show)?;
    }
    layout.write_blob_bytes(&manifest_bytes)?;
    let media_type = manifest
        .media_type()
        .clone()
        .unwrap_or(MediaType::ImageManifest);
    let manifest = super::descriptor(media_type, manifest_bytes.len() as u64, &manifest_digest)?;
    Ok(Staged { manifest, names })
}

/// Follows an image index to the linux/amd64 manifest (or the only one).
fn select_manifest(src: &SourceDir, desc: &Descriptor) -> Result<Descriptor> {
    let mut current = desc.clone();
    for _ in 0..4 {
        let is_index = matches!(current.media_type(), MediaType::ImageIndex)
            || current.media_type().to_string()
                == "application/vnd.docker.distribution.manifest.list.v2+json";
        if !is_index {
            return Ok(current);
        }
        let digest = current.digest().to_string();
        let bytes = std::fs::read(src.blob(&digest)?).io_ctx("reading", &src.blob(&digest)?)?;
        digest::verify(
            &format!("index {digest}"),
            &digest,
            &digest::sha256_of(&bytes),
        )?;
        let nested: ImageIndex = parse_json(&bytes, "nested image index")?;
        let amd64 = nested.manifests().iter().find(|m| {
            m.platform()
                .as_ref()
                .is_some_and(|p| *p.architecture() == Arch::Amd64 && *p.os() == Os::Linux)
        });
        current = match (amd64, nested.manifests().as_slice()) {
            (Some(m), _) | (None, [m]) => m.clone(),
            _ => return Err(malformed("image index", "it has no linux/amd64 image")),
        };
    }
    Err(malformed("image index", "indexes are nested too deeply"))
}

/// Copies one blob into the store, verifying its digest.
fn copy_blob(layout: &Layout, src: &SourceDir, blob: &Descriptor, show: bool) -> Result<()> {
    let digest = blob.digest().to_string();
    if layout.has_blob(&digest) {
        return Ok(());
    }
    let path = src.blob(&digest)?;
    let file = File::open(&path).io_ctx("opening", &path)?;
    let short = digest.get(7..19).unwrap_or(&digest);
    let progress = Progress::new(show, blob.size(), format!("copying {short}"));
    let (_, size) = layout.ingest(file, Some(&digest), &format!("blob {digest}"), &progress)?;
    if size != blob.size() {
        return Err(malformed(
            &format!("blob {digest}"),
            &format!(
                "size {size} differs from the {} bytes its descriptor states",
                blob.size()
            ),
        ));
    }
    Ok(())
}

/// The reference names a descriptor carries.
fn ref_names(desc: &Descriptor) -> Vec<String> {
    let annotations = desc.annotations().clone().unwrap_or_default();
    [CONTAINERD_NAME, REF_NAME]
        .iter()
        .filter_map(|key| annotations.get(*key).cloned())
        .take(1)
        .collect()
}

/// The local name of a layout's reference name: `REPO:TAG` as it is; a bare version tag
/// (`skopeo copy … oci:DIR:1.0` writes `1.0`) under the source's name (`DIR:1.0`); another
/// bare word a repository (`busybox` → `busybox:latest`).
fn layout_ref_name(reference: &str, source_name: &str) -> Option<TaggedName> {
    let bare_version =
        !reference.contains([':', '/', '@']) && reference.starts_with(|c: char| c.is_ascii_digit());
    if bare_version {
        let repository = TaggedName::from_file_stem(source_name)?;
        return TaggedName::parse(&format!("{}:{reference}", repository.repository)).ok();
    }
    local_name(reference)
}

/// `RepoTags` of the `manifest.json` Docker writes next to its OCI layout.
fn docker_repo_tags(src: &SourceDir) -> Vec<TaggedName> {
    let Ok(bytes) = src.read("manifest.json") else {
        return Vec::new();
    };
    super::docker_archive::repo_tags(&bytes)
}

fn malformed(what: &str, reason: &str) -> ImageError {
    ImageError::Malformed {
        what: what.to_string(),
        reason: reason.to_string(),
    }
}
