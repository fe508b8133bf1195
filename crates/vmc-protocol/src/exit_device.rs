//! The VMM's exit/boot-timer device: how the guest init reports progress and the workload's
//! exit status.
//!
//! | port    | access                | meaning                                                   |
//! |---------|-----------------------|-----------------------------------------------------------|
//! | `0x600` | 8-bit write           | milestone: `1` init started, `2` workload exec, `3` workload exited |
//! | `0x604` | 32-bit write (`outl`) | workload exit status: `0..=255` exit code, `0x100 \| N` killed by signal N, `0x309` killed by the OOM killer, `0x1000 \| D` the guest kernel lacks the drivers D (bits of [`GuestDriver`](crate::kernel_drivers::GuestDriver)) |
//!
//! The init writes one byte to [`MILESTONE_PORT`] at each [`BootMilestone`] and, when the
//! workload has ended, its [`WorkloadStatus`] as a 32-bit value to [`STATUS_PORT`] — first the
//! status, then [`BootMilestone::WorkloadExited`]. Then it resets the VM. A status of
//! [`INIT_FAILED`] without [`BootMilestone::WorkloadExec`] means the init itself failed (its
//! reason is on the console).

/// I/O port for 8-bit milestone writes.
pub const MILESTONE_PORT: u16 = 0x600;

/// I/O port for the 32-bit workload status write.
pub const STATUS_PORT: u16 = 0x604;

/// The first port of the device and how many ports it spans (the init's `ioperm` range, the
/// VMM's decoding window).
pub const PORT_RANGE: (u16, u16) = (MILESTONE_PORT, 8);

/// Exit code of a failure of the init itself (vmc's own 125).
pub const INIT_FAILED_CODE: u8 = 125;

/// Status the init reports when it fails before the workload could start.
pub const INIT_FAILED: WorkloadStatus = WorkloadStatus::Exited(INIT_FAILED_CODE);

use crate::kernel_drivers::MissingDrivers;

/// Bit set in a status value when the init could not start the workload because the guest
/// kernel lacks drivers (in the low byte, one bit per [`GuestDriver`](crate::kernel_drivers::GuestDriver)).
const KERNEL_LACKS_FLAG: u32 = 0x1000;

/// Bit set in a status value when the workload was killed by a signal.
const SIGNALED_FLAG: u32 = 0x100;

/// Bit set, with [`SIGNALED_FLAG`] and SIGKILL, when the guest's OOM killer ended the workload.
const OOM_FLAG: u32 = 0x200;

/// SIGKILL's number, which the OOM killer sends.
const SIGKILL: u8 = 9;

/// The milestones the guest reports, by the byte written to [`MILESTONE_PORT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BootMilestone {
    /// The guest init's `main` started.
    InitStarted = 1,
    /// The workload is about to be executed.
    WorkloadExec = 2,
    /// The workload has exited (its status was written just before).
    WorkloadExited = 3,
}

impl BootMilestone {
    /// The milestone a byte written to [`MILESTONE_PORT`] stands for (`None`: no milestone).
    pub fn from_byte(byte: u8) -> Option<Self> {
        [Self::InitStarted, Self::WorkloadExec, Self::WorkloadExited]
            .into_iter()
            .find(|milestone| *milestone as u8 == byte)
    }
}

/// How the workload ended, as reported on [`STATUS_PORT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadStatus {
    /// Exited with this code.
    Exited(u8),
    /// Killed by this signal.
    Signaled(u8),
    /// Killed (SIGKILL) by the guest kernel's OOM killer: the guest ran out of memory.
    OomKilled,
    /// Never started: the guest kernel lacks these drivers (never empty).
    KernelLacks(MissingDrivers),
}

