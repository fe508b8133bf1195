//! The parent side of a container run: prepare, clone, place in the cgroup, supervise, tear down.

use crate::cgroups::devices::DEFAULT_RULES;
use crate::cgroups::{
    mount as cgroup_fs, write_control, CgroupMemory, Hierarchy, Limits, RunCgroup, DEFAULT_ROOT,
};
use crate::child::{self, ChildConfig, ChildStdio, Identity};
use crate::error::ContainerError;
use crate::layer::WritableLayer;
use crate::live::{self, LiveContainer};
use crate::masks::{self, READ_ONLY_PATHS};
use crate::namespaces::{clone_flags, describe, single_id_map};
use crate::plan::{cpath, through_proc, OverlayDirs, RootfsPlan};
use crate::report::{self, Event, Record};
use crate::security::profile::kernel_version;
use crate::security::Confinement;
use crate::spawn;
use crate::tty::Pty;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vmc_runtime::env::{env_value, workload_env, DEFAULT_PATH};
use vmc_runtime::etc_files::{self, EtcFiles, HostFiles};
use vmc_runtime::exec::{ExecCommand, NulByte};
use vmc_runtime::rootfs::{self, AboveRoot};
use vmc_runtime::signals::{SignalCatcher, INTERRUPTS_BEFORE_KILL};
use vmc_runtime::terminal::RawMode;
use vmc_runtime::user::home_for;
use vmc_runtime::{
    BindMount, ExecSpec, ExitOutcome, Milestone, Mode, NetworkMode, RunOption, RunSpec, Runtime,
    RuntimeError, Support, Timeline,
};
use vmc_runtime::{MemoryProbe, MemoryReading, RunObserver};

/// Where a run's stdout and stderr go instead of vmc's own (for callers that capture output).
#[derive(Debug)]
pub struct Output {
    /// Becomes the workload's stdout.
    pub stdout: OwnedFd,
    /// Becomes the workload's stderr.
    pub stderr: OwnedFd,
}

/// The container run mode: namespaces, an overlay root, cgroup limits, the workload as PID 1.
#[derive(Debug)]
pub struct ContainerRuntime {
    pub(crate) cgroup_root: PathBuf,
    pub(crate) output: Option<Output>,
    pub(crate) seccomp_cache: PathBuf,
}

impl Default for ContainerRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl ContainerRuntime {
    /// A runtime using the host's cgroups at /sys/fs/cgroup, vmc's own stdio, and
    /// `$VMC_HOME/cache/seccomp` for compiled seccomp filters.
    pub fn new() -> Self {
        ContainerRuntime {
            cgroup_root: PathBuf::from(DEFAULT_ROOT),
            output: None,
            seccomp_cache: vmc_runtime::paths::vmc_home().join("cache").join("seccomp"),
        }
    }

    /// Keeps compiled seccomp filters in `dir` instead of `$VMC_HOME/cache/seccomp`.
    pub fn with_seccomp_cache(mut self, dir: PathBuf) -> Self {
        self.seccomp_cache = dir;
        self
    }

    /// Sends the workload's stdout and stderr to `output` (non-tty runs only).
    pub fn with_output(mut self, output: Output) -> Self {
        self.output = Some(output);
        self
    }

