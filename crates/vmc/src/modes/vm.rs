//! VM mode: an image becomes an initramfs that a KVM microVM boots with `vmc-init` as PID 1.

use super::ModeOptions;
use anyhow::{anyhow, bail, Context};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vmc_image::initramfs;
use vmc_init::{RunConfig, TerminalSize};
use vmc_runtime::env::workload_env;
use vmc_runtime::terminal::{window_size, RawMode};
use vmc_runtime::text::escape_lines;
use vmc_runtime::user::home_for;
use vmc_runtime::{
    memory::process_rss_bytes, ExitOutcome, MemoryProbe, MemoryReading, Milestone, Mode,
    RunObserver, RunOption, RunSpec, Runtime, RuntimeError, SeccompPolicy, Support, Timeline,
};
use vmc_vm::config::MIN_MEMORY_BYTES;
use vmc_vm::probe::Verdict;
use vmc_vm::{RamRegion, Vm, VmConfig, VmmSeccomp, VsockConfig};

/// The static guest init, built and embedded by build.rs.
const EMBEDDED_INIT: &[u8] = include_bytes!(env!("VMC_INIT_EMBEDDED"));

/// The SHA-256 of [`EMBEDDED_INIT`] (hex), computed by build.rs.
const EMBEDDED_INIT_SHA256: &str = env!("VMC_INIT_SHA256");

/// Guest RAM when `--memory` is not given.
pub const DEFAULT_MEMORY_BYTES: u64 = 256 << 20;

/// The kernel command line: serial console, reset through the i8042 on reboot, reboot at
/// once on panic, our init, and no kernel chatter unless `--console`.
const BASE_CMDLINE: &str = "console=ttyS0 reboot=k panic=-1 rdinit=/vmc/init";

/// Runs images as KVM microVMs.
pub struct VmRuntime {
    options: ModeOptions,
}

impl VmRuntime {
    /// A VM runtime with the given kernel / console options.
    pub fn new(options: ModeOptions) -> Self {
        VmRuntime { options }
    }

    fn boot(
        &self,
        spec: &RunSpec,
        timeline: &mut Timeline,
        observer: &dyn RunObserver,
    ) -> anyhow::Result<ExitOutcome> {
        let memory_bytes = guest_memory(spec.resources.memory_bytes)?;
        let vcpus = vcpu_count(spec.resources.cpus)?;
        check_kvm_can_run_linux(timeline)?;
        let kernel = match &self.options.kernel {
            Some(path) => path.clone(),
            None => vmc_vm::kernel::default_kernel()?,
        };
        let home = vmc_runtime::paths::vmc_home();
        let init = embedded_init(&home)?;
        let image_archive =
            initramfs::cached_image_archive(&home, &spec.image_id, &spec.rootfs, &init)?;
        std::fs::create_dir_all(&spec.run_dir)
            .with_context(|| format!("cannot create {}", spec.run_dir.display()))?;
        let run_archive = spec.run_dir.join("run.cpio");
        initramfs::build_run_archive(&run_config(spec)?, &run_archive)?;
        timeline.step(format!(
            "initramfs: {} (cached) + per-run settings {}",
            image_archive.display(),
            run_archive.display()
        ));
        let config = VmConfig {
            memory_bytes,
            vcpus,
            kernel,
            initrd: vec![image_archive, run_archive.clone()],
            cmdline: cmdline(self.options.console),
            console: self.options.console,
            vsock: Some(VsockConfig {
                stdin: spec.interactive,
                forward_signals: true,
                terminal: spec.tty,
            }),
            seccomp: match spec.security.seccomp {
                SeccompPolicy::Unconfined => VmmSeccomp::Unconfined,
                // A profile file is refused for VM mode before the run (`support`).
                SeccompPolicy::Default | SeccompPolicy::Profile(_) => VmmSeccomp::Confined,
            },
            disks: Vec::new(),
        };
        let mut vm = Vm::create(&config, timeline)?;
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
        let _ = std::fs::remove_file(&run_archive);
        timeline.mark(Milestone::TornDown);
        let exit = exit?;
        exit.outcome().ok_or_else(|| {
            anyhow!(
                "the guest ended ({:?}) without reporting the workload's exit status; last console output:\n{}",
                exit.reason,
                recent_console.trim_end()
            )
        })
    }
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
            RunOption::Kernel | RunOption::Console | RunOption::SeccompUnconfined => {
                Support::Honoured
            }
        }
    }

    fn run(
        &self,
        spec: &RunSpec,
        timeline: &mut Timeline,
        observer: &dyn RunObserver,
    ) -> Result<ExitOutcome, RuntimeError> {
        self.boot(spec, timeline, observer)
            .map_err(|err| format!("{err:#}").into())
    }

    fn cleanup(&self, _id: &str, _run_dir: &Path) -> Result<(), RuntimeError> {
        // A VM lives and dies with its vmc process: nothing outlives it but the run
        // directory, which the run store removes with the record.
        Ok(())
    }
}

