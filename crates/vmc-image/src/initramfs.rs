//! An image as an initramfs a microVM boots: the image's root filesystem, a guest init and
//! `/dev/console`.
//!
//! The archive is built once per image and init binary and cached under
//! `$VMC_HOME/initramfs/`. Archives are padded to a multiple of 512 bytes, so the VMM may load
//! more archives (such as per-run settings) right behind it: the kernel unpacks concatenated
//! archives in order, and needs each to start 4-byte aligned. The kernel command line must
//! name the init (`rdinit=`).

use crate::cpio::{Attributes, CpioWriter};
use crate::digest::is_sha256_hex;
use crate::error::{ImageError, IoContext, Result};
use sha2::{Digest as _, Sha256};
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// The directory of cached image archives below the vmc home.
pub const CACHE_DIR: &str = "initramfs";

/// How to get a usable guest init, for error messages.
const INIT_HINT: &str =
    "the guest init must be linked statically: build it with scripts/build-vmc-init.sh";

/// The console device every guest needs, owned by the archive: an image's own entry there is
/// left out.
const CONSOLE: &str = "dev/console";

/// The guest init an image archive carries.
#[derive(Debug, Clone, Copy)]
pub struct GuestInit<'a> {
    /// The init on the host: a statically linked x86-64 executable.
    pub binary: &'a Path,
    /// Its absolute path in the guest, one directory deep (such as `/vmc/init`). The archive
    /// owns that directory: an image's own entries there are left out.
    pub guest_path: &'a str,
}

impl GuestInit<'_> {
    /// The init's directory and its path, as archive names (no leading `/`); an error unless
    /// the guest path is `/<directory>/<name>`.
    fn archive_names(&self) -> Result<(&str, &str)> {
        let name = self.guest_path.strip_prefix('/').unwrap_or_default();
        match name.split_once('/') {
            Some((dir, file)) if !dir.is_empty() && !file.is_empty() && !file.contains('/') => {
                Ok((dir, name))
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the init's guest path {:?} is not /<directory>/<name>",
                    self.guest_path
                ),
            ))
            .io_ctx("using guest init", self.binary),
        }
    }
}

/// Writes the initramfs of `rootfs` with the guest init `init` to `out`.
pub fn build_image_archive(rootfs: &Path, init: GuestInit, out: &Path) -> Result<()> {
    let file = File::create(out).io_ctx("creating", out)?;
    write_image_archive(rootfs, init, &file, out)
}

/// The cached initramfs of image `image_id` (whose root filesystem is `rootfs`) with the
/// guest init `init`: `$VMC_HOME/initramfs/<image-id>-<key>.cpio`, where the key is a hash of
/// the init binary and its guest path; built on first use (into a temporary file renamed into
/// place, so concurrent runs are safe).
pub fn cached_image_archive(
    home: &Path,
    image_id: &str,
    rootfs: &Path,
    init: GuestInit,
) -> Result<PathBuf> {
    let path = cached_image_archive_path(home, image_id, init)?;
    if path.exists() {
        return Ok(path);
    }
    let dir = home.join(CACHE_DIR);
    std::fs::create_dir_all(&dir).io_ctx("creating", &dir)?;
    let temp =
        tempfile::NamedTempFile::new_in(&dir).io_ctx("creating a temporary file in", &dir)?;
    write_image_archive(rootfs, init, temp.as_file(), temp.path())?;
    temp.as_file().sync_all().io_ctx("writing", temp.path())?;
    temp.persist(&path)
        .map_err(|e| e.error)
        .io_ctx("storing", &path)?;
    Ok(path)
}

/// Where [`cached_image_archive`] keeps the archive of image `image_id` with `init`, whether
/// or not it has been built yet.
pub fn cached_image_archive_path(home: &Path, image_id: &str, init: GuestInit) -> Result<PathBuf> {
    check_image_id(image_id)?;
    let init_key = init_key(init)?;
    Ok(home
        .join(CACHE_DIR)
        .join(format!("{image_id}-{init_key}.cpio")))
}

