//! The guest's devices, one file (or module) each, and the bus that routes the vCPUs' port
//! I/O and MMIO exits to them ([`bus`]): the legacy port devices (COM1, i8042, the exit device), the virtio devices on their virtio-mmio transports ([`virtio`]), and the
//! event-loop thread that serves the virtio queues ([`event_loop`]). The interrupt
//! controllers (PIC, IOAPIC, LAPIC) and the PIT are KVM's in-kernel models and never reach
//! userspace.

pub mod bus;
pub mod event_loop;
pub mod exit_device;
pub mod i8042;
pub mod serial;
pub mod virtio;

use crate::error::VmError;
use bus::{Bus, Space};
use exit_device::ExitDevice;
use i8042::I8042;
use serial::SerialConsole;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Inserts the legacy I/O-port devices into `bus`: the console UART `com1` (at its base
/// port), an i8042 and the exit device.
pub fn insert_legacy_devices<O>(
    bus: &mut Bus,
    com1: &Arc<Mutex<SerialConsole<O>>>,
) -> Result<(), VmError>
where
    O: Write + Send + 'static,
{
    let uart_len = u64::from(serial::REGISTER_COUNT);
    let com1_base = u64::from(lock(com1).base());
    bus.insert(Space::Pio, com1_base, uart_len, com1.clone())?;
    bus.insert(
        Space::Pio,
        u64::from(i8042::BASE_PORT),
        u64::from(i8042::COMMAND_PORT - i8042::BASE_PORT + 1),
        Arc::new(Mutex::new(I8042::default())),
    )?;
    let (exit_base, exit_len) = vmc_protocol::exit_device::PORT_RANGE;
    bus.insert(
        Space::Pio,
        u64::from(exit_base),
        u64::from(exit_len),
        Arc::new(Mutex::new(ExitDevice)),
    )
}

/// Locks a device, going on after a panic of another thread that held it.
fn lock<T: ?Sized>(device: &Mutex<T>) -> MutexGuard<'_, T> {
    device.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::bus::BusEffect;
    use super::serial::{ConsoleOutput, COM1_PORT};
    use super::*;
    use std::io;
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

    fn uart(base: u16, sink: &Captured) -> Arc<Mutex<SerialConsole<Captured>>> {
        let irq = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        Arc::new(Mutex::new(SerialConsole::new(
            base,
            irq,
            ConsoleOutput::new(sink.clone(), true),
        )))
    }

    fn legacy_bus(stdout: &Captured) -> Bus {
        let mut bus = Bus::default();
        insert_legacy_devices(&mut bus, &uart(COM1_PORT, stdout)).unwrap();
        bus
    }

    #[test]
    fn the_console_transmits_to_its_sink() {
        let stdout = Captured::default();
        let bus = legacy_bus(&stdout);
        let com1 = u64::from(COM1_PORT);
        assert_eq!(bus.write(Space::Pio, com1, b"o").unwrap(), BusEffect::None);
        assert_eq!(stdout.bytes(), b"o");
    }

    #[test]
    fn uart_registers_answer_and_empty_ports_are_unclaimed() {
        let bus = legacy_bus(&Captured::default());
        let lsr = |port: u16| {
            let mut value = [0];
            bus.read(Space::Pio, u64::from(port) + 5, &mut value)
                .then_some(value[0])
        };
        assert_eq!(
            lsr(COM1_PORT).map(|v| v & 0x60),
            Some(0x60),
            "COM1 transmitter empty"
        );
        assert_eq!(
            lsr(0x2f8),
            None,
            "no COM2: the workload's stdio is on the vsock channel"
        );
        assert_eq!(lsr(0x3e8), None, "no COM3");
        let claimed = |port: u64| bus.read(Space::Pio, port, &mut [0]);
        assert!(claimed(0x3f8) && claimed(0x3ff));
        assert!(!claimed(0x3f7) && !claimed(0x400) && !claimed(0x2f8) && !claimed(0x2ff));
    }

    #[test]
    fn the_reset_and_the_exit_device_reach_the_vm() {
        let bus = legacy_bus(&Captured::default());
        assert_eq!(
            bus.write(Space::Pio, 0x64, &[0xfe]).unwrap(),
            BusEffect::Reset
        );
        assert_eq!(
            bus.write(Space::Pio, 0x604, &3u32.to_le_bytes()).unwrap(),
            BusEffect::Exit(exit_device::ExitDeviceEvent::Status(3))
        );
    }
}