/// Refuses at once, with the probe's explanation, on a host whose KVM cannot boot Linux.
fn check_kvm_can_run_linux(timeline: &mut Timeline) -> anyhow::Result<()> {
    let report = vmc_vm::probe::probe();
    match report.verdict {
        Some(Verdict::Full) => {
            timeline.step(format!(
                "KVM probe guest took an exception and a timer interrupt ({:.1} ms)",
                report.elapsed.as_secs_f64() * 1000.0
            ));
            Ok(())
        }
        Some(verdict) => bail!("{}", verdict.message()),
        None => Err(vmc_vm::open_kvm()
            .err()
            .map_or_else(|| anyhow!("KVM is unavailable"), |err| anyhow!(err))),
    }
}

/// The guest RAM for `-m` (default [`DEFAULT_MEMORY_BYTES`]), refused before anything is
/// set up when no Linux guest could boot in it.
fn guest_memory(memory_bytes: Option<u64>) -> anyhow::Result<u64> {
    let bytes = memory_bytes.unwrap_or(DEFAULT_MEMORY_BYTES);
    if bytes < MIN_MEMORY_BYTES {
        let size = match bytes % (1 << 20) {
            0 => format!("{} MiB", bytes >> 20),
            _ => format!("{bytes} bytes"),
        };
        bail!(
            "-m {size} is too small for a VM: in VM mode -m is the guest's RAM, and a guest needs at least {min} MiB because its kernel is loaded at 16 MiB and needs room above it to boot and unpack the image (give -m {min}m or more)",
            min = MIN_MEMORY_BYTES >> 20
        );
    }
    Ok(bytes)
}

/// The number of vCPUs for `--cpus` (rounded up; default 1).
fn vcpu_count(cpus: Option<f64>) -> anyhow::Result<u8> {
    match cpus {
        None => Ok(1),
        Some(cpus) if cpus > 0.0 && cpus <= f64::from(u8::MAX) => Ok(cpus.ceil() as u8),
        Some(cpus) => bail!("--cpus {cpus} is not a vCPU count: give a number from 1 to 254"),
    }
}

fn cmdline(console: bool) -> String {
    if console {
        BASE_CMDLINE.to_string()
    } else {
        format!("{BASE_CMDLINE} quiet")
    }
}

/// The guest's per-run settings. HOME comes from the spec's environment (`vmc run` puts it
/// there) or else from the image's /etc/passwd, read inside the image.
fn run_config(spec: &RunSpec) -> anyhow::Result<RunConfig> {
    let home = home_for(&spec.env, &spec.rootfs, spec.uid)?;
    Ok(RunConfig {
        args: spec.args.clone(),
        env: workload_env(&spec.env, &spec.hostname, &home),
        workdir: spec.workdir.clone(),
        uid: spec.uid,
        gid: spec.gid,
        hostname: spec.hostname.clone(),
        tty: spec.tty,
        interactive: spec.interactive,
        terminal_size: spec
            .tty
            .then(window_size)
            .flatten()
            .map(|(rows, cols)| TerminalSize { rows, cols }),
    })
}

