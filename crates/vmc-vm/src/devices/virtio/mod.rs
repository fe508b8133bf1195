//! virtio devices on the virtio-mmio transport.
//!
//! A device implements [`VirtioDevice`] (what the transport asks of it: type, features,
//! queue sizes, config space, activation and reset) and event-manager's
//! `MutEventSubscriber` (what the event-loop thread asks of it: which descriptors to watch,
//! what to do when one is ready). [`mmio::MmioTransport`] implements the virtio-mmio
//! registers in front of it on the [`Bus`](super::bus::Bus); [`attach`] puts both in place
//! in a VM. /work/notes/virtio-api.md (and ARCHITECTURE.md) walk through adding a device.
//!
//! Notifications: each queue has an eventfd ([`QueueEvents`]) that KVM signals when the guest
//! writes the queue's index to QueueNotify (an ioeventfd: no exit to the VMM), and that the
//! device watches on the event loop. Interrupts: each device has one [`Interrupt`], an
//! irqfd on its own GSI plus the InterruptStatus bits the guest reads and acknowledges.

pub mod block;
pub mod mmio;
pub mod queue;
pub mod vsock;

use crate::arch::x86_64::layout::{virtio_slot, virtio_slot_count};
use crate::devices::bus::{Bus, Space};
use crate::devices::event_loop::EventLoop;
use crate::error::VmError;
use crate::memory::GuestRam;
use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use kvm_ioctls::{IoEventAddress, VmFd};
use linux_loader::cmdline::Cmdline;
use mmio::MmioTransport;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use virtio_bindings::virtio_mmio::{VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_VRING};
use virtio_queue::Queue;
use vm_memory::GuestAddress;
use vmm_sys_util::eventfd::EventFd;

/// Feature bit of virtio 1.0 and later ("modern" devices), which every device offers and the
/// transport requires the driver to accept.
pub const FEATURE_VERSION_1: u64 = 1 << virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
/// Feature bit of the used/available event index (fewer notifications and interrupts).
pub const FEATURE_EVENT_IDX: u64 = 1 << virtio_bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX;

/// What a device gets when the driver sets DRIVER_OK.
pub struct Activation {
    /// Guest RAM, where the queues and buffers live.
    pub memory: GuestRam,
    /// The queues as the driver set them up, in order (a queue the driver did not enable is
    /// there, not ready).
    pub queues: Vec<Queue>,
    /// The device's interrupt.
    pub interrupt: Arc<Interrupt>,
    /// The features the driver accepted.
    pub features: u64,
}

/// Why a device refused to start; the transport then sets DEVICE_NEEDS_RESET.
#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    /// A queue the device needs was not enabled by the driver.
    #[error("queue {0} is not ready")]
    QueueNotReady(usize),
}

/// A virtio device behind a transport.
pub trait VirtioDevice: Send {
    /// The virtio device type (e.g. 2 for a block device).
    fn device_type(&self) -> u32;

    /// The feature bits offered to the driver (including [`FEATURE_VERSION_1`]).
    fn features(&self) -> u64;

    /// The largest size of each queue; their number is the device's queue count.
    fn queue_max_sizes(&self) -> &[u16];

    /// The queue eventfds, one per queue, registered by [`attach`] as ioeventfds.
    fn queue_events(&self) -> &QueueEvents;

    /// Reads `data.len()` bytes of the device's config space at `offset`; bytes beyond the
    /// config space read as zero.
    fn read_config(&self, offset: u64, data: &mut [u8]);

    /// Writes the device's config space at `offset` (ignored unless the device has writable
    /// fields).
    fn write_config(&mut self, offset: u64, data: &[u8]) {
        let _ = (offset, data);
    }

    /// Starts the device: from now on it serves its queues.
    fn activate(&mut self, activation: Activation) -> Result<(), ActivateError>;

    /// Stops the device and forgets its queues (the driver wrote 0 to Status).
    fn reset(&mut self);
}

/// A device's interrupt line: the InterruptStatus bits and the irqfd KVM turns into an edge
/// on the device's GSI, as Firecracker does (the guest reads the status, acknowledges it,
/// then looks at its queues; a new edge while it does so is not lost in the in-kernel
/// IOAPIC/LAPIC).
#[derive(Debug)]
pub struct Interrupt {
    status: AtomicU32,
    irqfd: EventFd,
}

impl Interrupt {
    /// An interrupt raising `irqfd`.
    pub fn new(irqfd: EventFd) -> Self {
        Interrupt {
            status: AtomicU32::new(0),
            irqfd,
        }
    }

    /// Tells the driver that a queue's used ring has new entries.
    pub fn signal_used_queue(&self) -> io::Result<()> {
        self.raise(VIRTIO_MMIO_INT_VRING)
    }

    /// Tells the driver that the device's config space or status changed.
    pub fn signal_config_change(&self) -> io::Result<()> {
        self.raise(VIRTIO_MMIO_INT_CONFIG)
    }

    fn raise(&self, bit: u32) -> io::Result<()> {
        self.status.fetch_or(bit, Ordering::SeqCst);
        self.irqfd.write(1)
    }

