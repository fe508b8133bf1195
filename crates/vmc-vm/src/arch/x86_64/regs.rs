//! vCPU register state at boot: long mode for the boot vCPU, FPU/MSR/LAPIC defaults for all.

use super::gdt::{self, CODE_INDEX, DATA_INDEX, TSS_INDEX};
use super::layout::{BOOT_STACK_POINTER, GDT_ADDR, IDT_ADDR, PML4_ADDR, ZERO_PAGE_ADDR};
use kvm_bindings::{kvm_fpu, kvm_lapic_state, kvm_msr_entry, kvm_regs, kvm_sregs, Msrs};

/// CR0: protected mode enable.
const CR0_PE: u64 = 1 << 0;
/// CR0: extension type (always 1 on modern CPUs).
const CR0_ET: u64 = 1 << 4;
/// CR0: paging.
const CR0_PG: u64 = 1 << 31;
/// CR4: physical address extension (required for long mode).
const CR4_PAE: u64 = 1 << 5;
/// EFER: long mode enable.
const EFER_LME: u64 = 1 << 8;
/// EFER: long mode active.
const EFER_LMA: u64 = 1 << 10;

/// The general-purpose registers of the boot vCPU: RIP at the kernel entry, RSI at the zero
/// page (the Linux 64-bit boot protocol), a small stack, interrupts off.
pub fn boot_regs(entry: u64) -> kvm_regs {
    kvm_regs {
        rflags: 0x2,
        rip: entry,
        rsp: BOOT_STACK_POINTER,
        rbp: BOOT_STACK_POINTER,
        rsi: ZERO_PAGE_ADDR,
        ..Default::default()
    }
}

/// Turns `sregs` (as read from a fresh vCPU) into 64-bit long mode with the boot GDT and the
/// identity page tables.
pub fn set_long_mode(sregs: &mut kvm_sregs, gdt: &[u64]) {
    let code = gdt::segment(gdt, CODE_INDEX);
    let data = gdt::segment(gdt, DATA_INDEX);
    sregs.gdt.base = GDT_ADDR;
    sregs.gdt.limit = (std::mem::size_of_val(gdt) - 1) as u16;
    sregs.idt.base = IDT_ADDR;
    sregs.idt.limit = 0;
    sregs.cs = code;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = gdt::segment(gdt, TSS_INDEX);
    sregs.cr3 = PML4_ADDR;
    sregs.cr4 |= CR4_PAE;
    sregs.cr0 |= CR0_PE | CR0_ET | CR0_PG;
    sregs.efer |= EFER_LME | EFER_LMA;
}

/// The FPU state after `FNINIT` plus the default MXCSR.
pub fn boot_fpu() -> kvm_fpu {
    kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    }
}

/// MSRs every vCPU starts with: syscall MSRs cleared, TSC at 0, fast strings on, MTRRs
/// enabled with write-back as the default memory type.
pub fn boot_msrs() -> Msrs {
    const MSR_IA32_SYSENTER_CS: u32 = 0x174;
    const MSR_IA32_SYSENTER_ESP: u32 = 0x175;
    const MSR_IA32_SYSENTER_EIP: u32 = 0x176;
    const MSR_STAR: u32 = 0xc000_0081;
    const MSR_LSTAR: u32 = 0xc000_0082;
    const MSR_CSTAR: u32 = 0xc000_0083;
    const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
    const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
    const MSR_IA32_TSC: u32 = 0x10;
    const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
    const MISC_ENABLE_FAST_STRING: u64 = 1;
    const MSR_MTRR_DEF_TYPE: u32 = 0x2ff;
    const MTRR_ENABLE: u64 = 1 << 11;
    const MTRR_TYPE_WRITE_BACK: u64 = 6;

    let entry = |index, data| kvm_msr_entry {
        index,
        data,
        ..Default::default()
    };
    let entries = [
        entry(MSR_IA32_SYSENTER_CS, 0),
        entry(MSR_IA32_SYSENTER_ESP, 0),
        entry(MSR_IA32_SYSENTER_EIP, 0),
        entry(MSR_STAR, 0),
        entry(MSR_CSTAR, 0),
        entry(MSR_KERNEL_GS_BASE, 0),
        entry(MSR_SYSCALL_MASK, 0),
        entry(MSR_LSTAR, 0),
        entry(MSR_IA32_TSC, 0),
        entry(MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING),
        entry(MSR_MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_TYPE_WRITE_BACK),
    ];
    Msrs::from_entries(&entries).expect("11 MSR entries fit in a KVM MSR list")
}

/// Offset of the LVT LINT0 register in the local APIC page.
const APIC_LVT_LINT0: usize = 0x350;
/// Offset of the LVT LINT1 register in the local APIC page.
const APIC_LVT_LINT1: usize = 0x360;
/// LVT delivery mode "ExtINT": the legacy 8259 PIC's interrupts arrive on this pin.
const APIC_MODE_EXTINT: u32 = 0x7;
/// LVT delivery mode "NMI".
const APIC_MODE_NMI: u32 = 0x4;

/// Wires LINT0 to the 8259 PIC (ExtINT) and LINT1 to NMI, as a PC's BIOS does (the virtual
/// wire mode the MP specification describes).
pub fn set_lint_pins(lapic: &mut kvm_lapic_state) {
    let set_mode = |regs: &mut [std::os::raw::c_char], offset: usize, mode: u32| {
        let mut bytes = [0u8; 4];
        for (byte, reg) in bytes.iter_mut().zip(&regs[offset..offset + 4]) {
            *byte = *reg as u8;
        }
        let value = (u32::from_le_bytes(bytes) & !0x700) | (mode << 8);
        for (reg, byte) in regs[offset..offset + 4].iter_mut().zip(value.to_le_bytes()) {
            *reg = byte as std::os::raw::c_char;
        }
    };
    set_mode(&mut lapic.regs, APIC_LVT_LINT0, APIC_MODE_EXTINT);
    set_mode(&mut lapic.regs, APIC_LVT_LINT1, APIC_MODE_NMI);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_regs_follow_the_64_bit_boot_protocol() {
        let regs = boot_regs(0x100_0000);
        assert_eq!(regs.rip, 0x100_0000);
        assert_eq!(regs.rsi, ZERO_PAGE_ADDR);
        assert_eq!(regs.rflags & (1 << 9), 0, "interrupts must be off");
    }

    #[test]
    fn long_mode_bits_are_set() {
        let mut sregs = kvm_sregs::default();
        set_long_mode(&mut sregs, &gdt::boot_gdt());
        assert_eq!(sregs.cr0 & (CR0_PE | CR0_PG), CR0_PE | CR0_PG);
        assert_ne!(sregs.cr4 & CR4_PAE, 0);
        assert_eq!(sregs.efer & (EFER_LME | EFER_LMA), EFER_LME | EFER_LMA);
        assert_eq!(sregs.cr3, PML4_ADDR);
        assert_eq!(sregs.cs.l, 1);
        assert_eq!(sregs.gdt.limit, 31);
    }

    #[test]
    fn lint_pins_get_extint_and_nmi() {
        let mut lapic = kvm_lapic_state::default();
        lapic.regs[APIC_LVT_LINT0 + 1] = 0x7f; // garbage in the delivery-mode bits
        set_lint_pins(&mut lapic);
        assert_eq!(lapic.regs[APIC_LVT_LINT0 + 1] as u8 & 0x7, 0x7);
        assert_eq!(lapic.regs[APIC_LVT_LINT0 + 1] as u8 & !0x7, 0x78);
        assert_eq!(lapic.regs[APIC_LVT_LINT1 + 1] as u8 & 0x7, 0x4);
    }
}
