//! The Linux `boot_params` ("zero page"): memory map, command line and initrd location.
//!
//! For a bzImage the setup header comes from the image (linux-loader reads it); an ELF
//! vmlinux has none, so the fields a boot loader must fill are set here (Linux
//! Documentation/x86/boot.rst, "the 64-bit boot protocol").

use super::layout::{EBDA_START, HIMEM_START, MMIO_GAP_END, MMIO_GAP_START};
use linux_loader::loader::bootparam::{boot_e820_entry, boot_params, setup_header};

/// e820 type of usable RAM.
pub const E820_RAM: u32 = 1;
/// e820 type of reserved memory.
pub const E820_RESERVED: u32 = 2;
/// Boot sector signature the kernel checks in the setup header.
const BOOT_FLAG_MAGIC: u16 = 0xaa55;
/// "HdrS": the setup header is present.
const HEADER_MAGIC: u32 = 0x5372_6448;
/// Boot loader type "undefined" (not a registered boot loader).
const LOADER_TYPE_UNDEFINED: u8 = 0xff;
/// Kernel alignment an ELF vmlinux is built for (CONFIG_PHYSICAL_ALIGN default).
const KERNEL_ALIGNMENT: u32 = 0x100_0000;

/// One e820 memory-map entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E820Entry {
    /// Guest physical start.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// [`E820_RAM`] or [`E820_RESERVED`].
    pub kind: u32,
}

/// The e820 map for `memory_bytes` of guest RAM (laid out as in
/// [`ram_regions`](super::layout::ram_regions)): conventional memory below the EBDA, the
/// EBDA + legacy VGA/ROM hole reserved up to 1 MiB, RAM up to the MMIO gap at 3 GiB and the
/// remainder from 4 GiB. The entries add up to exactly `memory_bytes`.
pub fn e820_map(memory_bytes: u64) -> Vec<E820Entry> {
    let low_end = memory_bytes.min(MMIO_GAP_START);
    let mut map = vec![
        E820Entry {
            addr: 0,
            size: EBDA_START,
            kind: E820_RAM,
        },
        E820Entry {
            addr: EBDA_START,
            size: HIMEM_START - EBDA_START,
            kind: E820_RESERVED,
        },
        E820Entry {
            addr: HIMEM_START,
            size: low_end - HIMEM_START,
            kind: E820_RAM,
        },
    ];
    if memory_bytes > MMIO_GAP_START {
        map.push(E820Entry {
            addr: MMIO_GAP_END,
            size: memory_bytes - MMIO_GAP_START,
            kind: E820_RAM,
        });
    }
    map
}

/// Where the kernel finds its command line and initrd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootInputs {
    /// Guest address of the NUL-terminated command line.
    pub cmdline_addr: u64,
    /// Command line length without the NUL.
    pub cmdline_len: usize,
    /// Guest address and size of the initrd, if there is one.
    pub initrd: Option<(u64, u64)>,
}

/// Builds the zero page for `memory_bytes` of RAM. `header` is the bzImage's setup header, or
/// `None` for an ELF vmlinux.
pub fn build(header: Option<setup_header>, memory_bytes: u64, inputs: BootInputs) -> boot_params {
    let mut params = boot_params::default();
    match header {
        Some(header) => params.hdr = header,
        None => {
            params.hdr.boot_flag = BOOT_FLAG_MAGIC;
            params.hdr.header = HEADER_MAGIC;
            params.hdr.kernel_alignment = KERNEL_ALIGNMENT;
        }
    }
    params.hdr.type_of_loader = LOADER_TYPE_UNDEFINED;
    params.hdr.cmd_line_ptr = inputs.cmdline_addr as u32;
    params.ext_cmd_line_ptr = (inputs.cmdline_addr >> 32) as u32;
    params.hdr.cmdline_size = inputs.cmdline_len as u32;
    if let Some((addr, size)) = inputs.initrd {
        params.hdr.ramdisk_image = addr as u32;
        params.ext_ramdisk_image = (addr >> 32) as u32;
        params.hdr.ramdisk_size = size as u32;
        params.ext_ramdisk_size = (size >> 32) as u32;
    }
    let map = e820_map(memory_bytes);
    for (slot, entry) in params.e820_table.iter_mut().zip(&map) {
        *slot = boot_e820_entry {
            addr: entry.addr,
            size: entry.size,
            r#type: entry.kind,
        };
    }
    params.e820_entries = map.len() as u8;
    params
}

