//! Running the workload as PID 1's child: credentials, exec, signal forwarding, reaping.

use crate::console::{self, WorkloadStdin};
use crate::error::InitError;
use crate::exit_device::ExitDevice;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, signal, SigHandler, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{chdir, fork, setgid, setgroups, setsid, setuid, ForkResult, Gid, Pid, Uid};
use std::os::fd::{AsFd, OwnedFd};
use vmc_protocol::exit_device::{BootMilestone, WorkloadStatus, INIT_FAILED_CODE};
use vmc_protocol::RunConfig;
use vmc_protocol::TerminalSize;
use vmc_runtime::env::DEFAULT_PATH;
use vmc_runtime::exec::ExecCommand;
use vmc_runtime::guest_control::{Decoder, GuestControl};
use vmc_runtime::signals::FORWARDED;

/// Starts the workload and supervises it until it exits: forwards the signals the init
/// receives or reads on `control_line` (from vmc, through the VMM), reaps every orphan that
/// ends up as the init's child, and returns the workload's status.
pub fn run_workload(
    config: &RunConfig,
    device: &ExitDevice,
    control_line: Option<OwnedFd>,
) -> Result<WorkloadStatus, InitError> {
    let mut signals: SigSet = FORWARDED.into_iter().collect();
    signals.add(Signal::SIGCHLD);
    // Blocked before the fork, so no signal (not even the workload's SIGCHLD) is missed.
    signals
        .thread_block()
        .map_err(|errno| InitError::Supervise {
            what: "blocking signals",
            errno,
        })?;
    let stdin = WorkloadStdin::for_run(config.tty, config.interactive)?;
    // SAFETY: the init is single-threaded, so the child may run any code after fork.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let code = exec_workload(config, &stdin, device);
            // SAFETY: _exit ends the child without running the init's exit handlers.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => {
            // The workload holds its stdin now; a relay that outlives the workload's reading
            // gets EPIPE instead of blocking.
            drop(stdin);
            supervise(child, &signals, control_line.as_ref())
        }
        Err(errno) => Err(InitError::Supervise {
            what: "forking the workload",
            errno,
        }),
    }
}

/// In the child: becomes the workload or returns the exit status explaining why it could not.
fn exec_workload(config: &RunConfig, stdin: &WorkloadStdin, device: &ExitDevice) -> i32 {
    if let Err(err) = enter_workload_context(config, stdin) {
        eprintln!("vmc-init: {err}");
        return INIT_FAILED_CODE.into();
    }
    let path = config.path_var().unwrap_or(DEFAULT_PATH);
    let command = match ExecCommand::new(&config.args, &config.env, path) {
        Ok(command) => command,
        Err(err) => {
            eprintln!("vmc-init: {err}");
            return INIT_FAILED_CODE.into();
        }
    };
    device.milestone(BootMilestone::WorkloadExec);
    if let Err(errno) = device.release() {
        eprintln!("vmc-init: giving up the exit device ports: {errno}");
        return INIT_FAILED_CODE.into();
    }
    let failure = command.exec();
    eprintln!("vmc: {failure}");
    failure.exit_code().into()
}

/// In the child: restores the signal mask and SIGPIPE's default action (Rust ignores it, and
/// an ignored signal stays ignored across exec), starts a session attached to the console,
/// connects stdin, drops to the workload's user and enters its working directory.
fn enter_workload_context(config: &RunConfig, stdin: &WorkloadStdin) -> Result<(), InitError> {
    let unblocking = |errno| InitError::Supervise {
        what: "restoring signal handling",
        errno,
    };
    SigSet::empty().thread_set_mask().map_err(unblocking)?;
    // SAFETY: SIG_DFL installs no handler: nothing of this process runs on the signal.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.map_err(unblocking)?;
    setsid().map_err(|errno| InitError::Supervise {
        what: "starting a session",
        errno,
    })?;
    console::attach_workload(config.tty, stdin).map_err(InitError::Console)?;
    let (uid, gid) = (config.uid, config.gid);
    let credentials = |errno| InitError::Credentials { uid, gid, errno };
    setgroups(&[Gid::from_raw(gid)]).map_err(credentials)?;
    setgid(Gid::from_raw(gid)).map_err(credentials)?;
    setuid(Uid::from_raw(uid)).map_err(credentials)?;
    chdir(config.workdir.as_str()).map_err(|errno| InitError::Workdir {
        path: config.workdir.clone(),
        errno,
    })
}

