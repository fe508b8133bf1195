//! The errors of the run store, the logs, the control channel and the supervisor.

/// What can go wrong with runs; each message names the problem and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum RunsError {
    /// A file or system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// A record, spec or log line that is not valid JSON.
    #[error("{what}: {source}")]
    Json {
        /// What was being read or written.
        what: String,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// No run has this name or id prefix.
    #[error("no such run: {0} (see `vmc ps -a`)")]
    NoSuchRun(String),
    /// More than one run id starts with this prefix.
    #[error("run id prefix {0} is ambiguous: give more digits")]
    AmbiguousRun(String),
    /// The kernel is too old to signal a process safely.
    #[error("cannot signal process {0} safely: pidfd_open needs Linux 5.3 or newer; stop that vmc yourself, then run `vmc rm` again")]
    NoPidfd(i32),
    /// The run is not running, so it cannot be signalled or stopped.
    #[error("run {0} is not running (see `vmc ps -a`)")]
    NotRunning(String),
    /// The run is running, so it cannot be started or removed.
    #[error("run {0} is running: stop it first (`vmc stop {0}`), or use -f")]
    Running(String),
    /// A run of an older vmc without a saved spec cannot be started again.
    #[error("run {0} was made by an older vmc that kept no spec: it cannot be started again; run the image anew")]
    NoSpec(String),
    /// The supervisor ended before the workload started, with this message.
    #[error("{0}")]
    Setup(String),
}

impl RunsError {
    /// An I/O error while doing `what`.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        RunsError::Io {
            what: what.into(),
            source,
        }
    }

    /// A JSON error while reading or writing `what`.
    pub fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        RunsError::Json {
            what: what.into(),
            source,
        }
    }
}

/// The result of the run store's operations.
pub type Result<T, E = RunsError> = std::result::Result<T, E>;
