//! The confinement suite: the repo's static probe (`vmc-workload confinement`, one `key=value`
//! line per check) runs inside `vmc run`, and its whole output is compared key by key with
//! Docker's default confinement, and with the default run for each option that loosens or
//! tightens it: every option must change exactly what it says and nothing else.
//! Container runs need root and cgroups (CI has both); elsewhere the tests print SKIPPED.

mod common;

use common::{container_skip_reason, make_default_images, text, vmc, workload_binary};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;

/// Docker's 14 default capabilities (CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
/// NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP).
const DOCKER_CAPS: u64 = 0xa804_25fb;
const CAP_SYS_ADMIN: u64 = 1 << 21;
const CAP_MKNOD: u64 = 1 << 27;

/// Limits given to every probe run; the probe reads them back from its own cgroup.
const LIMITS: [&str; 4] = ["-m", "64m", "--pids-limit", "100"];
const MEMORY_LIMIT: &str = "67108864";
const PIDS_LIMIT: &str = "100";

/// What the probe checks (the lists of crates/vmc-workload/src/confinement.rs).
const SYSCALLS_DENIED: [&str; 9] = [
    "mount_tmpfs",
    "umount2",
    "unshare_newns",
    "unshare_newuser",
    "setns_uts",
    "keyctl",
    "add_key",
    "bpf",
    "open_by_handle_at",
];
const SYSCALLS_ALLOWED: [&str; 2] = ["uname", "getcwd"];
const DEVICES: [(&str, &str); 2] = [("kvm", "/dev/kvm"), ("kmsg", "/dev/kmsg")];
const CGROUP_MOUNTS: [&str; 3] = ["cgroup_devices", "cgroup_memory", "cgroup2"];
const PROC_WRITES: [&str; 4] = [
    "/proc/sys/kernel/core_pattern",
    "/proc/sysrq-trigger",
    "/proc/irq/default_smp_affinity",
    "/proc/bus/pci/devices",
];
/// The memory and pids limit files under cgroup v2, then v1.
const LIMIT_FILES_V2: [&str; 2] = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/pids.max"];
const LIMIT_FILES_V1: [&str; 2] = [
    "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    "/sys/fs/cgroup/pids/pids.max",
];
const READ_ONLY: [&str; 7] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/sys",
    "/sys/fs/cgroup",
];
const MASKED: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// A probe's output: key → value.
type Probe = BTreeMap<String, String>;

/// What a key should hold in a run, relative to a reference run.
enum Want {
    /// The reference's value.
    Same,
    /// Exactly this value.
    Is(String),
    /// Anything but this value.
    Not(&'static str),
    /// Whatever the host gives (e.g. the contents of unmasked kernel files).
    Any,
}

/// Keys whose value a run changes, and how.
type Changes = Vec<(String, Want)>;

fn is(value: impl ToString) -> Want {
    Want::Is(value.to_string())
}

fn hex(caps: u64) -> String {
    format!("{caps:016x}")
}

/// A vmc home with the default images, and the mismatches found so far.
struct Suite {
    home: tempfile::TempDir,
    failures: Vec<String>,
}

impl Suite {
    fn new() -> Suite {
        let home = tempfile::tempdir().unwrap();
        make_default_images(home.path());
        Suite {
            home,
            failures: Vec::new(),
        }
    }

    fn vmc(&self, args: &[&str]) -> Output {
        vmc(self.home.path(), args)
    }

    /// `vmc run --rm LIMITS FLAGS IMAGE confinement`, parsed; `None` (and a failure) if it failed.
    fn probe(&mut self, case: &str, image: &str, flags: &[&str]) -> Option<Probe> {
        let mut args = vec!["run", "--rm"];
        args.extend(LIMITS);
        args.extend(flags);
        args.extend([image, "confinement"]);
        let out = self.vmc(&args);
        if !out.status.success() {
            self.failures.push(format!(
                "{case}: `vmc {}` exited {:?}: {}",
                args.join(" "),
                out.status.code(),
                text(&out.stderr).trim()
            ));
            return None;
        }
        let mut probe = Probe::new();
        for line in text(&out.stdout).lines() {
            match line.split_once('=') {
                Some((key, value)) => probe.insert(key.into(), value.into()),
                None => {
                    self.failures
                        .push(format!("{case}: not a key=value line: {line:?}"));
                    None
                }
            };
        }
        Some(probe)
    }

