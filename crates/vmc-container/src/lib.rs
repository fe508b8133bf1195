//! vmc's container run mode.
//!
//! [`ContainerRuntime`] implements [`vmc_runtime::Runtime`]:
//!
//! 1. vmc creates the run's cgroup `vmc/<id>` with its limits (v2; v1: in the hierarchies of
//!    the limits, plus `unified/` on hybrid hosts), then one `clone3` makes the PID, mount,
//!    UTS, IPC and network namespaces (plus a user namespace with a one-id map when vmc is not
//!    root), with the child born in the run's cgroup2 directory (`CLONE_INTO_CGROUP`); while
//!    the child works, vmc makes `vmc/<id>` in the other v1 hierarchies and applies Docker's
//!    device rules;
//! 2. the child joins the run's v1 cgroups (it writes 0 to `tasks` itself, which avoids an RCU
//!    grace period), makes its mount tree private, mounts the overlay (lower = the image's
//!    read-only rootfs, upper and work = the run's [`WritableLayer`] on the host's disk),
//!    builds /proc, a tmpfs /dev, devpts, /dev/shm and a read-only
//!    /sys, binds volumes, masks Docker's masked paths and makes its read-only ones read-only,
//!    `pivot_root`s and detaches the old root, sets the host name, brings
//!    loopback up and makes the working directory;
//! 3. the child waits for vmc's "go", joins the other v1 hierarchies, unshares a cgroup
//!    namespace, mounts the cgroup filesystem read-only at /sys/fs/cgroup (its root is now
//!    the run's cgroup), confines itself as Docker does ([`security`]: capabilities, seccomp
//!    filter, no_new_privs),
//!    switches user and executes the workload, which becomes PID 1 of the container (no init
//!    in between, as with `docker run` without `--init`: a PID 1 without a handler ignores
//!    SIGTERM/SIGINT, so vmc kills the workload after three interrupts);
//! 4. vmc forwards signals, proxies a pty with `--tty`, reaps the workload, reports OOM kills
//!    and removes the cgroup. The mounts die with the namespace; the writable layer stays in
//!    the run's directory until [`vmc_runtime::Runtime::cleanup`] (`vmc rm`, `--rm`).

#![warn(missing_docs)]

pub mod cgroups;
mod child;
pub mod error;
mod exec;
pub mod layer;
mod live;
pub mod masks;
pub mod namespaces;
pub mod plan;
mod report;
mod runtime;
pub mod security;
mod spawn;
mod tty;

pub use cgroups::CgroupMemory;
pub use error::ContainerError;
pub use layer::WritableLayer;
pub use runtime::{ContainerRuntime, Output};
