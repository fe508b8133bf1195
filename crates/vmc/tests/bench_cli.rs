//! `vmc bench` end to end through the binary, with a temporary VMC_HOME: the report
//! directory a benchmark writes in each mode (table, JSON, CSV, Markdown, SVG), the memory
//! scenario's time series, and the one-line errors. Container runs need root and cgroups; VM
//! runs need a KVM that boots Linux, or else run inside scripts/kvm-sandbox.

mod common;

use common::{container_skip_reason, make_default_images, text, vmc, workspace_root, VMC};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A vmc home with the default images (busybox, vmc-workload) from the project's script.
fn home_with_default_images() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    make_default_images(home.path());
    home
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `vmc bench` of `mode` as both report tests run it: two measured runs of `/bin/true` in
/// busybox with 128 MiB, then the memory scenario (48 MiB allocated, held, freed, held).
fn bench_args(mode: &str, out_dir: &str) -> Vec<String> {
    [
        "bench",
        "--modes",
        mode,
        "--runs",
        "2",
        "--warmup",
        "1",
        "--memory",
        "128m",
        "--memory-scenario",
        "--scenario-mib",
        "48",
        "--out",
        out_dir,
        "busybox",
        "--",
        "/bin/true",
    ]
    .map(String::from)
    .to_vec()
}

/// Checks the report directory a benchmark of one `mode` wrote with [`bench_args`]: every
/// file parses (report.json against report.schema.json, CSV headers, SVG as XML), each run's
/// milestones are `milestones` in time order, and the memory series has samples from the
/// scenario. Returns report.json's entry for the mode.
fn check_report(out_dir: &Path, mode: &str, milestones: &[&str]) -> Value {
    let report = read_json(&out_dir.join("report.json"));
    let schema = read_json(&out_dir.join("report.schema.json"));
    let validator = jsonschema::validator_for(&schema).expect("report.schema.json is a schema");
    let errors: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "report.json breaks its schema: {errors:?}"
    );
    assert_eq!(report["schema"], "vmc-bench-report/1");
    assert_eq!(report["settings"]["command"][0], "/bin/true");
    assert_eq!(report["settings"]["memory_bytes"], 128u64 << 20);
    let entry = report["modes"][0].clone();
    assert_eq!(entry["mode"], mode);
    let runs = entry["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for run in runs {
        let points = run["milestones"].as_array().unwrap();
        let names: Vec<&str> = points
            .iter()
            .map(|m| m["milestone"].as_str().unwrap())
            .collect();
        assert_eq!(names, milestones);
        let times: Vec<u64> = points.iter().map(|m| m["at"].as_u64().unwrap()).collect();
        assert!(times.is_sorted(), "milestones out of order: {times:?}");
        assert_eq!(run["exit_code"], 0);
    }
    // 2 s of holding at a 10 ms interval: well over 50 samples even on a slow machine.
    let samples = entry["memory"]["samples"].as_array().unwrap();
    assert!(samples.len() > 50, "{} samples", samples.len());

    let runs_csv = std::fs::read_to_string(out_dir.join("runs.csv")).unwrap();
    assert!(runs_csv.starts_with("mode,run,kind,from,to,duration_us,exit_code\n"));
    let memory_csv = std::fs::read_to_string(out_dir.join("memory.csv")).unwrap();
    assert!(memory_csv
        .starts_with("mode,at_us,reserved_bytes,workload_bytes,peak_bytes,overhead_bytes\n"));
    assert_eq!(memory_csv.lines().count(), 1 + samples.len());
    let markdown = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(markdown.contains("## Startup") && markdown.contains("](memory.svg)"));
    for svg in ["startup.svg", "memory.svg"] {
        let svg = std::fs::read_to_string(out_dir.join(svg)).unwrap();
        let document = roxmltree::Document::parse(&svg).expect("well-formed SVG");
        assert_eq!(document.root_element().tag_name().name(), "svg");
    }
    entry
}

#[test]
fn container_bench_writes_a_complete_report() {
    if let Some(reason) = container_skip_reason() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let home = home_with_default_images();
    let out_dir = home.path().join("report");
    let args = bench_args("container", out_dir.to_str().unwrap());
    let out = vmc(
        home.path(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));

    // The terminal table: every container phase and the totals.
    for row in [
        "vmc start → runtime ready",
        "runtime ready → init started",
        "init started → workload exec",
        "startup",
        "whole run",
        "reserved up front",
    ] {
        assert!(stdout.contains(row), "no {row:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("kernel entry"), "{stdout}");

    let entry = check_report(
        &out_dir,
        "container",
        &[
            "vmc_start",
            "runtime_ready",
            "init_started",
            "workload_exec",
            "workload_exit",
            "torn_down",
        ],
    );
    // The sampler read the run's cgroup: its usage rose with the allocation and fell after.
    let summary = &entry["memory"]["summary"];
    let peak = summary["peak_workload_bytes"].as_u64().unwrap();
    let last = summary["last_workload_bytes"].as_u64().unwrap();
    assert!(peak >= 48 << 20, "peak {peak}");
    assert!(
        last < peak / 2,
        "the cgroup's usage did not fall: last {last}, peak {peak}"
    );

    // A report can take modes from another report, but not a mode it measured itself.
    let again = vmc(
        home.path(),
        &[
            "bench",
            "--modes",
            "container",
            "--runs",
            "1",
            "--warmup",
            "0",
            "--add-report",
            out_dir.join("report.json").to_str().unwrap(),
            "--out",
            home.path().join("again").to_str().unwrap(),
            "busybox",
            "--",
            "/bin/true",
        ],
    );
    let stderr = text(&again.stderr);
    assert_eq!(again.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("cannot combine the reports: both reports measured container mode"),
        "{stderr}"
    );
    // Nothing left behind: the run directories are gone.
    let leftovers = std::fs::read_dir(home.path().join("runs"))
        .map(|dir| dir.count())
        .unwrap_or(0);
    assert_eq!(
        leftovers,
        0,
        "run directories left in {}",
        home.path().display()
    );
}

/// Whether this host's KVM boots Linux (`vmc doctor` passes the KVM probe).
fn kvm_boots_linux() -> bool {
    let doctor = vmc(Path::new("/nonexistent"), &["doctor"]);
    text(&doctor.stdout).contains("[ok  ] KVM probe")
}

/// The lock that lets one scripts/kvm-sandbox session run at a time on this machine (cargo
/// test is never run holding it: nobody compiles under the lock, so this cannot wait on itself).
const SANDBOX_LOCK: &str = "/tmp/vmc-sandbox.lock";

/// Why scripts/kvm-sandbox cannot run here, if it cannot.
fn sandbox_skip_reason() -> Option<String> {
    let cache = std::env::var_os("VMC_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/vmc")))?;
    if !cache.join("kernels/current/vmlinux").exists() {
        return Some(format!(
            "no guest kernel in {} (run kernels/build.sh)",
            cache.display()
        ));
    }
    let qemu = Command::new("qemu-system-x86_64").arg("--version").output();
    if !qemu.is_ok_and(|out| out.status.success()) {
        return Some("qemu-system-x86_64 is missing (scripts/setup.sh installs it)".into());
    }
    None
}

