//! The store is closed to other users: a host user other than its owner can read, list or
//! execute nothing under `$VMC_HOME` — in particular not a setuid-root file of an unpacked
//! image — and a store left world-readable by an older vmc is mended when vmc next opens it.
//! Needs root (to own the store, run a container and switch to uid 65534 with setpriv).

mod common;

use common::{text, vmc};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Runs `script` with `sh` as uid/gid 65534 without supplementary groups; stdin is `input`.
fn as_nobody(script: &str, input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running setpriv");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Every path below `dir` (not following symlinks).
fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        found.push(path.clone());
        if std::fs::symlink_metadata(&path).unwrap().is_dir() {
            walk(&path, found);
        }
    }
}

#[test]
fn other_users_reach_nothing_in_the_store() {
    // A container run unpacks the image into the store; setpriv needs root too.
    if let Some(reason) = common::container_skip_reason() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    // A world-traversable parent, so only the store's own modes can keep others out.
    let outer = tempfile::tempdir().unwrap();
    std::fs::set_permissions(outer.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = outer.path().join("home");
    // As an older vmc left it: world-readable.
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
    let src = outer.path().join("src");
    std::fs::create_dir_all(src.join("bin")).unwrap();
    std::fs::create_dir_all(src.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", src.join("bin/suid")).unwrap();
    std::fs::set_permissions(
        src.join("bin/suid"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    std::os::unix::fs::symlink("suid", src.join("bin/true")).unwrap();
    std::fs::copy("/bin/busybox", src.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", src.join("bin/cat")).unwrap();
    std::fs::write(src.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    let imported = vmc(&home, &["import", src.to_str().unwrap(), "--tag", "suid"]);
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    // A run unpacks the image's rootfs into the store.
    let ran = vmc(&home, &["run", "--rm", "suid", "/bin/true"]);
    assert!(ran.status.success(), "{}", text(&ran.stderr));
    let mode = std::fs::metadata(&home).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700, "the store's home is mended to 0700");
    // The image below the private home still serves a workload that is not root: overlayfs
    // checks the lower layer with the mounter's (vmc's) credentials.
    let ran = vmc(
        &home,
        &[
            "run",
            "--rm",
            "-u",
            "65534",
            "suid",
            "/bin/cat",
            "/etc/passwd",
        ],
    );
    assert_eq!(
        text(&ran.stdout),
        "root:x:0:0::/root:/bin/sh\n",
        "{}",
        text(&ran.stderr)
    );

    let mut paths = vec![home.clone()];
    walk(&home, &mut paths);
    let setuid: Vec<&PathBuf> = paths
        .iter()
        .filter(|p| p.ends_with("bin/suid") && p.starts_with(home.join("rootfs")))
        .collect();
    assert_eq!(setuid.len(), 1, "the unpacked rootfs holds the setuid file");
    let mode = std::fs::metadata(setuid[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o4000, 0o4000, "the image keeps its setuid bit");

    // The other user can reach the parent...
    let control = as_nobody(&format!("ls {}", outer.path().display()), "");
    assert!(
        text(&control.stdout).contains("home"),
        "{}",
        text(&control.stderr)
    );
    // ...but reads, lists and executes nothing in the store.
    let list: String = paths.iter().map(|p| format!("{}\n", p.display())).collect();
    let reached = as_nobody(
        r#"while IFS= read -r p; do
             if cat "$p" >/dev/null 2>&1 || ls "$p" >/dev/null 2>&1 || "$p" --help >/dev/null 2>&1; then
               echo "$p"
             fi
           done"#,
        &list,
    );
    assert!(reached.status.success(), "{}", text(&reached.stderr));
    assert_eq!(
        text(&reached.stdout),
        "",
        "reachable by uid 65534 ({} paths tried)",
        paths.len()
    );
    let exec = as_nobody(&format!("{} id -u", setuid[0].display()), "");
    assert!(!exec.status.success(), "{}", text(&exec.stdout));
    assert!(
        text(&exec.stderr).contains("Permission denied"),
        "{}",
        text(&exec.stderr)
    );
}

#[test]
fn a_store_first_opened_by_ps_is_private_too() {
    let outer = tempfile::tempdir().unwrap();
    let home = outer.path().join("home");
    let out = vmc(&home, &["ps", "-a"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mode = std::fs::metadata(&home).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700, "vmc ps created the home with mode {mode:o}");
}
