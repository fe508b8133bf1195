//! The errors the container runtime reports before a workload starts.

use std::path::PathBuf;

/// Why a container could not be started or cleaned up. Each message is one line naming the
/// problem and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The host has no usable cgroup filesystem.
    #[error("no cgroup filesystem found at {0}: mount cgroup2 there (or cgroup v1 controllers) to run containers")]
    NoCgroups(PathBuf),
    /// A controller the run needs is not available.
    #[error("the cgroup controller {controller:?} is not available under {root}: enable it (v2: add it to cgroup.subtree_control; v1: mount its hierarchy)")]
    MissingController {
        /// The controller's name (memory, cpu, pids).
        controller: &'static str,
        /// The cgroup mount the controller was looked for in.
        root: PathBuf,
    },
    /// A cgroup file or directory could not be created, written or removed.
    #[error("cgroup {action} {path}: {source}")]
    Cgroup {
        /// What was being done ("cannot create", "cannot write …").
        action: String,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A run's cgroup still holds processes after they were killed.
    #[error(
        "cgroup {0} still has processes after SIGKILL: inspect them with `cat {0}/cgroup.procs`"
    )]
    CgroupBusy(PathBuf),
    /// The run's scratch directories could not be made or removed.
    #[error("cannot {action} {path}: {source}")]
    RunDir {
        /// What was being done.
        action: &'static str,
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `vmc exec` was given a run whose workload is not running.
    #[error("run {0} is not running: `vmc exec` needs a running container (see `vmc ps`)")]
    NotRunning(String),
    /// The image's root filesystem is missing.
    #[error("the image rootfs {0} does not exist: re-import the image")]
    MissingRootfs(PathBuf),
    /// The spec contains a string the kernel cannot take (an interior NUL byte).
    #[error("invalid {what} {value:?}: it contains a NUL byte")]
    NulByte {
        /// Which field.
        what: &'static str,
        /// The offending value.
        value: String,
    },
    /// The spec asks for something this runtime cannot honour.
    #[error("{0}")]
    Unsupported(String),
    /// Unprivileged user namespaces are disabled on this host.
    #[error("cannot create a user namespace as uid {uid}: {source} (run as root, or allow unprivileged user namespaces: sysctl -w kernel.unprivileged_userns_clone=1 / user.max_user_namespaces=15000)")]
    UserNamespace {
        /// vmc's uid.
        uid: u32,
        /// The clone error.
        source: nix::Error,
    },
    /// `--cap-add`/`--cap-drop` named no capability.
    #[error("unknown capability {name:?} in {flag}: give a name such as NET_ADMIN or CAP_NET_ADMIN (see capabilities(7)), or ALL")]
    UnknownCapability {
        /// The option.
        flag: &'static str,
        /// The name as given.
        name: String,
    },
    /// A seccomp profile could not be parsed or compiled.
    #[error("seccomp profile {profile}: {problem}")]
    SeccompProfile {
        /// Which profile (a path, or Docker's default).
        profile: String,
        /// What is wrong, naming the field.
        problem: String,
    },
    /// A system call of the parent side failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: String,
        /// The error.
        source: nix::Error,
    },
    /// A path of the image (working directory, volume target) cannot be resolved inside it.
    #[error(transparent)]
    Rootfs(#[from] vmc_runtime::rootfs::RootfsError),
    /// The user's home cannot be looked up in the image.
    #[error(transparent)]
    User(#[from] vmc_runtime::user::UserError),
    /// A signal ended the run before the workload started.
    #[error(transparent)]
    Interrupted(#[from] vmc_runtime::signals::Interrupted),
    /// The container's setup process failed; the message comes from inside the container.
    #[error("container setup failed: {0}")]
    Setup(String),
}

impl ContainerError {
    /// Wraps a failed system call with what was being done.
    pub(crate) fn sys(what: impl Into<String>, source: nix::Error) -> Self {
        ContainerError::Sys {
            what: what.into(),
            source,
        }
    }
}
