//! `vmc exec` in container mode: a command started in a running container, as runc's and
//! youki's `exec` do it.
//!
//! vmc finds the workload through the record its supervisor keeps ([`LiveContainer`]), opens
//! a pidfd on it and checks that the pid still names it. A first child joins the run's
//! cgroup (v1 `tasks`, v2 `cgroup.procs`), then every namespace of the workload at once with
//! `setns` on the pidfd — the user namespace first when the run has one, so that a rootless
//! vmc holds the capabilities the others ask for. Joining a PID namespace only places the
//! caller's children there, so it creates the command's process as its own sibling
//! (`CLONE_PARENT`: vmc is its parent and waits for it), tells vmc its pid and exits. The
//! command's process, born in the run's PID namespace, changes into the working directory
//! inside the run's root, opens its pty there with `-t`, and becomes the workload's identity:
//! the same capability sets, seccomp filter and no_new_privs (`child::take_identity`), with
//! the user resolved against the run's own /etc/passwd (read through `vmc_runtime::rootfs`
//! under `/proc/PID/root`). Like the workload's child, neither allocates between `clone` and
//! `execve`.

use crate::cgroups::Hierarchy;
use crate::child::{
    self, setup_stdio, step, take_identity, ChildStdio, Identity, StepError, StepWhat,
};
use crate::error::ContainerError;
use crate::live::LiveContainer;
use crate::plan::cpath;
use crate::report::{Event, Reporter};
use crate::runtime::{pidfd_open, pipe, supervise, ContainerRuntime, ReportReader};
use crate::security::Confinement;
use crate::spawn;
use crate::tty::{self, receive_master, window_size};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use vmc_runtime::env::{env_value, set_var, workload_env, DEFAULT_PATH};
use vmc_runtime::exec::{ExecCommand, NulByte};
use vmc_runtime::signals::SignalCatcher;
use vmc_runtime::text::escape;
use vmc_runtime::user::home_for;
use vmc_runtime::{ExecSpec, ExitOutcome};

/// Exit status of the child when it could not join the run (vmc fails with 125).
const SETUP_FAILED: isize = 125;

/// Exit status when the working directory cannot be entered (Docker's: the command could not
/// be started).
const NO_WORKDIR: u8 = 126;

/// Everything the child needs, prepared before `clone`.
struct JoinConfig {
    /// A pidfd of the workload: `setns` on it joins its namespaces.
    pidfd: RawFd,
    /// The namespaces to join through it.
    namespaces: CloneFlags,
    /// The run's cgroup files to write "0" into (v1 `tasks`, v2 `cgroup.procs`).
    cgroups: Vec<CString>,
    /// The working directory inside the run's root.
    workdir: CString,
    /// The command, ready to execute.
    command: ExecCommand,
    /// Who it runs as, its standard streams and its confinement.
    identity: Identity,
    /// With `-t`: the socket on which the child sends vmc the master of the pty it opens in
    /// the run, and the size to give it.
    terminal: Option<(RawFd, Option<libc::winsize>)>,
    /// Write end of the report pipe (close-on-exec).
    report_fd: RawFd,
}