    /// The InterruptStatus register.
    pub fn status(&self) -> u32 {
        self.status.load(Ordering::SeqCst)
    }

    /// InterruptACK: clears the `bits` the driver has handled.
    pub fn acknowledge(&self, bits: u32) {
        self.status.fetch_and(!bits, Ordering::SeqCst);
    }

    /// Clears every pending bit (device reset).
    fn clear(&self) {
        self.status.store(0, Ordering::SeqCst);
    }
}

/// One eventfd per queue: KVM signals queue `i`'s when the guest notifies it.
#[derive(Debug)]
pub struct QueueEvents(Vec<EventFd>);

impl QueueEvents {
    /// `count` fresh, non-blocking eventfds.
    pub fn new(count: usize) -> io::Result<Self> {
        (0..count)
            .map(|_| EventFd::new(libc::EFD_NONBLOCK))
            .collect::<io::Result<_>>()
            .map(QueueEvents)
    }

    /// Queue `index`'s eventfd.
    pub fn get(&self, index: usize) -> Option<&EventFd> {
        self.0.get(index)
    }

    /// The number of queues.
    pub fn count(&self) -> usize {
        self.0.len()
    }

    /// Watches every queue's eventfd on the event loop, its event data the queue index
    /// (a device's other event sources use data values from [`QueueEvents::count`] up).
    pub fn subscribe(&self, ops: &mut EventOps) -> Result<(), event_manager::Error> {
        for (index, event) in self.0.iter().enumerate() {
            ops.add(Events::with_data(event, index as u32, EventSet::IN))?;
        }
        Ok(())
    }

    /// If `events` is a queue's notification, consumes it and returns the queue's index.
    pub fn take(&self, events: &Events) -> Option<usize> {
        let index = events.data() as usize;
        let event = self.0.get(index).filter(|e| {
            use std::os::fd::AsRawFd;
            e.as_raw_fd() == events.fd()
        })?;
        // Non-blocking: a notification already consumed reads EAGAIN, which is harmless.
        let _ = event.read();
        Some(index)
    }
}

/// Where a virtio-mmio device lives: its 4 KiB register window and its GSI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmioSlot {
    /// Guest physical address of the register window.
    pub base: u64,
    /// The GSI (IOAPIC pin) of its interrupt.
    pub gsi: u32,
}

/// Hands out the virtio-mmio slots of [`layout`](crate::arch::x86_64::layout) in order.
#[derive(Debug, Default)]
pub struct MmioSlots {
    used: usize,
}

impl MmioSlots {
    /// The next free slot; fails when all are taken (`requested` is how many devices the VM
    /// asks for in all, for the message).
    pub fn take(&mut self, requested: usize) -> Result<MmioSlot, VmError> {
        let (base, gsi) = virtio_slot(self.used).ok_or(VmError::TooManyDevices {
            requested,
            limit: virtio_slot_count(),
        })?;
        self.used += 1;
        Ok(MmioSlot { base, gsi })
    }
}

/// Puts `device` in the VM at `slot`: a virtio-mmio transport on `bus` at the slot's base,
/// an irqfd on its GSI, an ioeventfd per queue on QueueNotify (datamatch: the queue index),
/// the device on `event_loop`, and its `virtio_mmio.device=4K@<base>:<gsi>` on `cmdline`.
pub fn attach<D>(
    vm: &VmFd,
    memory: &GuestRam,
    slot: MmioSlot,
    device: Arc<Mutex<D>>,
    bus: &mut Bus,
    event_loop: &mut EventLoop,
    cmdline: &mut Cmdline,
) -> Result<(), VmError>
where
    D: VirtioDevice + MutEventSubscriber + 'static,
{
    let host = |what| move |source| VmError::Host { what, source };
    let kvm = |what| move |source| VmError::Kvm { what, source };
    let irqfd =
        EventFd::new(libc::EFD_NONBLOCK).map_err(host("create a virtio interrupt eventfd"))?;
    vm.register_irqfd(&irqfd, slot.gsi)
        .map_err(kvm("KVM_IRQFD"))?;
    {
        let device = device
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let notify = IoEventAddress::Mmio(slot.base + mmio::QUEUE_NOTIFY_OFFSET);
        for index in 0..device.queue_events().count() {
            let event = device.queue_events().get(index).expect("index below len");
            vm.register_ioevent(event, &notify, index as u32)
                .map_err(kvm("KVM_IOEVENTFD"))?;
        }
    }
    let transport = MmioTransport::new(device.clone(), memory.clone(), Interrupt::new(irqfd))?;
    bus.insert(
        Space::Mmio,
        slot.base,
        mmio::WINDOW_SIZE,
        Arc::new(Mutex::new(transport)),
    )?;
    event_loop.add(device);
    cmdline
        .add_virtio_mmio_device(mmio::WINDOW_SIZE, GuestAddress(slot.base), slot.gsi, None)
        .map_err(|err| VmError::DeviceSetup {
            device: format!("virtio-mmio at {:#x}", slot.base),
            reason: format!("its kernel command line parameter: {err}"),
        })?;
    Ok(())
}
