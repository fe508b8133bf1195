//! Facts about the machine a benchmark ran on, for the report's header.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// What kind of KVM the VM mode ran on; decides how far its numbers can be compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvmKind {
    /// KVM on the bare-metal CPU: numbers are comparable with published figures.
    Hardware,
    /// KVM inside another hypervisor: works, but exits cost more than on bare metal.
    Nested,
    /// KVM emulated in software (e.g. QEMU TCG): VM timings measure the emulator.
    Emulated,
    /// No usable KVM: the VM mode did not run.
    Unavailable,
}

/// The KVM the VM mode ran on: its kind and the caller's one-line verdict, e.g.
/// "nested KVM that cannot run Linux (probe failed)" or "QEMU TCG inside scripts/kvm-sandbox".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvmFacts {
    /// The kind.
    pub kind: KvmKind,
    /// The verdict, as the caller's KVM probe phrased it.
    pub detail: String,
}

/// How the host's cgroup hierarchy is mounted at /sys/fs/cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupLayout {
    /// Only cgroup v2 (the unified hierarchy) at /sys/fs/cgroup.
    V2,
    /// v1 controllers at /sys/fs/cgroup/NAME plus the v2 hierarchy at /sys/fs/cgroup/unified.
    Hybrid,
    /// Only v1 controllers.
    V1,
    /// Nothing recognisable is mounted.
    Unknown,
}

impl CgroupLayout {
    /// Reads the layout under `root` (normally /sys/fs/cgroup).
    pub fn detect(root: &Path) -> CgroupLayout {
        let v1_memory = root.join("memory").join("memory.limit_in_bytes").exists();
        if root.join("cgroup.controllers").exists() {
            CgroupLayout::V2
        } else if root.join("unified").join("cgroup.controllers").exists() {
            CgroupLayout::Hybrid
        } else if v1_memory || root.join("cpu").exists() {
            CgroupLayout::V1
        } else {
            CgroupLayout::Unknown
        }
    }

    /// A short description for reports.
    pub fn describe(self) -> &'static str {
        match self {
            CgroupLayout::V2 => "v2 (unified)",
            CgroupLayout::Hybrid => "hybrid (v1 controllers, v2 at /sys/fs/cgroup/unified)",
            CgroupLayout::V1 => "v1",
            CgroupLayout::Unknown => "not mounted",
        }
    }
}

/// The machine and software a report's numbers come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostFacts {
    /// `uname -srm`: kernel name, release and machine.
    pub kernel: String,
    /// The CPU's model name from /proc/cpuinfo.
    pub cpu_model: String,
    /// Online CPUs.
    pub cpu_count: usize,
    /// Physical memory (MemTotal), in bytes.
    pub memory_bytes: u64,
    /// The KVM the VM mode used.
    pub kvm: KvmFacts,
    /// The cgroup layout the container mode used.
    pub cgroup: CgroupLayout,
    /// The version of vmc that ran the benchmark.
    pub vmc_version: String,
}

impl HostFacts {
    /// Collects the facts of this machine; `kvm` and `vmc_version` come from the caller.
    pub fn collect(kvm: KvmFacts, vmc_version: &str) -> HostFacts {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        HostFacts {
            kernel: kernel_description(),
            cpu_model: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown CPU".into()),
            cpu_count: online_cpus(),
            memory_bytes: mem_total_bytes(&meminfo).unwrap_or(0),
            kvm,
            cgroup: CgroupLayout::detect(Path::new("/sys/fs/cgroup")),
            vmc_version: vmc_version.to_string(),
        }
    }
}