#[test]
fn vm_bench_writes_a_complete_report() {
    let home = home_with_default_images();
    let out_dir = home.path().join("report");
    if kvm_boots_linux() {
        let args = bench_args("vm", out_dir.to_str().unwrap());
        let out = vmc(
            home.path(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
    } else if let Some(reason) = sandbox_skip_reason() {
        eprintln!("SKIPPED: this host's KVM cannot boot Linux and {reason}");
        return;
    } else {
        // Inside the emulated KVM host: the report comes back as a tar stream on stdout.
        let args = bench_args("vm", "/tmp/vm-report");
        let script = home.path().join("vm-bench.sh");
        std::fs::write(
            &script,
            format!(
                "set -e\nTERM=dumb vmc {} >&2\ntar -C /tmp/vm-report -cf - .\n",
                args.join(" ")
            ),
        )
        .unwrap();
        // One emulated host at a time on a machine (the lock every sandbox user takes).
        let out = Command::new("flock")
            .arg(SANDBOX_LOCK)
            .arg(workspace_root().join("scripts/kvm-sandbox"))
            .args(["--timeout", "900", "--script", script.to_str().unwrap()])
            .env("VMC", VMC)
            .env("VMC_HOME", home.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "kvm-sandbox: {}", text(&out.stderr));
        std::fs::create_dir_all(&out_dir).unwrap();
        let mut untar = Command::new("tar")
            .args(["-x", "-C", out_dir.to_str().unwrap()])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        untar.stdin.take().unwrap().write_all(&out.stdout).unwrap();
        assert!(untar.wait().unwrap().success(), "the report's tar stream");
    }

    let entry = check_report(
        &out_dir,
        "vm",
        &[
            "vmc_start",
            "runtime_ready",
            "kernel_entry",
            "init_started",
            "workload_exec",
            "workload_exit",
            "torn_down",
        ],
    );
    // The sampler read the VMM: all 128 MiB reserved, the guest's 48 MiB became resident and
    // stayed resident after the guest freed them, and the VMM's own memory is counted apart.
    let summary = &entry["memory"]["summary"];
    assert_eq!(summary["reserved_bytes"], 128u64 << 20);
    let peak = summary["peak_workload_bytes"].as_u64().unwrap();
    let last = summary["last_workload_bytes"].as_u64().unwrap();
    assert!(peak >= 48 << 20, "resident guest RAM peaked at {peak}");
    assert!(
        last >= 48 << 20,
        "resident guest RAM fell to {last} after the guest freed its memory"
    );
    let overhead = summary["overhead_median_bytes"].as_u64().unwrap();
    assert!(
        overhead > 0 && overhead < 64 << 20,
        "VMM overhead {overhead} bytes"
    );
}

#[test]
fn bench_usage_errors_are_one_line() {
    let home = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (
            &["bench", "--modes", "container,container", "busybox"][..],
            "lists container twice",
        ),
        (
            &["bench", "--runs", "0", "--modes", "container", "busybox"][..],
            "--runs 0",
        ),
        (
            &["bench", "--modes", "container", "no-such-image"][..],
            "no-such-image",
        ),
    ] {
        let out = vmc(home.path(), args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    }
}

#[test]
fn memory_scenario_without_the_workload_image_says_how_to_make_it() {
    if !Path::new("/bin/busybox").exists() {
        eprintln!("SKIPPED: /bin/busybox is missing (apt-get install busybox-static)");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let rootfs = home.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    let out = vmc(
        home.path(),
        &["import", rootfs.to_str().unwrap(), "--tag", "busybox"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = vmc(
        home.path(),
        &[
            "bench",
            "--modes",
            "container",
            "--memory-scenario",
            "busybox",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("vmc-workload") && stderr.contains("scripts/make-default-images.sh"),
        "{stderr}"
    );
}

#[test]
fn vm_bench_where_kvm_cannot_boot_linux_points_at_the_sandbox() {
    if kvm_boots_linux() {
        eprintln!("SKIPPED: this host's KVM boots Linux, so VM benchmarks run directly");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let out = vmc(home.path(), &["bench", "--modes", "vm", "busybox"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.starts_with("vmc: VM mode cannot run on this host"),
        "{stderr}"
    );
    assert!(stderr.contains("bench/compare.sh"), "{stderr}");
}
