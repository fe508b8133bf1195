//! A microVM: create it (KVM VM, RAM, kernel, devices, vCPUs), run it to its end.

use crate::arch::x86_64::layout::{CMDLINE_MAX_SIZE, KVM_TSS_ADDR};
use crate::boot;
use crate::config::{host_ram_bytes, VmConfig, VmmSeccomp, VsockConfig};
use crate::devices::bus::Bus;
use crate::devices::event_loop::{EventLoop, RunningEventLoop};
use crate::devices::exit_device::ExitDeviceEvent;
use crate::devices::insert_legacy_devices;
use crate::devices::serial::{ConsoleOutput, SerialConsole, COM1_IRQ, COM1_PORT};
use crate::devices::virtio::block::Block;
use crate::devices::virtio::vsock::host::{self, HostStreams};
use crate::devices::virtio::vsock::Vsock;
use crate::devices::virtio::{self, MmioSlots};
use crate::error::VmError;
use crate::kick;
use crate::memory::{self, GuestRam, RamRegion};
use crate::seccomp::{self, Filters, ThreadKind};
use crate::signals;
use crate::threads;
use crate::vcpu::{self, VcpuEvent, VcpuRunner, VcpuStop};
use kvm_bindings::{kvm_pit_config, KVM_MAX_CPUID_ENTRIES, KVM_PIT_SPEAKER_DUMMY};
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use linux_loader::cmdline::Cmdline;
use std::io::{Stdout, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use vmc_protocol::exit_device::WorkloadStatus;
use vmc_runtime::signals::SignalCatcher;
use vmc_runtime::{Milestone, Timeline};
use vmm_sys_util::eventfd::EventFd;

/// RIP of a vCPU just after reset (CS base 0xffff0000 + 0xfff0).
const RESET_VECTOR_RIP: u64 = 0xfff0;

/// Why the VM ended (when it ended the way a guest should).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// The guest reset itself through the i8042 controller (how vmc-init ends a run, and how
    /// Linux reboots with `reboot=k`).
    Reset,
    /// The guest triple-faulted (KVM_EXIT_SHUTDOWN) after reporting the workload's status
    /// (e.g. Linux rebooting with `reboot=t`).
    Shutdown,
}

/// How a VM run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmExit {
    /// The raw status the guest wrote to the exit device's port 0x604 (exit code 0..=255, or
    /// `0x100 | signal`), if it wrote one.
    pub status: Option<i32>,
    /// Why the VM ended.
    pub reason: ExitReason,
}

impl VmExit {
    /// The reported status, decoded by the exit device's protocol.
    pub fn workload_status(&self) -> Option<WorkloadStatus> {
        Some(WorkloadStatus::from_port_value(self.status? as u32))
    }
}

/// Opens `/dev/kvm`, turning the common failures into their one-line fixes.
pub fn open_kvm() -> Result<Kvm, VmError> {
    open_kvm_at("/dev/kvm")
}

/// Opens the KVM device at `path` (see [`open_kvm`]).
fn open_kvm_at(path: &str) -> Result<Kvm, VmError> {
    let path = std::ffi::CString::new(path).expect("device path has no NUL");
    Kvm::new_with_path(&path).map_err(|err| match err.errno() {
        libc::ENOENT => VmError::KvmMissing,
        libc::EACCES | libc::EPERM => VmError::KvmPermission,
        errno => VmError::KvmOpen(std::io::Error::from_raw_os_error(errno)),
    })
}

/// A created microVM, ready to run.
pub struct Vm {
    vcpus: Vec<VcpuFd>,
    bus: Arc<Bus>,
    com1: Arc<Mutex<SerialConsole<Stdout>>>,
    event_loop: Option<EventLoop>,
    com1_irq: EventFd,
    vm: VmFd,
    /// The channel's stream buffers and what it carries, with a vsock device.
    channel: Option<(HostStreams, VsockConfig)>,
    seccomp: VmmSeccomp,
    boot_timeout: Option<Duration>,
    vcpu_count: u8,
    memory_bytes: u64,
    ram: GuestRam,
}