/// The hypervisor this machine runs under, by its CPUID signature ("KVMKVMKVM",
/// "TCGTCGTCGTCG" for QEMU's software emulation, "Microsoft Hv", ...); `None` on bare metal
/// (the CPUID "hypervisor" bit is clear) or on other architectures.
pub fn hypervisor_signature() -> Option<String> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::__cpuid;
        const HYPERVISOR_BIT: u32 = 1 << 31;
        if __cpuid(1).ecx & HYPERVISOR_BIT == 0 {
            return None;
        }
        // The hypervisor leaf exists whenever the hypervisor bit is set.
        let leaf = __cpuid(0x4000_0000);
        let bytes: Vec<u8> = [leaf.ebx, leaf.ecx, leaf.edx]
            .iter()
            .flat_map(|r| r.to_le_bytes())
            .collect();
        let text = String::from_utf8_lossy(&bytes);
        Some(text.trim_end_matches('\0').trim().to_string())
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// `uname -srm`, e.g. "Linux 6.1.0-26-amd64 x86_64".
fn kernel_description() -> String {
    // SAFETY: utsname is plain old data; an all-zero value is valid and uname fills it.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable utsname.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return "unknown kernel".into();
    }
    let field = |chars: &[libc::c_char]| -> String {
        let bytes: Vec<u8> = chars
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    format!(
        "{} {} {}",
        field(&uts.sysname),
        field(&uts.release),
        field(&uts.machine)
    )
}

/// The first "model name" line of /proc/cpuinfo.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// MemTotal of /proc/meminfo, in bytes.
fn mem_total_bytes(meminfo: &str) -> Option<u64> {
    vmc_runtime::memory::proc_kib_field(meminfo, "MemTotal")
}

/// The number of online CPUs.
fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpuinfo_and_meminfo() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC  7B13 64-Core Processor\n";
        assert_eq!(
            cpu_model(cpuinfo).as_deref(),
            Some("AMD EPYC 7B13 64-Core Processor")
        );
        assert_eq!(cpu_model("processor : 0\n"), None);
        let meminfo = "MemTotal:       24589076 kB\nMemFree:        1000 kB\n";
        assert_eq!(mem_total_bytes(meminfo), Some(24589076 * 1024));
    }

    #[test]
    fn detects_cgroup_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(CgroupLayout::detect(root), CgroupLayout::Unknown);
        std::fs::create_dir_all(root.join("memory")).unwrap();
        std::fs::write(
            root.join("memory/memory.limit_in_bytes"),
            "9223372036854771712",
        )
        .unwrap();
        assert_eq!(CgroupLayout::detect(root), CgroupLayout::V1);
        std::fs::create_dir_all(root.join("unified")).unwrap();
        std::fs::write(root.join("unified/cgroup.controllers"), "").unwrap();
        assert_eq!(CgroupLayout::detect(root), CgroupLayout::Hybrid);
        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(v2.path().join("cgroup.controllers"), "cpu memory pids").unwrap();
        assert_eq!(CgroupLayout::detect(v2.path()), CgroupLayout::V2);
    }

    #[test]
    fn hypervisor_signature_matches_the_cpuinfo_flag() {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
        let flagged = cpuinfo
            .lines()
            .find(|l| l.starts_with("flags"))
            .is_some_and(|l| l.split_whitespace().any(|f| f == "hypervisor"));
        let signature = hypervisor_signature();
        assert_eq!(signature.is_some(), flagged, "{signature:?}");
        if let Some(signature) = signature {
            assert!(signature.chars().all(|c| !c.is_control()), "{signature:?}");
        }
    }

    #[test]
    fn collects_this_host() {
        let kvm = KvmFacts {
            kind: KvmKind::Nested,
            detail: "nested KVM that cannot run Linux (probe failed)".into(),
        };
        let facts = HostFacts::collect(kvm.clone(), "0.1.0");
        assert!(facts.kernel.starts_with("Linux "), "{}", facts.kernel);
        assert!(facts.cpu_count >= 1);
        assert!(facts.memory_bytes > 64 << 20);
        assert_eq!(facts.kvm, kvm);
        assert_eq!(facts.vmc_version, "0.1.0");
    }
}
