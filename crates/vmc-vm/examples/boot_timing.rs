//! Benchmark (not a test): how long the VMM takes to set a VM up and to get the guest's
//! first instruction and first exit, measured with the `mp_count` test guest (64-bit entry,
//! one `outl` to the exit device, i8042 reset) on this host's KVM.
//!
//! Run: `cargo run --release -p vmc-vm --example boot_timing [-- RUNS [MEMORY_MIB [VCPUS]]
//! [--unconfined]]` (`--unconfined`: without the VMM's seccomp filters).
//! Needs /dev/kvm and the system `as` and `ld`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use vmc_runtime::{Milestone, Timeline};
use vmc_vm::kernel::KernelImage;
use vmc_vm::{Vm, VmConfig, VmmSeccomp};

fn main() {
    let unconfined = std::env::args().any(|a| a == "--unconfined");
    let mut args = std::env::args()
        .skip(1)
        .filter(|a| a != "--unconfined")
        .map(|a| a.parse::<u64>().expect("numeric argument"));
    let runs = args.next().unwrap_or(20) as usize;
    let memory_mib = args.next().unwrap_or(256);
    let vcpus = args.next().unwrap_or(1) as u8;
    if let Err(err) = vmc_vm::open_kvm() {
        eprintln!("SKIPPED: {err}");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let kernel = assemble_guest(dir.path());
    let config = VmConfig {
        memory_bytes: memory_mib << 20,
        vcpus,
        kernel: KernelImage::inspect(&kernel).expect("the assembled guest is a kernel"),
        initrd: Vec::new(),
        cmdline: "console=ttyS0 panic=-1".into(),
        console: false,
        vsock: None,
        seccomp: if unconfined {
            VmmSeccomp::Unconfined
        } else {
            VmmSeccomp::Confined
        },
        disks: Vec::new(),
        boot_timeout: None,
    };

    let mut create = Vec::new();
    let mut to_entry = Vec::new();
    let mut to_first_exit = Vec::new();
    let mut whole_run = Vec::new();
    let mut overhead_kib = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let mut timeline = Timeline::starting_at(start);
        let mut vm = Vm::create(&config, &mut timeline).expect("create the VM");
        let exit = vm.run(&mut timeline).expect("run the VM");
        let ended = start.elapsed();
        assert_eq!(
            exit.status,
            Some(i32::from(vcpus)),
            "guest counted its vCPUs"
        );
        let ready = timeline.offset_of(Milestone::RuntimeReady).expect("ready");
        let entry = timeline
            .offset_of(Milestone::KernelEntry)
            .expect("kernel entry");
        let first_exit = timeline
            .steps()
            .iter()
            .find(|s| s.what.starts_with("first guest exit"))
            .expect("first exit step")
            .at;
        create.push(ready);
        to_entry.push(entry - ready);
        to_first_exit.push(first_exit - ready);
        whole_run.push(ended);
        let hosts: Vec<_> = vm.ram_regions().into_iter().map(|r| r.host).collect();
        let guest = vmc_vm::memory::resident_bytes(&hosts).expect("mincore");
        overhead_kib.push(rss_bytes().saturating_sub(guest) / 1024);
        if overhead_kib.len() == 1 {
            println!("first run's trace:");
            for step in timeline.steps() {
                println!(
                    "  {:>9.3} ms  {}",
                    step.at.as_secs_f64() * 1000.0,
                    step.what
                );
            }
            println!(
                "guest RAM: {memory_mib} MiB reserved, {} KiB resident after the run",
                guest / 1024
            );
        }
    }
    println!(
        "{runs} runs, {memory_mib} MiB, {vcpus} vCPU(s), seccomp {:?}; min / median / max",
        config.seccomp
    );
    report("VMM setup (Vm::create -> runtime ready)", &mut create);
    report(
        "ready -> guest's first instruction (vCPU 0 KVM_RUN)",
        &mut to_entry,
    );
    report(
        "ready -> guest's first exit (outl to 0x604)",
        &mut to_first_exit,
    );
    report(
        "whole run (create + boot + reset + teardown of vCPUs)",
        &mut whole_run,
    );
    overhead_kib.sort();
    println!(
        "  {:<55} {} / {} / {} KiB",
        "process RSS - resident guest RAM",
        overhead_kib[0],
        overhead_kib[overhead_kib.len() / 2],
        overhead_kib[overhead_kib.len() - 1]
    );
    let probe = vmc_vm::probe::probe();
    println!("  {:<55} {:?}", "KVM capability probe", probe.elapsed);
}

/// Prints min / median / max of `samples`.
fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "  {what:<55} {:.3} / {:.3} / {:.3} ms",
        ms(samples[0]),
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() - 1])
    );
}

/// This process's resident set size.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("statm RSS");
    pages * 4096
}

/// Assembles `tests/guests/mp_count.S` into an ELF guest kernel in `dir`.
fn assemble_guest(dir: &Path) -> std::path::PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests/mp_count.S");
    let object = dir.join("guest.o");
    let elf = dir.join("guest.elf");
    let assembled = Command::new("as")
        .arg("--64")
        .arg("-o")
        .arg(&object)
        .arg(&source)
        .status();
    assert!(
        assembled.is_ok_and(|s| s.success()),
        "as failed on {}",
        source.display()
    );
    let linked = Command::new("ld")
        .args([
            "-m",
            "elf_x86_64",
            "-static",
            "-nostdlib",
            "-Ttext=0x200000",
            "-e",
            "_start",
            "-o",
        ])
        .arg(&elf)
        .arg(&object)
        .status();
    assert!(linked.is_ok_and(|s| s.success()), "ld failed");
    elf
}