impl Vm {
    /// Creates the VM: KVM VM with in-kernel irqchip and PIT, exactly `memory_bytes` of RAM,
    /// devices (the legacy ports, one virtio-blk per disk, the vsock device, each virtio
    /// device adding its parameter to the command line), kernel + initrd + boot structures loaded, and `vcpus` vCPUs with vCPU 0
    /// at the kernel entry in 64-bit mode. Records a trace step for each and marks
    /// [`Milestone::RuntimeReady`].
    pub fn create(config: &VmConfig, timeline: &mut Timeline) -> Result<Vm, VmError> {
        let kvm = open_kvm()?;
        config.validate(host_ram_bytes(), kvm.get_max_vcpus())?;
        let disks = open_disks(config)?;
        let mut cmdline = Cmdline::try_from(&config.cmdline, CMDLINE_MAX_SIZE).map_err(|_| {
            VmError::BadCmdline {
                len: config.cmdline.len(),
                max: CMDLINE_MAX_SIZE - 1,
            }
        })?;
        let vm = kvm.create_vm().map_err(|source| VmError::Kvm {
            what: "KVM_CREATE_VM",
            source,
        })?;
        timeline.step("KVM_CREATE_VM");
        vm.set_tss_address(KVM_TSS_ADDR)
            .map_err(|source| VmError::Kvm {
                what: "KVM_SET_TSS_ADDR",
                source,
            })?;
        vm.create_irq_chip().map_err(|source| VmError::Kvm {
            what: "KVM_CREATE_IRQCHIP",
            source,
        })?;
        timeline.step("in-kernel PIC + IOAPIC + LAPIC (KVM_CREATE_IRQCHIP)");
        let pit = kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        };
        vm.create_pit2(pit).map_err(|source| VmError::Kvm {
            what: "KVM_CREATE_PIT2",
            source,
        })?;
        timeline.step("in-kernel PIT (KVM_CREATE_PIT2)");

        let ram = memory::create(&vm, config.memory_bytes)?;
        timeline.step(format!(
            "guest RAM mapped: {} MiB",
            config.memory_bytes >> 20
        ));

        let (com1, com1_irq) = create_uart(
            &vm,
            COM1_PORT,
            COM1_IRQ,
            ConsoleOutput::new(std::io::stdout(), config.console),
        )?;
        let com1 = Arc::new(Mutex::new(com1));
        let mut bus = Bus::default();
        insert_legacy_devices(&mut bus, &com1)?;
        timeline.step("devices: COM1 (0x3f8, IRQ 4), i8042 (0x60/0x64), exit device (0x600/0x604)");
        let mut event_loop = EventLoop::new()?;
        let mut slots = MmioSlots::default();
        let virtio_devices = config.disks.len() + usize::from(config.vsock.is_some());
        for (name, disk, block) in disks {
            let slot = slots.take(virtio_devices)?;
            let capacity_mib = block.capacity_bytes() >> 20;
            let block = Arc::new(Mutex::new(block));
            virtio::attach(
                &vm,
                &ram,
                slot,
                block,
                &mut bus,
                &mut event_loop,
                &mut cmdline,
            )?;
            timeline.step(format!(
                "virtio-blk {name}: {} ({capacity_mib} MiB, {}), MMIO {:#x}, GSI {}",
                disk.path.display(),
                if disk.read_only {
                    "read-only"
                } else {
                    "read-write"
                },
                slot.base,
                slot.gsi
            ));
        }
        let channel = match config.vsock {
            Some(vsock) => {
                let (device, streams) = Vsock::new(vsock.stdin)?;
                let slot = slots.take(virtio_devices)?;
                virtio::attach(
                    &vm,
                    &ram,
                    slot,
                    Arc::new(Mutex::new(device)),
                    &mut bus,
                    &mut event_loop,
                    &mut cmdline,
                )?;
                timeline.step(format!(
                    "virtio-vsock: guest CID {}, streams stdout, stderr, control{}, MMIO {:#x}, GSI {}",
                    vmc_protocol::channel::GUEST_CID,
                    if vsock.stdin { ", stdin" } else { "" },
                    slot.base,
                    slot.gsi
                ));
                Some((streams, vsock))
            }
            None => None,
        };
        let cmdline = cmdline
            .as_cstring()
            .ok()
            .and_then(|text| text.into_string().ok())
            .ok_or(VmError::BadCmdline {
                len: config.cmdline.len(),
                max: CMDLINE_MAX_SIZE - 1,
            })?;

