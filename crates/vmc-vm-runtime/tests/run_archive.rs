//! The per-run archive, checked against GNU cpio (`cpio -i`), alone and behind an image's
//! archive as the kernel reads them.

mod common;

use common::run_config;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;
use std::process::Command;
use vmc_image::initramfs::{self, GuestInit};
use vmc_protocol::{RunConfig, INIT_PATH};
use vmc_vm_runtime::run_archive::{run_archive, write_run_archive};

/// A statically linked executable present on every machine that runs these tests, standing
/// in for the init.
const STATIC_BINARY: &str = "/bin/busybox";

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

/// A minimal busybox root filesystem, with a stray `/vmc` the init's entries replace.
fn busybox_rootfs(root: &Path) {
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("vmc")).unwrap();
    fs::copy(STATIC_BINARY, root.join("bin/busybox")).unwrap();
    symlink("busybox", root.join("bin/sh")).unwrap();
    fs::write(root.join("vmc/init"), "not the init").unwrap();
}

/// The settings of `echo hi`.
fn sample_config() -> RunConfig {
    run_config(&["/bin/echo", "hi"])
}

#[test]
fn concatenated_image_and_run_archives_extract_in_order() {
    let rootfs = tempfile::tempdir().unwrap();
    busybox_rootfs(rootfs.path());
    let work = tempfile::tempdir().unwrap();
    let image = work.path().join("image.cpio");
    let run = work.path().join("run.cpio");
    let init = GuestInit {
        binary: Path::new(STATIC_BINARY),
        guest_path: INIT_PATH,
    };
    initramfs::build_image_archive(rootfs.path(), init, &image).unwrap();
    write_run_archive(&sample_config(), &run).unwrap();
    assert_eq!(fs::read(&run).unwrap(), run_archive(&sample_config()));
    assert_eq!(list(&run), ["vmc", "vmc/run.json"]);

    let combined = work.path().join("combined.cpio");
    let mut bytes = fs::read(&image).unwrap();
    bytes.extend(fs::read(&run).unwrap());
    fs::write(&combined, bytes).unwrap();
    let out = work.path().join("out");
    fs::create_dir(&out).unwrap();
    // Two `cpio -i` in a row read the two archives from one stream, as the kernel does.
    let status = Command::new("sh")
        .args(["-c", "cpio -idm --quiet --no-absolute-filenames 2>&1 && cpio -idm --quiet --no-absolute-filenames 2>&1"])
        .current_dir(&out)
        .stdin(fs::File::open(&combined).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(out.join("bin/busybox").is_file());
    assert_eq!(
        fs::read(out.join("vmc/init")).unwrap(),
        fs::read(STATIC_BINARY).unwrap()
    );
    let settings = fs::read(out.join("vmc/run.json")).unwrap();
    assert_eq!(RunConfig::from_json(&settings).unwrap(), sample_config());
    assert_eq!(
        out.join("vmc/run.json").metadata().unwrap().mode() & 0o777,
        0o600
    );
}
