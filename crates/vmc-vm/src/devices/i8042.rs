//! The i8042 keyboard controller, only for its "pulse reset line" command: writing `0xfe` to
//! port `0x64` is how a Linux guest without ACPI reboots (`reboot=k`), and how vmc-init ends
//! the VM. vm-superio's `I8042Device` implements the register logic.

use crate::devices::bus::{BusDevice, BusEffect};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use vm_superio::{I8042Device, Trigger};

/// First port of the controller (data register); the command register is at base + 4.
pub const BASE_PORT: u16 = 0x60;
/// The command/status register port.
pub const COMMAND_PORT: u16 = 0x64;

/// Set when the guest asked the controller to reset the CPU.
#[derive(Debug, Default)]
pub struct ResetRequest(AtomicBool);

impl Trigger for ResetRequest {
    type E = std::convert::Infallible;

    fn trigger(&self) -> Result<(), Self::E> {
        self.0.store(true, Ordering::SeqCst);
        Ok(())
    }
}

/// The controller.
#[derive(Debug)]
pub struct I8042 {
    device: I8042Device<ResetRequest>,
}

impl Default for I8042 {
    fn default() -> Self {
        I8042 {
            device: I8042Device::new(ResetRequest::default()),
        }
    }
}

impl I8042 {
    /// Whether `port` is one of the controller's two ports.
    pub fn owns(port: u16) -> bool {
        port == BASE_PORT || port == COMMAND_PORT
    }

    /// Handles a guest write; returns `true` when the guest requested a CPU reset.
    pub fn write(&mut self, port: u16, value: u8) -> bool {
        let Ok(()) = self.device.write((port - BASE_PORT) as u8, value);
        self.device.reset_evt().0.swap(false, Ordering::SeqCst)
    }

    /// Handles a guest read.
    pub fn read(&mut self, port: u16) -> u8 {
        self.device.read((port - BASE_PORT) as u8)
    }
}

/// On the bus from [`BASE_PORT`], 5 ports long (only the data and command ports answer;
/// the others and wider accesses read all ones and ignore writes).
impl BusDevice for I8042 {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0xff);
        let port = BASE_PORT + offset as u16;
        if let ([value], true) = (&mut *data, I8042::owns(port)) {
            *value = I8042::read(self, port);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<BusEffect> {
        let port = BASE_PORT + offset as u16;
        Ok(match data {
            [value] if I8042::owns(port) && I8042::write(self, port, *value) => BusEffect::Reset,
            _ => BusEffect::None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_command_on_the_command_port_requests_reset() {
        let mut i8042 = I8042::default();
        assert!(!i8042.write(COMMAND_PORT, 0xd1));
        assert!(
            !i8042.write(BASE_PORT, 0xfe),
            "0xfe on the data port is data"
        );
        assert!(i8042.write(COMMAND_PORT, 0xfe));
        assert!(!i8042.write(COMMAND_PORT, 0x00), "the request is consumed");
    }

    #[test]
    fn on_the_bus_the_reset_command_is_a_reset() {
        let mut i8042 = I8042::default();
        let offset = u64::from(COMMAND_PORT - BASE_PORT);
        assert_eq!(
            BusDevice::write(&mut i8042, offset, &[0xfe]).unwrap(),
            BusEffect::Reset
        );
        assert_eq!(
            BusDevice::write(&mut i8042, 0, &[0xfe]).unwrap(),
            BusEffect::None
        );
        let mut wide = [0u8; 2];
        BusDevice::read(&mut i8042, offset, &mut wide);
        assert_eq!(wide, [0xff; 2], "2-byte reads see all ones");
    }
}
