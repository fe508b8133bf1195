//! A detached run's log, Docker's json-file format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2026-12-02T05:14:27.123456789Z"}`, in
//! `container.log` of the run directory. With a size cap (`--log-opt max-size=`) the file is
//! rotated to `container.log.1` when a line would take it past the cap, so the log holds at
//! most two capped files.

use crate::error::{Result, RunsError};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The log's file name in the run directory.
pub const LOG_FILE: &str = "container.log";
/// The rotated log's file name.
pub const ROTATED_LOG_FILE: &str = "container.log.1";
/// The longest piece of a line kept in one entry (Docker splits longer lines the same way).
const MAX_ENTRY_BYTES: usize = 16 * 1024;

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// What the workload wrote, its newline included (lossy UTF-8).
    pub log: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// When vmc read it, RFC 3339 with nanoseconds, UTC.
    pub time: String,
}

/// Appends entries to a run's log, rotating it at the size cap.
pub struct LogWriter {
    dir: PathBuf,
    file: File,
    size: u64,
    max_size: Option<u64>,
    failed: Option<RunsError>,
}

impl LogWriter {
    /// Opens the log of the run directory `dir` for appending (a started-again run adds to it).
    pub fn open(dir: &Path, max_size: Option<u64>) -> Result<Self> {
        let path = dir.join(LOG_FILE);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|err| RunsError::io(format!("cannot open {}", path.display()), err))?;
        let size = file.metadata().map_or(0, |m| m.len());
        Ok(LogWriter {
            dir: dir.to_path_buf(),
            file,
            size,
            max_size,
            failed: None,
        })
    }

    /// Writes one entry of `stream` (one line of JSON, in one write).
    pub fn write(&mut self, stream: &str, bytes: &[u8]) -> Result<()> {
        let entry = LogEntry {
            log: String::from_utf8_lossy(bytes).into_owned(),
            stream: stream.to_string(),
            time: now_rfc3339_nanos(),
        };
        let mut line = serde_json::to_vec(&entry)
            .map_err(|err| RunsError::json("encoding a log entry", err))?;
        line.push(b'\n');
        if self
            .max_size
            .is_some_and(|max| self.size > 0 && self.size + line.len() as u64 > max)
        {
            self.rotate()?;
        }
        self.file
            .write_all(&line)
            .map_err(|err| RunsError::io("cannot write the run's log", err))?;
        self.size += line.len() as u64;
        Ok(())
    }

    /// Writes one entry; the first failure is kept for [`copy_streams`] to return.
    fn write_or_remember(&mut self, stream: &str, bytes: &[u8]) {
        if let Err(err) = self.write(stream, bytes) {
            self.failed.get_or_insert(err);
        }
    }

    fn rotate(&mut self) -> Result<()> {
        let current = self.dir.join(LOG_FILE);
        std::fs::rename(&current, self.dir.join(ROTATED_LOG_FILE))
            .map_err(|err| RunsError::io("cannot rotate the run's log", err))?;
        let failed = self.failed.take();
        *self = LogWriter::open(&self.dir, self.max_size)?;
        self.failed = failed;
        Ok(())
    }
}

/// Copies the workload's stdout and stderr (the read ends of their pipes) into `log`, a line
/// per entry, until both are at end of file. Event-driven: it sleeps in poll(2). A log that
/// cannot be written (a full disk) does not stop the reading, so the workload never blocks on
/// its output: the entries are dropped and the first error returned at the end.
pub fn copy_streams(stdout: OwnedFd, stderr: OwnedFd, log: &mut LogWriter) -> Result<()> {
    let mut streams = [
        Some(LineSplitter::new(stdout, "stdout")),
        Some(LineSplitter::new(stderr, "stderr")),
    ];
    while streams.iter().any(Option::is_some) {
        let mut fds: Vec<PollFd> = streams
            .iter()
            .flatten()
            .map(|s| PollFd::new(s.fd.as_fd(), PollFlags::POLLIN))
            .collect();
        match nix::poll::poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(err) => {
                return Err(RunsError::io(
                    "waiting for the workload's output",
                    err.into(),
                ))
            }
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut ready = ready.into_iter();
        for slot in streams.iter_mut() {
            let Some(splitter) = slot else { continue };
            if ready.next() == Some(true) && !splitter.read_into(log) {
                *slot = None;
            }
        }
    }
    log.failed.take().map_or(Ok(()), Err)
}

/// One output stream, cut into lines.
struct LineSplitter {
    fd: File,
    stream: &'static str,
    pending: Vec<u8>,
}

impl LineSplitter {
    fn new(fd: OwnedFd, stream: &'static str) -> Self {
        LineSplitter {
            fd: File::from(fd),
            stream,
            pending: Vec::new(),
        }
    }

    /// Reads what is there and logs the complete lines; false at end of file (the rest of
    /// an unfinished line logged).
    fn read_into(&mut self, log: &mut LogWriter) -> bool {
        let mut buf = [0u8; 8192];
        let n = match self.fd.read(&mut buf) {
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => return true,
            Err(_) => 0,
        };
        self.pending.extend_from_slice(&buf[..n]);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            log.write_or_remember(self.stream, &line);
        }
        while self.pending.len() >= MAX_ENTRY_BYTES || (n == 0 && !self.pending.is_empty()) {
            let piece: Vec<u8> = self
                .pending
                .drain(..MAX_ENTRY_BYTES.min(self.pending.len()))
                .collect();
            log.write_or_remember(self.stream, &piece);
        }
        n > 0
    }
}