        let kernel = boot::load(
            &ram,
            config.memory_bytes,
            config.vcpus,
            &config.kernel,
            &config.initrd,
            &cmdline,
            timeline,
        )?;

        let supported = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(|source| VmError::Kvm {
                what: "KVM_GET_SUPPORTED_CPUID",
                source,
            })?;
        let mut vcpus = Vec::with_capacity(usize::from(config.vcpus));
        let mut tsc_khz = None;
        for index in 0..config.vcpus {
            let (fd, khz) = vcpu::create(&vm, index, config.vcpus, &supported, kernel.entry)?;
            if index == 0 {
                tsc_khz = khz;
                timeline.step("vCPU 0 registers set (64-bit long mode)");
            }
            vcpus.push(fd);
        }
        timeline.step(match tsc_khz {
            Some(khz) => format!(
                "{} vCPUs configured (CPUID leaf 0x40000010: TSC {khz} kHz)",
                config.vcpus
            ),
            None => format!(
                "{} vCPUs configured (KVM reports no TSC frequency)",
                config.vcpus
            ),
        });
        timeline.mark(Milestone::RuntimeReady);
        Ok(Vm {
            vcpus,
            bus: Arc::new(bus),
            com1,
            event_loop: Some(event_loop),
            com1_irq,
            vm,
            channel,
            seccomp: config.seccomp,
            boot_timeout: config.boot_timeout,
            vcpu_count: config.vcpus,
            memory_bytes: config.memory_bytes,
            ram,
        })
    }

    /// Guest RAM in bytes (all of it reserved in this process's address space).
    pub fn reserved_memory_bytes(&self) -> u64 {
        self.memory_bytes
    }

    /// Number of vCPUs.
    pub fn vcpu_count(&self) -> u8 {
        self.vcpu_count
    }

    /// The guest's most recent console (COM1) output (up to 16 KiB), shown or not.
    pub fn recent_console_output(&self) -> String {
        self.com1
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recent()
            .text()
    }

    /// Guest RAM regions with their host address ranges, for measuring resident guest RAM
    /// ([`memory::resident_bytes`]) while the VM exists.
    pub fn ram_regions(&self) -> Vec<RamRegion> {
        memory::regions(&self.ram)
    }

    /// Runs the guest until it resets, or fails. One thread per vCPU; marks
    /// [`Milestone::KernelEntry`] when vCPU 0 first enters the guest, and the exit device's
    /// milestones at the instants the guest's port writes trapped. The run's own loop is a
    /// thread of its own ("vmc-vm"), which, confined (the default), takes the VMM's main
    /// seccomp filter before any vCPU starts; the calling thread only waits for it, so it stays
    /// unconfined and may go on to build the next image's disk or run a container.
    pub fn run(&mut self, timeline: &mut Timeline) -> Result<VmExit, VmError> {
        if self.vcpus.is_empty() {
            return Err(VmError::AlreadyRan);
        }
        kick::install()?;
        // In the calling thread, before any thread starts, so that all of them block the
        // signals to forward; the mask is restored here when the last reference goes.
        let forward_signals = self
            .channel
            .as_ref()
            .is_some_and(|(_, vsock)| vsock.forward_signals);
        let signals = if forward_signals {
            let catcher = SignalCatcher::new().map_err(|errno| VmError::Host {
                what: "catch the signals to forward",
                source: errno.into(),
            })?;
            Some(Arc::new(catcher))
        } else {
            None
        };
        let run_signals = signals.clone();
        let result = std::thread::scope(|scope| {
            let runner = std::thread::Builder::new()
                .name("vmc-vm".into())
                .spawn_scoped(scope, || self.run_confined(run_signals, timeline))
                .map_err(|source| VmError::Host {
                    what: "start the VM's run thread",
                    source,
                })?;
            runner.join().unwrap_or_else(|_| {
                Err(VmError::Host {
                    what: "run the VM",
                    source: std::io::Error::other("the VM's run thread panicked"),
                })
            })
        });
        drop(signals);
        result
    }

    /// The body of [`Vm::run`], on its own thread: confines it, starts the device, vCPU and
    /// I/O threads, and waits for the first vCPU to stop.
    fn run_confined(
        &mut self,
        signals: Option<Arc<SignalCatcher>>,
        timeline: &mut Timeline,
    ) -> Result<VmExit, VmError> {
        let filters = self.confine(timeline)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (events, received) = mpsc::channel();
        let devices = self.start_event_loop(filters, events.clone(), timeline)?;
        let mut threads = Vec::with_capacity(self.vcpus.len());
        for (index, fd) in self.vcpus.drain(..).enumerate() {
            let runner = VcpuRunner {
                index: index as u8,
                fd,
                bus: Arc::clone(&self.bus),
                console: Arc::clone(&self.com1),
                stop: Arc::clone(&stop),
                events: events.clone(),
                memory_bytes: self.memory_bytes,
            };
            let spawned = threads::spawn(
                "start a vCPU thread",
                format!("vmc-vcpu{index}"),
                filters.map(|filters| (filters, ThreadKind::Vcpu)),
                move || runner.run(),
            );
            match spawned {
                Ok(thread) => threads.push(thread),
                Err(err) => {
                    stop_vcpu_threads(&stop, threads);
                    devices.stop();
                    return Err(err);
                }
            }
        }
        drop(events);
        let host_input = match self.start_host_input(signals, filters) {
            Ok(host_input) => host_input,
            Err(err) => {
                stop_vcpu_threads(&stop, threads);
                devices.stop();
                return Err(err);
            }
        };

        let mut status = None;
        let mut end: Option<VcpuStop> = None;
        let mut running = threads.len();
        // The boot watchdog: disarmed by the guest's first milestone.
        let mut boot_deadline = self
            .boot_timeout
            .map(|timeout| (Instant::now() + timeout, timeout));
        while running > 0 {
            let wait = match (&end, boot_deadline) {
                (Some(_), _) => Some(Duration::from_millis(1)),
                (None, Some((deadline, _))) => {
                    Some(deadline.saturating_duration_since(Instant::now()))
                }
                (None, None) => None,
            };
            let event = match wait {
                Some(wait) => match received.recv_timeout(wait) {
                    Ok(event) => event,
                    Err(RecvTimeoutError::Timeout) => {
                        if let (None, Some((_, timeout))) = (&end, boot_deadline) {
                            end = Some(VcpuStop::Failed(VmError::BootTimedOut { timeout }));
                            stop.store(true, Ordering::SeqCst);
                        }
                        threads.iter().for_each(kick::kick);
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                },
                None => match received.recv() {
                    Ok(event) => event,
                    Err(_) => break,
                },
            };
            match event {
                VcpuEvent::Entered(at) => {
                    timeline.mark_at(Milestone::KernelEntry, at);
                    timeline.step_at("vCPU 0 enters the guest at the kernel entry point", at);
                }
                VcpuEvent::FirstExit(at, what) => {
                    timeline.step_at(format!("first guest exit: {what}"), at)
                }
                VcpuEvent::Device(ExitDeviceEvent::Milestone(milestone), at) => {
                    boot_deadline = None;
                    if milestone == Milestone::WorkloadExec {
                        host_input.guest_ready();
                    }
                    timeline.mark_at(milestone, at);
                    timeline.step_at(format!("guest reports: {}", milestone.label()), at);
                }
                VcpuEvent::Device(ExitDeviceEvent::Status(value), at) => {
                    status = Some(value as i32);
                    timeline.step_at(format!("guest reports workload status {value:#x}"), at);
                }
                VcpuEvent::DevicesFailed(err) => {
                    if end.is_none() {
                        end = Some(VcpuStop::Failed(err));
                        stop.store(true, Ordering::SeqCst);
                        threads.iter().for_each(kick::kick);
                    }
                }
                VcpuEvent::Stopped(stopped) => {
                    running -= 1;
                    if end.is_none() {
                        end = Some(stopped);
                        stop.store(true, Ordering::SeqCst);
                        threads.iter().for_each(kick::kick);
                    }
                }
            }
        }
        for thread in threads {
            let _ = thread.join();
        }
        devices.stop();
        host_input.finish();
        timeline.step("all vCPUs stopped");
        self.outcome(end.unwrap_or(VcpuStop::Kicked), status)
    }

    /// Confines the calling thread with the main filter, once the launcher that starts the
    /// vCPU and I/O threads runs (see [`crate::threads`]); returns the filters for those
    /// threads, or `None` for an unconfined VM.
    fn confine(&self, timeline: &mut Timeline) -> Result<Option<&'static Filters>, VmError> {
        if self.seccomp == VmmSeccomp::Unconfined {
            timeline.step("seccomp: unconfined (no filters on the VMM's threads)");
            return Ok(None);
        }
        let filters = seccomp::filters()?;
        threads::start_launcher(filters)?;
        filters.confine_this_thread(ThreadKind::Main)?;
        timeline.step("seccomp: main thread confined; vCPU and I/O threads confined as they start");
        Ok(Some(filters))
    }

    /// Starts the device event loop's thread, confined by `filters` if given; if the loop
    /// fails it tells the run loop through `events`.
    fn start_event_loop(
        &mut self,
        filters: Option<&'static Filters>,
        events: mpsc::Sender<VcpuEvent>,
        timeline: &mut Timeline,
    ) -> Result<RunningEventLoop, VmError> {
        let event_loop = self.event_loop.take().ok_or(VmError::AlreadyRan)?;
        let running = event_loop.start(filters, move |err| {
            let _ = events.send(VcpuEvent::DevicesFailed(err));
        })?;
        timeline.step("device event loop thread started");
        Ok(running)
    }

    /// Starts the threads of the channel's streams, confined by `filters` if given: vmc's
    /// stdin into the stdin stream (`-i`), the stdout and stderr streams out to vmc's, and the
    /// signals `signals` catches onto the control stream from [`HostInput::guest_ready`] on.
    fn start_host_input(
        &self,
        signals: Option<Arc<SignalCatcher>>,
        filters: Option<&'static Filters>,
    ) -> Result<HostInput, VmError> {
        let host = |what| move |source| VmError::Host { what, source };
        let event = || {
            EventFd::new(libc::EFD_NONBLOCK)
                .map(Arc::new)
                .map_err(host("create a host input eventfd"))
        };
        let mut input = HostInput {
            ready: event()?,
            stop: event()?,
            threads: Vec::new(),
            streams: None,
            signals: signals.clone(),
        };
        let Some((streams, vsock)) = &self.channel else {
            return Ok(input);
        };
        input.streams = Some(streams.clone());
        if let Some(stdin) = &streams.stdin {
            input.threads.push(host::spawn_stdin(
                std::io::stdin().as_raw_fd(),
                Arc::clone(stdin),
                Arc::clone(&input.stop),
                filters,
            )?);
        }
        let outputs = [
            ("stdout", std::io::stdout().as_raw_fd(), &streams.stdout),
            ("stderr", std::io::stderr().as_raw_fd(), &streams.stderr),
        ];
        for (name, fd, buffer) in outputs {
            input
                .threads
                .push(host::spawn_output(name, fd, Arc::clone(buffer), filters)?);
        }
        if let Some(catcher) = signals {
            input.threads.push(signals::spawn_signal_forwarder(
                catcher,
                Arc::clone(&streams.control),
                vsock.terminal,
                Arc::clone(&input.ready),
                Arc::clone(&input.stop),
                filters,
            )?);
        }
        Ok(input)
    }

    /// Turns the first vCPU stop into the run's result.
    fn outcome(&self, end: VcpuStop, status: Option<i32>) -> Result<VmExit, VmError> {
        let panic = || {
            self.com1
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .recent()
                .kernel_panic()
        };
        match end {
            VcpuStop::Reset | VcpuStop::Shutdown(_) if status.is_none() => {
                if let Some(message) = panic() {
                    return Err(VmError::GuestPanicked(message));
                }
                match end {
                    VcpuStop::Shutdown(rip) => Err(VmError::TripleFault {
                        // AMD reinitializes the vCPU on shutdown: RIP is then the reset vector.
                        rip: (rip != RESET_VECTOR_RIP).then_some(rip),
                    }),
                    _ => Ok(VmExit {
                        status,
                        reason: ExitReason::Reset,
                    }),
                }
            }
            VcpuStop::Reset => Ok(VmExit {
                status,
                reason: ExitReason::Reset,
            }),
            VcpuStop::Shutdown(_) => Ok(VmExit {
                status,
                reason: ExitReason::Shutdown,
            }),
            VcpuStop::Failed(err) => Err(err),
            VcpuStop::Kicked => Err(VmError::Host {
                what: "keep the vCPU threads running",
                source: std::io::Error::other("every vCPU thread stopped without a reason"),
            }),
        }
    }
}

