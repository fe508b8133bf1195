//! The CPUID a vCPU sees: KVM_GET_SUPPORTED_CPUID, adjusted for this VM.
//!
//! - leaf 0x1: hypervisor bit set, initial APIC ID = vCPU index, logical CPU count;
//! - leaf 0xb: x2APIC topology (one thread per core, `vcpus` cores per package);
//! - leaf 0xa: no performance-monitoring counters (nothing to virtualize them with);
//! - leaves 0x4000_0000..: the KVM signature ("KVMKVMKVM") and features KVM reports, plus
//!   leaf 0x4000_0010 with the TSC and local-APIC bus frequencies in kHz (the "timing
//!   information" leaf hypervisors publish so a guest can skip calibrating its clocks).

use kvm_bindings::{kvm_cpuid_entry2, CpuId, KVM_CPUID_FLAG_SIGNIFCANT_INDEX};

/// Leaf 0x1 ECX: running under a hypervisor.
const HYPERVISOR_BIT: u32 = 1 << 31;
/// Leaf 0x1 EDX: hyper-threading / multi-core package (the logical-count field is valid).
const HTT_BIT: u32 = 1 << 28;
/// The hypervisor signature leaf.
pub const LEAF_HYPERVISOR: u32 = 0x4000_0000;
/// The hypervisor timing-information leaf (TSC kHz in EAX, bus kHz in EBX).
pub const LEAF_TIMING: u32 = 0x4000_0010;
/// KVM's local APIC timer counts at 1 GHz (`APIC_BUS_CYCLE_NS` = 1), in kHz.
pub const KVM_APIC_BUS_KHZ: u32 = 1_000_000;

/// Adjusts `cpuid` (as KVM supports it) for vCPU `index` of `count`. `tsc_khz` is the vCPU's
/// TSC frequency from KVM_GET_TSC_KHZ, if KVM reported one.
pub fn filter(cpuid: &mut CpuId, index: u8, count: u8, tsc_khz: Option<u32>) {
    for entry in cpuid.as_mut_slice() {
        match entry.function {
            0x1 => {
                entry.ecx |= HYPERVISOR_BIT;
                entry.ebx =
                    (u32::from(index) << 24) | (u32::from(count) << 16) | (entry.ebx & 0xffff);
                if count > 1 {
                    entry.edx |= HTT_BIT;
                }
            }
            0xa => {
                entry.eax = 0;
                entry.ebx = 0;
                entry.ecx = 0;
                entry.edx = 0;
            }
            0xb => set_topology_leaf(entry, index, count),
            LEAF_HYPERVISOR => {
                let signature = *b"KVMKVMKVM\0\0\0";
                entry.eax = LEAF_TIMING;
                entry.ebx =
                    u32::from_le_bytes([signature[0], signature[1], signature[2], signature[3]]);
                entry.ecx =
                    u32::from_le_bytes([signature[4], signature[5], signature[6], signature[7]]);
                entry.edx =
                    u32::from_le_bytes([signature[8], signature[9], signature[10], signature[11]]);
            }
            _ => {}
        }
    }
    if let Some(tsc_khz) = tsc_khz {
        let timing = kvm_cpuid_entry2 {
            function: LEAF_TIMING,
            eax: tsc_khz,
            ebx: KVM_APIC_BUS_KHZ,
            ..Default::default()
        };
        match cpuid
            .as_mut_slice()
            .iter_mut()
            .find(|e| e.function == LEAF_TIMING)
        {
            Some(entry) => *entry = timing,
            None => {
                // KVM's list has room: it is allocated with KVM_MAX_CPUID_ENTRIES slots.
                let _ = cpuid.push(timing);
            }
        }
    }
}

/// Fills one sub-leaf of the x2APIC topology leaf 0xb: level 0 = SMT (1 thread per core),
/// level 1 = core (`count` cores), higher levels invalid.
fn set_topology_leaf(entry: &mut kvm_cpuid_entry2, index: u8, count: u8) {
    const LEVEL_SMT: u32 = 1;
    const LEVEL_CORE: u32 = 2;
    let core_bits = u32::from(count).next_power_of_two().trailing_zeros();
    entry.flags |= KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
    entry.edx = u32::from(index);
    match entry.index {
        0 => {
            entry.eax = 0;
            entry.ebx = 1;
            entry.ecx = LEVEL_SMT << 8;
        }
        1 => {
            entry.eax = core_bits;
            entry.ebx = u32::from(count);
            entry.ecx = (LEVEL_CORE << 8) | 1;
        }
        level => {
            entry.eax = 0;
            entry.ebx = 0;
            entry.ecx = level;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(function: u32, index: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            index,
            ebx: 0x0000_0800,
            ..Default::default()
        }
    }

    fn sample() -> CpuId {
        CpuId::from_entries(&[
            entry(0x1, 0),
            kvm_cpuid_entry2 {
                eax: 0x0700_0001,
                ..entry(0xa, 0)
            },
            entry(0xb, 0),
            entry(0xb, 1),
            entry(LEAF_HYPERVISOR, 0),
        ])
        .unwrap()
    }

    fn find(cpuid: &CpuId, function: u32, index: u32) -> kvm_cpuid_entry2 {
        *cpuid
            .as_slice()
            .iter()
            .find(|e| e.function == function && e.index == index)
            .unwrap()
    }

    #[test]
    fn leaf_1_has_hypervisor_bit_apic_id_and_count() {
        let mut cpuid = sample();
        filter(&mut cpuid, 3, 4, None);
        let leaf1 = find(&cpuid, 1, 0);
        assert_ne!(leaf1.ecx & HYPERVISOR_BIT, 0);
        assert_eq!(leaf1.ebx >> 24, 3);
        assert_eq!((leaf1.ebx >> 16) & 0xff, 4);
        assert_eq!(leaf1.ebx & 0xffff, 0x0800, "CLFLUSH size kept");
        assert_ne!(leaf1.edx & HTT_BIT, 0);
    }

    #[test]
    fn topology_leaf_counts_cores() {
        let mut cpuid = sample();
        filter(&mut cpuid, 2, 3, None);
        let smt = find(&cpuid, 0xb, 0);
        let core = find(&cpuid, 0xb, 1);
        assert_eq!((smt.ebx, smt.ecx, smt.edx), (1, 0x100, 2));
        assert_eq!((core.eax, core.ebx, core.ecx, core.edx), (2, 3, 0x201, 2));
    }

    #[test]
    fn kvm_signature_and_timing_leaf() {
        let mut cpuid = sample();
        filter(&mut cpuid, 0, 1, Some(2_596_000));
        let sig = find(&cpuid, LEAF_HYPERVISOR, 0);
        let mut text = Vec::new();
        for reg in [sig.ebx, sig.ecx, sig.edx] {
            text.extend_from_slice(&reg.to_le_bytes());
        }
        assert_eq!(&text, b"KVMKVMKVM\0\0\0");
        assert_eq!(sig.eax, LEAF_TIMING);
        let timing = find(&cpuid, LEAF_TIMING, 0);
        assert_eq!((timing.eax, timing.ebx), (2_596_000, KVM_APIC_BUS_KHZ));
        assert_eq!(find(&cpuid, 0xa, 0).eax, 0, "no PMU");
    }

    #[test]
    fn no_timing_leaf_without_tsc_frequency() {
        let mut cpuid = sample();
        filter(&mut cpuid, 0, 1, None);
        assert!(cpuid.as_slice().iter().all(|e| e.function != LEAF_TIMING));
    }
}