/// Writes the embedded init to `$VMC_HOME/init/vmc-init-<sha256[..16]>` once and returns its
/// path; the initramfs cache is keyed by the same hash. Later runs do not touch the embedded
/// bytes, so they never become part of the VMM's resident memory.
fn embedded_init(home: &Path) -> anyhow::Result<PathBuf> {
    let dir = home.join("init");
    let path = dir.join(format!("vmc-init-{}", &EMBEDDED_INIT_SHA256[..16]));
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut temp = tempfile::NamedTempFile::new_in(&dir)?;
    temp.write_all(EMBEDDED_INIT)?;
    temp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o755))?;
    temp.persist(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    release_embedded_init_pages();
    Ok(path)
}

/// Takes the embedded init's pages out of this process's resident memory once they have been
/// written out: otherwise the first VM run of a process (say, `vmc bench`) would count 1.5 MiB
/// of them as VMM overhead. They are a private, read-only mapping of the vmc binary, so the
/// kernel simply reads them again from the file should they ever be touched.
fn release_embedded_init_pages() {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    let start = EMBEDDED_INIT.as_ptr() as usize;
    let (first, end) = (
        start.next_multiple_of(page),
        (start + EMBEDDED_INIT.len()) / page * page,
    );
    if end > first {
        // SAFETY: the range lies inside EMBEDDED_INIT, read-only data of the executable's file
        // mapping; MADV_DONTNEED on it only drops pages the kernel can read back from the file.
        unsafe { libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_DONTNEED) };
    }
}

/// Reads a VM's memory: guest RAM reserved and resident, and what the VMM costs beyond it.
struct GuestMemoryProbe {
    regions: Vec<RamRegion>,
    reserved_bytes: u64,
}

impl MemoryProbe for GuestMemoryProbe {
    fn read(&self) -> MemoryReading {
        let ranges: Vec<_> = self.regions.iter().map(|r| r.host.clone()).collect();
        let resident = vmc_vm::memory::resident_bytes(&ranges).unwrap_or(0);
        let rss = process_rss_bytes(std::process::id()).unwrap_or(0);
        MemoryReading {
            reserved_bytes: self.reserved_bytes,
            workload_bytes: resident,
            peak_bytes: None,
            overhead_bytes: rss.saturating_sub(resident),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn guest_memory_has_a_default_and_a_floor() {
        assert_eq!(guest_memory(None).unwrap(), DEFAULT_MEMORY_BYTES);
        assert_eq!(guest_memory(Some(32 << 20)).unwrap(), 32 << 20);
        let err = guest_memory(Some(16 << 20)).unwrap_err().to_string();
        assert!(
            err.contains("at least 32 MiB") && err.contains("-m 32m"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1);
    }

    #[test]
    fn vcpus_round_up_and_are_bounded() {
        assert_eq!(vcpu_count(None).unwrap(), 1);
        assert_eq!(vcpu_count(Some(1.5)).unwrap(), 2);
        assert!(vcpu_count(Some(0.0)).is_err());
        assert!(vcpu_count(Some(300.0)).is_err());
    }

    #[test]
    fn build_time_hash_is_the_embedded_init_hash() {
        let hash: String = Sha256::digest(EMBEDDED_INIT)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hash, EMBEDDED_INIT_SHA256);
    }

    #[test]
    fn embedded_init_is_a_static_binary_the_initramfs_accepts() {
        let home = tempfile::tempdir().unwrap();
        let init = embedded_init(home.path()).unwrap();
        assert_eq!(embedded_init(home.path()).unwrap(), init, "written once");
        assert_eq!(
            std::fs::read(&init).unwrap(),
            EMBEDDED_INIT,
            "the embedded bytes read back intact after their pages were released"
        );
        let rootfs = tempfile::tempdir().unwrap();
        let out = home.path().join("image.cpio");
        // build_image_archive refuses an init that is not a static x86-64 executable.
        initramfs::build_image_archive(rootfs.path(), &init, &out).unwrap();
    }
}
