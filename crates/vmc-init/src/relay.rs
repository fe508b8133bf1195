//! Copying between non-blocking descriptors without blocking the init: a [`Pump`] reads from
//! its source only when it has nothing left to write, and waits for its destination to take
//! what it holds. A [`Relay`] runs the init's pumps: the channel's stdin stream into the
//! workload's stdin, its stdout and stderr (or its terminal) out to their streams.

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

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

/// A pump with its two descriptors.
struct Link {
    pump: Pump,
    source: OwnedFd,
    destination: OwnedFd,
    /// For the workload's output: once it has exited, how long to wait for more output before
    /// the link is done (`None`: an input link, dropped then).
    linger: Option<PollTimeout>,
}

/// The init's pumps. A link whose pump is done is dropped, closing both its descriptors: the
/// workload reads end-of-file on its stdin when vmc's ends, and gets EPIPE on its stdout when
/// the host stops taking it.
#[derive(Default)]
pub struct Relay {
    links: Vec<Link>,
}

impl Relay {
    /// Pumps the workload's input from `source` into `destination`.
    pub fn input(&mut self, source: OwnedFd, destination: OwnedFd) {
        self.links.push(Link {
            pump: Pump::default(),
            source,
            destination,
            linger: None,
        });
    }

    /// Pumps the workload's output from `source` into `destination`; after the workload's
    /// exit, the source may stay quiet for `linger` before it counts as drained.
    pub fn output(&mut self, source: OwnedFd, destination: OwnedFd, linger: PollTimeout) {
        self.links.push(Link {
            pump: Pump::default(),
            source,
            destination,
            linger: Some(linger),
        });
    }

    /// What to poll for the links to make progress.
    pub fn poll_fds(&self) -> Vec<PollFd<'_>> {
        self.links
            .iter()
            .filter_map(|link| match link.pump.wait() {
                (Wait::Source, events) => Some(PollFd::new(link.source.as_fd(), events)),
                (Wait::Destination, events) => Some(PollFd::new(link.destination.as_fd(), events)),
                (Wait::Done, _) => None,
            })
            .collect()
    }

    /// Moves what can be moved now; drops the links that are done.
    pub fn run(&mut self) {
        for link in &mut self.links {
            link.pump.run(link.source.as_fd(), link.destination.as_fd());
        }
        self.links.retain(|link| link.pump.wait().0 != Wait::Done);
    }

    /// Once the workload has exited: drops the input links and pumps the output until each
    /// source has ended or stayed quiet for its linger time.
    pub fn finish(mut self) {
        self.links.retain(|link| link.linger.is_some());
        for link in &mut self.links {
            loop {
                link.pump.run(link.source.as_fd(), link.destination.as_fd());
                let (wait, events) = link.pump.wait();
                let (fd, timeout) = match wait {
                    Wait::Done => break,
                    Wait::Destination => (link.destination.as_fd(), PollTimeout::NONE),
                    Wait::Source => (
                        link.source.as_fd(),
                        link.linger.unwrap_or(PollTimeout::ZERO),
                    ),
                };
                match poll(&mut [PollFd::new(fd, events)], timeout) {
                    Ok(0) => break,
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(_) => break,
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
    fn a_relay_drains_output_and_closes_finished_input() {
        let (stdin_source, stdin_feed) = pipe().unwrap();
        let (workload_stdin, stdin_destination) = pipe().unwrap();
        let (output_source, workload_stdout) = pipe().unwrap();
        let (host_stdout, output_destination) = pipe().unwrap();
        for fd in [
            &stdin_source,
            &stdin_destination,
            &output_source,
            &output_destination,
        ] {
            set_nonblocking(fd.as_raw_fd()).unwrap();
        }
        let mut relay = Relay::default();
        relay.input(stdin_source, stdin_destination);
        relay.output(output_source, output_destination, PollTimeout::ZERO);
        nix::unistd::write(&stdin_feed, b"in").unwrap();
        drop(stdin_feed);
        nix::unistd::write(&workload_stdout, b"out").unwrap();
        relay.run();
        relay.run();
        let mut bytes = [0u8; 8];
        assert_eq!(nix::unistd::read(&workload_stdin, &mut bytes).unwrap(), 2);
        assert_eq!(
            nix::unistd::read(&workload_stdin, &mut bytes).unwrap(),
            0,
            "the input link is done and closed"
        );
        nix::unistd::write(&workload_stdout, b"!").unwrap();
        relay.finish();
        let count = nix::unistd::read(&host_stdout, &mut bytes).unwrap();
        assert_eq!(&bytes[..count], b"out!");
    }

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
