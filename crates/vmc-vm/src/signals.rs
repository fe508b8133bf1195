//! Passing the signals vmc receives on to the workload in the guest, and for a terminal run the
//! new window size on SIGWINCH, as messages on COM2's receive line, which vmc-init reads
//! ([`vmc_runtime::guest_control`]).

use crate::devices::serial::{deliver, wait_readable, SerialConsole};
use crate::error::VmError;
use crate::seccomp::{Filters, ThreadKind};
use crate::threads;
use nix::sys::signal::Signal;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use vmc_runtime::guest_control::GuestControl;
use vmc_runtime::signals::{SignalCatcher, INTERRUPTS_BEFORE_KILL};
use vmc_runtime::terminal::window_size;
use vmm_sys_util::eventfd::EventFd;

/// Forwards the signals `catcher` catches to the guest through `com2`, from the moment
/// `ready` is signalled (signals caught before wait in the signalfd) until `stop` is, on a
/// thread confined by the I/O filter of `filters` if given. With `terminal` (a `-t` run),
/// SIGWINCH passes on the new size of vmc's terminal.
pub fn spawn_signal_forwarder<W: Write + Send + 'static>(
    catcher: Arc<SignalCatcher>,
    com2: Arc<Mutex<SerialConsole<W>>>,
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
                forward_signals(&catcher, &com2, terminal, &stop);
            }
        },
    )
}

/// The body of [`spawn_signal_forwarder`] once the guest is ready.
fn forward_signals<W: Write>(
    catcher: &SignalCatcher,
    com2: &Mutex<SerialConsole<W>>,
    terminal: bool,
    stop: &EventFd,
) {
    let mut interrupts = 0;
    let mut line = Vec::new();
    while wait_readable(catcher.fd().as_fd().as_raw_fd(), stop) {
        while let Some(signal) = catcher.next() {
            let message = match signal {
                Signal::SIGINT => {
                    interrupts += 1;
                    if interrupts < INTERRUPTS_BEFORE_KILL {
                        GuestControl::Signal(signal)
                    } else {
                        eprintln!("vmc: interrupted {interrupts} times: killing the workload");
                        GuestControl::Signal(Signal::SIGKILL)
                    }
                }
                Signal::SIGWINCH => match terminal.then(window_size).flatten() {
                    Some((rows, cols)) => GuestControl::Resize { rows, cols },
                    None => continue,
                },
                signal => GuestControl::Signal(signal),
            };
            line.clear();
            message.encode(&mut line);
            if !deliver(&line, com2, stop) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::serial::{ConsoleOutput, COM2_PORT};
    use std::os::unix::thread::JoinHandleExt;
    use std::time::{Duration, Instant};

    /// What the guest reads from COM2 within a second.
    fn received(com2: &Mutex<SerialConsole<Vec<u8>>>) -> Option<u8> {
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            let mut com2 = com2.lock().unwrap();
            if com2.read(COM2_PORT + 5) & 1 == 1 {
                return Some(com2.read(COM2_PORT));
            }
            drop(com2);
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    #[test]
    fn signals_reach_com2_as_their_numbers_and_a_third_interrupt_kills() {
        let irq = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        let mut com2 = SerialConsole::new(COM2_PORT, irq, ConsoleOutput::new(Vec::new(), true));
        com2.write(COM2_PORT + 4, 0x0b).unwrap(); // the guest opened the port: RTS up
        let com2 = Arc::new(Mutex::new(com2));
        // Blocks the forwarded signals in this thread and in the forwarder it starts.
        let catcher = Arc::new(SignalCatcher::new().unwrap());
        let ready = Arc::new(EventFd::new(libc::EFD_NONBLOCK).unwrap());
        let stop = Arc::new(EventFd::new(libc::EFD_NONBLOCK).unwrap());
        ready.write(1).unwrap();
        let thread = spawn_signal_forwarder(
            Arc::clone(&catcher),
            Arc::clone(&com2),
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
        send(Signal::SIGTERM);
        assert_eq!(received(&com2), Some(libc::SIGTERM as u8));
        send(Signal::SIGWINCH);
        send(Signal::SIGINT);
        assert_eq!(
            received(&com2),
            Some(libc::SIGINT as u8),
            "SIGWINCH is not sent"
        );
        send(Signal::SIGINT);
        assert_eq!(received(&com2), Some(libc::SIGINT as u8));
        send(Signal::SIGINT);
        assert_eq!(received(&com2), Some(libc::SIGKILL as u8));
        stop.write(1).unwrap();
        thread.join().unwrap();
    }
}