/// Waits for the workload to exit, reaping orphans meanwhile and passing on to it the signals
/// the init receives and those the VMM sends on `control_line` (where it also sends new
/// terminal sizes).
fn supervise(
    workload: Pid,
    signals: &SigSet,
    control_line: Option<&OwnedFd>,
) -> Result<WorkloadStatus, InitError> {
    let failed = |what| move |errno| InitError::Supervise { what, errno };
    let signal_fd = SignalFd::with_flags(signals, SfdFlags::SFD_CLOEXEC)
        .map_err(failed("creating a signalfd"))?;
    let mut decoder = Decoder::default();
    loop {
        let mut fds = vec![PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN)];
        if let Some(line) = control_line {
            fds.push(PollFd::new(line.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            other => other.map_err(failed("waiting for signals"))?,
        };
        let ready = |fd: &PollFd| fd.revents().is_some_and(|events| !events.is_empty());
        let (signalled, line_ready) = (ready(&fds[0]), fds.get(1).is_some_and(ready));
        drop(fds);
        if signalled {
            let info = signal_fd
                .read_signal()
                .map_err(failed("reading a signal"))?;
            match info.and_then(|info| Signal::try_from(info.ssi_signo as i32).ok()) {
                Some(Signal::SIGCHLD) => {
                    if let Some(status) = reap_children(workload)? {
                        return Ok(status);
                    }
                }
                Some(signal) => signal_workload(workload, signal),
                None => {}
            }
        }
        if let (Some(line), true) = (control_line, line_ready) {
            for message in read_control_line(line, &mut decoder)? {
                obey(workload, message);
            }
        }
    }
}

/// Reads what the VMM sent on the control line.
fn read_control_line(
    line: &OwnedFd,
    decoder: &mut Decoder,
) -> Result<Vec<GuestControl>, InitError> {
    let mut bytes = [0u8; 64];
    match nix::unistd::read(line, &mut bytes) {
        Ok(count) => Ok(decoder.decode(&bytes[..count])),
        Err(Errno::EINTR | Errno::EAGAIN) => Ok(Vec::new()),
        Err(errno) => Err(InitError::Supervise {
            what: "reading the VMM's control line",
            errno,
        }),
    }
}

/// Carries out one message of the VMM: a signal vmc forwards (or SIGKILL, after three
/// interrupts), or a new size of the console (the kernel then sends SIGWINCH to the workload).
fn obey(workload: Pid, message: GuestControl) {
    match message {
        GuestControl::Signal(signal)
            if FORWARDED.contains(&signal) || signal == Signal::SIGKILL =>
        {
            signal_workload(workload, signal)
        }
        GuestControl::Signal(_) => {}
        GuestControl::Resize { rows, cols } => {
            if let Err(err) = console::set_size(TerminalSize { rows, cols }) {
                eprintln!("vmc-init: resizing the console: {err}");
            }
        }
    }
}

/// Sends `signal` to the workload. ESRCH means the workload has just exited (its SIGCHLD is
/// pending): there is nothing to signal.
fn signal_workload(workload: Pid, signal: Signal) {
    let _ = kill(workload, signal);
}

/// Reaps every exited child; returns the workload's status if it was among them.
fn reap_children(workload: Pid) -> Result<Option<WorkloadStatus>, InitError> {
    let mut workload_status = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == workload => {
                workload_status = Some(WorkloadStatus::Exited(code as u8));
            }
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == workload => {
                workload_status = Some(WorkloadStatus::Signaled(signal as i32 as u8));
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return Ok(workload_status),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(errno) => {
                return Err(InitError::Supervise {
                    what: "reaping children",
                    errno,
                });
            }
        }
    }
}
