//! The KVM capability probe on this host.

use std::time::Duration;
use vmc_vm::probe::{probe, KvmAccess, Verdict};

#[test]
fn probe_gives_a_verdict_quickly() {
    let report = probe();
    let KvmAccess::Available {
        api_version,
        max_vcpus,
    } = report.access
    else {
        eprintln!("SKIPPED: {:?}", report.access);
        return;
    };
    assert_eq!(api_version, 12);
    assert!(max_vcpus >= 1);
    let verdict = report.verdict.expect("a verdict when KVM is available");
    eprintln!("probe: {} ({:?})", verdict.message(), report.elapsed);
    assert!(
        matches!(verdict, Verdict::Full | Verdict::NoGuestInterrupts { .. }),
        "{verdict:?}"
    );
    assert!(
        report.elapsed < Duration::from_secs(3),
        "{:?}",
        report.elapsed
    );
}
