//! Copying between two non-blocking descriptors without blocking the init: a [`Pump`] reads
//! from its source only when it has nothing left to write, and waits for its destination to
//! take what it holds. The init pumps a `-t` run's terminal master to the stdout stream and
//! the stdin stream to the master.

use nix::errno::Errno;
use nix::poll::PollFlags;
use std::os::fd::{AsFd, BorrowedFd};

/// What one pump waits for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Its source to be readable.
    Source,
    /// Its destination to be writable.
    Destination,
    /// Nothing: its source has ended.
    Done,
}

/// One direction of a relay.
pub struct Pump {
    pending: Vec<u8>,
    written: usize,
    ended: bool,
}

impl Default for Pump {
    fn default() -> Self {
        Pump {
            pending: Vec::with_capacity(PUMP_CHUNK),
            written: 0,
            ended: false,
        }
    }
}

/// How much a pump reads at once.
const PUMP_CHUNK: usize = 16 * 1024;

impl Pump {
    /// What the pump waits for, and the poll events for it.
    pub fn wait(&self) -> (Wait, PollFlags) {
        if self.written < self.pending.len() {
            (Wait::Destination, PollFlags::POLLOUT)
        } else if self.ended {
            (Wait::Done, PollFlags::empty())
        } else {
            (Wait::Source, PollFlags::POLLIN)
        }
    }

    /// Moves what it can from `source` to `destination` without blocking. A source that
    /// ends (end of file, or EIO: a terminal master whose slave is closed) ends the pump; a
    /// destination that fails drops the rest.
    pub fn run(&mut self, source: BorrowedFd<'_>, destination: BorrowedFd<'_>) {
        loop {
            if self.written < self.pending.len() {
                match nix::unistd::write(destination.as_fd(), &self.pending[self.written..]) {
                    Ok(count) => self.written += count,
                    Err(Errno::EINTR) => {}
                    Err(Errno::EAGAIN) => return,
                    Err(_) => {
                        self.written = self.pending.len();
                        self.ended = true;
                        return;
                    }
                }
                continue;
            }
            if self.ended {
                return;
            }
            self.pending.resize(PUMP_CHUNK, 0);
            self.written = 0;
            match nix::unistd::read(source, &mut self.pending) {
                Ok(0) => {
                    self.pending.clear();
                    self.ended = true;
                }
                Ok(count) => self.pending.truncate(count),
                Err(errno) => {
                    self.pending.clear();
                    match errno {
                        Errno::EINTR => {}
                        Errno::EAGAIN => return,
                        _ => self.ended = true,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terminal::set_nonblocking;
    use nix::unistd::pipe;
    use std::os::fd::AsRawFd;

    #[test]
    fn pumps_everything_after_waiting_for_a_full_destination() {
        let (source_read, source_write) = pipe().unwrap();
        let (destination_read, destination_write) = pipe().unwrap();
        set_nonblocking(source_read.as_raw_fd()).unwrap();
        set_nonblocking(destination_write.as_raw_fd()).unwrap();
        set_nonblocking(destination_read.as_raw_fd()).unwrap();
        let data: Vec<u8> = (0..=255).cycle().take(200_000).collect();
        let writer = {
            let data = data.clone();
            std::thread::spawn(move || {
                nix::unistd::write(&source_write, &data).unwrap();
            })
        };
        let mut pump = Pump::default();
        let mut received = Vec::new();
        let mut chunk = vec![0u8; 65536];
        while pump.wait().0 != Wait::Destination {
            pump.run(source_read.as_fd(), destination_write.as_fd());
        }
        while received.len() < data.len() {
            pump.run(source_read.as_fd(), destination_write.as_fd());
            match nix::unistd::read(&destination_read, &mut chunk) {
                Ok(count) => received.extend_from_slice(&chunk[..count]),
                Err(Errno::EAGAIN) => std::thread::yield_now(),
                Err(errno) => panic!("reading the destination: {errno}"),
            }
        }
        writer.join().unwrap();
        assert_eq!(received, data);
        pump.run(source_read.as_fd(), destination_write.as_fd());
        assert_eq!(pump.wait().0, Wait::Done, "the writer closed the source");
    }

    #[test]
    fn the_end_of_the_source_ends_the_pump() {
        let (source_read, source_write) = pipe().unwrap();
        let (_destination_read, destination_write) = pipe().unwrap();
        drop(source_write);
        let mut pump = Pump::default();
        pump.run(source_read.as_fd(), destination_write.as_fd());
        assert_eq!(pump.wait().0, Wait::Done);
    }
}
