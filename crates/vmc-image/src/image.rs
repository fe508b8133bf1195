//! What the store tells about an image: summaries for listings and full details.

use crate::config::ImageConfig;
use serde::Serialize;

/// One line of `vmc images`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageSummary {
    /// Image ID: the 64 hex digits of the manifest's sha256.
    pub id: String,
    /// `repository:tag` names; empty for an untagged image.
    pub names: Vec<String>,
    /// Creation time from the config (RFC 3339), if recorded.
    pub created: Option<String>,
    /// Bytes of the files its layers hold, unpacked: Docker's SIZE, the same whatever the
    /// layers' compression.
    pub size: u64,
}

impl ImageSummary {
    /// The first 12 hex digits of the ID, as `docker images` shows it.
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }
}

/// A layer as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerInfo {
    /// Blob digest (`sha256:…`).
    pub digest: String,
    /// Media type, e.g. `application/vnd.oci.image.layer.v1.tar+gzip`.
    pub media_type: String,
    /// Blob size in bytes.
    pub size: u64,
    /// Digest of the uncompressed tar, from the config's `rootfs.diff_ids`.
    pub diff_id: Option<String>,
}

/// An image in the store, resolved from a reference.
#[derive(Debug, Clone, Serialize)]
pub struct Image {
    pub(crate) id: String,
    pub(crate) names: Vec<String>,
    pub(crate) created: Option<String>,
    pub(crate) architecture: String,
    pub(crate) os: String,
    pub(crate) config: ImageConfig,
    pub(crate) layers: Vec<LayerInfo>,
    pub(crate) size: u64,
    pub(crate) manifest_digest: String,
    pub(crate) config_digest: String,
}

impl Image {
    /// Image ID: 64 hex digits (sha256 of the manifest).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The first 12 hex digits of the ID.
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }

    /// `repository:tag` names pointing at this image.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The runtime config (entrypoint, cmd, env, working dir, user).
    pub fn config(&self) -> &ImageConfig {
        &self.config
    }

    /// The layers, base first.
    pub fn layers(&self) -> &[LayerInfo] {
        &self.layers
    }

    /// Creation time (RFC 3339) if the config records it.
    pub fn created(&self) -> Option<&str> {
        self.created.as_deref()
    }

    /// CPU architecture from the config, e.g. `amd64`.
    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    /// Operating system from the config, e.g. `linux`.
    pub fn os(&self) -> &str {
        &self.os
    }

    /// Bytes of the files its layers hold, unpacked (Docker's SIZE).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Digest of the manifest (`sha256:` + ID).
    pub fn manifest_digest(&self) -> &str {
        &self.manifest_digest
    }

    /// Digest of the config blob.
    pub fn config_digest(&self) -> &str {
        &self.config_digest
    }

    /// The listing line for this image.
    pub fn summary(&self) -> ImageSummary {
        ImageSummary {
            id: self.id.clone(),
            names: self.names.clone(),
            created: self.created.clone(),
            size: self.size,
        }
    }
}
