//! Applying the entries of one layer tarball inside a root directory.

use super::{remove_any, set_mtime};
use crate::error::{ImageError, IoContext, Result};
use nix::sys::stat::{self, Mode, SFlag};
use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};
use vmc_runtime::rootfs::{self, AboveRoot, RootfsError};

/// Applies the entries of one layer.
pub(super) struct Applier<'a> {
    root: PathBuf,
    layer: &'a str,
    /// Host paths created or replaced by this layer (whiteouts never remove these).
    added: HashSet<PathBuf>,
    as_root: bool,
    /// Directory mtimes to set once every layer is applied.
    dir_times: &'a mut HashMap<PathBuf, u64>,
}

impl<'a> Applier<'a> {
    /// An applier for layer `layer` writing below `root`, recording directory mtimes.
    pub(super) fn new(
        root: &Path,
        layer: &'a str,
        dir_times: &'a mut HashMap<PathBuf, u64>,
    ) -> Self {
        Applier {
            root: root.to_path_buf(),
            layer,
            added: HashSet::new(),
            as_root: nix::unistd::geteuid().is_root(),
            dir_times,
        }
    }

    fn refuse(&self, entry: &Path, reason: impl Into<String>) -> ImageError {
        ImageError::UnsafeEntry {
            layer: self.layer.to_string(),
            entry: entry.display().to_string(),
            reason: reason.into(),
        }
    }

    fn corrupt(&self, e: io::Error) -> ImageError {
        ImageError::CorruptLayer {
            layer: self.layer.to_string(),
            reason: e.to_string(),
        }
    }

    /// Splits an archive path into normal components relative to the root, refusing `..`.
    fn components(&self, path: &Path) -> Result<Vec<OsString>> {
        let mut parts = Vec::new();
        for component in path.components() {
            match component {
                Component::Normal(part) => parts.push(part.to_os_string()),
                // A leading `/` (umoci writes them) means the rootfs root, as in GNU tar.
                Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
                Component::ParentDir => return Err(self.refuse(path, "contains '..'")),
            }
        }
        Ok(parts)
    }

    /// Applies one tar entry.
    pub(super) fn apply(&mut self, entry: &mut tar::Entry<'_, impl Read>) -> Result<()> {
        let path = entry.path().map_err(|e| self.corrupt(e))?.into_owned();
        let parts = self.components(&path)?;
        let Some((name, parents)) = parts.split_last() else {
            return Ok(()); // the layer's own root directory
        };
        if let Some(hidden) = name.as_bytes().strip_prefix(b".wh.") {
            return self.whiteout(&path, parents, hidden);
        }
        let parent = self
            .resolve_dir(&path, parents, true)?
            .expect("created when missing");
        let dest = parent.join(name);
        let header = entry.header();
        let mode = header.mode().map_err(|e| self.corrupt(e))? & 0o7777;
        let mtime = header.mtime().map_err(|e| self.corrupt(e))?;
        let owner = (
            header.uid().map_err(|e| self.corrupt(e))?,
            header.gid().map_err(|e| self.corrupt(e))?,
        );
        use tar::EntryType as T;
        match header.entry_type() {
            T::Directory => self.make_dir(&dest, mode, owner, mtime)?,
            T::Regular | T::Continuous | T::GNUSparse => {
                self.write_file(entry, &dest, mode, owner, mtime)?
            }
            T::Symlink => {
                let target = self.link_name(entry, &path)?;
                remove_any(&dest)?;
                std::os::unix::fs::symlink(&target, &dest).io_ctx("creating symlink", &dest)?;
                self.chown(&dest, owner)?;
                set_mtime(&dest, mtime).io_ctx("setting mtime of", &dest)?;
            }
            T::Link => self.hard_link(entry, &path, &dest)?,
            T::Char | T::Block | T::Fifo => self.special_file(entry, &dest, mode, owner)?,
            // PAX/GNU metadata records are consumed by the tar reader; others carry no files.
            _ => return Ok(()),
        }
        self.added.insert(dest);
        Ok(())
    }

