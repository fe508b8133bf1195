//! Can this host's KVM run Linux guests? A millisecond-scale check with a tiny guest.
//!
//! Some KVM implementations (notably nested hypervisors without hardware support, such as a
//! PVM guest's /dev/kvm) run guests that only compute and do I/O, but fail with
//! KVM_EXIT_INTERNAL_ERROR the first time they must deliver an exception or interrupt to
//! the guest — and Linux takes both within milliseconds of booting. The probe guest runs
//! in 64-bit mode (set up like a Linux boot), installs an IDT, executes `int3`, then
//! programs the in-kernel 8259 PIC and PIT and waits with `hlt` for the timer interrupt,
//! reporting each step on I/O port 0x500. The probe itself caches nothing; VM runs cache its
//! verdict per host boot (`vmc_vm_runtime`), `vmc doctor` always measures.

use crate::arch::x86_64::layout::{GDT_ADDR, IDT_ADDR, KVM_TSS_ADDR};
use crate::arch::x86_64::{gdt, paging};
use crate::error::VmError;
use crate::{kick, memory, threads, vcpu, vm};
use kvm_bindings::{kvm_pit_config, KVM_MAX_CPUID_ENTRIES, KVM_PIT_SPEAKER_DUMMY};
use kvm_ioctls::{VcpuExit, VcpuFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vm_memory::{Bytes, GuestAddress};

/// The probe guest's code, loaded at [`CODE_ADDR`] (64-bit, assembled with GNU as):
///
/// ```text
///  0: 66 ba 00 05   mov $0x500,%dx
///  4: b0 01         mov $0x1,%al
///  6: ee            out %al,(%dx)      step 1: guest code runs
///  7: cc            int3               step 2 is reported by the #BP handler
///  8: b0 11         mov $0x11,%al
///  a: e6 20         out %al,$0x20      8259 ICW1: edge, cascade, ICW4 follows
///  c: b0 20         mov $0x20,%al
///  e: e6 21         out %al,$0x21      ICW2: IRQ0 = vector 0x20
/// 10: b0 04         mov $0x4,%al
/// 12: e6 21         out %al,$0x21      ICW3: slave on IRQ2
/// 14: b0 01         mov $0x1,%al
/// 16: e6 21         out %al,$0x21      ICW4: 8086 mode
/// 18: b0 fe         mov $0xfe,%al
/// 1a: e6 21         out %al,$0x21      OCW1: only IRQ0 unmasked
/// 1c: b0 34         mov $0x34,%al
/// 1e: e6 43         out %al,$0x43      PIT channel 0: lo/hi byte, mode 2
/// 20: 30 c0         xor %al,%al
/// 22: e6 40         out %al,$0x40
/// 24: b0 10         mov $0x10,%al
/// 26: e6 40         out %al,$0x40      count 0x1000 (~3.4 ms)
/// 28: fb            sti
/// 29: f4            hlt                step 3 is reported by the IRQ0 handler
/// 2a: eb fd         jmp 29
/// breakpoint (#BP, vector 3):
/// 2c: 66 ba 00 05   mov $0x500,%dx
/// 30: b0 02         mov $0x2,%al
/// 32: ee            out %al,(%dx)      step 2
/// 33: 48 cf         iretq
/// timer (vector 0x20):
/// 35: 66 ba 00 05   mov $0x500,%dx
/// 39: b0 03         mov $0x3,%al
/// 3b: ee            out %al,(%dx)      step 3
/// 3c: b0 20         mov $0x20,%al
/// 3e: e6 20         out %al,$0x20      EOI
/// 40: 48 cf         iretq
/// ```
const PROBE_CODE: [u8; 0x42] = [
    0x66, 0xba, 0x00, 0x05, 0xb0, 0x01, 0xee, 0xcc, 0xb0, 0x11, 0xe6, 0x20, 0xb0, 0x20, 0xe6, 0x21,
    0xb0, 0x04, 0xe6, 0x21, 0xb0, 0x01, 0xe6, 0x21, 0xb0, 0xfe, 0xe6, 0x21, 0xb0, 0x34, 0xe6, 0x43,
    0x30, 0xc0, 0xe6, 0x40, 0xb0, 0x10, 0xe6, 0x40, 0xfb, 0xf4, 0xeb, 0xfd, 0x66, 0xba, 0x00, 0x05,
    0xb0, 0x02, 0xee, 0x48, 0xcf, 0x66, 0xba, 0x00, 0x05, 0xb0, 0x03, 0xee, 0xb0, 0x20, 0xe6, 0x20,
    0x48, 0xcf,
];
/// Offset of the #BP handler in [`PROBE_CODE`].
const BREAKPOINT_HANDLER: u64 = 0x2c;
/// Offset of the IRQ0 handler in [`PROBE_CODE`].
const TIMER_HANDLER: u64 = 0x35;
/// Vector of the breakpoint exception.
const BREAKPOINT_VECTOR: usize = 3;
/// Vector the guest programs the PIC to use for IRQ0.
const TIMER_VECTOR: usize = 0x20;
/// Where the probe code is loaded.
const CODE_ADDR: u64 = 0x1_0000;
/// The port the probe guest reports its steps on.
const PROBE_PORT: u16 = 0x500;
/// The last step: the timer interrupt's handler ran.
const LAST_STEP: u8 = 3;
/// Guest RAM of the probe VM.
const PROBE_MEMORY: u64 = 2 << 20;
/// How long the probe guest may take before the probe gives up.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Whether `/dev/kvm` can be used by this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvmAccess {
    /// Opened; the KVM API version and the vCPU limit per VM.
    Available {
        /// KVM_GET_API_VERSION (12 on every current kernel).
        api_version: i32,
        /// KVM_CAP_MAX_VCPUS.
        max_vcpus: usize,
    },
    /// Not usable; the one-line reason with its fix.
    Unavailable(String),
}

