//! The 16550A UARTs: COM1 at I/O port `0x3f8`, IRQ 4 — the guest's console, copied to vmc's
//! stdout — and COM2 at `0x2f8`, IRQ 3 — the workload's stderr, copied to vmc's stderr (the
//! guest kernel never prints there, so COM2 is always visible). One [`SerialConsole`] type
//! serves both, told apart by its base port.
//!
//! vm-superio's `Serial` implements the registers. Its interrupt is an `EventFd` registered
//! with KVM as an irqfd for the UART's GSI, so the in-kernel PIC/IOAPIC deliver the
//! "transmitter empty" (THRE) and "data ready" interrupts: the guest's interrupt-driven tty
//! driver never waits on a transmit that cannot complete. Output goes to its sink (once
//! visible, see [`ConsoleOutput`]) and always into a small ring buffer kept for error
//! messages; COM1's input comes from vmc's stdin when the run asks for it
//! ([`spawn_input_forwarder`]), paced by the receive FIFO and the guest's RTS line.

use crate::config::StdinMode;
use crate::devices::bus::{BusDevice, BusEffect};
use crate::error::VmError;
use crate::seccomp::{Filters, ThreadKind};
use crate::threads;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use vm_superio::serial::{Error as SerialError, NoEvents};
use vm_superio::{Serial, Trigger};
use vmc_runtime::stdin_stream;
use vmm_sys_util::eventfd::EventFd;

/// First I/O port of COM1.
pub const COM1_PORT: u16 = 0x3f8;
/// COM1's legacy IRQ line (and KVM GSI).
pub const COM1_IRQ: u32 = 4;
/// First I/O port of COM2.
pub const COM2_PORT: u16 = 0x2f8;
/// COM2's legacy IRQ line (and KVM GSI).
pub const COM2_IRQ: u32 = 3;
/// How many I/O ports (registers) a UART occupies from its base port.
pub const REGISTER_COUNT: u16 = 8;
/// Offset of the receive buffer (reads) / transmit holding register (writes).
const DATA_REGISTER: u8 = 0;
/// Offset of the interrupt identification register (IIR).
const INTERRUPT_IDENTIFICATION_REGISTER: u8 = 2;
/// The IER bit enabling the "received data available" interrupt.
const IER_RECEIVED_DATA: u8 = 0b0001;
/// The IIR bit saying "received data available" is the pending interrupt.
const IIR_RECEIVED_DATA: u8 = 0b0100;
/// Offset of the modem control register (MCR), which the guest writes.
const MODEM_CONTROL_REGISTER: u8 = 4;
/// The MCR's Request To Send bit: the guest is ready to receive.
const MODEM_CONTROL_RTS: u8 = 0b10;
/// How long the stdin forwarder waits for room in a full receive FIFO before trying again.
const INPUT_RETRY: Duration = Duration::from_millis(1);
/// How many of the most recent bytes of each UART's output are kept for error messages.
pub const RECENT_OUTPUT_BYTES: usize = 16 * 1024;

/// Raises the UART's interrupt by signalling the irqfd KVM listens on.
pub struct IrqTrigger(pub EventFd);

impl Trigger for IrqTrigger {
    type E = io::Error;

    fn trigger(&self) -> io::Result<()> {
        self.0.write(1)
    }
}

/// The most recent console output, for error messages even when the console is hidden.
#[derive(Debug, Default)]
pub struct RecentOutput {
    bytes: VecDeque<u8>,
}

impl RecentOutput {
    /// Appends `data`, dropping the oldest bytes beyond [`RECENT_OUTPUT_BYTES`].
    pub fn push(&mut self, data: &[u8]) {
        self.bytes.extend(data);
        let excess = self.bytes.len().saturating_sub(RECENT_OUTPUT_BYTES);
        self.bytes.drain(..excess);
    }

    /// The kept output as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        let (a, b) = self.bytes.as_slices();
        let mut all = Vec::with_capacity(a.len() + b.len());
        all.extend_from_slice(a);
        all.extend_from_slice(b);
        String::from_utf8_lossy(&all).into_owned()
    }

    /// The line of the guest kernel's panic message ("Kernel panic - not syncing: …"), if the
    /// kept output has one.
    pub fn kernel_panic(&self) -> Option<String> {
        let text = self.text();
        let start = text.find("Kernel panic")?;
        let line = text[start..].lines().next().unwrap_or_default();
        Some(line.trim_end().to_string())
    }
}