/// Opens every disk of `config` as a virtio-blk device, with its guest name (`vda`, …).
fn open_disks(config: &VmConfig) -> Result<Vec<(String, &crate::DiskConfig, Block)>, VmError> {
    let limit = crate::arch::x86_64::layout::virtio_slot_count();
    if config.disks.len() > limit {
        return Err(VmError::TooManyDevices {
            requested: config.disks.len(),
            limit,
        });
    }
    config
        .disks
        .iter()
        .enumerate()
        .map(|(index, disk)| {
            let name = format!("vd{}", char::from(b'a' + index as u8));
            let block = Block::open(disk, &format!("vmc-{name}"))?;
            Ok((name, disk, block))
        })
        .collect()
}

/// Creates the UART at I/O port `base` writing to `output`, its interrupt an irqfd on `gsi`;
/// returns it with the eventfd to unregister when the VM ends.
fn create_uart<W: Write>(
    vm: &VmFd,
    base: u16,
    gsi: u32,
    output: ConsoleOutput<W>,
) -> Result<(SerialConsole<W>, EventFd), VmError> {
    let host = |what| move |source| VmError::Host { what, source };
    let irq =
        EventFd::new(libc::EFD_NONBLOCK).map_err(host("create a serial interrupt eventfd"))?;
    vm.register_irqfd(&irq, gsi)
        .map_err(|source| VmError::Kvm {
            what: "KVM_IRQFD",
            source,
        })?;
    let uart_irq = irq
        .try_clone()
        .map_err(host("clone a serial interrupt eventfd"))?;
    Ok((SerialConsole::new(base, uart_irq, output), irq))
}