/// What the probe guest showed about this host's KVM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Exceptions and interrupts reach the guest: Linux guests can boot.
    Full,
    /// KVM stopped the guest at its first exception/interrupt (KVM_EXIT_INTERNAL_ERROR).
    NoGuestInterrupts {
        /// The step the guest reached and the exit.
        detail: String,
    },
    /// Something else went wrong.
    Failed {
        /// What happened.
        detail: String,
    },
}

impl Verdict {
    /// One line for `vmc doctor`.
    pub fn message(&self) -> String {
        match self {
            Verdict::Full => "KVM delivers exceptions and interrupts to guests: Linux guests can boot".into(),
            Verdict::NoGuestInterrupts { detail } => format!(
                "this host's KVM cannot deliver exceptions/interrupts to guests (nested virtualization without hardware support, e.g. a PVM nested hypervisor; {detail}); run VM mode through scripts/kvm-sandbox or on a host with hardware KVM"
            ),
            Verdict::Failed { detail } => format!("the KVM probe guest failed: {detail}"),
        }
    }
}

/// The probe's findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// Whether /dev/kvm could be opened.
    pub access: KvmAccess,
    /// The probe guest's verdict (`None` when KVM is unavailable).
    pub verdict: Option<Verdict>,
    /// How long the probe took.
    pub elapsed: Duration,
}

/// Runs the probe.
pub fn probe() -> ProbeReport {
    let started = Instant::now();
    let kvm = match vm::open_kvm() {
        Ok(kvm) => kvm,
        Err(err) => {
            return ProbeReport {
                access: KvmAccess::Unavailable(err.to_string()),
                verdict: None,
                elapsed: started.elapsed(),
            }
        }
    };
    let access = KvmAccess::Available {
        api_version: kvm.get_api_version(),
        max_vcpus: kvm.get_max_vcpus(),
    };
    let verdict = match run_probe_guest(&kvm) {
        Ok(verdict) => verdict,
        Err(err) => Verdict::Failed {
            detail: err.to_string(),
        },
    };
    ProbeReport {
        access,
        verdict: Some(verdict),
        elapsed: started.elapsed(),
    }
}

