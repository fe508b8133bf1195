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
