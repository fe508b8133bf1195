//! VM mode's disks: the image's root filesystem as an erofs disk (everything a container's
//! rootfs holds comes back out of it, read back through the host kernel), its cache (built
//! once, checked on use, removed with the image), and per-run scratch disks.

mod common;

use common::{list_dir, run, sample_tree};
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use vmc_image::disk::scratch::SCRATCH_DISK_BYTES;
use vmc_image::{ImageError, Store};
use vmc_runtime::signals::SignalCatcher;

/// What a disk build takes to stop on a signal (the tests send none).
fn signals() -> SignalCatcher {
    SignalCatcher::new().unwrap()
}

/// A fake image ID (the disk cache only needs 64 hex digits).
const IMAGE_ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("home")).unwrap();
    (tmp, store)
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether this host can mount an erofs image read-only through a loop device.
fn can_mount_erofs() -> Result<(), &'static str> {
    if !is_root() {
        return Err("mounting needs root");
    }
    let filesystems = fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !filesystems.lines().any(|l| l.trim_end().ends_with("erofs")) {
        return Err("the host kernel has no erofs");
    }
    if !Path::new("/dev/loop-control").exists() {
        return Err("no loop devices");
    }
    Ok(())
}

/// A root filesystem with what images carry and what hostile ones try: setuid/setgid files,
/// device nodes, a FIFO, hard links, a symlink to /etc/shadow, xattrs (a file capability
/// among them), names with a newline and with bytes that are not UTF-8, odd owners and times.
fn hostile_tree(root: &Path) {
    let sub = |p: &str| root.join(p);
    for dir in ["bin", "etc", "dev", "tmp", "deep/a/b/c/d"] {
        fs::create_dir_all(sub(dir)).unwrap();
    }
    fs::write(sub("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
    // chown clears setuid/setgid: owner first, then mode.
    let file = |path: &str, content: &[u8], owner: (u32, u32), mode: u32| {
        fs::write(sub(path), content).unwrap();
        if is_root() {
            std::os::unix::fs::lchown(sub(path), Some(owner.0), Some(owner.1)).unwrap();
        }
        fs::set_permissions(sub(path), fs::Permissions::from_mode(mode)).unwrap();
    };
    file("etc/shadow", b"root:*:19000::::::\n", (0, 42), 0o640);
    file("bin/su", b"#!/bin/sh\necho su\n", (0, 0), 0o4755);
    file("bin/wall", b"wall", (0, 5), 0o2755);
    file("bin/ping", b"ping", (0, 0), 0o755);
    file("bin/odd-owner", b"x", (123_456, 654_321), 0o600);
    file("empty", b"", (0, 0), 0o644);
    file(
        "bin/big",
        &(0..200_000u32)
            .flat_map(u32::to_le_bytes)
            .collect::<Vec<u8>>(),
        (0, 0),
        0o755,
    );
    fs::set_permissions(sub("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::hard_link(sub("bin/su"), sub("bin/su-again")).unwrap();
    fs::hard_link(sub("bin/su"), sub("deep/a/b/c/d/su-deep")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", sub("etc/shadow-link")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../etc/shadow", sub("deep/escape")).unwrap();
    std::os::unix::fs::symlink("dangling/target", sub("dangling")).unwrap();
    fs::write(sub("name\nwith newline"), "nl").unwrap();
    fs::write(root.join(OsStr::from_bytes(b"bytes-\xff\xfe")), "bytes").unwrap();
    nix::unistd::mkfifo(
        &sub("dev/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o620),
    )
    .unwrap();
    if is_root() {
        use nix::sys::stat::{makedev, mknod, Mode, SFlag};
        let mode = Mode::from_bits_truncate(0o660);
        mknod(&sub("dev/null"), SFlag::S_IFCHR, mode, makedev(1, 3)).unwrap();
        mknod(&sub("dev/sda"), SFlag::S_IFBLK, mode, makedev(8, 0)).unwrap();
    }
    xattr::set(sub("bin/wall"), "user.origin", b"hostile image").unwrap();
    if is_root() {
        // cap_net_raw+ep, as Debian's iputils-ping ships it (VFS_CAP_REVISION_2).
        let capability = [
            1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        xattr::set(sub("bin/ping"), "security.capability", &capability).unwrap();
        xattr::set(sub("etc"), "trusted.overlay.opaque", b"y").unwrap();
    }
    let old = nix::sys::time::TimeVal::new(1_000_000_000, 0);
    nix::sys::stat::lutimes(&sub("etc/shadow"), &old, &old).unwrap();
    nix::sys::stat::lutimes(&sub("etc/shadow-link"), &old, &old).unwrap();
}

/// Everything about one path that a guest could observe.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    /// st_mode: type and all permission bits (setuid, setgid, sticky included).
    mode: u32,
    uid: u32,
    gid: u32,
    /// Device number of a device node (0 otherwise).
    rdev: u64,
    /// File content or symlink target (empty for others).
    data: Vec<u8>,
    mtime: i64,
    /// Link count of non-directories (directory counts differ by design between filesystems).
    nlink: Option<u64>,
    xattrs: BTreeMap<OsString, Vec<u8>>,
}

/// Every path below `root` with what can be observed about it, plus the groups of paths
/// that share an inode (hard links).
fn observe(root: &Path) -> (BTreeMap<PathBuf, Observed>, Vec<Vec<PathBuf>>) {
    let mut seen = BTreeMap::new();
    let mut inodes: BTreeMap<u64, Vec<PathBuf>> = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let data = if meta.file_type().is_symlink() {
                fs::read_link(&path).unwrap().into_os_string().into_vec()
            } else if meta.is_file() {
                fs::read(&path).unwrap()
            } else {
                Vec::new()
            };
            if meta.is_dir() {
                pending.push(path.clone());
            } else {
                inodes.entry(meta.ino()).or_default().push(rel.clone());
            }
            let xattrs = xattr::list(&path)
                .unwrap()
                .map(|name| {
                    let value = xattr::get(&path, &name).unwrap().unwrap_or_default();
                    (name, value)
                })
                .collect();
            seen.insert(
                rel,
                Observed {
                    mode: meta.mode(),
                    uid: meta.uid(),
                    gid: meta.gid(),
                    rdev: meta.rdev(),
                    data,
                    mtime: meta.mtime(),
                    nlink: (!meta.is_dir()).then(|| meta.nlink()),
                    xattrs,
                },
            );
        }
    }
    let mut links: Vec<Vec<PathBuf>> = inodes
        .into_values()
        .filter(|group| group.len() > 1)
        .map(|mut group| {
            group.sort();
            group
        })
        .collect();
    links.sort();
    (seen, links)
}

/// An erofs image mounted read-only at a temporary directory, unmounted when dropped.
struct Mounted {
    dir: tempfile::TempDir,
}

impl Mounted {
    fn new(image: &Path) -> Mounted {
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("mount")
            .args(["-t", "erofs", "-o", "loop,ro"])
            .arg(image)
            .arg(dir.path()));
        Mounted { dir }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn the_disk_holds_the_rootfs_exactly() {
    let (tmp, store) = store();
    let rootfs = tmp.path().join("rootfs");
    fs::create_dir(&rootfs).unwrap();
    hostile_tree(&rootfs);
    let disk = store.rootfs_disk(IMAGE_ID, &rootfs, &signals()).unwrap();
    assert!(disk.built_in.is_some());
    assert_eq!(disk.bytes, fs::metadata(&disk.path).unwrap().len());
    run(Command::new("fsck.erofs").arg(&disk.path));
    if let Err(why) = can_mount_erofs() {
        println!("SKIPPED: reading the disk back through the kernel: {why}");
        return;
    }
    let mounted = Mounted::new(&disk.path);
    let (expected, expected_links) = observe(&rootfs);
    let (actual, actual_links) = observe(mounted.dir.path());
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        actual.keys().collect::<Vec<_>>(),
        "the same paths"
    );
    for (path, want) in &expected {
        assert_eq!(&actual[path], want, "{}", path.display());
    }
    assert_eq!(actual_links, expected_links, "hard links stay links");
    assert_eq!(actual_links[0].len(), 3, "{actual_links:?}");
    // The root directory itself: mode and owner as in the rootfs.
    let (root_want, root_got) = (
        fs::metadata(&rootfs).unwrap(),
        fs::metadata(mounted.dir.path()).unwrap(),
    );
    assert_eq!(
        (root_got.mode(), root_got.uid(), root_got.gid()),
        (root_want.mode(), root_want.uid(), root_want.gid())
    );
    let checked = [
        "bin/su",
        "bin/wall",
        "dev/fifo",
        "etc/shadow-link",
        "tmp",
        "name\nwith newline",
    ];
    for path in checked {
        assert!(
            expected.contains_key(Path::new(path)),
            "{path} is in the tree"
        );
    }
    if is_root() {
        assert_eq!(expected[Path::new("bin/su")].mode & 0o7777, 0o4755);
        assert!(!expected[Path::new("bin/ping")].xattrs.is_empty());
        assert_eq!(
            expected[Path::new("dev/sda")].rdev,
            nix::sys::stat::makedev(8, 0)
        );
    }
}

#[test]
fn the_disk_is_built_once_and_checked_on_every_use() {
    let (tmp, store) = store();
    let rootfs = tmp.path().join("rootfs");
    sample_tree(&rootfs);
    fs::write(rootfs.join("data"), vec![7u8; 64 << 10]).unwrap();
    let first = store.rootfs_disk(IMAGE_ID, &rootfs, &signals()).unwrap();
    assert_eq!(
        first.path,
        store
            .home()
            .join("disks")
            .join(format!("{IMAGE_ID}-v1.erofs"))
    );
    let again = store.rootfs_disk(IMAGE_ID, &rootfs, &signals()).unwrap();
    assert_eq!(again.built_in, None, "the second use is a cache hit");
    assert_eq!((&again.path, again.bytes), (&first.path, first.bytes));
    assert_eq!(first.bytes % 4096, 0);

    // Damage of each kind: a clear error naming the file and the fix, nothing else touched.
    let pristine = fs::read(&first.path).unwrap();
    // Each damage gets the pristine disk's bytes and writes the damaged disk.
    type Damage = fn(&[u8]) -> Vec<u8>;
    let damages: [(&str, Damage); 4] = [
        ("truncated", |disk| disk[..disk.len() - 4096].to_vec()),
        ("checksum", |disk| {
            let mut bytes = disk.to_vec();
            bytes[1024 + 16] ^= 0xff;
            bytes
        }),
        ("magic", |_| vec![0u8; 8192]),
        ("shorter", |_| Vec::new()),
    ];
    for (expected_reason, damage) in damages {
        fs::write(&first.path, damage(&pristine)).unwrap();
        let err = store
            .rootfs_disk(IMAGE_ID, &rootfs, &signals())
            .unwrap_err();
        assert!(matches!(err, ImageError::CorruptDisk { .. }), "{err:?}");
        let message = err.to_string();
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(message.contains(expected_reason), "{message}");
        assert!(
            message.contains(&format!("rm {}", first.path.display())),
            "{message}"
        );
        assert!(list_dir(&store.home().join("tmp")).is_empty());
        assert_eq!(list_dir(&store.home().join("disks")).len(), 1);
    }
    // The fix the message gives works.
    fs::remove_file(&first.path).unwrap();
    let rebuilt = store.rootfs_disk(IMAGE_ID, &rootfs, &signals()).unwrap();
    assert!(rebuilt.built_in.is_some());
}

#[test]
fn a_symlink_in_place_of_the_disk_is_refused() {
    let (tmp, store) = store();
    let rootfs = tmp.path().join("rootfs");
    sample_tree(&rootfs);
    let disk = store.rootfs_disk(IMAGE_ID, &rootfs, &signals()).unwrap();
    let elsewhere = tmp.path().join("elsewhere.erofs");
    fs::rename(&disk.path, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &disk.path).unwrap();
    let err = store
        .rootfs_disk(IMAGE_ID, &rootfs, &signals())
        .unwrap_err()
        .to_string();
    assert!(err.contains(&disk.path.display().to_string()), "{err}");
}

#[test]
fn concurrent_builds_of_one_disk_agree() {
    let (tmp, store) = store();
    let rootfs = tmp.path().join("rootfs");
    sample_tree(&rootfs);
    let disks: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| store.rootfs_disk(IMAGE_ID, &rootfs, &signals()).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(disks
        .windows(2)
        .all(|w| w[0].path == w[1].path && w[0].bytes == w[1].bytes));
    assert_eq!(list_dir(&store.home().join("disks")).len(), 1);
    assert!(
        list_dir(&store.home().join("tmp")).is_empty(),
        "no temporary file is left"
    );
}

#[test]
fn a_rootfs_mkfs_cannot_read_is_one_clear_error() {
    let (tmp, store) = store();
    let err = store
        .rootfs_disk(IMAGE_ID, &tmp.path().join("no-such-rootfs"), &signals())
        .unwrap_err();
    assert!(matches!(err, ImageError::ToolFailed { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.starts_with("mkfs.erofs failed on "), "{message}");
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(list_dir(&store.home().join("tmp")).is_empty());
    assert!(list_dir(&store.home().join("disks")).is_empty());
}

#[test]
fn disks_go_with_their_image() {
    let (tmp, store) = store();
    let tree = |marker: &str| {
        let dir = tmp.path().join(format!("tree-{marker}"));
        sample_tree(&dir);
        fs::write(dir.join("marker"), marker).unwrap();
        dir
    };
    let removed = store.import(&tree("removed"), Some("removed")).unwrap().id;
    let pruned = store.import(&tree("pruned"), Some("pruned")).unwrap().id;
    let kept = store.import(&tree("kept"), Some("kept")).unwrap().id;
    let mut disks = BTreeMap::new();
    for name in ["removed", "pruned", "kept"] {
        let image = store.resolve(name).unwrap();
        let rootfs = store.rootfs(&image).unwrap();
        disks.insert(
            name,
            store
                .rootfs_disk(image.id(), &rootfs, &signals())
                .unwrap()
                .path,
        );
    }
    store.remove("removed", |_| None).unwrap();
    assert!(!disks["removed"].exists(), "vmc rmi deletes the disk");
    assert!(disks["pruned"].exists() && disks["kept"].exists());
    // Retagging leaves the old image dangling: prune deletes it and its disk.
    store.import(&tree("pruned-2"), Some("pruned")).unwrap();
    let report = store.prune(|_| None).unwrap();
    assert_eq!(report.images, [format!("sha256:{pruned}")]);
    assert_eq!(report.disks, 1);
    assert!(!disks["pruned"].exists());
    assert!(disks["kept"].exists());
    assert_ne!(removed, kept);
}

#[test]
fn scratch_disks_are_sparse_ext4_and_vanish_when_dropped() {
    let (tmp, store) = store();
    let path = tmp.path().join("run-scratch.ext4");
    let started = std::time::Instant::now();
    let first = store.scratch_disk(&path, &signals()).unwrap();
    let first_time = started.elapsed();
    let meta = fs::metadata(first.path()).unwrap();
    assert_eq!(meta.len(), SCRATCH_DISK_BYTES);
    assert!(
        meta.blocks() * 512 < 32 << 20,
        "{} bytes allocated",
        meta.blocks() * 512
    );
    assert_eq!(meta.mode() & 0o777, 0o600);
    let dumped = run(Command::new("dumpe2fs").arg("-h").arg(first.path()));
    assert!(
        dumped.contains("Filesystem volume name:   vmc-scratch"),
        "{dumped}"
    );
    assert!(!dumped.contains("has_journal"), "{dumped}");
    assert!(
        store.scratch_disk(&path, &signals()).is_err(),
        "an existing file is not overwritten"
    );
    drop(first);
    assert!(!path.exists(), "dropping the disk deletes it");

    let started = std::time::Instant::now();
    let second = store.scratch_disk(&path, &signals()).unwrap();
    println!(
        "scratch disk: first {:.1} ms (template formatted), then {:.1} ms (sparse copy)",
        first_time.as_secs_f64() * 1000.0,
        started.elapsed().as_secs_f64() * 1000.0
    );
    run(Command::new("e2fsck").args(["-n", "-f"]).arg(second.path()));
    drop(second);

    // A damaged template is formatted again, not used.
    let template = store.home().join("cache/scratch-disk-8g-v1.ext4");
    fs::write(&template, b"damaged").unwrap();
    let third = store.scratch_disk(&path, &signals()).unwrap();
    assert_eq!(fs::metadata(&template).unwrap().len(), SCRATCH_DISK_BYTES);
    run(Command::new("e2fsck").args(["-n", "-f"]).arg(third.path()));
    drop(third);
    assert!(list_dir(&store.home().join("tmp")).is_empty());
}