    /// Compares every key of `got` with `reference`, except where `changes` says otherwise.
    fn compare(
        &mut self,
        case: &str,
        got: &Probe,
        reference: &Probe,
        reference_name: &str,
        changes: Changes,
    ) {
        let mut changes: BTreeMap<String, Want> = changes.into_iter().collect();
        for key in changes.keys() {
            assert!(
                reference.contains_key(key),
                "test bug: {case} names the unknown key {key}"
            );
        }
        // An unmasked kernel file holds the host's data, which changes from run to run
        // (/proc/keys): only a masked one must read the same.
        for key in keys(reference, "content.") {
            let masked = key.replacen("content.", "masked.", 1);
            if reference.get(&masked).map(String::as_str) != Some("yes") {
                changes.entry(key.clone()).or_insert(Want::Any);
            }
        }
        let keys: BTreeSet<&String> = got.keys().chain(reference.keys()).collect();
        for key in keys {
            let (Some(value), Some(expected)) = (got.get(key), reference.get(key)) else {
                let side = if got.contains_key(key) {
                    "unexpected"
                } else {
                    "missing"
                };
                self.failures.push(format!(
                    "{case}: {side} key {key} (the probe and the suite disagree)"
                ));
                continue;
            };
            let mismatch = match changes.remove(key).unwrap_or(Want::Same) {
                Want::Same if value != expected => {
                    Some(format!("{expected} as in {reference_name}"))
                }
                Want::Is(want) if *value != want => Some(want),
                Want::Not(bad) if value == bad => Some(format!("anything but {bad}")),
                _ => None,
            };
            if let Some(want) = mismatch {
                self.failures
                    .push(format!("{case}: {key}={value}, want {want}"));
            }
        }
    }

    /// Fails the test with every mismatch found.
    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} confinement mismatches:\n  {}",
            self.failures.len(),
            self.failures.join("\n  ")
        );
    }
}

macro_rules! skip_without_containers {
    () => {
        if let Some(reason) = container_skip_reason() {
            eprintln!("SKIPPED: {reason}");
            return;
        }
    };
}

fn exists(path: &str) -> bool {
    Path::new(path).exists()
}

fn host_is_cgroup_v2() -> bool {
    exists("/sys/fs/cgroup/cgroup.controllers")
}

/// The limit files the container shows (its host's layout), and those it cannot have.
fn limit_files() -> ([&'static str; 2], [&'static str; 2]) {
    if host_is_cgroup_v2() {
        (LIMIT_FILES_V2, LIMIT_FILES_V1)
    } else {
        (LIMIT_FILES_V1, LIMIT_FILES_V2)
    }
}

fn sysctl(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The bounding set of this (root) test process: what `--privileged` hands on.
fn host_bounding_set() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim()
        .to_string()
}

