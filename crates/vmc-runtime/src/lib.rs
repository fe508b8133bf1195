//! The one interface both run modes implement.
//!
//! `vmc run` and `vmc bench` build a [`RunSpec`] from the image config and the command line,
//! hand it to a [`Runtime`] (the container runtime or the microVM runtime) and get back an
//! [`ExitOutcome`] plus a [`Timeline`] of the milestones the run passed. Nothing outside the
//! runtimes needs to know which mode it drives.

pub mod env;
pub mod exec;
pub mod guest_control;
pub mod memory;
pub mod outcome;
pub mod paths;
pub mod signals;
pub mod spec;
pub mod stdin_stream;
pub mod terminal;
pub mod timeline;
pub mod user;

pub use memory::{MemoryProbe, MemoryReading, NoObserver, RunObserver};
pub use outcome::ExitOutcome;
pub use spec::{BindMount, Mode, NetworkMode, Resources, RunSpec};
pub use timeline::{Milestone, Timeline};

use std::path::Path;

/// Errors a runtime reports before the workload could start (vmc exits 125 for these).
pub type RuntimeError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A way of running an image: as a namespace container or as a KVM microVM.
pub trait Runtime {
    /// Which mode this runtime implements.
    fn mode(&self) -> Mode;

    /// Runs the workload described by `spec` to completion, recording milestones and trace
    /// steps in `timeline`. Blocks until the workload has exited and everything the run
    /// created (mounts, cgroups, VM) is torn down. Once the workload exists the runtime hands
    /// `observer` a [`MemoryProbe`] for it.
    fn run(
        &self,
        spec: &RunSpec,
        timeline: &mut Timeline,
        observer: &dyn RunObserver,
    ) -> Result<ExitOutcome, RuntimeError>;

    /// Removes whatever a run with this id may have left behind after a crash of vmc
    /// (mounts, cgroups, processes, scratch directories under `run_dir`). Idempotent.
    fn cleanup(&self, id: &str, run_dir: &Path) -> Result<(), RuntimeError>;
}
