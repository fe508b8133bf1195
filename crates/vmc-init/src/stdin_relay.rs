//! The workload's stdin for a non-terminal interactive run (`-i` without `-t`): a pipe, as in
//! container mode, filled by a relay process that reads the console and decodes the VMM's
//! escaped stream ([`vmc_runtime::stdin_stream`]). At the stream's end marker the relay exits,
//! closing the pipe: the workload reads end-of-file where vmc's stdin ended on the host.

use crate::error::InitError;
use nix::fcntl::OFlag;
use nix::unistd::{fork, pipe2, ForkResult};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
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
            let code = match relay(std::io::stdin(), File::from(write_end)) {
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
fn relay(mut console: impl Read, mut pipe: impl Write) -> io::Result<()> {
    let mut decoder = Decoder::default();
    let mut line = [0u8; 4096];
    let mut input = Vec::with_capacity(line.len());
    loop {
        let count = match console.read(&mut line) {
            Ok(0) => return Ok(()),
            Ok(count) => count,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        input.clear();
        let ended = decoder.decode(&line[..count], &mut input);
        pipe.write_all(&input)?;
        if ended {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmc_runtime::stdin_stream::{encode, END_OF_INPUT};

    #[test]
    fn relay_decodes_until_the_end_marker() {
        let mut line = Vec::new();
        encode(b"one\xfftwo\n", &mut line);
        line.extend_from_slice(&END_OF_INPUT);
        line.extend_from_slice(b"after the end");
        let mut received = Vec::new();
        relay(line.as_slice(), &mut received).unwrap();
        assert_eq!(received, b"one\xfftwo\n");
    }

    #[test]
    fn relay_fails_when_the_workload_closed_its_stdin() {
        let (pipe_read, pipe_write) = pipe2(OFlag::O_CLOEXEC).unwrap();
        drop(pipe_read);
        // (Rust programs ignore SIGPIPE, the init and this test alike: the write fails instead.)
        let err = relay(&b"x"[..], File::from(pipe_write)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
    }
}
