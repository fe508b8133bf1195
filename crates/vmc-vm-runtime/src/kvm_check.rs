//! Whether this host's KVM can run a Linux guest, asked before anything else is set up: the
//! probe's verdict is cached per host boot ([`crate::kvm_probe_cache`]), so only the first
//! VM run of a boot (or of a reloaded KVM module, or of a new vmc build) pays for the probe.

use crate::error::VmRuntimeError;
use crate::kvm_probe_cache::{self, KeySources, ProbeKey, CACHE_FILE};
use std::path::Path;
use vmc_runtime::Timeline;
use vmc_vm::probe::Verdict;

/// Refuses at once, with the probe's explanation, on a host whose KVM cannot boot Linux.
/// `home` is the vmc home, where the verdict is cached.
pub fn check_kvm_can_run_linux(home: &Path, timeline: &mut Timeline) -> Result<(), VmRuntimeError> {
    let cache = home.join(CACHE_FILE);
    let key = ProbeKey::gather(&KeySources::host());
    if let Some(key) = &key {
        if let Some(verdict) = kvm_probe_cache::load(&cache, key) {
            timeline.step(format!("KVM probe: cached verdict (boot {})", key.boot_id));
            return verdict_result(verdict);
        }
    }
    let report = vmc_vm::probe::probe();
    let Some(verdict) = report.verdict else {
        return Err(vmc_vm::open_kvm()
            .err()
            .map_or(VmRuntimeError::KvmUnavailable, VmRuntimeError::Vm));
    };
    let measured = report.elapsed.as_secs_f64() * 1000.0;
    timeline.step(match verdict {
        Verdict::Full => {
            format!("KVM probe guest took an exception and a timer interrupt ({measured:.1} ms)")
        }
        _ => format!("KVM probe guest failed ({measured:.1} ms)"),
    });
    if let Some(key) = &key {
        // Not fatal: the verdict was measured, the next run measures it again.
        if let Err(err) = kvm_probe_cache::store(&cache, key, &verdict) {
            timeline.step(format!(
                "KVM probe: verdict not cached ({}: {err})",
                cache.display()
            ));
        }
    }
    verdict_result(verdict)
}

/// The run goes on only when KVM delivers exceptions and interrupts to guests.
fn verdict_result(verdict: Verdict) -> Result<(), VmRuntimeError> {
    match verdict {
        Verdict::Full => Ok(()),
        verdict => Err(VmRuntimeError::KvmCannotRunLinux(verdict.message())),
    }
}
