//! What the container's first process tells vmc through the report pipe.
//!
//! The child writes fixed-layout records (tag, monotonic timestamp, exit code, text) without
//! allocating, because it runs in a copy of a possibly multi-threaded process. The pipe's write
//! end is close-on-exec, so the parent reads until end-of-file: that happens exactly when the
//! workload was executed or the child exited.

use std::fmt;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// A point of the container setup the child reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// vmc released the child (it is in its cgroup); it now finishes and executes the workload.
    Released,
    /// The child moved itself into the run's cgroup.
    JoinedCgroup,
    /// The overlay root filesystem is mounted.
    Overlay,
    /// /proc, /dev and /sys are mounted.
    SpecialFs,
    /// The host directories of `--volume` are bound.
    Volumes,
    /// A path to mask or make read-only does not exist on this kernel (the text names it).
    PathMissing,
    /// Docker's masked and read-only paths are in place.
    Masked,
    /// The cgroup filesystem is mounted at /sys/fs/cgroup (after the cgroup namespace).
    CgroupFs,
    /// pivot_root is done and the old root detached.
    PivotRoot,
    /// Host name set, loopback up, working directory made: the child waits for vmc.
    Ready,
    /// `execve` of the workload is about to be called.
    Exec,
    /// Setup failed; the text says why (vmc fails with 125).
    SetupFailed,
    /// The command could not be executed; the code is 126 or 127, the text says why.
    ExecFailed,
    /// `vmc exec`: the command's process exists; the text is its pid.
    Started,
}

impl Event {
    const ALL: [(Event, u8); 14] = [
        (Event::JoinedCgroup, b'J'),
        (Event::Released, b'S'),
        (Event::Overlay, b'O'),
        (Event::SpecialFs, b'F'),
        (Event::Volumes, b'V'),
        (Event::PathMissing, b'k'),
        (Event::Masked, b'K'),
        (Event::CgroupFs, b'C'),
        (Event::PivotRoot, b'P'),
        (Event::Ready, b'R'),
        (Event::Exec, b'X'),
        (Event::SetupFailed, b'E'),
        (Event::ExecFailed, b'N'),
        (Event::Started, b'T'),
    ];

    fn tag(self) -> u8 {
        Self::ALL
            .iter()
            .find(|(event, _)| *event == self)
            .map_or(b'?', |(_, tag)| *tag)
    }

    fn from_tag(tag: u8) -> Option<Event> {
        Self::ALL.iter().find(|(_, t)| *t == tag).map(|(e, _)| *e)
    }
}

/// Length of a record's fixed header: tag, timestamp, code, text length.
const HEADER: usize = 1 + 8 + 1 + 2;

/// The longest text a record carries.
const MAX_TEXT: usize = 1000;

/// One record as the parent decodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// What happened.
    pub event: Event,
    /// When, in CLOCK_MONOTONIC nanoseconds.
    pub monotonic_ns: u64,
    /// The exit code for [`Event::ExecFailed`].
    pub code: u8,
    /// The message for failures.
    pub text: String,
}

impl Record {
    /// The record's time as an [`Instant`] of this process.
    pub fn instant(&self) -> Instant {
        let now = Instant::now();
        let age = monotonic_ns().saturating_sub(self.monotonic_ns);
        now.checked_sub(Duration::from_nanos(age)).unwrap_or(now)
    }
}

/// Decodes the bytes read from the report pipe (a truncated tail is ignored).
pub fn parse(mut bytes: &[u8]) -> Vec<Record> {
    let mut records = Vec::new();
    while bytes.len() >= HEADER {
        let text_len = u16::from_le_bytes([bytes[10], bytes[11]]) as usize;
        if bytes.len() < HEADER + text_len {
            break;
        }
        if let Some(event) = Event::from_tag(bytes[0]) {
            let mut ns = [0u8; 8];
            ns.copy_from_slice(&bytes[1..9]);
            records.push(Record {
                event,
                monotonic_ns: u64::from_le_bytes(ns),
                code: bytes[9],
                // The text may quote the image (its command, paths): escaped for the terminal.
                text: vmc_runtime::text::escape_bytes(&bytes[HEADER..HEADER + text_len]),
            });
        }
        bytes = &bytes[HEADER + text_len..];
    }
    records
}

/// CLOCK_MONOTONIC now, in nanoseconds (the clock [`Instant`] uses on Linux).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The child's writing end. Never allocates.
#[derive(Debug, Clone, Copy)]
pub struct Reporter {
    fd: RawFd,
}

impl Reporter {
    /// A reporter writing to the pipe end `fd`.
    pub fn new(fd: RawFd) -> Self {
        Reporter { fd }
    }

    /// Reports `event` now, without text.
    pub fn event(&self, event: Event) {
        self.send(event, 0, format_args!(""));
    }

    /// Reports `event` with exit `code` and a message.
    pub fn send(&self, event: Event, code: u8, message: fmt::Arguments) {
        let mut record = StackText::new();
        record.bytes[0] = event.tag();
        record.bytes[1..9].copy_from_slice(&monotonic_ns().to_le_bytes());
        record.bytes[9] = code;
        record.len = HEADER;
        let _ = fmt::write(&mut record, message);
        let text_len = (record.len - HEADER) as u16;
        record.bytes[10..12].copy_from_slice(&text_len.to_le_bytes());
        // SAFETY: the buffer is valid for record.len bytes; a failed write only loses a report.
        unsafe { libc::write(self.fd, record.bytes.as_ptr().cast(), record.len) };
    }
}

/// A fixed buffer that `fmt::Write` fills and silently truncates.
struct StackText {
    bytes: [u8; HEADER + MAX_TEXT],
    len: usize,
}

impl StackText {
    fn new() -> Self {
        StackText {
            bytes: [0; HEADER + MAX_TEXT],
            len: 0,
        }
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.bytes.len() - self.len;
        let take = s.len().min(room);
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    #[test]
    fn records_round_trip_through_a_pipe() {
        let (read, write) = nix::unistd::pipe().unwrap();
        let reporter = Reporter::new(write.as_raw_fd());
        reporter.event(Event::Released);
        reporter.send(
            Event::ExecFailed,
            127,
            format_args!("exec: {:?}: not found", "x"),
        );
        drop(write);
        let mut bytes = Vec::new();
        std::fs::File::from(read).read_to_end(&mut bytes).unwrap();
        let records = parse(&bytes);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].event, Event::Released);
        assert_eq!(records[1].event, Event::ExecFailed);
        assert_eq!(records[1].code, 127);
        assert_eq!(records[1].text, "exec: \"x\": not found");
        assert!(records[0].monotonic_ns <= records[1].monotonic_ns);
        assert!(records[0].instant() <= Instant::now());
    }

    #[test]
    fn long_text_is_truncated_and_partial_records_ignored() {
        let (read, write) = nix::unistd::pipe().unwrap();
        let reporter = Reporter::new(write.as_raw_fd());
        let long = "y".repeat(5000);
        reporter.send(Event::SetupFailed, 0, format_args!("{long}"));
        drop(write);
        let mut bytes = Vec::new();
        std::fs::File::from(read).read_to_end(&mut bytes).unwrap();
        assert_eq!(parse(&bytes)[0].text.len(), MAX_TEXT);
        assert!(parse(&bytes[..bytes.len() - 1]).is_empty());
    }
}