/// Runs `exec` in the live run `id` (directory `run_dir`) for `runtime`.
pub(crate) fn exec(
    runtime: &ContainerRuntime,
    id: &str,
    run_dir: &Path,
    exec: &ExecSpec,
) -> Result<ExitOutcome, ContainerError> {
    check(runtime, exec)?;
    let short = &id[..12.min(id.len())];
    let live = LiveContainer::load(run_dir, short)?;
    let pidfd = pidfd_open(Pid::from_raw(live.pid))?;
    // The pid may have been reused between the record's check and the pidfd.
    if !live.is_alive() {
        return Err(ContainerError::NotRunning(short.to_string()));
    }
    let spec = &live.spec;
    // The run's root as it is now, files the workload changed included.
    let root = PathBuf::from(format!("/proc/{}/root", live.pid));
    let user = exec
        .user
        .as_deref()
        .map(|user| vmc_runtime::user::resolve(user, &root))
        .transpose()?;
    let (uid, gid) = user
        .as_ref()
        .map_or((spec.uid, spec.gid), |u| (u.uid, u.gid));
    let env = exec_env(&spec.env, exec, user.as_ref().map(|u| u.home.as_str()));
    let env = workload_env(&env, &spec.hostname, &home_for(&env, &root, uid)?);
    let workdir = exec.workdir.as_deref().unwrap_or(&spec.workdir);
    let signals = SignalCatcher::new()
        .map_err(|e| ContainerError::sys("catching the signals to forward", e))?;
    let pty_socket = exec.tty.then(pty_socket_pair).transpose()?;
    let dev_null = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|source| ContainerError::RunDir {
            action: "open",
            path: "/dev/null".into(),
            source,
        })?;
    let stdio = exec_stdio(runtime, exec, dev_null.as_raw_fd());
    let (report_read, report_write) = pipe()?;
    let path = env_value(&env, "PATH").unwrap_or(DEFAULT_PATH);
    let config = JoinConfig {
        pidfd: pidfd.as_raw_fd(),
        namespaces: namespaces(live.rootless),
        cgroups: cgroup_files(runtime, id)?,
        workdir: cpath(Path::new(workdir))?,
        command: ExecCommand::new(&exec.args, &env, path).map_err(|NulByte(value)| {
            ContainerError::NulByte {
                what: "command",
                value,
            }
        })?,
        identity: Identity {
            uid,
            gid,
            clear_groups: !live.rootless,
            stdio,
            signal_mask: signals.previous_mask(),
            confinement: Confinement::prepare(
                &spec.security,
                uid,
                live.rootless,
                &runtime.seccomp_cache,
            )?,
            die_with_vmc: !exec.detach,
        },
        terminal: pty_socket
            .as_ref()
            .map(|(_, child_end)| (child_end.as_raw_fd(), window_size())),
        report_fd: report_write.as_raw_fd(),
    };
    // SAFETY: the child only runs `join`, which does not allocate or take locks and returns
    // an exit status (its sibling ends in execve); `config` is copied with the address space.
    let joiner = unsafe { spawn::spawn(CloneFlags::empty(), None, || join(&config)) }
        .map_err(|e| ContainerError::sys("clone", e))?
        .pid;
    let mut child = ChildGuard(Some(joiner));
    drop((report_write, dev_null));
    let records = ReportReader::new(report_read).read_to_end(&signals);
    // It exits once its sibling exists (or it failed); the sibling is vmc's child.
    let _ = nix::sys::wait::waitpid(joiner, None);
    child.0 = records
        .as_ref()
        .ok()
        .and_then(|records| records.iter().find(|r| r.event == Event::Started))
        .and_then(|started| started.text.parse().ok())
        .map(Pid::from_raw);
    let records = records?;
    let pty_master = match &pty_socket {
        Some((vmc_end, _)) => receive_master(vmc_end)?,
        None => None,
    };
    if let Some(failure) = records.iter().find(|r| r.event == Event::SetupFailed) {
        return Err(ContainerError::Setup(format!(
            "cannot join run {short}: {}",
            failure.text
        )));
    }
    let pid = child.0.ok_or_else(|| {
        ContainerError::Setup(format!(
            "cannot join run {short}: the command's process was not started"
        ))
    })?;
    let exec_failure = records.iter().find(|r| r.event == Event::ExecFailed);
    if let Some(failure) = exec_failure {
        runtime.print_error(&failure.text);
    } else if exec.detach {
        // It runs on without vmc; once vmc exits, the host's init (or a subreaper) reaps it.
        child.0 = None;
        return Ok(ExitOutcome::Exited(0));
    }
    let status = supervise(
        pid,
        &signals,
        pty_master.as_ref(),
        exec.interactive,
        exec_failure.is_some(),
    )?;
    child.0 = None;
    match status {
        WaitStatus::Exited(_, code) => Ok(ExitOutcome::Exited(code)),
        WaitStatus::Signaled(_, signal, _) => Ok(ExitOutcome::Signaled(signal as i32)),
        other => Err(ContainerError::Setup(format!(
            "unexpected wait status {other:?}"
        ))),
    }
}