/// How the probe vCPU's run ended.
enum ProbeEnd {
    /// All steps reported.
    Done,
    /// KVM_EXIT_INTERNAL_ERROR with this suberror at this RIP.
    InternalError(u32, u64),
    /// Another exit or failure, described.
    Other(String),
    /// Stopped by the timeout.
    TimedOut,
}

/// Builds the probe VM and runs it (on its own thread, with a timeout).
fn run_probe_guest(kvm: &kvm_ioctls::Kvm) -> Result<Verdict, VmError> {
    let kvm_err = |what| move |source| VmError::Kvm { what, source };
    let vm = kvm.create_vm().map_err(kvm_err("KVM_CREATE_VM"))?;
    vm.set_tss_address(KVM_TSS_ADDR)
        .map_err(kvm_err("KVM_SET_TSS_ADDR"))?;
    vm.create_irq_chip()
        .map_err(kvm_err("KVM_CREATE_IRQCHIP"))?;
    vm.create_pit2(kvm_pit_config {
        flags: KVM_PIT_SPEAKER_DUMMY,
        ..Default::default()
    })
    .map_err(kvm_err("KVM_CREATE_PIT2"))?;
    let ram = memory::create(&vm, PROBE_MEMORY)?;
    let write = |addr: u64, bytes: &[u8]| {
        ram.write_slice(bytes, GuestAddress(addr))
            .map_err(|e| VmError::GuestMemory(e.to_string()))
    };
    let gdt_bytes: Vec<u8> = gdt::boot_gdt()
        .iter()
        .flat_map(|e| e.to_le_bytes())
        .collect();
    write(GDT_ADDR, &gdt_bytes)?;
    for (addr, table) in paging::identity_tables() {
        let bytes: Vec<u8> = table.iter().flat_map(|e| e.to_le_bytes()).collect();
        write(addr, &bytes)?;
    }
    write(CODE_ADDR, &PROBE_CODE)?;
    let mut idt = vec![0u8; 16 * (TIMER_VECTOR + 1)];
    for (vector, handler) in [
        (BREAKPOINT_VECTOR, BREAKPOINT_HANDLER),
        (TIMER_VECTOR, TIMER_HANDLER),
    ] {
        idt[vector * 16..vector * 16 + 16].copy_from_slice(&interrupt_gate(CODE_ADDR + handler));
    }
    write(IDT_ADDR, &idt)?;

    let supported = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(kvm_err("KVM_GET_SUPPORTED_CPUID"))?;
    let (fd, _) = vcpu::create(&vm, 0, 1, &supported, CODE_ADDR)?;
    let mut sregs = fd.get_sregs().map_err(kvm_err("KVM_GET_SREGS"))?;
    sregs.idt.limit = (idt.len() - 1) as u16;
    fd.set_sregs(&sregs).map_err(kvm_err("KVM_SET_SREGS"))?;

    kick::install()?;
    let stop = Arc::new(AtomicBool::new(false));
    let (steps, received) = mpsc::channel();
    let thread_stop = Arc::clone(&stop);
    // From the VMM's thread launcher once it runs: a thread that ran a VM cannot run guests.
    let thread = threads::spawn(
        "start the probe vCPU thread",
        "vmc-kvm-probe".into(),
        None,
        move || {
            kick::unblock_in_this_thread();
            run_vcpu(fd, &thread_stop, &steps)
        },
    )?;
    let deadline = Instant::now() + TIMEOUT;
    let mut reached = 0u8;
    loop {
        match received.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(step) => reached = reached.max(step),
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                stop.store(true, Ordering::SeqCst);
                while !thread.is_finished() {
                    kick::kick(&thread);
                    std::thread::sleep(Duration::from_millis(1));
                }
                break;
            }
        }
    }
    let end = thread
        .join()
        .ok()
        .flatten()
        .unwrap_or(ProbeEnd::Other("the probe vCPU thread panicked".into()));
    let step_name = match reached {
        0 => "before its first instruction reported",
        1 => "at its first exception (int3)",
        2 => "waiting for its first timer interrupt",
        _ => "after its timer interrupt",
    };
    Ok(match end {
        ProbeEnd::Done => Verdict::Full,
        ProbeEnd::InternalError(suberror, rip) => Verdict::NoGuestInterrupts {
            detail: format!(
                "KVM_EXIT_INTERNAL_ERROR suberror {suberror} at RIP {rip:#x}, {step_name}"
            ),
        },
        ProbeEnd::Other(what) => Verdict::Failed {
            detail: format!("{what}, {step_name}"),
        },
        ProbeEnd::TimedOut => Verdict::Failed {
            detail: format!("no progress within {} s, {step_name}", TIMEOUT.as_secs()),
        },
    })
}

