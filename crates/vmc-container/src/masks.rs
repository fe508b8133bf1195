//! Docker's masked and read-only paths (moby's `oci/defaults.go`).
//!
//! Masked paths leak host information or kernel internals (`/proc/kcore`, `/proc/keys`,
//! `/sys/firmware` …): a masked directory gets an empty read-only tmpfs over it, a masked file
//! the container's /dev/null. Read-only paths hold host-wide settings (`/proc/sys` sysctls,
//! `/proc/sysrq-trigger` …): they are bound on themselves and remounted read-only. Paths this
//! kernel does not have are skipped by the child. `--privileged` applies neither.

use std::path::Path;

/// Paths hidden from the container (moby's current list, which added `/proc/interrupts`
/// and `/sys/devices/virtual/powercap` for GHSA-6fw5-f8r9-fgfm and GHSA-jq35-85cj-fj4p).
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// Paths made read-only.
pub const READ_ONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Every path to mask on this host: [`MASKED_PATHS`] plus, as moby does, each possible CPU's
/// `thermal_throttle` directory when the host has them (`sysfs` is the host's /sys).
pub fn masked_paths(sysfs: &Path) -> Vec<String> {
    let mut paths: Vec<String> = MASKED_PATHS.iter().map(|p| p.to_string()).collect();
    let cpus = sysfs.join("devices/system/cpu");
    // The directory exists for every CPU or for none (an x86 thermal feature).
    if cpus.join("cpu0/thermal_throttle").is_dir() {
        let possible = std::fs::read_to_string(cpus.join("possible")).unwrap_or_default();
        paths.extend(
            cpu_list(&possible)
                .map(|cpu| format!("/sys/devices/system/cpu/cpu{cpu}/thermal_throttle")),
        );
    }
    paths
}

/// The CPUs of a kernel CPU list such as `0-3,8,10-11` (malformed parts are ignored).
fn cpu_list(text: &str) -> impl Iterator<Item = u32> + '_ {
    text.trim()
        .split(',')
        .filter_map(|part| {
            let (first, last) = part.split_once('-').unwrap_or((part, part));
            Some(first.trim().parse::<u32>().ok()?..=last.trim().parse::<u32>().ok()?)
        })
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_are_expanded() {
        assert_eq!(
            cpu_list("0-3,8,10-11\n").collect::<Vec<_>>(),
            [0, 1, 2, 3, 8, 10, 11]
        );
        assert_eq!(cpu_list("0").collect::<Vec<_>>(), [0]);
        assert_eq!(cpu_list("").count(), 0);
        assert_eq!(cpu_list("x,2").collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn thermal_throttle_dirs_are_masked_when_the_host_has_them() {
        let sys = tempfile::tempdir().unwrap();
        assert_eq!(masked_paths(sys.path()).len(), MASKED_PATHS.len());
        let cpus = sys.path().join("devices/system/cpu");
        std::fs::create_dir_all(cpus.join("cpu0/thermal_throttle")).unwrap();
        std::fs::write(cpus.join("possible"), "0-1\n").unwrap();
        let paths = masked_paths(sys.path());
        assert_eq!(
            &paths[MASKED_PATHS.len()..],
            [
                "/sys/devices/system/cpu/cpu0/thermal_throttle",
                "/sys/devices/system/cpu/cpu1/thermal_throttle"
            ]
        );
    }
}