/// Docker's default confinement of a root workload as the probe reports it on this host.
fn docker_default() -> Probe {
    let mut want = Probe::new();
    let mut set = |key: String, value: &str| {
        want.insert(key, value.to_string());
    };
    let or_enoent = |path: &str, value: &'static str| if exists(path) { value } else { "ENOENT" };
    for (key, value) in [
        ("CapInh", hex(0)),
        ("CapPrm", hex(DOCKER_CAPS)),
        ("CapEff", hex(DOCKER_CAPS)),
        ("CapBnd", hex(DOCKER_CAPS)),
        ("CapAmb", hex(0)),
        ("Seccomp", "2".into()),
        ("NoNewPrivs", "0".into()),
        ("uid", "0".into()),
        ("euid", "0".into()),
        ("cgroup.paths", "/".into()),
    ] {
        set(key.into(), &value);
    }
    for call in SYSCALLS_DENIED {
        set(format!("syscall.{call}"), "EPERM");
    }
    for call in SYSCALLS_ALLOWED {
        set(format!("syscall.{call}"), "ok");
    }
    // CAP_MKNOD is one of the 14 and Docker's device cgroup allows mknod, not open.
    for (name, _) in DEVICES {
        set(format!("mknod.{name}"), "ok");
        set(format!("open.{name}"), "EPERM");
    }
    for fs in CGROUP_MOUNTS {
        set(format!("mount.{fs}"), "EPERM");
    }
    for path in PROC_WRITES {
        set(format!("write.{path}"), or_enoent(path, "EROFS"));
    }
    let (shown, absent) = limit_files();
    for (path, limit) in shown.into_iter().zip([MEMORY_LIMIT, PIDS_LIMIT]) {
        set(format!("write.{path}"), "EROFS");
        set(format!("value.{path}"), limit);
    }
    for path in absent {
        set(format!("write.{path}"), "ENOENT");
        set(format!("value.{path}"), "ENOENT");
    }
    for path in READ_ONLY {
        set(format!("rdonly.{path}"), or_enoent(path, "1"));
    }
    for path in MASKED {
        set(format!("masked.{path}"), or_enoent(path, "yes"));
        set(format!("content.{path}"), or_enoent(path, "0"));
    }
    want
}

/// Keys of `probe` starting with `prefix`.
fn keys<'a>(probe: &'a Probe, prefix: &'a str) -> impl Iterator<Item = &'a String> + 'a {
    probe.keys().filter(move |k| k.starts_with(prefix))
}

/// The changes of a workload that holds no capability: no mknod (a non-root one may not even
/// write to /dev, root's 0755 tmpfs), and no write where only CAP_DAC_OVERRIDE let root open the
/// file (EROFS before) or where it is not the owner.
fn capless(base: &Probe, non_root: bool) -> Changes {
    let mut changes = Vec::new();
    let mknod = if non_root { "EACCES" } else { "EPERM" };
    for (name, _) in DEVICES {
        changes.push((format!("mknod.{name}"), is(mknod)));
        changes.push((format!("open.{name}"), is("ENOENT")));
    }
    for key in keys(base, "write.") {
        // Root without CAP_DAC_OVERRIDE still owns the files; /proc/bus/pci/devices is 0444.
        if base[key] == "EROFS" && (non_root || key == "write./proc/bus/pci/devices") {
            changes.push((key.clone(), is("EACCES")));
        }
    }
    changes
}

fn caps_changes(prm_eff: u64, bnd: u64) -> Changes {
    vec![
        ("CapPrm".into(), is(hex(prm_eff))),
        ("CapEff".into(), is(hex(prm_eff))),
        ("CapBnd".into(), is(hex(bnd))),
        ("CapInh".into(), is(hex(0))),
        ("CapAmb".into(), is(hex(0))),
    ]
}

/// Imports the probe as a setuid-root file (the only file of the image besides a few dirs).
fn import_setuid_probe(suite: &Suite) {
    use std::os::unix::fs::PermissionsExt;
    let tree = tempfile::tempdir().unwrap();
    for dir in ["usr/bin", "tmp", "proc", "sys", "dev", "etc"] {
        std::fs::create_dir_all(tree.path().join(dir)).unwrap();
    }
    let tmp = tree.path().join("tmp");
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let probe = tree.path().join("usr/bin/vmc-workload");
    std::fs::copy(workload_binary(), &probe).unwrap();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let out = suite.vmc(&[
        "import",
        tree.path().to_str().unwrap(),
        "--tag",
        "setuid-probe",
        "--change",
        r#"ENTRYPOINT ["/usr/bin/vmc-workload"]"#,
    ]);
    assert!(out.status.success(), "import: {}", text(&out.stderr));
}

