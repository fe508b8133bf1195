//! The image commands end to end through the `vmc` binary, with a temporary VMC_HOME:
//! the default-images script, `vmc images` (table, -q, --json), `vmc inspect`, `vmc rmi`,
//! `vmc image prune`, and the one-line errors.

mod common;

use common::{make_default_images, vmc};
use std::path::Path;
use std::process::Output;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn default_images_script_then_list_inspect_rmi_prune() {
    if !Path::new("/bin/busybox").exists() {
        eprintln!("SKIPPED: /bin/busybox is missing (apt-get install busybox-static)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    // Twice: the second run finds the images there and changes nothing.
    for _ in 0..2 {
        make_default_images(&home);
    }

    let out = vmc(&home, &["images", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| {
            i["names"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap())
        })
        .collect();
    assert!(
        names.contains(&"busybox:latest") && names.contains(&"vmc-workload:latest"),
        "{names:?}"
    );
    assert_eq!(
        list.as_array().unwrap().len(),
        2,
        "re-running the script must not add images"
    );

    let table = stdout(&vmc(&home, &["images"]));
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("REPOSITORY") && header.contains("IMAGE ID") && header.ends_with("SIZE"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("busybox ") && l.contains(" latest ")),
        "{table}"
    );
    let ids = stdout(&vmc(&home, &["images", "-q"]));
    assert_eq!(ids.lines().count(), 2);
    assert!(ids
        .lines()
        .all(|l| l.len() == 12 && l.bytes().all(|b| b.is_ascii_hexdigit())));

    let out = vmc(&home, &["inspect", "vmc-workload"]);
    let details: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(details["config"]["entrypoint"][0], "/usr/bin/vmc-workload");
    assert_eq!(
        details["config"]["cmd"],
        serde_json::json!(["print", "hello from vmc-workload"])
    );
    let busybox: serde_json::Value =
        serde_json::from_slice(&vmc(&home, &["inspect", "busybox"]).stdout).unwrap();
    assert_eq!(busybox["config"]["cmd"], serde_json::json!(["/bin/sh"]));

    let out = vmc(&home, &["rmi", "busybox"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Untagged: busybox:latest")
            && stdout(&out).contains("Deleted: sha256:")
    );
    let out = vmc(&home, &["image", "prune"]);
    assert!(
        out.status.success() && stdout(&out).starts_with("Removed 0 blobs"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        stdout(&vmc(&home, &["image", "ls", "-q"])).lines().count(),
        1
    );
}

#[test]
fn errors_are_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let out = vmc(&home, &["inspect", "nosuch"]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        stderr(&out),
        "vmc: no such run or image: nosuch (see `vmc ps -a` and `vmc images`)\n"
    );
    let out = vmc(&home, &["image", "inspect", "nosuch"]);
    assert_eq!(
        stderr(&out),
        "vmc: no such image: nosuch (see `vmc images`)\n"
    );
    let out = vmc(&home, &["rmi", "nosuch"]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(stderr(&out).lines().count(), 1);
    let out = vmc(&home, &["import", "/nonexistent/rootfs.tar"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).starts_with("vmc: cannot import /nonexistent/rootfs.tar:"),
        "{}",
        stderr(&out)
    );
    let out = vmc(
        &home,
        &[
            "import",
            tmp.path().to_str().unwrap(),
            "--change",
            "EXPOSE 80",
        ],
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("invalid --change \"EXPOSE 80\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn import_directory_with_changes_and_list_table() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let rootfs = tmp.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::write(rootfs.join("bin/app"), b"app").unwrap();
    let out = vmc(
        &home,
        &[
            "import",
            rootfs.to_str().unwrap(),
            "--tag",
            "app:1.0",
            "--change",
            "CMD [\"/bin/app\"]",
            "-c",
            "ENV A=b",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("Imported app:1.0 sha256:"),
        "{}",
        stdout(&out)
    );
    let details: serde_json::Value =
        serde_json::from_slice(&vmc(&home, &["image", "inspect", "app:1.0"]).stdout).unwrap();
    assert_eq!(details["config"]["cmd"], serde_json::json!(["/bin/app"]));
    assert!(details["config"]["env"]
        .as_array()
        .unwrap()
        .contains(&"A=b".into()));
    let table = stdout(&vmc(&home, &["images"]));
    let row = table.lines().nth(1).unwrap();
    let cells: Vec<&str> = row
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(&cells[..2], ["app", "1.0"]);
    assert_eq!(cells[2], &details["id"].as_str().unwrap()[..12]);
}

/// A store holding one image imported from a tiny directory as `app:1.0`; returns its id.
fn app_image(tmp: &Path) -> (std::path::PathBuf, String) {
    let home = tmp.join("home");
    let rootfs = tmp.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::write(rootfs.join("bin/app"), b"app").unwrap();
    let out = vmc(
        &home,
        &["import", rootfs.to_str().unwrap(), "--tag", "app:1.0"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&vmc(&home, &["images", "-q"])).trim().to_string();
    (home, id)
}

#[test]
fn tag_adds_names_and_moves_a_taken_one_and_rmi_force_removes_them_all() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, id) = app_image(tmp.path());
    for (source, target) in [
        ("app:1.0", "other"),
        (id.as_str(), "registry.example/app:2"),
    ] {
        let out = vmc(&home, &["tag", source, target]);
        assert_eq!(
            (out.status.code(), stdout(&out)),
            (Some(0), String::new()),
            "{}",
            stderr(&out)
        );
    }
    let names = |home: &Path| -> Vec<String> {
        let list: serde_json::Value =
            serde_json::from_slice(&vmc(home, &["images", "--json"]).stdout).unwrap();
        let mut names: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|i| i["names"].as_array().unwrap().clone())
            .map(|n| n.as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names(&home),
        ["app:1.0", "other:latest", "registry.example/app:2"]
    );
    for (args, needle) in [
        (["tag", "nosuch", "x"], "no such image"),
        (["tag", "app:1.0", "Bad Name"], "invalid image reference"),
    ] {
        let out = vmc(&home, &args);
        assert_eq!(out.status.code(), Some(125));
        assert!(stderr(&out).contains(needle), "{}", stderr(&out));
    }
    // By id, an image with several names needs -f, which removes every name and the image.
    let out = vmc(&home, &["rmi", &id]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("vmc rmi -f"), "{}", stderr(&out));
    let full_id = stdout(&vmc(&home, &["images", "-q", "--no-trunc"]))
        .trim()
        .to_string();
    let out = vmc(&home, &["rmi", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let removed = stdout(&out);
    assert_eq!(removed.matches("Untagged: ").count(), 3, "{removed}");
    assert!(
        removed.ends_with(&format!("Deleted: {full_id}\n")),
        "{removed}"
    );
    assert!(names(&home).is_empty());
}

#[test]
fn version_and_shell_completions() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let out = vmc(&home, &["version"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let version = stdout(&out);
    assert!(
        version.starts_with(&format!("vmc version {}\n", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    assert!(
        version.contains("container mode: host kernel Linux "),
        "{version}"
    );
    assert!(version.contains("VM mode: "), "{version}");
    for shell in ["bash", "zsh", "fish"] {
        let out = vmc(&home, &["completion", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        assert!(stdout(&out).contains("vmc"), "{shell}");
    }
    let out = vmc(&home, &["completion", "tcsh"]);
    assert_eq!(out.status.code(), Some(125));
    // bash loads the script and registers the completion function.
    let loaded = std::process::Command::new("bash")
        .args([
            "-c",
            "source <(\"$0\" completion bash) && complete -p vmc",
            common::VMC,
        ])
        .env("VMC_HOME", &home)
        .output()
        .unwrap();
    assert!(loaded.status.success(), "{}", stderr(&loaded));
    assert_eq!(
        stdout(&loaded),
        "complete -o bashdefault -o default -o nosort -F _vmc vmc\n"
    );
}

/// `vmc ps | head` and the like: a listing whose reader has gone ends by SIGPIPE, quietly, as
/// Unix tools do, and not with a panic message from `println!`.
#[test]
fn a_listing_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    for args in [&["completion", "bash"][..], &["version"], &["ps", "-a"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(common::VMC)
            .args(args)
            .env("VMC_HOME", &home)
            .stdout(writer)
            .output()
            .unwrap();
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {out:?}"
        );
        assert_eq!(stderr(&out), "", "{args:?}");
    }
}

#[test]
fn import_dir_ref_picks_one_image_of_a_layout_and_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, _) = app_image(tmp.path());
    let other = tmp.path().join("other-rootfs");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("tool"), b"tool").unwrap();
    let out = vmc(&home, &["import", other.to_str().unwrap(), "--tag", "tool"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // vmc's own store is an OCI layout holding both images.
    let layout = home.join("images");
    let second = tmp.path().join("second");
    let out = vmc(&second, &["import", layout.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("vmc import DIR:REF"),
        "{}",
        stderr(&out)
    );
    for (reference, name) in [("app:1.0", "app:1.0"), ("tool", "tool:latest")] {
        let source = format!("{}:{reference}", layout.display());
        let out = vmc(&second, &["import", &source]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stdout(&out).starts_with(&format!("Imported {name} sha256:")),
            "{}",
            stdout(&out)
        );
    }
    let out = vmc(&second, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let listed = stdout(&out);
    let mut names: Vec<&str> = listed.lines().collect();
    names.sort();
    assert_eq!(names.join(" "), "app:1.0 tool:latest");
}

#[test]
fn load_reads_an_archive_from_standard_input() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, id) = app_image(tmp.path());
    // vmc's own store is an OCI layout: as a tarball, an OCI archive.
    let archive = tmp.path().join("store.tar");
    let tarred = std::process::Command::new("tar")
        .arg("-C")
        .arg(home.join("images"))
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .status()
        .unwrap();
    assert!(tarred.success());
    let load = |home: &Path, stdin: std::process::Stdio| {
        std::process::Command::new(common::VMC)
            .arg("load")
            .env("VMC_HOME", home)
            .stdin(stdin)
            .output()
            .unwrap()
    };
    let second = tmp.path().join("second");
    let out = load(&second, std::fs::File::open(&archive).unwrap().into());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Loaded image: app:1.0\n");
    assert_eq!(stdout(&vmc(&second, &["images", "-q"])).trim(), id);
    // Nothing spooled is left in the store's scratch space.
    assert_eq!(std::fs::read_dir(second.join("tmp")).unwrap().count(), 0);
    let out = load(&second, std::process::Stdio::null());
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        stderr(&out),
        "vmc: cannot import standard input: it is empty: redirect an archive into vmc load (vmc load < FILE), or give -i FILE\n"
    );
}
