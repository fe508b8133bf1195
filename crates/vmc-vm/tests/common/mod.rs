//! Shared helpers for the tests that boot assembly guests on this host's KVM.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use vmc_runtime::Timeline;
use vmc_vm::kernel::KernelImage;
use vmc_vm::{VmConfig, VmmSeccomp};

/// Whether KVM is usable here; prints why not (the caller then returns: the test is skipped).
pub fn kvm_or_skip() -> bool {
    match vmc_vm::open_kvm() {
        Ok(_) => true,
        Err(err) => {
            eprintln!("SKIPPED: {err}");
            false
        }
    }
}

/// Assembles `tests/guests/<name>.S` (which may `.include` the shared `report.inc`) with the
/// system `as` and links it with `ld` into an
/// x86-64 ELF executable at 2 MiB: a "kernel" linux-loader's ELF loader accepts.
pub fn build_guest(name: &str, dir: &Path) -> PathBuf {
    let guests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests");
    let source = guests.join(format!("{name}.S"));
    let object = dir.join(format!("{name}.o"));
    let elf = dir.join(format!("{name}.elf"));
    run(Command::new("as")
        .arg("--64")
        .arg("-I")
        .arg(&guests)
        .arg("-o")
        .arg(&object)
        .arg(&source));
    run(Command::new("ld")
        .args([
            "-m",
            "elf_x86_64",
            "-static",
            "-nostdlib",
            "-z",
            "max-page-size=4096",
        ])
        .args(["-Ttext=0x200000", "-e", "_start", "-o"])
        .arg(&elf)
        .arg(&object));
    elf
}

fn run(command: &mut Command) {
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(status.success(), "{command:?} failed: {status}");
}

/// A config for `kernel` (which must be one) with `memory_mib` of RAM and `vcpus` vCPUs,
/// console hidden.
pub fn config(kernel: PathBuf, memory_mib: u64, vcpus: u8, cmdline: &str) -> VmConfig {
    VmConfig {
        memory_bytes: memory_mib << 20,
        vcpus,
        kernel: KernelImage::inspect(&kernel).unwrap(),
        initrd: Vec::new(),
        cmdline: cmdline.to_string(),
        console: false,
        vsock: None,
        seccomp: VmmSeccomp::Confined,
        disks: Vec::new(),
        boot_timeout: None,
    }
}

/// A fresh timeline.
pub fn timeline() -> Timeline {
    Timeline::starting_at(Instant::now())
}
