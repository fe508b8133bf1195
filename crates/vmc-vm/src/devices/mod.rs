//! The guest's legacy I/O-port devices, one file each, and the port bus that routes the
//! vCPUs' port I/O exits to them. The interrupt controllers (PIC, IOAPIC, LAPIC) and the PIT
//! are KVM's in-kernel models and never reach userspace.

pub mod exit_device;
pub mod i8042;
pub mod serial;
pub mod virtio;

use exit_device::ExitDeviceEvent;
use i8042::I8042;
use serial::SerialConsole;
use std::io::{self, Stderr, Stdout, Write};
use std::sync::{Arc, Mutex, PoisonError};

/// What a port write means for the VM beyond the device's own state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortEffect {
    /// Nothing beyond the device.
    None,
    /// The guest asked for a CPU reset (i8042): the VM ends.
    Reset,
    /// The exit device reported something.
    Exit(ExitDeviceEvent),
}

/// The devices on the I/O port bus, shared by all vCPU threads. `O` and `E` are where COM1
/// (the console, vmc's stdout) and COM2 (the workload's stderr, vmc's stderr) write.
pub struct PortBus<O: Write = Stdout, E: Write = Stderr> {
    /// COM1, the console (also fed by the stdin forwarder).
    pub com1: Arc<Mutex<SerialConsole<O>>>,
    /// COM2, the workload's stderr (also fed by the signal forwarder).
    pub com2: Arc<Mutex<SerialConsole<E>>>,
    i8042: Mutex<I8042>,
}

impl<O: Write, E: Write> PortBus<O, E> {
    /// A bus with the UARTs `com1` and `com2` and a fresh i8042.
    pub fn new(com1: SerialConsole<O>, com2: SerialConsole<E>) -> Self {
        PortBus {
            com1: Arc::new(Mutex::new(com1)),
            com2: Arc::new(Mutex::new(com2)),
            i8042: Mutex::new(I8042::default()),
        }
    }

    /// Handles a guest `out` of `data` to `port`. Ports without a device ignore writes.
    pub fn write(&self, port: u16, data: &[u8]) -> io::Result<PortEffect> {
        if exit_device::owns(port) {
            return Ok(
                exit_device::decode_write(port, data).map_or(PortEffect::None, PortEffect::Exit)
            );
        }
        let [value] = data else {
            return Ok(PortEffect::None);
        };
        if let Some(written) = write_uart(&self.com1, port, *value) {
            written?;
        } else if let Some(written) = write_uart(&self.com2, port, *value) {
            written?;
        } else if I8042::owns(port) {
            let reset = self
                .i8042
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .write(port, *value);
            if reset {
                return Ok(PortEffect::Reset);
            }
        }
        Ok(PortEffect::None)
    }

    /// Handles a guest `in` from `port` into `data`. Ports without a device read all ones
    /// (an empty ISA bus), which is how guests detect that nothing is there.
    pub fn read(&self, port: u16, data: &mut [u8]) {
        data.fill(0xff);
        if let [value] = data {
            if let Some(read) = read_uart(&self.com1, port) {
                *value = read;
            } else if let Some(read) = read_uart(&self.com2, port) {
                *value = read;
            } else if I8042::owns(port) {
                *value = self
                    .i8042
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .read(port);
            }
        }
    }
}

/// Writes `value` to `port` of `uart` if the UART owns that port.
fn write_uart<W: Write>(
    uart: &Mutex<SerialConsole<W>>,
    port: u16,
    value: u8,
) -> Option<io::Result<()>> {
    let mut uart = uart.lock().unwrap_or_else(PoisonError::into_inner);
    uart.owns(port).then(|| uart.write(port, value))
}

/// Reads `port` of `uart` if the UART owns that port.
fn read_uart<W: Write>(uart: &Mutex<SerialConsole<W>>, port: u16) -> Option<u8> {
    let mut uart = uart.lock().unwrap_or_else(PoisonError::into_inner);
    uart.owns(port).then(|| uart.read(port))
}

#[cfg(test)]
mod tests {
    use super::serial::{ConsoleOutput, COM1_PORT, COM2_PORT};
    use super::*;
    use vmm_sys_util::eventfd::EventFd;

    /// A sink whose bytes the test can read while the bus owns a clone of it.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Captured {
        fn bytes(&self) -> Vec<u8> {
            self.0.lock().unwrap().clone()
        }
    }

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn uart(base: u16, sink: &Captured) -> SerialConsole<Captured> {
        let irq = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        SerialConsole::new(base, irq, ConsoleOutput::new(sink.clone(), true))
    }

    #[test]
    fn each_uart_transmits_to_its_own_sink() {
        let (stdout, stderr) = (Captured::default(), Captured::default());
        let bus = PortBus::new(uart(COM1_PORT, &stdout), uart(COM2_PORT, &stderr));
        assert_eq!(bus.write(COM2_PORT, b"e").unwrap(), PortEffect::None);
        assert_eq!(stderr.bytes(), b"e", "COM2's THR reaches the stderr sink");
        assert!(stdout.bytes().is_empty(), "COM2's THR stays off stdout");
        bus.write(COM1_PORT, b"o").unwrap();
        assert_eq!(stdout.bytes(), b"o");
        assert_eq!(stderr.bytes(), b"e");
    }

    #[test]
    fn uart_registers_answer_and_empty_ports_read_all_ones() {
        let bus = PortBus::new(
            uart(COM1_PORT, &Captured::default()),
            uart(COM2_PORT, &Captured::default()),
        );
        let lsr = |port| {
            let mut value = [0];
            bus.read(port, &mut value);
            value[0]
        };
        assert_eq!(lsr(COM1_PORT + 5) & 0x60, 0x60, "COM1 transmitter empty");
        assert_eq!(lsr(COM2_PORT + 5) & 0x60, 0x60, "COM2 transmitter empty");
        assert_eq!(lsr(0x3e8 + 5), 0xff, "no COM3");
    }
}
