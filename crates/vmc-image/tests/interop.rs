//! Interoperability with the OCI tools Debian ships (umoci, skopeo) and with `docker save`
//! archives in both of their forms. Tests whose tool is missing print SKIPPED and return.

mod common;

use common::{
    have, layer, list_dir, oci_layout, put_blob, run, sample_tree, sha256, snapshot, Entry::*,
};
use std::fs;
use std::path::Path;
use std::process::Command;
use vmc_image::Store;

fn skip_without(tool: &str) -> bool {
    if have(tool) {
        return false;
    }
    eprintln!("SKIPPED: `{tool}` is not installed (apt-get install {tool})");
    true
}

#[test]
fn umoci_built_layout_imports_and_unpacks_to_the_same_tree() {
    if skip_without("umoci") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    sample_tree(&src);
    let oci = tmp.path().join("oci");
    let image = format!("{}:built", oci.display());
    run(Command::new("umoci").args(["init", "--layout"]).arg(&oci));
    run(Command::new("umoci").args(["new", "--image", &image]));
    run(Command::new("umoci")
        .args(["insert", "--image", &image])
        .arg(&src)
        .arg("/"));
    run(Command::new("umoci").args(["insert", "--image", &image, "--whiteout", "/gone"]));
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.cmd",
        "/usr/bin/tool",
        "--config.env",
        "X=1",
    ]));

    let store = Store::open(&tmp.path().join("home")).unwrap();
    let summary = store.import(&oci, None).unwrap();
    assert_eq!(summary.names, ["built:latest"]);
    let image = store.resolve("built").unwrap();
    assert_eq!(image.config().cmd, ["/usr/bin/tool"]);
    assert!(image.config().env.contains(&"X=1".to_string()));
    assert_eq!(image.layers().len(), 2);
    let rootfs = store.rootfs(&image).unwrap();
    fs::remove_file(src.join("gone")).unwrap();
    assert_eq!(snapshot(&rootfs), snapshot(&src));
    let hard = rootfs.join("etc/hostname.hard");
    assert_eq!(
        common::inode(&rootfs.join("etc/hostname")),
        common::inode(&hard)
    );
}

#[test]
fn skopeo_copy_of_a_test_written_layout_imports() {
    if skip_without("skopeo") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let base = layer(&[Dir("d"), File("d/one", b"1"), File("d/two", b"2")]);
    let top = layer(&[File("d/.wh.one", b""), File("d/three", b"3")]);
    let layers = vec![
        (common::gzip(&base), sha256(&base)),
        (common::gzip(&top), sha256(&top)),
    ];
    oci_layout(&a, "x", &layers);
    let b = tmp.path().join("b");
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:x", a.display()))
        .arg(format!("oci:{}:y", b.display())));

    let store = Store::open(&tmp.path().join("home")).unwrap();
    let summary = store.import(&b, None).unwrap();
    assert_eq!(summary.names, ["y:latest"]);
    let image = store.resolve("y:latest").unwrap();
    assert_eq!(image.config().working_dir, "/work");
    assert_eq!(image.config().user, "1000:1000");
    let rootfs = store.rootfs(&image).unwrap();
    let mut names = list_dir(&rootfs.join("d"));
    names.sort();
    assert_eq!(names, ["three", "two"]);
}

#[test]
fn skopeo_reads_our_store_and_umoci_unpacks_what_it_exports() {
    if skip_without("skopeo") || skip_without("umoci") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    sample_tree(&src);
    let store = Store::open(&tmp.path().join("home")).unwrap();
    let summary = store.import(&src, Some("busybox")).unwrap();

    let layout = store.layout_dir().display().to_string();
    let json = run(Command::new("skopeo")
        .args(["inspect"])
        .arg(format!("oci:{layout}:busybox")));
    let inspected: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(inspected["Digest"], format!("sha256:{}", summary.id));
    assert_eq!(inspected["Architecture"], "amd64");

    let out = tmp.path().join("exported");
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{layout}:busybox"))
        .arg(format!("oci:{}:z", out.display())));
    let bundle = tmp.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:z", out.display()))
        .arg(&bundle));
    assert_eq!(snapshot(&bundle.join("rootfs")), snapshot(&src));
}

#[test]
fn skopeo_docker_archive_imports_with_its_repo_tag() {
    if skip_without("skopeo") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let base = layer(&[Dir("app"), FileMode("app/run", b"#!/bin/sh\n", 0o755)]);
    oci_layout(&a, "x", &[(common::gzip(&base), sha256(&base))]);
    let archive = tmp.path().join("app.tar");
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:x", a.display()))
        .arg(format!(
            "docker-archive:{}:example/app:1.0",
            archive.display()
        )));

    let store = Store::open(&tmp.path().join("home")).unwrap();
    let summary = store.import(&archive, None).unwrap();
    assert_eq!(summary.names, ["example/app:1.0"]);
    let image = store.resolve("example/app:1.0").unwrap();
    assert_eq!(image.config().cmd, ["/bin/sh", "-c", "echo hi"]);
    let rootfs = store.rootfs(&image).unwrap();
    assert_eq!(fs::read(rootfs.join("app/run")).unwrap(), b"#!/bin/sh\n");
    assert!(
        list_dir(&store.home().join("tmp")).is_empty(),
        "staging left behind"
    );
}

