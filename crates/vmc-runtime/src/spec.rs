//! What to run, independent of the mode that runs it.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The two ways vmc runs an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A KVM microVM with statically allocated RAM and vCPUs.
    Vm,
    /// A namespace container under cgroup limits.
    Container,
}

impl Mode {
    /// The mode's name as the CLI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Vm => "vm",
            Mode::Container => "container",
        }
    }
}

/// Network setup for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// A private network namespace with only loopback up.
    #[default]
    None,
    /// Share the host's network (container mode only).
    Host,
}

/// Resource limits. Containers enforce them with cgroups; a VM allocates them up front.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Resources {
    /// Memory limit (container) or guest RAM size (VM), in bytes.
    pub memory_bytes: Option<u64>,
    /// CPU quota in CPUs (container) or number of vCPUs (VM, rounded up).
    pub cpus: Option<f64>,
    /// Maximum number of processes (container only).
    pub pids_limit: Option<i64>,
}

/// A host directory made visible inside the workload (`-v HOST:CTR[:ro]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    /// Absolute path on the host.
    pub host: PathBuf,
    /// Absolute path inside the workload's root.
    pub target: PathBuf,
    /// Mount read-only.
    pub readonly: bool,
}

/// Which seccomp filter confines the workload (container) or the VMM (VM).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeccompPolicy {
    /// vmc's default: Docker's default profile for a container, Firecracker-style per-thread
    /// filters for the VMM.
    #[default]
    Default,
    /// No filter (`--security-opt seccomp=unconfined`).
    Unconfined,
    /// A profile in Docker's JSON format (`--security-opt seccomp=FILE.json`, container).
    Profile(PathBuf),
}

/// How far the workload is confined beyond its namespaces (`--cap-add`, `--cap-drop`,
/// `--privileged`, `--security-opt`). The default is Docker's default confinement.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Security {
    /// Every capability, no seccomp filter, no masked paths, all devices (`--privileged`).
    pub privileged: bool,
    /// Capabilities added to the default set, as given (`NET_ADMIN`, `CAP_NET_ADMIN`, `ALL`).
    pub cap_add: Vec<String>,
    /// Capabilities removed from the default set, as given (`ALL` removes every one).
    pub cap_drop: Vec<String>,
    /// The seccomp filter.
    pub seccomp: SeccompPolicy,
    /// Set no_new_privs: setuid files and file capabilities grant nothing.
    pub no_new_privileges: bool,
}

/// Everything a runtime needs to run one workload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSpec {
    /// Unique id of this run (64 hex digits; the first 12 are shown).
    pub id: String,
    /// The image's id (sha256 digest of its manifest, hex).
    pub image_id: String,
    /// The image's unpacked, read-only root filesystem (shared by all runs of the image).
    pub rootfs: PathBuf,
    /// Per-run scratch directory, removed when the run is removed.
    pub run_dir: PathBuf,
    /// The full argv of the workload (entrypoint + command, already resolved).
    pub args: Vec<String>,
    /// Environment as `KEY=VALUE` strings.
    pub env: Vec<String>,
    /// Working directory inside the workload's root.
    pub workdir: String,
    /// Numeric user id the workload runs as.
    pub uid: u32,
    /// Numeric group id the workload runs as.
    pub gid: u32,
    /// Host name inside the workload.
    pub hostname: String,
    /// Limits (container) or static sizes (VM).
    pub resources: Resources,
    /// Network setup.
    pub network: NetworkMode,
    /// Host directories to bind into the workload.
    pub mounts: Vec<BindMount>,
    /// Give the workload a pseudo-terminal (`-t`).
    pub tty: bool,
    /// Keep the workload's stdin connected (`-i`).
    pub interactive: bool,
    /// Capabilities, seccomp and privileges.
    #[serde(default)]
    pub security: Security,
    /// The run is removed when it ends (`--rm`), its writable layer with it: the layer need
    /// not survive a crash of the host.
    #[serde(default)]
    pub auto_remove: bool,
}

impl RunSpec {
    /// The short form of the run id, as `vmc ps` shows it.
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }
}

/// A command to start in a live run (`vmc exec`). What it leaves unset comes from the run:
/// its user, working directory and environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecSpec {
    /// The command and its arguments (looked up in the run's `PATH`).
    pub args: Vec<String>,
    /// `KEY=VALUE` strings added to the run's environment, replacing its values (`-e`).
    pub env: Vec<String>,
    /// The working directory (absolute), else the run's (`-w`).
    pub workdir: Option<String>,
    /// `USER[:GROUP]` resolved against the run's /etc/passwd and /etc/group, else the run's
    /// user (`-u`).
    pub user: Option<String>,
    /// A pseudo-terminal (`-t`).
    pub tty: bool,
    /// Keep stdin connected (`-i`).
    pub interactive: bool,
    /// Return once the command is started; its output goes nowhere (`-d`).
    pub detach: bool,
}
