//! Layer application: ordering, whiteouts, opaque directories, links.

mod common;

use common::{inode, layer, sha256, snapshot, Entry::*, Node};
use std::fs;
use std::path::Path;
use vmc_image::unpack::{unpack_layers, LayerBlob};

/// Writes each layer as a blob file in `dir` and unpacks them all into `dir/root`.
fn apply(dir: &Path, layers: &[Vec<u8>]) -> vmc_image::Result<std::path::PathBuf> {
    let root = dir.join("root");
    fs::create_dir_all(&root).unwrap();
    let blobs: Vec<LayerBlob> = layers
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let path = dir.join(format!("layer{i}"));
            fs::write(&path, bytes).unwrap();
            LayerBlob {
                path,
                digest: sha256(bytes),
                diff_id: Some(sha256(bytes)),
            }
        })
        .collect();
    unpack_layers(&root, &blobs, false).map(|()| root)
}

#[test]
fn file_replaced_by_dir_and_back() {
    let tmp = tempfile::tempdir().unwrap();
    let root = apply(
        tmp.path(),
        &[
            layer(&[File("a", b"file one")]),
            layer(&[Dir("a"), File("a/inner", b"x")]),
            layer(&[File("a", b"file again")]),
        ],
    )
    .unwrap();
    assert_eq!(fs::read(root.join("a")).unwrap(), b"file again");
    let tmp = tempfile::tempdir().unwrap();
    let root = apply(
        tmp.path(),
        &[
            layer(&[Dir("d"), File("d/old", b"o")]),
            layer(&[File("d", b"now a file")]),
        ],
    )
    .unwrap();
    assert!(root.join("d").is_file());
}

#[test]
fn whiteout_removes_lower_file_and_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let root = apply(
        tmp.path(),
        &[
            layer(&[
                File("keep", b"k"),
                File("gone", b"g"),
                Dir("dir"),
                File("dir/f", b"f"),
            ]),
            layer(&[File(".wh.gone", b""), File(".wh.dir", b"")]),
        ],
    )
    .unwrap();
    let names: Vec<_> = snapshot(&root).into_keys().collect();
    assert_eq!(names, vec![Path::new("keep").to_path_buf()]);
}

#[test]
fn whiteout_of_file_added_in_same_layer_is_not_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let root = apply(
        tmp.path(),
        &[
            layer(&[File("lower", b"l")]),
            layer(&[
                File("new", b"n"),
                File(".wh.new", b""),
                File(".wh.lower", b""),
            ]),
        ],
    )
    .unwrap();
    assert_eq!(fs::read(root.join("new")).unwrap(), b"n");
    assert!(!root.join("lower").exists());
}

#[test]
fn opaque_dir_hides_lower_content_but_keeps_this_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let root = apply(
        tmp.path(),
        &[
            layer(&[
                Dir("etc"),
                File("etc/old", b"o"),
                Dir("etc/sub"),
                File("etc/sub/old", b"o"),
                File("top", b"t"),
            ]),
            // The new file comes before the marker: order inside the layer must not matter.
            layer(&[
                Dir("etc"),
                File("etc/new", b"n"),
                Dir("etc/sub"),
                File("etc/.wh..wh..opq", b""),
                File("etc/sub/also", b"a"),
            ]),
        ],
    )
    .unwrap();
    let names: Vec<String> = snapshot(&root)
        .into_keys()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(names, ["etc", "etc/new", "etc/sub", "etc/sub/also", "top"]);
}

#[test]
fn later_layers_win_and_links_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let root = apply(
        tmp.path(),
        &[
            layer(&[
                Dir("usr"),
                Dir("usr/lib"),
                FileMode("usr/lib/tool", b"v1", 0o755),
                Symlink("lib", "usr/lib"),
            ]),
            layer(&[
                File("lib/extra", b"through the symlink"),
                FileMode("usr/lib/tool", b"v2", 0o700),
                HardLink("tool-link", "usr/lib/tool"),
            ]),
        ],
    )
    .unwrap();
    let tree = snapshot(&root);
    assert_eq!(
        tree[Path::new("usr/lib/tool")],
        Node::File {
            content: b"v2".to_vec(),
            mode: 0o700
        }
    );
    assert_eq!(tree[Path::new("lib")], Node::Symlink("usr/lib".into()));
    assert_eq!(
        fs::read(root.join("usr/lib/extra")).unwrap(),
        b"through the symlink"
    );
    assert_eq!(
        inode(&root.join("tool-link")),
        inode(&root.join("usr/lib/tool"))
    );
}

#[test]
fn absolute_symlink_parent_resolves_inside_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = apply(
        tmp.path(),
        &[
            layer(&[Dir("data"), Symlink("var", "/data")]),
            layer(&[File("var/log", b"inside")]),
        ],
    )
    .unwrap();
    assert_eq!(fs::read(root.join("data/log")).unwrap(), b"inside");
}

#[test]
fn mtimes_and_modes_are_applied() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let root = apply(
        tmp.path(),
        &[layer(&[Dir("d"), FileMode("d/x", b"x", 0o4755)])],
    )
    .unwrap();
    let meta = fs::metadata(root.join("d/x")).unwrap();
    assert_eq!(meta.mtime(), 1_700_000_000);
    assert_eq!(meta.mode() & 0o7777, 0o4755);
    assert_eq!(fs::metadata(root.join("d")).unwrap().mtime(), 1_700_000_000);
}

#[test]
fn stream_ending_right_after_the_last_data_is_accepted() {
    // umoci 0.4.7 writes layers like this: no padding after the last file, no end blocks.
    let full = layer(&[File("a", b"first"), File("b", b"last")]);
    let cut = full[..512 * 3 + 4].to_vec();
    let tmp = tempfile::tempdir().unwrap();
    let root = apply(tmp.path(), &[cut]).unwrap();
    assert_eq!(fs::read(root.join("b")).unwrap(), b"last");
    // Cut inside the last file's data: refused.
    let short = full[..512 * 3 + 2].to_vec();
    let tmp = tempfile::tempdir().unwrap();
    let err = apply(tmp.path(), &[short]).unwrap_err();
    assert!(
        err.to_string().contains("ends after 2 of its 4 bytes"),
        "{err}"
    );
}

#[test]
fn fifos_without_device_numbers_are_unpacked() {
    use std::os::unix::fs::FileTypeExt;
    let tmp = tempfile::tempdir().unwrap();
    let root = apply(tmp.path(), &[layer(&[Dir("etc"), Fifo("etc/fifo")])]).unwrap();
    let fifo = fs::symlink_metadata(root.join("etc/fifo")).unwrap();
    assert!(fifo.file_type().is_fifo());
}

#[test]
fn ownership_and_device_nodes_as_root() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: ownership and device nodes are only applied when running as root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = apply(
        tmp.path(),
        &[layer(&[
            Owned("owned", 1234, 4321),
            Dir("dev"),
            CharDev("dev/null", 1, 3),
        ])],
    )
    .unwrap();
    let meta = fs::metadata(root.join("owned")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o777),
        (1234, 4321, 0o640)
    );
    let dev = fs::symlink_metadata(root.join("dev/null")).unwrap();
    assert!(dev.file_type().is_char_device());
    assert_eq!(dev.rdev(), nix::sys::stat::makedev(1, 3));
}
