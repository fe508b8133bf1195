//! Docker's masked and read-only paths, the container's own read-only cgroup filesystem and
//! device access control, seen from inside a busybox container (root only).
//!
//! Nothing here writes a host setting: writability is checked through mount options and
//! append-opens (`exec 3>>FILE`), which neither truncate nor write.

mod common;

use common::{assert_nothing_left, run, skipped, spec};
use std::path::Path;
use vmc_container::masks::{MASKED_PATHS, READ_ONLY_PATHS};
use vmc_runtime::ExitOutcome;

/// A shell snippet printing `MOUNTPOINT OPTIONS` for every mount at `path`.
fn mount_options(path: &str) -> String {
    format!("awk '$5 == \"{path}\" {{ print $5, $6 }}' /proc/self/mountinfo; ")
}

fn is_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

#[test]
fn masked_paths_are_empty_and_read_only_paths_refuse_writes() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    let mut script = String::new();
    // Only the paths this kernel has; the others are skipped by vmc.
    for path in MASKED_PATHS.iter().filter(|p| Path::new(p).exists()) {
        if Path::new(path).is_dir() {
            script += &format!("echo {path} $(ls -A {path} | wc -l); ");
        } else {
            script += &format!("echo {path} $(cat {path} | wc -c); ");
        }
    }
    for path in READ_ONLY_PATHS.iter().filter(|p| Path::new(p).exists()) {
        script += &mount_options(path);
    }
    script += "(exec 3>>/proc/sys/kernel/core_pattern) 2>&1; echo end";
    let s = spec(&["sh", "-c", &script], &dir);
    let ran = run(&s).unwrap();
    assert_eq!(ran.outcome, ExitOutcome::Exited(0), "{}", ran.stderr);
    let mut lines = ran.stdout.lines();
    for path in MASKED_PATHS.iter().filter(|p| Path::new(p).exists()) {
        assert_eq!(
            lines.next(),
            Some(format!("{path} 0").as_str()),
            "{}",
            ran.stdout
        );
    }
    for path in READ_ONLY_PATHS.iter().filter(|p| Path::new(p).exists()) {
        let line = lines.next().unwrap_or_default();
        assert!(line.starts_with(&format!("{path} ro,")), "{path}: {line:?}");
        assert!(line.contains("nosuid") && line.contains("nodev") && line.contains("noexec"));
    }
    let refused = lines.next().unwrap_or_default();
    assert!(refused.contains("Read-only file system"), "{refused}");
    assert_eq!(lines.next(), Some("end"));
    // /proc/keys and /sys/firmware exist on every kernel vmc supports.
    assert!(ran.stdout.contains("/proc/keys 0\n") && ran.stdout.contains("/sys/firmware 0\n"));
    let steps: Vec<&str> = ran
        .timeline
        .steps()
        .iter()
        .map(|s| s.what.as_str())
        .collect();
    assert!(
        steps
            .iter()
            .any(|s| s.starts_with("masked ") && s.contains("/proc/keys")),
        "{steps:#?}"
    );
    assert_nothing_left(&s);
}

#[test]
fn cgroup_filesystem_is_read_only_and_shows_only_the_runs_cgroup() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    let (limit_file, controller_dir) = if is_v2() {
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup")
    } else {
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory",
        )
    };
    let script = format!(
        "cat {limit_file}; (exec 3>>{limit_file}) 2>&1; \
         echo dirs $(find {controller_dir} -mindepth 1 -type d | wc -l); \
         test -e {controller_dir}/release_agent && echo HOST-ROOT; \
         grep -v ':/$' /proc/self/cgroup; \
         {}{}echo end",
        mount_options("/sys/fs/cgroup"),
        mount_options(controller_dir),
    );
    let mut s = spec(&["sh", "-c", &script], &dir);
    s.resources.memory_bytes = Some(64 << 20);
    let ran = run(&s).unwrap();
    assert_eq!(ran.outcome, ExitOutcome::Exited(0), "{}", ran.stderr);
    let mut lines = ran.stdout.lines();
    assert_eq!(lines.next(), Some("67108864"), "{}", ran.stdout);
    let refused = lines.next().unwrap_or_default();
    assert!(refused.contains("Read-only file system"), "{refused}");
    // The run's cgroup has no children: nothing of the host's tree is visible.
    assert_eq!(lines.next(), Some("dirs 0"), "{}", ran.stdout);
    // Every hierarchy's root is the run's cgroup (no line of /proc/self/cgroup is elsewhere),
    // and the host root's release_agent is not there.
    let rest: Vec<&str> = lines.collect();
    assert!(!rest.contains(&"HOST-ROOT"), "{rest:?}");
    assert!(rest.iter().all(|l| !l.contains(':')), "{rest:?}");
    let mounts: Vec<&&str> = rest
        .iter()
        .filter(|l| l.starts_with("/sys/fs/cgroup"))
        .collect();
    assert!(!mounts.is_empty(), "{rest:?}");
    assert!(mounts.iter().all(|l| l.contains(" ro,")), "{mounts:?}");
    assert_eq!(rest.last(), Some(&"end"));
    let steps: Vec<&str> = ran
        .timeline
        .steps()
        .iter()
        .map(|s| s.what.as_str())
        .collect();
    assert!(
        steps
            .iter()
            .any(|s| s.starts_with("cgroup filesystem mounted read-only")
                || s.starts_with("cgroup2 mounted read-only")),
        "{steps:#?}"
    );
    assert_nothing_left(&s);
}

