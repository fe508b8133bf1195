//! Hostile and mistaken inputs get one clear line naming the problem and the fix.

mod common;

use common::{build_guest, config, kvm_or_skip, timeline};
use std::path::{Path, PathBuf};
use vmc_vm::kernel::KernelImage;
use vmc_vm::{Vm, VmError};

/// The error reading the headers of the kernel at `path` gives.
fn inspect_error(path: &Path) -> VmError {
    match KernelImage::inspect(path) {
        Ok(kernel) => panic!("{kernel:?} was taken for a kernel"),
        Err(err) => err,
    }
}

fn create_error(config: vmc_vm::VmConfig) -> VmError {
    match Vm::create(&config, &mut timeline()) {
        Ok(_) => panic!("{config:?} was accepted"),
        Err(err) => err,
    }
}

#[test]
fn text_file_is_not_a_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vmlinux");
    std::fs::write(&path, "#!/bin/sh\necho not a kernel\n").unwrap();
    let err = inspect_error(&path);
    assert!(
        matches!(&err, VmError::NotAKernel(p) if *p == path),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .contains("neither an x86-64 ELF vmlinux nor a bzImage"));
}

#[test]
fn host_program_is_not_a_kernel() {
    let err = inspect_error(Path::new("/bin/true"));
    assert!(matches!(err, VmError::NotAKernel(_)), "{err:?}");
}

#[test]
fn truncated_bzimage_header_is_not_a_kernel() {
    if !kvm_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bzImage");
    let mut image = vec![0u8; 0x300];
    image[0x202..0x206].copy_from_slice(b"HdrS"); // magic, but protocol version 0 and no flags
    std::fs::write(&path, image).unwrap();
    let err = create_error(config(path, 64, 1, ""));
    assert!(matches!(err, VmError::NotAKernel(_)), "{err:?}");
}

#[test]
fn missing_kernel_names_the_path_and_the_fix() {
    let err = inspect_error(Path::new("/nonexistent/vmlinux"));
    assert_eq!(
        err.to_string(),
        "guest kernel /nonexistent/vmlinux not found: build one with kernels/build.sh or pass --kernel PATH"
    );
}

#[test]
fn memory_and_vcpu_limits() {
    if !kvm_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kernel = build_guest("boot_report", dir.path());
    let err = create_error(config(kernel.clone(), 8, 1, ""));
    assert!(matches!(err, VmError::MemoryTooSmall { .. }), "{err:?}");
    let err = create_error(config(kernel.clone(), 1 << 30, 1, ""));
    assert!(matches!(err, VmError::MemoryTooLarge { .. }), "{err:?}");
    let err = create_error(config(kernel.clone(), 64, 0, ""));
    assert!(matches!(err, VmError::NoVcpus), "{err:?}");
    let err = create_error(config(kernel, 64, 255, ""));
    assert!(matches!(err, VmError::TooManyVcpus { .. }), "{err:?}");
}

#[test]
fn kernel_larger_than_memory_is_rejected() {
    if !kvm_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let object = dir.path().join("big.o");
    let kernel = dir.path().join("big.elf");
    // A 40 MiB loadable segment at 2 MiB does not fit in 32 MiB of RAM.
    std::fs::write(
        dir.path().join("big.S"),
        ".globl _start\n_start: hlt\n.fill 40*1024*1024, 1, 0x90\n",
    )
    .unwrap();
    let ok = std::process::Command::new("as")
        .arg("--64")
        .arg("-o")
        .arg(&object)
        .arg(dir.path().join("big.S"))
        .status()
        .unwrap()
        .success()
        && std::process::Command::new("ld")
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
            .arg(&kernel)
            .arg(&object)
            .status()
            .unwrap()
            .success();
    assert!(ok, "assembling the big guest failed");
    let err = create_error(config(kernel, 32, 1, ""));
    assert!(
        matches!(err, VmError::KernelTooLarge { memory_mib: 32, .. }),
        "{err:?}"
    );
}

#[test]
fn initrd_problems() {
    if !kvm_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kernel = build_guest("boot_report", dir.path());
    let mut missing = config(kernel.clone(), 64, 1, "");
    missing.initrd = vec![PathBuf::from("/nonexistent/initrd.cpio")];
    let err = create_error(missing);
    assert!(matches!(err, VmError::InitrdUnreadable { .. }), "{err:?}");

    let big = dir.path().join("big.cpio");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(100 << 20)
        .unwrap();
    let mut too_big = config(kernel, 64, 1, "");
    too_big.initrd = vec![big];
    let err = create_error(too_big);
    assert!(
        matches!(err, VmError::InitrdTooLarge { size_mib: 100 }),
        "{err:?}"
    );
}

#[test]
fn overlong_command_line_is_rejected() {
    if !kvm_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kernel = build_guest("boot_report", dir.path());
    let err = create_error(config(kernel, 64, 1, &"x".repeat(4096)));
    assert!(
        matches!(
            err,
            VmError::BadCmdline {
                len: 4096,
                max: 2047
            }
        ),
        "{err:?}"
    );
}
