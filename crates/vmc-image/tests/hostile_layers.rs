//! Layers that try to write outside the rootfs, lie about their digests or are cut short:
//! each is refused with a clear error, nothing lands outside, and the store stays usable.

mod common;

use common::{gzip, layer, list_dir, oci_layout, plain_layers, sha256, Entry::*};
use std::fs;
use std::path::PathBuf;
use vmc_image::{ImageError, Store};

/// A store in `tmp/home` and a directory `tmp/outside` (holding `secret`) that no layer may touch.
struct Setup {
    tmp: tempfile::TempDir,
    store: Store,
}

impl Setup {
    fn new() -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("outside")).unwrap();
        fs::write(tmp.path().join("outside/secret"), b"untouched").unwrap();
        let store = Store::open(&tmp.path().join("home")).unwrap();
        Setup { tmp, store }
    }

    fn outside(&self) -> PathBuf {
        self.tmp.path().join("outside")
    }

    /// Imports an image made of `layers` and tries to unpack it.
    fn unpack(&self, layers: Vec<Vec<u8>>) -> vmc_image::Result<PathBuf> {
        self.unpack_stored(plain_layers(layers))
    }

    fn unpack_stored(&self, layers: Vec<(Vec<u8>, String)>) -> vmc_image::Result<PathBuf> {
        let src = self
            .tmp
            .path()
            .join(format!("src-{}", list_dir(self.tmp.path()).len()));
        oci_layout(&src, "hostile", &layers);
        self.store.import(&src, Some("hostile")).unwrap();
        let image = self.store.resolve("hostile").unwrap();
        self.store.rootfs(&image)
    }

    /// Nothing outside changed, no rootfs cache or half-made directory, no temp files, and
    /// the store still lists the image.
    fn assert_clean(&self) {
        assert_eq!(
            list_dir(&self.outside()),
            vec!["secret".to_string()],
            "something was written outside"
        );
        assert_eq!(
            fs::read(self.outside().join("secret")).unwrap(),
            b"untouched"
        );
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            fs::metadata(self.outside().join("secret")).unwrap().nlink(),
            1,
            "outside file was hard-linked"
        );
        let home = self.store.home();
        assert!(
            list_dir(&home.join("rootfs")).is_empty(),
            "rootfs dir left: {:?}",
            list_dir(&home.join("rootfs"))
        );
        assert!(
            list_dir(&home.join("tmp")).is_empty(),
            "temp files left: {:?}",
            list_dir(&home.join("tmp"))
        );
        assert!(self
            .store
            .list()
            .unwrap()
            .iter()
            .any(|s| s.names == ["hostile:latest"]));
    }
}

fn assert_unsafe(result: vmc_image::Result<PathBuf>, needle: &str) {
    match result {
        Err(err @ ImageError::UnsafeEntry { .. }) => {
            let message = err.to_string();
            assert!(
                message.contains(needle),
                "message {message:?} lacks {needle:?}"
            );
        }
        other => panic!("expected UnsafeEntry ({needle}), got {other:?}"),
    }
}

#[test]
fn dot_dot_path_is_refused() {
    let s = Setup::new();
    assert_unsafe(
        s.unpack(vec![layer(&[
            File("ok", b"1"),
            File("../../../outside/pwned", b"x"),
        ])]),
        "contains '..'",
    );
    s.assert_clean();
}

#[test]
fn absolute_entry_path_lands_inside_the_rootfs() {
    let s = Setup::new();
    let target = format!("{}/pwned", s.outside().display());
    let root = s.unpack(vec![layer(&[File(&target, b"x")])]).unwrap();
    assert_eq!(
        fs::read(root.join(target.trim_start_matches('/'))).unwrap(),
        b"x"
    );
    assert_eq!(list_dir(&s.outside()), vec!["secret".to_string()]);
}

#[test]
fn absolute_symlink_escape_is_refused() {
    let s = Setup::new();
    let outside = s.outside().display().to_string();
    let result = s.unpack(vec![layer(&[
        Symlink("evil", &outside),
        File("evil/pwned", b"x"),
    ])]);
    assert_unsafe(result, "symlink");
    s.assert_clean();
}

#[test]
fn relative_symlink_escape_in_a_later_layer_is_refused() {
    let s = Setup::new();
    let result = s.unpack(vec![
        layer(&[Symlink("up", "../../../../../../../../../..")]),
        layer(&[File("up/tmp/pwned", b"x")]),
    ]);
    assert_unsafe(result, "outside the rootfs");
    s.assert_clean();
}