#[test]
fn default_confinement_is_dockers() {
    skip_without_containers!();
    let mut suite = Suite::new();
    let expected = docker_default();
    let Some(base) = suite.probe("default (root)", "vmc-workload", &[]) else {
        return suite.finish();
    };
    suite.compare(
        "default (root)",
        &base,
        &expected,
        "Docker's default",
        vec![],
    );

    // A non-root workload: nothing effective, the same bounding set.
    let nobody_changes = || {
        let mut changes = caps_changes(0, DOCKER_CAPS);
        changes.push(("uid".into(), is(65534)));
        changes.push(("euid".into(), is(65534)));
        changes.extend(capless(&base, true));
        changes
    };
    if let Some(nobody) = suite.probe("-u nobody", "vmc-workload", &["-u", "nobody"]) {
        suite.compare(
            "-u nobody",
            &nobody,
            &base,
            "the default run",
            nobody_changes(),
        );
    }

    // A setuid-root file regains exactly the bounding set; with no_new_privs, nothing.
    import_setuid_probe(&suite);
    if let Some(setuid) = suite.probe("setuid-root file", "setuid-probe", &["-u", "65534"]) {
        let mut changes = caps_changes(DOCKER_CAPS, DOCKER_CAPS);
        changes.push(("uid".into(), is(65534)));
        changes.push(("euid".into(), is(0)));
        suite.compare(
            "setuid-root file, -u 65534",
            &setuid,
            &base,
            "the default run",
            changes,
        );
    }
    let nnp = ["-u", "65534", "--security-opt", "no-new-privileges"];
    if let Some(setuid_nnp) =
        suite.probe("setuid-root file, no-new-privileges", "setuid-probe", &nnp)
    {
        let mut changes = nobody_changes();
        changes.push(("NoNewPrivs".into(), is(1)));
        suite.compare(
            "setuid-root file, -u 65534 --security-opt no-new-privileges",
            &setuid_nnp,
            &base,
            "the default run",
            changes,
        );
    }

    // The memory limit holds: 64 MiB under -m 32m is an OOM kill.
    let oom = suite.vmc(&["run", "--rm", "-m", "32m", "vmc-workload", "alloc", "64"]);
    if oom.status.code() != Some(137) || text(&oom.stdout).contains("allocated") {
        suite.failures.push(format!(
            "-m 32m, alloc 64: exit {:?}, stdout {:?}, want 137 before 'allocated 64 MiB'",
            oom.status.code(),
            text(&oom.stdout)
        ));
    }
    suite.finish();
}

