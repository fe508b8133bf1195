//! The image store: an OCI layout at `$VMC_HOME/images` plus unpacked root filesystems at
//! `$VMC_HOME/rootfs/<image-id>`.

use crate::config::ImageConfig;
use crate::digest;
use crate::disk::{self, scratch::ScratchDisk, RootfsDisk};
use crate::error::{ImageError, IoContext, Result};
use crate::image::{Image, ImageSummary, LayerInfo};
use crate::import::{self, ImportOptions};
use crate::index::{self, entry_name, find, IndexedImage};
use crate::initramfs;
use crate::layout::Layout;
use crate::progress::Progress;
use crate::reference::TaggedName;
use crate::unpack::{self, LayerBlob};
use crate::unpacked_size::LayerSizes;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest};
use serde::Serialize;
use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use vmc_runtime::signals::SignalCatcher;

/// The image store of one vmc home.
#[derive(Debug, Clone)]
pub struct Store {
    home: PathBuf,
    layout: Layout,
    show_progress: bool,
}

/// What `remove` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RemoveReport {
    /// Names removed.
    pub untagged: Vec<String>,
    /// The image ID deleted, if no name referenced it any more.
    pub deleted: Option<String>,
}

/// What `prune` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// IDs of untagged images removed.
    pub images: Vec<String>,
    /// Number of unreferenced blobs deleted.
    pub blobs: usize,
    /// Number of rootfs caches (and half-made ones) deleted.
    pub rootfs_dirs: usize,
    /// Number of cached initramfs archives deleted.
    pub initramfs_archives: usize,
    /// Number of cached root filesystem disks (VM mode) deleted.
    pub disks: usize,
    /// Bytes freed in blobs.
    pub bytes: u64,
}

/// What the store takes on disk (`vmc system df`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreUsage {
    /// Bytes of the image layout's blobs (layers, configs, manifests), each counted once.
    pub blobs: u64,
    /// The caches rebuilt on demand: unpacked root filesystems (container mode), root
    /// filesystem disks and the scratch template (VM mode), initramfs archives (VM mode), and
    /// leftovers of interrupted imports and unpacks.
    pub caches: Vec<CacheEntry>,
}

/// One cache entry: its name in its cache directory (image caches start with the image id)
/// and its bytes on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The file or directory name.
    pub name: String,
    /// Bytes on disk.
    pub bytes: u64,
}

impl Store {
    /// What the store takes on disk.
    pub fn usage(&self) -> StoreUsage {
        let mut caches = Vec::new();
        for dir in ["rootfs", disk::CACHE_DIR, initramfs::CACHE_DIR, "tmp"] {
            let Ok(entries) = fs::read_dir(self.home.join(dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                caches.push(CacheEntry {
                    name: entry.file_name().to_string_lossy().into_owned(),
                    bytes: vmc_runtime::paths::disk_usage(&entry.path()),
                });
            }
        }
        StoreUsage {
            blobs: vmc_runtime::paths::disk_usage(&self.layout_dir().join("blobs")),
            caches,
        }
    }

    /// Opens (creating if missing) the store under the vmc home `home`, which is made
    /// private to its owner first ([`vmc_runtime::paths::ensure_private_home`]).
    pub fn open(home: &Path) -> Result<Store> {
        vmc_runtime::paths::ensure_private_home(home).map_err(|error| ImageError::PrivateHome {
            home: home.to_path_buf(),
            error,
        })?;
        let layout = Layout::open(&home.join("images"), &home.join("tmp"))?;
        fs::create_dir_all(home.join("rootfs")).io_ctx("creating", &home.join("rootfs"))?;
        let store = Store {
            home: home.to_path_buf(),
            layout,
            show_progress: Progress::wanted(),
        };
        if !store.leftovers()?.is_empty() {
            // Only while no other vmc process imports or unpacks (they hold the lock shared).
            if let Some(_gc) = store.layout.lock_gc(true, true)? {
                for path in store.leftovers()? {
                    unpack::remove_any(&path)?;
                }
            }
        }
        Ok(store)
    }

    /// What interrupted imports and unpacks leave behind: files in the scratch directory
    /// and half-made `rootfs/.tmp-*` directories.
    fn leftovers(&self) -> Result<Vec<PathBuf>> {
        let scratch = self.layout.scratch();
        let mut paths: Vec<PathBuf> = fs::read_dir(scratch)
            .io_ctx("listing", scratch)?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()
            .io_ctx("listing", scratch)?;
        let rootfs = self.home.join("rootfs");
        for entry in fs::read_dir(&rootfs).io_ctx("listing", &rootfs)? {
            let entry = entry.io_ctx("listing", &rootfs)?;
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                paths.push(entry.path());
            }
        }
        Ok(paths)
    }

