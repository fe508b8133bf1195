//! Docker's meaning of the resource flags `-m`, `--cpus` and `--pids-limit`, checked in one
//! place for `vmc run` and `vmc bench`.
//!
//! As with `docker run`: `-m 0`, `--cpus 0` and `--pids-limit 0` (or any negative pids limit,
//! `-1` by convention) mean no limit; a memory limit below 6 MiB is refused with Docker's
//! message; a CPU count that is not a finite number of at least 0.01 is refused. What is left
//! is a [`Resources`] in which `None` always means "no limit" (or, for a VM, the default guest
//! size), so runtimes never see a zero or a NaN.

use crate::spec::Resources;

/// The smallest memory limit Docker accepts (`linuxMinMemory` in moby): 6 MiB.
pub const MIN_MEMORY_BYTES: u64 = 6 << 20;

/// The smallest CPU quota: 1 ms of CPU time per 100 ms period, which is also the kernel's
/// smallest CFS quota.
pub const MIN_CPUS: f64 = 0.01;

/// A resource flag with a value that means nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LimitError {
    /// `-m` below [`MIN_MEMORY_BYTES`] (and not 0).
    #[error("-m: a memory limit of {0} bytes is too small: Minimum memory limit allowed is 6MB (give -m 6m or more, or -m 0 for no limit)")]
    MemoryTooSmall(u64),
    /// `--cpus` NaN, infinite or negative.
    #[error("--cpus {0}: give a finite number of CPUs of at least 0.01, such as 1.5 (or 0 for no limit)")]
    CpusNotANumber(f64),
    /// `--cpus` between 0 and [`MIN_CPUS`].
    #[error("--cpus {0}: Range of CPUs is from 0.01 upwards (0 means no limit)")]
    CpusTooSmall(f64),
}

/// The limits `-m`, `--cpus` and `--pids-limit` ask for, with Docker's rules applied.
pub fn docker_resources(
    memory_bytes: Option<u64>,
    cpus: Option<f64>,
    pids_limit: Option<i64>,
) -> Result<Resources, LimitError> {
    let memory_bytes = match memory_bytes {
        Some(0) | None => None,
        Some(bytes) if bytes < MIN_MEMORY_BYTES => return Err(LimitError::MemoryTooSmall(bytes)),
        Some(bytes) => Some(bytes),
    };
    let cpus = match cpus {
        None => None,
        Some(cpus) if !cpus.is_finite() || cpus < 0.0 => {
            return Err(LimitError::CpusNotANumber(cpus))
        }
        Some(0.0) => None,
        Some(cpus) if cpus < MIN_CPUS => return Err(LimitError::CpusTooSmall(cpus)),
        Some(cpus) => Some(cpus),
    };
    Ok(Resources {
        memory_bytes,
        cpus,
        pids_limit: pids_limit.filter(|&max| max > 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(bytes: u64) -> Result<Option<u64>, LimitError> {
        docker_resources(Some(bytes), None, None).map(|r| r.memory_bytes)
    }

    fn cpus(cpus: f64) -> Result<Option<f64>, LimitError> {
        docker_resources(None, Some(cpus), None).map(|r| r.cpus)
    }

    fn pids(max: i64) -> Option<i64> {
        docker_resources(None, None, Some(max)).unwrap().pids_limit
    }

    #[test]
    fn memory_below_6_mib_is_refused_and_0_is_no_limit() {
        assert_eq!(memory(0), Ok(None));
        assert_eq!(memory(1024), Err(LimitError::MemoryTooSmall(1024)));
        assert_eq!(
            memory(MIN_MEMORY_BYTES - 1),
            Err(LimitError::MemoryTooSmall(MIN_MEMORY_BYTES - 1))
        );
        assert_eq!(memory(MIN_MEMORY_BYTES), Ok(Some(MIN_MEMORY_BYTES)));
        assert_eq!(memory(1 << 30), Ok(Some(1 << 30)));
        let message = memory(1024).unwrap_err().to_string();
        assert!(
            message.contains("Minimum memory limit allowed is 6MB"),
            "{message}"
        );
    }

    #[test]
    fn cpus_0_is_no_limit_and_non_numbers_are_refused() {
        assert_eq!(cpus(0.0), Ok(None));
        assert_eq!(cpus(-0.0), Ok(None));
        assert_eq!(cpus(1.5), Ok(Some(1.5)));
        assert_eq!(cpus(0.01), Ok(Some(0.01)));
        assert_eq!(cpus(0.001), Err(LimitError::CpusTooSmall(0.001)));
        assert_eq!(cpus(-1.0), Err(LimitError::CpusNotANumber(-1.0)));
        assert_eq!(
            cpus(f64::INFINITY),
            Err(LimitError::CpusNotANumber(f64::INFINITY))
        );
        // NaN is never equal to itself: match the variant.
        assert!(matches!(cpus(f64::NAN), Err(LimitError::CpusNotANumber(n)) if n.is_nan()));
        assert_eq!(cpus(f64::NAN).unwrap_err().to_string().lines().count(), 1);
    }

    #[test]
    fn pids_limit_0_and_negative_are_unlimited() {
        assert_eq!(pids(0), None);
        assert_eq!(pids(-1), None);
        assert_eq!(pids(-5), None);
        assert_eq!(pids(1), Some(1));
        assert_eq!(pids(100), Some(100));
    }

    #[test]
    fn no_flags_are_no_limits() {
        assert_eq!(docker_resources(None, None, None), Ok(Resources::default()));
    }
}
