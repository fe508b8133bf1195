//! The virtio-mmio transport, version 2 ("modern", virtio 1.x §4.2.2): the 4 KiB register
//! window through which the guest's virtio_mmio driver finds a device, negotiates features,
//! sets up its queues (on virtio-queue's [`Queue`]) and starts it.
//!
//! Registers are 32-bit and 32-bit aligned; other accesses below the config space read as
//! zero and are ignored when written. The config space (from offset 0x100) is the device's.
//! Writes the specification forbids in the current state (features after FEATURES_OK, queue
//! set-up before FEATURES_OK or after DRIVER_OK, clearing status bits other than by a reset)
//! are ignored; a driver accepting features the device does not offer, or not accepting
//! VIRTIO_F_VERSION_1, reads FEATURES_OK back as unset (and gives up).

use super::{Activation, Interrupt, VirtioDevice, FEATURE_EVENT_IDX, FEATURE_VERSION_1};
use crate::devices::bus::{BusDevice, BusEffect};
use crate::error::VmError;
use crate::memory::GuestRam;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use virtio_bindings::virtio_config::{
    VIRTIO_CONFIG_S_DRIVER, VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FAILED,
    VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_CONFIG_S_NEEDS_RESET,
};
use virtio_bindings::virtio_mmio as reg;
use virtio_queue::{Queue, QueueT};

/// Size of a device's register window (config space included).
pub const WINDOW_SIZE: u64 = 0x1000;
/// Offset of the QueueNotify register, where KVM's ioeventfds listen.
pub const QUEUE_NOTIFY_OFFSET: u64 = reg::VIRTIO_MMIO_QUEUE_NOTIFY as u64;
/// "virt", little-endian.
const MAGIC_VALUE: u32 = 0x7472_6976;
/// The transport version: 2, the non-legacy layout.
const VERSION: u32 = 2;
/// The subsystem vendor ID: "vmc" (0x00 'c' 'm' 'v').
const VENDOR_ID: u32 = 0x0063_6d76;
/// Where the device's config space starts.
const CONFIG_OFFSET: u64 = reg::VIRTIO_MMIO_CONFIG as u64;

/// One device's virtio-mmio registers.
pub struct MmioTransport {
    device: Arc<Mutex<dyn VirtioDevice>>,
    memory: GuestRam,
    interrupt: Arc<Interrupt>,
    queues: Vec<Queue>,
    queue_select: u32,
    device_features_select: u32,
    driver_features_select: u32,
    driver_features: u64,
    status: u32,
}

impl MmioTransport {
    /// The transport of `device`, whose queues live in `memory` and which raises `interrupt`.
    pub fn new(
        device: Arc<Mutex<dyn VirtioDevice>>,
        memory: GuestRam,
        interrupt: Interrupt,
    ) -> Result<Self, VmError> {
        let queues = fresh_queues(&*lock(&device))?;
        Ok(MmioTransport {
            device,
            memory,
            interrupt: Arc::new(interrupt),
            queues,
            queue_select: 0,
            device_features_select: 0,
            driver_features_select: 0,
            driver_features: 0,
            status: 0,
        })
    }

    fn has_status(&self, bits: u32) -> bool {
        self.status & bits == bits
    }

    /// Queue set-up is allowed between FEATURES_OK and DRIVER_OK.
    fn queue_setup_allowed(&self) -> bool {
        self.has_status(VIRTIO_CONFIG_S_FEATURES_OK)
            && self.status & (VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_FAILED) == 0
    }

