//! Guest RAM: anonymous host memory mapped at creation (vm-memory's `GuestMemoryMmap`),
//! registered with KVM as one memory slot per region, and kept for the VM's life. The host
//! pages are only allocated when the guest first touches them, so what the VM costs the host
//! is its *resident* guest RAM ([`resident_bytes`]) plus the VMM's own memory.

use crate::arch::x86_64::layout::ram_regions;
use crate::error::VmError;
use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use std::ops::Range;
use vm_memory::{
    Address, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
    MemoryRegionAddress,
};

/// The guest's RAM.
pub type GuestRam = GuestMemoryMmap;

/// One guest RAM region and where it lives in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RamRegion {
    /// Guest physical addresses it covers.
    pub guest: Range<u64>,
    /// Host virtual addresses backing it (in this process).
    pub host: Range<usize>,
}

/// Maps `memory_bytes` of guest RAM (split around the MMIO gap) and registers it with KVM.
pub fn create(vm: &VmFd, memory_bytes: u64) -> Result<GuestRam, VmError> {
    let ranges: Vec<(GuestAddress, usize)> = ram_regions(memory_bytes)
        .into_iter()
        .map(|(start, size)| (GuestAddress(start), size as usize))
        .collect();
    let ram =
        GuestMemoryMmap::from_ranges(&ranges).map_err(|e| VmError::GuestMemory(e.to_string()))?;
    for (slot, region) in regions(&ram).into_iter().enumerate() {
        let memory_region = kvm_userspace_memory_region {
            slot: slot as u32,
            flags: 0,
            guest_phys_addr: region.guest.start,
            memory_size: region.guest.end - region.guest.start,
            userspace_addr: region.host.start as u64,
        };
        // SAFETY: the host range is a live mapping owned by `ram`, which the VM keeps (and
        // drops only after the VM fd, whose memory slots then no longer exist).
        unsafe { vm.set_user_memory_region(memory_region) }.map_err(|source| VmError::Kvm {
            what: "KVM_SET_USER_MEMORY_REGION",
            source,
        })?;
    }
    Ok(ram)
}

/// The RAM regions of `ram` with their host addresses.
pub fn regions(ram: &GuestRam) -> Vec<RamRegion> {
    ram.iter()
        .map(|region| {
            let host = region
                .get_host_address(MemoryRegionAddress(0))
                .expect("offset 0 is inside every region") as usize;
            let start = region.start_addr().raw_value();
            RamRegion {
                guest: start..start + region.len(),
                host: host..host + region.len() as usize,
            }
        })
        .collect()
}

/// How many bytes of the given host ranges are resident in RAM now (`mincore`). Use it on
/// [`RamRegion::host`] ranges while the VM exists; VMM overhead is RSS minus this.
pub fn resident_bytes(ranges: &[Range<usize>]) -> std::io::Result<u64> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let mut resident = 0u64;
    for range in ranges {
        let pages = (range.end - range.start).div_ceil(page);
        let mut vector = vec![0u8; pages];
        // SAFETY: `range` is a page-aligned live mapping (guest RAM) and `vector` has one byte
        // per page of it.
        let ret = unsafe {
            libc::mincore(
                range.start as *mut libc::c_void,
                range.end - range.start,
                vector.as_mut_ptr(),
            )
        };
        if ret != 0 {
            return Err(std::io::Error::last_os_error());
        }
        resident += vector.iter().filter(|v| **v & 1 != 0).count() as u64 * page as u64;
    }
    Ok(resident)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::Bytes;

    #[test]
    fn resident_bytes_follow_touched_pages() {
        let ram = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 64 << 20)]).unwrap();
        let hosts: Vec<_> = regions(&ram).into_iter().map(|r| r.host).collect();
        assert_eq!(hosts[0].end - hosts[0].start, 64 << 20);
        let before = resident_bytes(&hosts).unwrap();
        for page in 0..256u64 {
            ram.write_obj(1u8, GuestAddress(page * 4096)).unwrap();
        }
        let after = resident_bytes(&hosts).unwrap();
        assert!(after >= before + 256 * 4096, "{before} -> {after}");
        assert!(after < 64 << 20);
    }
}