    /// Resolves the directory `parts` inside the root ([`rootfs::resolve`], refusing `..`
    /// above it); creates missing directories when `create`, else returns `None` for a
    /// missing one.
    fn resolve_dir(
        &mut self,
        entry: &Path,
        parts: &[OsString],
        create: bool,
    ) -> Result<Option<PathBuf>> {
        let path: PathBuf = parts.iter().collect();
        let resolved =
            rootfs::resolve(&self.root, &path, AboveRoot::Refuse).map_err(|e| match e {
                RootfsError::SymlinkLoop { .. } => {
                    self.refuse(entry, "resolves through a symlink loop")
                }
                RootfsError::LeavesRoot { .. } => self.refuse(
                    entry,
                    "resolves through a symlink to a path outside the rootfs",
                ),
                RootfsError::Io {
                    action,
                    path,
                    error,
                } => ImageError::Io {
                    action,
                    path,
                    source: error,
                },
                // Only reading a file can find it irregular or too large.
                other => self.refuse(entry, other.to_string()),
            })?;
        if resolved.rest.is_empty() {
            return Ok(Some(resolved.dir));
        }
        if !create {
            return Ok(None);
        }
        if resolved.rest_via_symlink {
            return Err(self.refuse(
                entry,
                "resolves through a symlink to a directory missing from the rootfs (it may point outside)",
            ));
        }
        let mut dir = resolved.dir;
        for (index, name) in resolved.rest.iter().enumerate() {
            dir.push(name);
            if index == 0 {
                // A lower layer's file where this layer needs a directory: replace it.
                remove_any(&dir)?;
            }
            fs::create_dir(&dir).io_ctx("creating directory", &dir)?;
            self.added.insert(dir.clone());
        }
        Ok(Some(dir))
    }

    /// Handles `.wh.NAME` (delete NAME of lower layers) and `.wh..wh..opq` (hide the lower
    /// layers' content of the directory).
    fn whiteout(&mut self, entry: &Path, parents: &[OsString], hidden: &[u8]) -> Result<()> {
        if hidden == b".wh..opq" {
            if let Some(dir) = self.resolve_dir(entry, parents, true)? {
                self.make_opaque(&dir)?;
            }
            return Ok(());
        }
        if hidden.starts_with(b".wh.") {
            return Ok(()); // other aufs metadata (.wh..wh.plnk, ...): nothing to apply
        }
        if hidden.is_empty() || hidden == b"." || hidden == b".." || hidden.contains(&b'/') {
            return Err(self.refuse(entry, "is a whiteout of '.' or '..'"));
        }
        if let Some(dir) = self.resolve_dir(entry, parents, false)? {
            let victim = dir.join(OsStr::from_bytes(hidden));
            if !self.added.contains(&victim) {
                remove_any(&victim)?;
            }
        }
        Ok(())
    }

    /// Removes everything under `dir` that this layer did not add.
    fn make_opaque(&self, dir: &Path) -> Result<()> {
        for child in fs::read_dir(dir).io_ctx("listing", dir)? {
            let child = child.io_ctx("listing", dir)?.path();
            if !self.added.contains(&child) {
                remove_any(&child)?;
            } else if fs::symlink_metadata(&child)
                .map(|m| m.is_dir())
                .unwrap_or(false)
            {
                self.make_opaque(&child)?;
            }
        }
        Ok(())
    }

    fn make_dir(&mut self, dest: &Path, mode: u32, owner: (u64, u64), mtime: u64) -> Result<()> {
        let is_dir = fs::symlink_metadata(dest)
            .map(|m| m.is_dir())
            .unwrap_or(false);
        if !is_dir {
            remove_any(dest)?;
            fs::create_dir(dest).io_ctx("creating directory", dest)?;
        }
        self.chown(dest, owner)?;
        // Without root, keep directories writable for us so later layers can fill them.
        let mode = if self.as_root { mode } else { mode | 0o700 };
        fs::set_permissions(dest, fs::Permissions::from_mode(mode)).io_ctx("chmod", dest)?;
        self.dir_times.insert(dest.to_path_buf(), mtime);
        Ok(())
    }