    /// Prints a one-line message about the workload where its stderr goes (Docker prints
    /// "exec: …: not found" there too).
    pub(crate) fn print_error(&self, message: &str) {
        let line = format!("vmc: {message}\n");
        match &self.output {
            Some(output) => {
                let _ = nix::unistd::write(&output.stderr, line.as_bytes());
            }
            None => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
    }

    fn run_container(
        &self,
        spec: &RunSpec,
        timeline: &mut Timeline,
        observer: &dyn RunObserver,
    ) -> Result<ExitOutcome, ContainerError> {
        if spec.tty && self.output.is_some() {
            return Err(ContainerError::Unsupported(
                "--tty cannot be combined with captured output: drop -t".into(),
            ));
        }
        if !spec.rootfs.is_dir() {
            return Err(ContainerError::MissingRootfs(spec.rootfs.clone()));
        }
        // From here on the forwarded signals are read from a signalfd: before the
        // workload runs they end the run through the error path, which removes what it made.
        let signals = SignalCatcher::new()
            .map_err(|e| ContainerError::sys("catching the signals to forward", e))?;
        // SAFETY: geteuid cannot fail.
        let rootless = unsafe { libc::geteuid() } != 0;
        let hierarchy = Hierarchy::detect(&self.cgroup_root)?;
        if !spec.run_dir.is_dir() {
            std::fs::create_dir_all(&spec.run_dir).map_err(|source| ContainerError::RunDir {
                action: "create",
                path: spec.run_dir.clone(),
                source,
            })?;
        }
        // The writable layer goes in here: no one else may look (the vmc home is closed too).
        std::fs::set_permissions(&spec.run_dir, std::fs::Permissions::from_mode(0o700)).map_err(
            |source| ContainerError::RunDir {
                action: "close",
                path: spec.run_dir.clone(),
                source,
            },
        )?;
        let etc_files = write_etc_files(spec)?;
        // A layer removed with the run skips the sync of its upper filesystem at the end
        // (`volatile`, Linux 5.10), which takes longer than the rest of a short run.
        let overlay = OverlayDirs::in_run_dir(&spec.run_dir, &spec.rootfs)
            .with_volatile(spec.auto_remove && kernel_version() >= (5, 10));
        let mut run = RunGuard::default();
        let pty = spec.tty.then(Pty::open).transpose()?;
        let privileged = spec.security.privileged;
        let masked = masks::masked_paths(Path::new("/sys"));
        let plan = RootfsPlan {
            overlay: &overlay,
            etc_files: &etc_files,
            volumes: &spec.mounts,
            network: spec.network,
            rootless,
            console: pty.as_ref().map(|p| p.slave_path.as_path()),
            privileged,
            masked: &masked,
        };
        let ops = plan.ops()?;
        let confinement =
            Confinement::prepare(&spec.security, spec.uid, rootless, &self.seccomp_cache)?;
        timeline.step(confinement.summary());
        let (go_read, go_write) = pipe()?;
        let (report_read, report_write) = pipe()?;
        let dev_null = (!spec.interactive && !spec.tty)
            .then(|| std::fs::File::open("/dev/null"))
            .transpose()
            .map_err(|source| ContainerError::RunDir {
                action: "open",
                path: "/dev/null".into(),
                source,
            })?;
        let stdio = ChildStdio {
            stdin: dev_null.as_ref().map(|f| f.as_raw_fd()),
            stdout: self.output.as_ref().map(|o| o.stdout.as_raw_fd()),
            stderr: self.output.as_ref().map(|o| o.stderr.as_raw_fd()),
            tty: pty.as_ref().map(|p| p.slave.as_raw_fd()),
        };
        // Everything read from the image is checked before the cgroup exists.
        let mut config = child_config(
            spec,
            ops,
            confinement,
            rootless,
            stdio,
            &go_read,
            &report_write,
            &signals,
        )?;
        run.cgroup = create_cgroup(&hierarchy, spec, rootless, timeline)?;
        if let Some(cgroup) = &run.cgroup {
            config.join_cgroup = cgroup
                .self_join_files()
                .iter()
                .map(|file| cpath(file))
                .collect::<Result<Vec<_>, _>>()?;
            config.join_cgroup_late = late_joins(&cgroup.late_join_files())?;
            config.cgroup_ops = cgroup_fs::ops(&hierarchy, privileged)?;
        }
        let clone_into = run
            .cgroup
            .as_ref()
            .and_then(|c| c.v2_dir())
            .map(|dir| {
                std::fs::File::open(dir).map_err(|source| ContainerError::Cgroup {
                    action: "cannot open".into(),
                    path: dir.to_path_buf(),
                    source,
                })
            })
            .transpose()?;
        let flags = clone_flags(spec.network, rootless);
        // SAFETY: the child only runs `child::run`, which does not allocate or take locks and
        // ends in execve or returns an exit status; `config` is copied with the address space
        // into the child.
        let spawned = unsafe {
            spawn::spawn(flags, clone_into.as_ref().map(|f| f.as_fd()), || {
                child::run(&config)
            })
        }
        .map_err(|source| match (rootless, source) {
            (
                true,
                nix::Error::EPERM | nix::Error::EINVAL | nix::Error::ENOSPC | nix::Error::EUSERS,
            ) => {
                ContainerError::UserNamespace {
                    // SAFETY: getuid cannot fail.
                    uid: unsafe { libc::getuid() },
                    source,
                }
            }
            (_, source) => ContainerError::sys(format!("clone({})", describe(flags)), source),
        })?;
        let pid = spawned.pid;
        run.child = Some(pid);
        timeline.step(format!(
            "{}({}{}) → container init is host pid {pid}",
            spawned.call,
            describe(flags),
            match (&run.cgroup, spawned.in_cgroup) {
                (Some(cgroup), true) => format!(
                    ", CLONE_INTO_CGROUP {}",
                    cgroup.v2_dir().unwrap_or(Path::new("")).display()
                ),
                _ => String::new(),
            }
        ));
        drop((go_read, report_write, dev_null, clone_into));
        // While the child sets up: the record `vmc exec` will read once the workload runs.
        if let Some(live) = LiveContainer::of(pid.as_raw(), rootless, spec) {
            live.prepare(&spec.run_dir)?;
            run.unpublished = Some(spec.run_dir.clone());
        }
        if rootless {
            map_ids(pid, spec.uid, spec.gid)?;
            write_all(&go_write, b"m")?;
            timeline.step(format!(
                "user namespace: uid {} and gid {} mapped to vmc's",
                spec.uid, spec.gid
            ));
        }
        if let (Some(dir), false) = (
            run.cgroup.as_ref().and_then(|c| c.v2_dir()),
            spawned.in_cgroup,
        ) {
            // A kernel before 5.7: move it the slow way while it builds its filesystem.
            write_control(dir, "cgroup.procs", &pid.to_string())?;
            timeline.step(format!("pid {pid} moved into {}", dir.display()));
        }
        // While the child builds its filesystem: the cgroups it joins after "go", and the
        // device rules, which only need to hold once the workload runs.
        if let Some(cgroup) = &run.cgroup {
            let made = cgroup.create_late()?;
            if made > 0 {
                timeline.step(format!(
                    "cgroup vmc/{} created in {} more (joined before the cgroup namespace is unshared)",
                    spec.short_id(),
                    v1_hierarchies(made)
                ));
            }
            restrict_devices(cgroup.as_ref(), privileged, rootless, timeline)?;
        }
        let mut reports = ReportReader::new(report_read);
        reports.wait_until_ready(&signals)?;
        timeline.mark(Milestone::RuntimeReady);
        if let Some(cgroup) = &run.cgroup {
            observer.memory_probe_ready(Arc::new(CgroupProbe {
                memory: cgroup.memory(),
            }));
        }
        write_all(&go_write, b"g")?;
        drop(go_write);
        let records = reports.read_to_end(&signals)?;
        let described = Described {
            joined: config.join_cgroup.len(),
            joined_late: config.join_cgroup_late.len(),
            overlay: &overlay,
            masked: &masked,
            cgroup_fs: run
                .cgroup
                .as_ref()
                .map(|_| cgroup_fs::describe(&hierarchy, privileged)),
        };
        let exec_failure = record_child_steps(&records, spec, &described, timeline)?;
        if let Some(message) = &exec_failure {
            self.print_error(message);
        } else if records.iter().any(|r| r.event == Event::Exec) {
            // `vmc exec` finds the workload before anyone is told that it runs.
            if run.unpublished.take().is_some() {
                if let Err(err) = live::publish(&spec.run_dir) {
                    self.print_error(&format!("warning: vmc exec cannot reach this run: {err}"));
                }
            }
            observer.workload_started(Arc::new(WorkloadPidfd(pidfd_open(pid)?)));
        }
        // Our copy of the slave would keep the pty open after the workload exits.
        let pty_master = pty.map(|p| p.master);
        let status = supervise(
            pid,
            &signals,
            pty_master.as_ref(),
            spec.interactive,
            exec_failure.is_some(),
        )?;
        run.child = None;
        if let WaitStatus::Signaled(_, signal, _) = status {
            if !records.iter().any(|r| r.event == Event::Exec) {
                return Err(died_before_exec(
                    signal,
                    config.identity.confinement.filter.is_some(),
                ));
            }
        }
        timeline.mark(Milestone::WorkloadExit);
        let mut outcome = match status {
            WaitStatus::Exited(_, code) => ExitOutcome::Exited(code),
            WaitStatus::Signaled(_, signal, _) => ExitOutcome::Signaled(signal as i32),
            other => {
                return Err(ContainerError::Setup(format!(
                    "unexpected wait status {other:?}"
                )))
            }
        };
        timeline.step(format!(
            "workload ended: {outcome:?} (exit status {})",
            outcome.exit_code()
        ));
        if let Some(cgroup) = &run.cgroup {
            let killed_by_sigkill = matches!(outcome, ExitOutcome::Signaled(9))
                || outcome == ExitOutcome::Exited(128 + libc::SIGKILL);
            if killed_by_sigkill && cgroup.oom_kills() > 0 {
                outcome = ExitOutcome::OomKilled;
                timeline.step("the cgroup's OOM killer killed the workload");
            }
        }
        drop(signals);
        if let Some(cgroup) = run.cgroup.take() {
            cgroup.remove()?;
            timeline.step(format!(
                "cgroup {}/{} removed",
                crate::cgroups::PARENT,
                &spec.id[..12.min(spec.id.len())]
            ));
        }
        run.finish()?;
        timeline.mark(Milestone::TornDown);
        Ok(outcome)
    }
}

impl Runtime for ContainerRuntime {
    fn mode(&self) -> Mode {
        Mode::Container
    }

