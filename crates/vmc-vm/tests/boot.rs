//! Boots assembly test guests through the same direct 64-bit boot path Linux uses, on this
//! host's KVM (tiny guests that only do port I/O and memory accesses run here).

mod common;

use common::{build_guest, config, kvm_or_skip, timeline};
use vmc_protocol::exit_device::WorkloadStatus;
use vmc_runtime::Milestone;
use vmc_vm::{ExitReason, Vm, VmError};

#[test]
fn guest_reads_boot_params_reports_status_and_resets() {
    if !kvm_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kernel = build_guest("boot_report", dir.path());
    let cmdline = "console=ttyS0 panic=-1 hello=world";
    let mut timeline = timeline();
    let mut vm = Vm::create(&config(kernel, 64, 1, cmdline), &mut timeline).unwrap();
    assert_eq!(vm.reserved_memory_bytes(), 64 << 20);
    assert_eq!(vm.vcpu_count(), 1);
    let exit = vm.run(&mut timeline).unwrap();

    assert_eq!(exit.reason, ExitReason::Reset);
    assert_eq!(exit.status, Some(42));
    assert_eq!(exit.workload_status(), Some(WorkloadStatus::Exited(42)));
    let output = vm.recent_console_output();
    assert!(
        output.contains("e820 total 0x0000000004000000\n"),
        "{output}"
    );
    let usable = (64u64 << 20) - (0x100000 - 0x9fc00);
    assert!(
        output.contains(&format!("e820 ram {usable:#018x}\n")),
        "{output}"
    );
    assert!(output.contains(&format!("cmdline {cmdline}\n")), "{output}");

    let order: Vec<Milestone> = timeline.marks().iter().map(|m| m.milestone).collect();
    assert_eq!(
        order,
        [
            Milestone::VmcStart,
            Milestone::RuntimeReady,
            Milestone::KernelEntry,
            Milestone::InitStarted,
            Milestone::WorkloadExec,
            Milestone::WorkloadExit,
        ]
    );
    let steps: Vec<&str> = timeline.steps().iter().map(|s| s.what.as_str()).collect();
    assert!(steps.contains(&"KVM_CREATE_VM"), "{steps:?}");
    assert!(steps.contains(&"guest RAM mapped: 64 MiB"), "{steps:?}");
    assert!(
        steps.contains(&"kernel loaded: vmlinux ELF, entry 0x200000"),
        "{steps:?}"
    );
    assert!(
        steps.contains(&"vCPU 0 registers set (64-bit long mode)"),
        "{steps:?}"
    );
}

#[test]
fn guest_memory_is_exactly_what_was_asked_and_resident_only_when_touched() {
    if !kvm_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kernel = build_guest("boot_report", dir.path());
    let mut timeline = timeline();
    let mut vm = Vm::create(&config(kernel, 128, 1, ""), &mut timeline).unwrap();
    let regions = vm.ram_regions();
    assert_eq!(regions.len(), 1);
    assert_eq!(regions[0].guest, 0..128 << 20);
    assert_eq!(regions[0].host.len(), 128 << 20);
    vm.run(&mut timeline).unwrap();
    let hosts: Vec<_> = regions.into_iter().map(|r| r.host).collect();
    let resident = vmc_vm::memory::resident_bytes(&hosts).unwrap();
    assert!(resident > 0, "the guest touched its page tables and image");
    assert!(resident < 16 << 20, "{resident} bytes resident of 128 MiB");
}

