//! Sampling a run's memory at a fixed interval while it runs.
//!
//! A [`MemorySampler`] is the [`RunObserver`] `vmc bench` hands a runtime. When the runtime
//! offers its [`MemoryProbe`], the sampler starts a thread that reads the probe every
//! interval (sleeping in between, on a fixed schedule so readings do not drift) until
//! [`MemorySampler::finish`] is called after `run` returns.

use serde::{Deserialize, Serialize};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use vmc_runtime::{MemoryProbe, MemoryReading, RunObserver};

/// One reading of a run's memory, at a time since the run's timeline origin.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MemorySample {
    /// When the reading was taken, in microseconds since vmc started when serialised.
    #[serde(rename = "at_us", with = "vmc_runtime::timeline::duration_micros")]
    pub at: Duration,
    /// The four numbers the runtime's probe returned.
    #[serde(flatten)]
    pub reading: MemoryReading,
}

/// Reads a run's memory probe at a fixed interval on a thread of its own.
pub struct MemorySampler {
    origin: Instant,
    interval: Duration,
    state: Mutex<State>,
}

/// Where the sampler is in its life.
enum State {
    /// No probe offered yet.
    Waiting,
    /// Sampling; dropping or sending on `stop` ends the thread.
    Sampling {
        stop: mpsc::Sender<()>,
        thread: JoinHandle<Vec<MemorySample>>,
    },
    /// The sampling thread could not be started.
    Failed(std::io::Error),
    /// `finish` was called.
    Finished,
}

impl MemorySampler {
    /// The interval `vmc bench` samples at.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(10);

    /// A sampler whose sample times count from `origin` (the run's timeline origin), reading
    /// every [`Self::DEFAULT_INTERVAL`].
    pub fn new(origin: Instant) -> MemorySampler {
        MemorySampler::with_interval(origin, MemorySampler::DEFAULT_INTERVAL)
    }

    /// A sampler reading every `interval` (at least 1 ms).
    pub fn with_interval(origin: Instant, interval: Duration) -> MemorySampler {
        MemorySampler {
            origin,
            interval: interval.max(Duration::from_millis(1)),
            state: Mutex::new(State::Waiting),
        }
    }

    /// Stops sampling, waits for the thread to end and returns the readings in time order
    /// (none if the runtime never offered a probe). Call it once `run` has returned.
    pub fn finish(&self) -> std::io::Result<Vec<MemorySample>> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match std::mem::replace(&mut *state, State::Finished) {
            State::Waiting | State::Finished => Ok(Vec::new()),
            State::Failed(err) => Err(err),
            State::Sampling { stop, thread } => {
                // The thread may already have ended if the receiver is gone; either way it stops.
                let _ = stop.send(());
                thread
                    .join()
                    .map_err(|_| std::io::Error::other("the memory sampling thread panicked"))
            }
        }
    }
}

impl RunObserver for MemorySampler {
    fn memory_probe_ready(&self, probe: Arc<dyn MemoryProbe>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !matches!(*state, State::Waiting) {
            return; // A runtime offers one probe per run; later offers are ignored.
        }
        let (stop, stopped) = mpsc::channel();
        let (origin, interval) = (self.origin, self.interval);
        let spawned = std::thread::Builder::new()
            .name("vmc-memory-sampler".into())
            .spawn(move || {
                // Ctrl-C and the like are for the run's signal catcher, not for this thread.
                let _ = vmc_runtime::signals::block_forwarded_in_this_thread();
                sample_until_stopped(probe.as_ref(), origin, interval, &stopped)
            });
        *state = match spawned {
            Ok(thread) => State::Sampling { stop, thread },
            Err(err) => State::Failed(err),
        };
    }
}

