//! A run's writable layer: the overlay's upper and work directories on the host's disk, in the
//! run's directory (`$VMC_HOME/runs/<id>/`, inside the vmc home that only its owner may
//! enter), as Docker keeps a container's layer under `/var/lib/docker`.
//!
//! Files the workload writes are disk blocks, not memory: their page cache is charged to the
//! run's cgroup and reclaimed under its limit like any file's. The layer outlives the run, so
//! a later run on the same directory finds the workload's files again; it goes with
//! [`WritableLayer::remove`] (`vmc rm`, `--rm`, a failed start).

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The writable layer of the run whose directory is `run_dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritableLayer {
    upper: PathBuf,
    work: PathBuf,
    merged: PathBuf,
}

impl WritableLayer {
    /// The layer of the run directory `run_dir` (which need not exist yet).
    pub fn of(run_dir: &Path) -> Self {
        WritableLayer {
            upper: run_dir.join("upper"),
            work: run_dir.join("work"),
            merged: run_dir.join("merged"),
        }
    }

    /// The overlay's upper directory: the files the workload created or changed, and the
    /// whiteouts of those it deleted.
    pub fn upper(&self) -> &Path {
        &self.upper
    }

    /// The overlay's work directory (overlayfs's scratch space, on the upper's filesystem).
    pub fn work(&self) -> &Path {
        &self.work
    }

    /// Where the overlay is mounted, in the container's mount namespace only.
    pub fn merged(&self) -> &Path {
        &self.merged
    }

    /// Whether a run has left a layer here.
    pub fn exists(&self) -> bool {
        self.upper.is_dir()
    }

    /// Deletes the layer's directories. Directories the workload made unwritable or
    /// unsearchable are opened up first (a rootless vmc owns its files but needs the write
    /// bit to delete them). Missing directories are fine.
    pub fn remove(&self) -> io::Result<()> {
        for dir in [&self.upper, &self.work, &self.merged] {
            remove_tree(dir)?;
        }
        Ok(())
    }
}

/// Removes `dir` and everything below it; `Ok` when it does not exist.
fn remove_tree(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => return Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) if err.kind() != io::ErrorKind::PermissionDenied => return Err(err),
        Err(_) => {}
    }
    open_up(dir)?;
    match fs::remove_dir_all(dir) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Gives the owner rwx on every directory under `dir` (symlinks are not followed).
fn open_up(dir: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    if mode & 0o700 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o700))?;
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            open_up(&entry.path())?;
        }
    }
    Ok(())
}
