//! Capabilities, seccomp and no_new_privs of container workloads (root only): what
//! /proc/self/status says inside, and what the default confinement refuses.

mod common;

use common::{assert_nothing_left, run, skipped, spec, Fixture};
use vmc_runtime::{ExitOutcome, RunSpec, SeccompPolicy, Security};

/// Docker's default capability set.
const DOCKER_CAPS: &str = "00000000a80425fb";
const NO_CAPS: &str = "0000000000000000";

/// The fields of the workload's /proc/self/status that confinement sets.
#[derive(Debug, PartialEq, Eq)]
struct Status {
    eff: String,
    prm: String,
    bnd: String,
    inh: String,
    amb: String,
    seccomp: String,
    no_new_privs: String,
}

fn status_of(s: &RunSpec) -> Status {
    let ran = run(s).unwrap();
    assert_eq!(ran.outcome, ExitOutcome::Exited(0), "{ran:?}");
    let field = |name: &str| {
        ran.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in {}", ran.stdout))
            .trim()
            .to_string()
    };
    Status {
        eff: field("CapEff"),
        prm: field("CapPrm"),
        bnd: field("CapBnd"),
        inh: field("CapInh"),
        amb: field("CapAmb"),
        seccomp: field("Seccomp"),
        no_new_privs: field("NoNewPrivs"),
    }
}

fn status_spec(fixture: &Fixture, security: Security) -> RunSpec {
    let mut s = spec(&["cat", "/proc/self/status"], fixture);
    s.security = security;
    s
}

fn caps(add: &[&str], drop: &[&str]) -> Security {
    Security {
        cap_add: add.iter().map(|s| s.to_string()).collect(),
        cap_drop: drop.iter().map(|s| s.to_string()).collect(),
        ..Security::default()
    }
}

/// This (root) test process's permitted set: the most a privileged container can get.
fn own_permitted() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapPrm:"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn root_gets_dockers_capabilities_and_seccomp_filter() {
    if skipped() {
        return;
    }
    let fixture = Fixture::new();
    let s = status_spec(&fixture, Security::default());
    let status = status_of(&s);
    assert_eq!(
        status,
        Status {
            eff: DOCKER_CAPS.into(),
            prm: DOCKER_CAPS.into(),
            bnd: DOCKER_CAPS.into(),
            inh: NO_CAPS.into(),
            amb: NO_CAPS.into(),
            seccomp: "2".into(),
            no_new_privs: "0".into(),
        }
    );
    assert_nothing_left(&s);
    let ran = run(&status_spec(&fixture, Security::default())).unwrap();
    let step = ran
        .timeline
        .steps()
        .iter()
        .map(|s| s.what.clone())
        .find(|s| s.starts_with("capabilities:"))
        .expect("a confinement step");
    assert!(
        step.starts_with(
            "capabilities: 14 (Docker's default); seccomp: Docker's default profile, "
        ) && step.ends_with("(cached); no_new_privs off"),
        "{step}"
    );
}

#[test]
fn a_non_root_workload_has_only_the_bounding_set() {
    if skipped() {
        return;
    }
    let fixture = Fixture::new();
    let mut s = status_spec(&fixture, Security::default());
    s.uid = 65534;
    s.gid = 65534;
    let status = status_of(&s);
    assert_eq!(
        status,
        Status {
            eff: NO_CAPS.into(),
            prm: NO_CAPS.into(),
            bnd: DOCKER_CAPS.into(),
            inh: NO_CAPS.into(),
            amb: NO_CAPS.into(),
            seccomp: "2".into(),
            no_new_privs: "0".into(),
        }
    );
}

#[test]
fn mount_and_unshare_are_refused() {
    if skipped() {
        return;
    }
    let fixture = Fixture::new();
    let script = "mount -t tmpfs none /tmp; echo mount=$?; unshare -m true; echo unshare=$?; \
                  unshare -n true; echo unshare-net=$?";
    let s = spec(&["sh", "-c", script], &fixture);
    let ran = run(&s).unwrap();
    assert_eq!(ran.outcome, ExitOutcome::Exited(0));
    assert_eq!(ran.stdout, "mount=1\nunshare=1\nunshare-net=1\n", "{ran:?}");
    assert!(
        ran.stderr.contains("mount: permission denied"),
        "{}",
        ran.stderr
    );
    assert_eq!(
        ran.stderr.matches("Operation not permitted").count(),
        2,
        "{}",
        ran.stderr
    );
    assert_nothing_left(&s);
}

#[test]
fn cap_add_and_cap_drop_change_exactly_those_capabilities() {
    if skipped() {
        return;
    }
    let fixture = Fixture::new();
    let cases = [
        (caps(&["NET_ADMIN"], &[]), "00000000a80435fb"),
        (caps(&["cap_net_admin"], &["CHOWN"]), "00000000a80435fa"),
        (caps(&["CHOWN"], &["ALL"]), "0000000000000001"),
        (caps(&[], &["ALL"]), NO_CAPS),
    ];
    for (security, expected) in cases {
        let status = status_of(&status_spec(&fixture, security.clone()));
        assert_eq!(
            (
                status.eff.as_str(),
                status.bnd.as_str(),
                status.prm.as_str()
            ),
            (expected, expected, expected),
            "{security:?}"
        );
        assert_eq!(status.seccomp, "2");
    }
    // ALL: every capability vmc holds.
    let status = status_of(&status_spec(&fixture, caps(&["ALL"], &[])));
    assert_eq!(status.eff, own_permitted());
}

