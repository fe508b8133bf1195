//! `index.json` as the store uses it: one entry per name (annotation
//! `org.opencontainers.image.ref.name`), one unnamed entry for an untagged image.

use crate::digest;
use crate::error::{ImageError, Result};
use crate::reference::{id_prefix, TaggedName};
use oci_spec::image::{Descriptor, ImageIndex};
use std::collections::BTreeMap;

/// Annotation holding an image's name in `index.json`.
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The `index.json` entries of one image, grouped.
pub(crate) struct IndexedImage {
    /// The manifest descriptor (annotations of the first entry).
    pub manifest: Descriptor,
    /// Its `repository:tag` names.
    pub names: Vec<String>,
}

/// Groups entries by manifest digest, keeping first-seen order.
pub(crate) fn group(index: &ImageIndex) -> Vec<IndexedImage> {
    let mut grouped: Vec<IndexedImage> = Vec::new();
    for d in index.manifests() {
        let name = entry_name(d);
        match grouped
            .iter_mut()
            .find(|g| g.manifest.digest() == d.digest())
        {
            Some(group) => group.names.extend(name),
            None => grouped.push(IndexedImage {
                manifest: d.clone(),
                names: name.into_iter().collect(),
            }),
        }
    }
    grouped
}

/// Gives the manifest `names`. Each name moves from any image that had it; an image left
/// without names stays as an untagged (dangling) entry, like Docker's.
pub(crate) fn add_names(index: &mut ImageIndex, manifest: &Descriptor, names: &[TaggedName]) {
    let digest = manifest.digest();
    let full_names: Vec<String> = names.iter().map(TaggedName::to_string).collect();
    let old = index.manifests().clone();
    let mut kept: Vec<Descriptor> = old
        .iter()
        .filter(|d| !entry_name(d).is_some_and(|n| full_names.contains(&n)))
        .cloned()
        .collect();
    for d in &old {
        if !kept.iter().any(|k| k.digest() == d.digest()) && d.digest() != digest {
            kept.push(untagged(d));
        }
    }
    if !names.is_empty() {
        kept.retain(|k| k.digest() != digest || entry_name(k).is_some());
    }
    for name in names {
        let mut entry = manifest.clone();
        entry.set_annotations(Some([(REF_NAME.to_string(), name.ref_name())].into()));
        kept.push(entry);
    }
    if !kept.iter().any(|k| k.digest() == digest) {
        kept.push(untagged(manifest));
    }
    index.set_manifests(kept);
}

/// A copy of an index entry without its name.
pub(crate) fn untagged(d: &Descriptor) -> Descriptor {
    let mut entry = d.clone();
    entry.set_annotations(None);
    entry
}

/// The `repository:tag` name of an index entry, if it has one.
pub(crate) fn entry_name(d: &Descriptor) -> Option<String> {
    let raw = d.annotations().as_ref()?.get(REF_NAME)?;
    Some(match TaggedName::parse(raw) {
        Ok(name) => name.to_string(),
        Err(_) => raw.clone(),
    })
}

/// Finds the entry for `reference`; also returns the name matched (None for an ID match).
pub(crate) fn find<'a>(
    entries: &'a [IndexedImage],
    reference: &str,
) -> Result<(&'a IndexedImage, Option<String>)> {
    if let Ok(name) = TaggedName::parse(reference) {
        let wanted = name.to_string();
        if let Some(entry) = entries.iter().find(|e| e.names.contains(&wanted)) {
            return Ok((entry, Some(wanted)));
        }
    }
    if let Some(prefix) = id_prefix(reference) {
        let matches: BTreeMap<String, &IndexedImage> = entries
            .iter()
            .filter_map(|e| {
                let hex = digest::sha256_hex(e.manifest.digest().as_ref())
                    .ok()?
                    .to_string();
                hex.starts_with(&prefix).then_some((hex, e))
            })
            .collect();
        match matches.len() {
            0 => {}
            1 => return Ok((matches.into_values().next().expect("one match"), None)),
            _ => {
                return Err(ImageError::Ambiguous {
                    prefix: reference.to_string(),
                    matches: matches.keys().map(|id| id[..12].to_string()).collect(),
                })
            }
        }
    }
    Err(ImageError::NotFound(reference.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::{ImageIndexBuilder, MediaType};
    use std::str::FromStr;

    fn manifest(hex_prefix: &str) -> Descriptor {
        let hex = format!("{hex_prefix}{}", "0".repeat(64 - hex_prefix.len()));
        let digest = oci_spec::image::Digest::from_str(&format!("sha256:{hex}")).unwrap();
        Descriptor::new(MediaType::ImageManifest, 1, digest)
    }

    fn index_with(entries: &[(&Descriptor, &[&str])]) -> ImageIndex {
        let mut index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .manifests(Vec::new())
            .build()
            .unwrap();
        for (m, names) in entries {
            let names: Vec<TaggedName> = names
                .iter()
                .map(|n| TaggedName::parse(n).unwrap())
                .collect();
            add_names(&mut index, m, &names);
        }
        index
    }

    #[test]
    fn ambiguous_prefix_names_the_candidates() {
        let (a, b) = (manifest("abcd1"), manifest("abcd2"));
        let images = group(&index_with(&[(&a, &["a"]), (&b, &["b"])]));
        match find(&images, "abcd") {
            Err(ImageError::Ambiguous { matches, .. }) => {
                assert_eq!(matches, ["abcd10000000", "abcd20000000"])
            }
            other => panic!(
                "expected Ambiguous, got {:?}",
                other.map(|(i, n)| (i.names.clone(), n))
            ),
        }
        assert_eq!(find(&images, "abcd2").unwrap().0.names, ["b:latest"]);
        assert_eq!(find(&images, "sha256:ABCD1").unwrap().0.names, ["a:latest"]);
    }

    #[test]
    fn a_name_wins_over_an_id_prefix_that_looks_the_same() {
        let (a, b) = (manifest("beef"), manifest("cafe"));
        let images = group(&index_with(&[(&a, &["cafe"]), (&b, &["other"])]));
        let (found, name) = find(&images, "cafe").unwrap();
        assert_eq!(
            (found.manifest.digest(), name.as_deref()),
            (a.digest(), Some("cafe:latest"))
        );
    }

    #[test]
    fn moving_a_name_leaves_the_old_image_untagged_once() {
        let (old, new) = (manifest("01"), manifest("02"));
        let index = index_with(&[
            (&old, &["app", "app:v1"]),
            (&new, &["app"]),
            (&new, &["app:v1"]),
        ]);
        let images = group(&index);
        assert_eq!(images.len(), 2);
        let names_of = |m: &Descriptor| {
            let image = images.iter().find(|i| i.manifest.digest() == m.digest());
            image.unwrap().names.clone()
        };
        assert!(names_of(&old).is_empty(), "old image must be dangling");
        assert_eq!(names_of(&new), ["app:latest", "app:v1"]);
        assert_eq!(
            index
                .manifests()
                .iter()
                .filter(|d| d.digest() == old.digest())
                .count(),
            1
        );
    }
}
