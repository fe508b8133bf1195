//! The guest's RAM and vCPUs from the run's `-m` and `--cpus`.

use crate::error::VmRuntimeError;
use vmc_vm::config::MIN_MEMORY_BYTES;

/// Guest RAM when `--memory` is not given.
pub const DEFAULT_MEMORY_BYTES: u64 = 256 << 20;

/// The guest RAM for `-m` (default [`DEFAULT_MEMORY_BYTES`]), refused before anything is
/// set up when no Linux guest could boot in it.
pub fn guest_memory(memory_bytes: Option<u64>) -> Result<u64, VmRuntimeError> {
    let bytes = memory_bytes.unwrap_or(DEFAULT_MEMORY_BYTES);
    if bytes < MIN_MEMORY_BYTES {
        let size = match bytes % (1 << 20) {
            0 => format!("{} MiB", bytes >> 20),
            _ => format!("{bytes} bytes"),
        };
        return Err(VmRuntimeError::MemoryTooSmall {
            size,
            min_mib: MIN_MEMORY_BYTES >> 20,
        });
    }
    Ok(bytes)
}

/// The number of vCPUs for `--cpus` (rounded up; default 1).
pub fn vcpu_count(cpus: Option<f64>) -> Result<u8, VmRuntimeError> {
    match cpus {
        None => Ok(1),
        Some(cpus) if cpus > 0.0 && cpus <= f64::from(u8::MAX) => Ok(cpus.ceil() as u8),
        Some(cpus) => Err(VmRuntimeError::NotAVcpuCount(cpus)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_memory_has_a_default_and_a_floor() {
        assert_eq!(guest_memory(None).unwrap(), DEFAULT_MEMORY_BYTES);
        assert_eq!(guest_memory(Some(32 << 20)).unwrap(), 32 << 20);
        let err = guest_memory(Some(16 << 20)).unwrap_err().to_string();
        assert!(
            err.contains("at least 32 MiB") && err.contains("-m 32m"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1);
    }

    #[test]
    fn vcpus_round_up_and_are_bounded() {
        assert_eq!(vcpu_count(None).unwrap(), 1);
        assert_eq!(vcpu_count(Some(1.5)).unwrap(), 2);
        assert!(vcpu_count(Some(0.0)).is_err());
        assert!(vcpu_count(Some(300.0)).is_err());
    }
}
