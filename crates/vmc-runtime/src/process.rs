//! A process told apart from a later holder of its pid: its start time, or a pidfd.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// Field 22 of `/proc/PID/stat`, the start time in clock ticks since boot, of a process that
/// has not exited (a zombie has none).
pub fn start_time(pid: i32) -> Option<u64> {
    parse_start_time(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The start time in a `/proc/PID/stat` line, unless the process is a zombie or dead. The
/// command name (field 2) is in parentheses and may itself hold spaces and parentheses, so
/// fields are counted after its last `)`.
fn parse_start_time(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    // after_name starts with field 3 (the state); field 22 is 19 fields further.
    let mut fields = after_name.split_whitespace();
    if matches!(fields.next()?, "Z" | "X" | "x") {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// A pidfd of process `pid` (Linux 5.3 or newer): it names that process for as long as it is
/// open, whoever takes the pid after it exits, and it becomes readable when the process exits.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_even_with_a_hostile_name() {
        let stat = "4242 (a) b (c) R 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 \
                    1000 200 18446744073709551615";
        assert_eq!(parse_start_time(stat), Some(987_654));
        assert_eq!(parse_start_time("1 (x) S 0"), None);
        let zombie = stat.replacen(" R ", " Z ", 1);
        assert_eq!(parse_start_time(&zombie), None);
        assert_eq!(parse_start_time("garbage"), None);
        assert!(start_time(std::process::id() as i32).is_some());
    }
}