/// Writes `files` (path, bytes) and `links` (path, target) into a tar at `out`, gzip'd if
/// the name ends in `.gz`.
fn write_archive(out: &Path, files: &[(String, Vec<u8>)], links: &[(&str, &str)]) {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, name, data.as_slice())
            .unwrap();
    }
    for (name, target) in links {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder.append_link(&mut header, name, target).unwrap();
    }
    let bytes = builder.into_inner().unwrap();
    let bytes = if out.extension().is_some_and(|e| e == "gz") {
        common::gzip(&bytes)
    } else {
        bytes
    };
    fs::write(out, bytes).unwrap();
}

#[test]
fn legacy_docker_save_archive_imports() {
    let tmp = tempfile::tempdir().unwrap();
    let l1 = layer(&[Dir("etc"), File("etc/os-release", b"ID=demo\n")]);
    let l2 = layer(&[File("etc/motd", b"hello\n")]);
    let config = common::config_json(&[sha256(&l1), sha256(&l2), sha256(&l1)], &["/bin/sh"]);
    let config_name = format!("{}.json", &sha256(&config)[7..]);
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": ["demo:v2"],
        "Layers": ["aaaa/layer.tar", "bbbb/layer.tar", "cccc/layer.tar"],
    }]);
    let archive = tmp.path().join("demo.tar.gz");
    write_archive(
        &archive,
        &[
            (
                "manifest.json".into(),
                serde_json::to_vec(&manifest).unwrap(),
            ),
            (config_name.clone(), config.clone()),
            ("aaaa/layer.tar".into(), l1.clone()),
            ("bbbb/layer.tar".into(), l2.clone()),
            ("repositories".into(), br#"{"demo":{"v2":"aaaa"}}"#.to_vec()),
        ],
        // docker save stores a repeated layer as a symlink to the first copy
        &[("cccc/layer.tar", "../aaaa/layer.tar")],
    );
    let store = Store::open(&tmp.path().join("home")).unwrap();
    let summary = store.import(&archive, None).unwrap();
    assert_eq!(summary.names, ["demo:v2"]);
    let image = store.resolve("demo:v2").unwrap();
    assert_eq!(image.config_digest(), sha256(&config));
    assert_eq!(image.layers().len(), 3);
    let rootfs = store.rootfs(&image).unwrap();
    assert_eq!(fs::read(rootfs.join("etc/motd")).unwrap(), b"hello\n");
    assert_eq!(
        fs::read(rootfs.join("etc/os-release")).unwrap(),
        b"ID=demo\n"
    );
    // --tag overrides the archive's name; the same manifest gets a second name.
    let again = store.import(&archive, Some("other:1")).unwrap();
    assert_eq!(again.id, summary.id);
    assert_eq!(
        store.resolve(&summary.id[..8]).unwrap().names(),
        ["demo:v2", "other:1"]
    );
}

#[test]
fn oci_form_docker_save_archive_imports() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("content");
    let l1 = layer(&[File("hello", b"from oci-in-tar\n")]);
    let manifest_digest = oci_layout(&dir, "1", &[(common::gzip(&l1), sha256(&l1))]);
    // Docker ≥ 25 names the image in an annotation and adds a legacy manifest.json.
    let index_path = dir.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&fs::read(&index_path).unwrap()).unwrap();
    index["manifests"][0]["annotations"]["io.containerd.image.name"] =
        "docker.io/library/ocidemo:1".into();
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let blob = put_blob(&dir, b"{}");
    let legacy = serde_json::json!([{ "Config": format!("blobs/sha256/{}", &blob[7..]), "RepoTags": ["ocidemo:1"], "Layers": [] }]);
    fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec(&legacy).unwrap(),
    )
    .unwrap();
    let archive = tmp.path().join("ocidemo.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .arg("-cf")
        .arg(&archive)
        .arg("."));

    let store = Store::open(&tmp.path().join("home")).unwrap();
    let summary = store.import(&archive, None).unwrap();
    assert_eq!(summary.names, ["ocidemo:1"]);
    assert_eq!(
        format!("sha256:{}", summary.id),
        manifest_digest,
        "the image ID is the manifest digest"
    );
    let rootfs = store.rootfs(&store.resolve("ocidemo:1").unwrap()).unwrap();
    assert_eq!(
        fs::read(rootfs.join("hello")).unwrap(),
        b"from oci-in-tar\n"
    );
}

