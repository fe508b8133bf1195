//! vmc-init: PID 1 of a vmc microVM.
//!
//! Reports "init started" to the VMM's exit device, mounts the pseudo filesystems, reads the
//! per-run settings from `/vmc/run.json`, reports a kernel that lacks a driver the run needs
//! (`kernel_check`), switches root into the image's disks if the run has
//! them (`disk_root`), applies the settings (host name, `/etc` files), connects the host↔guest channel's streams
//! (vsock), runs the workload with its stdio on them (or on a pseudo-terminal relayed to them
//! for a `-t` run), waits for its output to reach the host, reports its exit status and
//! resets the VM (the kernel needs `reboot=k` so the reset goes
//! through the i8042 controller the VMM watches). Build it statically with
//! scripts/build-vmc-init.sh.

mod channel;
mod console;
mod disk_root;
mod error;
mod etc_files;
mod exit_device;
mod kernel_check;
mod loopback;
mod memory;
mod mounts;
mod relay;
mod stdio;
mod supervise;
mod terminal;

use error::InitError;
use exit_device::ExitDevice;
use nix::unistd::sethostname;
use vmc_protocol::exit_device::{BootMilestone, WorkloadStatus, INIT_FAILED};
use vmc_protocol::{RunConfig, RUN_CONFIG_PATH};

fn main() {
    let device = match ExitDevice::open() {
        Ok(device) => device,
        Err(err) => {
            eprintln!("vmc-init: {err}");
            reset_vm();
        }
    };
    device.milestone(BootMilestone::InitStarted);
    let status = boot_and_run(&device).unwrap_or_else(|err| {
        eprintln!("vmc-init: {err}");
        INIT_FAILED
    });
    device.status(status);
    device.milestone(BootMilestone::WorkloadExited);
    reset_vm();
}

/// Sets up the guest, then runs the workload to completion.
fn boot_and_run(device: &ExitDevice) -> Result<WorkloadStatus, InitError> {
    mounts::mount_pseudo_filesystems()?;
    // Kernel messages below emergency level (an OOM kill's report, say) would otherwise reach
    // vmc's stdout among the workload's output; a panic still shows.
    quiet_kernel_console_to(ONLY_EMERGENCIES);
    console::reopen()?;
    let config = take_run_config()?;
    let missing = kernel_check::missing_drivers(std::path::Path::new("/"), config.root_disks);
    if !missing.is_empty() {
        // The host names the missing options: nothing to print here.
        return Ok(WorkloadStatus::KernelLacks(missing));
    }
    if config.root_disks {
        disk_root::switch_to_disk_root()?;
    }
    if !config.hostname.is_empty() {
        sethostname(&config.hostname).map_err(InitError::Hostname)?;
    }
    etc_files::write_etc_files(std::path::Path::new("/etc"), &config.etc_files)?;
    loopback::bring_up_loopback()?;
    mounts::create_dir(&config.workdir, 0o755)?;
    let channel = channel::Channel::open(&config)?;
    let oom_kills = memory::OomKills::count_from_now();
    memory::overcommit_like_a_container();
    let status = supervise::run_workload(&config, device, channel)?;
    Ok(oom_kills.classify(status))
}

/// Reads the per-run settings and removes them, so the workload cannot see its own secrets
/// (environment values) in a file.
fn take_run_config() -> Result<RunConfig, InitError> {
    let bytes = std::fs::read(RUN_CONFIG_PATH).map_err(|source| InitError::ReadConfig {
        path: RUN_CONFIG_PATH,
        source,
    })?;
    std::fs::remove_file(RUN_CONFIG_PATH).map_err(|source| InitError::Fs {
        action: "removing",
        path: RUN_CONFIG_PATH.into(),
        source,
    })?;
    Ok(RunConfig::from_json(&bytes)?)
}

/// Resets the VM; the VMM ends the run when it sees the reset. Nothing is synced first:
/// nothing the guest writes outlives it (the initramfs and tmpfs are RAM, the image disk is
/// read-only and the scratch disk is deleted after the run), so writing dirty pages back would
/// only delay the end.
fn reset_vm() -> ! {
    // The kernel's "reboot: Restarting system" is an emergency-level message: off too.
    quiet_kernel_console_to(NO_MESSAGES);
    // SAFETY: reboot takes a plain command code; RB_AUTOBOOT does not return on success.
    let rc = unsafe { libc::reboot(libc::RB_AUTOBOOT) };
    eprintln!(
        "vmc-init: resetting the VM failed: {}",
        nix::errno::Errno::last()
    );
    // PID 1 exiting makes the kernel panic; with `panic=-1` the panic resets the VM.
    std::process::exit(rc)
}

/// Console log level that lets only emergency messages (a panic) through.
const ONLY_EMERGENCIES: &str = "1";

/// Console log level that lets no kernel message through.
const NO_MESSAGES: &str = "0";

/// With `quiet` on the kernel command line, sets the kernel's console log level to `level`
/// (best effort: if it fails, the only cost is kernel lines on the console).
fn quiet_kernel_console_to(level: &str) {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    if is_quiet(&cmdline) {
        let _ = std::fs::write("/proc/sys/kernel/printk", level);
    }
}

/// Whether a kernel command line asks for a quiet console.
fn is_quiet(cmdline: &str) -> bool {
    cmdline.split_whitespace().any(|word| word == "quiet")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_is_a_whole_word_of_the_command_line() {
        assert!(is_quiet("console=ttyS0 reboot=k rdinit=/vmc/init quiet\n"));
        assert!(!is_quiet("console=ttyS0 quietly=1"));
        assert!(!is_quiet(""));
    }
}
