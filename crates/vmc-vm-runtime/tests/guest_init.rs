//! The image → initramfs → vmc-init path in a real guest kernel, without KVM.
//!
//! QEMU in software emulation boots the guest kernel (kernels/build.sh) with an initramfs made
//! by `vmc_image::initramfs` from a busybox root filesystem and the embedded static vmc-init,
//! and this crate's run archive. QEMU stands in for the VMM's exit device: an `isa-debugcon` at
//! port 0x600 records the milestone bytes, an `isa-debug-exit` at port 0x604 ends QEMU on the
//! status write with exit code `(status << 1) | 1` (so the low 7 bits of the status come back).
//!
//! QEMU has no vsock device without the host's vhost-vsock, so the init here meets a VMM
//! without the host↔guest channel: what it must do then is checked here; the workload's runs
//! over the channel are checked through vmc's own VMM (tests/vm_e2e.sh).

mod common;

use common::run_config;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vmc_image::initramfs::{self, GuestInit};
use vmc_protocol::{RunConfig, INIT_PATH};
use vmc_vm_runtime::embedded_init::write_embedded_init;
use vmc_vm_runtime::run_archive::run_archive;

/// The kernel command line vmc uses, minus what only the real VMM needs.
const CMDLINE: &str = "console=ttyS0 reboot=k panic=-1 rdinit=/vmc/init quiet";
const QEMU: &str = "qemu-system-x86_64";
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// What a boot needs; `None` (after printing why) when this machine lacks a piece.
struct Setup {
    kernel: PathBuf,
    init: PathBuf,
    /// Where the embedded init was written out (removed with the setup).
    _home: tempfile::TempDir,
}

fn setup() -> Option<Setup> {
    let kernel = vmc_runtime::paths::cache_dir().join("kernels/current/vmlinux");
    if !kernel.is_file() {
        eprintln!(
            "SKIPPED: no guest kernel at {} (run kernels/build.sh)",
            kernel.display()
        );
        return None;
    }
    if !Path::new("/bin/busybox").is_file() {
        eprintln!("SKIPPED: no /bin/busybox for the guest's root filesystem (apt-get install busybox-static)");
        return None;
    }
    if Command::new(QEMU).arg("--version").output().is_err() {
        eprintln!("SKIPPED: {QEMU} is not installed (apt-get install qemu-system-x86)");
        return None;
    }
    let home = tempfile::tempdir().unwrap();
    let init = write_embedded_init(home.path()).unwrap();
    Some(Setup {
        kernel,
        init,
        _home: home,
    })
}

/// A busybox root filesystem with every applet linked in /bin.
fn busybox_rootfs(root: &Path) {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
}

/// What one boot showed.
struct Boot {
    /// Everything the guest wrote to its serial console (COM1: the workload's stdout).
    console: String,
    /// The bytes written to port 0x600.
    milestones: Vec<u8>,
    /// The low 7 bits of the status written to port 0x604, if one was written.
    status_low_bits: Option<i32>,
}

fn boot(setup: &Setup, config: &RunConfig) -> Boot {
    let work = tempfile::tempdir().unwrap();
    let rootfs = work.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let image_id = "0".repeat(64);
    let init = GuestInit {
        binary: &setup.init,
        guest_path: INIT_PATH,
    };
    let image = initramfs::cached_image_archive(work.path(), &image_id, &rootfs, init).unwrap();
    let mut initrd = std::fs::read(image).unwrap();
    initrd.extend(run_archive(config));
    let initrd_path = work.path().join("initrd.cpio");
    std::fs::write(&initrd_path, initrd).unwrap();

    let console = work.path().join("console.log");
    let milestones = work.path().join("milestones.bin");
    let mut qemu = Command::new(QEMU)
        .args([
            "-accel",
            "tcg",
            "-machine",
            "pc,acpi=off",
            "-cpu",
            "max",
            "-m",
            "256",
        ])
        .args([
            "-smp",
            "1",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
        ])
        .args(["-no-reboot", "-append", CMDLINE, "-kernel"])
        .arg(&setup.kernel)
        .arg("-initrd")
        .arg(&initrd_path)
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .arg("-chardev")
        .arg(format!("file,id=milestones,path={}", milestones.display()))
        .args(["-device", "isa-debugcon,iobase=0x600,chardev=milestones"])
        .args(["-device", "isa-debug-exit,iobase=0x604,iosize=4"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = qemu.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BOOT_TIMEOUT {
            qemu.kill().unwrap();
            qemu.wait().unwrap();
            let console = std::fs::read_to_string(&console).unwrap_or_default();
            panic!("the guest did not finish within {BOOT_TIMEOUT:?}; console:\n{console}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let code = status.code().expect("QEMU exits normally");
    let text = |path: &Path| String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
    Boot {
        console: text(&console),
        milestones: std::fs::read(&milestones).unwrap(),
        status_low_bits: (code & 1 == 1).then_some(code >> 1),
    }
}

#[test]
fn without_the_channel_the_init_fails_in_one_line_with_125() {
    let Some(setup) = setup() else { return };
    let boot = boot(&setup, &run_config(&["sh", "-c", "echo never runs"]));
    assert_eq!(boot.milestones, [1], "console:\n{}", boot.console);
    assert_eq!(
        boot.status_low_bits,
        Some(125),
        "console:\n{}",
        boot.console
    );
    let complaints: Vec<&str> = boot
        .console
        .lines()
        .filter(|line| line.starts_with("vmc-init:"))
        .collect();
    assert_eq!(complaints.len(), 1, "console:\n{}", boot.console);
    assert!(
        complaints[0]
            .starts_with("vmc-init: connecting the stdout stream to the host (vsock port 1001): ")
            && complaints[0].ends_with(
                "(the guest kernel needs CONFIG_VIRTIO_VSOCKETS, the VMM a vsock device)"
            ),
        "{}",
        complaints[0]
    );
    assert!(!boot.console.contains("never runs"));
}
