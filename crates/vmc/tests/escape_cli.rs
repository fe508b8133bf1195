//! Untrusted text never reaches the terminal raw: an image whose Cmd and names hold escape
//! sequences, and hostile archives whose entry names hold them, go through `vmc import`,
//! `vmc images`, `vmc inspect`, `vmc run` and `vmc ps` without one raw control byte on vmc's
//! stdout or stderr.

mod common;

use common::{busybox_rootfs, container_skip_reason, text, vmc};
use std::path::Path;
use std::process::Output;

/// A command with an SGR sequence (red), a C1 CSI that clears the screen, and a window-title
/// sequence ended by BEL.
const HOSTILE_CMD: &str =
    r#"CMD ["/bin/nosuch\u001b[31m", "\u009b2J", "\u001b]0;pwned\u0007", "\u007f"]"#;

/// Asserts that nothing in `bytes` is a control character a terminal acts on (line feeds
/// aside): no C0, no DEL, no C1, no invalid UTF-8.
fn assert_terminal_safe(what: &str, bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|_| panic!("{what}: invalid UTF-8"));
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| c != '\n' && (c.is_control() || ('\u{80}'..='\u{9f}').contains(&c)))
        .collect();
    assert!(bad.is_empty(), "{what}: raw {bad:?} in {text:?}");
}

fn assert_output_safe(what: &str, out: &Output) {
    assert_terminal_safe(&format!("{what} (stdout)"), &out.stdout);
    assert_terminal_safe(&format!("{what} (stderr)"), &out.stderr);
}

/// A minimal ustar archive of regular files, the names written as given (a hostile archive:
/// no library would write `..` names).
fn tar(entries: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in entries {
        let mut header = [0u8; 512];
        header[..name.len()].copy_from_slice(name);
        header[100..107].copy_from_slice(b"0000644");
        header[108..115].copy_from_slice(b"0000000");
        header[116..123].copy_from_slice(b"0000000");
        header[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
        header[136..147].copy_from_slice(b"00000000000");
        header[156] = b'0';
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
        header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// A VMC_HOME with image `hostile`: busybox whose Cmd holds escape sequences.
fn home_with_hostile_cmd() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let rootfs = home.path().join("rootfs-src");
    busybox_rootfs(&rootfs);
    let out = vmc(
        home.path(),
        &[
            "import",
            rootfs.to_str().unwrap(),
            "--tag",
            "hostile",
            "--change",
            HOSTILE_CMD,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_output_safe("vmc import", &out);
    home
}

#[test]
fn image_listings_escape_the_image_config() {
    if !Path::new("/bin/busybox").exists() {
        eprintln!("SKIPPED: /bin/busybox is missing (apt-get install busybox-static)");
        return;
    }
    let home = home_with_hostile_cmd();
    for args in [
        &["images"][..],
        &["images", "--json"],
        &["inspect", "hostile"],
    ] {
        let out = vmc(home.path(), args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_output_safe(&format!("vmc {args:?}"), &out);
    }
    let inspect = text(&vmc(home.path(), &["inspect", "hostile"]).stdout);
    assert!(inspect.contains(r#""/bin/nosuch\u001b[31m""#), "{inspect}");
    assert!(inspect.contains(r#""\u009b2J""#), "{inspect}");
    let parsed: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert!(
        parsed.to_string().contains("\\u001b]0;pwned\\u0007"),
        "the escaped JSON still holds the same strings"
    );
}

#[test]
fn hostile_entry_names_are_escaped_in_errors() {
    if !Path::new("/bin/busybox").exists() {
        eprintln!("SKIPPED: /bin/busybox is missing (apt-get install busybox-static)");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    // A docker-archive whose manifest names a config and a layer that are not there.
    let manifest = br#"[{"Config":"cfg\u001b[31m.json","RepoTags":["evil:latest"],"Layers":["\u001b]0;pwned\u0007layer.tar"]}]"#;
    let archive = home.path().join("evil-docker.tar");
    std::fs::write(&archive, tar(&[(b"manifest.json", manifest)])).unwrap();
    let out = vmc(home.path(), &["import", archive.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains(r"cfg\x1b[31m.json"),
        "{}",
        text(&out.stderr)
    );
    assert_output_safe("vmc import of a hostile docker-archive", &out);

    // A root filesystem whose layer climbs out with `..` under a name full of escapes (and
    // a byte that is not UTF-8): refused when the layer is unpacked, for the first run.
    let rootfs = home.path().join("evil-rootfs.tar");
    std::fs::write(
        &rootfs,
        tar(&[(b"ok", b"x"), (b"../\x1b[31mevil\xc2\x9b\xff", b"boom")]),
    )
    .unwrap();
    let out = vmc(
        home.path(),
        &["import", rootfs.to_str().unwrap(), "--tag", "evil"],
    );
    assert_output_safe("vmc import of a hostile rootfs", &out);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = vmc(home.path(), &["run", "--rm", "evil", "true"]);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("refusing layer"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
    assert_output_safe("vmc run of a hostile layer", &out);
    let escaped = std::fs::read_dir(home.path().join("rootfs"))
        .map(|dir| {
            dir.flatten()
                .any(|e| e.file_name().as_encoded_bytes().ends_with(b"\xff"))
        })
        .unwrap_or(false);
    assert!(!escaped, "the entry was written outside the image's root");
}

#[test]
fn run_and_ps_escape_the_image_command() {
    if let Some(reason) = container_skip_reason() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let home = home_with_hostile_cmd();
    let out = vmc(home.path(), &["run", "--name", "hostile-run", "hostile"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    assert_output_safe("the exec failure", &out);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("exec: ") && stderr.contains("nosuch"),
        "{stderr}"
    );
    let trace = vmc(home.path(), &["run", "--rm", "--trace", "hostile"]);
    assert_output_safe("vmc run --trace", &trace);
    for args in [&["ps", "-a"][..], &["ps", "-a", "--json"]] {
        let out = vmc(home.path(), args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_output_safe(&format!("vmc {args:?}"), &out);
    }
    let ps = text(&vmc(home.path(), &["ps", "-a"]).stdout);
    assert!(ps.contains(r#""/bin/nosuch\x1b[31m"#), "{ps}");
}