#[test]
fn skopeo_oci_archive_tar_imports() {
    if skip_without("skopeo") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let base = layer(&[File("from-oci-archive", b"yes")]);
    let manifest = oci_layout(&a, "x", &[(common::gzip(&base), sha256(&base))]);
    let archive = tmp.path().join("image.oci.tar");
    run(Command::new("skopeo")
        .args(["copy", "--quiet"])
        .arg(format!("oci:{}:x", a.display()))
        .arg(format!("oci-archive:{}:named", archive.display())));
    let store = Store::open(&tmp.path().join("home")).unwrap();
    let summary = store.import(&archive, Some("arch:1")).unwrap();
    assert_eq!(
        format!("sha256:{}", summary.id),
        manifest,
        "skopeo copies the manifest unchanged"
    );
    let rootfs = store.rootfs(&store.resolve("arch:1").unwrap()).unwrap();
    assert_eq!(fs::read(rootfs.join("from-oci-archive")).unwrap(), b"yes");
}

#[test]
fn docker_archive_with_a_tampered_config_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let l1 = layer(&[File("f", b"1")]);
    let config = common::config_json(&[sha256(&l1)], &["/bin/sh"]);
    let config_name = format!("{}.json", &sha256(&config)[7..]);
    let manifest = serde_json::json!([{ "Config": config_name, "RepoTags": ["t:1"], "Layers": ["l/layer.tar"] }]);
    let archive = tmp.path().join("t.tar");
    let tampered = common::config_json(&[sha256(&l1)], &["/bin/evil"]);
    write_archive(
        &archive,
        &[
            (
                "manifest.json".into(),
                serde_json::to_vec(&manifest).unwrap(),
            ),
            (config_name, tampered),
            ("l/layer.tar".into(), l1),
        ],
        &[],
    );
    let store = Store::open(&tmp.path().join("home")).unwrap();
    let err = store.import(&archive, None).unwrap_err();
    assert!(
        matches!(err, vmc_image::ImageError::DigestMismatch { .. }),
        "{err:?}"
    );
    assert!(store.list().unwrap().is_empty());
    assert!(list_dir(&store.home().join("tmp")).is_empty());
}

#[test]
fn a_layout_keeps_its_own_names_and_dir_ref_picks_one_of_several() {
    if skip_without("skopeo") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let one = layer(&[File("which", b"one")]);
    oci_layout(&a, "x", &[(common::gzip(&one), sha256(&one))]);
    let b = tmp.path().join("b");
    let two = layer(&[File("which", b"two")]);
    oci_layout(&b, "x", &[(common::gzip(&two), sha256(&two))]);
    // What `skopeo copy … oci:DIR:1.0` writes: a bare version as the reference name.
    let myapp = tmp.path().join("myapp");
    for (src, reference) in [(&a, "1.0"), (&b, "registry.example/tool:2")] {
        run(Command::new("skopeo")
            .args(["copy", "--quiet"])
            .arg(format!("oci:{}:x", src.display()))
            .arg(format!("oci:{}:{reference}", myapp.display())));
    }
    let store = Store::open(&tmp.path().join("home")).unwrap();
    let err = store.import(&myapp, None).unwrap_err().to_string();
    assert!(
        err.contains("holds 2 images (1.0, registry.example/tool:2)")
            && err.contains("vmc import DIR:REF"),
        "{err}"
    );
    let pick = |reference: &str| {
        let options = vmc_image::ImportOptions {
            reference: Some(reference.into()),
            ..Default::default()
        };
        store.import_with(&myapp, &options)
    };
    assert_eq!(pick("1.0").unwrap().names, ["myapp:1.0"]);
    assert_eq!(
        pick("registry.example/tool:2").unwrap().names,
        ["registry.example/tool:2"]
    );
    let err = pick("3.0").unwrap_err().to_string();
    assert!(err.contains("no image named \"3.0\""), "{err}");
    for (name, content) in [("myapp:1.0", "one"), ("registry.example/tool:2", "two")] {
        let rootfs = store.rootfs(&store.resolve(name).unwrap()).unwrap();
        assert_eq!(fs::read_to_string(rootfs.join("which")).unwrap(), content);
    }
    // A second import of the same content under another name reports that name only.
    let again = store.import(&a, Some("again:1")).unwrap();
    assert_eq!(again.names, ["again:1"]);
    assert_eq!(
        store.resolve("again:1").unwrap().id(),
        store.resolve("myapp:1.0").unwrap().id()
    );
}

