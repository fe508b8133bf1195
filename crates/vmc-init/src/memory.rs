//! The guest's memory behaves as a container's memory limit does: allocations succeed, and
//! when the workload touches more than the guest has, the kernel's OOM killer ends it — which
//! the init reports as such, so vmc exits with 137 and says why, as in container mode.

use vmc_protocol::exit_device::WorkloadStatus;

/// Where the kernel counts OOM kills since boot (`oom_kill`; the guest kernel needs
/// CONFIG_VM_EVENT_COUNTERS, else a kill is reported as a plain SIGKILL).
const VMSTAT: &str = "/proc/vmstat";
/// The overcommit policy.
const OVERCOMMIT: &str = "/proc/sys/vm/overcommit_memory";

/// Always overcommit (mode 1), as a container's allocations do on a host with far more memory
/// than the container's limit: otherwise the guest's default heuristic refuses any single
/// allocation larger than its RAM (Python raises MemoryError instead of being OOM-killed).
/// Best effort: without it only the way a too-large allocation fails differs.
pub fn overcommit_like_a_container() {
    if let Err(err) = std::fs::write(OVERCOMMIT, "1") {
        eprintln!("vmc-init: setting {OVERCOMMIT}: {err}");
    }
}

/// The OOM kill count when the workload started.
pub struct OomKills {
    before: Option<u64>,
}

impl OomKills {
    /// Reads the count now (before the workload starts).
    pub fn count_from_now() -> Self {
        OomKills {
            before: read_oom_kills(),
        }
    }

    /// `status`, or [`WorkloadStatus::OomKilled`] if the workload died of SIGKILL while the
    /// OOM killer killed something (the workload or one of its processes).
    pub fn classify(&self, status: WorkloadStatus) -> WorkloadStatus {
        let killed_since = match (self.before, read_oom_kills()) {
            (Some(before), Some(now)) => now > before,
            _ => false,
        };
        oom_verdict(status, killed_since)
    }
}

/// [`OomKills::classify`] once the count is known.
fn oom_verdict(status: WorkloadStatus, oom_killed_since: bool) -> WorkloadStatus {
    match status {
        WorkloadStatus::Signaled(signal)
            if oom_killed_since && i32::from(signal) == libc::SIGKILL =>
        {
            WorkloadStatus::OomKilled
        }
        other => other,
    }
}

/// The `oom_kill` counter of /proc/vmstat (`None` if it cannot be read).
fn read_oom_kills() -> Option<u64> {
    let vmstat = std::fs::read_to_string(VMSTAT).ok()?;
    oom_kill_count(&vmstat)
}

/// The `oom_kill` line of a /proc/vmstat text.
fn oom_kill_count(vmstat: &str) -> Option<u64> {
    vmstat
        .lines()
        .find_map(|line| line.strip_prefix("oom_kill "))
        .and_then(|count| count.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_oom_kill_counter() {
        let vmstat = "nr_free_pages 1000\noom_kill 3\npgfault 7\n";
        assert_eq!(oom_kill_count(vmstat), Some(3));
        assert_eq!(oom_kill_count("nr_free_pages 1\n"), None);
    }

    #[test]
    fn only_a_sigkill_during_oom_kills_counts_as_oom() {
        let kill = WorkloadStatus::Signaled(9);
        assert_eq!(oom_verdict(kill, true), WorkloadStatus::OomKilled);
        assert_eq!(oom_verdict(kill, false), kill);
        let term = WorkloadStatus::Signaled(15);
        assert_eq!(oom_verdict(term, true), term);
        let exited = WorkloadStatus::Exited(1);
        assert_eq!(oom_verdict(exited, true), exited);
    }
}