/// Where the UART's output goes: always into [`RecentOutput`], and to `sink` (vmc's stdout for
/// COM1, its stderr for COM2) once `visible`. A hidden console (`VmConfig::console == false`) becomes visible when the
/// guest init reports that it started, so kernel boot messages stay hidden while the
/// workload's output is shown.
pub struct ConsoleOutput<W: Write> {
    sink: W,
    visible: bool,
    recent: RecentOutput,
}

impl<W: Write> ConsoleOutput<W> {
    /// Output to `sink`, shown from the start when `visible`.
    pub fn new(sink: W, visible: bool) -> Self {
        ConsoleOutput {
            sink,
            visible,
            recent: RecentOutput::default(),
        }
    }
}

impl<W: Write> Write for ConsoleOutput<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.recent.push(buf);
        if self.visible {
            // A closed or failing sink must not stall the guest: the bytes stay in `recent`.
            let _ = self.sink.write_all(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.visible {
            let _ = self.sink.flush();
        }
        Ok(())
    }
}

/// A UART (COM1 or COM2) at its base I/O port.
pub struct SerialConsole<W: Write> {
    base: u16,
    uart: Serial<IrqTrigger, NoEvents, ConsoleOutput<W>>,
}

impl<W: Write> SerialConsole<W> {
    /// A UART at I/O port `base` (e.g. [`COM1_PORT`]) raising `irq` and writing to `output`.
    pub fn new(base: u16, irq: EventFd, output: ConsoleOutput<W>) -> Self {
        SerialConsole {
            base,
            uart: Serial::new(IrqTrigger(irq), output),
        }
    }

    /// The UART's first I/O port.
    pub fn base(&self) -> u16 {
        self.base
    }

    /// Whether `port` is one of this UART's eight registers.
    pub fn owns(&self, port: u16) -> bool {
        (self.base..self.base + REGISTER_COUNT).contains(&port)
    }

    /// Handles a guest write to one of this UART's ports ([`SerialConsole::owns`]). Only a
    /// failure to raise the interrupt is an error.
    pub fn write(&mut self, port: u16, value: u8) -> io::Result<()> {
        match self.uart.write(self.register(port), value) {
            Err(SerialError::Trigger(err)) => Err(err),
            _ => Ok(()),
        }
    }

    /// Handles a guest read from one of this UART's ports ([`SerialConsole::owns`]).
    pub fn read(&mut self, port: u16) -> u8 {
        let register = self.register(port);
        if register == INTERRUPT_IDENTIFICATION_REGISTER {
            self.keep_received_data_pending();
        }
        self.uart.read(register)
    }

    /// A 16550 keeps its "received data available" interrupt pending while its receive FIFO
    /// holds bytes; vm-superio drops it at the first read of the receive buffer. Linux's driver
    /// takes at most 256 bytes per interrupt, then asks IIR whether more is pending: without
    /// this, bytes left in the FIFO (stdin's end marker, say) would wait for input that may
    /// never come. Re-queueing the waiting bytes raises the interrupt again.
    fn keep_received_data_pending(&mut self) {
        let state = self.uart.state();
        let pending = state.interrupt_identification & IIR_RECEIVED_DATA != 0;
        let enabled = state.interrupt_enable & IER_RECEIVED_DATA != 0;
        if state.in_buffer.is_empty() || pending || !enabled {
            return;
        }
        for _ in &state.in_buffer {
            self.uart.read(DATA_REGISTER);
        }
        let _ = self.uart.enqueue_raw_bytes(&state.in_buffer);
    }

    /// The register offset of `port`.
    fn register(&self, port: u16) -> u8 {
        (port - self.base) as u8
    }