impl WorkloadStatus {
    /// The 32-bit value written to [`STATUS_PORT`]: the exit code, `0x100 | signal`,
    /// `0x309` for the OOM killer's SIGKILL, or `0x1000 | drivers` for a kernel that lacks
    /// drivers.
    pub fn to_port_value(self) -> u32 {
        match self {
            Self::Exited(code) => u32::from(code),
            Self::Signaled(signal) => SIGNALED_FLAG | u32::from(signal),
            Self::OomKilled => OOM_FLAG | SIGNALED_FLAG | u32::from(SIGKILL),
            Self::KernelLacks(missing) => KERNEL_LACKS_FLAG | u32::from(missing.bits()),
        }
    }

    /// Reads a value the guest wrote to [`STATUS_PORT`]: bit `0x1000` with known driver bits
    /// in the low byte means a kernel without those drivers, bits `0x300` and SIGKILL the OOM
    /// killer, bit `0x100` killed by the signal in the low byte, else the low byte is the exit
    /// code (other bits are ignored, so any value the guest writes has a meaning).
    pub fn from_port_value(value: u32) -> Self {
        let low_byte = (value & 0xff) as u8;
        let oom = OOM_FLAG | SIGNALED_FLAG;
        let missing = MissingDrivers::from_bits(low_byte);
        if value & KERNEL_LACKS_FLAG != 0 && !missing.is_empty() {
            Self::KernelLacks(missing)
        } else if value & oom == oom && low_byte == SIGKILL {
            Self::OomKilled
        } else if value & SIGNALED_FLAG != 0 {
            Self::Signaled(low_byte)
        } else {
            Self::Exited(low_byte)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel_drivers::GuestDriver;

    #[test]
    fn status_encoding_matches_the_device_protocol() {
        assert_eq!(WorkloadStatus::Exited(0).to_port_value(), 0);
        assert_eq!(WorkloadStatus::Exited(255).to_port_value(), 255);
        assert_eq!(WorkloadStatus::Signaled(9).to_port_value(), 0x109);
        assert_eq!(WorkloadStatus::Signaled(15).to_port_value(), 0x10f);
        assert_eq!(INIT_FAILED.to_port_value(), 125);
        assert_eq!(WorkloadStatus::OomKilled.to_port_value(), 0x309);
        let mut missing = MissingDrivers::default();
        missing.insert(GuestDriver::Erofs);
        assert_eq!(WorkloadStatus::KernelLacks(missing).to_port_value(), 0x1004);
    }

    #[test]
    fn status_decoding_inverts_the_encoding_and_takes_any_value() {
        for status in [
            WorkloadStatus::Exited(0),
            WorkloadStatus::Exited(255),
            WorkloadStatus::Signaled(9),
            WorkloadStatus::OomKilled,
            INIT_FAILED,
            WorkloadStatus::KernelLacks(MissingDrivers::from_bits(0x21)),
        ] {
            assert_eq!(
                WorkloadStatus::from_port_value(status.to_port_value()),
                status
            );
        }
        assert_eq!(
            WorkloadStatus::from_port_value(0xdead_0242),
            WorkloadStatus::Exited(0x42)
        );
        assert_eq!(
            WorkloadStatus::from_port_value(0x3ff),
            WorkloadStatus::Signaled(0xff)
        );
        assert_eq!(
            WorkloadStatus::from_port_value(0x20f),
            WorkloadStatus::Exited(0x0f),
            "the OOM bit alone means nothing"
        );
        assert_eq!(
            WorkloadStatus::from_port_value(0x1040),
            WorkloadStatus::Exited(0x40),
            "no known driver: the flag alone means nothing"
        );
    }

    #[test]
    fn milestone_bytes_match_the_device_protocol() {
        assert_eq!(BootMilestone::InitStarted as u8, 1);
        assert_eq!(BootMilestone::WorkloadExec as u8, 2);
        assert_eq!(BootMilestone::WorkloadExited as u8, 3);
        for milestone in [
            BootMilestone::InitStarted,
            BootMilestone::WorkloadExec,
            BootMilestone::WorkloadExited,
        ] {
            assert_eq!(BootMilestone::from_byte(milestone as u8), Some(milestone));
        }
        assert_eq!(BootMilestone::from_byte(0), None);
        assert_eq!(BootMilestone::from_byte(4), None);
    }
}
