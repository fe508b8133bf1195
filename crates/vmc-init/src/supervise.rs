//! Running the workload as PID 1's child: credentials, exec, its stdio on the channel's
//! streams (or on a pseudo-terminal relayed to them), signal forwarding, reaping.

use crate::channel::Channel;
use crate::error::InitError;
use crate::exit_device::ExitDevice;
use crate::relay::Relay;
use crate::stdio::Stdio;
use crate::terminal::set_size;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, signal, SigHandler, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{chdir, fork, setgid, setgroups, setsid, setuid, ForkResult, Gid, Pid, Uid};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use vmc_protocol::channel::{ControlDecoder, ControlMessage};
use vmc_protocol::exit_device::{BootMilestone, WorkloadStatus, INIT_FAILED_CODE};
use vmc_protocol::{RunConfig, TerminalSize};
use vmc_runtime::env::DEFAULT_PATH;
use vmc_runtime::exec::ExecCommand;
use vmc_runtime::signals::FORWARDED;

/// Starts the workload with its stdio relayed to `channel` and supervises it until it exits:
/// forwards the signals the init receives or the host sends on the control stream, reaps
/// every orphan that ends up as the init's child, and returns the workload's status once its
/// output has reached the host.
pub fn run_workload(
    config: &RunConfig,
    device: &ExitDevice,
    channel: Channel,
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
    let stdio = Stdio::create(config, &channel)?;
    // SAFETY: the init is single-threaded, so the child may run any code after fork.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let code = exec_workload(config, &stdio, device);
            // SAFETY: _exit ends the child without running the init's exit handlers.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => {
            let (mut relay, terminal) = stdio.into_relay();
            let status = supervise(child, &signals, &channel.control, &mut relay, terminal)?;
            relay.finish();
            channel.drain();
            Ok(status)
        }
        Err(errno) => Err(InitError::Supervise {
            what: "forking the workload",
            errno,
        }),
    }
}

/// In the child: becomes the workload or returns the exit status explaining why it could not.
fn exec_workload(config: &RunConfig, stdio: &Stdio, device: &ExitDevice) -> i32 {
    if let Err(err) = enter_workload_context(config, stdio) {
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
/// an ignored signal stays ignored across exec), starts a session, connects its stdio, drops
/// to the workload's user and enters its working directory.
fn enter_workload_context(config: &RunConfig, stdio: &Stdio) -> Result<(), InitError> {
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
    stdio.attach().map_err(InitError::Stdio)?;
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

/// Waits for the workload to exit, reaping orphans meanwhile, passing on to it the signals
/// the init receives and those the host sends on `control` (where it also sends new terminal
/// sizes, for `terminal`), and relaying its stdio.
fn supervise(
    workload: Pid,
    signals: &SigSet,
    control: &OwnedFd,
    relay: &mut Relay,
    terminal: Option<OwnedFd>,
) -> Result<WorkloadStatus, InitError> {
    let failed = |what| move |errno| InitError::Supervise { what, errno };
    let signal_fd = SignalFd::with_flags(signals, SfdFlags::SFD_CLOEXEC)
        .map_err(failed("creating a signalfd"))?;
    let mut decoder = ControlDecoder::default();
    let mut control_open = true;
    loop {
        let mut fds = vec![PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN)];
        if control_open {
            fds.push(PollFd::new(control.as_fd(), PollFlags::POLLIN));
        }
        fds.extend(relay.poll_fds());
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            other => other.map_err(failed("waiting for signals"))?,
        };
        let ready = |fd: &PollFd| fd.revents().is_some_and(|events| !events.is_empty());
        let signalled = ready(&fds[0]);
        let control_ready = control_open && ready(&fds[1]);
        drop(fds);
        relay.run();
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
        if control_ready {
            match read_control(control, &mut decoder)? {
                Some(messages) => {
                    for message in messages {
                        obey(workload, message, terminal.as_ref());
                    }
                }
                None => control_open = false,
            }
        }
    }
}

/// Reads what the host sent on the control stream; `None` once the host has closed it.
fn read_control(
    control: &OwnedFd,
    decoder: &mut ControlDecoder,
) -> Result<Option<Vec<ControlMessage>>, InitError> {
    let mut bytes = [0u8; 256];
    match nix::unistd::read(control, &mut bytes) {
        Ok(0) => Ok(None),
        Ok(count) => Ok(Some(decoder.decode(&bytes[..count]))),
        Err(Errno::EINTR | Errno::EAGAIN) => Ok(Some(Vec::new())),
        Err(errno) => Err(InitError::Supervise {
            what: "reading the host's control stream",
            errno,
        }),
    }
}

/// Carries out one message of the host: a signal vmc forwards (or SIGKILL, after three
/// interrupts), or a new size of the terminal (the kernel then sends SIGWINCH to the workload).
fn obey(workload: Pid, message: ControlMessage, terminal: Option<&OwnedFd>) {
    match message {
        ControlMessage::Signal(number) => match Signal::try_from(i32::from(number)) {
            Ok(signal) if FORWARDED.contains(&signal) || signal == Signal::SIGKILL => {
                signal_workload(workload, signal)
            }
            _ => {}
        },
        ControlMessage::Resize { rows, cols } => {
            if let Some(terminal) = terminal {
                if let Err(errno) = set_size(terminal.as_raw_fd(), TerminalSize { rows, cols }) {
                    eprintln!("vmc-init: resizing the terminal: {errno}");
                }
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
