//! Puts everything the guest needs at boot into its RAM: kernel, initrd, command line,
//! zero page, MP table, GDT and page tables.

use crate::arch::x86_64::boot_params::{self, BootInputs};
use crate::arch::x86_64::layout::{
    CMDLINE_ADDR, CMDLINE_MAX_SIZE, EBDA_START, GDT_ADDR, IDT_ADDR, ZERO_PAGE_ADDR,
};
use crate::arch::x86_64::{gdt, mptable, paging};
use crate::error::VmError;
use crate::kernel::{self, KernelImage, LoadedKernel};
use crate::memory::GuestRam;
use linux_loader::configurator::linux::LinuxBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use std::fs::File;
use std::path::{Path, PathBuf};
use vm_memory::{Bytes, GuestAddress};
use vmc_runtime::Timeline;

/// Loads the kernel, the initrd parts and the command line, and writes the boot structures
/// for `vcpus` vCPUs and `memory_bytes` of RAM. Each of the three (kernel, initrd, boot
/// structures) is a step of `timeline`, recorded when it is done. Returns the loaded kernel.
pub fn load(
    ram: &GuestRam,
    memory_bytes: u64,
    vcpus: u8,
    kernel: &KernelImage,
    initrd_parts: &[PathBuf],
    cmdline: &str,
    timeline: &mut Timeline,
) -> Result<LoadedKernel, VmError> {
    let kernel = kernel::load(ram, kernel)?;
    timeline.step(format!(
        "kernel loaded: {}, entry {:#x}",
        kernel.format.label(),
        kernel.entry
    ));
    let initrd = load_initrd(ram, memory_bytes, &kernel, initrd_parts)?;
    if let Some((addr, size)) = initrd {
        timeline.step(format!(
            "initrd loaded: {} parts, {} KiB at {addr:#x}",
            initrd_parts.len(),
            size.div_ceil(1024)
        ));
    }
    write_cmdline(ram, cmdline)?;
    let params = boot_params::build(
        kernel.header,
        memory_bytes,
        BootInputs {
            cmdline_addr: CMDLINE_ADDR,
            cmdline_len: cmdline.len(),
            initrd,
        },
    );
    LinuxBootConfigurator::write_bootparams(
        &BootParams::new(&params, GuestAddress(ZERO_PAGE_ADDR)),
        ram,
    )
    .map_err(|e| VmError::GuestMemory(e.to_string()))?;
    write_bytes(ram, EBDA_START, &mptable::build(EBDA_START as u32, vcpus))?;
    let gdt_bytes: Vec<u8> = gdt::boot_gdt()
        .iter()
        .flat_map(|e| e.to_le_bytes())
        .collect();
    write_bytes(ram, GDT_ADDR, &gdt_bytes)?;
    write_bytes(ram, IDT_ADDR, &0u64.to_le_bytes())?;
    for (addr, table) in paging::identity_tables() {
        let bytes: Vec<u8> = table.iter().flat_map(|e| e.to_le_bytes()).collect();
        write_bytes(ram, addr, &bytes)?;
    }
    timeline.step(format!(
        "boot_params (e820, command line), MP table ({vcpus} vCPUs), GDT and page tables written"
    ));
    Ok(kernel)
}

/// Writes `bytes` at guest address `addr`.
fn write_bytes(ram: &GuestRam, addr: u64, bytes: &[u8]) -> Result<(), VmError> {
    ram.write_slice(bytes, GuestAddress(addr)).map_err(|e| {
        VmError::GuestMemory(format!("writing {} bytes at {addr:#x}: {e}", bytes.len()))
    })
}

/// Writes the NUL-terminated command line at [`CMDLINE_ADDR`].
fn write_cmdline(ram: &GuestRam, cmdline: &str) -> Result<(), VmError> {
    if cmdline.len() >= CMDLINE_MAX_SIZE || cmdline.contains('\0') {
        return Err(VmError::BadCmdline {
            len: cmdline.len(),
            max: CMDLINE_MAX_SIZE - 1,
        });
    }
    let mut bytes = cmdline.as_bytes().to_vec();
    bytes.push(0);
    write_bytes(ram, CMDLINE_ADDR, &bytes)
}

/// Initrd parts are padded to this alignment so each cpio archive starts aligned (the
/// kernel's unpacker skips the zero padding between concatenated archives).
const INITRD_PART_ALIGN: u64 = 4;
/// The initrd region starts on a page boundary.
const PAGE_SIZE: u64 = 4096;

/// Concatenates the initrd parts into one region as high as the kernel allows, above the
/// kernel image.
fn load_initrd(
    ram: &GuestRam,
    memory_bytes: u64,
    kernel: &LoadedKernel,
    parts: &[PathBuf],
) -> Result<Option<(u64, u64)>, VmError> {
    if parts.is_empty() {
        return Ok(None);
    }
    let unreadable = |path: &Path, source| VmError::InitrdUnreadable {
        path: path.to_path_buf(),
        source,
    };
    let mut sizes = Vec::with_capacity(parts.len());
    for path in parts {
        let size = std::fs::metadata(path)
            .map_err(|e| unreadable(path, e))?
            .len();
        sizes.push(size);
    }
    let total: u64 = sizes
        .iter()
        .map(|s| s.next_multiple_of(INITRD_PART_ALIGN))
        .sum();
    let limit = boot_params::initrd_limit(kernel.header.as_ref(), memory_bytes);
    let too_large = VmError::InitrdTooLarge {
        size_mib: total.div_ceil(1 << 20),
    };
    let start = limit.checked_sub(total).ok_or(too_large)? / PAGE_SIZE * PAGE_SIZE;
    if start < kernel.end.next_multiple_of(PAGE_SIZE) {
        return Err(VmError::InitrdTooLarge {
            size_mib: total.div_ceil(1 << 20),
        });
    }
    let mut addr = start;
    for (path, size) in parts.iter().zip(sizes) {
        let mut file = File::open(path).map_err(|e| unreadable(path, e))?;
        ram.read_exact_volatile_from(GuestAddress(addr), &mut file, size as usize)
            .map_err(|e| unreadable(path, std::io::Error::other(e.to_string())))?;
        addr += size.next_multiple_of(INITRD_PART_ALIGN);
    }
    Ok(Some((start, total)))
}
