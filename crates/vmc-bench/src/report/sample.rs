//! A small, plausible report for the writers' tests: three runs per mode and a
//! memory-cycle run per mode in which the VM keeps its guest RAM and the container frees it.

use super::*;
use crate::{KvmFacts, KvmKind, MemorySample};
use std::time::Duration;
use vmc_runtime::MemoryReading;

const MIB: u64 = 1 << 20;

fn marks(points: &[(Milestone, u64)]) -> Vec<Mark> {
    points
        .iter()
        .map(|&(milestone, us)| Mark {
            milestone,
            at: Duration::from_micros(us),
        })
        .collect()
}

fn vm_marks(jitter: u64) -> Vec<Mark> {
    marks(&[
        (Milestone::VmcStart, 0),
        (Milestone::RuntimeReady, 9_000 + jitter),
        (Milestone::KernelEntry, 9_400 + jitter),
        (Milestone::InitStarted, 118_000 + 3 * jitter),
        (Milestone::WorkloadExec, 119_500 + 3 * jitter),
        (Milestone::WorkloadExit, 121_000 + 3 * jitter),
        (Milestone::TornDown, 126_000 + 3 * jitter),
    ])
}

fn container_marks(jitter: u64) -> Vec<Mark> {
    marks(&[
        (Milestone::VmcStart, 0),
        (Milestone::RuntimeReady, 3_100 + jitter),
        (Milestone::InitStarted, 4_900 + jitter),
        (Milestone::WorkloadExec, 5_600 + jitter),
        (Milestone::WorkloadExit, 6_400 + jitter),
        (Milestone::TornDown, 9_800 + jitter),
    ])
}

/// A memory-cycle series: 64 MiB allocated from 0.2 s to 1.2 s after `exec_us`, sampled
/// every 100 ms until 2.3 s (past the memory runs' workload exit at 2.25 s); `keeps_freed` decides whether workload memory falls again.
fn series(
    exec_us: u64,
    reserved: u64,
    base: u64,
    keeps_freed: bool,
    peak: bool,
) -> Vec<MemorySample> {
    (0..=23)
        .map(|i| {
            let t = i * 100_000;
            let allocated = t >= 200_000;
            let freed = t >= 1_200_000;
            let holds_allocation = allocated && (keeps_freed || !freed);
            let workload = if holds_allocation {
                base + 64 * MIB
            } else {
                base
            };
            MemorySample {
                at: Duration::from_micros(exec_us + t),
                reading: MemoryReading {
                    reserved_bytes: reserved,
                    workload_bytes: workload,
                    peak_bytes: peak.then_some(if allocated { base + 64 * MIB } else { base }),
                    overhead_bytes: 3 * MIB + (i % 3) * 4096,
                },
            }
        })
        .collect()
}

/// The sample report.
pub(crate) fn report() -> BenchReport {
    let vm_runs = (0..3)
        .map(|i| RunRecord::new(i + 1, 0, &vm_marks(i as u64 * 700)))
        .collect();
    let ctr_runs = (0..3)
        .map(|i| RunRecord::new(i + 1, 0, &container_marks(i as u64 * 300)))
        .collect();
    let command: Vec<String> = ["memory-cycle", "--mib", "64", "--hold", "1"]
        .map(String::from)
        .to_vec();
    let mut vm_memory_marks = vm_marks(0);
    vm_memory_marks[5].at = Duration::from_micros(119_500 + 2_250_000);
    vm_memory_marks[6].at = Duration::from_micros(119_500 + 2_260_000);
    let mut ctr_memory_marks = container_marks(0);
    ctr_memory_marks[4].at = Duration::from_micros(5_600 + 2_250_000);
    ctr_memory_marks[5].at = Duration::from_micros(5_600 + 2_252_000);
    let vm_memory = MemoryRun::new(
        command.clone(),
        0,
        &vm_memory_marks,
        series(119_500, 128 * MIB, 6 * MIB, true, false),
    );
    let ctr_memory = MemoryRun::new(
        command,
        0,
        &ctr_memory_marks,
        series(5_600, 0, MIB, false, true),
    );
    BenchReport {
        schema: SCHEMA_ID.into(),
        created: "2026-11-27T08:00:00Z".into(),
        settings: BenchSettings {
            image: "busybox".into(),
            command: vec!["/bin/true".into()],
            runs: 3,
            warmup: 1,
            memory_bytes: Some(128 * MIB),
            cpus: Some(1.0),
            sample_interval_ms: 10,
        },
        host: HostFacts {
            kernel: "Linux 6.1.0-26-amd64 x86_64".into(),
            cpu_model: "AMD EPYC 7B13 64-Core Processor".into(),
            cpu_count: 2,
            memory_bytes: 24 << 30,
            kvm: KvmFacts {
                kind: KvmKind::Emulated,
                detail: "QEMU TCG inside scripts/kvm-sandbox".into(),
            },
            cgroup: crate::CgroupLayout::Hybrid,
            vmc_version: "0.1.0".into(),
        },
        modes: vec![
            ModeReport::new(Mode::Vm, vm_runs, Some(vm_memory)),
            ModeReport::new(Mode::Container, ctr_runs, Some(ctr_memory)),
        ],
    }
}
