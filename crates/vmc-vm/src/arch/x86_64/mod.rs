//! x86_64 direct boot: the guest starts in 64-bit long mode at the kernel's entry point with
//! `RSI` pointing at the Linux `boot_params` ("zero page"), like Firecracker and the rust-vmm
//! reference VMM do. Each module builds one piece of the machine state the Linux boot protocol
//! expects a boot loader to leave behind.

pub mod boot_params;
pub mod cpuid;
pub mod gdt;
pub mod layout;
pub mod mptable;
pub mod paging;
pub mod regs;
