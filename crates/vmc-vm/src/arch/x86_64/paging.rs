//! Identity page tables for the first 1 GiB, built from 2 MiB pages.
//!
//! Long mode requires paging. Linux's 64-bit entry point only needs its own image, the zero
//! page and the command line mapped (it builds its real page tables right away), so one page
//! directory of 512 × 2 MiB pages covering guest physical 0..1 GiB is enough.

use super::layout::{PDPT_ADDR, PD_ADDR, PML4_ADDR};

/// Present + writable.
const PRESENT_RW: u64 = 0x3;
/// Page-size bit: this page-directory entry maps a 2 MiB page.
const PAGE_SIZE_2M: u64 = 0x80;
/// Number of entries in one page table.
const ENTRIES: usize = 512;

/// The three tables to write into guest memory: `(guest address, 512 entries)` each.
pub fn identity_tables() -> [(u64, [u64; ENTRIES]); 3] {
    let mut pml4 = [0u64; ENTRIES];
    pml4[0] = PDPT_ADDR | PRESENT_RW;
    let mut pdpt = [0u64; ENTRIES];
    pdpt[0] = PD_ADDR | PRESENT_RW;
    let mut pd = [0u64; ENTRIES];
    for (index, entry) in pd.iter_mut().enumerate() {
        *entry = ((index as u64) << 21) | PRESENT_RW | PAGE_SIZE_2M;
    }
    [(PML4_ADDR, pml4), (PDPT_ADDR, pdpt), (PD_ADDR, pd)]
}

/// The largest guest physical address (exclusive) the identity tables map.
pub const IDENTITY_MAPPED_END: u64 = 1 << 30;

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks the tables like the MMU does for a 2 MiB page and returns the physical address.
    fn translate(tables: &[(u64, [u64; ENTRIES]); 3], virt: u64) -> Option<u64> {
        let table_at = |addr: u64| tables.iter().find(|(a, _)| *a == addr).map(|(_, t)| t);
        let pml4e = table_at(PML4_ADDR)?[((virt >> 39) & 0x1ff) as usize];
        let pdpte = table_at(pml4e & !0xfff)?[((virt >> 30) & 0x1ff) as usize];
        let pde = table_at(pdpte & !0xfff)?[((virt >> 21) & 0x1ff) as usize];
        (pde & PRESENT_RW == PRESENT_RW && pde & PAGE_SIZE_2M != 0)
            .then_some((pde & !0x1f_ffff & !0xfff) | (virt & 0x1f_ffff))
    }

    #[test]
    fn first_gib_is_identity_mapped() {
        let tables = identity_tables();
        for addr in [
            0u64,
            0x7000,
            0x100_0000,
            0x1234_5678,
            IDENTITY_MAPPED_END - 1,
        ] {
            assert_eq!(translate(&tables, addr), Some(addr), "{addr:#x}");
        }
    }

    #[test]
    fn beyond_one_gib_is_not_mapped() {
        let tables = identity_tables();
        assert_eq!(translate(&tables, IDENTITY_MAPPED_END), None);
    }
}
