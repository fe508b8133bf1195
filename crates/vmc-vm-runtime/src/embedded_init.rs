//! The static guest init, built by build.rs and embedded in this crate (so the `vmc`
//! executable alone can turn any image into a bootable microVM), and its copy on disk.

use crate::error::VmRuntimeError;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The static guest init, built and embedded by build.rs.
const EMBEDDED_INIT: &[u8] = include_bytes!(env!("VMC_INIT_EMBEDDED"));

/// The SHA-256 of [`EMBEDDED_INIT`] (hex), computed by build.rs.
const EMBEDDED_INIT_SHA256: &str = env!("VMC_INIT_SHA256");

/// Writes the embedded init to `$VMC_HOME/init/vmc-init-<sha256[..16]>` (`home` is the vmc
/// home) once and returns its path. Later runs do not touch the embedded bytes, so they never
/// become part of the VMM's resident memory.
pub fn write_embedded_init(home: &Path) -> Result<PathBuf, VmRuntimeError> {
    let dir = home.join("init");
    let path = dir.join(format!("vmc-init-{}", &EMBEDDED_INIT_SHA256[..16]));
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir).map_err(VmRuntimeError::io("create", &dir))?;
    let mut temp =
        tempfile::NamedTempFile::new_in(&dir).map_err(VmRuntimeError::io("write in", &dir))?;
    temp.write_all(EMBEDDED_INIT)
        .and_then(|()| {
            temp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o755))
        })
        .map_err(VmRuntimeError::io("write", temp.path()))?;
    temp.persist(&path)
        .map_err(|err| VmRuntimeError::io("write", &path)(err.error))?;
    release_embedded_init_pages();
    Ok(path)
}

/// Takes the embedded init's pages out of this process's resident memory once they have been
/// written out: otherwise the first VM run of a process (say, `vmc bench`) would count 1.5 MiB
/// of them as VMM overhead. They are a private, read-only mapping of the vmc binary, so the
/// kernel simply reads them again from the file should they ever be touched.
fn release_embedded_init_pages() {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    let start = EMBEDDED_INIT.as_ptr() as usize;
    let (first, end) = (
        start.next_multiple_of(page),
        (start + EMBEDDED_INIT.len()) / page * page,
    );
    if end > first {
        // SAFETY: the range lies inside EMBEDDED_INIT, read-only data of the executable's file
        // mapping; MADV_DONTNEED on it only drops pages the kernel can read back from the file.
        unsafe { libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_DONTNEED) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use vmc_image::initramfs::{self, GuestInit};

    #[test]
    fn build_time_hash_is_the_embedded_init_hash() {
        let hash: String = Sha256::digest(EMBEDDED_INIT)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hash, EMBEDDED_INIT_SHA256);
    }

    #[test]
    fn embedded_init_is_a_static_binary_the_initramfs_accepts() {
        let home = tempfile::tempdir().unwrap();
        let init = write_embedded_init(home.path()).unwrap();
        assert_eq!(
            write_embedded_init(home.path()).unwrap(),
            init,
            "written once"
        );
        assert_eq!(
            std::fs::read(&init).unwrap(),
            EMBEDDED_INIT,
            "the embedded bytes read back intact after their pages were released"
        );
        let rootfs = tempfile::tempdir().unwrap();
        let out = home.path().join("image.cpio");
        let guest_init = GuestInit {
            binary: &init,
            guest_path: vmc_protocol::INIT_PATH,
        };
        // build_image_archive refuses an init that is not a static x86-64 executable.
        initramfs::build_image_archive(rootfs.path(), guest_init, &out).unwrap();
    }
}
