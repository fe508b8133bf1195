//! The signals vmc passes on to the workload, in both modes: a container's supervisor sends
//! them to the workload's process; in a VM the VMM sends them on the control stream of the
//! host↔guest channel (`vmc_protocol::channel`), where vmc-init reads them and signals the
//! workload.

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::io;
use std::os::fd::AsFd;
use std::process::{Child, ExitStatus};

/// The signals vmc passes on to the workload (SIGWINCH resizes the workload's terminal instead
/// with `--tty`).
pub const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// Interrupts after which vmc stops forwarding SIGINT and kills the workload (a PID 1 without
/// a SIGINT handler ignores it, like in `docker run` without `--init`).
pub const INTERRUPTS_BEFORE_KILL: u32 = 3;

/// The forwarded signals that end a run whose workload has not started yet (the others are
/// dropped until then: there is no workload to pass them to).
pub const ENDING_SETUP: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// A run ended by one of [`ENDING_SETUP`] before its workload started. vmc removes what the
/// run made and exits 128 + the signal's number, as a shell reports a command it killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted by {} before the workload started: the run was removed", .0.as_str())]
pub struct Interrupted(pub Signal);

impl Interrupted {
    /// vmc's exit status: 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
    pub fn exit_code(&self) -> i32 {
        128 + self.0 as i32
    }
}

/// Blocks [`FORWARDED`] in the calling thread for good: for helper threads (a memory
/// sampler, say) started before a [`SignalCatcher`], which must leave those signals to it
/// rather than die of them.
pub fn block_forwarded_in_this_thread() -> Result<(), Errno> {
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&forwarded_set()), None)
}

/// [`FORWARDED`] as a signal set.
fn forwarded_set() -> SigSet {
    FORWARDED.into_iter().collect()
}

/// The forwarded signals, blocked in this thread and readable from a signalfd while it lives.
#[derive(Debug)]
pub struct SignalCatcher {
    fd: SignalFd,
    previous_mask: SigSet,
}

impl SignalCatcher {
    /// Blocks [`FORWARDED`] in the calling thread (and so in the threads it starts from now
    /// on) and opens a signalfd for them.
    pub fn new() -> Result<Self, Errno> {
        let set = forwarded_set();
        let mut previous_mask = SigSet::empty();
        nix::sys::signal::pthread_sigmask(
            SigmaskHow::SIG_BLOCK,
            Some(&set),
            Some(&mut previous_mask),
        )?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
        Ok(SignalCatcher { fd, previous_mask })
    }

    /// The mask to restore in the child before it executes the workload.
    pub fn previous_mask(&self) -> libc::sigset_t {
        *self.previous_mask.as_ref()
    }

    /// The signalfd to poll.
    pub fn fd(&self) -> &SignalFd {
        &self.fd
    }

    /// The next pending signal, if any.
    pub fn next(&self) -> Option<Signal> {
        match self.fd.read_signal() {
            Ok(Some(info)) => Signal::try_from(info.ssi_signo as i32).ok(),
            _ => None,
        }
    }

    /// For a setup: takes the pending signals, dropping those that do not end it; the first of
    /// [`ENDING_SETUP`] among them ends it, and the ones after it are dropped too (left
    /// pending, they would kill vmc mid-cleanup when the mask is restored).
    pub fn take_ending(&self) -> Option<Interrupted> {
        while let Some(signal) = self.next() {
            if ENDING_SETUP.contains(&signal) {
                while self.next().is_some() {}
                return Some(Interrupted(signal));
            }
        }
        None
    }

    /// Waits for `child` (a helper program of a setup, such as mkfs) to exit. A signal of
    /// [`ENDING_SETUP`] that comes first kills it (SIGKILL) and reaps it, and is returned.
    pub fn wait_for_child(&self, child: &mut Child) -> io::Result<Result<ExitStatus, Interrupted>> {
        let pidfd = crate::process::pidfd_open(child.id() as i32)?;
        loop {
            let mut fds = [
                PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.fd.as_fd(), PollFlags::POLLIN),
            ];
            match nix::poll::poll(&mut fds, PollTimeout::NONE) {
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(errno.into()),
                Ok(_) => {}
            }
            if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                return child.wait().map(Ok);
            }
            if let Some(interrupted) = self.take_ending() {
                child.kill()?;
                child.wait()?;
                return Ok(Err(interrupted));
            }
        }
    }
}

impl Drop for SignalCatcher {
    fn drop(&mut self) {
        // Signals caught while the workload ran were all consumed from the signalfd.
        let _ = nix::sys::signal::pthread_sigmask(
            SigmaskHow::SIG_SETMASK,
            Some(&self.previous_mask),
            None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupted_runs_exit_like_killed_commands() {
        let interrupted = Interrupted(Signal::SIGINT);
        assert_eq!(interrupted.exit_code(), 130);
        assert_eq!(Interrupted(Signal::SIGTERM).exit_code(), 143);
        assert_eq!(
            interrupted.to_string(),
            "interrupted by SIGINT before the workload started: the run was removed"
        );
    }
}