#[test]
fn size_is_the_unpacked_content_whatever_the_archive_and_compression() {
    let tmp = tempfile::tempdir().unwrap();
    let content = layer(&[
        Dir("d"),
        File("d/a", &[7u8; 1000]),
        File("d/b", &[9u8; 234]),
    ]);
    // The same layer as a docker-archive (uncompressed), and as OCI layouts, gzip and zstd.
    let config = common::config_json(&[sha256(&content)], &["/bin/sh"]);
    let config_name = format!("{}.json", &sha256(&config)[7..]);
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": ["plain:1"],
        "Layers": ["aaaa/layer.tar"],
    }]);
    let archive = tmp.path().join("plain.tar");
    write_archive(
        &archive,
        &[
            (
                "manifest.json".into(),
                serde_json::to_vec(&manifest).unwrap(),
            ),
            (config_name, config),
            ("aaaa/layer.tar".into(), content.clone()),
        ],
        &[],
    );
    let gzip = tmp.path().join("gzip");
    oci_layout(
        &gzip,
        "gzip:1",
        &[(common::gzip(&content), sha256(&content))],
    );
    let zstd = tmp.path().join("zstd");
    let zstd_blob = zstd::encode_all(content.as_slice(), 19).unwrap();
    oci_layout(&zstd, "zstd:1", &[(zstd_blob, sha256(&content))]);
    let store = Store::open(&tmp.path().join("home")).unwrap();
    let sizes: Vec<u64> = [archive, gzip, zstd]
        .iter()
        .map(|source| store.import(source, None).unwrap().size)
        .collect();
    assert_eq!(sizes, [1234, 1234, 1234]);
    let listed: Vec<u64> = store.list().unwrap().iter().map(|s| s.size).collect();
    assert_eq!(listed, [1234, 1234, 1234]);
    // The counts go with their blobs.
    for name in ["plain:1", "gzip:1", "zstd:1"] {
        store.remove(name, |_| None).unwrap();
    }
    let kept = fs::read_dir(tmp.path().join("home/layer-sizes"))
        .unwrap()
        .count();
    assert_eq!(kept, 0);
}

#[test]
fn load_takes_every_image_of_a_docker_archive_or_an_oci_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (
        layer(&[File("which", b"one")]),
        layer(&[File("which", b"two")]),
    );
    let mut files = Vec::new();
    let mut entries = Vec::new();
    for (content, tags) in [(&one, vec!["first:1", "also:1"]), (&two, vec![])] {
        let config = common::config_json(&[sha256(content)], &["/bin/sh"]);
        let config_name = format!("{}.json", &sha256(&config)[7..]);
        let layer_name = format!("{}/layer.tar", &sha256(content)[7..19]);
        entries.push(serde_json::json!({
            "Config": config_name, "RepoTags": tags, "Layers": [layer_name],
        }));
        files.push((config_name, config));
        files.push((layer_name, content.clone()));
    }
    files.push((
        "manifest.json".into(),
        serde_json::to_vec(&serde_json::Value::Array(entries)).unwrap(),
    ));
    let archive = tmp.path().join("two.tar");
    write_archive(&archive, &files, &[]);
    let store = Store::open(&tmp.path().join("home")).unwrap();
    let err = store.import(&archive, None).unwrap_err().to_string();
    assert!(
        err.contains("holds 2 images") && err.contains("vmc load"),
        "{err}"
    );
    let loaded = store.load_archive(&archive).unwrap();
    let names: Vec<Vec<String>> = loaded.iter().map(|s| s.names.clone()).collect();
    assert_eq!(
        names,
        [vec!["first:1".to_string(), "also:1".into()], vec![]]
    );
    let rootfs = store
        .rootfs(&store.resolve(&loaded[1].id).unwrap())
        .unwrap();
    assert_eq!(fs::read_to_string(rootfs.join("which")).unwrap(), "two");

    if skip_without("skopeo") {
        return;
    }
    // An OCI archive of a layout holding two images, as skopeo writes them.
    let layout = tmp.path().join("layout");
    for (content, reference) in [(&one, "one:1"), (&two, "two:2")] {
        let src = tmp.path().join(reference.replace(':', "-"));
        oci_layout(&src, "x", &[(common::gzip(content), sha256(content))]);
        run(Command::new("skopeo")
            .args(["copy", "--quiet"])
            .arg(format!("oci:{}:x", src.display()))
            .arg(format!("oci:{}:{reference}", layout.display())));
    }
    let oci_archive = tmp.path().join("layout.tar");
    let mut builder = tar::Builder::new(fs::File::create(&oci_archive).unwrap());
    builder.append_dir_all(".", &layout).unwrap();
    builder.finish().unwrap();
    let other = Store::open(&tmp.path().join("home2")).unwrap();
    let loaded = other.load_archive(&oci_archive).unwrap();
    let names: Vec<Vec<String>> = loaded.iter().map(|s| s.names.clone()).collect();
    assert_eq!(
        names,
        [vec!["one:1".to_string()], vec!["two:2".to_string()]]
    );
    assert_eq!(other.list().unwrap().len(), 2);
}
