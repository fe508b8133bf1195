//! The Intel MultiProcessor Specification 1.4 table, so a guest without ACPI finds its vCPUs,
//! the IOAPIC and the legacy interrupt wiring (Linux: "APIC: ACPI MADT or MP tables are not
//! detected" and one CPU without it).
//!
//! Layout at [`EBDA_START`](super::layout::EBDA_START): the 16-byte floating pointer
//! ("_MP_"), then the configuration table ("PCMP" header + entries). Every structure's
//! bytes sum to 0 (mod 256).

use super::layout::{IOAPIC_ADDR, LAPIC_ADDR};

/// Number of IOAPIC input pins KVM's in-kernel IOAPIC has.
pub const IOAPIC_PINS: u8 = 24;
/// Local APIC version reported for every vCPU (an integrated xAPIC).
const LAPIC_VERSION: u8 = 0x14;
/// IOAPIC version of KVM's in-kernel IOAPIC.
const IOAPIC_VERSION: u8 = 0x11;
/// Size of the floating pointer structure.
const FLOATING_POINTER_SIZE: usize = 16;
/// Size of the configuration table header.
const HEADER_SIZE: usize = 44;
/// Size of a processor entry.
const PROCESSOR_ENTRY_SIZE: usize = 20;
/// Size of every other entry.
const SMALL_ENTRY_SIZE: usize = 8;

/// Entry type codes.
const ENTRY_PROCESSOR: u8 = 0;
const ENTRY_BUS: u8 = 1;
const ENTRY_IOAPIC: u8 = 2;
const ENTRY_IO_INTERRUPT: u8 = 3;
const ENTRY_LOCAL_INTERRUPT: u8 = 4;
/// Interrupt types.
const INTERRUPT_INT: u8 = 0;
const INTERRUPT_NMI: u8 = 1;
const INTERRUPT_EXTINT: u8 = 3;

/// Size in bytes of the whole structure for `vcpus` vCPUs.
pub fn size(vcpus: u8) -> usize {
    FLOATING_POINTER_SIZE
        + HEADER_SIZE
        + PROCESSOR_ENTRY_SIZE * usize::from(vcpus)
        + SMALL_ENTRY_SIZE * (2 + usize::from(IOAPIC_PINS) + 2)
}

/// The IOAPIC's APIC ID: the first ID after the vCPUs' (0..vcpus).
pub fn ioapic_id(vcpus: u8) -> u8 {
    vcpus
}

