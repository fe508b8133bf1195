//! vmc's container run mode.
//!
//! [`ContainerRuntime`] implements [`vmc_runtime::Runtime`]:
//!
//! 1. one `clone` makes the PID, mount, UTS, IPC and network namespaces (plus a user namespace
//!    with a one-id map when vmc is not root);
//! 2. while vmc creates the cgroup `vmc/<id>` and moves the child into it, the child makes its
//!    mount tree private, mounts an overlay (lower = the image's rootfs, upper and work under
//!    the run's directory), builds /proc, a tmpfs /dev, devpts, /dev/shm and a read-only /sys,
//!    binds volumes, `pivot_root`s and detaches the old root, sets the host name and brings
//!    loopback up;
//! 3. the child waits for vmc's "go" (it is in the cgroup now), unshares a cgroup namespace,
//!    switches user and executes the workload, which becomes PID 1 of the container (no init
//!    in between, as with `docker run` without `--init`: a PID 1 without a handler ignores
//!    SIGTERM/SIGINT, so vmc kills the workload after three interrupts);
//! 4. vmc forwards signals, proxies a pty with `--tty`, reaps the workload, reports OOM kills
//!    and removes the cgroup and the overlay directories. The mounts die with the namespace.

#![warn(missing_docs)]

pub mod cgroups;
mod child;
pub mod command;
pub mod error;
pub mod namespaces;
pub mod plan;
mod report;
mod runtime;
mod signals;
mod tty;

pub use cgroups::CgroupMemory;
pub use error::ContainerError;
pub use runtime::{ContainerRuntime, Output};
