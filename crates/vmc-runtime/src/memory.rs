//! Memory readings during a run, the same four numbers for both modes.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One look at a running workload's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MemoryReading {
    /// Memory set aside up front: the guest RAM of a VM (= `--memory`); 0 for a container,
    /// which reserves nothing and allocates on demand.
    pub reserved_bytes: u64,
    /// Memory the workload holds now: guest RAM resident on the host (VM), or the cgroup's
    /// charged usage (container).
    pub workload_bytes: u64,
    /// The highest `workload_bytes` the kernel recorded, where it records one (cgroup peak).
    pub peak_bytes: Option<u64>,
    /// What the runtime itself costs: VMM process RSS minus resident guest RAM (VM), or the
    /// supervising vmc process's RSS (container).
    pub overhead_bytes: u64,
}

/// Reads a running workload's memory; handed out by a runtime once the workload exists.
pub trait MemoryProbe: Send + Sync {
    /// Takes one reading now. Cheap enough to call every few milliseconds.
    fn read(&self) -> MemoryReading;
}

/// Receives what a runtime offers while it runs (used by `vmc bench` to sample memory).
pub trait RunObserver: Sync {
    /// Called once, when the runtime is ready, with a probe valid until `run` returns.
    fn memory_probe_ready(&self, probe: Arc<dyn MemoryProbe>);

    /// Called once the workload has started (its exec succeeded), with a way to signal it
    /// that stays safe after it has exited. Runtimes that cannot tell never call it.
    fn workload_started(&self, _workload: Arc<dyn WorkloadSignals>) {}
}

/// Delivers signals to a running workload, any signal including SIGKILL (`vmc kill`,
/// `vmc stop`), in whichever mode it runs.
pub trait WorkloadSignals: Send + Sync {
    /// Sends `signal` to the workload; a workload that has exited already is not an error.
    fn signal(&self, signal: i32) -> std::io::Result<()>;
}

/// An observer that ignores everything (plain `vmc run`).
pub struct NoObserver;

impl RunObserver for NoObserver {
    fn memory_probe_ready(&self, _probe: Arc<dyn MemoryProbe>) {}
}

/// The resident set size of process `pid` in bytes (`VmRSS` of /proc/PID/status).
pub fn process_rss_bytes(pid: u32) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    proc_kib_field(&status, "VmRSS")
        .ok_or_else(|| std::io::Error::other(format!("no VmRSS in /proc/{pid}/status")))
}

/// The value in bytes of a `KEY:   N kB` line of a /proc file such as /proc/meminfo or
/// /proc/PID/status.
pub fn proc_kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| *name == key)
        .and_then(|(_, rest)| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kib_fields() {
        let meminfo = "MemTotal:       24589076 kB\nMemFree:        1000 kB\n";
        assert_eq!(proc_kib_field(meminfo, "MemFree"), Some(1000 * 1024));
        assert_eq!(proc_kib_field(meminfo, "Mem"), None);
    }

    #[test]
    fn own_rss_is_plausible() {
        let rss = process_rss_bytes(std::process::id()).unwrap();
        assert!(rss > 100 * 1024, "rss {rss}");
        assert!(rss < 1 << 40, "rss {rss}");
    }
}
