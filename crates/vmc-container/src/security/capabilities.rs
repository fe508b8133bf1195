//! Capability names and numbers, Docker's default set and its `--cap-add`/`--cap-drop` rules.

use crate::error::ContainerError;

/// The capabilities by number (capabilities(7)), without the `CAP_` prefix.
const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Docker's (moby's) default capability list.
const DOCKER_DEFAULT: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// `CAP_SYS_ADMIN`, which the seccomp profile's capability-gated rules look at most.
pub const SYS_ADMIN: u32 = 21;

/// A set of capabilities as the kernel's bit mask (bit N = capability N).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapSet(pub u64);

impl CapSet {
    /// Docker's default set: `0x00000000a80425fb`.
    pub fn docker_default() -> CapSet {
        DOCKER_DEFAULT.iter().fold(CapSet(0), |set, name| {
            set.with(number_of(name).expect("the default names are in the table"))
        })
    }

    /// Every capability numbered 0..=`last` (the kernel's `cap_last_cap`).
    pub fn all_up_to(last: u32) -> CapSet {
        CapSet(if last >= 63 {
            u64::MAX
        } else {
            (1u64 << (last + 1)) - 1
        })
    }

    /// This set plus capability `number`.
    pub fn with(self, number: u32) -> CapSet {
        CapSet(self.0 | (1u64 << number))
    }

    /// This set without capability `number`.
    pub fn without(self, number: u32) -> CapSet {
        CapSet(self.0 & !(1u64 << number))
    }

    /// Whether capability `number` is in the set.
    pub fn contains(self, number: u32) -> bool {
        number < 64 && self.0 & (1u64 << number) != 0
    }

    /// The capabilities in both sets.
    pub fn intersect(self, other: CapSet) -> CapSet {
        CapSet(self.0 & other.0)
    }

    /// How many capabilities the set holds.
    pub fn len(self) -> u32 {
        self.0.count_ones()
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names of the set's capabilities (`CAP_NUMBER_41` for ones newer than the table).
    pub fn names(self) -> Vec<String> {
        (0..64)
            .filter(|&n| self.contains(n))
            .map(|n| match NAMES.get(n as usize) {
                Some(name) => name.to_string(),
                None => format!("CAP_NUMBER_{n}"),
            })
            .collect()
    }
}

/// A name as `--cap-add`/`--cap-drop` take it: a capability or every capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapName {
    /// `ALL`.
    All,
    /// One capability, by number.
    One(u32),
}

/// The number of a capability named `NET_ADMIN` or `CAP_NET_ADMIN`, in any case.
pub fn number_of(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    NAMES.iter().position(|n| *n == bare).map(|n| n as u32)
}

/// Parses one `--cap-add`/`--cap-drop` value; `flag` names the option in the error.
pub fn parse_name(name: &str, flag: &'static str) -> Result<CapName, ContainerError> {
    if name.eq_ignore_ascii_case("ALL") {
        return Ok(CapName::All);
    }
    number_of(name)
        .map(CapName::One)
        .ok_or_else(|| ContainerError::UnknownCapability {
            flag,
            name: name.to_string(),
        })
}

/// The workload's capability set from Docker's rules: `--privileged` gives every capability
/// the kernel knows (`all`); `--cap-add ALL` gives all but the dropped ones; `--cap-drop ALL`
/// gives only the added ones; otherwise the default set minus the dropped plus the added.
/// Every name is checked, even where a rule makes it irrelevant.
pub fn resolve(
    add: &[String],
    drop: &[String],
    privileged: bool,
    all: CapSet,
) -> Result<CapSet, ContainerError> {
    let add = add
        .iter()
        .map(|n| parse_name(n, "--cap-add"))
        .collect::<Result<Vec<_>, _>>()?;
    let drop = drop
        .iter()
        .map(|n| parse_name(n, "--cap-drop"))
        .collect::<Result<Vec<_>, _>>()?;
    if privileged {
        return Ok(all);
    }
    let apply = |base: CapSet, names: &[CapName], add: bool| {
        names.iter().fold(base, |set, name| match name {
            CapName::All => set,
            CapName::One(n) if add => set.with(*n),
            CapName::One(n) => set.without(*n),
        })
    };
    Ok(if add.contains(&CapName::All) {
        apply(all, &drop, false)
    } else if drop.contains(&CapName::All) {
        apply(CapSet(0), &add, true)
    } else {
        apply(apply(CapSet::docker_default(), &drop, false), &add, true)
    })
}