    fn support(&self, option: RunOption) -> Support {
        match option {
            RunOption::Kernel => Support::Refused(
                "a container runs on the host's kernel (drop --kernel, or use --mode vm)",
            ),
            RunOption::Console => Support::Refused(
                "a container has no kernel console of its own (drop --console, or use --mode vm)",
            ),
            RunOption::BootTimeout => Support::Refused(
                "a container boots no kernel (drop --boot-timeout, or use --mode vm)",
            ),
            RunOption::Volumes
            | RunOption::PidsLimit
            | RunOption::HostNetwork
            | RunOption::Capabilities
            | RunOption::Privileged
            | RunOption::SeccompUnconfined
            | RunOption::SeccompProfile
            | RunOption::NoNewPrivileges
            | RunOption::Detach
            | RunOption::Exec => Support::Honoured,
        }
    }

    fn run(
        &self,
        spec: &RunSpec,
        timeline: &mut Timeline,
        observer: &dyn RunObserver,
    ) -> Result<ExitOutcome, RuntimeError> {
        match self.run_container(spec, timeline, observer) {
            Ok(outcome) => Ok(outcome),
            // The CLI tells an interrupted setup from a failed one by this type.
            Err(ContainerError::Interrupted(interrupted)) => Err(Box::new(interrupted)),
            Err(err) => Err(err.into()),
        }
    }

