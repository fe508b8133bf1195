//! What a microVM boots: the image as an initramfs, plus a tiny archive with the run settings.
//!
//! The image archive holds the image's root filesystem, the guest init at `/vmc/init` and
//! `/dev/console`; it is built once per image and init binary and cached under
//! `$VMC_HOME/initramfs/`. Each run adds a second archive holding `/vmc/run.json`; the kernel
//! unpacks concatenated archives in order, so the VMM loads the two back to back (both are
//! padded to a multiple of 512 bytes; the kernel needs each archive to start 4-byte aligned).
//! The kernel command line must say `rdinit=/vmc/init`.

use crate::cpio::{Attributes, CpioWriter};
use crate::digest::is_sha256_hex;
use crate::error::{ImageError, IoContext, Result};
use sha2::{Digest as _, Sha256};
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use vmc_init::RunConfig;

/// The directory of cached image archives below the vmc home.
pub const CACHE_DIR: &str = "initramfs";

/// How to get a usable guest init, for error messages.
const INIT_HINT: &str =
    "the guest init must be linked statically: build it with scripts/build-vmc-init.sh";

/// Paths inside the archive the guest init owns: an image's own entries there are left out.
const RESERVED: [&str; 2] = ["vmc", "dev/console"];

/// Writes the initramfs of `rootfs` with the guest init `init` (a static binary) to `out`.
pub fn build_image_archive(rootfs: &Path, init: &Path, out: &Path) -> Result<()> {
    let file = File::create(out).io_ctx("creating", out)?;
    write_image_archive(rootfs, init, &file, out)
}

/// The cached initramfs of image `image_id` (whose root filesystem is `rootfs`) with the
/// guest init `init`: `$VMC_HOME/initramfs/<image-id>-<sha256(init)[..16]>.cpio`, built on
/// first use (into a temporary file renamed into place, so concurrent runs are safe).
pub fn cached_image_archive(
    home: &Path,
    image_id: &str,
    rootfs: &Path,
    init: &Path,
) -> Result<PathBuf> {
    check_image_id(image_id)?;
    let init_hash = sha256_file(init)?;
    let dir = home.join(CACHE_DIR);
    let path = dir.join(format!("{image_id}-{}.cpio", &init_hash[..16]));
    if path.exists() {
        return Ok(path);
    }
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

/// Writes the per-run archive holding `/vmc/run.json` to `out`.
pub fn build_run_archive(config: &RunConfig, out: &Path) -> Result<()> {
    std::fs::write(out, run_archive(config)).io_ctx("writing", out)
}

/// The per-run archive holding `/vmc/run.json` (readable by root only), as bytes.
pub fn run_archive(config: &RunConfig) -> Vec<u8> {
    let mut writer = CpioWriter::new(Vec::new());
    let written = writer
        .add_dir("vmc", Attributes::root(0o755))
        .and_then(|()| {
            writer.add_file(
                &archive_name(vmc_init::RUN_CONFIG_PATH),
                Attributes::root(0o600),
                &config.to_json(),
            )
        });
    written
        .and_then(|()| writer.finish())
        .expect("writing to a Vec cannot fail")
}

/// Streams the image archive into `out` (whose path, for messages, is `out_path`).
fn write_image_archive(rootfs: &Path, init: &Path, out: &File, out_path: &Path) -> Result<()> {
    check_static_executable(init)?;
    let init_file = File::open(init).io_ctx("opening", init)?;
    let init_len = init_file.metadata().io_ctx("inspecting", init)?.len();
    let mut writer = CpioWriter::new(BufWriter::new(out));
    writer.add_tree(rootfs, &is_reserved)?;
    let image_has_dev = rootfs.join("dev").symlink_metadata().is_ok();
    add_guest_entries(&mut writer, image_has_dev, init_file, init_len)
        .and_then(|()| writer.finish())
        .and_then(|mut buffered| buffered.flush())
        .io_ctx("writing", out_path)
}

/// Adds `/dev` (unless the image has it), `/dev/console` and `/vmc/init`.
fn add_guest_entries(
    writer: &mut CpioWriter<impl Write>,
    image_has_dev: bool,
    init: File,
    init_len: u64,
) -> io::Result<()> {
    if !image_has_dev {
        writer.add_dir("dev", Attributes::root(0o755))?;
    }
    writer.add_char_device("dev/console", Attributes::root(0o600), 5, 1)?;
    writer.add_dir("vmc", Attributes::root(0o755))?;
    writer.add_file_from(
        &archive_name(vmc_init::INIT_PATH),
        Attributes::root(0o755),
        init,
        init_len,
    )
}

/// Whether an image's entry named `name` is left out because the guest init owns that path.
fn is_reserved(name: &str) -> bool {
    RESERVED.iter().any(|reserved| {
        name == *reserved
            || name
                .strip_prefix(reserved)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// The archive name of an absolute guest path (archive names have no leading `/`).
fn archive_name(guest_path: &str) -> String {
    guest_path.trim_start_matches('/').to_string()
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

/// The hex sha256 of the file at `path`.
fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).io_ctx("opening", path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    loop {
        let n = file.read(&mut buffer).io_ctx("reading", path)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buffer[..n]);
    }
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
        for name in ["vmc", "vmc/init", "vmc/a/b", "dev/console"] {
            assert!(is_reserved(name), "{name}");
        }
        for name in ["vmcx", "dev", "dev/consoles", "etc/vmc"] {
            assert!(!is_reserved(name), "{name}");
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
