//! [`VmRuntime`]: the `Runtime` of VM mode, from the run spec to the workload's outcome.

use crate::cmdline::cmdline;
use crate::disks;
use crate::embedded_init::write_embedded_init;
use crate::error::VmRuntimeError;
use crate::guest_settings::{channel_config, run_config};
use crate::kvm_check::check_kvm_can_run_linux;
use crate::memory_check::{check_fits, GuestFootprint, ImageSize};
use crate::memory_probe::GuestMemoryProbe;
use crate::outcome::outcome_of;
use crate::resources::{guest_memory, vcpu_count};
use crate::run_archive::write_run_archive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use vmc_image::initramfs::{self, GuestInit};
use vmc_runtime::signals::SignalCatcher;
use vmc_runtime::terminal::RawMode;
use vmc_runtime::text::escape_lines;
use vmc_runtime::{
    ExecSpec, ExitOutcome, Milestone, Mode, RunObserver, RunOption, RunSpec, Runtime, RuntimeError,
    SeccompPolicy, Support, Timeline,
};
use vmc_vm::kernel::KernelImage;
use vmc_vm::{Vm, VmConfig, VmmSeccomp};

/// Why `vmc exec` does not reach into a VM yet.
const EXEC_REFUSED: &str =
    "vmc-init cannot start a second command in the guest yet (exec over the host-guest channel is not built): use --mode container";

/// Options only VM mode has.
#[derive(Debug, Default, Clone)]
pub struct VmOptions {
    /// The guest kernel (ELF vmlinux or bzImage); `None`: the one kernels/build.sh built.
    pub kernel: Option<PathBuf>,
    /// Show the guest kernel's console messages.
    pub console: bool,
    /// How long the guest's kernel may take to start the init before the run is stopped;
    /// `None`: [`DEFAULT_BOOT_TIMEOUT`].
    pub boot_timeout: Option<Duration>,
}

/// How long a guest may take to start its init by default: generous, since an emulated or
/// loaded host boots far slower than the second or so it takes on real KVM.
pub const DEFAULT_BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs images as KVM microVMs.
pub struct VmRuntime {
    options: VmOptions,
}

impl VmRuntime {
    /// A VM runtime with the given kernel / console options.
    pub fn new(options: VmOptions) -> Self {
        VmRuntime { options }
    }

    fn boot(
        &self,
        spec: &RunSpec,
        timeline: &mut Timeline,
        observer: &dyn RunObserver,
    ) -> Result<ExitOutcome, VmRuntimeError> {
        let memory_bytes = guest_memory(spec.resources.memory_bytes)?;
        let vcpus = vcpu_count(spec.resources.cpus)?;
        // From here to the guest's start, SIGINT, SIGTERM, SIGHUP or SIGQUIT end the run (its
        // disk builds stop, everything made is removed); later ones wait for the guest (the
        // VM's own catcher takes them over when it runs).
        let signals = SignalCatcher::new().map_err(|errno| vmc_vm::VmError::Host {
            what: "catch the signals that end a setup",
            source: errno.into(),
        })?;
        let home = vmc_runtime::paths::vmc_home();
        let kernel = match &self.options.kernel {
            Some(path) => path.clone(),
            None => vmc_vm::kernel::default_kernel()?,
        };
        // Its headers, read once: for the memory check and for loading it.
        let kernel = KernelImage::inspect(&kernel)?;
        let init = write_embedded_init(&home)?;
        check_guest_fits(memory_bytes, &kernel, &init, timeline)?;
        check_kvm_can_run_linux(&home, timeline)?;
        interruption(&signals)?;
        let guest_init = GuestInit {
            binary: &init,
            guest_path: vmc_protocol::INIT_PATH,
        };
        let init_archive = initramfs::cached_init_archive(&home, guest_init)?;
        std::fs::create_dir_all(&spec.run_dir)
            .map_err(VmRuntimeError::io("create", &spec.run_dir))?;
        // Deletes the scratch disk when dropped: on every return from here on.
        let disks = disks::prepare(&home, spec, timeline, &signals)?;
        let run_archive = spec.run_dir.join("run.cpio");
        write_run_archive(&run_config(spec)?, &run_archive)?;
        timeline.step(format!(
            "initramfs: {} (the guest init, cached) + per-run settings {}",
            init_archive.display(),
            run_archive.display()
        ));
        let config = VmConfig {
            memory_bytes,
            vcpus,
            kernel,
            initrd: vec![init_archive, run_archive.clone()],
            cmdline: cmdline(self.options.console),
            console: self.options.console,
            vsock: Some(channel_config(spec)),
            seccomp: match spec.security.seccomp {
                SeccompPolicy::Unconfined => VmmSeccomp::Unconfined,
                // A profile file is refused for VM mode before the run (`support`).
                SeccompPolicy::Default | SeccompPolicy::Profile(_) => VmmSeccomp::Confined,
            },
            disks: disks.configs.clone(),
            boot_timeout: Some(self.options.boot_timeout.unwrap_or(DEFAULT_BOOT_TIMEOUT)),
        };
        let mut vm = Vm::create(&config, timeline)?;
        interruption(&signals)?;
        // With -t the workload's terminal is in the guest: pass every key through.
        let _raw_terminal = spec.tty.then(RawMode::enter).flatten();
        observer.memory_probe_ready(Arc::new(GuestMemoryProbe {
            regions: vm.ram_regions(),
            reserved_bytes: vm.reserved_memory_bytes(),
        }));
        let exit = vm.run(timeline);
        // The guest's output: shown escaped, it is not the workload's stream.
        let recent_console = escape_lines(&vm.recent_console_output()).into_owned();
        drop(vm);
        drop(disks);
        let _ = std::fs::remove_file(&run_archive);
        timeline.mark(Milestone::TornDown);
        let exit = exit?;
        let status = exit
            .workload_status()
            .ok_or_else(|| VmRuntimeError::NoExitStatus {
                reason: exit.reason,
                console: recent_console.trim_end().to_string(),
            })?;
        outcome_of(status)
    }
}

