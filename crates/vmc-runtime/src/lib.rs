//! The one interface both run modes implement.
//!
//! `vmc run` and `vmc bench` build a [`RunSpec`] from the image config and the command line,
//! hand it to a [`Runtime`] (the container runtime or the microVM runtime) and get back an
//! [`ExitOutcome`] plus a [`Timeline`] of the milestones the run passed. Nothing outside the
//! runtimes needs to know which mode it drives.

pub mod env;
pub mod etc_files;
pub mod exec;
pub mod limits;
pub mod memory;
pub mod outcome;
pub mod paths;
pub mod process;
pub mod rootfs;
pub mod signals;
pub mod spec;
pub mod terminal;
pub mod text;
pub mod timeline;
pub mod user;

pub use memory::{MemoryProbe, MemoryReading, NoObserver, RunObserver, WorkloadSignals};
pub use outcome::ExitOutcome;
pub use spec::{
    BindMount, ExecSpec, Mode, NetworkMode, Resources, RunSpec, SeccompPolicy, Security,
};
pub use timeline::{Milestone, Timeline};

use std::path::Path;

/// Errors a runtime reports before the workload could start (vmc exits 125 for these).
pub type RuntimeError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A run option that not every runtime honours. The CLI asks the chosen runtime about each
/// option a command line uses ([`Runtime::support`]) and refuses the ones it cannot honour,
/// instead of ignoring them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOption {
    /// `-v HOST:TARGET`.
    Volumes,
    /// `--pids-limit`.
    PidsLimit,
    /// `--network host`.
    HostNetwork,
    /// `--kernel PATH`.
    Kernel,
    /// `--console`.
    Console,
    /// `--boot-timeout SECONDS`.
    BootTimeout,
    /// `--cap-add` / `--cap-drop`.
    Capabilities,
    /// `--privileged`.
    Privileged,
    /// `--security-opt seccomp=unconfined`.
    SeccompUnconfined,
    /// `--security-opt seccomp=FILE.json`.
    SeccompProfile,
    /// `--security-opt no-new-privileges`.
    NoNewPrivileges,
    /// `-d`: a supervisor process holds the run, and needs the runtime to say when the
    /// workload has started ([`RunObserver::workload_started`]).
    Detach,
    /// `vmc exec`: a command started in a live run.
    Exec,
}

/// Whether a runtime honours a [`RunOption`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// The option works in this mode.
    Honoured,
    /// The option cannot work in this mode: why, and what to do instead (one phrase, e.g.
    /// "the guest has no shared filesystem (use --mode container)").
    Refused(&'static str),
}

/// A way of running an image: as a namespace container or as a KVM microVM.
pub trait Runtime {
    /// Which mode this runtime implements.
    fn mode(&self) -> Mode;

    /// Whether this runtime honours `option`.
    fn support(&self, option: RunOption) -> Support;

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

    /// Runs `exec` in the live run `id` whose directory is `run_dir`: in its namespaces and
    /// cgroup, under the workload's confinement. Blocks until the command exits, forwarding
    /// signals (and proxying a pty with `exec.tty`), and returns how it ended; with
    /// `exec.detach` it returns once the command is executed. A run that is not running is
    /// an error. Only called when [`Runtime::support`] honours [`RunOption::Exec`].
    fn exec(&self, id: &str, run_dir: &Path, exec: &ExecSpec) -> Result<ExitOutcome, RuntimeError>;

    /// Removes whatever a run with this id may have left behind after a crash of vmc
    /// (mounts, cgroups, processes, scratch directories under `run_dir`) and what it keeps
    /// for a later run (a container's writable layer): `vmc rm` and `--rm` call it.
    /// Idempotent.
    fn cleanup(&self, id: &str, run_dir: &Path) -> Result<(), RuntimeError>;
}