    /// Opens the store of the default vmc home (`$VMC_HOME`, else `/var/lib/vmc` as root).
    pub fn open_default() -> Result<Store> {
        Store::open(&vmc_runtime::paths::vmc_home())
    }

    /// The vmc home this store lives in.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The OCI layout directory (`$VMC_HOME/images`).
    pub fn layout_dir(&self) -> &Path {
        self.layout.root()
    }

    /// Turns progress bars on or off (default: on when stdout is a terminal).
    pub fn set_progress(&mut self, show: bool) {
        self.show_progress = show;
    }

    /// Imports a docker-archive, OCI layout (directory or tar) or plain rootfs (directory,
    /// `.tar`, `.tar.gz`), named `tag` or else by the source's own names.
    pub fn import(&self, source: &Path, tag: Option<&str>) -> Result<ImageSummary> {
        let options = ImportOptions {
            tag: tag.map(str::to_string),
            ..ImportOptions::default()
        };
        self.import_with(source, &options)
    }

    /// [`Store::import`] with `--change` instructions or a reference to pick. The summary's
    /// `names` are those this import gave the image (it may have had others already).
    pub fn import_with(&self, source: &Path, options: &ImportOptions) -> Result<ImageSummary> {
        let tag = options.tag.as_deref().map(TaggedName::parse).transpose()?;
        let _gc = self.layout.lock_gc(false, false)?;
        let staged = import::stage(&self.layout, source, options, self.show_progress)?;
        let names = match tag {
            Some(tag) => vec![tag],
            None => staged.names,
        };
        self.add_to_index(&staged.manifest, &names)?;
        let id = digest::sha256_hex(staged.manifest.digest().as_ref())?.to_string();
        let mut summary = self.resolve(&id)?.summary();
        summary.names = names.iter().map(TaggedName::to_string).collect();
        Ok(summary)
    }

    /// Imports every image of a docker-archive or OCI archive (or layout directory), like
    /// `docker load`; each summary's `names` are those the archive gave it (none: untagged).
    pub fn load_archive(&self, source: &Path) -> Result<Vec<ImageSummary>> {
        let _gc = self.layout.lock_gc(false, false)?;
        self.load_archive_locked(source)
    }

    /// [`Store::load_archive`] of an archive read from `input` (`vmc load < FILE`), which is
    /// spooled into the store's scratch space first (an archive is read more than once) and
    /// removed afterwards. Errors name it "standard input".
    pub fn load_archive_from(&self, input: &mut dyn Read) -> Result<Vec<ImageSummary>> {
        let _gc = self.layout.lock_gc(false, false)?;
        let scratch = self.layout.scratch();
        let mut spooled = tempfile::Builder::new()
            .prefix("load-")
            .tempfile_in(scratch)
            .io_ctx("creating a temporary file in", scratch)?;
        let bytes = std::io::copy(input, spooled.as_file_mut())
            .io_ctx("spooling standard input into", spooled.path())?;
        let stdin = || PathBuf::from("standard input");
        if bytes == 0 {
            return Err(ImageError::UnsupportedSource {
                path: stdin(),
                reason: "it is empty: redirect an archive into vmc load (vmc load < FILE), or give -i FILE".into(),
            });
        }
        self.load_archive_locked(spooled.path())
            .map_err(|err| match err {
                ImageError::UnsupportedSource { path, reason } if path == spooled.path() => {
                    ImageError::UnsupportedSource {
                        path: stdin(),
                        reason,
                    }
                }
                other => other,
            })
    }

    fn load_archive_locked(&self, source: &Path) -> Result<Vec<ImageSummary>> {
        let staged = import::stage_all(&self.layout, source, self.show_progress)?;
        let mut loaded = Vec::new();
        for image in staged {
            self.add_to_index(&image.manifest, &image.names)?;
            let id = digest::sha256_hex(image.manifest.digest().as_ref())?.to_string();
            let mut summary = self.resolve(&id)?.summary();
            summary.names = image.names.iter().map(TaggedName::to_string).collect();
            loaded.push(summary);
        }
        Ok(loaded)
    }

