//! Paths inside an image's root filesystem, resolved as if that root were `/`.
//!
//! Images are hostile: any of their symlinks may point at a host path (`/etc/shadow`), climb
//! with `..` or loop. Everything vmc looks up in a root — layer entries while unpacking, the
//! image's `/etc/passwd` and `/etc/group`, the working directory, volume targets — goes through
//! [`resolve`]: symlinks are followed component by component inside the root (an absolute
//! target restarts at the root, `..` stops at it), at most [`MAX_SYMLINKS`] of them, so the
//! result is always a path below the root with no symlink in it. [`read_image_file`] adds a
//! size cap and refuses anything but a regular file, so a FIFO cannot hang vmc and `/dev/zero`
//! cannot fill its memory.
//!
//! The walk runs in user space, like the kernel's `RESOLVE_IN_ROOT` but without its atomicity:
//! the roots vmc resolves in are the store's unpacked images, which only vmc writes (the store
//! is private to its owner) and which no container writes to (its writes go to the overlay's
//! upper layer), so nothing can swap a directory for a symlink between the check and the use.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

/// Most symlinks followed while resolving one path (the kernel's limit).
pub const MAX_SYMLINKS: u32 = 40;

/// Why a path could not be resolved or an image file not read.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// More than [`MAX_SYMLINKS`] symlinks on the way: a loop.
    #[error(
        "{path:?} in the image resolves through more than {MAX_SYMLINKS} symlinks (a symlink loop)"
    )]
    SymlinkLoop {
        /// The path asked for, inside the root.
        path: PathBuf,
    },
    /// A `..` would climb above the root and the caller asked for [`AboveRoot::Refuse`].
    #[error("{path:?} in the image resolves through a symlink to a path outside the rootfs")]
    LeavesRoot {
        /// The path asked for, inside the root.
        path: PathBuf,
    },
    /// The file exists but is a directory, FIFO, device or socket.
    #[error("{path:?} in the image is {kind}, not a regular file: fix the image")]
    NotRegular {
        /// The path asked for, inside the root.
        path: PathBuf,
        /// What it is instead ("a FIFO", "a character device", ...).
        kind: &'static str,
    },
    /// The file is larger than the caller's cap.
    #[error("{path:?} in the image is larger than {max_bytes} bytes: fix the image")]
    TooLarge {
        /// The path asked for, inside the root.
        path: PathBuf,
        /// The cap.
        max_bytes: u64,
    },
    /// A filesystem call failed.
    #[error("{action} {path:?} in the image: {error}")]
    Io {
        /// What was being done ("inspecting", "reading").
        action: &'static str,
        /// The host path involved.
        path: PathBuf,
        /// The error (in the message, not a source: the CLI prints each once).
        error: io::Error,
    },
}

/// What a `..` at the root does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AboveRoot {
    /// Stays at the root, as `..` of `/` does (the kernel's `RESOLVE_IN_ROOT`).
    Clamp,
    /// Fails with [`RootfsError::LeavesRoot`] (the layer unpacker's stricter rule).
    Refuse,
}

/// A path resolved inside a root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The deepest existing directory the walk reached: the root or a directory below it,
    /// reached without any symlink below the root.
    pub dir: PathBuf,
    /// What is left of the path below `dir`: names only (no `.`, `..` or symlink), of which the
    /// first is missing or not a directory (a file, FIFO, ...) and the others are below it.
    /// Empty when the whole path is the directory `dir`.
    pub rest: Vec<OsString>,
    /// Whether the first name of `rest` came from a symlink's target.
    pub rest_via_symlink: bool,
    depth: usize,
}

impl Resolved {
    /// The resolved host path: `dir` joined with `rest`.
    pub fn host_path(&self) -> PathBuf {
        let mut path = self.dir.clone();
        path.extend(&self.rest);
        path
    }

    /// The resolved path as seen inside the root, absolute (`/srv/app`), free of symlinks.
    pub fn in_root(&self) -> PathBuf {
        let below: Vec<Component<'_>> = self.dir.components().collect();
        let mut path = PathBuf::from("/");
        path.extend(below[below.len() - self.depth..].iter());
        path.extend(&self.rest);
        path
    }
}

