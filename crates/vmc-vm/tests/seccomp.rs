//! The VMM's seccomp filters on a running VM: every thread of the VM carries one (Seccomp: 2
//! in /proc/self/task/*/status) while the guest runs, and none with `VmmSeccomp::Unconfined`.
//! The guest (tests/guests/wait_for_com2.S) runs until the signal thread passes it a signal.

mod common;

use common::{build_guest, config, kvm_or_skip, timeline};
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use vmc_vm::{Vm, VmmSeccomp};

/// A thread of this process: its name and its Seccomp mode (0 none, 2 filter).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Task {
    name: String,
    seccomp: u8,
}

/// Every thread of this process by thread id.
fn tasks() -> BTreeMap<i32, Task> {
    let mut tasks = BTreeMap::new();
    for entry in std::fs::read_dir("/proc/self/task").unwrap() {
        let entry = entry.unwrap();
        let Ok(tid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // A thread may end while we read.
        let (Ok(name), Ok(status)) = (
            std::fs::read_to_string(entry.path().join("comm")),
            std::fs::read_to_string(entry.path().join("status")),
        ) else {
            continue;
        };
        let seccomp = status
            .lines()
            .find_map(|line| line.strip_prefix("Seccomp:"))
            .map(|mode| mode.trim().parse().unwrap())
            .expect("a Seccomp line");
        tasks.insert(
            tid,
            Task {
                name: name.trim_end().to_string(),
                seccomp,
            },
        );
    }
    tasks
}

/// The thread id of the calling thread.
fn gettid() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// Boots the waiting guest with `seccomp`; while it runs, reads every thread's Seccomp
/// mode from a thread started before the VM, then sends SIGTERM to the VM's signal thread,
/// which passes it to the guest, which ends. Returns the threads seen, the thread that ran
/// the VM and the one that looked.
fn threads_of_a_running_vm(seccomp: VmmSeccomp) -> (BTreeMap<i32, Task>, i32, i32) {
    // One such VM at a time: the observer finds the VM's threads by name.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(build_guest("wait_for_com2", dir.path()), 64, 1, "");
    config.forward_signals = true;
    config.seccomp = seccomp;
    let observer = std::thread::spawn(|| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let seen = tasks();
            if let Some((&tid, _)) = seen.iter().find(|(_, t)| t.name == "vmc-vm-signals") {
                // SAFETY: sends SIGTERM to a thread of this process, which blocks it and
                // reads it from its signalfd.
                unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGTERM) };
                return (seen, gettid());
            }
            assert!(Instant::now() < deadline, "no signal thread: {seen:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let mut timeline = timeline();
    let mut vm = Vm::create(&config, &mut timeline).unwrap();
    let runner = gettid();
    let exit = vm.run(&mut timeline).unwrap();
    let (seen, observer_tid) = observer.join().unwrap();
    assert_eq!(
        exit.status,
        Some(libc::SIGTERM),
        "the guest read the signal"
    );
    (seen, runner, observer_tid)
}

/// The Seccomp mode of the thread named `name` (the VM's only one).
fn mode_of(seen: &BTreeMap<i32, Task>, name: &str) -> u8 {
    let modes: Vec<u8> = seen
        .values()
        .filter(|t| t.name == name)
        .map(|t| t.seccomp)
        .collect();
    assert_eq!(modes.len(), 1, "one thread named {name}: {seen:?}");
    modes[0]
}

#[test]
fn every_thread_of_a_running_vm_carries_a_filter() {
    if !kvm_or_skip() {
        return;
    }
    let (seen, runner, observer) = threads_of_a_running_vm(VmmSeccomp::Confined);
    for name in [
        "vmc-vcpu0",
        "vmc-vm-signals",
        "vmc-vm-devices",
        "vmc-vm-launcher",
    ] {
        assert_eq!(mode_of(&seen, name), 2, "{name}: {seen:?}");
    }
    assert_eq!(
        seen[&runner].seccomp, 2,
        "the thread running the VM: {seen:?}"
    );
    assert_eq!(
        seen[&observer].seccomp, 0,
        "a thread started before the VM is not confined"
    );
}

#[test]
fn an_unconfined_vm_has_no_filters() {
    if !kvm_or_skip() {
        return;
    }
    let (seen, runner, _) = threads_of_a_running_vm(VmmSeccomp::Unconfined);
    for name in ["vmc-vcpu0", "vmc-vm-signals", "vmc-vm-devices"] {
        assert_eq!(mode_of(&seen, name), 0, "{name}: {seen:?}");
    }
    assert_eq!(seen[&runner].seccomp, 0, "{seen:?}");
}
