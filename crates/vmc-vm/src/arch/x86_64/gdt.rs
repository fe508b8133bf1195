//! The 64-bit global descriptor table the boot vCPU starts with.
//!
//! Linux's 64-bit entry point only needs flat code and data segments; it loads its own GDT
//! early. Entry layout (Intel SDM vol. 3, 3.4.5): limit 15:0, base 23:0, access byte, flags +
//! limit 19:16, base 31:24.

use kvm_bindings::kvm_segment;

/// Selector index of the 64-bit code segment.
pub const CODE_INDEX: u16 = 1;
/// Selector index of the data segment.
pub const DATA_INDEX: u16 = 2;
/// Selector index of the task state segment.
pub const TSS_INDEX: u16 = 3;

/// Access byte of a present, ring-0, execute/read, accessed code segment.
const CODE_ACCESS: u8 = 0x9b;
/// Access byte of a present, ring-0, read/write, accessed data segment.
const DATA_ACCESS: u8 = 0x93;
/// Access byte of a present, busy 32/64-bit TSS.
const TSS_ACCESS: u8 = 0x8b;
/// Flags nibble: 4 KiB granularity + long mode (L) for code.
const CODE_FLAGS: u8 = 0xa;
/// Flags nibble: 4 KiB granularity + 32-bit default size (D/B) for data.
const DATA_FLAGS: u8 = 0xc;
/// Flags nibble: byte granularity for the TSS.
const TSS_FLAGS: u8 = 0x8;

/// Encodes one 8-byte segment descriptor.
pub fn descriptor(flags: u8, access: u8, base: u32, limit: u32) -> u64 {
    let base = u64::from(base);
    let limit = u64::from(limit);
    (base & 0xff00_0000) << 32
        | u64::from(flags & 0xf) << 52
        | (limit & 0x000f_0000) << 32
        | u64::from(access) << 40
        | (base & 0x00ff_ffff) << 16
        | (limit & 0x0000_ffff)
}

/// The boot GDT: null, 64-bit code, data, TSS.
pub fn boot_gdt() -> [u64; 4] {
    [
        0,
        descriptor(CODE_FLAGS, CODE_ACCESS, 0, 0xfffff),
        descriptor(DATA_FLAGS, DATA_ACCESS, 0, 0xfffff),
        descriptor(TSS_FLAGS, TSS_ACCESS, 0, 0xfffff),
    ]
}

/// The hidden segment-register state KVM needs for GDT entry `index` (`KVM_SET_SREGS` takes
/// segments decoded, not as selectors).
pub fn segment(gdt: &[u64], index: u16) -> kvm_segment {
    let entry = gdt[usize::from(index)];
    let base = ((entry >> 16) & 0x00ff_ffff) | ((entry >> 32) & 0xff00_0000);
    let raw_limit = (entry & 0xffff) | ((entry >> 32) & 0x000f_0000);
    let granularity = ((entry >> 55) & 1) as u8;
    let limit = if granularity == 1 {
        (raw_limit << 12) | 0xfff
    } else {
        raw_limit
    };
    kvm_segment {
        base,
        limit: limit as u32,
        selector: index * 8,
        type_: ((entry >> 40) & 0xf) as u8,
        present: ((entry >> 47) & 1) as u8,
        dpl: ((entry >> 45) & 3) as u8,
        db: ((entry >> 54) & 1) as u8,
        s: ((entry >> 44) & 1) as u8,
        l: ((entry >> 53) & 1) as u8,
        g: granularity,
        avl: ((entry >> 52) & 1) as u8,
        unusable: 0,
        padding: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_match_the_well_known_flat_descriptors() {
        let gdt = boot_gdt();
        assert_eq!(gdt[0], 0);
        assert_eq!(gdt[1], 0x00af_9b00_0000_ffff);
        assert_eq!(gdt[2], 0x00cf_9300_0000_ffff);
        assert_eq!(gdt[3], 0x008f_8b00_0000_ffff);
    }

    #[test]
    fn code_segment_decodes_as_long_mode() {
        let code = segment(&boot_gdt(), CODE_INDEX);
        assert_eq!(code.selector, 0x8);
        assert_eq!(code.l, 1);
        assert_eq!(code.db, 0);
        assert_eq!(code.type_, 0xb);
        assert_eq!(code.present, 1);
        assert_eq!(code.s, 1);
        assert_eq!(code.limit, 0xffff_ffff);
        assert_eq!(code.base, 0);
    }

    #[test]
    fn data_and_tss_segments_decode() {
        let gdt = boot_gdt();
        let data = segment(&gdt, DATA_INDEX);
        assert_eq!(
            (data.selector, data.type_, data.db, data.l),
            (0x10, 3, 1, 0)
        );
        let tss = segment(&gdt, TSS_INDEX);
        assert_eq!((tss.selector, tss.type_, tss.s, tss.g), (0x18, 0xb, 0, 1));
    }
}