/// Resolves `path` (absolute or relative: both start at the root) inside `root`, following
/// symlinks as if `root` were `/`. The walk stops at the first name that is missing or not a
/// directory; symlinks are followed wherever they are, the last name included.
pub fn resolve(root: &Path, path: &Path, above_root: AboveRoot) -> Result<Resolved, RootfsError> {
    // Work stack of (name, came from a symlink target), next name on top.
    let mut stack: Vec<(OsString, bool)> = Vec::new();
    push_components(&mut stack, path, false);
    let mut resolved = Resolved {
        dir: root.to_path_buf(),
        rest: Vec::new(),
        rest_via_symlink: false,
        depth: 0,
    };
    let mut follows = 0;
    while let Some((name, via_symlink)) = stack.pop() {
        if name == ".." {
            if resolved.rest.pop().is_some() {
                // Below a missing name nothing exists: `..` undoes that name.
                continue;
            }
            if resolved.depth == 0 {
                match above_root {
                    AboveRoot::Clamp => continue,
                    AboveRoot::Refuse => {
                        return Err(RootfsError::LeavesRoot {
                            path: path.to_path_buf(),
                        })
                    }
                }
            }
            resolved.dir.pop();
            resolved.depth -= 1;
            continue;
        }
        if !resolved.rest.is_empty() {
            resolved.rest.push(name);
            continue;
        }
        let next = resolved.dir.join(&name);
        match std::fs::symlink_metadata(&next) {
            Ok(meta) if meta.is_dir() => {
                resolved.dir = next;
                resolved.depth += 1;
            }
            Ok(meta) if meta.file_type().is_symlink() => {
                follows += 1;
                if follows > MAX_SYMLINKS {
                    return Err(RootfsError::SymlinkLoop {
                        path: path.to_path_buf(),
                    });
                }
                let target = std::fs::read_link(&next).map_err(|error| RootfsError::Io {
                    action: "reading the symlink",
                    path: next.clone(),
                    error,
                })?;
                if target.is_absolute() {
                    resolved.dir = root.to_path_buf();
                    resolved.depth = 0;
                }
                push_components(&mut stack, &target, true);
            }
            Ok(_) => {
                resolved.rest.push(name);
                resolved.rest_via_symlink = via_symlink;
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound) => {
                resolved.rest.push(name);
                resolved.rest_via_symlink = via_symlink;
            }
            Err(error) => {
                return Err(RootfsError::Io {
                    action: "inspecting",
                    path: next,
                    error,
                })
            }
        }
    }
    Ok(resolved)
}

/// What a file that is not a regular file is, for messages.
fn kind_of(kind: std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a symlink"
    }
}