#[test]
fn access_beyond_memory_is_a_clear_error() {
    if !kvm_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kernel = build_guest("outside_ram", dir.path());
    let mut timeline = timeline();
    let mut vm = Vm::create(&config(kernel, 64, 1, ""), &mut timeline).unwrap();
    let err = vm.run(&mut timeline).unwrap_err();
    assert!(
        matches!(
            err,
            VmError::OutsideRam {
                addr: 0x800_0000,
                memory_mib: 64,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("0x8000000") && text.contains("64 MiB") && text.contains("--memory"),
        "{text}"
    );
}

#[test]
fn several_vcpus_are_listed_in_the_mp_table_and_stopped_at_reset() {
    if !kvm_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kernel = build_guest("mp_count", dir.path());
    for vcpus in [1u8, 4] {
        let mut timeline = timeline();
        let mut vm = Vm::create(&config(kernel.clone(), 64, vcpus, ""), &mut timeline).unwrap();
        let exit = vm.run(&mut timeline).unwrap();
        assert_eq!(exit.status, Some(i32::from(vcpus)));
        assert_eq!(exit.reason, ExitReason::Reset);
    }
}

#[test]
fn vm_runs_only_once() {
    if !kvm_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kernel = build_guest("boot_report", dir.path());
    let mut timeline = timeline();
    let mut vm = Vm::create(&config(kernel, 64, 1, ""), &mut timeline).unwrap();
    vm.run(&mut timeline).unwrap();
    assert!(matches!(vm.run(&mut timeline), Err(VmError::AlreadyRan)));
}

#[test]
fn initrd_parts_are_concatenated_high_in_memory() {
    if !kvm_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kernel = build_guest("boot_report", dir.path());
    let first = dir.path().join("a.cpio");
    let second = dir.path().join("b.cpio");
    std::fs::write(&first, [0xaau8; 4097]).unwrap();
    std::fs::write(&second, [0xbbu8; 100]).unwrap();
    let mut config = config(kernel, 64, 1, "");
    config.initrd = vec![first, second];
    let mut timeline = timeline();
    Vm::create(&config, &mut timeline).unwrap();
    let step = timeline
        .steps()
        .iter()
        .find(|s| s.what.starts_with("initrd loaded"))
        .expect("an initrd step");
    // 4097 padded to 4100, + 100 = 4200 bytes (5 KiB rounded up), page-aligned below 64 MiB.
    assert_eq!(step.what, "initrd loaded: 2 parts, 5 KiB at 0x3ffe000");
}

#[test]
fn the_initrd_copy_is_billed_to_its_own_step() {
    if !kvm_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kernel = build_guest("boot_report", dir.path());
    let initrd = dir.path().join("big.cpio");
    std::fs::write(&initrd, vec![0x5a; 32 << 20]).unwrap();
    let mut config = config(kernel, 128, 1, "");
    config.initrd = vec![initrd];
    let mut timeline = timeline();
    Vm::create(&config, &mut timeline).unwrap();
    let steps = timeline.steps();
    let index = |prefix: &str| {
        steps
            .iter()
            .position(|s| s.what.starts_with(prefix))
            .unwrap_or_else(|| panic!("no step {prefix:?} in {steps:?}"))
    };
    let kernel_loaded = index("kernel loaded");
    let initrd_loaded = index("initrd loaded");
    let boot_structures = index("boot_params");
    assert_eq!(
        [initrd_loaded, boot_structures],
        [kernel_loaded + 1, kernel_loaded + 2],
        "{steps:?}"
    );
    // Each step is recorded when it ends: copying 32 MiB takes far longer than writing the
    // few KiB of boot structures that follow it.
    let copy = steps[initrd_loaded].at - steps[kernel_loaded].at;
    let structures = steps[boot_structures].at - steps[initrd_loaded].at;
    assert!(
        copy > structures * 4,
        "initrd copy {copy:?}, boot structures {structures:?}"
    );
}

#[test]
fn panic_on_the_console_then_reset_is_reported_as_a_kernel_panic() {
    if !kvm_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kernel = build_guest("panic", dir.path());
    let mut timeline = timeline();
    let mut vm = Vm::create(&config(kernel, 64, 1, ""), &mut timeline).unwrap();
    let err = vm.run(&mut timeline).unwrap_err();
    assert_eq!(
        err.to_string(),
        "guest kernel panicked: Kernel panic - not syncing: VFS: Unable to mount root fs"
    );
}

#[test]
fn guest_exception_without_idt_is_an_error_naming_the_rip() {
    if !kvm_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kernel = build_guest("fault", dir.path());
    let mut timeline = timeline();
    let mut vm = Vm::create(&config(kernel, 64, 1, ""), &mut timeline).unwrap();
    let err = vm.run(&mut timeline).unwrap_err();
    match err {
        // This host's KVM: stopped at the int3 itself.
        VmError::InternalError { rip, .. } => assert_eq!(rip, 0x200000, "{err}"),
        // Full KVM: the triple fault happens while delivering the exception.
        VmError::TripleFault { .. } => {}
        other => panic!("unexpected error: {other}"),
    }
    assert!(err.to_string().contains("RIP 0x"), "{err}");
}
