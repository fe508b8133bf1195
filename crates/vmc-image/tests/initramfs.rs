//! The cpio writer and the initramfs builders, checked against GNU cpio (`cpio -i`).

mod common;

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use vmc_image::cpio::{CpioWriter, BLOCK_SIZE};
use vmc_image::initramfs::{self, GuestInit};

/// A statically linked executable present on every machine that runs these tests.
const STATIC_BINARY: &str = "/bin/busybox";

/// Where the tests put the init in the guest.
const INIT_GUEST_PATH: &str = "/vmc/init";

/// `binary` as the guest init at [`INIT_GUEST_PATH`].
fn guest_init(binary: &Path) -> GuestInit<'_> {
    GuestInit {
        binary,
        guest_path: INIT_GUEST_PATH,
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Lists an archive's names in order with `cpio -it`.
fn list(archive: &Path) -> Vec<String> {
    let output = Command::new("cpio")
        .args(["-it", "--quiet", "-F"])
        .arg(archive)
        .output()
        .expect("cpio is installed");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Extracts an archive read from stdin into `dir` (owners, modes, times and devices kept).
fn extract(archive_stdin: fs::File, dir: &Path) {
    let output = Command::new("cpio")
        .args(["-idm", "--quiet", "--no-absolute-filenames"])
        .current_dir(dir)
        .stdin(archive_stdin)
        .stderr(Stdio::piped())
        .output()
        .expect("cpio is installed");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn mknod(path: &Path, kind: libc::mode_t, major: u32, minor: u32) {
    let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: c_path is a valid NUL-terminated path; mknod has no other preconditions.
    let rc = unsafe { libc::mknod(c_path.as_ptr(), kind | 0o640, libc::makedev(major, minor)) };
    assert_eq!(
        rc,
        0,
        "mknod {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

fn set_mtime(path: &Path, seconds: i64) {
    let file = fs::File::open(path).unwrap();
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds as u64);
    file.set_modified(time).unwrap();
}

/// A tree with every kind of entry the writer handles.
fn every_kind_of_entry(root: &Path) {
    fs::create_dir_all(root.join("etc/sub")).unwrap();
    fs::write(root.join("etc/motd"), "hello\n").unwrap();
    fs::set_permissions(root.join("etc/motd"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::set_permissions(root.join("etc/sub"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::write(root.join("suid"), "#!/bin/sh\n").unwrap();
    // chown clears the setuid bit: change the owner first.
    std::os::unix::fs::chown(root.join("suid"), Some(1000), Some(100)).unwrap();
    fs::set_permissions(root.join("suid"), fs::Permissions::from_mode(0o4755)).unwrap();
    symlink("etc/motd", root.join("motd-link")).unwrap();
    fs::write(root.join("linked"), "shared data").unwrap();
    fs::hard_link(root.join("linked"), root.join("etc/sub/linked2")).unwrap();
    fs::hard_link(root.join("linked"), root.join("zz-linked3")).unwrap();
    fs::write(root.join("empty"), "").unwrap();
    mknod(&root.join("null"), libc::S_IFCHR, 1, 3);
    mknod(&root.join("loop9"), libc::S_IFBLK, 7, 9);
    mknod(&root.join("fifo"), libc::S_IFIFO, 0, 0);
    set_mtime(&root.join("etc/motd"), 1_600_000_000);
}

#[test]
fn round_trips_every_entry_kind_through_gnu_cpio() {
    if !is_root() {
        eprintln!("SKIPPED: creating device nodes and foreign owners needs root");
        return;
    }
    let source = tempfile::tempdir().unwrap();
    every_kind_of_entry(source.path());
    fs::set_permissions(source.path(), fs::Permissions::from_mode(0o751)).unwrap();
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("tree.cpio");
    let mut writer = CpioWriter::new(fs::File::create(&archive).unwrap());
    writer.add_tree(source.path(), &|_| false).unwrap();
    writer.finish().unwrap();
    assert_eq!(fs::metadata(&archive).unwrap().len() % BLOCK_SIZE, 0);

    let names = list(&archive);
    let expected = [
        ".",
        "empty",
        "etc",
        "etc/motd",
        "etc/sub",
        "etc/sub/linked2",
        "fifo",
        "linked",
        "loop9",
        "motd-link",
        "null",
        "suid",
        "zz-linked3",
    ];
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
    let position = |name: &str| names.iter().position(|n| n == name).unwrap();
    assert!(
        position("etc") < position("etc/sub") && position("etc/sub") < position("etc/sub/linked2")
    );

    // GNU cpio does not chmod an existing `.` (the kernel does): check the listing instead.
    let verbose = Command::new("cpio")
        .args(["-itv", "--quiet", "-F"])
        .arg(&archive)
        .output();
    let verbose = String::from_utf8(verbose.unwrap().stdout).unwrap();
    assert!(verbose.starts_with("drwxr-x--x "), "root mode: {verbose}");

    let out = work.path().join("out");
    fs::create_dir(&out).unwrap();
    extract(fs::File::open(&archive).unwrap(), &out);
    let meta = |name: &str| out.join(name).symlink_metadata().unwrap();
    assert_eq!(fs::read_to_string(out.join("etc/motd")).unwrap(), "hello\n");
    assert_eq!(meta("etc/motd").mode() & 0o7777, 0o640);
    assert_eq!(meta("etc/motd").mtime(), 1_600_000_000);
    assert_eq!(meta("etc/sub").mode() & 0o7777, 0o750);
    assert_eq!(meta("suid").mode() & 0o7777, 0o4755);
    assert_eq!((meta("suid").uid(), meta("suid").gid()), (1000, 100));
    assert_eq!(
        fs::read_link(out.join("motd-link")).unwrap(),
        Path::new("etc/motd")
    );
    assert_eq!(fs::read(out.join("empty")).unwrap(), b"");
    for name in ["linked", "etc/sub/linked2", "zz-linked3"] {
        assert_eq!(
            fs::read_to_string(out.join(name)).unwrap(),
            "shared data",
            "{name}"
        );
        assert_eq!(
            meta(name).ino(),
            meta("linked").ino(),
            "{name} is a hard link"
        );
        assert_eq!(meta(name).nlink(), 3);
    }
    assert_eq!(meta("null").mode() & libc::S_IFMT, libc::S_IFCHR);
    assert_eq!(meta("null").rdev(), libc::makedev(1, 3));
    assert_eq!(meta("loop9").mode() & libc::S_IFMT, libc::S_IFBLK);
    assert_eq!(meta("loop9").rdev(), libc::makedev(7, 9));
    assert_eq!(meta("fifo").mode() & libc::S_IFMT, libc::S_IFIFO);
}

/// A minimal busybox root filesystem, with a stray `/vmc` the init's entries replace.
fn busybox_rootfs(root: &Path) {
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("vmc")).unwrap();
    fs::copy(STATIC_BINARY, root.join("bin/busybox")).unwrap();
    for applet in ["sh", "echo", "cat"] {
        symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(root.join("vmc/init"), "not the init").unwrap();
}

#[test]
fn image_archive_holds_the_rootfs_the_init_and_the_console() {
    let rootfs = tempfile::tempdir().unwrap();
    busybox_rootfs(rootfs.path());
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("image.cpio");
    initramfs::build_image_archive(
        rootfs.path(),
        guest_init(Path::new(STATIC_BINARY)),
        &archive,
    )
    .unwrap();
    assert_eq!(
        list(&archive),
        [
            ".",
            "bin",
            "bin/busybox",
            "bin/cat",
            "bin/echo",
            "bin/sh",
            "etc",
            "etc/passwd",
            "dev",
            "dev/console",
            "vmc",
            "vmc/init",
        ]
    );
    if !is_root() {
        eprintln!("SKIPPED: extracting /dev/console needs root");
        return;
    }
    let out = work.path().join("out");
    fs::create_dir(&out).unwrap();
    extract(fs::File::open(&archive).unwrap(), &out);
    let console = out.join("dev/console").symlink_metadata().unwrap();
    assert_eq!(console.mode() & libc::S_IFMT, libc::S_IFCHR);
    assert_eq!(console.rdev(), libc::makedev(5, 1));
    let init = out.join("vmc/init").metadata().unwrap();
    assert_eq!(init.mode() & 0o7777, 0o755);
    assert_eq!(
        fs::read(out.join("vmc/init")).unwrap(),
        fs::read(STATIC_BINARY).unwrap()
    );
}

#[test]
fn a_dynamically_linked_init_is_refused() {
    let rootfs = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let dynamic = ["/bin/ls", "/usr/bin/ls"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let dynamic = dynamic.expect("ls exists");
    let err = initramfs::build_image_archive(
        rootfs.path(),
        guest_init(&dynamic),
        &work.path().join("a.cpio"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("it is dynamically linked") && err.contains("build-vmc-init.sh"),
        "{err}"
    );
    let text_file = work.path().join("init.sh");
    fs::write(&text_file, "#!/bin/sh\n").unwrap();
    let err = initramfs::build_image_archive(
        rootfs.path(),
        guest_init(&text_file),
        &work.path().join("b.cpio"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("not an x86-64 ELF executable"), "{err}");
}

#[test]
fn the_image_archive_is_cached_per_image_and_init() {
    let rootfs = tempfile::tempdir().unwrap();
    busybox_rootfs(rootfs.path());
    let home = tempfile::tempdir().unwrap();
    let image_id = "ab".repeat(32);
    let init = Path::new(STATIC_BINARY);
    let planned =
        initramfs::cached_image_archive_path(home.path(), &image_id, guest_init(init)).unwrap();
    assert!(!planned.exists(), "the path alone builds nothing");
    let first =
        initramfs::cached_image_archive(home.path(), &image_id, rootfs.path(), guest_init(init))
            .unwrap();
    assert_eq!(first, planned);
    let name = first.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with(&format!("{image_id}-")) && name.ends_with(".cpio"),
        "{name}"
    );
    assert_eq!(first.parent().unwrap(), home.path().join("initramfs"));
    let before = fs::metadata(&first).unwrap();

    let again =
        initramfs::cached_image_archive(home.path(), &image_id, rootfs.path(), guest_init(init))
            .unwrap();
    assert_eq!(again, first);
    let after = fs::metadata(&again).unwrap();
    assert_eq!(
        (after.ino(), after.mtime_nsec()),
        (before.ino(), before.mtime_nsec())
    );

    // Another init binary makes another archive for the same image.
    let other_init = home.path().join("other-init");
    let mut bytes = fs::read(init).unwrap();
    bytes.push(0);
    fs::write(&other_init, bytes).unwrap();
    let other = initramfs::cached_image_archive(
        home.path(),
        &image_id,
        rootfs.path(),
        guest_init(&other_init),
    )
    .unwrap();
    assert_ne!(other, first);
    assert_eq!(
        fs::read_dir(home.path().join("initramfs")).unwrap().count(),
        2,
        "no temp files left"
    );

    assert_eq!(
        initramfs::remove_cached_archives(home.path(), &image_id).unwrap(),
        2
    );
    assert!(!first.exists() && !other.exists());
    assert!(initramfs::cached_image_archive(
        home.path(),
        "../etc",
        rootfs.path(),
        guest_init(init)
    )
    .is_err());
}
