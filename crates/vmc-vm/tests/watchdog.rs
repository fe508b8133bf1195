//! The boot watchdog: a guest that never reports is stopped after the bound, and nothing of
//! its VM is left (no VMM thread but the per-process launcher, no open file). Its own test
//! binary, so that no other test's VM threads or files are counted.

mod common;

use common::{build_guest, config, kvm_or_skip, timeline};
use std::time::{Duration, Instant};
use vmc_vm::{DiskConfig, Vm, VmError, VsockConfig};

/// The names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_string())
        .collect()
}

/// How many files this process has open.
fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn a_guest_that_never_reports_is_stopped_after_the_bound_and_leaves_nothing() {
    if !kvm_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("scratch.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let mut config = config(build_guest("silent", dir.path()), 64, 2, "");
    config.disks = vec![DiskConfig {
        path: disk,
        read_only: false,
    }];
    config.vsock = Some(VsockConfig {
        stdin: false,
        forward_signals: true,
        terminal: false,
    });
    let bound = Duration::from_millis(700);
    config.boot_timeout = Some(bound);
    let files_before = open_files();
    let mut timeline = timeline();
    let mut vm = Vm::create(&config, &mut timeline).unwrap();
    let started = Instant::now();
    let err = vm.run(&mut timeline).unwrap_err();
    let took = started.elapsed();
    drop(vm);
    assert!(
        matches!(err, VmError::BootTimedOut { timeout } if timeout == bound),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(!message.contains('\n'), "one line: {message}");
    for part in ["within 0.7 s", "--console", "--boot-timeout SECONDS"] {
        assert!(message.contains(part), "{part:?} in: {message}");
    }
    assert!(
        took >= bound && took < bound + Duration::from_secs(5),
        "stopped after {took:?} for a bound of {bound:?}"
    );
    let left: Vec<String> = thread_names()
        .into_iter()
        .filter(|name| name.starts_with("vmc-") && name != "vmc-vm-launcher")
        .collect();
    assert!(left.is_empty(), "VMM threads left: {left:?}");
    assert_eq!(open_files(), files_before, "files left open");
}