/// The end of the run if a signal that ends a setup came since the last look.
fn interruption(signals: &SignalCatcher) -> Result<(), VmRuntimeError> {
    signals
        .take_ending()
        .map_or(Ok(()), |interrupted| Err(interrupted.into()))
}

/// Refuses, before the image's disk is built, a guest RAM of `memory_bytes` too small for the
/// kernel and the initramfs of the guest init `init`.
fn check_guest_fits(
    memory_bytes: u64,
    kernel: &KernelImage,
    init: &Path,
    timeline: &mut Timeline,
) -> Result<(), VmRuntimeError> {
    // The image is a disk: in RAM are only the kernel and the init's initramfs.
    let mut initramfs = ImageSize::default();
    let init_bytes = std::fs::metadata(init)
        .map_err(VmRuntimeError::io("inspect", init))?
        .len();
    initramfs.add_file(init_bytes);
    let footprint = GuestFootprint {
        kernel: kernel.memory_range(),
        initramfs_bytes: initramfs.archive_bytes(),
        unpacked_bytes: initramfs.page_bytes,
    };
    timeline.step(format!(
        "memory check: kernel {} MiB, initramfs {} MiB (the guest init; the image is a disk): -m {}m at the least",
        (footprint.kernel.end - footprint.kernel.start).div_ceil(1 << 20),
        footprint.initramfs_bytes.div_ceil(1 << 20),
        footprint.required_bytes() >> 20
    ));
    check_fits(memory_bytes, &footprint)
}

impl Runtime for VmRuntime {
    fn mode(&self) -> Mode {
        Mode::Vm
    }

    fn support(&self, option: RunOption) -> Support {
        match option {
            RunOption::Volumes => Support::Refused(
                "the guest has no shared filesystem (use --mode container)",
            ),
            RunOption::PidsLimit => Support::Refused(
                "the guest kernel has no cgroup limit set (use --mode container)",
            ),
            RunOption::HostNetwork => Support::Refused(
                "the guest has only loopback (use --mode container)",
            ),
            RunOption::Capabilities | RunOption::Privileged => Support::Refused(
                "capabilities confine a container's workload; in a VM the workload is root of its own kernel (use --mode container)",
            ),
            RunOption::SeccompProfile => Support::Refused(
                "a Docker seccomp profile filters a container's workload; the VMM has its own filters (use --mode container, or seccomp=unconfined to turn the VMM's off)",
            ),
            RunOption::NoNewPrivileges => Support::Refused(
                "vmc-init does not set no_new_privs in the guest (use --mode container)",
            ),
            RunOption::Detach => Support::Refused(
                "the VM runtime does not report its workload's start to a supervisor yet (run it attached, or use --mode container)",
            ),
            RunOption::Exec => Support::Refused(EXEC_REFUSED),
            RunOption::Kernel
            | RunOption::Console
            | RunOption::BootTimeout
            | RunOption::SeccompUnconfined => Support::Honoured,
        }
    }

    fn run(
        &self,
        spec: &RunSpec,
        timeline: &mut Timeline,
        observer: &dyn RunObserver,
    ) -> Result<ExitOutcome, RuntimeError> {
        self.boot(spec, timeline, observer)
            .map_err(|err| match err.interrupted() {
                // The CLI tells an interrupted setup from a failed one by this type.
                Some(interrupted) => Box::new(interrupted) as RuntimeError,
                None => Box::new(err) as RuntimeError,
            })
    }

    fn exec(
        &self,
        _id: &str,
        _run_dir: &Path,
        _exec: &ExecSpec,
    ) -> Result<ExitOutcome, RuntimeError> {
        Err(Box::new(VmRuntimeError::Unsupported(EXEC_REFUSED)))
    }

    fn cleanup(&self, _id: &str, _run_dir: &Path) -> Result<(), RuntimeError> {
        // A VM lives and dies with its vmc process: nothing outlives it but the run
        // directory, which the run store removes with the record.
        Ok(())
    }
}
