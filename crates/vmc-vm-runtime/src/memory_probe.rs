//! A VM's memory readings during a run.

use vmc_runtime::memory::process_rss_bytes;
use vmc_runtime::{MemoryProbe, MemoryReading};
use vmc_vm::RamRegion;

/// Reads a VM's memory: guest RAM reserved and resident, and what the VMM costs beyond it.
pub struct GuestMemoryProbe {
    /// The guest RAM's host mappings.
    pub regions: Vec<RamRegion>,
    /// The guest RAM reserved for the VM's life.
    pub reserved_bytes: u64,
}

impl MemoryProbe for GuestMemoryProbe {
    fn read(&self) -> MemoryReading {
        let ranges: Vec<_> = self.regions.iter().map(|r| r.host.clone()).collect();
        let resident = vmc_vm::memory::resident_bytes(&ranges).unwrap_or(0);
        let rss = process_rss_bytes(std::process::id()).unwrap_or(0);
        MemoryReading {
            reserved_bytes: self.reserved_bytes,
            workload_bytes: resident,
            peak_bytes: None,
            overhead_bytes: rss.saturating_sub(resident),
        }
    }
}