/// Removes every cached archive of image `image_id` (for `vmc rmi`); returns how many.
pub fn remove_cached_archives(home: &Path, image_id: &str) -> Result<usize> {
    check_image_id(image_id)?;
    remove_archives_where(home, |id| id == image_id)
}

/// Removes the cached archives of every image whose ID is not in `keep` (for `vmc image
/// prune`); returns how many.
pub fn remove_archives_except(home: &Path, keep: &HashSet<String>) -> Result<usize> {
    remove_archives_where(home, |image_id| !keep.contains(image_id))
}

/// Removes the cached archives whose image ID `doomed` accepts; returns how many.
fn remove_archives_where(home: &Path, doomed: impl Fn(&str) -> bool) -> Result<usize> {
    let dir = home.join(CACHE_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        other => other.io_ctx("reading directory", &dir)?,
    };
    let mut removed = 0;
    for entry in entries {
        let path = entry.io_ctx("reading directory", &dir)?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let image_id = name.strip_suffix(".cpio").and_then(|n| n.split_once('-'));
        if image_id.is_some_and(|(image_id, _)| doomed(image_id)) {
            std::fs::remove_file(&path).io_ctx("removing", &path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Streams the image archive into `out` (whose path, for messages, is `out_path`).
fn write_image_archive(rootfs: &Path, init: GuestInit, out: &File, out_path: &Path) -> Result<()> {
    let (init_dir, init_name) = init.archive_names()?;
    check_static_executable(init.binary)?;
    let init_file = File::open(init.binary).io_ctx("opening", init.binary)?;
    let init_len = init_file
        .metadata()
        .io_ctx("inspecting", init.binary)?
        .len();
    let mut writer = CpioWriter::new(BufWriter::new(out));
    writer.add_tree(rootfs, &|name| is_reserved(name, init_dir))?;
    let image_has_dev = rootfs.join("dev").symlink_metadata().is_ok();
    let guest_entries = GuestEntries {
        image_has_dev,
        init_dir,
        init_name,
        init: init_file,
        init_len,
    };
    guest_entries
        .add_to(&mut writer)
        .and_then(|()| writer.finish())
        .and_then(|mut buffered| buffered.flush())
        .io_ctx("writing", out_path)
}

/// What the archive adds to the image's tree.
struct GuestEntries<'a> {
    /// Whether the image has its own `/dev`.
    image_has_dev: bool,
    /// The init's directory, as an archive name.
    init_dir: &'a str,
    /// The init's path, as an archive name.
    init_name: &'a str,
    /// The init binary, open.
    init: File,
    /// Its size.
    init_len: u64,
}

impl GuestEntries<'_> {
    /// Adds `/dev` (unless the image has it), `/dev/console`, the init's directory and the init.
    fn add_to(self, writer: &mut CpioWriter<impl Write>) -> io::Result<()> {
        if !self.image_has_dev {
            writer.add_dir("dev", Attributes::root(0o755))?;
        }
        writer.add_char_device(CONSOLE, Attributes::root(0o600), 5, 1)?;
        writer.add_dir(self.init_dir, Attributes::root(0o755))?;
        writer.add_file_from(
            self.init_name,
            Attributes::root(0o755),
            self.init,
            self.init_len,
        )
    }
}

/// Whether an image's entry named `name` is left out because the archive owns that path: the
/// console and the init's directory `init_dir`, each with everything below it.
fn is_reserved(name: &str, init_dir: &str) -> bool {
    [CONSOLE, init_dir].iter().any(|reserved| {
        name == *reserved
            || name
                .strip_prefix(reserved)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// Fails unless `image_id` is 64 lowercase hex digits (it becomes part of a file name).
fn check_image_id(image_id: &str) -> Result<()> {
    if is_sha256_hex(image_id) {
        Ok(())
    } else {
        Err(ImageError::InvalidReference {
            reference: image_id.to_string(),
            reason: "an image ID is 64 lowercase hex digits".into(),
        })
    }
}

/// The cache key of `init`: the first 16 hex digits of the sha256 of its binary followed by
/// its guest path.
fn init_key(init: GuestInit) -> Result<String> {
    let mut file = File::open(init.binary).io_ctx("opening", init.binary)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    loop {
        let n = file.read(&mut buffer).io_ctx("reading", init.binary)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    hasher.update(init.guest_path.as_bytes());
    Ok(hex::encode(hasher.finalize())[..16].to_string())
}

/// Fails unless `path` is an x86-64 ELF executable without a program interpreter: the guest
/// image may have no C library at all, so the init must be statically linked.
fn check_static_executable(path: &Path) -> Result<()> {
    match unfit_init(path)? {
        None => Ok(()),
        Some(reason) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{reason} ({INIT_HINT})"),
        ))
        .io_ctx("using guest init", path),
    }
}

/// Why `path` cannot serve as the guest init (`None`: it can).
fn unfit_init(path: &Path) -> Result<Option<&'static str>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some("no such file")),
        Err(e) => return Err(e).io_ctx("opening", path),
    };
    let mut header = Vec::new();
    file.take(64 * 1024)
        .read_to_end(&mut header)
        .io_ctx("reading", path)?;
    Ok(match elf_interpreter_present(&header) {
        None => Some("not an x86-64 ELF executable"),
        Some(true) => Some("it is dynamically linked"),
        Some(false) => None,
    })
}

/// For a little-endian 64-bit x86-64 ELF file starting with `bytes`: whether a program header
/// of type PT_INTERP (a dynamic loader) is present; `None` if it is not such a file or its
/// program headers are not within `bytes`.
fn elf_interpreter_present(bytes: &[u8]) -> Option<bool> {
    const PT_INTERP: u32 = 3;
    const EM_X86_64: u16 = 62;
    let u16_at = |at: usize| Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
    // e_ident: magic, ELFCLASS64 (2), ELFDATA2LSB (1); e_machine at 18.
    if bytes.get(..6)? != b"\x7fELF\x02\x01" || u16_at(18)? != EM_X86_64 {
        return None;
    }
    let program_headers = usize::try_from(u64_at(0x20)?).ok()?;
    let entry_size = usize::from(u16_at(0x36)?);
    let count = usize::from(u16_at(0x38)?);
    let mut interpreter = false;
    for index in 0..count {
        interpreter |= u32_at(program_headers + index * entry_size)? == PT_INTERP;
    }
    Some(interpreter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_paths_cover_their_subtrees_only() {
        for name in ["vmc", "vmc/init", "vmc/a/b", "dev/console", "dev/console/x"] {
            assert!(is_reserved(name, "vmc"), "{name}");
        }
        for name in ["vmcx", "dev", "dev/consoles", "etc/vmc"] {
            assert!(!is_reserved(name, "vmc"), "{name}");
        }
    }

    #[test]
    fn the_init_sits_one_directory_deep() {
        let init = |guest_path| GuestInit {
            binary: Path::new("/bin/busybox"),
            guest_path,
        };
        assert_eq!(
            init("/vmc/init").archive_names().unwrap(),
            ("vmc", "vmc/init")
        );
        for bad in ["vmc/init", "/init", "/vmc/", "//init", "/a/b/init", ""] {
            let err = init(bad).archive_names().unwrap_err().to_string();
            assert!(err.contains("not /<directory>/<name>"), "{bad}: {err}");
        }
    }

    #[test]
    fn elf_check_reads_program_headers() {
        let busybox = std::fs::read("/bin/busybox").unwrap();
        assert_eq!(elf_interpreter_present(&busybox), Some(false));
        let ls = std::fs::read("/bin/ls").unwrap();
        assert_eq!(elf_interpreter_present(&ls), Some(true));
        assert_eq!(elf_interpreter_present(&ls[..40]), None, "truncated header");
        assert_eq!(elf_interpreter_present(b"#!/bin/sh\n"), None);
    }
}
