//! The vsock device as the transport and the event loop see it: virtio device type 19, three
//! queues, the guest CID as config space, served on the event-loop thread when the guest
//! notifies a queue or a host thread changes a stream buffer.

use super::host::HostStreams;
use super::{VsockBackend, EVENT_QUEUE, QUEUE_SIZE, RX_QUEUE, TX_QUEUE};
use crate::devices::virtio::{
    ActivateError, Activation, Interrupt, QueueEvents, VirtioDevice, FEATURE_VERSION_1,
};
use crate::error::VmError;
use crate::memory::GuestRam;
use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use std::sync::Arc;
use virtio_bindings::virtio_ids::VIRTIO_ID_VSOCK;
use virtio_queue::{Queue, QueueT};
use vmm_sys_util::eventfd::EventFd;

/// The event data of the host threads' wake-up eventfd (the queues' are their indexes).
const WAKE_EVENT: u32 = 3;

/// The virtio-vsock device.
pub struct Vsock {
    backend: VsockBackend,
    queue_events: QueueEvents,
    wake: Arc<EventFd>,
    active: Option<Active>,
}

/// What the device serves once the driver has set it up.
struct Active {
    memory: GuestRam,
    queues: Vec<Queue>,
    interrupt: Arc<Interrupt>,
}

impl Vsock {
    /// A device the guest can connect to the run's streams through; returns it with the
    /// streams' buffers, whose host threads wake it.
    pub fn new(stdin: bool) -> Result<(Vsock, HostStreams), VmError> {
        let host = |what| move |source| VmError::Host { what, source };
        let wake = Arc::new(
            EventFd::new(libc::EFD_NONBLOCK).map_err(host("create the vsock wake-up eventfd"))?,
        );
        let streams = HostStreams::new(stdin, &wake);
        let mut backend = VsockBackend::default();
        streams.listen(&mut backend);
        let queue_events = QueueEvents::new(3).map_err(host("create the vsock queue eventfds"))?;
        let device = Vsock {
            backend,
            queue_events,
            wake,
            active: None,
        };
        Ok((device, streams))
    }

    /// Serves both queues: the guest's packets, then what it is owed; interrupts the guest
    /// if either used a buffer. A queue the guest broke stops the device.
    fn serve(&mut self) {
        let Some(active) = &mut self.active else {
            return;
        };
        let (memory, queues) = (&active.memory, &mut active.queues);
        let served = self
            .backend
            .process_tx(memory, &mut queues[TX_QUEUE])
            .and_then(|tx| Ok(self.backend.process_rx(memory, &mut queues[RX_QUEUE])? || tx));
        match served {
            Ok(true) => {
                if let Err(err) = active.interrupt.signal_used_queue() {
                    eprintln!("vmc: vsock device: raising its interrupt: {err}");
                }
            }
            Ok(false) => {}
            Err(err) => {
                eprintln!("vmc: vsock device stopped: {err}");
                self.active = None;
            }
        }
    }
}

impl VirtioDevice for Vsock {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_VSOCK
    }

    fn features(&self) -> u64 {
        FEATURE_VERSION_1
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE; 3]
    }

    fn queue_events(&self) -> &QueueEvents {
        &self.queue_events
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let config = VsockBackend::config_space();
        for (index, byte) in data.iter_mut().enumerate() {
            let at = usize::try_from(offset)
                .ok()
                .and_then(|o| o.checked_add(index));
            *byte = at.and_then(|at| config.get(at)).copied().unwrap_or(0);
        }
    }

    fn activate(&mut self, activation: Activation) -> Result<(), ActivateError> {
        for index in [RX_QUEUE, TX_QUEUE, EVENT_QUEUE] {
            if !activation.queues.get(index).is_some_and(|q| q.ready()) {
                return Err(ActivateError::QueueNotReady(index));
            }
        }
        self.active = Some(Active {
            memory: activation.memory,
            queues: activation.queues,
            interrupt: activation.interrupt,
        });
        // Whatever the host queued before the driver was ready.
        self.serve();
        Ok(())
    }

    fn reset(&mut self) {
        self.active = None;
    }
}

impl MutEventSubscriber for Vsock {
    fn process(&mut self, events: Events, _ops: &mut EventOps) {
        if self.queue_events.take(&events).is_none() && events.data() == WAKE_EVENT {
            // Non-blocking: a wake-up already consumed reads EAGAIN, which is harmless.
            let _ = self.wake.read();
        }
        self.serve();
    }

    fn init(&mut self, ops: &mut EventOps) {
        // Cannot fail: the eventfds are new to this epoll instance.
        let _ = self.queue_events.subscribe(ops);
        let _ = ops.add(Events::with_data(&*self.wake, WAKE_EVENT, EventSet::IN));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_space_reads_the_cid_and_zeros_beyond() {
        let (device, _streams) = Vsock::new(false).unwrap();
        let mut bytes = [0xaa; 12];
        device.read_config(0, &mut bytes);
        assert_eq!(bytes, [3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let mut high = [0xaa; 2];
        device.read_config(u64::MAX, &mut high);
        assert_eq!(high, [0, 0]);
        assert_eq!(device.device_type(), 19);
        assert_eq!(device.queue_max_sizes().len(), 3);
    }
}
