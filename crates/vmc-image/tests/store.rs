//! Store behaviour: naming, resolving, Docker-like removal, pruning, rootfs caching, and the
//! on-disk layout staying a valid OCI layout.

mod common;

use common::{list_dir, run, sample_tree, snapshot};
use std::fs;
use std::process::Command;
use vmc_image::{Change, ImageError, ImportOptions, Store};

fn store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("home")).unwrap();
    (tmp, store)
}

/// Stands in for VM mode's cached initramfs archive of image `id` (named as
/// `initramfs::cached_image_archive` names it).
fn cached_archive(store: &Store, id: &str) -> std::path::PathBuf {
    let dir = store.home().join("initramfs");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{id}-0123456789abcdef.cpio"));
    fs::write(&path, b"070701").unwrap();
    path
}

/// A tiny rootfs directory whose content differs by `marker` (so image IDs differ).
fn rootfs_dir(tmp: &tempfile::TempDir, marker: &str) -> std::path::PathBuf {
    let dir = tmp.path().join(format!("tree-{marker}"));
    sample_tree(&dir);
    fs::write(dir.join("marker"), marker).unwrap();
    dir
}

#[test]
fn open_creates_an_oci_layout() {
    let (_tmp, store) = store();
    let layout = store.layout_dir();
    assert_eq!(
        fs::read_to_string(layout.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn rootfs_import_gets_default_config_and_changes() {
    let (tmp, store) = store();
    let src = rootfs_dir(&tmp, "a");
    let options = ImportOptions {
        tag: Some("app:v1".into()),
        changes: vec![
            Change::parse(r#"ENTRYPOINT ["/usr/bin/tool"]"#).unwrap(),
            Change::parse("ENV MODE=test").unwrap(),
            Change::parse("WORKDIR /etc").unwrap(),
            Change::parse("USER nobody").unwrap(),
        ],
        ..ImportOptions::default()
    };
    let summary = store.import_with(&src, &options).unwrap();
    assert_eq!(summary.names, ["app:v1"]);
    assert_eq!(summary.id.len(), 64);
    let image = store.resolve("app:v1").unwrap();
    let config = image.config();
    assert_eq!(config.entrypoint, ["/usr/bin/tool"]);
    assert_eq!(config.cmd, ["/bin/sh"]);
    assert!(config.env.iter().any(|e| e.starts_with("PATH=")));
    assert!(config.env.contains(&"MODE=test".to_string()));
    assert_eq!(
        (config.working_dir.as_str(), config.user.as_str()),
        ("/etc", "nobody")
    );
    assert_eq!(image.os(), "linux");
    let rootfs = store.rootfs(&image).unwrap();
    assert_eq!(snapshot(&rootfs), snapshot(&src));
}

#[test]
fn rootfs_tarballs_import_named_after_the_file() {
    let (tmp, store) = store();
    let src = rootfs_dir(&tmp, "t");
    for (file, flags) in [("My-Root.tar.gz", "-czf"), ("plain.tar", "-cf")] {
        let archive = tmp.path().join(file);
        run(Command::new("tar")
            .arg("-C")
            .arg(&src)
            .arg(flags)
            .arg(&archive)
            .arg("."));
        let summary = store.import(&archive, None).unwrap();
        let expected = if file == "plain.tar" {
            "plain:latest"
        } else {
            "my-root:latest"
        };
        assert_eq!(summary.names, [expected]);
        let rootfs = store.rootfs(&store.resolve(expected).unwrap()).unwrap();
        assert_eq!(snapshot(&rootfs), snapshot(&src));
    }
}

#[test]
fn resolve_by_name_id_prefix_and_sha256_prefix() {
    let (tmp, store) = store();
    let id = store
        .import(&rootfs_dir(&tmp, "r"), Some("one"))
        .unwrap()
        .id;
    for reference in [
        "one",
        "one:latest",
        &id,
        &id[..4],
        &id[..12],
        &format!("sha256:{}", &id[..10]),
    ] {
        assert_eq!(store.resolve(reference).unwrap().id(), id, "{reference}");
    }
    let err = store.resolve("two").unwrap_err();
    assert!(matches!(err, ImageError::NotFound(_)));
    assert_eq!(err.to_string(), "no such image: two (see `vmc images`)");
    assert!(
        matches!(store.resolve(&id[..3]), Err(ImageError::NotFound(_))),
        "3 hex digits are too few"
    );
    assert!(matches!(
        store.import(&tmp.path().join("missing"), None),
        Err(ImageError::UnsupportedSource { .. })
    ));
    assert!(matches!(
        store.import(&tmp.path().join("tree-r"), Some("Bad Name")),
        Err(ImageError::InvalidReference { .. })
    ));
}

#[test]
fn rmi_untags_and_deletes_with_the_last_name() {
    let (tmp, store) = store();
    let src = tmp.path().join("layout");
    let l = common::layer(&[common::Entry::File("f", b"1")]);
    common::oci_layout(&src, "x", &common::plain_layers(vec![l]));
    let id = store.import(&src, Some("first")).unwrap().id;
    assert_eq!(
        store.import(&src, Some("again:2")).unwrap().id,
        id,
        "same manifest, same ID"
    );
    assert_eq!(store.list().unwrap().len(), 1);
    let rootfs = store.rootfs(&store.resolve("first").unwrap()).unwrap();
    assert!(
        matches!(
            store.remove(&id[..12], |_| None),
            Err(ImageError::InvalidReference { .. })
        ),
        "removing by ID an image with two names must name them"
    );

    let report = store.remove("first", |_| None).unwrap();
    assert_eq!(
        (report.untagged, report.deleted),
        (vec!["first:latest".to_string()], None)
    );
    assert!(rootfs.is_dir(), "rootfs kept while a name remains");
    assert!(matches!(
        store.resolve("first"),
        Err(ImageError::NotFound(_))
    ));
    let archive = cached_archive(&store, &id);
    let other_archive = cached_archive(&store, &"e".repeat(64));
    let err = store
        .remove("again:2", |image_id| {
            (image_id == id).then(|| "run kept-busy".to_string())
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "image again:2 is in use by run kept-busy: wait for it to end (vmc ps), then remove the image"
    );
    assert!(store.resolve("again:2").is_ok() && rootfs.is_dir() && archive.exists());
    let report = store.remove("again:2", |_| None).unwrap();
    assert_eq!(report.deleted.as_deref(), Some(id.as_str()));
    assert!(!rootfs.exists(), "rootfs cache deleted with the image");
    assert!(
        !archive.exists(),
        "initramfs archive deleted with the image"
    );
    assert!(other_archive.exists(), "another image's archive kept");
    assert!(store.list().unwrap().is_empty());
    assert!(
        list_dir(&store.layout_dir().join("blobs/sha256")).is_empty(),
        "blobs left after the last rmi"
    );
    assert!(matches!(
        store.remove("again:2", |_| None),
        Err(ImageError::NotFound(_))
    ));
}

#[test]
fn retag_leaves_a_dangling_image_that_prune_removes() {
    let (tmp, store) = store();
    let old = store
        .import(&rootfs_dir(&tmp, "old"), Some("app"))
        .unwrap()
        .id;
    let old_rootfs = store.rootfs(&store.resolve("app").unwrap()).unwrap();
    let new = store
        .import(&rootfs_dir(&tmp, "new"), Some("app"))
        .unwrap()
        .id;
    assert_ne!(old, new);
    let list = store.list().unwrap();
    assert_eq!(list.len(), 2);
    assert!(
        list.iter().any(|s| s.id == old && s.names.is_empty()),
        "old image is untagged: {list:?}"
    );
    let kept = store
        .prune(|id| (id == old).then(|| "run x".to_string()))
        .unwrap();
    assert!(kept.images.is_empty(), "an untagged image in use is kept");
    assert!(old_rootfs.is_dir());
    // Leftovers of a crash: a temp file and a half-made rootfs.
    fs::write(store.home().join("tmp/blob-crashed"), b"partial").unwrap();
    fs::create_dir(store.home().join("rootfs/.tmp-crashed")).unwrap();

    let old_archive = cached_archive(&store, &old);
    let new_archive = cached_archive(&store, &new);

    let report = store.prune(|_| None).unwrap();
    assert_eq!(report.images, [format!("sha256:{old}")]);
    assert_eq!(report.initramfs_archives, 1);
    assert!(!old_archive.exists() && new_archive.exists());
    assert!(report.blobs >= 3 && report.bytes > 0, "{report:?}");
    assert_eq!(
        report.rootfs_dirs, 2,
        "old image's rootfs and the half-made one"
    );
    assert!(!old_rootfs.exists());
    assert!(list_dir(&store.home().join("tmp")).is_empty());
    let list = store.list().unwrap();
    assert_eq!((list.len(), list[0].id.as_str()), (1, new.as_str()));
    assert_eq!(
        store.prune(|_| None).unwrap().blobs,
        0,
        "second prune finds nothing"
    );
}

#[test]
fn rootfs_is_cached_and_never_half_made() {
    let (tmp, store) = store();
    store
        .import(&rootfs_dir(&tmp, "c"), Some("cached"))
        .unwrap();
    let image = store.resolve("cached").unwrap();
    let first = store.rootfs(&image).unwrap();
    assert_eq!(first, store.home().join("rootfs").join(image.id()));
    fs::write(first.join("added-after-unpack"), b"x").unwrap();
    let second = store.rootfs(&image).unwrap();
    assert_eq!(first, second);
    assert!(
        second.join("added-after-unpack").exists(),
        "second call unpacked again"
    );
    assert_eq!(
        list_dir(&store.home().join("rootfs")),
        [image.id().to_string()]
    );
}

#[test]
fn names_fall_back_to_the_file_name_else_untagged() {
    let (tmp, store) = store();
    let l = common::layer(&[common::Entry::File("f", b"1")]);
    let named = tmp.path().join("From-Dir");
    common::oci_layout(
        &named,
        "NOT A VALID NAME",
        &common::plain_layers(vec![l.clone()]),
    );
    assert_eq!(
        store.import(&named, None).unwrap().names,
        ["from-dir:latest"]
    );
    // Neither the source nor the file name gives a valid name: imported untagged (<none>).
    let nameless = tmp.path().join("___");
    common::oci_layout(
        &nameless,
        "NOT A VALID NAME",
        &common::plain_layers(vec![common::layer(&[])]),
    );
    let summary = store.import(&nameless, None).unwrap();
    assert!(summary.names.is_empty());
    assert!(store
        .list()
        .unwrap()
        .iter()
        .any(|s| s.id == summary.id && s.names.is_empty()));
    assert!(store.resolve(&summary.id[..6]).is_ok());
}

#[test]
fn zstd_layers_and_rootfs_tarballs_import() {
    let (tmp, store) = store();
    let base = common::layer(&[common::Entry::File("z", b"zstd layer")]);
    let src = tmp.path().join("zlayout");
    let blob = zstd::encode_all(base.as_slice(), 3).unwrap();
    common::oci_layout(&src, "z", &[(blob, common::sha256(&base))]);
    let image = store
        .resolve(&store.import(&src, None).unwrap().id)
        .unwrap();
    assert_eq!(
        image.layers()[0].media_type,
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    let rootfs = store.rootfs(&image).unwrap();
    assert_eq!(fs::read(rootfs.join("z")).unwrap(), b"zstd layer");

    let archive = tmp.path().join("root.tar.zst");
    fs::write(&archive, zstd::encode_all(base.as_slice(), 3).unwrap()).unwrap();
    let summary = store.import(&archive, None).unwrap();
    assert_eq!(summary.names, ["root:latest"]);
    let rootfs = store.rootfs(&store.resolve("root").unwrap()).unwrap();
    assert_eq!(fs::read(rootfs.join("z")).unwrap(), b"zstd layer");
}

#[test]
fn reopening_the_store_removes_what_a_crash_left() {
    let (tmp, store) = store();
    fs::write(store.home().join("tmp/blob-killed"), b"partial").unwrap();
    fs::create_dir_all(store.home().join("rootfs/.tmp-0123456789ab-x/etc")).unwrap();
    let store = Store::open(&tmp.path().join("home")).unwrap();
    assert!(list_dir(&store.home().join("tmp")).is_empty());
    assert!(list_dir(&store.home().join("rootfs")).is_empty());
}

#[test]
fn a_directory_with_device_nodes_fifos_and_sockets_imports() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: creating a device node needs root");
        return;
    }
    let (tmp, store) = store();
    let dir = tmp.path().join("tree");
    fs::create_dir_all(dir.join("dev")).unwrap();
    fs::write(dir.join("file"), b"kept").unwrap();
    let made = Command::new("mknod")
        .arg(dir.join("dev/null"))
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(made.success());
    assert!(Command::new("mkfifo")
        .arg(dir.join("fifo"))
        .status()
        .unwrap()
        .success());
    let _socket = std::os::unix::net::UnixListener::bind(dir.join("socket")).unwrap();
    let imported = store.import(&dir, Some("devices")).unwrap();
    let rootfs = store.rootfs(&store.resolve(&imported.id).unwrap()).unwrap();
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let null = fs::symlink_metadata(rootfs.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), libc::makedev(1, 3));
    assert!(fs::symlink_metadata(rootfs.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(fs::read(rootfs.join("file")).unwrap(), b"kept");
    // A tar archive cannot hold a socket: left out.
    assert!(fs::symlink_metadata(rootfs.join("socket")).is_err());
}