    /// Queues host input for the guest; returns how many bytes fit in the receive FIFO. None
    /// fit while the guest holds its Request To Send line low: its driver does that when it
    /// has no room left for input (hardware flow control), and before it opens the port.
    pub fn enqueue_input(&mut self, input: &[u8]) -> io::Result<usize> {
        if self.uart.read(MODEM_CONTROL_REGISTER) & MODEM_CONTROL_RTS == 0 {
            return Ok(0);
        }
        match self.uart.enqueue_raw_bytes(input) {
            Ok(count) => Ok(count),
            Err(SerialError::FullFifo) => Ok(0),
            Err(SerialError::Trigger(err)) | Err(SerialError::IOError(err)) => Err(err),
        }
    }

    /// Shows the output from now on.
    pub fn make_visible(&mut self) {
        self.uart.writer_mut().visible = true;
    }

    /// The recent console output.
    pub fn recent(&self) -> &RecentOutput {
        &self.uart.writer().recent
    }
}

/// On the bus at its base port, 8 ports long; 1-byte accesses only (wider reads see all ones,
/// wider writes are ignored).
impl<W: Write + Send> BusDevice for SerialConsole<W> {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0xff);
        if let [value] = data {
            *value = SerialConsole::read(self, self.base + offset as u16);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<BusEffect> {
        if let [value] = data {
            SerialConsole::write(self, self.base + offset as u16, *value)?;
        }
        Ok(BusEffect::None)
    }
}

/// Copies vmc's stdin (`input`) into the UART's receive FIFO, encoded for `mode`, from the
/// moment `ready` is signalled until `input` ends or `stop` is signalled, on a thread confined
/// by the I/O filter of `filters` if given. `input` must stay open while the thread runs.
pub fn spawn_input_forwarder<W: Write + Send + 'static>(
    input: RawFd,
    serial: Arc<Mutex<SerialConsole<W>>>,
    mode: StdinMode,
    ready: Arc<EventFd>,
    stop: Arc<EventFd>,
    filters: Option<&'static Filters>,
) -> Result<JoinHandle<Option<()>>, VmError> {
    threads::spawn(
        "start the stdin thread",
        "vmc-vm-stdin".into(),
        filters.map(|filters| (filters, ThreadKind::Io)),
        move || {
            if wait_readable(ready.as_raw_fd(), &stop) {
                forward_input(input, &serial, mode, &stop);
            }
        },
    )
}

/// The body of [`spawn_input_forwarder`] once the guest is ready.
fn forward_input<W: Write>(
    input: RawFd,
    serial: &Mutex<SerialConsole<W>>,
    mode: StdinMode,
    stop: &EventFd,
) {
    let mut buf = [0u8; 256];
    let mut line = Vec::with_capacity(2 * buf.len());
    while wait_readable(input, stop) {
        // SAFETY: reads at most `buf.len()` bytes into `buf`, which outlives the call.
        let count = unsafe { libc::read(input, buf.as_mut_ptr().cast(), buf.len()) };
        if count < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        line.clear();
        if count <= 0 {
            // End of input (or an unreadable stdin, which ends it just the same).
            if mode == StdinMode::Stream {
                line.extend_from_slice(&stdin_stream::END_OF_INPUT);
                deliver(&line, serial, stop);
            }
            return;
        }
        let input = &buf[..count as usize];
        match mode {
            StdinMode::Terminal => line.extend_from_slice(input),
            StdinMode::Stream => stdin_stream::encode(input, &mut line),
        }
        if !deliver(&line, serial, stop) {
            return;
        }
    }
}