    fn selected_queue(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_select as usize)
    }

    fn register(&self, offset: u32) -> u32 {
        let queue = self.queues.get(self.queue_select as usize);
        match offset {
            reg::VIRTIO_MMIO_MAGIC_VALUE => MAGIC_VALUE,
            reg::VIRTIO_MMIO_VERSION => VERSION,
            reg::VIRTIO_MMIO_DEVICE_ID => lock(&self.device).device_type(),
            reg::VIRTIO_MMIO_VENDOR_ID => VENDOR_ID,
            reg::VIRTIO_MMIO_DEVICE_FEATURES => {
                feature_page(lock(&self.device).features(), self.device_features_select)
            }
            reg::VIRTIO_MMIO_QUEUE_NUM_MAX => queue.map_or(0, |q| u32::from(q.max_size())),
            reg::VIRTIO_MMIO_QUEUE_READY => queue.map_or(0, |q| u32::from(q.ready())),
            reg::VIRTIO_MMIO_INTERRUPT_STATUS => self.interrupt.status(),
            reg::VIRTIO_MMIO_STATUS => self.status,
            // No shared memory regions: their length reads as all ones.
            reg::VIRTIO_MMIO_SHM_LEN_LOW | reg::VIRTIO_MMIO_SHM_LEN_HIGH => u32::MAX,
            // The devices' config spaces never change while they run: generation 0 throughout.
            _ => 0,
        }
    }

    fn set_register(&mut self, offset: u32, value: u32) -> io::Result<()> {
        match offset {
            reg::VIRTIO_MMIO_DEVICE_FEATURES_SEL => self.device_features_select = value,
            reg::VIRTIO_MMIO_DRIVER_FEATURES_SEL => self.driver_features_select = value,
            reg::VIRTIO_MMIO_DRIVER_FEATURES => self.set_driver_features(value),
            reg::VIRTIO_MMIO_QUEUE_SEL => self.queue_select = value,
            reg::VIRTIO_MMIO_QUEUE_NOTIFY => self.notify(value)?,
            reg::VIRTIO_MMIO_INTERRUPT_ACK => self.interrupt.acknowledge(value),
            reg::VIRTIO_MMIO_STATUS => self.set_status(value)?,
            _ if self.queue_setup_allowed() => self.set_queue_register(offset, value),
            _ => {}
        }
        Ok(())
    }

    fn set_driver_features(&mut self, value: u32) {
        let negotiating = self.has_status(VIRTIO_CONFIG_S_DRIVER)
            && self.status & VIRTIO_CONFIG_S_FEATURES_OK == 0;
        let shift = match self.driver_features_select {
            0 => 0,
            1 => 32,
            _ => return,
        };
        if negotiating {
            self.driver_features &= !(u64::from(u32::MAX) << shift);
            self.driver_features |= u64::from(value) << shift;
        }
    }

    fn set_queue_register(&mut self, offset: u32, value: u32) {
        let Some(queue) = self.selected_queue() else {
            return;
        };
        match offset {
            reg::VIRTIO_MMIO_QUEUE_NUM => queue.set_size(value as u16),
            reg::VIRTIO_MMIO_QUEUE_READY => queue.set_ready(value == 1),
            reg::VIRTIO_MMIO_QUEUE_DESC_LOW => queue.set_desc_table_address(Some(value), None),
            reg::VIRTIO_MMIO_QUEUE_DESC_HIGH => queue.set_desc_table_address(None, Some(value)),
            reg::VIRTIO_MMIO_QUEUE_AVAIL_LOW => queue.set_avail_ring_address(Some(value), None),
            reg::VIRTIO_MMIO_QUEUE_AVAIL_HIGH => queue.set_avail_ring_address(None, Some(value)),
            reg::VIRTIO_MMIO_QUEUE_USED_LOW => queue.set_used_ring_address(Some(value), None),
            reg::VIRTIO_MMIO_QUEUE_USED_HIGH => queue.set_used_ring_address(None, Some(value)),
            _ => {}
        }
    }

    /// A QueueNotify write that reached the VMM (no ioeventfd registered for it, e.g. in a
    /// test): passes it on to the queue's eventfd as KVM would.
    fn notify(&self, queue: u32) -> io::Result<()> {
        match lock(&self.device).queue_events().get(queue as usize) {
            Some(event) => event.write(1),
            None => Ok(()),
        }
    }

    fn set_status(&mut self, value: u32) -> io::Result<()> {
        if value == 0 {
            self.reset();
            return Ok(());
        }
        if self.status & !value != 0 {
            // Only a reset clears status bits.
            return Ok(());
        }
        let added = value & !self.status;
        self.status = value;
        if added & VIRTIO_CONFIG_S_FEATURES_OK != 0 && !self.features_acceptable() {
            self.status &= !VIRTIO_CONFIG_S_FEATURES_OK;
        }
        if added & VIRTIO_CONFIG_S_DRIVER_OK != 0 && self.has_status(VIRTIO_CONFIG_S_FEATURES_OK) {
            self.activate()?;
        }
        Ok(())
    }

    /// Whether the driver accepted only offered features, VIRTIO_F_VERSION_1 among them.
    fn features_acceptable(&self) -> bool {
        let offered = lock(&self.device).features();
        self.driver_features & !offered == 0 && self.driver_features & FEATURE_VERSION_1 != 0
    }

    /// Hands the device its queues; a refusal (or a queue outside guest RAM) sets
    /// DEVICE_NEEDS_RESET and raises a config interrupt, as the specification asks.
    fn activate(&mut self) -> io::Result<()> {
        let event_idx = self.driver_features & FEATURE_EVENT_IDX != 0;
        let mut queues = Vec::with_capacity(self.queues.len());
        for queue in &mut self.queues {
            queue.set_event_idx(event_idx);
            let valid = !queue.ready() || queue.is_valid(&self.memory);
            match Queue::try_from(queue.state()) {
                Ok(copy) if valid => queues.push(copy),
                _ => return self.needs_reset(),
            }
        }
        let activation = Activation {
            memory: self.memory.clone(),
            queues,
            interrupt: self.interrupt.clone(),
            features: self.driver_features,
        };
        let activated = lock(&self.device).activate(activation);
        match activated {
            Ok(()) => Ok(()),
            Err(_) => self.needs_reset(),
        }
    }

    fn needs_reset(&mut self) -> io::Result<()> {
        self.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
        self.interrupt.signal_config_change()
    }

    /// Back to the state before the driver found the device.
    fn reset(&mut self) {
        let mut device = lock(&self.device);
        device.reset();
        if let Ok(queues) = fresh_queues(&*device) {
            self.queues = queues;
        }
        drop(device);
        self.queue_select = 0;
        self.device_features_select = 0;
        self.driver_features_select = 0;
        self.driver_features = 0;
        self.status = 0;
        self.interrupt.clear();
    }
}

