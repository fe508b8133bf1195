//! The guest's end of the host↔guest channel ([`vmc_protocol::channel`]): one vsock connection
//! to the host per stream, opened before the workload starts.

use crate::error::InitError;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    connect, shutdown, socket, AddressFamily, Shutdown, SockFlag, SockType, VsockAddr,
};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use vmc_protocol::channel::{Stream, HOST_CID};
use vmc_protocol::RunConfig;

/// The run's open streams.
pub struct Channel {
    /// vmc's stdin, for an interactive run.
    pub stdin: Option<OwnedFd>,
    /// To vmc's stdout.
    pub stdout: OwnedFd,
    /// To vmc's stderr, unless the run has a terminal (which merges it into stdout).
    pub stderr: Option<OwnedFd>,
    /// The host's control messages.
    pub control: OwnedFd,
}

impl Channel {
    /// Connects the streams the run uses.
    pub fn open(config: &RunConfig) -> Result<Self, InitError> {
        Ok(Channel {
            stdin: config
                .interactive
                .then(|| connect_stream(Stream::Stdin))
                .transpose()?,
            stdout: connect_stream(Stream::Stdout)?,
            stderr: (!config.tty)
                .then(|| connect_stream(Stream::Stderr))
                .transpose()?,
            control: connect_stream(Stream::Control)?,
        })
    }

    /// Waits until the host has written out everything sent on stdout and stderr: ends the
    /// guest's sending on both, then waits for the host to close them, which it does once the
    /// last byte is written to vmc's stdout/stderr. Best effort: a stream that fails is skipped.
    pub fn drain(self) {
        drop(self.stdin);
        drop(self.control);
        let outputs = [Some(self.stdout), self.stderr];
        for stream in outputs.iter().flatten() {
            let _ = shutdown(stream.as_raw_fd(), Shutdown::Write);
        }
        for stream in outputs.iter().flatten() {
            wait_for_close(stream);
        }
    }
}

/// Connects to the host's port for `stream` (close-on-exec: the workload gets it only as
/// its stdio).
fn connect_stream(stream: Stream) -> Result<OwnedFd, InitError> {
    let failed = |errno| InitError::Channel { stream, errno };
    let fd = socket(
        AddressFamily::Vsock,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(failed)?;
    let host = VsockAddr::new(HOST_CID, stream.port());
    loop {
        match connect(fd.as_raw_fd(), &host) {
            Err(Errno::EINTR) => continue,
            result => break result.map_err(failed)?,
        }
    }
    Ok(fd)
}

/// Reads (and drops) until the host closes `stream` (blocking or not).
fn wait_for_close(stream: &OwnedFd) {
    let mut bytes = [0u8; 256];
    loop {
        let mut fds = [PollFd::new(stream.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
        match nix::unistd::read(stream, &mut bytes) {
            Ok(0) => return,
            Ok(_) | Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(_) => return,
        }
    }
}
