//! Where things live in guest physical memory.
//!
//! ```text
//! 0x0000_0500  GDT (4 entries)            0x0000_9000  PML4
//! 0x0000_0520  IDT (empty; Linux sets its own)   0x0000_a000  PDPT
//! 0x0000_7000  boot_params (zero page)    0x0000_b000  page directory (1 GiB of 2 MiB pages)
//! 0x0000_8ff0  initial stack top          0x0002_0000  kernel command line
//! 0x0009_fc00  MP table (EBDA), reserved up to 1 MiB
//! 0x0010_0000  first usable RAM above the legacy hole (kernels load at or above this)
//! 3 GiB .. 4 GiB  MMIO gap (IOAPIC at 0xfec0_0000, LAPIC at 0xfee0_0000); RAM beyond 3 GiB
//!                 continues at 4 GiB
//! 0xd000_0000  virtio-mmio devices, 4 KiB each, in the gap (so above any RAM below 4 GiB,
//!              and absent from the e820 map, which lists RAM and the legacy hole only)
//! ```
//!
//! Interrupts (GSIs, the in-kernel IOAPIC's pins, all 24 in the MP table): 0 PIT, 1 i8042
//! (never raised), 3 (COM2's, unused), 4 COM1, 5..=23 the virtio devices, one each.

/// Guest address of the GDT.
pub const GDT_ADDR: u64 = 0x500;
/// Guest address of the (empty) IDT loaded at entry.
pub const IDT_ADDR: u64 = 0x520;
/// Guest address of the Linux `boot_params` structure.
pub const ZERO_PAGE_ADDR: u64 = 0x7000;
/// Initial stack pointer of the boot vCPU.
pub const BOOT_STACK_POINTER: u64 = 0x8ff0;
/// Guest address of the top-level page table.
pub const PML4_ADDR: u64 = 0x9000;
/// Guest address of the page-directory-pointer table.
pub const PDPT_ADDR: u64 = 0xa000;
/// Guest address of the page directory.
pub const PD_ADDR: u64 = 0xb000;
/// Guest address of the kernel command line.
pub const CMDLINE_ADDR: u64 = 0x20000;
/// Largest command line accepted, including its NUL (Linux x86 `COMMAND_LINE_SIZE`).
pub const CMDLINE_MAX_SIZE: usize = 2048;
/// Start of the extended BIOS data area; the MP table goes here and the e820 map reserves
/// everything from here to 1 MiB.
pub const EBDA_START: u64 = 0x9fc00;
/// Start of RAM above the legacy (VGA/ROM) hole.
pub const HIMEM_START: u64 = 0x10_0000;
/// Start of the 32-bit MMIO gap: RAM below 4 GiB ends here.
pub const MMIO_GAP_START: u64 = 3 << 30;
/// End of the 32-bit MMIO gap: RAM beyond [`MMIO_GAP_START`] continues here.
pub const MMIO_GAP_END: u64 = 4 << 30;
/// Guest physical address of the IOAPIC registers.
pub const IOAPIC_ADDR: u32 = 0xfec0_0000;
/// Guest physical address of the local APIC registers.
pub const LAPIC_ADDR: u32 = 0xfee0_0000;
/// Guest address KVM uses for the task state segment on Intel hosts (three pages, in the gap).
pub const KVM_TSS_ADDR: usize = 0xfffb_d000;

/// Guest physical address of the first virtio-mmio device's registers.
pub const VIRTIO_MMIO_START: u64 = 0xd000_0000;
/// Distance between two virtio-mmio devices (each one's register window).
pub const VIRTIO_MMIO_SLOT_SIZE: u64 = 0x1000;
/// The first virtio device's GSI: the first IOAPIC pin above COM1's.
pub const VIRTIO_FIRST_GSI: u32 = 5;
/// The last virtio device's GSI: the IOAPIC's last pin.
pub const VIRTIO_LAST_GSI: u32 = 23;

// The virtio window is in the MMIO gap, and every virtio GSI is an IOAPIC pin of the MP table.
const _: () = assert!(VIRTIO_MMIO_START >= MMIO_GAP_START);
const _: () = assert!(VIRTIO_LAST_GSI < super::mptable::IOAPIC_PINS as u32);

/// The number of virtio-mmio slots (one GSI each).
pub fn virtio_slot_count() -> usize {
    (VIRTIO_LAST_GSI - VIRTIO_FIRST_GSI + 1) as usize
}

/// Base address and GSI of virtio-mmio slot `index`, if there is one.
pub fn virtio_slot(index: usize) -> Option<(u64, u32)> {
    (index < virtio_slot_count()).then(|| {
        (
            VIRTIO_MMIO_START + index as u64 * VIRTIO_MMIO_SLOT_SIZE,
            VIRTIO_FIRST_GSI + index as u32,
        )
    })
}

/// The guest physical RAM regions `(start, size)` for `memory_bytes` of RAM: one region below
/// the MMIO gap, and a second one from 4 GiB for whatever does not fit below it.
pub fn ram_regions(memory_bytes: u64) -> Vec<(u64, u64)> {
    if memory_bytes <= MMIO_GAP_START {
        vec![(0, memory_bytes)]
    } else {
        vec![
            (0, MMIO_GAP_START),
            (MMIO_GAP_END, memory_bytes - MMIO_GAP_START),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_ram_is_one_region_from_zero() {
        assert_eq!(ram_regions(256 << 20), vec![(0, 256 << 20)]);
        assert_eq!(ram_regions(3 << 30), vec![(0, 3 << 30)]);
    }

    #[test]
    fn virtio_slots_sit_in_the_gap_on_free_gsis() {
        assert_eq!(virtio_slot(0), Some((0xd000_0000, 5)));
        assert_eq!(virtio_slot(1), Some((0xd000_1000, 6)));
        assert_eq!(virtio_slot_count(), 19);
        let (last_base, last_gsi) = virtio_slot(virtio_slot_count() - 1).unwrap();
        assert_eq!(last_gsi, 23, "the IOAPIC's last pin");
        assert!(virtio_slot(virtio_slot_count()).is_none());
        assert!(last_base + VIRTIO_MMIO_SLOT_SIZE <= u64::from(IOAPIC_ADDR));
    }

    #[test]
    fn ram_above_three_gib_continues_at_four_gib() {
        assert_eq!(ram_regions(5 << 30), vec![(0, 3 << 30), (4 << 30, 2 << 30)]);
    }
}
