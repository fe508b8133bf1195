//! The VMM's exit/boot-timer device, as the guest init drives it.
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

/// The first port of the device and how many ports it spans (the init's `ioperm` range).
pub const PORT_RANGE: (u16, u16) = (MILESTONE_PORT, 8);

/// Exit code of a failure of the init itself (vmc's own 125).
pub const INIT_FAILED_CODE: u8 = 125;

/// Status the init reports when it fails before the workload could start.
pub const INIT_FAILED: WorkloadStatus = WorkloadStatus::Exited(INIT_FAILED_CODE);

/// Bit set in a status value when the workload was killed by a signal.
const SIGNALED_FLAG: u32 = 0x100;

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

/// How the workload ended, as reported on [`STATUS_PORT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadStatus {
    /// Exited with this code.
    Exited(u8),
    /// Killed by this signal.
    Signaled(u8),
}

impl WorkloadStatus {
    /// The 32-bit value written to [`STATUS_PORT`]: the exit code, or `0x100 | signal`.
    pub fn to_port_value(self) -> u32 {
        match self {
            Self::Exited(code) => u32::from(code),
            Self::Signaled(signal) => SIGNALED_FLAG | u32::from(signal),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_encoding_matches_the_device_protocol() {
        assert_eq!(WorkloadStatus::Exited(0).to_port_value(), 0);
        assert_eq!(WorkloadStatus::Exited(255).to_port_value(), 255);
        assert_eq!(WorkloadStatus::Signaled(9).to_port_value(), 0x109);
        assert_eq!(WorkloadStatus::Signaled(15).to_port_value(), 0x10f);
        assert_eq!(INIT_FAILED.to_port_value(), 125);
    }

    #[test]
    fn milestone_bytes_match_the_device_protocol() {
        assert_eq!(BootMilestone::InitStarted as u8, 1);
        assert_eq!(BootMilestone::WorkloadExec as u8, 2);
        assert_eq!(BootMilestone::WorkloadExited as u8, 3);
    }
}
