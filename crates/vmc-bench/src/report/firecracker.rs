//! The VM mode against Firecracker's published specification (SPECIFICATION.md): at most
//! 125 ms from InstanceStart to the guest's /sbin/init, and at most 5 MiB of VMM memory
//! overhead (1 vCPU, 128 MiB guest).

use super::{format_bytes, format_ms, BenchReport};
use crate::{KvmKind, Phase};
use vmc_runtime::Mode;

/// Firecracker's bound on InstanceStart → guest /sbin/init, in milliseconds.
pub const BOOT_TO_INIT_BOUND_MS: f64 = 125.0;
/// Firecracker's bound on VMM memory overhead, in bytes.
pub const VMM_OVERHEAD_BOUND_BYTES: u64 = 5 << 20;

/// How a measured figure relates to Firecracker's bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// At or below the bound.
    Within,
    /// Above the bound.
    Above,
    /// Measured, but under conditions the bound does not speak about (the reason).
    NotComparable(String),
    /// The report has no such measurement (the reason).
    NotMeasured(String),
}

impl Verdict {
    /// The verdict as a table cell.
    pub fn describe(&self) -> String {
        match self {
            Verdict::Within => "within".into(),
            Verdict::Above => "above".into(),
            Verdict::NotComparable(why) => format!("not comparable: {why}"),
            Verdict::NotMeasured(why) => format!("not measured: {why}"),
        }
    }
}

/// One line of the comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// What is compared.
    pub what: &'static str,
    /// Firecracker's published bound.
    pub published: &'static str,
    /// What vmc measured.
    pub measured: String,
    /// How the two relate.
    pub verdict: Verdict,
}

/// Compares the report's VM mode with both published bounds.
pub fn compare(report: &BenchReport) -> Vec<Comparison> {
    vec![boot_to_init(report), vmm_overhead(report)]
}

/// Boot to init (runtime ready → init started), judged on the p95 of the runs.
fn boot_to_init(report: &BenchReport) -> Comparison {
    let what = "boot to init (VMM ready → guest init runs)";
    let published = "≤ 125 ms (InstanceStart → /sbin/init)";
    let stats = report
        .mode(Mode::Vm)
        .and_then(|vm| vm.total(Phase::BOOT_TO_INIT));
    let Some(stats) = stats else {
        return Comparison {
            what,
            published,
            measured: "—".into(),
            verdict: Verdict::NotMeasured("no VM run reached guest init".into()),
        };
    };
    let measured = format!(
        "median {} ms, p95 {} ms",
        format_ms(stats.median),
        format_ms(stats.p95)
    );
    let kvm = &report.host_of(Mode::Vm).unwrap_or(&report.host).kvm;
    let verdict = match kvm.kind {
        KvmKind::Emulated | KvmKind::Unavailable => Verdict::NotComparable(format!(
            "the VM ran on {}, so this times the emulator, not vmc",
            kvm.detail
        )),
        KvmKind::Hardware | KvmKind::Nested if stats.p95 <= BOOT_TO_INIT_BOUND_MS => {
            Verdict::Within
        }
        KvmKind::Hardware | KvmKind::Nested => Verdict::Above,
    };
    Comparison {
        what,
        published,
        measured,
        verdict,
    }
}

/// VMM overhead (VMM RSS minus resident guest RAM), judged on the memory run's median.
fn vmm_overhead(report: &BenchReport) -> Comparison {
    let what = "VMM memory overhead (RSS − resident guest RAM)";
    let published = "≤ 5 MiB (1 vCPU, 128 MiB guest)";
    let summary = report
        .mode(Mode::Vm)
        .and_then(|vm| vm.memory.as_ref())
        .map(|memory| memory.summary)
        .filter(|summary| summary.sample_count > 0);
    let Some(summary) = summary else {
        return Comparison {
            what,
            published,
            measured: "—".into(),
            verdict: Verdict::NotMeasured("no VM memory run was sampled".into()),
        };
    };
    let measured = format!(
        "median {}, max {}",
        format_bytes(summary.overhead_median_bytes),
        format_bytes(summary.overhead_max_bytes)
    );
    let verdict = if summary.overhead_median_bytes <= VMM_OVERHEAD_BOUND_BYTES {
        Verdict::Within
    } else {
        Verdict::Above
    };
    Comparison {
        what,
        published,
        measured,
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;

    #[test]
    fn emulated_kvm_makes_boot_time_not_comparable() {
        let report = sample::report();
        let lines = compare(&report);
        assert!(matches!(lines[0].verdict, Verdict::NotComparable(_)));
        assert!(lines[0].verdict.describe().contains("QEMU TCG"));
        // Overhead is the VMM process's own memory: comparable anywhere (3 MiB in the sample).
        assert_eq!(lines[1].verdict, Verdict::Within);
    }

    #[test]
    fn hardware_kvm_is_judged_on_p95() {
        let mut report = sample::report();
        report.host.kvm.kind = KvmKind::Hardware;
        // The sample's boot to init is about 109-111 ms.
        assert_eq!(compare(&report)[0].verdict, Verdict::Within);
        for run in &mut report.modes[0].runs {
            run.totals[1].duration += std::time::Duration::from_millis(30);
        }
        let vm = report.modes.remove(0);
        report.modes.insert(
            0,
            super::super::ModeReport::new(Mode::Vm, vm.runs, vm.memory),
        );
        assert_eq!(compare(&report)[0].verdict, Verdict::Above);
    }

    #[test]
    fn missing_vm_mode_is_not_measured() {
        let mut report = sample::report();
        report.modes.retain(|m| m.mode != Mode::Vm);
        let lines = compare(&report);
        assert!(matches!(lines[0].verdict, Verdict::NotMeasured(_)));
        assert!(matches!(lines[1].verdict, Verdict::NotMeasured(_)));
    }
}