/// The command's standard streams: vmc's, or `output`'s (stdin `/dev/null` without `-i`);
/// all `/dev/null` with `-d`. With `-t` the child opens a pty in the run instead.
fn exec_stdio(runtime: &ContainerRuntime, exec: &ExecSpec, null: RawFd) -> ChildStdio {
    if exec.detach {
        return ChildStdio {
            stdin: Some(null),
            stdout: Some(null),
            stderr: Some(null),
            tty: None,
        };
    }
    ChildStdio {
        stdin: (!exec.interactive && !exec.tty).then_some(null),
        stdout: runtime.output.as_ref().map(|o| o.stdout.as_raw_fd()),
        stderr: runtime.output.as_ref().map(|o| o.stderr.as_raw_fd()),
        tty: None,
    }
}

/// The workload's namespaces an exec joins: all of them, its user namespace when it has one.
fn namespaces(rootless: bool) -> CloneFlags {
    let all = CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWCGROUP;
    if rootless {
        all | CloneFlags::CLONE_NEWUSER
    } else {
        all
    }
}

/// The socket pair over which the child of `-t` passes its pty's master: vmc's end, the
/// child's end.
fn pty_socket_pair() -> Result<(OwnedFd, OwnedFd), ContainerError> {
    nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::SeqPacket,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| ContainerError::sys("creating the socket for the command's pty", e))
}

/// Refuses what an exec cannot do, before anything is opened.
fn check(runtime: &ContainerRuntime, exec: &ExecSpec) -> Result<(), ContainerError> {
    if exec.args.is_empty() {
        return Err(ContainerError::Unsupported(
            "no command to run: give one after the run's name".into(),
        ));
    }
    if exec.detach && (exec.tty || exec.interactive) {
        return Err(ContainerError::Unsupported(
            "a detached command has no terminal or input: drop -t and -i, or -d".into(),
        ));
    }
    if exec.tty && runtime.output.is_some() {
        return Err(ContainerError::Unsupported(
            "--tty cannot be combined with captured output: drop -t".into(),
        ));
    }
    if let Some(dir) = exec.workdir.as_deref().filter(|dir| !dir.starts_with('/')) {
        return Err(ContainerError::Unsupported(format!(
            "the working directory {} is not an absolute path: give -w /PATH",
            escape(dir)
        )));
    }
    Ok(())
}

/// The command's environment before vmc's additions: the run's, with `exec.env` replacing
/// its values, `HOME` of the `-u` user (`home`) unless `-e` gives one, and `TERM=xterm` with
/// `-t` unless set (as Docker's exec does).
fn exec_env(run_env: &[String], exec: &ExecSpec, home: Option<&str>) -> Vec<String> {
    let mut env = run_env.to_vec();
    if let Some(home) = home {
        set_var(&mut env, format!("HOME={home}"));
    }
    for assignment in &exec.env {
        set_var(&mut env, assignment.clone());
    }
    if exec.tty {
        vmc_runtime::env::set_default_terminal_type(&mut env);
    }
    env
}

/// The files through which the child joins run `id`'s cgroup in every hierarchy.
fn cgroup_files(runtime: &ContainerRuntime, id: &str) -> Result<Vec<CString>, ContainerError> {
    let hierarchy = match Hierarchy::detect(&runtime.cgroup_root) {
        Ok(hierarchy) => hierarchy,
        // Without cgroups the run has none either.
        Err(ContainerError::NoCgroups(_)) => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    hierarchy
        .run_cgroup_dirs(id)?
        .iter()
        .map(|dir| {
            // A process moving itself through `tasks` skips cgroup v1's global lock; v2 has
            // only `cgroup.procs`.
            let v2 = dir.join("cgroup.controllers").exists();
            cpath(&dir.join(if v2 { "cgroup.procs" } else { "tasks" }))
        })
        .collect()
}

/// The first child: joins the run's cgroup and namespaces, and starts the command's process
/// in its PID namespace. Returns its exit status.
fn join(config: &JoinConfig) -> isize {
    let reporter = Reporter::new(config.report_fd);
    let joined = join_run(config).and_then(|()| {
        // SAFETY: the sibling runs `command`, which does not allocate or take locks.
        let sibling = unsafe { spawn::spawn_sibling(|| command(config, &reporter)) };
        step(
            sibling,
            StepWhat::Text("starting the command in the run's PID namespace"),
        )
    });
    match joined {
        Ok(pid) => {
            reporter.send(Event::Started, 0, format_args!("{pid}"));
            0
        }
        Err(failure) => report_failure(&reporter, failure),
    }
}

/// Joins the run's cgroup and all its namespaces (the PID namespace for its children).
fn join_run<'a>(config: &'a JoinConfig) -> Result<(), StepError<'a>> {
    step(
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL),
        StepWhat::Text("setting the parent-death signal"),
    )?;
    for file in &config.cgroups {
        step(
            child::join_cgroup(libc::AT_FDCWD, file),
            StepWhat::Path("joining the cgroup through", file),
        )?;
    }
    // SAFETY: setns on a pidfd this process holds, with namespace flags only.
    let rc = unsafe { libc::setns(config.pidfd, config.namespaces.bits()) };
    step(
        Errno::result(rc).map(drop),
        StepWhat::Text("joining the run's namespaces"),
    )
}

