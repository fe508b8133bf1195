//! vCPUs: their boot state (CPUID, MSRs, FPU, LAPIC, long-mode registers) and the run loop
//! each vCPU thread executes.

use crate::arch::x86_64::{cpuid, gdt, regs};
use crate::devices::bus::{Bus, BusEffect, Space};
use crate::devices::exit_device::ExitDeviceEvent;
use crate::devices::serial::SerialConsole;
use crate::error::VmError;
use kvm_bindings::CpuId;
use kvm_ioctls::{VcpuExit, VcpuFd, VmFd};
use std::io::Stdout;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use vmc_runtime::Milestone;

/// Shorthand for a failed vCPU ioctl.
fn kvm_err(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> VmError {
    move |source| VmError::Kvm { what, source }
}

/// Creates vCPU `index` of `count` and gives it its boot state. `supported` is
/// KVM_GET_SUPPORTED_CPUID; `entry` is the kernel entry point (used for vCPU 0 only; the
/// others wait for the guest's INIT/SIPI in the in-kernel LAPIC). Returns the vCPU and its
/// TSC frequency in kHz, if KVM reports one.
pub fn create(
    vm: &VmFd,
    index: u8,
    count: u8,
    supported: &CpuId,
    entry: u64,
) -> Result<(VcpuFd, Option<u32>), VmError> {
    let fd = vm
        .create_vcpu(u64::from(index))
        .map_err(kvm_err("KVM_CREATE_VCPU"))?;
    let tsc_khz = fd.get_tsc_khz().ok().filter(|khz| *khz > 0);
    let mut cpuid = supported.clone();
    cpuid::filter(&mut cpuid, index, count, tsc_khz);
    fd.set_cpuid2(&cpuid).map_err(kvm_err("KVM_SET_CPUID2"))?;
    fd.set_msrs(&regs::boot_msrs())
        .map_err(kvm_err("KVM_SET_MSRS"))?;
    fd.set_fpu(&regs::boot_fpu())
        .map_err(kvm_err("KVM_SET_FPU"))?;
    let mut lapic = fd.get_lapic().map_err(kvm_err("KVM_GET_LAPIC"))?;
    regs::set_lint_pins(&mut lapic);
    fd.set_lapic(&lapic).map_err(kvm_err("KVM_SET_LAPIC"))?;
    if index == 0 {
        let mut sregs = fd.get_sregs().map_err(kvm_err("KVM_GET_SREGS"))?;
        regs::set_long_mode(&mut sregs, &gdt::boot_gdt());
        fd.set_sregs(&sregs).map_err(kvm_err("KVM_SET_SREGS"))?;
        fd.set_regs(&regs::boot_regs(entry))
            .map_err(kvm_err("KVM_SET_REGS"))?;
    }
    Ok((fd, tsc_khz))
}

/// What a vCPU thread tells the VM's run loop.
#[derive(Debug)]
pub enum VcpuEvent {
    /// vCPU 0 is about to enter the guest for the first time (the kernel's first
    /// instruction): the [`Milestone::KernelEntry`] instant.
    Entered(Instant),
    /// vCPU 0's first exit to the VMM, described.
    FirstExit(Instant, String),
    /// The exit device reported something; the instant is when the port write trapped.
    Device(ExitDeviceEvent, Instant),
    /// The device event loop failed: the VM cannot go on.
    DevicesFailed(VmError),
    /// The vCPU thread ended.
    Stopped(VcpuStop),
}

/// Why a vCPU stopped running.
#[derive(Debug)]
pub enum VcpuStop {
    /// The guest requested a reset (i8042).
    Reset,
    /// KVM_EXIT_SHUTDOWN (triple fault) at this RIP.
    Shutdown(u64),
    /// The VM is ending for another reason and kicked this vCPU.
    Kicked,
    /// The guest did something fatal, or KVM failed.
    Failed(VmError),
}

/// What one KVM exit means for the loop.
enum Step {
    Continue,
    Device(ExitDeviceEvent),
    Reset,
    Shutdown,
    OutsideRam(u64),
    InternalError,
    FailEntry(u64),
    Unexpected(String),
}

/// Everything a vCPU thread needs.
pub struct VcpuRunner {
    /// The vCPU's index.
    pub index: u8,
    /// The vCPU.
    pub fd: VcpuFd,
    /// The devices (port I/O and MMIO).
    pub bus: Arc<Bus>,
    /// COM1, made visible when the guest init reports that it started.
    pub console: Arc<Mutex<SerialConsole<Stdout>>>,
    /// Set when the VM is ending.
    pub stop: Arc<AtomicBool>,
    /// Where to report.
    pub events: Sender<VcpuEvent>,
    /// Guest RAM size, for error messages.
    pub memory_bytes: u64,
}

impl VcpuRunner {
    /// Runs the vCPU until the guest or the VM ends it; reports [`VcpuEvent::Stopped`] last.
    pub fn run(mut self) {
        crate::kick::unblock_in_this_thread();
        let stop = self.run_until_stop();
        let _ = self.events.send(VcpuEvent::Stopped(stop));
    }

    fn run_until_stop(&mut self) -> VcpuStop {
        let mut first_exit = self.index == 0;
        if self.index == 0 {
            let _ = self.events.send(VcpuEvent::Entered(Instant::now()));
        }
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return VcpuStop::Kicked;
            }
            let result = self.fd.run();
            let at = Instant::now();
            let step = match result {
                Ok(exit) => {
                    if first_exit {
                        first_exit = false;
                        let _ = self.events.send(VcpuEvent::FirstExit(at, describe(&exit)));
                    }
                    match handle(exit, &self.bus) {
                        Ok(step) => step,
                        Err(source) => {
                            return VcpuStop::Failed(VmError::Host {
                                what: "emulate a device (raise its interrupt)",
                                source,
                            })
                        }
                    }
                }
                Err(err) if err.errno() == libc::EINTR || err.errno() == libc::EAGAIN => {
                    Step::Continue
                }
                Err(source) => {
                    return VcpuStop::Failed(VmError::Kvm {
                        what: "KVM_RUN",
                        source,
                    })
                }
            };
            match step {
                Step::Continue => {}
                Step::Device(event) => {
                    if event == ExitDeviceEvent::Milestone(Milestone::InitStarted) {
                        self.console
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .make_visible();
                    }
                    let _ = self.events.send(VcpuEvent::Device(event, at));
                }
                Step::Reset => return VcpuStop::Reset,
                Step::Shutdown => return VcpuStop::Shutdown(self.rip()),
                Step::OutsideRam(addr) => {
                    return VcpuStop::Failed(VmError::OutsideRam {
                        addr,
                        rip: self.rip(),
                        memory_mib: self.memory_bytes >> 20,
                    })
                }
                Step::InternalError => {
                    // SAFETY: the last exit was KVM_EXIT_INTERNAL_ERROR, so the `internal`
                    // member of the kvm_run union is the valid one.
                    let suberror =
                        unsafe { self.fd.get_kvm_run().__bindgen_anon_1.internal.suberror };
                    return VcpuStop::Failed(VmError::InternalError {
                        suberror,
                        rip: self.rip(),
                    });
                }
                Step::FailEntry(reason) => {
                    return VcpuStop::Failed(VmError::FailEntry {
                        reason,
                        rip: self.rip(),
                    })
                }
                Step::Unexpected(what) => {
                    return VcpuStop::Failed(VmError::UnexpectedExit {
                        what,
                        rip: self.rip(),
                    })
                }
            }
        }
    }

    /// The guest's current RIP (0 if KVM cannot tell).
    fn rip(&self) -> u64 {
        self.fd.get_regs().map(|r| r.rip).unwrap_or(0)
    }
}

