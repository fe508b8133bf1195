//! Running the workload as PID 1's child: credentials, exec, its stdio on the channel's
//! streams (or on a pseudo-terminal relayed to them), signal forwarding, reaping.

use crate::channel::Channel;
use crate::error::InitError;
use crate::exit_device::ExitDevice;
use crate::relay::{Pump, Wait};
use crate::terminal::{set_nonblocking, set_size, Terminal};
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::PtyMaster;
use nix::sys::signal::{kill, signal, SigHandler, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{
    chdir, dup2_stderr, dup2_stdin, dup2_stdout, fork, setgid, setgroups, setsid, setuid,
    ForkResult, Gid, Pid, Uid,
};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use vmc_init::protocol::{BootMilestone, WorkloadStatus, INIT_FAILED_CODE};
use vmc_init::RunConfig;
use vmc_init::TerminalSize;
use vmc_runtime::channel::{ControlDecoder, ControlMessage};
use vmc_runtime::env::DEFAULT_PATH;
use vmc_runtime::exec::ExecCommand;
use vmc_runtime::signals::FORWARDED;

/// How long the init waits for more output on a `-t` run's terminal once the workload has
/// exited (output still in flight inside the kernel's terminal layer, or a background process
/// that keeps writing).
const TERMINAL_LINGER_MS: u16 = 100;

/// Starts the workload with its stdio on `channel` (or on a new pseudo-terminal for a `-t`
/// run) and supervises it until it exits: forwards the signals the init receives or the host
/// sends on the control stream, reaps every orphan that ends up as the init's child, and
/// returns the workload's status once its output has reached the host.
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
    let terminal = config
        .tty
        .then(|| Terminal::open(config.terminal_size))
        .transpose()?;
    // SAFETY: the init is single-threaded, so the child may run any code after fork.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let code = exec_workload(config, &channel, terminal.as_ref(), device);
            // SAFETY: _exit ends the child without running the init's exit handlers.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => {
            let mut relay = match terminal {
                Some(Terminal { master, slave }) => {
                    // The workload holds the terminal now: the master reads EIO once it is gone.
                    drop(slave);
                    Some(TerminalRelay::new(master, &channel)?)
                }
                None => None,
            };
            let status = supervise(child, &signals, &channel.control, relay.as_mut(), &channel)?;
            if let Some(relay) = &mut relay {
                relay.finish_output(&channel);
            }
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
fn exec_workload(
    config: &RunConfig,
    channel: &Channel,
    terminal: Option<&Terminal>,
    device: &ExitDevice,
) -> i32 {
    if let Err(err) = enter_workload_context(config, channel, terminal) {
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
fn enter_workload_context(
    config: &RunConfig,
    channel: &Channel,
    terminal: Option<&Terminal>,
) -> Result<(), InitError> {
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
    attach_stdio(channel, terminal).map_err(InitError::Stdio)?;
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

/// In the workload's child process (a new session leader): the terminal as its controlling
/// terminal and stdio for a `-t` run; otherwise the channel's streams (stdin `/dev/null`
/// without `-i`).
fn attach_stdio(channel: &Channel, terminal: Option<&Terminal>) -> Result<(), Errno> {
    if let Some(terminal) = terminal {
        // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal from another session).
        Errno::result(unsafe { libc::ioctl(terminal.slave.as_raw_fd(), libc::TIOCSCTTY, 0) })?;
        dup2_stdin(&terminal.slave)?;
        dup2_stdout(&terminal.slave)?;
        return dup2_stderr(&terminal.slave);
    }
    match &channel.stdin {
        Some(stdin) => dup2_stdin(stdin)?,
        None => dup2_stdin(open(
            "/dev/null",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?)?,
    }
    dup2_stdout(&channel.stdout)?;
    match &channel.stderr {
        Some(stderr) => dup2_stderr(stderr),
        None => dup2_stderr(&channel.stdout),
    }
}

/// A `-t` run's terminal master relayed to the stdout stream, and the stdin stream to it.
struct TerminalRelay {
    master: PtyMaster,
    output: Pump,
    input: Option<Pump>,
}

impl TerminalRelay {
    /// Relays `master` through `channel`'s streams, which become non-blocking.
    fn new(master: PtyMaster, channel: &Channel) -> Result<Self, InitError> {
        let nonblocking = |fd: &OwnedFd| {
            set_nonblocking(fd.as_raw_fd()).map_err(|errno| InitError::Supervise {
                what: "making a stream non-blocking",
                errno,
            })
        };
        nonblocking(&channel.stdout)?;
        if let Some(stdin) = &channel.stdin {
            nonblocking(stdin)?;
        }
        Ok(TerminalRelay {
            master,
            output: Pump::default(),
            input: channel.stdin.as_ref().map(|_| Pump::default()),
        })
    }

    /// The descriptors to poll, with their events.
    fn poll_fds<'a>(&'a self, channel: &'a Channel) -> Vec<PollFd<'a>> {
        let mut fds = Vec::with_capacity(2);
        match self.output.wait() {
            (Wait::Source, events) => fds.push(PollFd::new(self.master.as_fd(), events)),
            (Wait::Destination, events) => fds.push(PollFd::new(channel.stdout.as_fd(), events)),
            (Wait::Done, _) => {}
        }
        if let (Some(input), Some(stdin)) = (&self.input, &channel.stdin) {
            match input.wait() {
                (Wait::Source, events) => fds.push(PollFd::new(stdin.as_fd(), events)),
                (Wait::Destination, events) => fds.push(PollFd::new(self.master.as_fd(), events)),
                (Wait::Done, _) => {}
            }
        }
        fds
    }

    /// Moves what can be moved now, both ways.
    fn run(&mut self, channel: &Channel) {
        self.output.run(self.master.as_fd(), channel.stdout.as_fd());
        if let (Some(input), Some(stdin)) = (&mut self.input, &channel.stdin) {
            input.run(stdin.as_fd(), self.master.as_fd());
        }
    }

    /// Once the workload has exited: relays the terminal's remaining output, until the
    /// terminal is closed or stays quiet for [`TERMINAL_LINGER_MS`].
    fn finish_output(&mut self, channel: &Channel) {
        loop {
            self.output.run(self.master.as_fd(), channel.stdout.as_fd());
            let (wait, events) = self.output.wait();
            let (fd, timeout) = match wait {
                Wait::Done => return,
                Wait::Destination => (channel.stdout.as_fd(), PollTimeout::NONE),
                Wait::Source => (self.master.as_fd(), PollTimeout::from(TERMINAL_LINGER_MS)),
            };
            let mut fds = [PollFd::new(fd, events)];
            match poll(&mut fds, timeout) {
                Ok(0) => return,
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }

    /// Gives the terminal a new size.
    fn resize(&self, size: TerminalSize) {
        if let Err(errno) = set_size(self.master.as_raw_fd(), size) {
            eprintln!("vmc-init: resizing the terminal: {errno}");
        }
    }
}

/// Waits for the workload to exit, reaping orphans meanwhile, passing on to it the signals
/// the init receives and those the host sends on `control` (where it also sends new terminal
/// sizes), and relaying a `-t` run's terminal.
fn supervise(
    workload: Pid,
    signals: &SigSet,
    control: &OwnedFd,
    mut relay: Option<&mut TerminalRelay>,
    channel: &Channel,
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
        if let Some(relay) = &relay {
            fds.extend(relay.poll_fds(channel));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            other => other.map_err(failed("waiting for signals"))?,
        };
        let ready = |fd: &PollFd| fd.revents().is_some_and(|events| !events.is_empty());
        let signalled = ready(&fds[0]);
        let control_ready = control_open && ready(&fds[1]);
        drop(fds);
        if let Some(relay) = &mut relay {
            relay.run(channel);
        }
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
                        obey(workload, message, relay.as_deref());
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
fn obey(workload: Pid, message: ControlMessage, relay: Option<&TerminalRelay>) {
    match message {
        ControlMessage::Signal(number) => match Signal::try_from(i32::from(number)) {
            Ok(signal) if FORWARDED.contains(&signal) || signal == Signal::SIGKILL => {
                signal_workload(workload, signal)
            }
            _ => {}
        },
        ControlMessage::Resize { rows, cols } => {
            if let Some(relay) = relay {
                relay.resize(TerminalSize { rows, cols });
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