/// The highest address (exclusive) an initrd may end at: below the kernel's
/// `initrd_addr_max` when the image has a setup header (bzImage), below 2 GiB otherwise
/// (protocol ≥ 2.03 default), and always within RAM below the MMIO gap.
pub fn initrd_limit(header: Option<&setup_header>, memory_bytes: u64) -> u64 {
    const DEFAULT_INITRD_ADDR_MAX: u64 = 0x7fff_ffff;
    let addr_max = header
        .map(|h| u64::from(h.initrd_addr_max))
        .filter(|max| *max != 0)
        .unwrap_or(DEFAULT_INITRD_ADDR_MAX);
    (addr_max + 1).min(memory_bytes.min(MMIO_GAP_START))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(map: &[E820Entry]) -> u64 {
        map.iter().map(|e| e.size).sum()
    }

    #[test]
    fn e820_covers_exactly_the_memory_with_the_legacy_hole_reserved() {
        let map = e820_map(256 << 20);
        assert_eq!(total(&map), 256 << 20);
        assert_eq!(
            map[0],
            E820Entry {
                addr: 0,
                size: 0x9fc00,
                kind: E820_RAM
            }
        );
        assert_eq!(map[1].kind, E820_RESERVED);
        assert_eq!(map[1].addr + map[1].size, HIMEM_START);
        assert_eq!(map[2].addr, HIMEM_START);
        assert_eq!(map[2].addr + map[2].size, 256 << 20);
        assert_eq!(map.len(), 3);
    }

    #[test]
    fn e820_skips_the_mmio_gap() {
        let map = e820_map(6 << 30);
        assert_eq!(total(&map), 6 << 30);
        assert_eq!(map[2].addr + map[2].size, MMIO_GAP_START);
        assert_eq!(
            map[3],
            E820Entry {
                addr: 4 << 30,
                size: 3 << 30,
                kind: E820_RAM
            }
        );
    }

    #[test]
    fn zero_page_fields_for_an_elf_kernel() {
        let inputs = BootInputs {
            cmdline_addr: 0x20000,
            cmdline_len: 15,
            initrd: Some((0x0f00_0000, 0x12345)),
        };
        let params = build(None, 256 << 20, inputs);
        let hdr = params.hdr;
        assert_eq!({ hdr.boot_flag }, BOOT_FLAG_MAGIC);
        assert_eq!({ hdr.header }, HEADER_MAGIC);
        assert_eq!({ hdr.type_of_loader }, LOADER_TYPE_UNDEFINED);
        assert_eq!({ hdr.cmd_line_ptr }, 0x20000);
        assert_eq!({ hdr.cmdline_size }, 15);
        assert_eq!({ hdr.ramdisk_image }, 0x0f00_0000);
        assert_eq!({ hdr.ramdisk_size }, 0x12345);
        assert_eq!(params.e820_entries, 3);
        let e820_total: u64 = params.e820_table[..3].iter().map(|e| e.size).sum();
        assert_eq!(e820_total, 256 << 20);
    }

    #[test]
    fn bzimage_header_is_kept() {
        let header = setup_header {
            version: 0x20f,
            initrd_addr_max: 0x3fff_ffff,
            ..Default::default()
        };
        let params = build(
            Some(header),
            64 << 20,
            BootInputs {
                cmdline_addr: 0x20000,
                cmdline_len: 0,
                initrd: None,
            },
        );
        assert_eq!({ params.hdr.version }, 0x20f);
        assert_eq!({ params.hdr.ramdisk_image }, 0);
    }

    #[test]
    fn initrd_stays_below_its_limits() {
        let header = setup_header {
            initrd_addr_max: 0x3fff_ffff,
            ..Default::default()
        };
        assert_eq!(initrd_limit(Some(&header), 4 << 30), 0x4000_0000);
        assert_eq!(initrd_limit(None, 256 << 20), 256 << 20);
        assert_eq!(initrd_limit(None, 4 << 30), 0x8000_0000);
    }
}