/// Builds the floating pointer and configuration table for `vcpus` vCPUs, to be written at
/// guest physical address `base`.
pub fn build(base: u32, vcpus: u8) -> Vec<u8> {
    let mut entries = Vec::new();
    for cpu in 0..vcpus {
        let enabled = 1u8;
        let boot_processor = if cpu == 0 { 2u8 } else { 0 };
        entries.extend_from_slice(&[
            ENTRY_PROCESSOR,
            cpu,
            LAPIC_VERSION,
            enabled | boot_processor,
        ]);
        // CPU signature: family 6, model 1, stepping 0; features: FPU and APIC.
        entries.extend_from_slice(&0x0000_0610u32.to_le_bytes());
        entries.extend_from_slice(&0x0000_0201u32.to_le_bytes());
        entries.extend_from_slice(&[0; 8]);
    }
    entries.extend_from_slice(&[ENTRY_BUS, 0]);
    entries.extend_from_slice(b"ISA   ");
    entries.extend_from_slice(&[ENTRY_IOAPIC, ioapic_id(vcpus), IOAPIC_VERSION, 1]);
    entries.extend_from_slice(&IOAPIC_ADDR.to_le_bytes());
    for pin in 0..IOAPIC_PINS {
        // ISA IRQ n → IOAPIC pin n, polarity and trigger as the bus defines (flags 0).
        entries.extend_from_slice(&[ENTRY_IO_INTERRUPT, INTERRUPT_INT, 0, 0, 0, pin]);
        entries.extend_from_slice(&[ioapic_id(vcpus), pin]);
    }
    // LINT0 of every local APIC (0xff) is the 8259's ExtINT, LINT1 is NMI.
    entries.extend_from_slice(&[ENTRY_LOCAL_INTERRUPT, INTERRUPT_EXTINT, 0, 0, 0, 0, 0xff, 0]);
    entries.extend_from_slice(&[ENTRY_LOCAL_INTERRUPT, INTERRUPT_NMI, 0, 0, 0, 0, 0xff, 1]);
    let entry_count = u16::from(vcpus) + 2 + u16::from(IOAPIC_PINS) + 2;

    let table_length = (HEADER_SIZE + entries.len()) as u16;
    let mut table = Vec::with_capacity(usize::from(table_length));
    table.extend_from_slice(b"PCMP");
    table.extend_from_slice(&table_length.to_le_bytes());
    table.push(4); // specification revision 1.4
    table.push(0); // checksum, filled below
    table.extend_from_slice(b"VMC     "); // OEM id
    table.extend_from_slice(b"VMC MICROVM "); // product id
    table.extend_from_slice(&0u32.to_le_bytes()); // OEM table pointer
    table.extend_from_slice(&0u16.to_le_bytes()); // OEM table size
    table.extend_from_slice(&entry_count.to_le_bytes());
    table.extend_from_slice(&LAPIC_ADDR.to_le_bytes());
    table.extend_from_slice(&[0; 4]); // extended table length, checksum, reserved
    table.extend_from_slice(&entries);
    table[7] = checksum(&table);

    let mut floating = Vec::with_capacity(size(vcpus));
    floating.extend_from_slice(b"_MP_");
    floating.extend_from_slice(&(base + FLOATING_POINTER_SIZE as u32).to_le_bytes());
    floating.push(1); // length in 16-byte units
    floating.push(4); // specification revision 1.4
    floating.push(0); // checksum, filled below
    floating.extend_from_slice(&[0; 5]); // feature bytes: a configuration table is present
    floating[10] = checksum(&floating);

    floating.extend_from_slice(&table);
    floating
}

/// The byte that makes `bytes` (which contains it as 0) sum to 0 mod 256.
fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |sum, b| sum.wrapping_add(*b))
        .wrapping_neg()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b))
    }

    #[test]
    fn checksums_are_valid() {
        for vcpus in [1u8, 2, 7, 254] {
            let mp = build(0x9fc00, vcpus);
            assert_eq!(mp.len(), size(vcpus));
            assert_eq!(sum(&mp[..16]), 0, "floating pointer, {vcpus} vCPUs");
            assert_eq!(sum(&mp[16..]), 0, "configuration table, {vcpus} vCPUs");
        }
    }

    #[test]
    fn floating_pointer_points_at_the_table() {
        let mp = build(0x9fc00, 2);
        assert_eq!(&mp[..4], b"_MP_");
        assert_eq!(u32::from_le_bytes(mp[4..8].try_into().unwrap()), 0x9fc10);
        assert_eq!(&mp[16..20], b"PCMP");
        let length = u16::from_le_bytes(mp[20..22].try_into().unwrap());
        assert_eq!(usize::from(length), mp.len() - 16);
    }

    #[test]
    fn lists_every_vcpu_with_the_first_as_boot_processor() {
        let mp = build(0x9fc00, 3);
        let entry_count = u16::from_le_bytes(mp[16 + 34..16 + 36].try_into().unwrap());
        assert_eq!(entry_count, 3 + 2 + 24 + 2);
        let cpus = &mp[16 + HEADER_SIZE..];
        for cpu in 0..3usize {
            let entry = &cpus[cpu * PROCESSOR_ENTRY_SIZE..];
            assert_eq!(entry[0], ENTRY_PROCESSOR);
            assert_eq!(usize::from(entry[1]), cpu);
            assert_eq!(entry[3], if cpu == 0 { 3 } else { 1 });
        }
        let ioapic = &cpus[3 * PROCESSOR_ENTRY_SIZE + SMALL_ENTRY_SIZE..];
        assert_eq!(ioapic[0], ENTRY_IOAPIC);
        assert_eq!(ioapic[1], 3, "IOAPIC ID follows the vCPUs");
        assert_eq!(
            u32::from_le_bytes(ioapic[4..8].try_into().unwrap()),
            IOAPIC_ADDR
        );
    }
}