/// Dispatches one exit. Ports without a device ignore writes and read all ones (an empty
/// ISA bus, which is how guests detect that nothing is there); an MMIO access where no
/// device is (and no RAM) is the guest's fatal error.
fn handle(exit: VcpuExit<'_>, bus: &Bus) -> std::io::Result<Step> {
    const KVM_SYSTEM_EVENT_SHUTDOWN: u32 = 1;
    const KVM_SYSTEM_EVENT_RESET: u32 = 2;
    Ok(match exit {
        VcpuExit::IoOut(port, data) => match bus.write(Space::Pio, u64::from(port), data)? {
            BusEffect::None | BusEffect::Unclaimed => Step::Continue,
            BusEffect::Reset => Step::Reset,
            BusEffect::Exit(event) => Step::Device(event),
        },
        VcpuExit::IoIn(port, data) => {
            if !bus.read(Space::Pio, u64::from(port), data) {
                data.fill(0xff);
            }
            Step::Continue
        }
        VcpuExit::MmioRead(addr, data) => match bus.read(Space::Mmio, addr, data) {
            true => Step::Continue,
            false => Step::OutsideRam(addr),
        },
        VcpuExit::MmioWrite(addr, data) => match bus.write(Space::Mmio, addr, data)? {
            BusEffect::Unclaimed => Step::OutsideRam(addr),
            BusEffect::None => Step::Continue,
            BusEffect::Reset => Step::Reset,
            BusEffect::Exit(event) => Step::Device(event),
        },
        VcpuExit::Shutdown => Step::Shutdown,
        VcpuExit::SystemEvent(KVM_SYSTEM_EVENT_RESET, _) => Step::Reset,
        VcpuExit::SystemEvent(KVM_SYSTEM_EVENT_SHUTDOWN, _) => Step::Shutdown,
        VcpuExit::InternalError => Step::InternalError,
        VcpuExit::FailEntry(reason, _) => Step::FailEntry(reason),
        VcpuExit::Intr => Step::Continue,
        other => Step::Unexpected(format!("{other:?}")),
    })
}

/// A short description of an exit, for the trace.
fn describe(exit: &VcpuExit<'_>) -> String {
    match exit {
        VcpuExit::IoOut(port, data) => format!("{}-byte I/O write to port {port:#x}", data.len()),
        VcpuExit::IoIn(port, data) => format!("{}-byte I/O read from port {port:#x}", data.len()),
        VcpuExit::MmioRead(addr, _) => format!("MMIO read at {addr:#x}"),
        VcpuExit::MmioWrite(addr, _) => format!("MMIO write at {addr:#x}"),
        other => format!("{other:?}"),
    }
}