/// The highest capability number this kernel knows (`/proc/sys/kernel/cap_last_cap`).
pub fn kernel_last_cap() -> Result<u32, ContainerError> {
    let path = "/proc/sys/kernel/cap_last_cap";
    let text = std::fs::read_to_string(path).map_err(|source| ContainerError::RunDir {
        action: "read",
        path: path.into(),
        source,
    })?;
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| *n < 64)
        .ok_or_else(|| {
            ContainerError::Unsupported(format!("{path} holds {text:?}, not a capability number"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn resolve_default(add: &[&str], drop: &[&str]) -> CapSet {
        resolve(&names(add), &names(drop), false, CapSet::all_up_to(40)).unwrap()
    }

    #[test]
    fn docker_default_is_the_known_mask() {
        assert_eq!(CapSet::docker_default(), CapSet(0xa80425fb));
        assert_eq!(CapSet::docker_default().len(), 14);
    }

    #[test]
    fn names_parse_with_or_without_prefix_in_any_case() {
        assert_eq!(number_of("NET_ADMIN"), Some(12));
        assert_eq!(number_of("cap_net_admin"), Some(12));
        assert_eq!(number_of("Cap_Sys_Admin"), Some(21));
        assert_eq!(number_of("CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number_of("NET_ADMIN2"), None);
        assert_eq!(parse_name("all", "--cap-add").unwrap(), CapName::All);
        let err = parse_name("NET_ADMN", "--cap-add").unwrap_err().to_string();
        assert!(
            err.contains("\"NET_ADMN\"") && err.contains("--cap-add"),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }

    #[test]
    fn add_and_drop_follow_dockers_rules() {
        assert_eq!(resolve_default(&[], &[]), CapSet::docker_default());
        let plus = resolve_default(&["NET_ADMIN"], &["CHOWN"]);
        assert!(plus.contains(12) && !plus.contains(0));
        assert_eq!(plus.len(), 14);
        // Drop ALL, then add X: only X.
        assert_eq!(resolve_default(&["SYS_ADMIN"], &["ALL"]), CapSet(1 << 21));
        assert_eq!(resolve_default(&[], &["all"]), CapSet(0));
        // Add ALL: every capability but the dropped ones, even with drop ALL.
        assert_eq!(resolve_default(&["ALL"], &[]), CapSet::all_up_to(40));
        assert_eq!(
            resolve_default(&["ALL"], &["MKNOD"]),
            CapSet::all_up_to(40).without(27)
        );
        assert_eq!(resolve_default(&["ALL"], &["ALL"]), CapSet::all_up_to(40));
        // Privileged: everything the kernel knows; names still checked.
        let all = CapSet::all_up_to(38);
        assert_eq!(resolve(&[], &names(&["CHOWN"]), true, all).unwrap(), all);
        assert!(resolve(&names(&["BOGUS"]), &[], true, all).is_err());
        let err = resolve(&[], &names(&["BOGUS"]), false, all).unwrap_err();
        assert!(err.to_string().contains("--cap-drop"), "{err}");
    }

    #[test]
    fn set_arithmetic() {
        assert_eq!(CapSet::all_up_to(40), CapSet(0x1ff_ffff_ffff));
        assert_eq!(CapSet::all_up_to(63), CapSet(u64::MAX));
        assert_eq!(CapSet(0b101).names(), vec!["CHOWN", "DAC_READ_SEARCH"]);
        assert_eq!(CapSet(1 << 45).names(), vec!["CAP_NUMBER_45"]);
        assert!(CapSet(0).is_empty());
        assert_eq!(CapSet(0b110).intersect(CapSet(0b011)), CapSet(0b010));
    }
}
