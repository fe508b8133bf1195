//! `vmc supervise ID` (hidden): the supervisor process of a detached run, in vmc's binary so
//! that it picks the run's runtime like `vmc run`; the supervisor itself is
//! `vmc_runs::supervisor`.

use crate::modes::{runtime_for, ModeOptions};
use anyhow::Result;
use vmc_runs::RunStore;

/// Supervises run `id` until its workload has ended; the supervisor's exit status.
pub fn supervise(id: &str) -> Result<u8> {
    let store = RunStore::open()?;
    let record = store.load(id)?;
    let runtime = runtime_for(record.mode, &ModeOptions::default())?;
    Ok(vmc_runs::supervisor::supervise(runtime.as_ref(), store, id) as u8)
}
