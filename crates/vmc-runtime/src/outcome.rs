//! The exit-status contract shared by both modes (the one Docker uses).

use serde::{Deserialize, Serialize};

/// Exit status when vmc itself fails before the workload starts.
pub const EXIT_VMC_FAILED: i32 = 125;
/// Exit status when the workload's command exists but cannot be executed.
pub const EXIT_CANNOT_EXECUTE: i32 = 126;
/// Exit status when the workload's command is not found.
pub const EXIT_NOT_FOUND: i32 = 127;

/// How a workload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum ExitOutcome {
    /// The workload exited with this code (126/127 when its command could not be run).
    Exited(i32),
    /// The workload was killed by this signal number.
    Signaled(i32),
    /// The workload was killed by the kernel's OOM killer for exceeding its memory limit.
    OomKilled,
}

impl ExitOutcome {
    /// The status vmc exits with: the workload's code, or 128+N for signal N (SIGKILL for OOM).
    pub fn exit_code(self) -> i32 {
        match self {
            ExitOutcome::Exited(code) => code,
            ExitOutcome::Signaled(signal) => 128 + signal,
            ExitOutcome::OomKilled => 128 + libc::SIGKILL,
        }
    }

    /// Decodes a `waitpid` status word.
    pub fn from_wait_status(status: i32) -> Self {
        if libc::WIFSIGNALED(status) {
            ExitOutcome::Signaled(libc::WTERMSIG(status))
        } else {
            ExitOutcome::Exited(libc::WEXITSTATUS(status))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_maps_to_128_plus_n() {
        assert_eq!(ExitOutcome::Signaled(9).exit_code(), 137);
        assert_eq!(ExitOutcome::OomKilled.exit_code(), 137);
        assert_eq!(ExitOutcome::Exited(3).exit_code(), 3);
    }

    #[test]
    fn decodes_wait_status() {
        // exit(3): status word is 3 << 8; killed by SIGTERM: status word is 15.
        assert_eq!(
            ExitOutcome::from_wait_status(3 << 8),
            ExitOutcome::Exited(3)
        );
        assert_eq!(ExitOutcome::from_wait_status(15), ExitOutcome::Signaled(15));
    }
}
