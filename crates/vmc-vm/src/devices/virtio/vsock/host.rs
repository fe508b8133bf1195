//! The host ends of the channel's streams ([`vmc_protocol::channel::Stream`]) and the threads
//! that move their bytes: vmc's stdin into the stdin stream, the stdout and stderr streams out
//! to vmc's stdout and stderr. Each thread blocks on its own file descriptor, so a stuck
//! terminal or pipe holds up only its own stream (and, through credit, the guest's writer).

use super::buffer::StreamBuffer;
use super::connection::HostEnd;
use super::VsockBackend;
use crate::error::VmError;
use crate::seccomp::{Filters, ThreadKind};
use crate::threads;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::thread::JoinHandle;
use vmc_protocol::channel::Stream;
use vmm_sys_util::eventfd::EventFd;

/// Bytes each stream buffers on the host (and, for guest→host streams, the credit the guest
/// gets).
pub const STREAM_BUFFER_BYTES: usize = 256 * 1024;
/// How much a stream thread reads or writes at once (on its stack: the threads allocate
/// nothing, so glibc's malloc never opens files in them, which their filter forbids).
const CHUNK_BYTES: usize = 64 * 1024;

/// The buffers of one run's streams.
#[derive(Clone)]
pub struct HostStreams {
    /// vmc's stdin for the guest, when the run has `-i`.
    pub stdin: Option<Arc<StreamBuffer>>,
    /// The workload's stdout.
    pub stdout: Arc<StreamBuffer>,
    /// The workload's stderr.
    pub stderr: Arc<StreamBuffer>,
    /// Control messages for the guest init.
    pub control: Arc<StreamBuffer>,
}

impl HostStreams {
    /// Empty buffers (stdin only if `stdin`) whose host threads wake the device through
    /// `wake_device`.
    pub fn new(stdin: bool, wake_device: &Arc<EventFd>) -> Self {
        let buffer = || StreamBuffer::new(STREAM_BUFFER_BYTES, Arc::clone(wake_device));
        HostStreams {
            stdin: stdin.then(buffer),
            stdout: buffer(),
            stderr: buffer(),
            control: buffer(),
        }
    }

    /// Lets the guest connect each stream once.
    pub fn listen(&self, backend: &mut VsockBackend) {
        let to_guest = |buffer: &Arc<StreamBuffer>| HostEnd {
            to_guest: Some(Arc::clone(buffer)),
            from_guest: None,
        };
        let from_guest = |buffer: &Arc<StreamBuffer>| HostEnd {
            to_guest: None,
            from_guest: Some(Arc::clone(buffer)),
        };
        if let Some(stdin) = &self.stdin {
            backend.listen(Stream::Stdin.port(), to_guest(stdin));
        }
        backend.listen(Stream::Stdout.port(), from_guest(&self.stdout));
        backend.listen(Stream::Stderr.port(), from_guest(&self.stderr));
        backend.listen(Stream::Control.port(), to_guest(&self.control));
    }

    /// Ends the guest→host streams: their threads write what they hold, then stop.
    pub fn finish(&self) {
        self.stdout.finish_producing();
        self.stderr.finish_producing();
        if let Some(stdin) = &self.stdin {
            stdin.finish_consuming();
        }
        self.control.finish_consuming();
    }
}

/// Copies `input` (vmc's stdin) into `buffer` until it ends (then closes the stream: the
/// workload reads end-of-file), the guest stops reading, or `stop` is signalled; on a thread
/// confined by the I/O filter of `filters` if given.
pub fn spawn_stdin(
    input: RawFd,
    buffer: Arc<StreamBuffer>,
    stop: Arc<EventFd>,
    filters: Option<&'static Filters>,
) -> Result<JoinHandle<Option<()>>, VmError> {
    threads::spawn(
        "start the stdin thread",
        "vmc-vm-stdin".into(),
        filters.map(|filters| (filters, ThreadKind::Io)),
        move || {
            let mut chunk = [0u8; CHUNK_BYTES];
            while wait_readable(input, &stop) {
                // SAFETY: reads at most `chunk.len()` bytes into `chunk`, which outlives the call.
                let count = unsafe { libc::read(input, chunk.as_mut_ptr().cast(), chunk.len()) };
                if count < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                if count <= 0 {
                    // End of input (or an unreadable stdin, which ends it just the same).
                    break;
                }
                if !buffer.write_all(&chunk[..count as usize]) {
                    return;
                }
            }
            buffer.close_from_host();
        },
    )
}

/// Writes what the guest sends on `buffer` to `output` (vmc's stdout or stderr) until the
/// stream ends; when `output` fails (a closed pipe), the stream is reset and its data
/// dropped. On a thread confined by the I/O filter of `filters` if given.
pub fn spawn_output(
    name: &str,
    output: RawFd,
    buffer: Arc<StreamBuffer>,
    filters: Option<&'static Filters>,
) -> Result<JoinHandle<Option<()>>, VmError> {
    threads::spawn(
        "start an output thread",
        format!("vmc-vm-{name}"),
        filters.map(|filters| (filters, ThreadKind::Io)),
        move || {
            let mut chunk = [0u8; CHUNK_BYTES];
            loop {
                let count = buffer.peek_blocking(&mut chunk);
                if count == 0 {
                    return;
                }
                if write_all(output, &chunk[..count]).is_err() {
                    buffer.close_consumer_from_host();
                    return;
                }
                buffer.consume(count);
            }
        },
    )
}

/// Writes all of `bytes` to `fd`.
fn write_all(fd: RawFd, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: writes at most `bytes.len()` bytes from `bytes`, which outlives the call.
        let count = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if count < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        bytes = &bytes[count as usize..];
    }
    Ok(())
}

/// Waits until `fd` can be read (`true`) or `stop` is signalled (`false`).
pub(crate) fn wait_readable(fd: RawFd, stop: &EventFd) -> bool {
    loop {
        let mut fds = [
            libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: stop.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two pollfd structures for the duration of the call.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if ready < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        if fds[1].revents != 0 {
            return false;
        }
        if fds[0].revents != 0 {
            return true;
        }
    }
}