#[test]
fn a_cgroup_mount_made_inside_is_rooted_at_the_runs_cgroup() {
    if skipped() {
        return;
    }
    // Whether the mount itself is allowed depends on capabilities and seccomp, not on this
    // layer; what this layer guarantees is that a mount that works shows the run's cgroup,
    // not the host's root hierarchy with its release_agent and allow-all devices.list.
    let dir = common::Fixture::new();
    let script = "mkdir -p /mnt; \
         if mount -t cgroup -o devices cgroup /mnt 2>/dev/null; then \
           test -e /mnt/release_agent && echo HOST-ROOT; \
           echo dirs $(find /mnt -mindepth 1 -type d | wc -l); cat /mnt/devices.list; \
         else echo refused; fi";
    let ran = run(&spec(&["sh", "-c", script], &dir)).unwrap();
    assert_eq!(ran.outcome, ExitOutcome::Exited(0), "{}", ran.stderr);
    if ran.stdout != "refused\n" {
        assert!(!ran.stdout.contains("HOST-ROOT"), "{}", ran.stdout);
        assert!(ran.stdout.starts_with("dirs 0\n"), "{}", ran.stdout);
        assert!(!ran.stdout.contains("a *:* rwm"), "{}", ran.stdout);
        assert!(ran.stdout.contains("c 1:3 rwm"), "{}", ran.stdout);
    }
}

#[test]
fn only_the_default_devices_open_even_after_mknod() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    // Opening only (no read or write) of a kvm and a kmsg node made inside.
    let script = "mknod /tmp/kvm c 10 232 && echo mknod-ok; \
         (exec 3<>/tmp/kvm) 2>&1 && echo KVM-OPENED; \
         mknod /tmp/kmsg c 1 11; (exec 3</tmp/kmsg) 2>&1 && echo KMSG-OPENED; \
         (exec 3<>/dev/null) && (exec 3<>/dev/zero) && (exec 3</dev/urandom) && echo defaults-ok";
    let ran = run(&spec(&["sh", "-c", script], &dir)).unwrap();
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}{}", ran.stdout, ran.stderr);
    assert_eq!(lines[0], "mknod-ok");
    for refused in &lines[1..3] {
        assert!(refused.ends_with("Operation not permitted"), "{refused}");
    }
    assert_eq!(lines[3], "defaults-ok");
    let steps: Vec<&str> = ran
        .timeline
        .steps()
        .iter()
        .map(|s| s.what.as_str())
        .collect();
    assert!(
        steps
            .iter()
            .any(|s| s.starts_with("devices: everything denied, then 12 rules allowed")),
        "{steps:#?}"
    );
}

#[test]
fn privileged_lifts_masks_read_only_paths_and_device_rules() {
    if skipped() {
        return;
    }
    let dir = common::Fixture::new();
    let script = format!(
        "{}{}{}{}echo end; mknod /tmp/kmsg c 1 11 && (exec 3</tmp/kmsg) && echo kmsg-opened",
        mount_options("/proc/keys"),
        mount_options("/sys/firmware"),
        mount_options("/proc/sys"),
        mount_options("/sys/fs/cgroup"),
    );
    let mut s = spec(&["sh", "-c", &script], &dir);
    s.security.privileged = true;
    let ran = run(&s).unwrap();
    assert_eq!(ran.outcome, ExitOutcome::Exited(0), "{}", ran.stderr);
    let (mounts, after) = ran.stdout.split_once("end\n").unwrap();
    // Only the cgroup filesystem is mounted among those paths, and writable.
    let lines: Vec<&str> = mounts.lines().collect();
    assert_eq!(lines.len(), 1, "{mounts}");
    assert!(lines[0].starts_with("/sys/fs/cgroup rw,"), "{mounts}");
    assert_eq!(after, "kmsg-opened\n", "{}", ran.stderr);
    let steps: Vec<&str> = ran
        .timeline
        .steps()
        .iter()
        .map(|s| s.what.as_str())
        .collect();
    assert!(
        steps.contains(&"devices: every device allowed (--privileged)"),
        "{steps:#?}"
    );
    assert!(!steps.iter().any(|s| s.starts_with("masked ")));
    assert_nothing_left(&s);
}
