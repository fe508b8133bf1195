//! Why the guest init could not run the workload.

use nix::errno::Errno;

/// A failure of the init before or while it supervises the workload (reported as status 125).
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// `ioperm` on the exit device's ports failed.
    #[error("ioperm on the VMM exit device ports 0x600-0x607: {0} (the guest kernel needs CONFIG_X86_IOPL_IOPERM=y; vmc-init only runs as PID 1 of a vmc microVM)")]
    ExitDevice(Errno),
    /// A pseudo filesystem could not be mounted.
    #[error("mounting {fstype} on {target}: {errno}")]
    Mount {
        /// The filesystem type.
        fstype: &'static str,
        /// The mount point.
        target: &'static str,
        /// The error.
        errno: Errno,
    },
    /// A disk holding the root filesystem could not be mounted.
    #[error(
        "mounting {device} ({fstype}) on {target}: {errno}{}",
        parenthesized(hint)
    )]
    DiskMount {
        /// The disk's device node.
        device: &'static str,
        /// Its filesystem type.
        fstype: &'static str,
        /// The mount point.
        target: &'static str,
        /// The error.
        errno: Errno,
        /// What the error most likely means (may be empty).
        hint: &'static str,
    },
    /// Switching root into the disk-backed overlay failed.
    #[error("switching root: {step} {path}: {errno}")]
    SwitchRoot {
        /// The step that failed.
        step: &'static str,
        /// The path it worked on.
        path: String,
        /// The error.
        errno: Errno,
    },
    /// A file operation on the guest's root filesystem failed.
    #[error("{action} {path}: {source}")]
    Fs {
        /// What the init was doing ("creating", "removing").
        action: &'static str,
        /// The path.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The per-run settings could not be read.
    #[error("reading {path}: {source} (the per-run archive is missing from the initramfs)")]
    ReadConfig {
        /// The settings path.
        path: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The per-run settings are invalid.
    #[error(transparent)]
    Config(#[from] vmc_protocol::ConfigError),
    /// The host name could not be set.
    #[error("setting the host name: {0}")]
    Hostname(Errno),
    /// The loopback interface could not be brought up.
    #[error("bringing up the loopback interface: {0}")]
    Loopback(Errno),
    /// A stream of the host↔guest channel could not be connected.
    #[error("connecting the {} stream to the host (vsock port {}): {errno} (the guest kernel needs CONFIG_VIRTIO_VSOCKETS, the VMM a vsock device)", .stream.name(), .stream.port())]
    Channel {
        /// The stream.
        stream: vmc_protocol::channel::Stream,
        /// The error.
        errno: Errno,
    },
    /// The pseudo-terminal of a `-t` run could not be set up.
    #[error("setting up the workload's terminal: {0} (the guest kernel needs CONFIG_UNIX98_PTYS)")]
    Terminal(Errno),
    /// The workload's stdin, stdout or stderr could not be connected.
    #[error("connecting the workload's stdio: {0}")]
    Stdio(Errno),
    /// The console's terminal settings could not be changed.
    #[error("configuring the console: {0}")]
    Console(Errno),
    /// The workload's working directory could not be entered.
    #[error("changing into the working directory {path:?}: {}", .errno.desc().to_lowercase())]
    Workdir {
        /// The working directory.
        path: String,
        /// The error.
        errno: Errno,
    },
    /// The workload's user or groups could not be set.
    #[error("setting user {uid} and group {gid}: {errno}")]
    Credentials {
        /// The user id.
        uid: u32,
        /// The group id.
        gid: u32,
        /// The error.
        errno: Errno,
    },
    /// Signals could not be blocked or waited for, or the workload could not be forked or reaped.
    #[error("{what}: {errno}")]
    Supervise {
        /// The operation that failed.
        what: &'static str,
        /// The error.
        errno: Errno,
    },
}

/// `" (text)"`, or nothing for an empty text.
fn parenthesized(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(" ({text})")
    }
}