/// The command's process, in the run: takes the workload's identity and executes the
/// command. Returns only on failure, with the exit status.
fn command(config: &JoinConfig, reporter: &Reporter) -> isize {
    match enter(config) {
        Ok(None) => child::execute(&config.command, reporter),
        Ok(Some(errno)) => {
            reporter.send(
                Event::ExecFailed,
                NO_WORKDIR,
                format_args!(
                    "cannot change into the working directory {}: {}",
                    crate::plan::text(&config.workdir),
                    errno.desc()
                ),
            );
            NO_WORKDIR.into()
        }
        Err(failure) => report_failure(reporter, failure),
    }
}

fn report_failure(reporter: &Reporter, (what, errno): StepError) -> isize {
    reporter.send(
        Event::SetupFailed,
        0,
        format_args!("{what}: {}", errno.desc()),
    );
    SETUP_FAILED
}

/// Changes into the working directory, opens the pty with `-t`, and takes the workload's
/// identity. `Ok(Some(why))` when the working directory cannot be entered.
fn enter<'a>(config: &'a JoinConfig) -> Result<Option<Errno>, StepError<'a>> {
    if config.identity.die_with_vmc {
        // vmc is this process's parent.
        step(
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL),
            StepWhat::Text("setting the parent-death signal"),
        )?;
    }
    // The mount namespace's root and working directory are the run's root.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    if let Err(errno) = nix::unistd::chdir(config.workdir.as_c_str()) {
        return Ok(Some(errno));
    }
    let mut stdio = config.identity.stdio;
    if let Some((socket, size)) = &config.terminal {
        stdio.tty = Some(step(
            tty::open_in_run(*socket, size.as_ref()),
            StepWhat::Text("opening a pty in the run's /dev/pts"),
        )?);
    }
    setup_stdio(&stdio)?;
    take_identity(&config.identity)?;
    Ok(None)
}

/// Kills and reaps the child unless disarmed (an error before the command ran).
struct ChildGuard(Option<Pid>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn exec_env_replaces_the_runs_values_and_adds_home_and_term() {
        let run = strings(&["PATH=/bin", "A=1", "HOME=/root"]);
        let exec = ExecSpec {
            env: strings(&["A=2", "B=3"]),
            tty: true,
            ..ExecSpec::default()
        };
        assert_eq!(
            exec_env(&run, &exec, None),
            strings(&["PATH=/bin", "HOME=/root", "A=2", "B=3", "TERM=xterm"])
        );
        assert_eq!(
            exec_env(&run, &ExecSpec::default(), Some("/home/u")),
            strings(&["PATH=/bin", "A=1", "HOME=/home/u"])
        );
        let own = ExecSpec {
            env: strings(&["HOME=/mine", "TERM=dumb"]),
            tty: true,
            ..ExecSpec::default()
        };
        assert_eq!(
            exec_env(&run, &own, Some("/home/u")),
            strings(&["PATH=/bin", "A=1", "HOME=/mine", "TERM=dumb"])
        );
    }
}