#[test]
fn security_options_change_exactly_what_they_say() {
    skip_without_containers!();
    let mut suite = Suite::new();
    let Some(base) = suite.probe("default", "vmc-workload", &[]) else {
        return suite.finish();
    };
    let mut cases: Vec<(Vec<&str>, Changes)> = Vec::new();

    // Docker's profile allows mount, umount2, unshare, setns and bpf to CAP_SYS_ADMIN (but not
    // keyctl, add_key, or open_by_handle_at, which needs CAP_DAC_READ_SEARCH).
    let mut sys_admin = caps_changes(DOCKER_CAPS | CAP_SYS_ADMIN, DOCKER_CAPS | CAP_SYS_ADMIN);
    for (call, result) in [
        ("mount_tmpfs", "ok"),
        ("umount2", "EINVAL"), // /usr is not a mount point
        ("unshare_newns", "ok"),
        ("unshare_newuser", "ok"),
        ("setns_uts", "ok"),
        ("bpf", "EINVAL"), // no map type
    ] {
        sys_admin.push((format!("syscall.{call}"), is(result)));
    }
    sys_admin.push(("mount.cgroup2".into(), is("ok")));
    // v1 hierarchies: the kernel decides (EBUSY where the controller is bound to cgroup v2).
    sys_admin.push(("mount.cgroup_devices".into(), Want::Not("EPERM")));
    sys_admin.push(("mount.cgroup_memory".into(), Want::Not("EPERM")));
    cases.push((vec!["--cap-add", "SYS_ADMIN"], sys_admin));

    let mut drop_all = caps_changes(0, 0);
    drop_all.extend(capless(&base, false));
    cases.push((vec!["--cap-drop", "ALL"], drop_all));

    let mut drop_mknod = caps_changes(DOCKER_CAPS & !CAP_MKNOD, DOCKER_CAPS & !CAP_MKNOD);
    for (name, _) in DEVICES {
        drop_mknod.push((format!("mknod.{name}"), is("EPERM")));
        drop_mknod.push((format!("open.{name}"), is("ENOENT")));
    }
    cases.push((vec!["--cap-drop", "mknod"], drop_mknod));

    // Without the filter only the kernel's own checks remain (the 14 capabilities lack
    // CAP_SYS_ADMIN): keyrings are open to all, user namespaces as the sysctls say. Whether
    // bpf and open_by_handle_at fail with EPERM (a capability check) or EINVAL (the probe's
    // empty arguments) depends on which check a kernel makes first (6.x checks the
    // arguments first): either way they must not succeed.
    let userns_open = sysctl("/proc/sys/user/max_user_namespaces").as_deref() != Some("0")
        && sysctl("/proc/sys/kernel/unprivileged_userns_clone").as_deref() != Some("0");
    let unconfined = vec![
        ("Seccomp".to_string(), is(0)),
        ("syscall.keyctl".into(), is("ok")),
        ("syscall.add_key".into(), is("ok")),
        (
            "syscall.unshare_newuser".into(),
            is(if userns_open { "ok" } else { "EPERM" }),
        ),
        ("syscall.bpf".into(), Want::Not("ok")),
        ("syscall.open_by_handle_at".into(), Want::Not("ok")),
    ];
    cases.push((vec!["--security-opt", "seccomp=unconfined"], unconfined));

    cases.push((
        vec!["--security-opt", "no-new-privileges"],
        vec![("NoNewPrivs".into(), is(1))],
    ));

    // Everything, no filter, no masks, nothing read-only, every device.
    let all = host_bounding_set();
    let mut privileged = vec![
        ("CapPrm".to_string(), is(&all)),
        ("CapEff".into(), is(&all)),
        ("CapBnd".into(), is(&all)),
        ("Seccomp".into(), is(0)),
    ];
    for (call, result) in [
        ("mount_tmpfs", "ok"),
        ("umount2", "EINVAL"),
        ("unshare_newns", "ok"),
        ("unshare_newuser", "ok"),
        ("setns_uts", "ok"),
        ("keyctl", "ok"),
        ("add_key", "ok"),
        ("bpf", "EINVAL"),
        ("open_by_handle_at", "EINVAL"), // an empty handle
    ] {
        privileged.push((format!("syscall.{call}"), is(result)));
    }
    for (name, host) in DEVICES {
        let open = if exists(host) {
            is("ok")
        } else {
            Want::Not("EPERM")
        };
        privileged.push((format!("open.{name}"), open));
    }
    privileged.push(("mount.cgroup2".into(), is("ok")));
    privileged.push(("mount.cgroup_devices".into(), Want::Not("EPERM")));
    privileged.push(("mount.cgroup_memory".into(), Want::Not("EPERM")));
    for (prefix, before, after) in [
        ("write.", "EROFS", "ok"),
        ("rdonly.", "1", "0"),
        ("masked.", "yes", "no"),
    ] {
        for key in keys(&base, prefix) {
            if base[key] == before {
                privileged.push((key.clone(), is(after)));
            }
        }
    }
    for key in keys(&base, "content.") {
        if base[key] != "ENOENT" {
            privileged.push((key.clone(), Want::Any));
        }
    }
    cases.push((vec!["--privileged"], privileged));

    let mut unconfined_run = None;
    for (flags, changes) in cases {
        let case = flags.join(" ");
        if let Some(got) = suite.probe(&case, "vmc-workload", &flags) {
            suite.compare(&case, &got, &base, "the default run", changes);
            if case.ends_with("seccomp=unconfined") {
                unconfined_run = Some(got);
            }
        }
    }

    // A profile of our own: allow everything but uname. Compared with the unconfined run.
    let profile = suite.home.path().join("no-uname.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#,
    )
    .unwrap();
    let option = format!("seccomp={}", profile.display());
    let case = "--security-opt seccomp=no-uname.json";
    if let (Some(got), Some(unconfined)) = (
        suite.probe(case, "vmc-workload", &["--security-opt", &option]),
        unconfined_run,
    ) {
        let changes = vec![
            ("Seccomp".into(), is(2)),
            ("syscall.uname".into(), is("EPERM")),
        ];
        suite.compare(case, &got, &unconfined, "the unconfined run", changes);
    }
    suite.finish();
}