/// Puts `line` into the UART's receive FIFO as fast as the guest accepts it (see
/// [`SerialConsole::enqueue_input`]); `false` when `stop` was signalled first.
pub(crate) fn deliver<W: Write>(
    line: &[u8],
    serial: &Mutex<SerialConsole<W>>,
    stop: &EventFd,
) -> bool {
    let mut pending = line;
    while !pending.is_empty() {
        let queued = match serial.lock() {
            Ok(mut serial) => serial.enqueue_input(pending).unwrap_or(0),
            Err(_) => return false,
        };
        pending = &pending[queued..];
        if queued == 0 {
            if is_signalled(stop) {
                return false;
            }
            std::thread::sleep(INPUT_RETRY);
        }
    }
    true
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

/// Whether `event` has been signalled (without consuming it).
fn is_signalled(event: &EventFd) -> bool {
    let mut fd = libc::pollfd {
        fd: event.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `fd` is a valid pollfd for the duration of the call; timeout 0 never blocks.
    unsafe { libc::poll(&mut fd, 1, 0) > 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: u16 = COM1_PORT;
    const IER: u16 = COM1_PORT + 1;
    const IIR: u16 = COM1_PORT + 2;
    const MCR: u16 = COM1_PORT + 4;
    const LSR: u16 = COM1_PORT + 5;

    fn console(visible: bool) -> (SerialConsole<Vec<u8>>, EventFd) {
        let irq = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        let serial = SerialConsole::new(
            COM1_PORT,
            irq.try_clone().unwrap(),
            ConsoleOutput::new(Vec::new(), visible),
        );
        (serial, irq)
    }

    #[test]
    fn transmit_raises_thre_interrupt_when_enabled() {
        let (mut serial, irq) = console(true);
        serial.write(IER, 0x02).unwrap(); // enable THRE interrupt
        assert_eq!(
            irq.read().unwrap(),
            1,
            "enabling THRE with an empty THR interrupts"
        );
        assert_eq!(serial.read(IIR) & 0x0f, 0x02, "IIR says THR empty");
        serial.write(DATA, b'h').unwrap();
        assert_eq!(irq.read().unwrap(), 1);
        assert_eq!(serial.read(LSR) & 0x60, 0x60, "transmitter always empty");
        assert_eq!(serial.uart.writer().sink, b"h");
    }

    #[test]
    fn owns_the_eight_registers_from_its_base_port() {
        let (com1, _irq) = console(true);
        let com2 = SerialConsole::new(
            COM2_PORT,
            EventFd::new(libc::EFD_NONBLOCK).unwrap(),
            ConsoleOutput::new(Vec::new(), true),
        );
        assert!(com1.owns(0x3f8) && com1.owns(0x3ff));
        assert!(!com1.owns(0x3f7) && !com1.owns(0x400) && !com1.owns(0x2f8));
        assert!(com2.owns(0x2f8) && com2.owns(0x2ff));
        assert!(!com2.owns(0x2f7) && !com2.owns(0x300) && !com2.owns(0x3f8));
    }

    #[test]
    fn hidden_output_is_kept_and_shown_later() {
        let (mut serial, _irq) = console(false);
        for byte in b"boot\n" {
            serial.write(DATA, *byte).unwrap();
        }
        assert!(serial.uart.writer().sink.is_empty());
        serial.make_visible();
        serial.write(DATA, b'x').unwrap();
        assert_eq!(serial.uart.writer().sink, b"x");
        assert_eq!(serial.recent().text(), "boot\nx");
    }

    /// Raises RTS as the guest's UART driver does when it opens the port.
    fn open_port(serial: &mut SerialConsole<Vec<u8>>) {
        serial.write(MCR, 0x0b).unwrap(); // DTR | RTS | OUT2
    }

    #[test]
    fn data_left_in_the_fifo_keeps_its_interrupt_pending() {
        let (mut serial, irq) = console(true);
        open_port(&mut serial);
        serial.write(IER, 0x01).unwrap(); // enable "received data available"
        assert_eq!(serial.enqueue_input(b"abc").unwrap(), 3);
        assert_eq!(irq.read().unwrap(), 1, "input raises the interrupt");
        assert_eq!(serial.read(IIR) & 0x0f, 0x04, "IIR: received data");
        assert_eq!(serial.read(DATA), b'a');
        // The driver stops reading (its per-interrupt budget) and asks IIR again.
        assert_eq!(serial.read(IIR) & 0x0f, 0x04, "still data: still pending");
        assert_eq!(irq.read().unwrap(), 1, "and raised again");
        assert_eq!(serial.read(DATA), b'b');
        assert_eq!(serial.read(DATA), b'c');
        assert_eq!(serial.read(IIR) & 0x0f, 0x01, "FIFO empty: nothing pending");
    }

    #[test]
    fn input_waits_for_rts_then_sets_data_ready() {
        let (mut serial, _irq) = console(true);
        assert_eq!(serial.enqueue_input(b"ab").unwrap(), 0, "port not open yet");
        open_port(&mut serial);
        assert_eq!(serial.enqueue_input(b"ab").unwrap(), 2);
        assert_eq!(serial.read(LSR) & 1, 1);
        assert_eq!(serial.read(DATA), b'a');
        assert_eq!(serial.read(DATA), b'b');
        assert_eq!(serial.read(LSR) & 1, 0);
        serial.write(MCR, 0x09).unwrap(); // the guest throttles: RTS low
        assert_eq!(serial.enqueue_input(b"c").unwrap(), 0);
    }

    /// A pipe as (read end, write end).
    fn pipe() -> (RawFd, RawFd) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe() returns.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        (fds[0], fds[1])
    }

    /// Writes `bytes` to the pipe's write end and closes it (the reader sees the end).
    fn write_and_close(write_end: RawFd, bytes: &[u8]) {
        // SAFETY: writes from a live buffer (smaller than a pipe's capacity), then closes the
        // descriptor, which this test owns.
        unsafe {
            assert_eq!(
                libc::write(write_end, bytes.as_ptr().cast(), bytes.len()),
                bytes.len() as isize
            );
            libc::close(write_end);
        }
    }

    /// Feeds `input` through a forwarder in `mode` into an open port and returns what the
    /// guest reads from the receive FIFO.
    fn forwarded(mode: StdinMode, input: &[u8]) -> Vec<u8> {
        let (mut serial, _irq) = console(true);
        open_port(&mut serial);
        let serial = Arc::new(Mutex::new(serial));
        let (read_end, write_end) = pipe();
        let ready = Arc::new(EventFd::new(libc::EFD_NONBLOCK).unwrap());
        let stop = Arc::new(EventFd::new(libc::EFD_NONBLOCK).unwrap());
        let thread = spawn_input_forwarder(
            read_end,
            Arc::clone(&serial),
            mode,
            Arc::clone(&ready),
            stop,
            None,
        )
        .unwrap();
        write_and_close(write_end, input);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            serial.lock().unwrap().read(LSR) & 1,
            0,
            "nothing is forwarded before the guest is ready"
        );
        ready.write(1).unwrap();
        thread.join().unwrap();
        // SAFETY: the forwarder has ended; nothing else uses the read end.
        unsafe { libc::close(read_end) };
        let mut serial = serial.lock().unwrap();
        std::iter::from_fn(|| (serial.read(LSR) & 1 == 1).then(|| serial.read(DATA))).collect()
    }

    #[test]
    fn terminal_input_is_forwarded_unchanged_once_ready() {
        assert_eq!(forwarded(StdinMode::Terminal, b"ls\xff\x04"), b"ls\xff\x04");
    }

    #[test]
    fn stream_input_is_escaped_and_ends_with_the_marker() {
        let mut expected = Vec::new();
        stdin_stream::encode(b"hi\xff\n", &mut expected);
        expected.extend_from_slice(&stdin_stream::END_OF_INPUT);
        assert_eq!(forwarded(StdinMode::Stream, b"hi\xff\n"), expected);
    }

    #[test]
    fn input_forwarder_stops_when_told() {
        let (serial, _irq) = console(true);
        let (read_end, write_end) = pipe();
        let ready = Arc::new(EventFd::new(libc::EFD_NONBLOCK).unwrap());
        let stop = Arc::new(EventFd::new(libc::EFD_NONBLOCK).unwrap());
        ready.write(1).unwrap();
        let thread = spawn_input_forwarder(
            read_end,
            Arc::new(Mutex::new(serial)),
            StdinMode::Stream,
            ready,
            Arc::clone(&stop),
            None,
        )
        .unwrap();
        stop.write(1).unwrap();
        thread.join().unwrap();
        // SAFETY: the forwarder has ended; both ends are ours to close.
        unsafe {
            libc::close(read_end);
            libc::close(write_end);
        }
    }

    #[test]
    fn ring_keeps_the_latest_bytes_and_finds_a_panic() {
        let mut recent = RecentOutput::default();
        recent.push(&vec![b'x'; RECENT_OUTPUT_BYTES]);
        recent.push(b"\nKernel panic - not syncing: No working init found.\nmore\n");
        assert_eq!(recent.text().len(), RECENT_OUTPUT_BYTES);
        assert_eq!(
            recent.kernel_panic().as_deref(),
            Some("Kernel panic - not syncing: No working init found.")
        );
        assert_eq!(RecentOutput::default().kernel_panic(), None);
    }
}
