//! Whether this host's KVM can run a Linux guest, asked before anything else is set up.

use crate::error::VmRuntimeError;
use vmc_runtime::Timeline;
use vmc_vm::probe::Verdict;

/// Refuses at once, with the probe's explanation, on a host whose KVM cannot boot Linux.
pub fn check_kvm_can_run_linux(timeline: &mut Timeline) -> Result<(), VmRuntimeError> {
    let report = vmc_vm::probe::probe();
    match report.verdict {
        Some(Verdict::Full) => {
            timeline.step(format!(
                "KVM probe guest took an exception and a timer interrupt ({:.1} ms)",
                report.elapsed.as_secs_f64() * 1000.0
            ));
            Ok(())
        }
        Some(verdict) => Err(VmRuntimeError::KvmCannotRunLinux(verdict.message())),
        None => Err(vmc_vm::open_kvm()
            .err()
            .map_or(VmRuntimeError::KvmUnavailable, VmRuntimeError::Vm)),
    }
}