#[test]
fn hard_links_out_of_the_rootfs_are_refused() {
    let s = Setup::new();
    assert_unsafe(
        s.unpack(vec![layer(&[HardLink("link", "../../../outside/secret")])]),
        "hard link",
    );
    s.assert_clean();
    let s = Setup::new();
    let secret = format!("{}/secret", s.outside().display());
    assert_unsafe(
        s.unpack(vec![layer(&[HardLink("link", &secret)])]),
        "hard link",
    );
    s.assert_clean();
    // A hard link through a symlinked parent that points outside.
    let s = Setup::new();
    let outside = s.outside().display().to_string();
    assert_unsafe(
        s.unpack(vec![layer(&[
            Symlink("o", &outside),
            HardLink("link", "o/secret"),
        ])]),
        "hard link",
    );
    s.assert_clean();
}

#[test]
fn whiteout_of_dot_dot_is_refused() {
    let s = Setup::new();
    assert_unsafe(
        s.unpack(vec![layer(&[Dir("sub"), File("sub/.wh...", b"")])]),
        "whiteout",
    );
    s.assert_clean();
}

#[test]
fn whiteout_through_escaping_symlink_deletes_nothing_outside() {
    let s = Setup::new();
    let outside = s.outside().display().to_string();
    let root = s
        .unpack(vec![
            layer(&[Symlink("o", &outside)]),
            layer(&[File("o/.wh.secret", b"")]),
        ])
        .unwrap();
    assert!(root
        .join("o")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read(s.outside().join("secret")).unwrap(), b"untouched");
}

#[test]
fn blob_digest_mismatch_in_source_is_refused_at_import() {
    let s = Setup::new();
    let src = s.tmp.path().join("src");
    let good = layer(&[File("f", b"good")]);
    oci_layout(&src, "hostile", &plain_layers(vec![good.clone()]));
    let evil = layer(&[File("f", b"evil")]);
    fs::write(src.join("blobs/sha256").join(&sha256(&good)[7..]), &evil).unwrap();
    let err = s.store.import(&src, Some("hostile")).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("digest mismatch"));
    assert!(s.store.list().unwrap().is_empty());
    assert!(list_dir(&s.store.home().join("tmp")).is_empty());
    assert!(!s
        .store
        .layout_dir()
        .join("blobs/sha256")
        .join(&sha256(&good)[7..])
        .exists());
}

#[test]
fn blob_corrupted_in_the_store_is_refused_at_unpack() {
    let s = Setup::new();
    let src = s.tmp.path().join("src");
    let good = layer(&[File("f", b"good")]);
    oci_layout(&src, "hostile", &plain_layers(vec![good.clone()]));
    s.store.import(&src, None).unwrap();
    let blob = s
        .store
        .layout_dir()
        .join("blobs/sha256")
        .join(&sha256(&good)[7..]);
    fs::write(&blob, layer(&[File("f", b"evil")])).unwrap();
    let image = s.store.resolve("hostile").unwrap();
    let err = s.store.rootfs(&image).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err:?}");
    s.assert_clean();
}

#[test]
fn truncated_tar_and_gzip_are_refused() {
    let big = vec![7u8; 100_000];
    let full = layer(&[File("a", b"first"), File("big", &big)]);
    let cut = full[..full.len() / 2].to_vec();
    let s = Setup::new();
    let err = s.unpack(vec![cut.clone()]).unwrap_err();
    assert!(matches!(err, ImageError::CorruptLayer { .. }), "{err:?}");
    assert!(err.to_string().contains("corrupt or truncated"));
    s.assert_clean();

    let s = Setup::new();
    let gz = gzip(&full);
    let cut_gz = gz[..gz.len() - 20].to_vec();
    let err = s.unpack_stored(vec![(cut_gz, sha256(&full))]).unwrap_err();
    assert!(matches!(err, ImageError::CorruptLayer { .. }), "{err:?}");
    s.assert_clean();
}

#[test]
fn diff_id_mismatch_is_refused() {
    let s = Setup::new();
    let real = layer(&[File("f", b"real")]);
    let claimed = sha256(&layer(&[File("f", b"other")]));
    let err = s.unpack_stored(vec![(gzip(&real), claimed)]).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err:?}");
    s.assert_clean();
}