    /// Every image, newest first.
    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        let mut images = Vec::new();
        for entry in self.indexed()? {
            images.push(self.load(&entry)?.summary());
        }
        images.sort_by(|a, b| b.created.cmp(&a.created).then(a.names.cmp(&b.names)));
        Ok(images)
    }

    /// Finds an image by `name[:tag]`, or by ID / ID prefix (≥ 4 hex digits, `sha256:` allowed).
    pub fn resolve(&self, reference: &str) -> Result<Image> {
        let entries = self.indexed()?;
        self.load(find(&entries, reference)?.0)
    }

    /// Gives the image `source` refers to the name `target` too, like `docker tag`; a name
    /// another image had moves to this one (that image stays, untagged if it has no other).
    pub fn tag(&self, source: &str, target: &str) -> Result<ImageSummary> {
        let target = TaggedName::parse(target)?;
        {
            let _index_lock = self.layout.lock_index()?;
            let mut index = self.layout.read_index()?;
            let entries = index::group(&index);
            let manifest = find(&entries, source)?.0.manifest.clone();
            index::add_names(&mut index, &manifest, std::slice::from_ref(&target));
            self.layout.write_index(&index)?;
        }
        Ok(self.resolve(&target.to_string())?.summary())
    }

    /// Removes the name `reference` (or the image, for an ID); deletes the image's blobs,
    /// rootfs cache, disk and initramfs archives when no name refers to it any more (like
    /// `docker rmi`). Before deleting an image it asks `user_of` (given the image ID) what
    /// uses it, and refuses with [`ImageError::InUse`] if something does.
    pub fn remove(
        &self,
        reference: &str,
        user_of: impl Fn(&str) -> Option<String>,
    ) -> Result<RemoveReport> {
        self.remove_with(reference, false, user_of)
    }

    /// [`Store::remove`]; with `force` (`docker rmi -f`) an ID of an image with several names
    /// removes them all and the image. An image in use by a running run is never removed,
    /// forced or not (Docker's rule too).
    pub fn remove_with(
        &self,
        reference: &str,
        force: bool,
        user_of: impl Fn(&str) -> Option<String>,
    ) -> Result<RemoveReport> {
        let _index_lock = self.layout.lock_index()?;
        let entries = self.indexed()?;
        let (target, by_name) = find(&entries, reference)?;
        let digest = target.manifest.digest().to_string();
        let id = digest::sha256_hex(&digest)?.to_string();
        let removed_names: Vec<String> = match by_name {
            Some(name) => vec![name],
            None if target.names.len() > 1 && !force => {
                return Err(ImageError::InvalidReference {
                    reference: reference.to_string(),
                    reason: format!(
                        "image {} is tagged {}; remove it by name (vmc rmi {}) or with vmc rmi -f",
                        &id[..12],
                        target.names.join(", "),
                        target.names.join(" ")
                    ),
                })
            }
            None => target.names.clone(),
        };
        let remaining_names = target.names.len() - removed_names.len();
        if let (0, Some(user)) = (remaining_names, user_of(&id)) {
            return Err(ImageError::InUse {
                image: reference.to_string(),
                user,
            });
        }
        let mut index = self.layout.read_index()?;
        let mut manifests = index.manifests().clone();
        manifests.retain(|d| {
            let same = d.digest().to_string() == digest;
            let name = entry_name(d);
            !(same
                && (remaining_names == 0
                    || name.as_ref().is_some_and(|n| removed_names.contains(n))))
        });
        index.set_manifests(manifests);
        self.layout.write_index(&index)?;
        let mut report = RemoveReport {
            untagged: removed_names,
            deleted: None,
        };
        if remaining_names == 0 {
            // Blob deletion waits for no import to be running; otherwise prune does it later.
            if let Some(_gc) = self.layout.lock_gc(true, true)? {
                self.delete_unreferenced(&index)?;
            }
            self.discard_rootfs(&self.rootfs_dir(&id))?;
            initramfs::remove_cached_archives(&self.home, &id)?;
            disk::remove_cached_disks(&self.home, &id)?;
            report.deleted = Some(id);
        }
        Ok(report)
    }

    /// Removes untagged images (except those `user_of`, given an image ID, says are in use),
    /// blobs no image references, rootfs caches, disks and initramfs archives of images that
    /// are gone, half-made rootfs directories and leftover temporary files.
    pub fn prune(&self, user_of: impl Fn(&str) -> Option<String>) -> Result<PruneReport> {
        let _gc = self.layout.lock_gc(true, false)?;
        let _index_lock = self.layout.lock_index()?;
        let mut report = PruneReport::default();
        let mut index = self.layout.read_index()?;
        let mut manifests = index.manifests().clone();
        manifests.retain(|d| {
            let in_use =
                || digest::sha256_hex(d.digest().as_ref()).is_ok_and(|id| user_of(id).is_some());
            let keep = entry_name(d).is_some() || in_use();
            if !keep {
                report.images.push(d.digest().to_string());
            }
            keep
        });
        index.set_manifests(manifests);
        if !report.images.is_empty() {
            self.layout.write_index(&index)?;
        }
        let (blobs, bytes) = self.delete_unreferenced(&index)?;
        report.blobs = blobs;
        report.bytes = bytes;
        let live: HashSet<String> = index
            .manifests()
            .iter()
            .filter_map(|d| {
                digest::sha256_hex(d.digest().as_ref())
                    .ok()
                    .map(str::to_string)
            })
            .collect();
        let rootfs = self.home.join("rootfs");
        for entry in fs::read_dir(&rootfs).io_ctx("listing", &rootfs)? {
            let entry = entry.io_ctx("listing", &rootfs)?;
            if !live.contains(entry.file_name().to_string_lossy().as_ref()) {
                self.discard_rootfs(&entry.path())?;
                report.rootfs_dirs += 1;
            }
        }
        report.initramfs_archives = initramfs::remove_archives_except(&self.home, &live)?;
        report.disks = disk::remove_disks_except(&self.home, &live)?;
        for path in self.leftovers()? {
            unpack::remove_any(&path)?;
        }
        Ok(report)
    }

    /// The unpacked root filesystem of `image` at `$VMC_HOME/rootfs/<id>`, unpacking it on
    /// first use. The directory appears only once complete.
    pub fn rootfs(&self, image: &Image) -> Result<PathBuf> {
        let dir = self.rootfs_dir(&image.id);
        if dir.is_dir() {
            return Ok(dir);
        }
        let _gc = self.layout.lock_gc(false, false)?;
        let parent = self.home.join("rootfs");
        let temp = tempfile::Builder::new()
            .prefix(&format!(".tmp-{}-", image.short_id()))
            .tempdir_in(&parent)
            .io_ctx("creating a directory in", &parent)?;
        let layers: Vec<LayerBlob> = image
            .layers
            .iter()
            .map(|l| {
                Ok(LayerBlob {
                    path: self.layout.blob_path(&l.digest)?,
                    digest: l.digest.clone(),
                    diff_id: l.diff_id.clone(),
                })
            })
            .collect::<Result<_>>()?;
        unpack::unpack_layers(temp.path(), &layers, self.show_progress)?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(temp.path(), fs::Permissions::from_mode(0o755))
            .io_ctx("chmod", temp.path())?;
        match fs::rename(temp.path(), &dir) {
            Ok(()) => {
                // The directory now lives on as the cache; nothing left for TempDir to delete.
                let _ = temp.keep();
                Ok(dir)
            }
            // Another process finished the same rootfs first: use theirs, drop ours.
            Err(_) if dir.is_dir() => Ok(dir),
            Err(e) => Err(e).io_ctx("renaming into place", &dir),
        }
    }

    /// The root filesystem of image `image_id` (unpacked at `rootfs`, see [`Store::rootfs`])
    /// as a read-only erofs disk for VM mode, cached at `$VMC_HOME/disks/<id>-v1.erofs` and
    /// built on first use. A cached disk is checked (size and superblock) on every use; a
    /// damaged one is an error that names it. A signal that ends a setup, caught by
    /// `signals` during the build, stops it: [`ImageError::Interrupted`], nothing stored.
    pub fn rootfs_disk(
        &self,
        image_id: &str,
        rootfs: &Path,
        signals: &SignalCatcher,
    ) -> Result<RootfsDisk> {
        // Shared: an interrupted build's temporary file is removed only while nobody builds.
        let _gc = self.layout.lock_gc(false, false)?;
        disk::cached_rootfs_disk(&self.home, self.layout.scratch(), image_id, rootfs, signals)
    }

    /// Creates a VM run's scratch disk at `path` (which must not exist): a sparse ext4 file
    /// of [`disk::scratch::SCRATCH_DISK_BYTES`], deleted when the returned value is dropped.
    /// Formatting its template on first use stops as [`Store::rootfs_disk`] does.
    pub fn scratch_disk(&self, path: &Path, signals: &SignalCatcher) -> Result<ScratchDisk> {
        let _gc = self.layout.lock_gc(false, false)?;
        disk::scratch::create(
            &self.home.join("cache"),
            self.layout.scratch(),
            path,
            signals,
        )
    }

    /// Deletes a rootfs directory after renaming it to a `.tmp-` name, so that a crash while
    /// deleting never leaves a half-deleted tree under an image ID (the leftover is removed
    /// on the next open).
    fn discard_rootfs(&self, dir: &Path) -> Result<()> {
        if !dir.exists() {
            return Ok(());
        }
        let name = dir.file_name().unwrap_or_default().to_string_lossy();
        let doomed = self
            .home
            .join("rootfs")
            .join(format!(".tmp-removed-{name}"));
        unpack::remove_any(&doomed)?;
        fs::rename(dir, &doomed).io_ctx("renaming", dir)?;
        unpack::remove_any(&doomed)
    }

    /// Where the rootfs cache of image `id` lives.
    fn rootfs_dir(&self, id: &str) -> PathBuf {
        self.home.join("rootfs").join(id)
    }

    /// Adds `names` for the manifest to `index.json` under the index lock.
    fn add_to_index(&self, manifest: &Descriptor, names: &[TaggedName]) -> Result<()> {
        let _lock = self.layout.lock_index()?;
        let mut index = self.layout.read_index()?;
        index::add_names(&mut index, manifest, names);
        self.layout.write_index(&index)
    }

    /// The images of `index.json`, grouped by manifest.
    fn indexed(&self) -> Result<Vec<IndexedImage>> {
        Ok(index::group(&self.layout.read_index()?))
    }

    /// Reads the manifest and config of an indexed image.
    fn load(&self, entry: &IndexedImage) -> Result<Image> {
        let manifest_digest = entry.manifest.digest().to_string();
        let bytes = self.layout.read_blob(&manifest_digest)?;
        let manifest: ImageManifest = parse(&bytes, &format!("manifest {manifest_digest}"))?;
        let config_digest = manifest.config().digest().to_string();
        let config: ImageConfiguration = parse(
            &self.layout.read_blob(&config_digest)?,
            &format!("config {config_digest}"),
        )?;
        let diff_ids = config.rootfs().diff_ids();
        let layers: Vec<LayerInfo> = manifest
            .layers()
            .iter()
            .enumerate()
            .map(|(i, l)| LayerInfo {
                digest: l.digest().to_string(),
                media_type: l.media_type().to_string(),
                size: l.size(),
                diff_id: (diff_ids.len() == manifest.layers().len()).then(|| diff_ids[i].clone()),
            })
            .collect();
        // Docker's SIZE: the layers' files unpacked, the same whatever their compression.
        let sizes = LayerSizes::new(&self.home, &self.layout);
        let mut size = 0u64;
        for layer in &layers {
            size = size.saturating_add(sizes.of(&layer.digest, layer.size)?);
        }
        Ok(Image {
            id: digest::sha256_hex(&manifest_digest)?.to_string(),
            names: entry.names.clone(),
            created: config.created().clone(),
            architecture: config.architecture().to_string(),
            os: config.os().to_string(),
            config: ImageConfig::from_oci(config.config().as_ref()),
            layers,
            size,
            manifest_digest,
            config_digest,
        })
    }

    /// Deletes blobs not reachable from `index`; returns (count, bytes).
    fn delete_unreferenced(&self, index: &oci_spec::image::ImageIndex) -> Result<(usize, u64)> {
        let mut live: HashSet<String> = HashSet::new();
        for d in index.manifests() {
            let digest = d.digest().to_string();
            live.insert(digest.clone());
            let Ok(bytes) = self.layout.read_blob(&digest) else {
                continue;
            };
            let manifest: ImageManifest = parse(&bytes, &format!("manifest {digest}"))?;
            live.insert(manifest.config().digest().to_string());
            live.extend(manifest.layers().iter().map(|l| l.digest().to_string()));
        }
        let (mut count, mut bytes) = (0, 0);
        let sizes = LayerSizes::new(&self.home, &self.layout);
        for blob in self.layout.blob_digests()? {
            if !live.contains(&blob) {
                bytes += self.layout.remove_blob(&blob)?;
                sizes.forget(&blob)?;
                count += 1;
            }
        }
        Ok((count, bytes))
    }
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::Malformed {
        what: what.to_string(),
        reason: e.to_string(),
    })
}
