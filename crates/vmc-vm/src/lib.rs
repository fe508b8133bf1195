//! vmc's KVM microVM monitor, built on the rust-vmm crates.
//!
//! [`Vm::create`] turns a [`VmConfig`] into a ready VM — KVM VM with in-kernel interrupt
//! controllers and PIT, exactly `memory_bytes` of guest RAM, the kernel (ELF vmlinux or
//! bzImage) and initrd loaded for a direct 64-bit boot, COM1 (the kernel's console, to
//! stdout) / i8042 / exit devices on the device bus, one virtio-blk disk per
//! [`VmConfig::disks`] entry and the virtio-vsock channel carrying the workload's stdio and
//! vmc's signals ([`VmConfig::vsock`]; virtio-mmio, served by the device event-loop thread),
//! and one vCPU per `vcpus` — and [`Vm::run`] runs it until the guest resets.
//! [`probe::probe`] tells whether this host's KVM can run Linux guests at all.
//!
//! Unless [`VmConfig::seccomp`] says otherwise, `Vm::run` confines the VMM as Firecracker
//! does: a seccomp filter per kind of thread (the run's own thread "vmc-vm", the vCPU threads,
//! the device event loop, the stream and signal threads), each installed before the guest
//! runs. The thread that calls `Vm::run` only waits for the run's thread, so it stays
//! unconfined: a process may build another image's disk or start a container afterwards.
//!
//! Timing points recorded in the run's [`Timeline`](vmc_runtime::Timeline):
//! - `RuntimeReady`: `Vm::create` finished (VM, RAM, kernel, devices, vCPU registers).
//! - `KernelEntry`: the instant vCPU 0 first calls KVM_RUN with RIP at the kernel's 64-bit
//!   entry point, i.e. when the guest's first instruction is handed to the CPU. (The first
//!   exit back to the VMM is recorded as a trace step, "first guest exit: …".)
//! - `InitStarted`, `WorkloadExec`, `WorkloadExit`: the instants the guest init's writes to
//!   the exit device trapped (see [`devices::exit_device`]).

pub mod arch;
mod boot;
pub mod config;
pub mod devices;
pub mod error;
pub mod kernel;
mod kick;
pub mod memory;
pub mod probe;
mod seccomp;
mod signals;
mod threads;
mod vcpu;
mod vm;

pub use config::{DiskConfig, VmConfig, VmmSeccomp, VsockConfig};
pub use error::VmError;
pub use memory::RamRegion;
pub use vm::{open_kvm, ExitReason, Vm, VmExit};
