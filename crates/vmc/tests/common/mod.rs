//! Helpers shared by the CLI end-to-end tests: running the `vmc` binary with a temporary
//! VMC_HOME, making the default images there, and telling whether container runs can be
//! tested on this host.

#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `vmc` binary under test.
pub const VMC: &str = env!("CARGO_BIN_EXE_vmc");

/// Runs vmc with `VMC_HOME=home`.
pub fn vmc(home: &Path, args: &[&str]) -> Output {
    Command::new(VMC)
        .args(args)
        .env("VMC_HOME", home)
        .output()
        .expect("running vmc")
}

/// Bytes as text (invalid UTF-8 replaced).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The repository's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Why container runs cannot be tested here, if they cannot.
pub fn container_skip_reason() -> Option<&'static str> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("container runs need root (CI runs as root)");
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("/bin/busybox is missing (apt-get install busybox-static)");
    }
    if !Path::new("/sys/fs/cgroup").exists() {
        return Some("no cgroup filesystem at /sys/fs/cgroup");
    }
    None
}

/// The busybox applets [`busybox_rootfs`] links.
pub const APPLETS: [&str; 13] = [
    "dd", "sh", "echo", "cat", "true", "false", "sleep", "hostname", "id", "env", "pwd", "ls",
    "touch",
];

/// Makes a minimal root filesystem at `root`: the host's static /bin/busybox with
/// [`APPLETS`], and an /etc/passwd and /etc/group with root and nobody.
pub fn busybox_rootfs(root: &Path) {
    for sub in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
}

/// The target directory in which make-default-images.sh builds the static workload: one of its
/// own (shared by the tests that call it) so it does not wait for the lock this test run holds.
fn nested_target() -> PathBuf {
    Path::new(VMC)
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("image-cli-nested")
}

/// The static vmc-workload binary that [`make_default_images`] built and put in its image.
pub fn workload_binary() -> PathBuf {
    nested_target().join("x86_64-unknown-linux-gnu/release/vmc-workload")
}

/// Runs scripts/make-default-images.sh for `home` (the busybox and vmc-workload images).
pub fn make_default_images(home: &Path) {
    let out = Command::new(workspace_root().join("scripts/make-default-images.sh"))
        .env("VMC", VMC)
        .env("VMC_HOME", home)
        .env("CARGO_TARGET_DIR", nested_target())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "make-default-images.sh failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}
