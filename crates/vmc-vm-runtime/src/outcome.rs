//! What the status the guest init reported means for the run: the workload's outcome, or why
//! the workload never started.

use crate::error::VmRuntimeError;
use vmc_protocol::exit_device::WorkloadStatus;
use vmc_runtime::ExitOutcome;

/// The workload's outcome that `status` reports, or the error it stands for.
pub fn outcome_of(status: WorkloadStatus) -> Result<ExitOutcome, VmRuntimeError> {
    Ok(match status {
        WorkloadStatus::Exited(code) => ExitOutcome::Exited(code.into()),
        WorkloadStatus::Signaled(signal) => ExitOutcome::Signaled(signal.into()),
        WorkloadStatus::OomKilled => ExitOutcome::OomKilled,
        WorkloadStatus::KernelLacks(missing) => {
            return Err(VmRuntimeError::KernelLacksDrivers(missing.config_options()))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmc_protocol::kernel_drivers::{GuestDriver, MissingDrivers};

    #[test]
    fn statuses_map_to_the_exit_contract() {
        let outcome = |value| outcome_of(WorkloadStatus::from_port_value(value)).unwrap();
        assert_eq!(outcome(0), ExitOutcome::Exited(0));
        assert_eq!(outcome(127), ExitOutcome::Exited(127));
        assert_eq!(outcome(0x10f), ExitOutcome::Signaled(15));
        assert_eq!(outcome(0x309), ExitOutcome::OomKilled);
    }

    #[test]
    fn a_kernel_without_drivers_is_one_line_naming_the_options_and_the_fix() {
        let mut missing = MissingDrivers::default();
        missing.insert(GuestDriver::Erofs);
        missing.insert(GuestDriver::Overlay);
        let status =
            WorkloadStatus::from_port_value(WorkloadStatus::KernelLacks(missing).to_port_value());
        let err = outcome_of(status).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the guest kernel lacks CONFIG_EROFS_FS, CONFIG_OVERLAY_FS, which VM mode needs: build the guest kernel with kernels/build.sh (kernels/vmc-guest.config has every option), or give --kernel one built with them"
        );
    }
}
