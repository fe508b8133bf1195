//! Which process a run record means, safe against pid reuse.
//!
//! A pid alone names whatever process holds that number now: after the supervising vmc dies
//! the kernel may give its pid to an unrelated process. Like runc, a record therefore keeps
//! the process's start time (field 22 of `/proc/PID/stat`, clock ticks since boot) and the
//! host's boot id; a pid counts as the recorded process only while both still match. Signals
//! go through a pidfd opened before the final check, so they cannot reach a process that took
//! the pid after it.

use crate::error::{Result, RunsError};
use serde::{Deserialize, Serialize};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use vmc_runtime::process::{pidfd_open, start_time};

/// How long [`ProcessIdentity::kill`] waits for the killed process to be gone, in ms.
const EXIT_WAIT_MS: i32 = 5000;

/// One process, told apart from any later holder of its pid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessIdentity {
    /// The process id.
    pub pid: i32,
    /// When it started, in clock ticks since boot (`/proc/PID/stat` field 22).
    pub start_time: u64,
    /// The boot it started in (`/proc/sys/kernel/random/boot_id`): start times count from boot.
    pub boot_id: String,
}

impl ProcessIdentity {
    /// The identity of the process `pid` now, if it exists and /proc tells.
    pub fn of(pid: i32) -> Option<ProcessIdentity> {
        Some(ProcessIdentity {
            pid,
            start_time: start_time(pid)?,
            boot_id: boot_id()?,
        })
    }

    /// The identity of this process.
    pub fn current() -> Option<ProcessIdentity> {
        Self::of(std::process::id() as i32)
    }

    /// Whether the process is still alive: its pid exists with the recorded start time, in
    /// this boot, and has not exited (a zombie waiting for its parent is dead).
    pub fn is_alive(&self) -> bool {
        self.pid > 0 && Self::of(self.pid).as_ref() == Some(self)
    }

    /// SIGKILLs the process if it is still the one recorded, and waits (a few seconds at most)
    /// until it is gone. Returns whether it was signalled; a process that no longer exists, or
    /// whose pid now belongs to another process, is left alone.
    pub fn kill(&self) -> Result<bool> {
        let Some(pidfd) = self.pidfd()? else {
            return Ok(false);
        };
        if !send_signal(&pidfd, self.pid, libc::SIGKILL)? {
            return Ok(false);
        }
        wait_readable(&pidfd, Some(EXIT_WAIT_MS));
        Ok(true)
    }

    /// Waits until the process has exited, at most `timeout_ms` (forever with `None`).
    /// Returns whether it is gone. Event-driven: a pidfd becomes readable when its process
    /// exits.
    pub fn wait_gone(&self, timeout_ms: Option<i32>) -> Result<bool> {
        let Some(pidfd) = self.pidfd()? else {
            return Ok(true);
        };
        Ok(wait_readable(&pidfd, timeout_ms) || !self.is_alive())
    }

    /// A pidfd of the recorded process, or `None` when it is gone (or its pid reused).
    pub fn pidfd(&self) -> Result<Option<OwnedFd>> {
        if self.pid <= 0 {
            return Ok(None);
        }
        let pidfd = match pidfd_open(self.pid) {
            Ok(fd) => fd,
            Err(err) if err.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
            Err(err) if err.raw_os_error() == Some(libc::ENOSYS) => {
                return Err(RunsError::NoPidfd(self.pid))
            }
            Err(err) => {
                return Err(RunsError::io(
                    format!("pidfd_open of process {}", self.pid),
                    err,
                ))
            }
        };
        // The pidfd now pins the process that held the pid when it was opened: if that is the
        // recorded one, this check sees it; if it has died since, signals fail with ESRCH.
        Ok(self.is_alive().then_some(pidfd))
    }
}

/// Sends `signal` through `pidfd`; false when the process has exited.
fn send_signal(pidfd: &OwnedFd, pid: i32, signal: i32) -> Result<bool> {
    // SAFETY: pidfd_send_signal takes a valid pidfd, a signal number, no siginfo and no
    // flags; it only reads its arguments.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if sent != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ESRCH) {
            return Ok(false);
        }
        return Err(RunsError::io(format!("cannot signal process {pid}"), err));
    }
    Ok(true)
}

/// Waits until `fd` is readable, at most `timeout_ms` (forever with `None`); whether it is.
/// EINTR only shortens the wait.
fn wait_readable(fd: &OwnedFd, timeout_ms: Option<i32>) -> bool {
    let mut poll_fd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll_fd is one valid, writable pollfd for the duration of the call.
    unsafe { libc::poll(&mut poll_fd, 1, timeout_ms.unwrap_or(-1)) > 0 }
}

/// The host's boot id.
fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_string()).filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let me = ProcessIdentity::current().expect("/proc is mounted");
        assert!(me.is_alive());
        let reused = ProcessIdentity {
            start_time: me.start_time + 1,
            ..me.clone()
        };
        assert!(!reused.is_alive());
        let other_boot = ProcessIdentity {
            boot_id: "another-boot".into(),
            ..me.clone()
        };
        assert!(!other_boot.is_alive());
        assert!(!ProcessIdentity { pid: 0, ..me }.is_alive());
    }

    #[test]
    fn kill_leaves_a_process_with_another_start_time_alone() {
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let real = ProcessIdentity::of(pid).unwrap();
        let impostor = ProcessIdentity {
            start_time: real.start_time.wrapping_sub(1),
            ..real.clone()
        };
        assert!(!impostor.kill().unwrap());
        assert!(real.is_alive(), "the sleep survived");
        assert!(real.kill().unwrap());
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
        assert!(!real.is_alive());
    }
}