/// Pushes the names and `..`s of `path` so that its first name is on top of `stack`.
fn push_components(stack: &mut Vec<(OsString, bool)>, path: &Path, via_symlink: bool) {
    for component in path.components().rev() {
        match component {
            Component::Normal(name) => stack.push((name.to_os_string(), via_symlink)),
            Component::ParentDir => stack.push(("..".into(), via_symlink)),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
}

/// Reads the file `path` of the image rooted at `root` (symlinks resolved inside the root),
/// at most `max_bytes` of it. `None` when it does not exist (or a directory on the way is a
/// file). Anything but a regular file is refused without being opened for reading, and the
/// open never blocks (`O_NONBLOCK`, `O_NOFOLLOW` on the resolved, symlink-free path).
pub fn read_image_file(
    root: &Path,
    path: &Path,
    max_bytes: u64,
) -> Result<Option<Vec<u8>>, RootfsError> {
    let resolved = resolve(root, path, AboveRoot::Clamp)?;
    let not_regular = |kind| RootfsError::NotRegular {
        path: path.to_path_buf(),
        kind,
    };
    match resolved.rest.len() {
        0 => return Err(not_regular("a directory")),
        1 => {}
        _ => return Ok(None),
    }
    let host = resolved.host_path();
    let io_error = |action, error| RootfsError::Io {
        action,
        path: host.clone(),
        error,
    };
    // Look before opening: opening a device or a FIFO already does something.
    match std::fs::symlink_metadata(&host) {
        Ok(meta) if !meta.is_file() => return Err(not_regular(kind_of(meta.file_type()))),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("inspecting", e)),
    }
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&host)
        .map_err(|e| io_error("opening", e))?;
    let meta = file.metadata().map_err(|e| io_error("inspecting", e))?;
    if !meta.is_file() {
        return Err(not_regular(kind_of(meta.file_type())));
    }
    let too_large = || RootfsError::TooLarge {
        path: path.to_path_buf(),
        max_bytes,
    };
    if meta.len() > max_bytes {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error("reading", e))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large());
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A root with `etc/passwd`, `usr/share`, a file `f` and a FIFO `pipe`.
    fn root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::create_dir_all(dir.path().join("usr/share")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::fs::write(dir.path().join("f"), "file").unwrap();
        nix::unistd::mkfifo(
            &dir.path().join("pipe"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        dir
    }

    fn in_root(root: &Path, path: &str) -> PathBuf {
        resolve(root, Path::new(path), AboveRoot::Clamp)
            .unwrap()
            .in_root()
    }

    #[test]
    fn plain_paths_resolve_to_themselves() {
        let r = root();
        let resolved = resolve(r.path(), Path::new("/etc/passwd"), AboveRoot::Clamp).unwrap();
        assert_eq!(resolved.dir, r.path().join("etc"));
        assert_eq!(resolved.rest, ["passwd"]);
        assert_eq!(resolved.host_path(), r.path().join("etc/passwd"));
        assert_eq!(resolved.in_root(), Path::new("/etc/passwd"));
        assert_eq!(in_root(r.path(), "usr/./share/"), Path::new("/usr/share"));
        assert_eq!(in_root(r.path(), "/"), Path::new("/"));
        assert_eq!(in_root(r.path(), "/new/a/b"), Path::new("/new/a/b"));
    }

    #[test]
    fn absolute_symlinks_restart_at_the_root() {
        let r = root();
        symlink("/usr/share", r.path().join("data")).unwrap();
        symlink("/tmp/host/secret", r.path().join("etc/shadow")).unwrap();
        assert_eq!(in_root(r.path(), "/data/sub"), Path::new("/usr/share/sub"));
        let shadow = resolve(r.path(), Path::new("/etc/shadow"), AboveRoot::Clamp).unwrap();
        assert_eq!(shadow.dir, r.path().to_path_buf());
        assert_eq!(shadow.rest, ["tmp", "host", "secret"]);
        assert!(shadow.rest_via_symlink);
        assert!(shadow.host_path().starts_with(r.path()));
    }

    #[test]
    fn relative_symlinks_and_dot_dot_stay_inside() {
        let r = root();
        symlink("../../../../../../etc", r.path().join("usr/up")).unwrap();
        symlink("share/../../../..", r.path().join("usr/top")).unwrap();
        assert_eq!(
            in_root(r.path(), "/usr/up/passwd"),
            Path::new("/etc/passwd")
        );
        assert_eq!(in_root(r.path(), "/usr/top/x"), Path::new("/x"));
        assert_eq!(in_root(r.path(), "/../../../etc"), Path::new("/etc"));
        assert_eq!(in_root(r.path(), "/missing/../etc"), Path::new("/etc"));
        assert!(matches!(
            resolve(r.path(), Path::new("usr/top/x"), AboveRoot::Refuse),
            Err(RootfsError::LeavesRoot { .. })
        ));
        assert!(
            matches!(
                resolve(r.path(), Path::new("usr/up"), AboveRoot::Refuse),
                Err(RootfsError::LeavesRoot { .. })
            ),
            "six levels up from /usr climbs above the root"
        );
    }

    #[test]
    fn symlink_loops_are_an_error() {
        let r = root();
        symlink("b", r.path().join("a")).unwrap();
        symlink("a", r.path().join("b")).unwrap();
        let err = resolve(r.path(), Path::new("/a/x"), AboveRoot::Clamp).unwrap_err();
        assert!(matches!(err, RootfsError::SymlinkLoop { .. }), "{err}");
        assert!(err.to_string().contains("symlink loop"));
    }

    #[test]
    fn a_file_stops_the_walk() {
        let r = root();
        let resolved = resolve(r.path(), Path::new("/f/x/y"), AboveRoot::Clamp).unwrap();
        assert_eq!(resolved.rest, ["f", "x", "y"]);
        assert!(!resolved.rest_via_symlink);
    }

    #[test]
    fn image_files_are_read_inside_the_root() {
        let r = root();
        let host = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(host.path(), "host secret").unwrap();
        symlink(host.path(), r.path().join("etc/group")).unwrap();
        symlink("../etc/passwd", r.path().join("usr/passwd")).unwrap();
        let read = |p: &str| read_image_file(r.path(), Path::new(p), 1 << 20);
        assert_eq!(
            read("/usr/passwd").unwrap().unwrap(),
            b"root:x:0:0::/root:/bin/sh\n"
        );
        assert_eq!(
            read("/etc/group").unwrap(),
            None,
            "the host file is not read"
        );
        assert_eq!(read("/f/passwd").unwrap(), None);
        assert_eq!(read("/nothing").unwrap(), None);
    }

    #[test]
    fn only_small_regular_files_are_read() {
        let r = root();
        symlink("/pipe", r.path().join("etc/fifo-link")).unwrap();
        let read = |p: &str, max| read_image_file(r.path(), Path::new(p), max);
        for (path, kind) in [("/etc/fifo-link", "a FIFO"), ("/usr", "a directory")] {
            match read(path, 1 << 20) {
                Err(RootfsError::NotRegular { kind: k, .. }) => assert_eq!(k, kind),
                other => panic!("{path}: {other:?}"),
            }
        }
        assert!(matches!(read("/f", 3), Err(RootfsError::TooLarge { .. })));
        assert_eq!(read("/f", 4).unwrap().unwrap(), b"file");
    }

    #[test]
    fn devices_are_refused_without_reading() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED: creating a device node needs root");
            return;
        }
        let r = root();
        std::fs::create_dir(r.path().join("dev")).unwrap();
        nix::sys::stat::mknod(
            &r.path().join("dev/zero"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 5),
        )
        .unwrap();
        symlink("/dev/zero", r.path().join("etc/passwd-zero")).unwrap();
        let err = read_image_file(r.path(), Path::new("/etc/passwd-zero"), 1 << 20).unwrap_err();
        assert!(
            err.to_string()
                .contains("is a character device, not a regular file"),
            "{err}"
        );
    }
}
