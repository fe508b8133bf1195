//! Where vmc keeps its state.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of the vmc home: only its owner may enter it. Unpacked images keep their setuid
/// files and device nodes, so no other user may reach anything below it. (Docker uses 0710 to
/// let the remapped root group of `userns-remap` through; vmc has no such group — a rootless
/// vmc keeps its own store — so, like podman, it lets no one else through.)
pub const HOME_MODE: u32 = 0o700;

/// The vmc home: `$VMC_HOME`, else `/var/lib/vmc` for root, else `$XDG_DATA_HOME/vmc`
/// (`~/.local/share/vmc`).
pub fn vmc_home() -> PathBuf {
    if let Some(home) = std::env::var_os("VMC_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/vmc");
    }
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(data).join("vmc");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
    PathBuf::from(home).join(".local/share/vmc")
}

/// Creates the vmc home `home` if missing and makes it private to its owner ([`HOME_MODE`]),
/// mending the mode of a store made by an older vmc (0755). Its parents are created with the
/// usual permissions. A shared directory (world-writable or sticky, say `VMC_HOME=/tmp`) is
/// refused rather than closed: vmc needs a directory of its own.
pub fn ensure_private_home(home: &Path) -> io::Result<()> {
    if let Some(parent) = home.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    match fs::DirBuilder::new().mode(HOME_MODE).create(home) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    // The umask may have taken bits off; extra bits are an older store's (or a user's chmod).
    let mode = fs::metadata(home)?.permissions().mode() & 0o7777;
    if mode & (0o1000 | 0o002) != 0 {
        return Err(io::Error::other(
            "it is a directory shared with other users (world-writable or sticky)",
        ));
    }
    if mode != HOME_MODE {
        fs::set_permissions(home, fs::Permissions::from_mode(HOME_MODE))?;
    }
    Ok(())
}

/// The directory holding per-run state: `$VMC_HOME/runs`.
pub fn runs_dir() -> PathBuf {
    vmc_home().join("runs")
}

/// The user's cache directory for vmc artefacts that can be rebuilt (guest kernels):
/// `$VMC_CACHE`, else `$XDG_CACHE_HOME/vmc`, else `~/.cache/vmc`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("VMC_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir).join("vmc");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/vmc")
}

/// The bytes `path` (a file or a tree, not following symlinks) takes on disk: allocated
/// blocks, so a sparse file counts what it holds and a file linked twice counts once. A path
/// that does not exist takes none; entries that vanish or cannot be read meanwhile are skipped.
pub fn disk_usage(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut pending = vec![path.to_path_buf()];
    let mut bytes = 0;
    while let Some(next) = pending.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&next) else {
            continue;
        };
        if seen.insert((meta.dev(), meta.ino())) {
            bytes += meta.blocks() * 512;
        }
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&next) {
                pending.extend(entries.flatten().map(|entry| entry.path()));
            }
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn homes_are_made_private_and_old_ones_mended() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("a/b/home");
        ensure_private_home(&fresh).unwrap();
        assert_eq!(mode(&fresh), HOME_MODE);
        assert_eq!(mode(&dir.path().join("a")) & 0o700, 0o700);
        let old = dir.path().join("old");
        fs::create_dir(&old).unwrap();
        fs::set_permissions(&old, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_home(&old).unwrap();
        assert_eq!(mode(&old), HOME_MODE);
        ensure_private_home(&old).unwrap();
        assert_eq!(mode(&old), HOME_MODE);
    }

    #[test]
    fn a_shared_directory_is_refused_not_closed() {
        let dir = tempfile::tempdir().unwrap();
        for shared in [0o1777, 0o777, 0o1755] {
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(shared)).unwrap();
            let err = ensure_private_home(dir.path()).unwrap_err();
            assert!(err.to_string().contains("shared with other users"), "{err}");
            assert_eq!(mode(dir.path()), shared);
        }
    }

    #[test]
    fn disk_usage_counts_blocks_once_per_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(disk_usage(&dir.path().join("missing")), 0);
        let empty = disk_usage(dir.path());
        fs::write(dir.path().join("a"), vec![1u8; 64 << 10]).unwrap();
        fs::hard_link(dir.path().join("a"), dir.path().join("b")).unwrap();
        let sparse = fs::File::create(dir.path().join("sparse")).unwrap();
        sparse.set_len(1 << 30).unwrap();
        let used = disk_usage(dir.path()) - empty;
        assert!(
            (64 << 10..(64 << 10) + (64 << 10)).contains(&used),
            "{used}"
        );
    }
}
