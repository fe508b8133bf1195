//! Guest kernel images: finding the installed one, recognising the format, loading it.

use crate::arch::x86_64::layout::HIMEM_START;
use crate::error::VmError;
use crate::memory::GuestRam;
use linux_loader::loader::bootparam::setup_header;
use linux_loader::loader::{BzImage, Elf, KernelLoader};
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use vm_memory::{Address, GuestAddress};

/// The kernel installed by `kernels/build.sh`: `$(cache_dir)/kernels/current/vmlinux`, where
/// `current` is a symlink to the directory of the active kernel configuration's build.
pub fn default_kernel() -> Result<PathBuf, VmError> {
    let path = vmc_runtime::paths::cache_dir().join("kernels/current/vmlinux");
    if path.is_file() {
        Ok(path)
    } else {
        Err(VmError::NoDefaultKernel)
    }
}

/// The kernel image formats the VMM boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelFormat {
    /// An uncompressed x86-64 ELF executable (`vmlinux`).
    ElfVmlinux,
    /// A compressed `bzImage` with a setup header.
    BzImage,
}

impl KernelFormat {
    /// A short name for trace lines.
    pub fn label(self) -> &'static str {
        match self {
            KernelFormat::ElfVmlinux => "vmlinux ELF",
            KernelFormat::BzImage => "bzImage",
        }
    }
}

/// Recognises a kernel image from its first 1 KiB: an x86-64 ELF executable, or a bzImage
/// ("HdrS" at 0x202).
pub fn detect_format(head: &[u8]) -> Option<KernelFormat> {
    const ET_EXEC: u16 = 2;
    const EM_X86_64: u16 = 62;
    let u16_at = |offset: usize| {
        head.get(offset..offset + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    if head.starts_with(b"\x7fELF") {
        let is_64bit = head.get(4) == Some(&2);
        return (is_64bit && u16_at(16) == Some(ET_EXEC) && u16_at(18) == Some(EM_X86_64))
            .then_some(KernelFormat::ElfVmlinux);
    }
    (head.get(0x202..0x206) == Some(b"HdrS")).then_some(KernelFormat::BzImage)
}

/// A kernel loaded into guest RAM.
#[derive(Debug, Clone, Copy)]
pub struct LoadedKernel {
    /// Its format.
    pub format: KernelFormat,
    /// Guest address of the 64-bit entry point.
    pub entry: u64,
    /// First guest address after the loaded image.
    pub end: u64,
    /// The bzImage setup header (`None` for an ELF vmlinux).
    pub header: Option<setup_header>,
}

/// Offset of the 64-bit entry point from a bzImage's protected-mode code start.
const BZIMAGE_64BIT_ENTRY_OFFSET: u64 = 0x200;
/// bzImage `xloadflags` bit: the kernel has a 64-bit entry point.
const XLF_KERNEL_64: u16 = 1;

/// Loads the kernel at `path` into `ram`.
pub fn load(ram: &GuestRam, path: &Path) -> Result<LoadedKernel, VmError> {
    let mut file = File::open(path).map_err(|source| match source.kind() {
        ErrorKind::NotFound => VmError::KernelMissing(path.to_path_buf()),
        _ => VmError::Read {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let mut head = Vec::with_capacity(1024);
    (&mut file)
        .take(1024)
        .read_to_end(&mut head)
        .map_err(|source| VmError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    let format = detect_format(&head).ok_or_else(|| VmError::NotAKernel(path.to_path_buf()))?;
    let memory_mib = ram_size(ram) >> 20;
    let too_large = || VmError::KernelTooLarge {
        path: path.to_path_buf(),
        memory_mib,
    };
    let himem = Some(GuestAddress(HIMEM_START));
    match format {
        KernelFormat::ElfVmlinux => {
            let result = Elf::load(ram, None, &mut file, himem).map_err(|err| match err {
                linux_loader::loader::Error::Elf(
                    linux_loader::loader::elf::Error::ReadKernelImage,
                ) => too_large(),
                _ => VmError::NotAKernel(path.to_path_buf()),
            })?;
            Ok(LoadedKernel {
                format,
                entry: result.kernel_load.raw_value(),
                end: result.kernel_end,
                header: None,
            })
        }
        KernelFormat::BzImage => {
            let result = BzImage::load(ram, Some(GuestAddress(HIMEM_START)), &mut file, himem)
                .map_err(|err| match err {
                    linux_loader::loader::Error::Bzimage(
                        linux_loader::loader::bzimage::Error::ReadBzImageCompressedKernel,
                    ) => too_large(),
                    _ => VmError::NotAKernel(path.to_path_buf()),
                })?;
            let header = result
                .setup_header
                .ok_or_else(|| VmError::NotAKernel(path.to_path_buf()))?;
            if header.xloadflags & XLF_KERNEL_64 == 0 {
                return Err(VmError::NotAKernel(path.to_path_buf()));
            }
            Ok(LoadedKernel {
                format,
                entry: result.kernel_load.raw_value() + BZIMAGE_64BIT_ENTRY_OFFSET,
                end: result.kernel_end,
                header: Some(header),
            })
        }
    }
}

/// Total bytes of guest RAM.
fn ram_size(ram: &GuestRam) -> u64 {
    use vm_memory::{GuestMemoryBackend, GuestMemoryRegion};
    ram.iter().map(|region| region.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf_head(class: u8, kind: u16, machine: u16) -> Vec<u8> {
        let mut head = vec![0u8; 64];
        head[..4].copy_from_slice(b"\x7fELF");
        head[4] = class;
        head[16..18].copy_from_slice(&kind.to_le_bytes());
        head[18..20].copy_from_slice(&machine.to_le_bytes());
        head
    }

    #[test]
    fn recognises_vmlinux_and_bzimage() {
        assert_eq!(
            detect_format(&elf_head(2, 2, 62)),
            Some(KernelFormat::ElfVmlinux)
        );
        let mut bz = vec![0u8; 1024];
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        assert_eq!(detect_format(&bz), Some(KernelFormat::BzImage));
    }

    #[test]
    fn rejects_what_is_not_a_kernel() {
        assert_eq!(detect_format(b"#!/bin/sh\necho hi\n"), None);
        assert_eq!(
            detect_format(&elf_head(2, 3, 62)),
            None,
            "shared object / PIE"
        );
        assert_eq!(detect_format(&elf_head(1, 2, 3)), None, "32-bit ELF");
        assert_eq!(detect_format(&elf_head(2, 2, 183)), None, "aarch64");
        assert_eq!(detect_format(&[]), None);
    }
}
