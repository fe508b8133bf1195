//! The guest's legacy I/O-port devices, one file each, and the port bus that routes the
//! vCPUs' port I/O exits to them. The interrupt controllers (PIC, IOAPIC, LAPIC) and the PIT
//! are KVM's in-kernel models and never reach userspace.

pub mod exit_device;
pub mod i8042;
pub mod serial;

use exit_device::ExitDeviceEvent;
use i8042::I8042;
use serial::SerialConsole;
use std::io::{self, Stdout};
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

/// The devices on the I/O port bus, shared by all vCPU threads.
pub struct PortBus {
    /// COM1 (also fed by the stdin forwarder).
    pub serial: Arc<Mutex<SerialConsole<Stdout>>>,
    i8042: Mutex<I8042>,
}

impl PortBus {
    /// A bus with `serial` as COM1 and a fresh i8042.
    pub fn new(serial: SerialConsole<Stdout>) -> Self {
        PortBus {
            serial: Arc::new(Mutex::new(serial)),
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
        if SerialConsole::<Stdout>::owns(port) {
            self.serial
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .write(port, *value)?;
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
            if SerialConsole::<Stdout>::owns(port) {
                *value = self
                    .serial
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .read(port);
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