/// A present 64-bit interrupt gate to `handler` in the boot code segment.
fn interrupt_gate(handler: u64) -> [u8; 16] {
    const PRESENT_INTERRUPT_GATE: u8 = 0x8e;
    let selector = gdt::CODE_INDEX * 8;
    let mut gate = [0u8; 16];
    gate[0..2].copy_from_slice(&(handler as u16).to_le_bytes());
    gate[2..4].copy_from_slice(&selector.to_le_bytes());
    gate[5] = PRESENT_INTERRUPT_GATE;
    gate[6..8].copy_from_slice(&((handler >> 16) as u16).to_le_bytes());
    gate[8..12].copy_from_slice(&((handler >> 32) as u32).to_le_bytes());
    gate
}

/// The probe vCPU's loop: forwards the reported steps until the last one, or a failure.
fn run_vcpu(mut fd: VcpuFd, stop: &AtomicBool, steps: &mpsc::Sender<u8>) -> ProbeEnd {
    loop {
        if stop.load(Ordering::SeqCst) {
            return ProbeEnd::TimedOut;
        }
        match fd.run() {
            Ok(VcpuExit::IoOut(PROBE_PORT, [step])) => {
                let step = *step;
                let _ = steps.send(step);
                if step == LAST_STEP {
                    return ProbeEnd::Done;
                }
            }
            Ok(VcpuExit::InternalError) => {
                // SAFETY: the exit was KVM_EXIT_INTERNAL_ERROR, so the `internal` member of
                // the kvm_run union is the valid one.
                let suberror = unsafe { fd.get_kvm_run().__bindgen_anon_1.internal.suberror };
                let rip = fd.get_regs().map(|r| r.rip).unwrap_or(0);
                return ProbeEnd::InternalError(suberror, rip);
            }
            Ok(other) => {
                let what = format!("unexpected exit {other:?}");
                let rip = fd.get_regs().map(|r| r.rip).unwrap_or(0);
                return ProbeEnd::Other(format!("{what} at RIP {rip:#x}"));
            }
            Err(err) if err.errno() == libc::EINTR || err.errno() == libc::EAGAIN => {}
            Err(err) => return ProbeEnd::Other(format!("KVM_RUN failed: {err}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupt_gate_encodes_handler_and_selector() {
        let gate = interrupt_gate(0x1234_5678_9abc_def0);
        assert_eq!(&gate[0..2], &[0xf0, 0xde]);
        assert_eq!(&gate[2..4], &[0x08, 0x00]);
        assert_eq!(gate[4], 0, "no IST");
        assert_eq!(gate[5], 0x8e);
        assert_eq!(&gate[6..8], &[0xbc, 0x9a]);
        assert_eq!(&gate[8..12], &[0x78, 0x56, 0x34, 0x12]);
    }

    #[test]
    fn handlers_are_where_the_listing_says() {
        assert_eq!(
            &PROBE_CODE[BREAKPOINT_HANDLER as usize..][..4],
            &[0x66, 0xba, 0x00, 0x05]
        );
        assert_eq!(PROBE_CODE[BREAKPOINT_HANDLER as usize + 5], 2);
        assert_eq!(PROBE_CODE[TIMER_HANDLER as usize + 5], 3);
        assert_eq!(
            &PROBE_CODE[PROBE_CODE.len() - 2..],
            &[0x48, 0xcf],
            "ends in iretq"
        );
    }
}
