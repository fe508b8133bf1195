//! Passing the signals vmc receives on to the workload in the guest, and for a terminal run the
//! new window size on SIGWINCH, as messages on the channel's control stream, which vmc-init
//! reads ([`vmc_protocol::channel::ControlMessage`]).

use crate::devices::virtio::vsock::host::wait_readable;
use crate::devices::virtio::vsock::StreamBuffer;
use crate::error::VmError;
use crate::seccomp::{Filters, ThreadKind};
use crate::threads;
use nix::sys::signal::Signal;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::thread::JoinHandle;
use vmc_protocol::channel::ControlMessage;
use vmc_runtime::signals::{SignalCatcher, INTERRUPTS_BEFORE_KILL};
use vmc_runtime::terminal::window_size;
use vmm_sys_util::eventfd::EventFd;

/// Forwards the signals `catcher` catches to the guest on the `control` stream, from the
/// moment `ready` is signalled (signals caught before wait in the signalfd) until `stop` is,
/// on a thread confined by the I/O filter of `filters` if given. With `terminal` (a `-t`
/// run), SIGWINCH passes on the new size of vmc's terminal.
pub fn spawn_signal_forwarder(
    catcher: Arc<SignalCatcher>,
    control: Arc<StreamBuffer>,
    terminal: bool,
    ready: Arc<EventFd>,
    stop: Arc<EventFd>,
    filters: Option<&'static Filters>,
) -> Result<JoinHandle<Option<()>>, VmError> {
    threads::spawn(
        "start the signal thread",
        "vmc-vm-signals".into(),
        filters.map(|filters| (filters, ThreadKind::Io)),
        move || {
            if wait_readable(ready.as_raw_fd(), &stop) {
                forward_signals(&catcher, &control, terminal, &stop);
            }
        },
    )
}

/// The body of [`spawn_signal_forwarder`] once the guest is ready.
fn forward_signals(
    catcher: &SignalCatcher,
    control: &StreamBuffer,
    terminal: bool,
    stop: &EventFd,
) {
    let mut interrupts = 0;
    let mut framed = Vec::new();
    while wait_readable(catcher.fd().as_fd().as_raw_fd(), stop) {
        while let Some(signal) = catcher.next() {
            let message = match signal {
                Signal::SIGINT => {
                    interrupts += 1;
                    if interrupts < INTERRUPTS_BEFORE_KILL {
                        ControlMessage::Signal(signal as u8)
                    } else {
                        eprintln!("vmc: interrupted {interrupts} times: killing the workload");
                        ControlMessage::Signal(Signal::SIGKILL as u8)
                    }
                }
                Signal::SIGWINCH => match terminal.then(window_size).flatten() {
                    Some((rows, cols)) => ControlMessage::Resize { rows, cols },
                    None => continue,
                },
                signal => ControlMessage::Signal(signal as u8),
            };
            framed.clear();
            message.encode(&mut framed);
            if !control.write_all(&framed) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::thread::JoinHandleExt;
    use std::time::{Duration, Instant};
    use vmc_protocol::channel::ControlDecoder;

    /// The next control message the guest would read, within a second.
    fn received(control: &StreamBuffer, decoder: &mut ControlDecoder) -> Option<ControlMessage> {
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            let mut messages = Vec::new();
            control.take(|first, second| {
                messages.extend(decoder.decode(first));
                messages.extend(decoder.decode(second));
                first.len() + second.len()
            });
            if let Some(message) = messages.first() {
                assert_eq!(messages.len(), 1, "one message at a time: {messages:?}");
                return Some(*message);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    #[test]
    fn signals_reach_the_control_stream_and_a_third_interrupt_kills() {
        let wake = Arc::new(EventFd::new(libc::EFD_NONBLOCK).unwrap());
        let control = StreamBuffer::new(4096, wake);
        // Blocks the forwarded signals in this thread and in the forwarder it starts.
        let catcher = Arc::new(SignalCatcher::new().unwrap());
        let ready = Arc::new(EventFd::new(libc::EFD_NONBLOCK).unwrap());
        let stop = Arc::new(EventFd::new(libc::EFD_NONBLOCK).unwrap());
        ready.write(1).unwrap();
        let thread = spawn_signal_forwarder(
            Arc::clone(&catcher),
            Arc::clone(&control),
            false,
            ready,
            Arc::clone(&stop),
            None,
        )
        .unwrap();
        let send = |signal: Signal| {
            // SAFETY: the forwarder thread is alive (joined below) and blocks `signal`, so it
            // stays pending there until the forwarder reads it from its signalfd.
            unsafe { libc::pthread_kill(thread.as_pthread_t(), signal as i32) };
        };
        let mut decoder = ControlDecoder::default();
        let signal = |signal: i32| Some(ControlMessage::Signal(signal as u8));
        send(Signal::SIGTERM);
        assert_eq!(received(&control, &mut decoder), signal(libc::SIGTERM));
        send(Signal::SIGWINCH);
        send(Signal::SIGINT);
        assert_eq!(
            received(&control, &mut decoder),
            signal(libc::SIGINT),
            "SIGWINCH without a terminal is not sent"
        );
        send(Signal::SIGINT);
        assert_eq!(received(&control, &mut decoder), signal(libc::SIGINT));
        send(Signal::SIGINT);
        assert_eq!(received(&control, &mut decoder), signal(libc::SIGKILL));
        stop.write(1).unwrap();
        thread.join().unwrap();
    }
}
