//! What holds a run while its workload lives, attached (`vmc run` itself) or detached (the
//! supervisor process): it records the workload's start and end, and passes the control
//! channel's signals to the workload.

use crate::error::Result;
use crate::record::{unix_now, RunRecord};
use crate::store::RunStore;
use std::sync::{Arc, Mutex, PoisonError};
use vmc_runtime::signals::ENDING_SETUP;
use vmc_runtime::{ExitOutcome, MemoryProbe, RunObserver, WorkloadSignals};

/// A run being supervised by this process; hand it to `Runtime::run` as the observer.
pub struct Supervision {
    store: RunStore,
    record: Mutex<RunRecord>,
    workload: Mutex<Option<Arc<dyn WorkloadSignals>>>,
    on_started: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Supervision {
    /// Supervises the run of `record` (this process becomes its supervisor in the record)
    /// and listens on its control channel.
    pub fn start(store: RunStore, mut record: RunRecord) -> Result<Arc<Self>> {
        record.supervised_by_this_process();
        record.started = None;
        record.outcome = None;
        store.save(&record)?;
        let dir = store.run_dir(&record.id);
        let supervision = Arc::new(Supervision {
            store,
            record: Mutex::new(record),
            workload: Mutex::new(None),
            on_started: Mutex::new(None),
        });
        let weak = Arc::downgrade(&supervision);
        crate::control::listen(&dir, move |signal| {
            if let Some(supervision) = weak.upgrade() {
                supervision.deliver(signal);
            }
        })?;
        Ok(supervision)
    }

    /// Calls `f` once the workload has started.
    pub fn on_started(&self, f: impl FnOnce() + Send + 'static) {
        *lock(&self.on_started) = Some(Box::new(f));
    }

    /// Sends `signal` to the workload. Before it has started, a signal that ends a setup
    /// (and SIGKILL, as SIGTERM) ends the run's setup, which removes what it made.
    pub fn deliver(&self, signal: i32) {
        if let Some(workload) = lock(&self.workload).as_ref() {
            let _ = workload.signal(signal);
            return;
        }
        let ending = signal == libc::SIGKILL || ENDING_SETUP.iter().any(|s| *s as i32 == signal);
        if ending {
            let signal = if signal == libc::SIGKILL {
                libc::SIGTERM
            } else {
                signal
            };
            // The runtime reads its forwarded signals from a signalfd: this one ends the setup.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::this(),
                nix::sys::signal::Signal::try_from(signal).ok(),
            );
        }
    }

    /// Records how the workload ended (or removes the run, with `--rm`); returns the record.
    pub fn finish(&self, outcome: ExitOutcome) -> Result<RunRecord> {
        let mut record = lock(&self.record).clone();
        record.outcome = Some(outcome);
        record.finished = Some(unix_now());
        if record.auto_remove {
            // A `vmc wait` holding the run reads the outcome before the run goes.
            let _removal = crate::wait::lock_for_removal(&self.store.run_dir(&record.id), || {
                let _ = self.store.save(&record);
            });
            self.store.remove(&record.id)?;
        } else {
            self.store.save(&record)?;
        }
        Ok(record)
    }

    /// The run's record as this process knows it.
    pub fn record(&self) -> RunRecord {
        lock(&self.record).clone()
    }
}

impl RunObserver for Supervision {
    fn memory_probe_ready(&self, _probe: Arc<dyn MemoryProbe>) {}

    fn workload_started(&self, workload: Arc<dyn WorkloadSignals>) {
        *lock(&self.workload) = Some(workload);
        {
            let mut record = lock(&self.record);
            record.started = Some(unix_now());
            // A record that cannot be written shows the run as Created until it ends.
            let _ = self.store.save(&record);
        }
        if let Some(f) = lock(&self.on_started).take() {
            f();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