    fn write_file(
        &self,
        entry: &mut tar::Entry<'_, impl Read>,
        dest: &Path,
        mode: u32,
        owner: (u64, u64),
        mtime: u64,
    ) -> Result<()> {
        remove_any(dest)?;
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(dest)
            .io_ctx("creating", dest)?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut copied = 0u64;
        loop {
            let n = entry.read(&mut buf).map_err(|e| self.corrupt(e))?;
            if n == 0 {
                break;
            }
            file.write_all(&buf[..n]).io_ctx("writing", dest)?;
            copied += n as u64;
        }
        if copied != entry.size() {
            let reason = format!(
                "{} ends after {copied} of its {} bytes",
                dest.display(),
                entry.size()
            );
            return Err(self.corrupt(io::Error::new(io::ErrorKind::UnexpectedEof, reason)));
        }
        if self.as_root {
            std::os::unix::fs::fchown(&file, Some(owner.0 as u32), Some(owner.1 as u32))
                .io_ctx("chown", dest)?;
        }
        // chmod after chown: chown clears setuid/setgid bits.
        file.set_permissions(fs::Permissions::from_mode(mode))
            .io_ctx("chmod", dest)?;
        file.set_modified(UNIX_EPOCH + Duration::from_secs(mtime))
            .io_ctx("setting mtime of", dest)?;
        Ok(())
    }

    fn link_name(&self, entry: &tar::Entry<'_, impl Read>, path: &Path) -> Result<PathBuf> {
        match entry.link_name().map_err(|e| self.corrupt(e))? {
            Some(target) => Ok(target.into_owned()),
            None => Err(self.refuse(path, "is a link without a target")),
        }
    }

    fn hard_link(
        &mut self,
        entry: &tar::Entry<'_, impl Read>,
        path: &Path,
        dest: &Path,
    ) -> Result<()> {
        let target_name = self.link_name(entry, path)?;
        let parts = self.components(&target_name).map_err(|_| {
            self.refuse(
                path,
                format!(
                    "is a hard link to {} outside the rootfs",
                    target_name.display()
                ),
            )
        })?;
        let missing = |this: &Self| {
            this.refuse(
                path,
                format!(
                    "is a hard link to {}, which is not in the rootfs",
                    target_name.display()
                ),
            )
        };
        let Some((name, parents)) = parts.split_last() else {
            return Err(missing(self));
        };
        let Some(dir) = self.resolve_dir(path, parents, false)? else {
            return Err(missing(self));
        };
        let target = dir.join(name);
        match fs::symlink_metadata(&target) {
            Ok(meta) if meta.is_dir() => {
                return Err(self.refuse(path, "is a hard link to a directory"))
            }
            Ok(_) => {}
            Err(_) => return Err(missing(self)),
        }
        if target != dest {
            remove_any(dest)?;
            fs::hard_link(&target, dest).io_ctx("creating hard link", dest)?;
        }
        Ok(())
    }

    fn special_file(
        &self,
        entry: &tar::Entry<'_, impl Read>,
        dest: &Path,
        mode: u32,
        owner: (u64, u64),
    ) -> Result<()> {
        let header = entry.header();
        let kind = match header.entry_type() {
            tar::EntryType::Fifo => SFlag::S_IFIFO,
            // Device nodes need CAP_MKNOD: without root they are skipped.
            _ if !self.as_root => return Ok(()),
            tar::EntryType::Char => SFlag::S_IFCHR,
            _ => SFlag::S_IFBLK,
        };
        // Only device entries carry numbers: GNU tar leaves a FIFO's fields empty (all NUL).
        let (major, minor) = if kind == SFlag::S_IFIFO {
            (0, 0)
        } else {
            let number = |field: io::Result<Option<u32>>| {
                field.map(|n| n.unwrap_or(0)).map_err(|e| self.corrupt(e))
            };
            (
                number(header.device_major())?,
                number(header.device_minor())?,
            )
        };
        remove_any(dest)?;
        stat::mknod(
            dest,
            kind,
            Mode::from_bits_truncate(mode),
            stat::makedev(major.into(), minor.into()),
        )
        .map_err(io::Error::from)
        .io_ctx("creating special file", dest)?;
        self.chown(dest, owner)
    }

    /// Sets ownership (without following symlinks) when running as root.
    fn chown(&self, path: &Path, owner: (u64, u64)) -> Result<()> {
        if self.as_root {
            std::os::unix::fs::lchown(path, Some(owner.0 as u32), Some(owner.1 as u32))
                .io_ctx("chown", path)?;
        }
        Ok(())
    }
}