    fn exec(&self, id: &str, run_dir: &Path, exec: &ExecSpec) -> Result<ExitOutcome, RuntimeError> {
        match crate::exec::exec(self, id, run_dir, exec) {
            Ok(outcome) => Ok(outcome),
            Err(ContainerError::Interrupted(interrupted)) => Err(Box::new(interrupted)),
            Err(err) => Err(err.into()),
        }
    }

    fn cleanup(&self, id: &str, run_dir: &Path) -> Result<(), RuntimeError> {
        match Hierarchy::detect(&self.cgroup_root) {
            Ok(hierarchy) => {
                hierarchy.remove_leftover(id)?;
            }
            // Without cgroups no run could have made one.
            Err(ContainerError::NoCgroups(_)) => {}
            Err(err) => return Err(err.into()),
        }
        // The mounts died with the run's mount namespace; its writable layer, the record
        // `vmc exec` reads and the run's /etc files are on the disk.
        WritableLayer::of(run_dir)
            .remove()
            .and_then(|()| live::remove(run_dir))
            .map_err(|source| ContainerError::RunDir {
                action: "remove the writable layer and live record in",
                path: run_dir.to_path_buf(),
                source,
            })?;
        for name in etc_files::NAMES {
            let path = run_dir.join(name);
            match std::fs::remove_file(&path) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    return Err(ContainerError::RunDir {
                        action: "remove",
                        path,
                        source: err,
                    }
                    .into())
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Writes the run's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` (Docker's content,
/// [`EtcFiles`]) into its run directory, as Docker keeps them in the container's directory;
/// returns the binds that put them in the container. They stay there until
/// [`Runtime::cleanup`] (`vmc rm`), as Docker keeps them until the container is removed.
fn write_etc_files(spec: &RunSpec) -> Result<Vec<BindMount>, ContainerError> {
    let files = EtcFiles::for_run(&spec.hostname, spec.network, &HostFiles::read());
    files
        .files()
        .into_iter()
        .map(|(name, content)| {
            let host = spec.run_dir.join(name);
            std::fs::write(&host, content).map_err(|source| ContainerError::RunDir {
                action: "write",
                path: host.clone(),
                source,
            })?;
            Ok(BindMount {
                host,
                target: Path::new("/etc").join(name),
                readonly: false,
            })
        })
        .collect()
}

/// Builds the child's configuration: argv, env, PATH candidates, filesystem steps.
#[allow(clippy::too_many_arguments)]
fn child_config(
    spec: &RunSpec,
    ops: Vec<crate::plan::Op>,
    confinement: Confinement,
    rootless: bool,
    stdio: ChildStdio,
    go_read: &OwnedFd,
    report_write: &OwnedFd,
    signals: &SignalCatcher,
) -> Result<ChildConfig, ContainerError> {
    if spec.args.is_empty() {
        return Err(ContainerError::Unsupported(
            "no command to run: give one after the image name".into(),
        ));
    }
    let env = workload_env(
        &spec.env,
        &spec.hostname,
        &home_for(&spec.env, &spec.rootfs, spec.uid)?,
    );
    let path = env_value(&env, "PATH").unwrap_or(DEFAULT_PATH);
    let cstrings = |what: &'static str, values: &[String]| {
        values
            .iter()
            .map(|v| {
                CString::new(v.as_str()).map_err(|_| ContainerError::NulByte {
                    what,
                    value: v.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(ChildConfig {
        ops,
        cgroup_ops: Vec::new(),
        hostname: cstrings("hostname", std::slice::from_ref(&spec.hostname))?.remove(0),
        loopback: spec.network == NetworkMode::None,
        workdir: cpath(&workdir_in_root(spec)?)?,
        command: ExecCommand::new(&spec.args, &env, path).map_err(|NulByte(value)| {
            ContainerError::NulByte {
                what: "command",
                value,
            }
        })?,
        identity: Identity {
            uid: spec.uid,
            gid: spec.gid,
            clear_groups: !rootless,
            stdio,
            signal_mask: signals.previous_mask(),
            confinement,
            die_with_vmc: true,
        },
        join_cgroup: Vec::new(),
        join_cgroup_late: Vec::new(),
        go_fd: go_read.as_raw_fd(),
        wait_for_id_maps: rootless,
        report_fd: report_write.as_raw_fd(),
    })
}

/// The working directory resolved inside the image's rootfs: a path without symlinks, which
/// the child creates (when missing) and enters after `pivot_root`. There the image's symlinks
/// can only lead to the container's own root; what is left are procfs's magic links
/// (`/proc/self/fd/N` is whatever the child holds open), so a directory in /proc or behind
/// vmc's /dev links to it is refused.
fn workdir_in_root(spec: &RunSpec) -> Result<PathBuf, ContainerError> {
    let resolved = rootfs::resolve(&spec.rootfs, Path::new(&spec.workdir), AboveRoot::Clamp)?;
    let workdir = resolved.in_root();
    match through_proc(&workdir) {
        Some(tree) => Err(ContainerError::Unsupported(format!(
            "the working directory {:?} resolves to {workdir:?} in the image, inside {tree}, which leads into the container's procfs: choose another with -w",
            spec.workdir
        ))),
        None => Ok(workdir),
    }
}

/// The container process died of `signal` without reporting its exec: its setup could not
/// go on, nor report why. A seccomp profile that refuses the calls made after the filter is
/// installed (Docker's allows them) ends that way: a refused exit leaves the process running
/// into a fault.
fn died_before_exec(signal: Signal, filtered: bool) -> ContainerError {
    let hint = if filtered {
        ": the seccomp profile must allow the calls made after the filter is installed (prctl, setgroups, setresgid, setresuid, capset, rt_sigaction, rt_sigprocmask, write, execve, exit, exit_group)"
    } else {
        ""
    };
    ContainerError::Setup(format!(
        "the container process was killed by {signal} before it executed the workload{hint}"
    ))
}

pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd), ContainerError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ContainerError::sys("creating a pipe", e))
}

fn write_all(fd: &OwnedFd, bytes: &[u8]) -> Result<(), ContainerError> {
    nix::unistd::write(fd, bytes)
        .map(drop)
        .map_err(|e| ContainerError::sys("signalling the container process", e))
}

/// Writes the single-range uid/gid maps of a rootless container.
fn map_ids(pid: Pid, uid: u32, gid: u32) -> Result<(), ContainerError> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    // SAFETY: geteuid/getegid cannot fail.
    let (host_uid, host_gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    for (file, text) in [
        ("setgroups", "deny\n".to_string()),
        ("uid_map", single_id_map(uid, host_uid)),
        ("gid_map", single_id_map(gid, host_gid)),
    ] {
        let path = proc_dir.join(file);
        std::fs::write(&path, text).map_err(|source| ContainerError::RunDir {
            action: "write",
            path,
            source,
        })?;
    }
    Ok(())
}

/// Creates the run's cgroup with its limits (before the child exists). Rootless runs without
/// limits go on without a cgroup when the host does not delegate one.
fn create_cgroup(
    hierarchy: &Hierarchy,
    spec: &RunSpec,
    rootless: bool,
    timeline: &mut Timeline,
) -> Result<Option<Box<dyn RunCgroup>>, ContainerError> {
    let limits = Limits::from(spec.resources);
    match hierarchy.create(&spec.id, &limits) {
        Ok((cgroup, settings)) => {
            let settings = if settings.is_empty() {
                "no limits".to_string()
            } else {
                settings.join(", ")
            };
            timeline.step(format!(
                "cgroup {}/{} ({}) created: {settings}",
                crate::cgroups::PARENT,
                &spec.id[..12.min(spec.id.len())],
                hierarchy.version()
            ));
            Ok(Some(cgroup))
        }
        Err(ContainerError::Cgroup { .. }) if rootless && limits == Limits::default() => {
            timeline.step("no cgroup: rootless run without limits and no delegated cgroup");
            Ok(None)
        }
        Err(err @ ContainerError::Cgroup { .. }) if rootless => Err(ContainerError::Unsupported(format!(
            "memory, CPU and pids limits need a cgroup, which vmc cannot make without root ({err}): run vmc as root or drop the limits"
        ))),
        Err(err) => Err(err),
    }
}

/// Splits `tasks` files (`<mount>/vmc/<id>/tasks`) into the hierarchy's mount and the rest,
/// as the child opens the mounts before `pivot_root` and joins after it.
fn late_joins(tasks: &[PathBuf]) -> Result<Vec<(CString, CString)>, ContainerError> {
    if tasks.len() > child::MAX_LATE_CGROUPS {
        return Err(ContainerError::Unsupported(format!(
            "{} cgroup v1 hierarchies are mounted; vmc joins at most {}: unmount some",
            tasks.len(),
            child::MAX_LATE_CGROUPS
        )));
    }
    tasks
        .iter()
        .map(|file| {
            let mount = file.ancestors().nth(3).unwrap_or(file);
            let inside = file.strip_prefix(mount).unwrap_or(file);
            Ok((cpath(mount)?, cpath(inside)?))
        })
        .collect()
}

/// Applies Docker's device rules to the run's cgroup, unless the run is privileged or
/// rootless (a user namespace cannot make device nodes, and vmc binds only the host's
/// harmless ones).
fn restrict_devices(
    cgroup: &dyn RunCgroup,
    privileged: bool,
    rootless: bool,
    timeline: &mut Timeline,
) -> Result<(), ContainerError> {
    let how = if privileged {
        "every device allowed (--privileged)".to_string()
    } else if rootless {
        "not restricted (rootless: the user namespace cannot create device nodes)".to_string()
    } else {
        cgroup.restrict_devices(&DEFAULT_RULES)?
    };
    timeline.step(format!("devices: {how}"));
    Ok(())
}

/// "1 v1 hierarchy", "8 v1 hierarchies".
fn v1_hierarchies(count: usize) -> String {
    match count {
        1 => "1 v1 hierarchy".into(),
        n => format!("{n} v1 hierarchies"),
    }
}

/// What the trace says about the child's steps, prepared by the parent.
struct Described<'a> {
    joined: usize,
    joined_late: usize,
    overlay: &'a OverlayDirs,
    masked: &'a [String],
    cgroup_fs: Option<String>,
}

/// The trace line for Docker's masked and read-only paths.
fn confined_paths(masked: &[String], missing: &[&str]) -> String {
    let present = |path: &&str| !missing.contains(path);
    let masked: Vec<&str> = masked.iter().map(String::as_str).filter(present).collect();
    let read_only: Vec<&str> = READ_ONLY_PATHS.into_iter().filter(present).collect();
    let mut line = format!(
        "masked {} ({}); read-only {} ({})",
        masked.len(),
        masked.join(" "),
        read_only.len(),
        read_only.join(" ")
    );
    if !missing.is_empty() {
        line += &format!("; absent on this kernel: {}", missing.join(" "));
    }
    line
}

/// Reads the child's report pipe, ending the run on SIGINT, SIGTERM, SIGHUP or SIGQUIT
/// (the child may hang in its setup: a FIFO or a hung filesystem under a volume).
pub(crate) struct ReportReader {
    pipe: std::fs::File,
    bytes: Vec<u8>,
}

impl ReportReader {
    pub(crate) fn new(pipe: OwnedFd) -> Self {
        ReportReader {
            pipe: std::fs::File::from(pipe),
            bytes: Vec::new(),
        }
    }

    /// Reads until the child reports that its setup is done (it then waits for "go").
    fn wait_until_ready(&mut self, signals: &SignalCatcher) -> Result<(), ContainerError> {
        loop {
            let records = report::parse(&self.bytes);
            if let Some(failure) = records.iter().find(|r| r.event == Event::SetupFailed) {
                return Err(ContainerError::Setup(failure.text.clone()));
            }
            if records.iter().any(|r| r.event == Event::Ready) {
                return Ok(());
            }
            if !self.read_more(signals)? {
                return Err(ContainerError::Setup(
                    "the container process died before its setup was done".into(),
                ));
            }
        }
    }

    /// Reads until the pipe closes (at exec, or when the child exits) and decodes everything.
    pub(crate) fn read_to_end(
        mut self,
        signals: &SignalCatcher,
    ) -> Result<Vec<Record>, ContainerError> {
        while self.read_more(signals)? {}
        Ok(report::parse(&self.bytes))
    }

    /// Waits for the next bytes from the child; false at end-of-file. The pipe goes first: a
    /// signal that comes with the pipe's end (the workload was just executed) is left pending
    /// for the supervisor to forward. So is every signal once the child has reported that it
    /// executes the workload: the pipe's end may then come late, when a process forked
    /// elsewhere in vmc inherited its write end for a moment.
    fn read_more(&mut self, signals: &SignalCatcher) -> Result<bool, ContainerError> {
        let mut chunk = [0u8; 4096];
        let executing = report::parse(&self.bytes)
            .iter()
            .any(|r| r.event == Event::Exec);
        loop {
            let mut fds = vec![PollFd::new(self.pipe.as_fd(), PollFlags::POLLIN)];
            if !executing {
                fds.push(PollFd::new(signals.fd().as_fd(), PollFlags::POLLIN));
            }
            match nix::poll::poll(&mut fds, PollTimeout::NONE) {
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(ContainerError::sys("waiting for the container's setup", e)),
                Ok(_) => {}
            }
            let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
            let (pipe_ready, signalled) = (ready(&fds[0]), fds.get(1).is_some_and(ready));
            if pipe_ready {
                match self.pipe.read(&mut chunk) {
                    Ok(0) => return Ok(false),
                    Ok(n) => {
                        self.bytes.extend_from_slice(&chunk[..n]);
                        return Ok(true);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(progress_error(e)),
                }
            }
            if let Some(interrupted) = signalled.then(|| signals.take_ending()).flatten() {
                return Err(interrupted.into());
            }
        }
    }
}

fn progress_error(e: std::io::Error) -> ContainerError {
    ContainerError::Setup(format!("reading the container's progress: {e}"))
}

/// Turns the child's reports into trace steps and milestones. Returns an error for a failed
/// setup and the message when the command could not be executed (the child exits 126/127).
fn record_child_steps(
    records: &[Record],
    spec: &RunSpec,
    described: &Described,
    timeline: &mut Timeline,
) -> Result<Option<String>, ContainerError> {
    if let Some(failure) = records.iter().find(|r| r.event == Event::SetupFailed) {
        return Err(ContainerError::Setup(failure.text.clone()));
    }
    let overlay = described.overlay;
    let exec_failure = records.iter().find(|r| r.event == Event::ExecFailed);
    let merged = overlay.merged.display().to_string();
    let missing: Vec<&str> = records
        .iter()
        .filter(|r| r.event == Event::PathMissing)
        .map(|r| r.text.strip_prefix(merged.as_str()).unwrap_or(&r.text))
        .collect();
    for record in records {
        let at = record.instant();
        let what = match record.event {
            Event::Released => {
                timeline.mark_at(Milestone::InitStarted, at);
                match described.joined_late {
                    0 => "container init released by vmc; cgroup namespace unshared".to_string(),
                    late => format!(
                        "container init released by vmc; joined its cgroup in {} more; cgroup namespace unshared",
                        v1_hierarchies(late)
                    ),
                }
            }
            Event::JoinedCgroup => format!(
                "container init joined its cgroup in {} itself (wrote 0 to tasks)",
                v1_hierarchies(described.joined)
            ),
            Event::Overlay => format!(
                "overlay mounted (lower={}, upper={} on the host's disk, kept until the run is removed)",
                overlay.lower.display(),
                overlay.upper.display()
            ),
            Event::SpecialFs => {
                "/proc, /dev (tmpfs, devices, devpts, shm) and read-only /sys mounted".into()
            }
            Event::Volumes => format!("{} volume(s) bound", spec.mounts.len()),
            Event::PathMissing => continue,
            Event::Masked => confined_paths(described.masked, &missing),
            Event::CgroupFs => described
                .cgroup_fs
                .clone()
                .unwrap_or_else(|| "cgroup filesystem mounted".into()),
            Event::PivotRoot => format!(
                "pivot_root into {}; old root detached",
                overlay.merged.display()
            ),
            Event::Ready => format!(
                "hostname {}; {}; workdir {}; waiting for vmc",
                spec.hostname,
                match spec.network {
                    NetworkMode::None => "loopback up",
                    NetworkMode::Host => "host network",
                },
                spec.workdir
            ),
            Event::Exec => {
                if exec_failure.is_none() {
                    timeline.mark_at(Milestone::WorkloadExec, at);
                }
                format!("exec {}", spec.args.join(" "))
            }
            Event::ExecFailed => format!("exec failed: {}", record.text),
            // Only `vmc exec` reports these.
            Event::SetupFailed | Event::Started => continue,
        };
        timeline.step_at(what, at);
    }
    Ok(exec_failure.map(|failure| failure.text.clone()))
}

/// Waits for the process `pid` (the workload, or a command of `vmc exec`) to exit,
/// forwarding signals and proxying the pty (with vmc's stdin when `interactive`).
pub(crate) fn supervise(
    pid: Pid,
    signals: &SignalCatcher,
    pty_master: Option<&OwnedFd>,
    interactive: bool,
    exec_failed: bool,
) -> Result<WaitStatus, ContainerError> {
    let pidfd = pidfd_open(pid)?;
    let _raw_mode = (pty_master.is_some() && !exec_failed)
        .then(RawMode::enter)
        .flatten();
    let stdin = std::io::stdin();
    let mut stdin_open = pty_master.is_some() && interactive;
    let mut master_open = pty_master.is_some();
    let mut interrupts = 0;
    loop {
        let mut fds = vec![
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.fd().as_fd(), PollFlags::POLLIN),
        ];
        if let (Some(master), true) = (pty_master, master_open) {
            fds.push(PollFd::new(master.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match nix::poll::poll(&mut fds, PollTimeout::NONE) {
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(ContainerError::sys("waiting for the workload", e)),
            Ok(_) => {}
        }
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        let exited = ready(&fds[0]);
        let signalled = ready(&fds[1]);
        let master_ready = master_open && ready(&fds[2]);
        let stdin_ready = stdin_open && ready(&fds[fds.len() - 1]);
        drop(fds);
        if signalled {
            while let Some(signal) = signals.next() {
                forward(signal, pid, pty_master, &mut interrupts);
            }
        }
        if let (Some(master), true) = (pty_master, master_ready) {
            master_open = copy(master.as_raw_fd(), libc::STDOUT_FILENO);
        }
        if let (Some(master), true) = (pty_master, stdin_ready) {
            stdin_open = copy(libc::STDIN_FILENO, master.as_raw_fd());
        }
        if exited {
            if let (Some(master), true) = (pty_master, master_open) {
                drain(master);
            }
            return nix::sys::wait::waitpid(pid, None)
                .map_err(|e| ContainerError::sys("collecting the workload's exit status", e));
        }
    }
}

fn forward(signal: Signal, pid: Pid, pty_master: Option<&OwnedFd>, interrupts: &mut u32) {
    if signal == Signal::SIGWINCH {
        if let Some(master) = pty_master {
            // SAFETY: copying the terminal size with ioctls on fds this process holds.
            unsafe {
                let mut size: libc::winsize = std::mem::zeroed();
                if libc::ioctl(libc::STDIN_FILENO, libc::TIOCGWINSZ, &mut size) == 0 {
                    libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size);
                }
            }
            return;
        }
    }
    if signal == Signal::SIGINT {
        *interrupts += 1;
        if *interrupts >= INTERRUPTS_BEFORE_KILL {
            eprintln!("vmc: interrupted {interrupts} times: killing the workload");
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            return;
        }
    }
    // The workload may have exited already (ESRCH): nothing to forward to.
    let _ = nix::sys::signal::kill(pid, signal);
}

/// Copies what is readable from `from` to `to`; false at end-of-file or error.
fn copy(from: i32, to: i32) -> bool {
    let mut buf = [0u8; 8192];
    // SAFETY: reading into a local buffer from an fd this process holds.
    let n = unsafe { libc::read(from, buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return n < 0 && nix::errno::Errno::last() == nix::errno::Errno::EINTR;
    }
    // SAFETY: writing the bytes just read to an fd this process holds.
    let mut to_file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(to) });
    to_file.write_all(&buf[..n as usize]).is_ok()
}

/// Copies what the workload wrote to the pty before exiting.
fn drain(master: &OwnedFd) {
    let _ = nix::fcntl::fcntl(
        master,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    while copy(master.as_raw_fd(), libc::STDOUT_FILENO) {}
}

pub(crate) fn pidfd_open(pid: Pid) -> Result<OwnedFd, ContainerError> {
    vmc_runtime::process::pidfd_open(pid.as_raw()).map_err(|e| {
        ContainerError::sys(
            "pidfd_open (Linux 5.3 or newer is required)",
            nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EINVAL)),
        )
    })
}

/// The workload's process, named by a pidfd: signals never reach a process that took its pid
/// after it exited.
struct WorkloadPidfd(OwnedFd);

impl vmc_runtime::WorkloadSignals for WorkloadPidfd {
    fn signal(&self, signal: i32) -> std::io::Result<()> {
        // SAFETY: pidfd_send_signal takes a valid pidfd, a signal number, no siginfo and no
        // flags; it only reads its arguments.
        let sent = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        match std::io::Error::last_os_error() {
            _ if sent == 0 => Ok(()),
            err if err.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            err => Err(err),
        }
    }
}

/// Everything a run has created on the host; torn down by [`RunGuard::finish`], or on drop
/// when the run fails half-way.
#[derive(Default)]
struct RunGuard {
    child: Option<Pid>,
    cgroup: Option<Box<dyn RunCgroup>>,
    /// The run directory holding a live record not published yet.
    unpublished: Option<PathBuf>,
}

impl RunGuard {
    /// Kills a child still alive, deletes a live record that was never published and removes
    /// the cgroup.
    fn finish(&mut self) -> Result<(), ContainerError> {
        if let Some(pid) = self.child.take() {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        if let Some(run_dir) = self.unpublished.take() {
            live::discard_unpublished(&run_dir);
        }
        self.cgroup.take().map_or(Ok(()), |c| c.remove())
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// The memory probe of a running container: its cgroup's usage plus vmc's own RSS.
struct CgroupProbe {
    memory: CgroupMemory,
}

impl MemoryProbe for CgroupProbe {
    fn read(&self) -> MemoryReading {
        // A cgroup that is already gone (the run is ending) reads as empty.
        let (current, peak) = self.memory.read().unwrap_or((0, None));
        MemoryReading {
            reserved_bytes: 0,
            workload_bytes: current,
            peak_bytes: peak,
            overhead_bytes: vmc_runtime::memory::process_rss_bytes(std::process::id()).unwrap_or(0),
        }
    }
}
