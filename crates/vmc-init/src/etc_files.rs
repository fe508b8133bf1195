//! The workload's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, written as the host
//! built them (the content a container gets), replacing the image's.

use crate::error::InitError;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use vmc_protocol::EtcFile;

/// Writes each file into `etc` (the root's `/etc`, created when the image has none). An
/// image's file or symlink of that name is replaced by a regular file, so nothing is written
/// through a link; a directory of that name is an error.
pub fn write_etc_files(etc: &Path, files: &[EtcFile]) -> Result<(), InitError> {
    if files.is_empty() {
        return Ok(());
    }
    let fail = |action: &'static str, path: &Path| {
        let path = path.display().to_string();
        move |source| InitError::Fs {
            action,
            path,
            source,
        }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .create(etc)
        .map_err(fail("creating", etc))?;
    for file in files {
        let path = etc.join(&file.name);
        if !file.has_plain_name() {
            return Err(fail("writing", &path)(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a plain file name (vmc and vmc-init must come from the same build)",
            )));
        }
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {
                return Err(fail("replacing", &path)(std::io::Error::new(
                    std::io::ErrorKind::IsADirectory,
                    "the image has a directory there",
                )))
            }
            Ok(_) => std::fs::remove_file(&path).map_err(fail("removing", &path))?,
            Err(_) => {}
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .and_then(|mut out| out.write_all(file.content.as_bytes()))
            .map_err(fail("writing", &path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, content: &str) -> EtcFile {
        EtcFile {
            name: name.into(),
            content: content.into(),
        }
    }

    #[test]
    fn replaces_files_and_links_without_following_them() {
        let root = tempfile::tempdir().unwrap();
        let outside = root.path().join("outside");
        std::fs::write(&outside, "keep\n").unwrap();
        let etc = root.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        std::fs::write(etc.join("hosts"), "old\n").unwrap();
        std::os::unix::fs::symlink(&outside, etc.join("resolv.conf")).unwrap();
        let files = [
            file("hosts", "127.0.0.1\tlocalhost\n"),
            file("resolv.conf", "nameserver 8.8.8.8\n"),
            file("hostname", "box\n"),
        ];
        write_etc_files(&etc, &files).unwrap();
        for f in &files {
            assert_eq!(
                std::fs::read_to_string(etc.join(&f.name)).unwrap(),
                f.content
            );
        }
        assert!(!std::fs::symlink_metadata(etc.join("resolv.conf"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep\n");
    }

    #[test]
    fn creates_etc_and_refuses_directories_and_odd_names() {
        let root = tempfile::tempdir().unwrap();
        let etc = root.path().join("etc");
        write_etc_files(&etc, &[file("hostname", "box\n")]).unwrap();
        assert_eq!(
            std::fs::read_to_string(etc.join("hostname")).unwrap(),
            "box\n"
        );
        std::fs::create_dir(etc.join("hosts")).unwrap();
        let err = write_etc_files(&etc, &[file("hosts", "x")]).unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");
        assert!(write_etc_files(&etc, &[file("../x", "x")]).is_err());
        assert!(!root.path().join("x").exists());
    }
}
