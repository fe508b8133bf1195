//! vmc's runs, whatever their mode: the records and run directories under `$VMC_HOME/runs`,
//! Docker's states (Created, Up, Exited (N), Dead), the log of a detached run (Docker's
//! json-file lines), the control channel `vmc kill`/`stop` write to, and the supervisor that
//! holds a detached run. The CLI only parses and prints.

pub mod control;
pub mod error;
pub mod follow;
pub mod log;
pub mod process;
pub mod record;
pub mod store;
pub mod supervision;
pub mod supervisor;
pub mod wait;

pub use error::RunsError;
pub use record::{RunRecord, RunStatus};
pub use store::{new_run_id, RunStore};
pub use supervision::Supervision;
