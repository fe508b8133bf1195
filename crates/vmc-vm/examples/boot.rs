//! Development tool: boots a kernel with the VMM and prints the run's timeline.
//!
//! `cargo run -p vmc-vm --example boot -- KERNEL [--initrd FILE]... [--disk FILE]...
//!  [--disk-ro FILE]... [--memory MIB] [--cpus N] [--cmdline TEXT] [--quiet] [--unconfined]`
//!
//! The console is shown unless `--quiet`; `--unconfined` runs the VMM without its seccomp
//! filters. Disks become /dev/vda, /dev/vdb, … in the order given (`--disk-ro`: read-only). Used inside scripts/kvm-sandbox style L1 hosts to
//! check the boot path against a real Linux guest. (Console input needs vmc-init, which
//! tells the VMM when to start forwarding it: use `vmc run -i`.)

use std::path::PathBuf;
use std::time::Instant;
use vmc_runtime::Timeline;
use vmc_vm::kernel::KernelImage;
use vmc_vm::{DiskConfig, Vm, VmConfig, VmmSeccomp};

fn main() {
    let origin = Instant::now();
    let mut args = std::env::args().skip(1);
    let (mut memory_mib, mut vcpus, mut kernel) = (256u64, 1u8, None);
    let (mut initrd, mut disks) = (Vec::new(), Vec::new());
    let mut cmdline = String::from("console=ttyS0 reboot=k panic=-1");
    let (mut console, mut seccomp) = (true, VmmSeccomp::Confined);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--initrd" => initrd.push(value().into()),
            "--disk" | "--disk-ro" => disks.push(DiskConfig {
                read_only: arg == "--disk-ro",
                path: value().into(),
            }),
            "--memory" => memory_mib = value().parse().unwrap_or_else(|_| usage("--memory MIB")),
            "--cpus" => vcpus = value().parse().unwrap_or_else(|_| usage("--cpus N")),
            "--cmdline" => cmdline = value(),
            "--quiet" => console = false,
            "--unconfined" => seccomp = VmmSeccomp::Unconfined,
            path if !path.starts_with("--") => kernel = Some(PathBuf::from(path)),
            other => usage(&format!("unknown option {other}")),
        }
    }
    let kernel = kernel.unwrap_or_else(|| usage("no kernel given"));
    let kernel = KernelImage::inspect(&kernel).unwrap_or_else(|err| usage(&err.to_string()));
    let config = VmConfig {
        memory_bytes: memory_mib << 20,
        vcpus,
        kernel,
        initrd,
        cmdline,
        console,
        vsock: None,
        seccomp,
        disks,
        boot_timeout: None,
    };
    let mut timeline = Timeline::starting_at(origin);
    let mut recent_console = String::new();
    let result = Vm::create(&config, &mut timeline).and_then(|mut vm| {
        let result = vm.run(&mut timeline);
        recent_console = vm.recent_console_output();
        result
    });
    eprintln!("--- timeline (ms since start)");
    for mark in timeline.marks() {
        eprintln!(
            "{:>10.3}  [{}]",
            mark.at.as_secs_f64() * 1000.0,
            mark.milestone.label()
        );
    }
    for step in timeline.steps() {
        eprintln!("{:>10.3}  {}", step.at.as_secs_f64() * 1000.0, step.what);
    }
    match result {
        Ok(exit) => {
            if exit.status.is_none() && !config.console {
                eprintln!("--- no status reported; recent console output:\n{recent_console}");
            }
            eprintln!("--- VM ended: {exit:?}");
        }
        Err(err) => {
            eprintln!("--- error: {err}");
            std::process::exit(1);
        }
    }
}

/// Prints the usage with `problem` and exits.
fn usage(problem: &str) -> ! {
    eprintln!("{problem}\nusage: boot KERNEL [--initrd FILE]... [--disk FILE | --disk-ro FILE]... [--memory MIB] [--cpus N] [--cmdline TEXT] [--quiet]");
    std::process::exit(2)
}
