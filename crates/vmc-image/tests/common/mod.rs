//! Helpers shared by the integration tests: layer tarballs built byte by byte (so hostile
//! entries are possible), OCI layouts written by hand, and tree snapshots for comparisons.
#![allow(dead_code)] // each test binary uses a different subset

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// `sha256:<hex>` of bytes.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// One entry of a hand-made layer.
pub enum Entry<'a> {
    File(&'a str, &'a [u8]),
    FileMode(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    /// A file owned by (uid, gid).
    Owned(&'a str, u64, u64),
    /// A character device (major, minor).
    CharDev(&'a str, u32, u32),
    /// A FIFO, its device fields left all NUL as GNU tar writes them.
    Fifo(&'a str),
}

/// Builds an uncompressed tar from entries, writing names verbatim (even `..` or `/abs`).
pub fn layer(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let (name, kind, data, link, mode): (&str, tar::EntryType, &[u8], Option<&str>, u32) =
            match entry {
                Entry::File(n, d) => (n, tar::EntryType::Regular, d, None, 0o644),
                Entry::FileMode(n, d, m) => (n, tar::EntryType::Regular, d, None, *m),
                Entry::Dir(n) => (n, tar::EntryType::Directory, b"", None, 0o755),
                Entry::Symlink(n, t) => (n, tar::EntryType::Symlink, b"", Some(t), 0o777),
                Entry::HardLink(n, t) => (n, tar::EntryType::Link, b"", Some(t), 0o644),
                Entry::Owned(n, ..) => (n, tar::EntryType::Regular, b"owned", None, 0o640),
                Entry::CharDev(n, ..) => (n, tar::EntryType::Char, b"", None, 0o666),
                Entry::Fifo(n) => (n, tar::EntryType::Fifo, b"", None, 0o644),
            };
        let mut header = tar::Header::new_gnu();
        let raw = &mut header.as_old_mut().name;
        raw.fill(0);
        raw[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            let raw = &mut header.as_old_mut().linkname;
            raw.fill(0);
            raw[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(1_700_000_000);
        let (uid, gid) = match entry {
            Entry::Owned(_, uid, gid) => (*uid, *gid),
            _ => (0, 0),
        };
        header.set_uid(uid);
        header.set_gid(gid);
        if let Entry::CharDev(_, major, minor) = entry {
            header.set_device_major(*major).unwrap();
            header.set_device_minor(*minor).unwrap();
        }
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

/// gzip-compresses bytes.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Writes `bytes` as a blob of the layout at `dir`; returns its digest.
pub fn put_blob(dir: &Path, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    fs::write(blobs.join(&digest[7..]), bytes).unwrap();
    digest
}

/// The config JSON of an image with the given uncompressed layers.
pub fn config_json(diff_ids: &[String], cmd: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "created": "2024-01-02T03:04:05Z",
        "architecture": "amd64",
        "os": "linux",
        "config": { "Cmd": cmd, "Env": ["PATH=/bin", "A=1"], "WorkingDir": "/work", "User": "1000:1000" },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    }))
    .unwrap()
}

/// Writes an OCI layout at `dir` holding one image named `ref_name` with `layers` (stored as
/// given: plain tar or gzip; `diff_ids` are the digests of the uncompressed tars). Returns the
/// manifest digest.
pub fn oci_layout(dir: &Path, ref_name: &str, layers: &[(Vec<u8>, String)]) -> String {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let diff_ids: Vec<String> = layers.iter().map(|(_, d)| d.clone()).collect();
    let config = config_json(&diff_ids, &["/bin/sh", "-c", "echo hi"]);
    let config_digest = put_blob(dir, &config);
    let layer_descs: Vec<serde_json::Value> = layers
        .iter()
        .map(|(blob, _)| {
            let media_type = if blob.starts_with(&[0x1f, 0x8b]) {
                "application/vnd.oci.image.layer.v1.tar+gzip"
            } else if blob.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                "application/vnd.oci.image.layer.v1.tar+zstd"
            } else {
                "application/vnd.oci.image.layer.v1.tar"
            };
            serde_json::json!({
                "mediaType": media_type,
                "digest": put_blob(dir, blob),
                "size": blob.len(),
            })
        })
        .collect();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len() },
        "layers": layer_descs,
    }))
    .unwrap();
    let manifest_digest = put_blob(dir, &manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": ref_name },
        }],
    });
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    manifest_digest
}

/// Uncompressed layers paired with their diff IDs.
pub fn plain_layers(layers: Vec<Vec<u8>>) -> Vec<(Vec<u8>, String)> {
    layers
        .into_iter()
        .map(|l| {
            let d = sha256(&l);
            (l, d)
        })
        .collect()
}

/// What a path in a tree is, for comparisons.
#[derive(Debug, PartialEq, Eq)]
pub enum Node {
    File { content: Vec<u8>, mode: u32 },
    Dir { mode: u32 },
    Symlink(PathBuf),
    Other,
}

/// Snapshot of every path under `root` (relative) with type, content and permission bits.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Node>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        let rel = path.strip_prefix(root).unwrap().to_path_buf();
        let mode = meta.permissions().mode() & 0o7777;
        let node = if meta.file_type().is_symlink() {
            Node::Symlink(fs::read_link(&path).unwrap())
        } else if meta.is_dir() {
            walk(root, &path, out);
            Node::Dir { mode }
        } else if meta.is_file() {
            Node::File {
                content: fs::read(&path).unwrap(),
                mode,
            }
        } else {
            Node::Other
        };
        out.insert(rel, node);
    }
}

/// Inode number of a path (to check hard links).
pub fn inode(path: &Path) -> u64 {
    fs::symlink_metadata(path).unwrap().ino()
}

/// True if `program` runs (`program --version`).
pub fn have(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Runs a command, panicking with its output if it fails.
pub fn run(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Entries in a directory (empty if it does not exist).
pub fn list_dir(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|it| {
            it.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A small tree with files of several modes, nested dirs, relative and absolute symlinks and
/// a hard link.
pub fn sample_tree(root: &Path) {
    fs::create_dir_all(root.join("etc/conf.d")).unwrap();
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::write(root.join("etc/hostname"), b"sample\n").unwrap();
    fs::write(root.join("etc/conf.d/a.conf"), b"a = 1\n").unwrap();
    fs::write(root.join("usr/bin/tool"), b"#!/bin/sh\necho tool\n").unwrap();
    fs::set_permissions(root.join("usr/bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(root.join("etc/secret"), b"s").unwrap();
    fs::set_permissions(root.join("etc/secret"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(root.join("gone"), b"to be whited out").unwrap();
    std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", root.join("etc/name-link")).unwrap();
    fs::hard_link(root.join("etc/hostname"), root.join("etc/hostname.hard")).unwrap();
}
