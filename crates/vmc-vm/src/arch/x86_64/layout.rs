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
//! ```

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
    fn ram_above_three_gib_continues_at_four_gib() {
        assert_eq!(ram_regions(5 << 30), vec![(0, 3 << 30), (4 << 30, 2 << 30)]);
    }
}
