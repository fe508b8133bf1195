//! The workload's stdin, stdout and stderr, and how the init relays them to the channel's
//! streams ([`crate::relay`]): pipes, as in container mode (stdout and stderr write-only,
//! stdin read-only), or for a `-t` run a pseudo-terminal ([`crate::terminal`]) that is all
//! three and its controlling terminal.

use crate::channel::Channel;
use crate::error::InitError;
use crate::relay::Relay;
use crate::terminal::{set_nonblocking, Terminal};
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::poll::PollTimeout;
use nix::sys::stat::Mode;
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, pipe2};
use std::os::fd::{AsRawFd, OwnedFd};
use vmc_protocol::RunConfig;

/// How long a terminal may stay quiet after the workload's exit before its output counts as
/// drained: what the workload wrote last can still be on its way through the kernel's
/// terminal layer.
const TERMINAL_LINGER_MS: u16 = 100;

/// The workload's ends of its stdio.
enum WorkloadEnds {
    /// A pseudo-terminal's slave.
    Terminal(OwnedFd),
    /// Pipes (stdin `None`: `/dev/null`).
    Pipes {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
}

/// The workload's stdio before the fork: its ends, the init's relay, and the terminal's
/// master (for resizes).
pub struct Stdio {
    workload: WorkloadEnds,
    relay: Relay,
    terminal: Option<OwnedFd>,
}

impl Stdio {
    /// Sets up the run's stdio on `channel`: the init's ends and the streams become
    /// non-blocking, the workload's stay blocking. Without `-t` the init's own stderr becomes
    /// the workload's stderr pipe, so its messages reach vmc's stderr.
    pub fn create(config: &RunConfig, channel: &Channel) -> Result<Self, InitError> {
        let failed = |errno| InitError::Supervise {
            what: "setting up the workload's stdio",
            errno,
        };
        let init_end = |fd: OwnedFd| -> Result<OwnedFd, InitError> {
            set_nonblocking(fd.as_raw_fd()).map_err(failed)?;
            Ok(fd)
        };
        let stream = |fd: &OwnedFd| init_end(fd.try_clone().map_err(|err| failed(io_errno(err)))?);
        let mut relay = Relay::default();
        if config.tty {
            let Terminal { master, slave } = Terminal::open(config.terminal_size)?;
            let master: OwnedFd = master.into();
            let clone = |fd: &OwnedFd| fd.try_clone().map_err(|err| failed(io_errno(err)));
            if let Some(stdin) = &channel.stdin {
                relay.input(stream(stdin)?, clone(&master)?);
            }
            relay.output(
                clone(&master)?,
                stream(&channel.stdout)?,
                PollTimeout::from(TERMINAL_LINGER_MS),
            );
            return Ok(Stdio {
                workload: WorkloadEnds::Terminal(slave),
                relay,
                terminal: Some(master),
            });
        }
        let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(failed);
        let stdin = match &channel.stdin {
            Some(socket) => {
                let (workload, init) = pipe()?;
                relay.input(stream(socket)?, init_end(init)?);
                Some(workload)
            }
            None => None,
        };
        let (stdout_init, stdout) = pipe()?;
        relay.output(
            init_end(stdout_init)?,
            stream(&channel.stdout)?,
            PollTimeout::ZERO,
        );
        let (stderr_init, stderr) = pipe()?;
        if let Some(socket) = &channel.stderr {
            relay.output(init_end(stderr_init)?, stream(socket)?, PollTimeout::ZERO);
        }
        // Best effort: the console keeps the init's messages otherwise.
        let _ = dup2_stderr(&stderr);
        Ok(Stdio {
            workload: WorkloadEnds::Pipes {
                stdin,
                stdout,
                stderr,
            },
            relay,
            terminal: None,
        })
    }

    /// In the workload's child process (a new session leader): connects its stdio, and for a
    /// `-t` run makes the terminal its controlling terminal.
    pub fn attach(&self) -> Result<(), Errno> {
        match &self.workload {
            WorkloadEnds::Terminal(slave) => {
                // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal it from another
                // session).
                Errno::result(unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) })?;
                dup2_stdin(slave)?;
                dup2_stdout(slave)?;
                dup2_stderr(slave)
            }
            WorkloadEnds::Pipes {
                stdin,
                stdout,
                stderr,
            } => {
                match stdin {
                    Some(stdin) => dup2_stdin(stdin)?,
                    None => dup2_stdin(open(
                        "/dev/null",
                        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )?)?,
                }
                dup2_stdout(stdout)?;
                dup2_stderr(stderr)
            }
        }
    }

    /// In the init once the workload runs: drops the workload's ends (so the init's reads see
    /// their end) and returns the relay and the terminal's master, if any.
    pub fn into_relay(self) -> (Relay, Option<OwnedFd>) {
        drop(self.workload);
        (self.relay, self.terminal)
    }
}

/// The errno of an I/O error from std (descriptor duplication).
fn io_errno(err: std::io::Error) -> Errno {
    Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO))
}