#[test]
fn cap_sys_admin_opens_mount_through_the_filter() {
    if skipped() {
        return;
    }
    let fixture = Fixture::new();
    let mut s = spec(
        &[
            "sh",
            "-c",
            "mount -t tmpfs none /tmp && grep -c ' /tmp tmpfs' /proc/mounts",
        ],
        &fixture,
    );
    s.security = caps(&["SYS_ADMIN"], &[]);
    let ran = run(&s).unwrap();
    assert_eq!(ran.outcome, ExitOutcome::Exited(0), "{ran:?}");
    assert_eq!(ran.stdout, "1\n");
}

#[test]
fn privileged_gets_every_capability_and_no_filter() {
    if skipped() {
        return;
    }
    let fixture = Fixture::new();
    let privileged = Security {
        privileged: true,
        ..Security::default()
    };
    let status = status_of(&status_spec(&fixture, privileged.clone()));
    assert_eq!(status.eff, own_permitted());
    assert_eq!(status.bnd, own_permitted());
    assert_eq!(status.seccomp, "0");
    let mut s = spec(
        &["sh", "-c", "mount -t tmpfs none /tmp && unshare -m true"],
        &fixture,
    );
    s.security = privileged;
    assert_eq!(run(&s).unwrap().outcome, ExitOutcome::Exited(0));
}

#[test]
fn unconfined_drops_only_the_filter_and_no_new_privileges_sets_the_flag() {
    if skipped() {
        return;
    }
    let fixture = Fixture::new();
    let unconfined = Security {
        seccomp: SeccompPolicy::Unconfined,
        ..Security::default()
    };
    let status = status_of(&status_spec(&fixture, unconfined));
    assert_eq!(
        (status.seccomp.as_str(), status.eff.as_str()),
        ("0", DOCKER_CAPS)
    );
    assert_eq!(status.no_new_privs, "0");
    let nnp = Security {
        no_new_privileges: true,
        ..Security::default()
    };
    let status = status_of(&status_spec(&fixture, nnp));
    assert_eq!(status.no_new_privs, "1");
    assert_eq!(
        (status.seccomp.as_str(), status.eff.as_str()),
        ("2", DOCKER_CAPS)
    );
    let mut as_nobody = status_spec(
        &fixture,
        Security {
            no_new_privileges: true,
            ..Security::default()
        },
    );
    as_nobody.uid = 65534;
    let status = status_of(&as_nobody);
    assert_eq!(
        (status.no_new_privs.as_str(), status.eff.as_str()),
        ("1", NO_CAPS)
    );
}

#[test]
fn a_profile_file_is_applied_and_a_bad_one_refused() {
    if skipped() {
        return;
    }
    let fixture = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile.json");
    std::fs::write(
        &profile,
        br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .unwrap();
    let mut s = spec(
        &[
            "sh",
            "-c",
            "mkdir /tmp/x; echo $?; grep Seccomp: /proc/self/status",
        ],
        &fixture,
    );
    s.security = Security {
        seccomp: SeccompPolicy::Profile(profile.clone()),
        ..Security::default()
    };
    let ran = run(&s).unwrap();
    assert_eq!(ran.stdout, "1\nSeccomp:\t2\n", "{ran:?}");
    assert!(ran.stderr.contains("Permission denied"), "{}", ran.stderr);

    std::fs::write(
        &profile,
        br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"]}]}"#,
    )
    .unwrap();
    let err = run(&s).unwrap_err();
    assert!(
        err.contains(&profile.display().to_string())
            && err.contains("syscalls[0]")
            && err.contains("action"),
        "{err}"
    );
    assert!(!err.contains('\n'), "{err}");
    assert_nothing_left(&s);
}

#[test]
fn an_unknown_capability_is_refused_before_anything_is_made() {
    if skipped() {
        return;
    }
    let fixture = Fixture::new();
    let mut s = status_spec(&fixture, caps(&["NET_ADMINS"], &[]));
    s.security.cap_drop = vec!["CHOWN".into()];
    let err = run(&s).unwrap_err();
    assert!(
        err.contains("\"NET_ADMINS\"") && err.contains("--cap-add"),
        "{err}"
    );
    assert_nothing_left(&s);
}

#[test]
fn a_profile_refusing_the_setup_calls_is_a_setup_error() {
    if skipped() {
        return;
    }
    let fixture = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("deny-all.json");
    std::fs::write(&profile, br#"{"defaultAction": "SCMP_ACT_ERRNO"}"#).unwrap();
    for no_new_privileges in [false, true] {
        let mut s = spec(&["true"], &fixture);
        s.security = Security {
            seccomp: SeccompPolicy::Profile(profile.clone()),
            no_new_privileges,
            ..Security::default()
        };
        let err = run(&s).unwrap_err();
        assert!(
            err.contains("before it executed the workload")
                && err.contains("the seccomp profile must allow"),
            "{err}"
        );
        assert_nothing_left(&s);
    }
}
