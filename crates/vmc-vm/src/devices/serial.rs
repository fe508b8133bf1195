//! The 16550A UART COM1 at I/O port `0x3f8`, IRQ 4: the guest kernel's console, copied to
//! vmc's stdout (once visible).
//!
//! vm-superio's `Serial` implements the registers. Its interrupt is an `EventFd` registered
//! with KVM as an irqfd for the UART's GSI, so the in-kernel PIC/IOAPIC deliver the
//! "transmitter empty" (THRE) and "data ready" interrupts: the guest's interrupt-driven tty
//! driver never waits on a transmit that cannot complete. Output goes to its sink (once
//! visible, see [`ConsoleOutput`]) and always into a small ring buffer kept for error
//! messages. It takes no input: the workload's stdio crosses the vsock channel
//! ([`crate::devices::virtio::vsock`]).

use crate::devices::bus::{BusDevice, BusEffect};
use std::collections::VecDeque;
use std::io::{self, Write};
use vm_superio::serial::{Error as SerialError, NoEvents};
use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

/// First I/O port of COM1.
pub const COM1_PORT: u16 = 0x3f8;
/// COM1's legacy IRQ line (and KVM GSI).
pub const COM1_IRQ: u32 = 4;
/// How many I/O ports (registers) a UART occupies from its base port.
pub const REGISTER_COUNT: u16 = 8;
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
/// COM1) once `visible`. A hidden console (`VmConfig::console == false`) becomes visible when the
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

/// A UART at its base I/O port.
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

    /// Handles a guest write to one of this UART's ports (`base..base + REGISTER_COUNT`). Only a
    /// failure to raise the interrupt is an error.
    pub fn write(&mut self, port: u16, value: u8) -> io::Result<()> {
        match self.uart.write(self.register(port), value) {
            Err(SerialError::Trigger(err)) => Err(err),
            _ => Ok(()),
        }
    }

    /// Handles a guest read from one of this UART's ports.
    pub fn read(&mut self, port: u16) -> u8 {
        self.uart.read(self.register(port))
    }

    /// The register offset of `port`.
    fn register(&self, port: u16) -> u8 {
        (port - self.base) as u8
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

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: u16 = COM1_PORT;
    const IER: u16 = COM1_PORT + 1;
    const IIR: u16 = COM1_PORT + 2;
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