/// Stops vCPU threads that were started for a run that cannot go on, and waits for them.
fn stop_vcpu_threads(stop: &AtomicBool, threads: Vec<JoinHandle<Option<()>>>) {
    stop.store(true, Ordering::SeqCst);
    for thread in threads {
        while !thread.is_finished() {
            kick::kick(&thread);
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = thread.join();
    }
}

/// The threads of the channel's streams, and how to start and stop them.
struct HostInput {
    ready: Arc<EventFd>,
    stop: Arc<EventFd>,
    threads: Vec<JoinHandle<Option<()>>>,
    /// The stream buffers, ended when the run is over.
    streams: Option<HostStreams>,
    /// Kept until the threads have ended, so that the signal mask is restored in this thread.
    signals: Option<Arc<SignalCatcher>>,
}

impl HostInput {
    /// Lets the signals through: the guest is about to execute the workload.
    fn guest_ready(&self) {
        let _ = self.ready.write(1);
    }

    /// Stops the threads and waits for them (dropping does the same).
    fn finish(mut self) {
        self.stop_threads();
    }

    /// Signals the threads to stop (the output threads first write what they hold), waits
    /// for them, then lets the signal catcher go.
    fn stop_threads(&mut self) {
        let _ = self.stop.write(1);
        if let Some(streams) = &self.streams {
            streams.finish();
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        self.signals = None;
    }
}

impl Drop for HostInput {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.vm.unregister_irqfd(&self.com1_irq, COM1_IRQ);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_kvm_device_says_how_to_get_one() {
        let Err(err) = open_kvm_at("/nonexistent/kvm") else {
            panic!("opened a nonexistent device");
        };
        assert_eq!(
            err.to_string(),
            "/dev/kvm does not exist: load the kvm_intel or kvm_amd module, or enable virtualization (VT-x/AMD-V) in the BIOS"
        );
    }

    #[test]
    fn status_decodes_by_the_protocol() {
        let exit = |status| VmExit {
            status,
            reason: ExitReason::Reset,
        };
        assert_eq!(
            exit(Some(0x10f)).workload_status(),
            Some(WorkloadStatus::Signaled(15))
        );
        assert_eq!(exit(None).workload_status(), None);
    }
}
