//! Compiled seccomp programs cached on disk, so that a run does not compile its profile:
//! `<dir>/<key>.bpf`, written atomically with mode 0600, checked when read back (magic,
//! length, checksum) and recompiled when corrupt.

use crate::error::ContainerError;
use seccompiler::{sock_filter, BpfProgram};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// First bytes of a cache file; the digit changes with the file format.
const MAGIC: &[u8; 8] = b"vmcbpf1\n";
/// Bytes of one instruction (code u16, jt u8, jf u8, k u32, little-endian).
const INSTRUCTION: usize = 8;
/// Bytes of the checksum at the end (sha256 of the instructions).
const CHECKSUM: usize = 32;
/// The longest program the kernel takes.
const MAX_INSTRUCTIONS: usize = 4096;

/// Returns the program cached under `key` in `dir`, or compiles it with `compile` and caches
/// it. The flag is true when the program came from the cache.
pub fn load_or_compile(
    dir: &Path,
    key: &str,
    compile: impl FnOnce() -> Result<BpfProgram, ContainerError>,
) -> Result<(BpfProgram, bool), ContainerError> {
    let path = dir.join(format!("{key}.bpf"));
    if let Some(program) = read(&path) {
        return Ok((program, true));
    }
    let program = compile()?;
    write(dir, &path, &program)?;
    Ok((program, false))
}

/// The cache key: sha256 of everything the compiled program depends on.
pub fn key(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

fn encode(program: &[sock_filter]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(program.len() * INSTRUCTION);
    for ins in program {
        bytes.extend_from_slice(&ins.code.to_le_bytes());
        bytes.push(ins.jt);
        bytes.push(ins.jf);
        bytes.extend_from_slice(&ins.k.to_le_bytes());
    }
    bytes
}

/// The program in `path`, or None when it is missing, too long, or corrupt.
fn read(path: &Path) -> Option<BpfProgram> {
    let limit = MAGIC.len() + MAX_INSTRUCTIONS * INSTRUCTION + CHECKSUM;
    let size = std::fs::metadata(path).ok()?.len() as usize;
    if size > limit || size < MAGIC.len() + INSTRUCTION + CHECKSUM {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let body = bytes
        .strip_prefix(MAGIC.as_slice())?
        .get(..bytes.len().checked_sub(MAGIC.len() + CHECKSUM)?)?;
    if body.len() % INSTRUCTION != 0
        || Sha256::digest(body).as_slice() != &bytes[bytes.len() - CHECKSUM..]
    {
        return None;
    }
    Some(
        body.chunks_exact(INSTRUCTION)
            .map(|c| sock_filter {
                code: u16::from_le_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect(),
    )
}

/// Writes the program to a temporary file in `dir` and renames it over `path`.
fn write(dir: &Path, path: &Path, program: &[sock_filter]) -> Result<(), ContainerError> {
    let failed = |action: &'static str, path: PathBuf| {
        move |source| ContainerError::RunDir {
            action,
            path,
            source,
        }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(failed("create", dir.to_path_buf()))?;
    let body = encode(program);
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&body);
    bytes.extend_from_slice(&Sha256::digest(&body));
    // Unique per process and call: runs in parallel may compile the same program.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let temporary = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| file.write_all(&bytes))
        .map_err(failed("write", temporary.clone()))
        .and_then(|()| {
            std::fs::rename(&temporary, path).map_err(failed("rename into place", path.into()))
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::os::unix::fs::PermissionsExt;

    fn program() -> BpfProgram {
        vec![
            sock_filter {
                code: 0x20,
                jt: 0,
                jf: 0,
                k: 4,
            },
            sock_filter {
                code: 0x15,
                jt: 1,
                jf: 0,
                k: 0xc000_003e,
            },
            sock_filter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: 0x7fff_0000,
            },
        ]
    }

    #[test]
    fn a_program_is_compiled_once_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache/seccomp");
        let compiled = Cell::new(0);
        let compile = || {
            compiled.set(compiled.get() + 1);
            Ok(program())
        };
        let (first, cached) = load_or_compile(&cache, "k1", compile).unwrap();
        assert_eq!((first, cached), (program(), false));
        let (second, cached) = load_or_compile(&cache, "k1", compile).unwrap();
        assert_eq!((second, cached), (program(), true));
        assert_eq!(compiled.get(), 1);
        let file = cache.join("k1.bpf");
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(
            std::fs::read_dir(&cache).unwrap().count(),
            1,
            "temporary file left"
        );
    }

    #[test]
    fn a_corrupt_or_truncated_file_is_recompiled() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k.bpf");
        load_or_compile(dir.path(), "k", || Ok(program())).unwrap();
        let good = std::fs::read(&file).unwrap();
        let mut flipped = good.clone();
        flipped[MAGIC.len() + 4] ^= 0xff;
        let corruptions = [
            flipped,
            good[..good.len() - 3].to_vec(),
            Vec::new(),
            b"not a program at all, just text that is long enough".to_vec(),
            vec![0u8; 64 * 1024],
        ];
        for corrupt in corruptions {
            std::fs::write(&file, &corrupt).unwrap();
            let compiled = Cell::new(false);
            let (read, cached) = load_or_compile(dir.path(), "k", || {
                compiled.set(true);
                Ok(program())
            })
            .unwrap();
            assert!(compiled.get() && !cached);
            assert_eq!(read, program());
            assert_eq!(std::fs::read(&file).unwrap(), good, "not rewritten");
        }
    }

    #[test]
    fn keys_separate_their_parts() {
        assert_ne!(key(&[b"ab", b"c"]), key(&[b"a", b"bc"]));
        assert_eq!(key(&[b"x"]).len(), 64);
    }

    #[test]
    fn an_unwritable_cache_is_one_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let err = load_or_compile(&blocker.join("sub"), "k", || Ok(program())).unwrap_err();
        assert!(err.to_string().contains("cannot create"), "{err}");
    }
}
