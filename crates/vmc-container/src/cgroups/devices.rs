//! Which devices a container may use: Docker's default device rules.
//!
//! Everything is denied, then moby's default spec (`oci/defaults.go`) and the rules runc adds
//! to every container (`specconv.AllowedDevices`) are allowed: creating any device node
//! (`mknod` stays a matter of CAP_MKNOD), and reading and writing only null, zero, full,
//! random, urandom, tty, console, ptmx, the pty slaves and tun. A node made with `mknod` for
//! anything else (a disk, /dev/kvm, /dev/kmsg) cannot be opened. moby's explicit deny of
//! fuse (10:229) is already implied by the deny-all.
//!
//! cgroup v1 enforces the rules with the devices controller ([`DeviceRule`] prints itself in
//! `devices.allow` syntax); cgroup v2 with a BPF program (`super::bpf_devices`).

use std::fmt;

/// A device type as the devices controller names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// Character device (`c`).
    Char,
    /// Block device (`b`).
    Block,
}

/// Access to a device: `r`ead, `w`rite, `m`knod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access(u8);

impl Access {
    /// Creating the node (`m`).
    pub const MKNOD: Access = Access(1);
    /// Opening for reading (`r`).
    pub const READ: Access = Access(2);
    /// Opening for writing (`w`).
    pub const WRITE: Access = Access(4);
    /// `rwm`.
    pub const ALL: Access = Access(7);

    /// The bits as the kernel's `BPF_DEVCG_ACC_*` flags (mknod 1, read 2, write 4).
    pub fn bits(self) -> u8 {
        self.0
    }
}

/// One allow rule: `type major:minor access`, `None` meaning any number (`*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    /// Character or block.
    pub kind: DeviceKind,
    /// Major number, or any.
    pub major: Option<u32>,
    /// Minor number, or any.
    pub minor: Option<u32>,
    /// What the rule allows.
    pub access: Access,
}

const fn char_rwm(major: u32, minor: Option<u32>) -> DeviceRule {
    DeviceRule {
        kind: DeviceKind::Char,
        major: Some(major),
        minor,
        access: Access::ALL,
    }
}

/// Docker's default allowed devices (everything else is denied).
pub const DEFAULT_RULES: [DeviceRule; 12] = [
    DeviceRule {
        kind: DeviceKind::Char,
        major: None,
        minor: None,
        access: Access::MKNOD,
    },
    DeviceRule {
        kind: DeviceKind::Block,
        major: None,
        minor: None,
        access: Access::MKNOD,
    },
    char_rwm(1, Some(3)),    // null
    char_rwm(1, Some(5)),    // zero
    char_rwm(1, Some(7)),    // full
    char_rwm(1, Some(8)),    // random
    char_rwm(1, Some(9)),    // urandom
    char_rwm(5, Some(0)),    // tty
    char_rwm(5, Some(1)),    // console
    char_rwm(5, Some(2)),    // ptmx
    char_rwm(136, None),     // pty slaves (/dev/pts/*)
    char_rwm(10, Some(200)), // tun
];

impl fmt::Display for DeviceRule {
    /// The rule in `devices.allow` syntax, e.g. `c 1:3 rwm` or `b *:* m`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
        };
        let number = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        write!(f, "{kind} {}:{} ", number(self.major), number(self.minor))?;
        for (bit, letter) in [
            (Access::READ, 'r'),
            (Access::WRITE, 'w'),
            (Access::MKNOD, 'm'),
        ] {
            if self.access.0 & bit.0 != 0 {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_print_in_devices_allow_syntax() {
        let lines: Vec<String> = DEFAULT_RULES.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            lines,
            [
                "c *:* m",
                "b *:* m",
                "c 1:3 rwm",
                "c 1:5 rwm",
                "c 1:7 rwm",
                "c 1:8 rwm",
                "c 1:9 rwm",
                "c 5:0 rwm",
                "c 5:1 rwm",
                "c 5:2 rwm",
                "c 136:* rwm",
                "c 10:200 rwm"
            ]
        );
    }
}