#[test]
fn bad_security_options_fail_in_one_line() {
    skip_without_containers!();
    let suite = Suite::new();
    let dir = suite.home.path();
    let malformed = dir.join("malformed.json");
    std::fs::write(
        &malformed,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": ["#,
    )
    .unwrap();
    let bad_action = dir.join("bad-action.json");
    std::fs::write(&bad_action, r#"{"defaultAction": "SCMP_ACT_MAYBE"}"#).unwrap();
    let malformed_opt = format!("seccomp={}", malformed.display());
    let bad_action_opt = format!("seccomp={}", bad_action.display());
    let cases: [(&[&str], &str); 6] = [
        (&["--cap-add", "NOPE"], "NOPE"),
        (&["--cap-drop", "CAP_NOPE"], "CAP_NOPE"),
        (
            &["--security-opt", "seccomp=/missing.json"],
            "/missing.json",
        ),
        (&["--security-opt", "apparmor=x"], "apparmor=x"),
        (&["--security-opt", &malformed_opt], "malformed.json"),
        (&["--security-opt", &bad_action_opt], "SCMP_ACT_MAYBE"),
    ];
    let mut failures = Vec::new();
    for (flags, needle) in cases {
        let mut args = vec!["run", "--rm"];
        args.extend(flags);
        args.extend(["vmc-workload", "print", "ran"]);
        let out = suite.vmc(&args);
        let stderr = text(&out.stderr);
        let lines = stderr.trim_end().lines().count();
        if out.status.code() != Some(125) || lines != 1 || !stderr.contains(needle) {
            failures.push(format!(
                "{}: exit {:?}, {lines} lines on stderr {stderr:?}; want 125 and one line naming {needle}",
                flags.join(" "),
                out.status.code()
            ));
        }
        if !out.stdout.is_empty() {
            failures.push(format!("{}: the workload ran", flags.join(" ")));
        }
    }
    let left = std::fs::read_dir(dir.join("runs")).map_or(0, Iterator::count);
    if left != 0 {
        failures.push(format!("{left} run records left behind"));
    }
    assert!(failures.is_empty(), "\n  {}", failures.join("\n  "));
}

#[test]
fn comparison_reports_every_key_that_breaks_its_rule() {
    let mut suite = Suite {
        home: tempfile::tempdir().unwrap(),
        failures: Vec::new(),
    };
    let probe = |pairs: &[(&str, &str)]| -> Probe {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let reference = probe(&[
        ("Seccomp", "2"),
        ("syscall.mount_tmpfs", "EPERM"),
        ("mount.cgroup2", "EPERM"),
        ("masked./proc/keys", "no"),
        ("content./proc/keys", "673"),
        ("uid", "0"),
    ]);
    let got = probe(&[
        ("Seccomp", "0"),
        ("syscall.mount_tmpfs", "ok"),
        ("mount.cgroup2", "EPERM"),
        ("masked./proc/keys", "no"),
        ("content./proc/keys", "1093"),
        ("euid", "0"),
    ]);
    let changes = vec![
        ("Seccomp".into(), is(0)),
        ("mount.cgroup2".into(), Want::Not("EPERM")),
    ];
    suite.compare("case", &got, &reference, "the reference", changes);
    assert_eq!(
        suite.failures,
        [
            "case: unexpected key euid (the probe and the suite disagree)",
            "case: mount.cgroup2=EPERM, want anything but EPERM",
            "case: syscall.mount_tmpfs=ok, want EPERM as in the reference",
            "case: missing key uid (the probe and the suite disagree)",
        ]
    );
}
