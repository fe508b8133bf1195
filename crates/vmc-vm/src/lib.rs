//! vmc's KVM microVM monitor, built on the rust-vmm crates.
//!
//! [`Vm::create`] turns a [`VmConfig`] into a ready VM — KVM VM with in-kernel interrupt
//! controllers and PIT, exactly `memory_bytes` of guest RAM, the kernel (ELF vmlinux or
//! bzImage) and initrd loaded for a direct 64-bit boot, COM1 / i8042 / exit devices, and one
//! vCPU per `vcpus` — and [`Vm::run`] runs it until the guest resets. [`probe::probe`] tells
//! whether this host's KVM can run Linux guests at all.

pub mod arch;
mod boot;
pub mod config;
pub mod devices;
pub mod error;
pub mod kernel;
mod kick;
pub mod memory;
pub mod probe;
mod vcpu;
mod vm;

pub use config::VmConfig;
pub use error::VmError;
pub use memory::RamRegion;
pub use vm::{open_kvm, ExitReason, Vm, VmExit};
