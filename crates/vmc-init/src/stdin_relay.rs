//! The workload's stdin for a non-terminal interactive run (`-i` without `-t`): a pipe, as in
//! container mode, filled by a relay process that reads the console and decodes the VMM's
//! escaped stream ([`vmc_runtime::stdin_stream`]). At the stream's end marker the relay exits,
//! closing the pipe: the workload reads end-of-file where vmc's stdin ended on the host.

use crate::error::InitError;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::unistd::{fork, pipe2, read, write, ForkResult};
use std::os::fd::{AsFd, OwnedFd};
use vmc_runtime::stdin_stream::Decoder;

/// Starts the relay process (a child of the init, reaped like any orphan) and returns the
/// pipe's read end for the workload. The init keeps no write end, so the relay's exit is the
/// pipe's end.
pub fn start() -> Result<OwnedFd, InitError> {
    let failed = |what| move |errno| InitError::Supervise { what, errno };
    let (read_end, write_end) =
        pipe2(OFlag::O_CLOEXEC).map_err(failed("creating the stdin pipe"))?;
    // SAFETY: the init is single-threaded, so the child may run any code after fork.
    match unsafe { fork() }.map_err(failed("forking the stdin relay"))? {
        ForkResult::Child => {
            drop(read_end);
            let code = match relay(std::io::stdin().as_fd(), &write_end) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            // SAFETY: _exit ends the relay without running the init's exit handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { .. } => Ok(read_end),
    }
}

/// Copies the decoded console input into `pipe` until the stream's end marker. Fails when the
/// console cannot be read or the workload has closed its stdin.
fn relay(console: impl AsFd, pipe: &OwnedFd) -> Result<(), Errno> {
    let mut decoder = Decoder::default();
    let mut line = [0u8; 4096];
    let mut input = Vec::with_capacity(line.len());
    loop {
        let count = match read(&console, &mut line) {
            Ok(0) => return Ok(()),
            Ok(count) => count,
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno),
        };
        input.clear();
        let ended = decoder.decode(&line[..count], &mut input);
        write_all(pipe, &input)?;
        if ended {
            return Ok(());
        }
    }
}

/// Writes all of `bytes` to `fd`.
fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match write(fd, bytes) {
            Ok(written) => bytes = &bytes[written..],
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmc_runtime::stdin_stream::{encode, END_OF_INPUT};

    #[test]
    fn relay_decodes_until_the_end_marker() {
        let (console_read, console_write) = pipe2(OFlag::O_CLOEXEC).unwrap();
        let (pipe_read, pipe_write) = pipe2(OFlag::O_CLOEXEC).unwrap();
        let mut line = Vec::new();
        encode(b"one\xfftwo\n", &mut line);
        line.extend_from_slice(&END_OF_INPUT);
        line.extend_from_slice(b"after the end");
        write_all(&console_write, &line).unwrap();
        relay(&console_read, &pipe_write).unwrap();
        drop(pipe_write);
        let mut received = vec![0u8; 64];
        let count = read(&pipe_read, &mut received).unwrap();
        assert_eq!(&received[..count], b"one\xfftwo\n");
    }

    #[test]
    fn relay_fails_when_the_workload_closed_its_stdin() {
        let (console_read, console_write) = pipe2(OFlag::O_CLOEXEC).unwrap();
        let (pipe_read, pipe_write) = pipe2(OFlag::O_CLOEXEC).unwrap();
        drop(pipe_read);
        write_all(&console_write, b"x").unwrap();
        // (Rust programs ignore SIGPIPE, the init and this test alike: the write fails instead.)
        assert_eq!(relay(&console_read, &pipe_write), Err(Errno::EPIPE));
    }
}