/// Reads a run's log from an offset on, entry by entry, across a rotation.
pub struct LogReader {
    dir: PathBuf,
    reader: Option<BufReader<File>>,
    inode: u64,
    pending: String,
}

impl LogReader {
    /// Opens the log of run directory `dir` at its start: the rotated file first, if any.
    pub fn open(dir: &Path) -> LogReader {
        let mut reader = LogReader {
            dir: dir.to_path_buf(),
            reader: None,
            inode: 0,
            pending: String::new(),
        };
        if let Ok(file) = File::open(dir.join(ROTATED_LOG_FILE)) {
            reader.reader = Some(BufReader::new(file));
        } else {
            reader.reopen();
        }
        reader
    }

    /// Opens the log of run directory `dir` at its end: only entries written from now on.
    pub fn at_end(dir: &Path) -> LogReader {
        let mut reader = LogReader::open(dir);
        reader.read_available();
        reader
    }

    fn reopen(&mut self) {
        let path = self.dir.join(LOG_FILE);
        self.reader = File::open(&path).ok().map(BufReader::new);
        self.inode = inode(&path).unwrap_or(0);
    }

    /// The complete entries written since the last call (lines that are not entries are
    /// skipped).
    pub fn read_available(&mut self) -> Vec<LogEntry> {
        let mut entries = Vec::new();
        loop {
            if let Some(reader) = &mut self.reader {
                while reader.read_line(&mut self.pending).is_ok_and(|n| n > 0) {
                    if !self.pending.ends_with('\n') {
                        break;
                    }
                    if let Ok(entry) = serde_json::from_str(&self.pending) {
                        entries.push(entry);
                    }
                    self.pending.clear();
                }
            }
            // Past the end of this file: go on in the current one if this is not it (the
            // rotated file, or a file rotated away since it was opened).
            let current = inode(&self.dir.join(LOG_FILE)).unwrap_or(0);
            if current == 0 || (current == self.inode && self.reader.is_some()) {
                return entries;
            }
            self.pending.clear();
            self.reopen();
        }
    }
}

fn inode(path: &Path) -> Option<u64> {
    std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).ok()?).into()
}

/// The current time as RFC 3339 with nanoseconds, UTC (Docker's `RFC3339Nano`).
pub fn now_rfc3339_nanos() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = vmc_image::timefmt::format_rfc3339(now.as_secs() as i64);
    format!(
        "{}.{:09}Z",
        seconds.trim_end_matches('Z'),
        now.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries_of(dir: &Path) -> Vec<(String, String)> {
        LogReader::open(dir)
            .read_available()
            .into_iter()
            .map(|e| (e.stream, e.log))
            .collect()
    }

    #[test]
    fn lines_of_both_streams_become_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = LogWriter::open(dir.path(), None).unwrap();
        let (out_r, out_w) = nix::unistd::pipe().unwrap();
        let (err_r, err_w) = nix::unistd::pipe().unwrap();
        nix::unistd::write(&out_w, b"one\ntw").unwrap();
        nix::unistd::write(&err_w, b"oops\n").unwrap();
        nix::unistd::write(&out_w, b"o\nno newline").unwrap();
        drop((out_w, err_w));
        copy_streams(out_r, err_r, &mut log).unwrap();
        let mut got = entries_of(dir.path());
        got.sort();
        assert_eq!(
            got,
            [
                ("stderr".into(), "oops\n".into()),
                ("stdout".into(), "no newline".into()),
                ("stdout".into(), "one\n".into()),
                ("stdout".into(), "two\n".into()),
            ]
        );
        let line = std::fs::read_to_string(dir.path().join(LOG_FILE)).unwrap();
        let first: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
        let time = first["time"].as_str().unwrap();
        assert!(time.ends_with('Z') && time.len() == 30, "{time}");
    }

    #[test]
    fn a_capped_log_rotates_and_reads_across_the_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = LogWriter::open(dir.path(), Some(300)).unwrap();
        for i in 0..10 {
            log.write("stdout", format!("line {i}\n").as_bytes())
                .unwrap();
        }
        for file in [LOG_FILE, ROTATED_LOG_FILE] {
            let size = std::fs::metadata(dir.path().join(file)).unwrap().len();
            assert!(size <= 300, "{file} is {size} bytes");
        }
        let got = entries_of(dir.path());
        let last = got.last().unwrap().1.clone();
        assert_eq!(last, "line 9\n");
        assert!(got.len() < 10, "older lines were dropped by the rotation");
        let mut follower = LogReader::at_end(dir.path());
        assert!(follower.read_available().is_empty());
        for i in 10..12 {
            log.write("stdout", format!("line {i}\n").as_bytes())
                .unwrap();
        }
        let followed: Vec<String> = follower
            .read_available()
            .into_iter()
            .map(|e| e.log)
            .collect();
        assert_eq!(followed.first().map(String::as_str), Some("line 10\n"));
        assert_eq!(followed.last().map(String::as_str), Some("line 11\n"));
    }
}
