//! Guest kernel images: finding the installed one, recognising the format, loading it.

use crate::arch::x86_64::layout::HIMEM_START;
use crate::error::VmError;
use crate::memory::GuestRam;
use linux_loader::loader::bootparam::setup_header;
use linux_loader::loader::{BzImage, Elf, KernelLoader};
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::ops::Range;
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

/// Loads `kernel` into `ram`, by the format its headers gave.
pub fn load(ram: &GuestRam, kernel: &KernelImage) -> Result<LoadedKernel, VmError> {
    let path = kernel.path();
    let format = kernel.format();
    let mut file = File::open(path).map_err(|source| match source.kind() {
        ErrorKind::NotFound => VmError::KernelMissing(path.to_path_buf()),
        _ => VmError::Read {
            path: path.to_path_buf(),
            source,
        },
    })?;
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

/// A kernel image file whose headers were read, once, for all that needs them: the format
/// it is loaded by and the guest memory it occupies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelImage {
    path: PathBuf,
    format: KernelFormat,
    memory: Range<u64>,
}

impl KernelImage {
    /// Reads the headers of the kernel at `path`: a missing file or one that is not an x86-64
    /// vmlinux or bzImage is an error naming it.
    pub fn inspect(path: &Path) -> Result<KernelImage, VmError> {
        let read_error = |source| VmError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(|source| match source.kind() {
            ErrorKind::NotFound => VmError::KernelMissing(path.to_path_buf()),
            _ => read_error(source),
        })?;
        let mut head = Vec::with_capacity(HEADERS_READ);
        file.take(HEADERS_READ as u64)
            .read_to_end(&mut head)
            .map_err(read_error)?;
        let format = detect_format(&head).ok_or_else(|| VmError::NotAKernel(path.to_path_buf()))?;
        let memory = memory_range_of(&head, format)
            .ok_or_else(|| VmError::NotAKernel(path.to_path_buf()))?;
        Ok(KernelImage {
            path: path.to_path_buf(),
            format,
            memory,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its format.
    pub fn format(&self) -> KernelFormat {
        self.format
    }

    /// The guest memory the kernel occupies once it runs: an ELF vmlinux's loadable segments
    /// (their `.bss` included), or a bzImage's preferred address and the memory it needs there
    /// to decompress and start (`init_size`). Lets the VMM tell whether a guest fits before
    /// it builds anything.
    pub fn memory_range(&self) -> Range<u64> {
        self.memory.clone()
    }
}

#[cfg(test)]
impl KernelImage {
    /// A vmlinux at `path` said to occupy 16..32 MiB, for tests that never load it.
    pub(crate) fn unread(path: &str) -> KernelImage {
        KernelImage {
            path: path.into(),
            format: KernelFormat::ElfVmlinux,
            memory: 16 << 20..32 << 20,
        }
    }
}

/// How much of a kernel file [`KernelImage::inspect`] reads: the ELF program headers of a vmlinux
/// follow its 64-byte file header, a bzImage's setup header is in its first KiB.
const HEADERS_READ: usize = 64 * 1024;

/// The memory range of a kernel whose first bytes are `head`; `None` if its headers are not
/// within them (or describe no memory).
fn memory_range_of(head: &[u8], format: KernelFormat) -> Option<Range<u64>> {
    let u16_at = |at: usize| Some(u16::from_le_bytes(head.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(head.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(head.get(at..at + 8)?.try_into().ok()?));
    match format {
        KernelFormat::ElfVmlinux => {
            const PT_LOAD: u32 = 1;
            let program_headers = usize::try_from(u64_at(0x20)?).ok()?;
            let entry_size = usize::from(u16_at(0x36)?);
            let mut range: Option<Range<u64>> = None;
            for index in 0..usize::from(u16_at(0x38)?) {
                let header = program_headers.checked_add(index.checked_mul(entry_size)?)?;
                if u32_at(header)? == PT_LOAD {
                    let start = u64_at(header + 0x18)?;
                    let end = start.checked_add(u64_at(header + 0x28)?)?;
                    range = Some(match range {
                        Some(range) => range.start.min(start)..range.end.max(end),
                        None => start..end,
                    });
                }
            }
            range
        }
        KernelFormat::BzImage => {
            let start = u64_at(0x258)?;
            Some(start..start.checked_add(u64::from(u32_at(0x260)?))?)
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
    fn memory_range_reads_the_segments_or_the_setup_header() {
        let mut elf = elf_head(2, 2, 62);
        elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&3u16.to_le_bytes());
        // (type, paddr, memsz): two loadable segments around a note.
        for (kind, paddr, memsz) in [
            (1u32, 0x100_0000u64, 0x80_0000u64),
            (1, 0x180_0000, 0x40_0000),
            (4, 0x400_0000, 0x10),
        ] {
            let mut header = vec![0u8; 56];
            header[..4].copy_from_slice(&kind.to_le_bytes());
            header[0x18..0x20].copy_from_slice(&paddr.to_le_bytes());
            header[0x28..0x30].copy_from_slice(&memsz.to_le_bytes());
            elf.extend(header);
        }
        assert_eq!(
            memory_range_of(&elf, KernelFormat::ElfVmlinux),
            Some(0x100_0000..0x1c0_0000)
        );
        assert_eq!(
            memory_range_of(&elf[..64 + 56], KernelFormat::ElfVmlinux),
            None,
            "program headers cut off"
        );

        let mut bz = vec![0u8; 1024];
        bz[0x258..0x260].copy_from_slice(&0x100_0000u64.to_le_bytes());
        bz[0x260..0x264].copy_from_slice(&0x200_0000u32.to_le_bytes());
        assert_eq!(
            memory_range_of(&bz, KernelFormat::BzImage),
            Some(0x100_0000..0x300_0000)
        );
    }

    #[test]
    fn the_default_kernel_lies_above_16_mib() {
        let Ok(kernel) = default_kernel() else {
            eprintln!("SKIPPED: no guest kernel (run kernels/build.sh)");
            return;
        };
        let range = KernelImage::inspect(&kernel).unwrap().memory_range();
        assert_eq!(range.start, 16 << 20, "{range:x?}");
        assert!(
            (1 << 20..128 << 20).contains(&(range.end - range.start)),
            "{range:x?}"
        );
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