impl BusDevice for MmioTransport {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= CONFIG_OFFSET {
            lock(&self.device).read_config(offset - CONFIG_OFFSET, data);
            return;
        }
        match <&mut [u8; 4]>::try_from(&mut *data) {
            Ok(word) if offset.is_multiple_of(4) => {
                *word = self.register(offset as u32).to_le_bytes()
            }
            _ => data.fill(0),
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<BusEffect> {
        if offset >= CONFIG_OFFSET {
            lock(&self.device).write_config(offset - CONFIG_OFFSET, data);
        } else if let (Ok(word), true) = (<[u8; 4]>::try_from(data), offset.is_multiple_of(4)) {
            self.set_register(offset as u32, u32::from_le_bytes(word))?;
        }
        Ok(BusEffect::None)
    }
}

/// The 32 feature bits of `page` (0: bits 0–31, 1: bits 32–63, others: none).
fn feature_page(features: u64, page: u32) -> u32 {
    match page {
        0 => features as u32,
        1 => (features >> 32) as u32,
        _ => 0,
    }
}

/// New, unconfigured queues of the device's sizes.
fn fresh_queues(device: &dyn VirtioDevice) -> Result<Vec<Queue>, VmError> {
    device
        .queue_max_sizes()
        .iter()
        .map(|&size| {
            Queue::new(size).map_err(|err| VmError::DeviceSetup {
                device: format!("virtio device type {}", device.device_type()),
                reason: format!("queue size {size}: {err}"),
            })
        })
        .collect()
}

/// Locks a device, going on after a panic of another thread that held it.
fn lock(device: &Mutex<dyn VirtioDevice>) -> MutexGuard<'_, dyn VirtioDevice + 'static> {
    device.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::super::{ActivateError, QueueEvents};
    use super::*;
    use virtio_queue::QueueState;
    use vm_memory::GuestAddress;
    use vmm_sys_util::eventfd::EventFd;

    const OFFERED: u64 = FEATURE_VERSION_1 | FEATURE_EVENT_IDX | 1;

    /// A device that records what the transport hands it.
    struct Fake {
        queue_events: QueueEvents,
        activated: Option<(u64, Vec<QueueState>)>,
        resets: usize,
        refuse: bool,
        config_written: Vec<(u64, Vec<u8>)>,
    }

    impl VirtioDevice for Fake {
        fn device_type(&self) -> u32 {
            42
        }
        fn features(&self) -> u64 {
            OFFERED
        }
        fn queue_max_sizes(&self) -> &[u16] {
            &[16, 8]
        }
        fn queue_events(&self) -> &QueueEvents {
            &self.queue_events
        }
        fn read_config(&self, offset: u64, data: &mut [u8]) {
            for (i, byte) in data.iter_mut().enumerate() {
                *byte = offset as u8 + i as u8;
            }
        }
        fn write_config(&mut self, offset: u64, data: &[u8]) {
            self.config_written.push((offset, data.to_vec()));
        }
        fn activate(&mut self, activation: Activation) -> Result<(), ActivateError> {
            if self.refuse {
                return Err(ActivateError::QueueNotReady(0));
            }
            let states = activation.queues.iter().map(Queue::state).collect();
            self.activated = Some((activation.features, states));
            Ok(())
        }
        fn reset(&mut self) {
            self.activated = None;
            self.resets += 1;
        }
    }

    struct Setup {
        transport: MmioTransport,
        device: Arc<Mutex<Fake>>,
        irq: EventFd,
    }

    fn setup() -> Setup {
        let device = Arc::new(Mutex::new(Fake {
            queue_events: QueueEvents::new(2).unwrap(),
            activated: None,
            resets: 0,
            refuse: false,
            config_written: Vec::new(),
        }));
        let memory = GuestRam::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
        let irq = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        let interrupt = Interrupt::new(irq.try_clone().unwrap());
        let transport = MmioTransport::new(device.clone(), memory, interrupt).unwrap();
        Setup {
            transport,
            device,
            irq,
        }
    }

    impl Setup {
        fn read(&mut self, offset: u32) -> u32 {
            let mut word = [0u8; 4];
            BusDevice::read(&mut self.transport, u64::from(offset), &mut word);
            u32::from_le_bytes(word)
        }

        fn write(&mut self, offset: u32, value: u32) {
            let effect =
                BusDevice::write(&mut self.transport, u64::from(offset), &value.to_le_bytes());
            assert_eq!(effect.unwrap(), BusEffect::None);
        }

        /// Acknowledges the device and accepts `features`; returns the status read back.
        fn negotiate(&mut self, features: u64) -> u32 {
            self.write(reg::VIRTIO_MMIO_STATUS, 1);
            self.write(reg::VIRTIO_MMIO_STATUS, 1 | VIRTIO_CONFIG_S_DRIVER);
            for page in 0..2 {
                self.write(reg::VIRTIO_MMIO_DRIVER_FEATURES_SEL, page);
                self.write(
                    reg::VIRTIO_MMIO_DRIVER_FEATURES,
                    feature_page(features, page),
                );
            }
            self.write(
                reg::VIRTIO_MMIO_STATUS,
                1 | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK,
            );
            self.read(reg::VIRTIO_MMIO_STATUS)
        }

        /// Sets queue `index` up at `base` (descriptors, then avail at +0x1000, used at +0x2000).
        fn set_queue(&mut self, index: u32, size: u32, base: u64) {
            self.write(reg::VIRTIO_MMIO_QUEUE_SEL, index);
            self.write(reg::VIRTIO_MMIO_QUEUE_NUM, size);
            for (low, high, addr) in [
                (
                    reg::VIRTIO_MMIO_QUEUE_DESC_LOW,
                    reg::VIRTIO_MMIO_QUEUE_DESC_HIGH,
                    base,
                ),
                (
                    reg::VIRTIO_MMIO_QUEUE_AVAIL_LOW,
                    reg::VIRTIO_MMIO_QUEUE_AVAIL_HIGH,
                    base + 0x1000,
                ),
                (
                    reg::VIRTIO_MMIO_QUEUE_USED_LOW,
                    reg::VIRTIO_MMIO_QUEUE_USED_HIGH,
                    base + 0x2000,
                ),
            ] {
                self.write(low, addr as u32);
                self.write(high, (addr >> 32) as u32);
            }
            self.write(reg::VIRTIO_MMIO_QUEUE_READY, 1);
        }

        fn driver_ok(&mut self) {
            let status = self.read(reg::VIRTIO_MMIO_STATUS);
            self.write(reg::VIRTIO_MMIO_STATUS, status | VIRTIO_CONFIG_S_DRIVER_OK);
        }

        fn activated(&self) -> Option<(u64, Vec<QueueState>)> {
            self.device.lock().unwrap().activated.clone()
        }
    }

    #[test]
    fn identification_registers() {
        let mut s = setup();
        assert_eq!(s.read(reg::VIRTIO_MMIO_MAGIC_VALUE), 0x7472_6976);
        assert_eq!(&s.read(0).to_le_bytes(), b"virt");
        assert_eq!(s.read(reg::VIRTIO_MMIO_VERSION), 2);
        assert_eq!(s.read(reg::VIRTIO_MMIO_DEVICE_ID), 42);
        assert_eq!(s.read(reg::VIRTIO_MMIO_VENDOR_ID), VENDOR_ID);
        assert_eq!(s.read(reg::VIRTIO_MMIO_STATUS), 0);
        let mut half = [0xaa; 2];
        BusDevice::read(&mut s.transport, 0, &mut half);
        assert_eq!(half, [0, 0], "16-bit register reads see zero");
        let mut unaligned = [0xaa; 4];
        BusDevice::read(&mut s.transport, 2, &mut unaligned);
        assert_eq!(unaligned, [0; 4]);
    }

    #[test]
    fn device_features_by_page() {
        let mut s = setup();
        assert_eq!(s.read(reg::VIRTIO_MMIO_DEVICE_FEATURES), OFFERED as u32);
        s.write(reg::VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
        assert_eq!(
            s.read(reg::VIRTIO_MMIO_DEVICE_FEATURES),
            1,
            "VERSION_1 is bit 32"
        );
        s.write(reg::VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
        assert_eq!(s.read(reg::VIRTIO_MMIO_DEVICE_FEATURES), 0);
    }

    #[test]
    fn features_ok_only_for_offered_features_with_version_1() {
        let ok = 1 | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
        assert_eq!(setup().negotiate(FEATURE_VERSION_1 | 1), ok);
        let mut s = setup();
        assert_eq!(
            s.negotiate(FEATURE_VERSION_1 | 1 << 7),
            ok & !VIRTIO_CONFIG_S_FEATURES_OK
        );
        assert_eq!(
            setup().negotiate(1),
            ok & !VIRTIO_CONFIG_S_FEATURES_OK,
            "legacy driver"
        );
        // Once FEATURES_OK is set, the accepted features no longer change.
        let mut s = setup();
        s.negotiate(FEATURE_VERSION_1);
        s.write(reg::VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
        s.write(reg::VIRTIO_MMIO_DRIVER_FEATURES, 1);
        s.set_queue(0, 16, 0x10000);
        s.driver_ok();
        assert_eq!(s.activated().unwrap().0, FEATURE_VERSION_1);
    }

    #[test]
    fn queues_set_up_between_features_ok_and_driver_ok_reach_the_device() {
        let mut s = setup();
        assert_eq!(s.read(reg::VIRTIO_MMIO_QUEUE_NUM_MAX), 16);
        s.write(reg::VIRTIO_MMIO_QUEUE_SEL, 1);
        assert_eq!(s.read(reg::VIRTIO_MMIO_QUEUE_NUM_MAX), 8);
        s.write(reg::VIRTIO_MMIO_QUEUE_SEL, 2);
        assert_eq!(s.read(reg::VIRTIO_MMIO_QUEUE_NUM_MAX), 0, "no third queue");
        // Before FEATURES_OK queue writes are ignored.
        s.set_queue(0, 8, 0x10000);
        s.write(reg::VIRTIO_MMIO_QUEUE_SEL, 0);
        assert_eq!(s.read(reg::VIRTIO_MMIO_QUEUE_READY), 0);
        s.negotiate(FEATURE_VERSION_1 | FEATURE_EVENT_IDX);
        s.set_queue(0, 8, 0x10000);
        assert_eq!(s.read(reg::VIRTIO_MMIO_QUEUE_READY), 1);
        assert!(s.activated().is_none());
        s.driver_ok();
        let (features, queues) = s.activated().expect("activated at DRIVER_OK");
        assert_eq!(features, FEATURE_VERSION_1 | FEATURE_EVENT_IDX);
        assert_eq!(queues.len(), 2);
        let q = queues[0];
        assert!(q.ready && q.event_idx_enabled);
        assert_eq!(
            (q.size, q.desc_table, q.avail_ring, q.used_ring),
            (8, 0x10000, 0x11000, 0x12000)
        );
        assert!(!queues[1].ready, "queue 1 was never enabled");
        // After DRIVER_OK the queues are fixed.
        s.write(reg::VIRTIO_MMIO_QUEUE_SEL, 0);
        s.write(reg::VIRTIO_MMIO_QUEUE_READY, 0);
        assert_eq!(s.read(reg::VIRTIO_MMIO_QUEUE_READY), 1);
    }

    #[test]
    fn a_queue_outside_ram_or_a_refusal_needs_reset() {
        let mut s = setup();
        s.negotiate(FEATURE_VERSION_1);
        s.set_queue(0, 16, 0x1_0000_0000);
        s.driver_ok();
        assert!(s.activated().is_none());
        assert_ne!(
            s.read(reg::VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET,
            0
        );
        assert_eq!(
            s.read(reg::VIRTIO_MMIO_INTERRUPT_STATUS),
            reg::VIRTIO_MMIO_INT_CONFIG
        );
        assert_eq!(s.irq.read().unwrap(), 1, "the config interrupt was raised");

        let mut s = setup();
        s.device.lock().unwrap().refuse = true;
        s.negotiate(FEATURE_VERSION_1);
        s.set_queue(0, 16, 0x10000);
        s.driver_ok();
        assert_ne!(
            s.read(reg::VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET,
            0
        );
    }

    #[test]
    fn interrupt_status_and_acknowledge() {
        let mut s = setup();
        s.transport.interrupt.signal_used_queue().unwrap();
        s.transport.interrupt.signal_config_change().unwrap();
        assert_eq!(s.irq.read().unwrap(), 2, "one irqfd write per signal");
        assert_eq!(s.read(reg::VIRTIO_MMIO_INTERRUPT_STATUS), 3);
        s.write(reg::VIRTIO_MMIO_INTERRUPT_ACK, reg::VIRTIO_MMIO_INT_VRING);
        assert_eq!(
            s.read(reg::VIRTIO_MMIO_INTERRUPT_STATUS),
            reg::VIRTIO_MMIO_INT_CONFIG
        );
    }

    #[test]
    fn status_zero_resets_everything() {
        let mut s = setup();
        s.negotiate(FEATURE_VERSION_1);
        s.set_queue(0, 16, 0x10000);
        s.driver_ok();
        s.transport.interrupt.signal_used_queue().unwrap();
        assert!(s.activated().is_some());
        // A driver cannot clear bits other than by a reset.
        s.write(reg::VIRTIO_MMIO_STATUS, 1);
        assert_ne!(
            s.read(reg::VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_DRIVER_OK,
            0
        );
        s.write(reg::VIRTIO_MMIO_STATUS, 0);
        assert_eq!(s.read(reg::VIRTIO_MMIO_STATUS), 0);
        assert_eq!(s.read(reg::VIRTIO_MMIO_INTERRUPT_STATUS), 0);
        assert!(s.activated().is_none());
        assert_eq!(s.device.lock().unwrap().resets, 1);
        s.write(reg::VIRTIO_MMIO_QUEUE_SEL, 0);
        assert_eq!(s.read(reg::VIRTIO_MMIO_QUEUE_READY), 0, "queues start over");
        // And the device can be brought up again.
        s.negotiate(FEATURE_VERSION_1);
        s.set_queue(0, 4, 0x20000);
        s.driver_ok();
        assert_eq!(s.activated().unwrap().1[0].size, 4);
    }

    #[test]
    fn notify_without_an_ioeventfd_signals_the_queue_event() {
        let mut s = setup();
        s.write(reg::VIRTIO_MMIO_QUEUE_NOTIFY, 1);
        s.write(reg::VIRTIO_MMIO_QUEUE_NOTIFY, 9);
        let device = s.device.lock().unwrap();
        assert_eq!(device.queue_events.get(1).unwrap().read().unwrap(), 1);
        assert!(
            device.queue_events.get(0).unwrap().read().is_err(),
            "queue 0 untouched"
        );
    }

    #[test]
    fn the_config_space_is_the_devices() {
        let mut s = setup();
        let mut bytes = [0u8; 3];
        BusDevice::read(&mut s.transport, 0x104, &mut bytes);
        assert_eq!(bytes, [4, 5, 6]);
        BusDevice::write(&mut s.transport, 0x101, &[9]).unwrap();
        assert_eq!(s.device.lock().unwrap().config_written, vec![(1, vec![9])]);
    }
}
