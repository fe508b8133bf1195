//! The VMM's seccomp filters on a running VM: every thread of the VM carries one (Seccomp: 2
//! in /proc/self/task/*/status) while the guest runs, and none with `VmmSeccomp::Unconfined`.
//! The guest (tests/guests/wait_for_memory.S) runs until the test writes a byte into its RAM.

mod common;

use common::{build_guest, config, kvm_or_skip, timeline};
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use vmc_vm::{Vm, VmmSeccomp, VsockConfig};

/// The guest physical address the waiting guest polls.
const RELEASE_ADDRESS: u64 = 0x30_0000;
/// The status the test makes the guest report.
const RELEASE_STATUS: u8 = 42;
/// The VMM's threads of a VM with a vsock channel forwarding signals.
const VM_THREADS: [&str; 6] = [
    "vmc-vm",
    "vmc-vcpu0",
    "vmc-vm-devices",
    "vmc-vm-signals",
    "vmc-vm-stdout",
    "vmc-vm-stderr",
];

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

/// Boots the waiting guest with `seccomp` and a vsock channel; while it runs, reads every
/// thread's Seccomp mode from a thread started before the VM, then writes the byte the guest
/// waits for into its RAM, and the guest ends. Returns the threads seen, the thread that ran
/// the VM and the one that looked.
fn threads_of_a_running_vm(seccomp: VmmSeccomp) -> (BTreeMap<i32, Task>, i32, i32) {
    // One such VM at a time: the observer finds the VM's threads by name.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(build_guest("wait_for_memory", dir.path()), 64, 1, "");
    config.vsock = Some(VsockConfig {
        stdin: false,
        forward_signals: true,
        terminal: false,
    });
    config.seccomp = seccomp;
    let mut timeline = timeline();
    let mut vm = Vm::create(&config, &mut timeline).unwrap();
    let release = vm
        .ram_regions()
        .iter()
        .find(|region| region.guest.contains(&RELEASE_ADDRESS))
        .map(|region| region.host.start + (RELEASE_ADDRESS - region.guest.start) as usize)
        .expect("the release byte is in guest RAM");
    let observer = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let seen = tasks();
            let names: Vec<&str> = seen.values().map(|t| t.name.as_str()).collect();
            if VM_THREADS.iter().all(|name| names.contains(name)) {
                // SAFETY: `release` is inside guest RAM, mapped while the VM exists (the VM
                // runs until the guest reads this byte); a volatile write is how the guest
                // sees it.
                unsafe { std::ptr::write_volatile(release as *mut u8, RELEASE_STATUS) };
                return (seen, gettid());
            }
            assert!(Instant::now() < deadline, "not all VM threads: {seen:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let runner = gettid();
    let exit = vm.run(&mut timeline).unwrap();
    let (seen, observer_tid) = observer.join().unwrap();
    assert_eq!(
        exit.status,
        Some(i32::from(RELEASE_STATUS)),
        "the guest read the byte"
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
    for name in VM_THREADS.iter().chain(&["vmc-vm-launcher"]) {
        assert_eq!(mode_of(&seen, name), 2, "{name}: {seen:?}");
    }
    assert_eq!(
        seen[&runner].seccomp, 0,
        "the thread that called Vm::run only waits: it stays unconfined, {seen:?}"
    );
    assert_eq!(
        seen[&observer].seccomp, 0,
        "a thread started before the VM is not confined"
    );
    // What the VMM's filters forbid (new processes) still works in the thread that ran the VM:
    // a `vmc bench` builds the next image's disk with mkfs.erofs, or starts a container.
    let spawned = std::process::Command::new("true").status();
    assert!(
        spawned.as_ref().is_ok_and(|status| status.success()),
        "a process started after the VM: {spawned:?}"
    );
}

#[test]
fn an_unconfined_vm_has_no_filters() {
    if !kvm_or_skip() {
        return;
    }
    let (seen, runner, _) = threads_of_a_running_vm(VmmSeccomp::Unconfined);
    for name in VM_THREADS {
        assert_eq!(mode_of(&seen, name), 0, "{name}: {seen:?}");
    }
    assert_eq!(seen[&runner].seccomp, 0, "{seen:?}");
}
