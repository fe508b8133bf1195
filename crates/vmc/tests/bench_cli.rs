//! `vmc bench` end to end through the binary, with a temporary VMC_HOME: the report
//! directory a container benchmark writes (table, JSON, CSV, Markdown, SVG), the memory
//! scenario's time series, and the one-line errors. Container runs need root and cgroups.

mod common;

use common::{container_skip_reason, text, vmc, workspace_root, VMC};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// A vmc home with the default images (busybox, vmc-workload) from the project's script.
fn home_with_default_images() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    // The script builds the static workload with cargo: a target directory of its own (shared
    // with the image CLI test) so it does not wait for the lock this test run holds.
    let target = Path::new(VMC)
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("image-cli-nested");
    let out = Command::new(workspace_root().join("scripts/make-default-images.sh"))
        .env("VMC", VMC)
        .env("VMC_HOME", home.path())
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "make-default-images.sh failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    home
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn container_bench_writes_a_complete_report() {
    if let Some(reason) = container_skip_reason() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let home = home_with_default_images();
    let out_dir = home.path().join("report");
    let out = vmc(
        home.path(),
        &[
            "bench",
            "--modes",
            "container",
            "--runs",
            "3",
            "--warmup",
            "1",
            "--memory",
            "256m",
            "--memory-scenario",
            "--scenario-mib",
            "48",
            "--out",
            out_dir.to_str().unwrap(),
            "busybox",
            "--",
            "/bin/true",
        ],
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

    // report.json: three complete container runs, and a memory series that rises and falls.
    let report = read_json(&out_dir.join("report.json"));
    assert_eq!(report["schema"], "vmc-bench-report/1");
    assert_eq!(report["settings"]["command"][0], "/bin/true");
    let mode = &report["modes"][0];
    assert_eq!(mode["mode"], "container");
    let runs = mode["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    for run in runs {
        let names: Vec<&str> = run["milestones"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["milestone"].as_str().unwrap())
            .collect();
        assert_eq!(
            names.len(),
            6,
            "vmc_start, runtime_ready, init_started, workload_exec, workload_exit, torn_down: {names:?}"
        );
        assert_eq!(run["exit_code"], 0);
    }
    let memory = &mode["memory"];
    let samples = memory["samples"].as_array().unwrap();
    // 2 s of holding at a 10 ms interval: well over 50 samples even on a slow machine.
    assert!(samples.len() > 50, "{} samples", samples.len());
    let peak = memory["summary"]["peak_workload_bytes"].as_u64().unwrap();
    let last = memory["summary"]["last_workload_bytes"].as_u64().unwrap();
    assert!(peak >= 48 << 20, "peak {peak}");
    assert!(
        last < peak / 2,
        "the cgroup's usage did not fall: last {last}, peak {peak}"
    );

    // CSV headers, Markdown sections, SVG documents, the schema.
    let runs_csv = std::fs::read_to_string(out_dir.join("runs.csv")).unwrap();
    assert!(runs_csv.starts_with("mode,run,kind,from,to,duration_us,exit_code\n"));
    assert_eq!(runs_csv.lines().count(), 1 + 3 * (5 + 3));
    let memory_csv = std::fs::read_to_string(out_dir.join("memory.csv")).unwrap();
    assert!(memory_csv
        .starts_with("mode,at_us,reserved_bytes,workload_bytes,peak_bytes,overhead_bytes\n"));
    let markdown = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(markdown.contains("## Startup") && markdown.contains("](memory.svg)"));
    for svg in ["startup.svg", "memory.svg"] {
        let svg = std::fs::read_to_string(out_dir.join(svg)).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }
    assert_eq!(
        read_json(&out_dir.join("report.schema.json"))["properties"]["schema"]["const"],
        "vmc-bench-report/1"
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
    let doctor = vmc(Path::new("/nonexistent"), &["doctor"]);
    if text(&doctor.stdout).contains("[ok  ] KVM probe") {
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
