//! virtio-mmio on this host's KVM: a tiny guest (tests/guests/virtio_mmio_ids.S) reads the
//! registers of the VM's first virtio device (a virtio-blk disk) through real MMIO exits,
//! and finds the device's parameter on its kernel command line.

mod common;

use common::{build_guest, config, kvm_or_skip, timeline};
use vmc_vm::{DiskConfig, Vm, VmError};

#[test]
fn a_guest_reads_the_virtio_mmio_identification_registers() {
    if !kvm_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kernel = build_guest("virtio_mmio_ids", dir.path());
    let disk = dir.path().join("disk.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(3 << 20)
        .unwrap();
    let mut config = config(kernel, 64, 1, "console=ttyS0");
    config.disks.push(DiskConfig {
        path: disk.clone(),
        read_only: true,
    });
    let mut timeline = timeline();
    let mut vm = Vm::create(&config, &mut timeline).unwrap();
    let exit = vm.run(&mut timeline).unwrap();
    let output = vm.recent_console_output();
    assert_eq!(exit.status, Some(0), "{output}");
    for line in [
        "magic 0x0000000074726976\n",
        "version 0x0000000000000002\n",
        "device 0x0000000000000002\n",
        "capacity 0x0000000000001800\n",
        "status 0x0000000000000001\n",
        "cmdline console=ttyS0 virtio_mmio.device=4K@0xd0000000:5\n",
    ] {
        assert!(output.contains(line), "no {line:?} in {output}");
    }
    let steps: Vec<&str> = timeline.steps().iter().map(|s| s.what.as_str()).collect();
    let disk_step = format!(
        "virtio-blk vda: {} (3 MiB, read-only), MMIO 0xd0000000, GSI 5",
        disk.display()
    );
    assert!(steps.contains(&disk_step.as_str()), "{steps:?}");
}

#[test]
fn a_missing_disk_is_refused_before_the_vm_exists() {
    if !kvm_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kernel = build_guest("virtio_mmio_ids", dir.path());
    let mut config = config(kernel, 64, 1, "");
    let missing = dir.path().join("missing.img");
    config.disks.push(DiskConfig {
        path: missing.clone(),
        read_only: false,
    });
    let mut timeline = timeline();
    let Err(err) = Vm::create(&config, &mut timeline) else {
        panic!("a VM with a missing disk was created");
    };
    assert!(matches!(err, VmError::DiskUnreadable { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot open disk {}: ", missing.display())),
        "{err}"
    );
    assert!(
        timeline.steps().iter().all(|s| s.what != "KVM_CREATE_VM"),
        "no VM was created"
    );
}
