//! Port I/O to the VMM's exit/boot-timer device (see [`vmc_protocol::exit_device`]).

use crate::error::InitError;
use nix::errno::Errno;
use vmc_protocol::exit_device::{
    BootMilestone, WorkloadStatus, MILESTONE_PORT, PORT_RANGE, STATUS_PORT,
};

/// Access to the exit device's ports, granted to this process (and inherited by `fork`).
pub struct ExitDevice(());

impl ExitDevice {
    /// Asks the kernel for access to the device's ports.
    pub fn open() -> Result<Self, InitError> {
        set_port_access(true).map_err(InitError::ExitDevice)?;
        Ok(ExitDevice(()))
    }

    /// Reports that the guest reached `milestone`.
    pub fn milestone(&self, milestone: BootMilestone) {
        // SAFETY: `self` proves ioperm granted access to MILESTONE_PORT; the write only traps
        // to the VMM's exit device and touches no memory.
        unsafe {
            core::arch::asm!("out dx, al", in("dx") MILESTONE_PORT, in("al") milestone as u8,
                options(nomem, nostack, preserves_flags));
        }
    }

    /// Reports how the workload ended.
    pub fn status(&self, status: WorkloadStatus) {
        // SAFETY: as in `milestone`, for STATUS_PORT (inside the granted range).
        unsafe {
            core::arch::asm!("out dx, eax", in("dx") STATUS_PORT, in("eax") status.to_port_value(),
                options(nomem, nostack, preserves_flags));
        }
    }

    /// Gives this process's port access up, so the workload it executes next cannot fake
    /// reports (the init's own access, in the parent process, is unaffected).
    pub fn release(&self) -> Result<(), Errno> {
        set_port_access(false)
    }
}

/// Grants or revokes this process's access to the device's ports.
fn set_port_access(on: bool) -> Result<(), Errno> {
    let (from, count) = PORT_RANGE;
    // SAFETY: ioperm only changes this process's I/O permission bitmap; it takes plain integers.
    let rc = unsafe { libc::ioperm(from.into(), count.into(), i32::from(on)) };
    Errno::result(rc).map(drop)
}
