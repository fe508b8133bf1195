//! The vmc exit / boot-timer device: how the guest init reports progress and the workload's
//! exit status to the VMM, by the protocol of [`vmc_protocol::exit_device`].
//!
//! The VMM stamps each milestone with the host `Instant` at which the guest's port write
//! trapped (KVM_RUN returned with the I/O exit) and records it in the run's timeline. Reads
//! return all ones; other values and widths are ignored.

use crate::devices::bus::{BusDevice, BusEffect};
use std::io;
use vmc_protocol::exit_device::{BootMilestone, MILESTONE_PORT, STATUS_PORT};
use vmc_runtime::Milestone;

/// What a guest write to the device reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitDeviceEvent {
    /// The guest reached a milestone.
    Milestone(Milestone),
    /// The workload's raw status value (exit code, or `0x100 | signal`).
    Status(u32),
}

/// Decodes a guest write of `data` to `port`; `None` when the write means nothing.
pub fn decode_write(port: u16, data: &[u8]) -> Option<ExitDeviceEvent> {
    match (port, data) {
        (MILESTONE_PORT, [byte]) => milestone(*byte).map(ExitDeviceEvent::Milestone),
        (STATUS_PORT, [a, b, c, d]) => Some(ExitDeviceEvent::Status(u32::from_le_bytes([
            *a, *b, *c, *d,
        ]))),
        _ => None,
    }
}

/// The timeline milestone a byte on [`MILESTONE_PORT`] stands for.
fn milestone(byte: u8) -> Option<Milestone> {
    Some(match BootMilestone::from_byte(byte)? {
        BootMilestone::InitStarted => Milestone::InitStarted,
        BootMilestone::WorkloadExec => Milestone::WorkloadExec,
        BootMilestone::WorkloadExited => Milestone::WorkloadExit,
    })
}

/// The device on the bus: decodes writes, reads all ones.
#[derive(Debug, Default)]
pub struct ExitDevice;

impl BusDevice for ExitDevice {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0xff);
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<BusEffect> {
        let port = MILESTONE_PORT + offset as u16;
        Ok(decode_write(port, data).map_or(BusEffect::None, BusEffect::Exit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milestone_bytes() {
        assert_eq!(
            decode_write(0x600, &[1]),
            Some(ExitDeviceEvent::Milestone(Milestone::InitStarted))
        );
        assert_eq!(
            decode_write(0x600, &[2]),
            Some(ExitDeviceEvent::Milestone(Milestone::WorkloadExec))
        );
        assert_eq!(
            decode_write(0x600, &[3]),
            Some(ExitDeviceEvent::Milestone(Milestone::WorkloadExit))
        );
        assert_eq!(decode_write(0x600, &[0]), None);
        assert_eq!(decode_write(0x600, &[4]), None);
        assert_eq!(decode_write(0x600, &[1, 0]), None, "16-bit write ignored");
    }

    #[test]
    fn status_is_a_32_bit_write() {
        assert_eq!(
            decode_write(0x604, &42u32.to_le_bytes()),
            Some(ExitDeviceEvent::Status(42))
        );
        assert_eq!(
            decode_write(0x604, &0x109u32.to_le_bytes()),
            Some(ExitDeviceEvent::Status(0x109))
        );
        assert_eq!(decode_write(0x604, &[42]), None, "8-bit write ignored");
        assert_eq!(decode_write(0x605, &42u32.to_le_bytes()), None);
    }

    #[test]
    fn on_the_bus_offsets_are_from_the_milestone_port() {
        let mut device = ExitDevice;
        assert_eq!(
            device.write(4, &7u32.to_le_bytes()).unwrap(),
            BusEffect::Exit(ExitDeviceEvent::Status(7))
        );
        assert_eq!(
            device.write(0, &[2]).unwrap(),
            BusEffect::Exit(ExitDeviceEvent::Milestone(Milestone::WorkloadExec))
        );
        assert_eq!(device.write(1, &[2]).unwrap(), BusEffect::None);
    }
}
