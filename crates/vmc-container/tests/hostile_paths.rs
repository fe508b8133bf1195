//! Images whose symlinks point volume targets and the working directory at the host: every
//! path is resolved inside the image's root, so nothing is created outside it, and paths that
//! lead into procfs (whose magic links reach the host) are refused in one line. Needs root.

mod common;

use common::{assert_nothing_left, run, skipped, spec};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use vmc_runtime::{BindMount, ExitOutcome};

/// A host directory that no run may create anything in, and its path as text.
struct Victim {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Victim {
    fn new() -> Victim {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("victim");
        Victim { _dir: dir, path }
    }

    fn text(&self) -> String {
        self.path.display().to_string()
    }

    fn assert_absent(&self) {
        assert!(
            !self.path.exists(),
            "{} was created on the host",
            self.path.display()
        );
    }
}

fn bind(host: &Path, target: &str) -> BindMount {
    BindMount {
        host: host.to_path_buf(),
        target: target.into(),
        readonly: false,
    }
}

#[test]
fn volume_targets_behind_absolute_relative_and_dot_dot_links_stay_in_the_root() {
    if skipped() {
        return;
    }
    let fixture = common::Fixture::new();
    let image = fixture.image.path();
    let victim = Victim::new();
    let v = victim.text();
    symlink(&v, image.join("abs")).unwrap();
    symlink(format!("../../../../../../../..{v}"), image.join("var/rel")).unwrap();
    symlink(
        format!("../../var/../../../../..{v}"),
        image.join("home/user/up"),
    )
    .unwrap();
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(shared.path().join("in"), "from host\n").unwrap();
    let mut s = spec(
        &[
            "sh",
            "-c",
            &format!("cat {v}/a/b/in {v}/r/in {v}/u/file.txt"),
        ],
        &fixture,
    );
    s.mounts = vec![
        bind(shared.path(), "/abs/a/b"),
        bind(shared.path(), "/var/rel/r"),
        bind(&shared.path().join("in"), "/home/user/up/u/file.txt"),
    ];
    let ran = run(&s).unwrap();
    assert_eq!(ran.outcome, ExitOutcome::Exited(0), "{}", ran.stderr);
    assert_eq!(ran.stdout, "from host\n".repeat(3));
    victim.assert_absent();
    assert_nothing_left(&s);
    assert!(
        !image.join(v.trim_start_matches('/')).exists(),
        "image untouched"
    );
}

#[test]
fn volume_targets_leading_into_proc_are_refused() {
    if skipped() {
        return;
    }
    let fixture = common::Fixture::new();
    let victim = Victim::new();
    let parent = victim.path.parent().unwrap().display().to_string();
    // Before pivot_root, /proc/self/root of the container's first process is the host's /.
    symlink(
        format!("/proc/self/root{parent}"),
        fixture.image.path().join("escape"),
    )
    .unwrap();
    let shared = tempfile::tempdir().unwrap();
    let mut s = spec(&["true"], &fixture);
    s.mounts = vec![bind(shared.path(), "/escape/victim")];
    let err = run(&s).unwrap_err();
    assert!(err.contains("inside /proc"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    victim.assert_absent();
    assert_nothing_left(&s);
}

#[test]
fn the_working_directory_behind_a_link_is_made_inside_the_root() {
    if skipped() {
        return;
    }
    let fixture = common::Fixture::new();
    let victim = Victim::new();
    let v = victim.text();
    symlink(format!("{v}/sub"), fixture.image.path().join("w")).unwrap();
    symlink("/proc/self/cwd", fixture.image.path().join("p")).unwrap();
    let mut s = spec(&["pwd"], &fixture);
    s.workdir = "/w/deeper".into();
    let ran = run(&s).unwrap();
    assert_eq!(ran.outcome, ExitOutcome::Exited(0), "{}", ran.stderr);
    assert_eq!(ran.stdout, format!("{v}/sub/deeper\n"));
    victim.assert_absent();
    assert_nothing_left(&s);

    let mut s = spec(&["pwd"], &fixture);
    s.workdir = "/p/x".into();
    let err = run(&s).unwrap_err();
    assert!(
        err.contains("the working directory \"/p/x\" resolves to \"/proc/self/cwd/x\""),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_nothing_left(&s);
}
