//! The i8042 keyboard controller, only for its "pulse reset line" command: writing `0xfe` to
//! port `0x64` is how a Linux guest without ACPI reboots (`reboot=k`), and how vmc-init ends
//! the VM. vm-superio's `I8042Device` implements the register logic.

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
}
