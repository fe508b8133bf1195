//! vmc's image store.
//!
//! Images live in `$VMC_HOME/images`, which is a standard OCI image layout (so `skopeo` and
//! `umoci` can read it). An image's ID is the sha256 of its manifest. Images come in with
//! [`Store::import`] from `docker save` tarballs, OCI layouts (directory or tar) or plain root
//! filesystems, and are unpacked on demand by [`Store::rootfs`] into
//! `$VMC_HOME/rootfs/<id>`; VM mode gets them as disks ([`Store::rootfs_disk`]). Every write goes to a temporary file first and is renamed into
//! place, so an interrupted import or unpack never leaves a half-made image behind.

pub mod compression;
pub mod config;
pub mod cpio;
pub mod digest;
pub mod disk;
pub mod error;
pub mod image;
pub mod import;
mod index;
pub mod initramfs;
pub mod layout;
pub mod progress;
pub mod reference;
pub mod store;
pub mod timefmt;
pub mod unpack;
mod unpacked_size;

pub use config::{Change, ImageConfig};
pub use error::{ImageError, Result};
pub use image::{Image, ImageSummary, LayerInfo};
pub use import::ImportOptions;
pub use store::{CacheEntry, PruneReport, RemoveReport, Store, StoreUsage};