impl Drop for MemorySampler {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// Reads `probe` now and then at every later multiple of `interval`, sleeping on `stopped`
/// in between, until a stop message arrives or the sender is dropped.
fn sample_until_stopped(
    probe: &dyn MemoryProbe,
    origin: Instant,
    interval: Duration,
    stopped: &mpsc::Receiver<()>,
) -> Vec<MemorySample> {
    let mut samples = Vec::new();
    let mut next = Instant::now();
    loop {
        let at = Instant::now().saturating_duration_since(origin);
        samples.push(MemorySample {
            at,
            reading: probe.read(),
        });
        let now = Instant::now();
        while next <= now {
            next += interval; // Skip ticks missed while the machine was busy.
        }
        match stopped.recv_timeout(next - now) {
            Err(RecvTimeoutError::Timeout) => continue,
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return samples,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A probe that counts its reads and reports the count as the workload's bytes.
    struct CountingProbe {
        reads: AtomicU64,
    }

    impl MemoryProbe for CountingProbe {
        fn read(&self) -> MemoryReading {
            let n = self.reads.fetch_add(1, Ordering::SeqCst) + 1;
            MemoryReading {
                reserved_bytes: 128 << 20,
                workload_bytes: n,
                peak_bytes: None,
                overhead_bytes: 3 << 20,
            }
        }
    }

    #[test]
    fn reads_the_probe_it_was_given_at_the_interval() {
        let origin = Instant::now();
        let interval = Duration::from_millis(20);
        let sampler = MemorySampler::with_interval(origin, interval);
        let probe = Arc::new(CountingProbe {
            reads: AtomicU64::new(0),
        });
        let offered = Instant::now();
        sampler.memory_probe_ready(probe.clone());
        std::thread::sleep(Duration::from_millis(200));
        let samples = sampler.finish().unwrap();
        let elapsed = offered.elapsed();

        // Every sample is one read of this probe, in order.
        assert_eq!(samples.len() as u64, probe.reads.load(Ordering::SeqCst));
        let values: Vec<u64> = samples.iter().map(|s| s.reading.workload_bytes).collect();
        assert_eq!(values, (1..=samples.len() as u64).collect::<Vec<_>>());
        // Paced by the interval, not a busy loop: never more reads than ticks elapsed.
        let ticks = (elapsed.as_millis() / interval.as_millis()) as usize + 1;
        assert!(
            samples.len() <= ticks,
            "{} samples in {elapsed:?}",
            samples.len()
        );
        assert!(
            samples.len() >= 3,
            "only {} samples in {elapsed:?}",
            samples.len()
        );
        // Times count from the origin and increase by about the interval.
        assert!(samples.windows(2).all(|w| w[1].at > w[0].at));
        let span = samples.last().unwrap().at - samples[0].at;
        let mean_gap = span / (samples.len() as u32 - 1);
        assert!(mean_gap >= interval * 9 / 10, "mean gap {mean_gap:?}");
        // The thread is joined: it no longer holds the probe.
        assert_eq!(Arc::strong_count(&probe), 1);
    }

    #[test]
    fn no_probe_no_samples() {
        let sampler = MemorySampler::new(Instant::now());
        assert!(sampler.finish().unwrap().is_empty());
    }

    #[test]
    fn a_second_probe_is_ignored_and_finish_is_idempotent() {
        let sampler = MemorySampler::with_interval(Instant::now(), Duration::from_millis(5));
        let first = Arc::new(CountingProbe {
            reads: AtomicU64::new(0),
        });
        let second = Arc::new(CountingProbe {
            reads: AtomicU64::new(0),
        });
        sampler.memory_probe_ready(first.clone());
        sampler.memory_probe_ready(second.clone());
        std::thread::sleep(Duration::from_millis(30));
        assert!(!sampler.finish().unwrap().is_empty());
        assert!(sampler.finish().unwrap().is_empty());
        assert!(first.reads.load(Ordering::SeqCst) >= 1);
        assert_eq!(second.reads.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn samples_serialise_flat_with_microsecond_times() {
        let sample = MemorySample {
            at: Duration::from_micros(1500),
            reading: MemoryReading {
                reserved_bytes: 0,
                workload_bytes: 4096,
                peak_bytes: Some(8192),
                overhead_bytes: 100,
            },
        };
        assert_eq!(
            serde_json::to_string(&sample).unwrap(),
            r#"{"at_us":1500,"reserved_bytes":0,"workload_bytes":4096,"peak_bytes":8192,"overhead_bytes":100}"#
        );
    }
}
