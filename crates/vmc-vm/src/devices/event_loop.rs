//! The device event loop: one thread, rust-vmm's event-manager (epoll), serving every virtio
//! device's queue notifications (their ioeventfds) and whatever host descriptors the devices
//! watch. Devices are added while the VM is created; the thread starts when it runs and ends
//! when the VM does.

use crate::error::VmError;
use crate::seccomp::{Filters, ThreadKind};
use crate::threads;
use event_manager::{EventManager, EventOps, EventSet, Events, MutEventSubscriber, SubscriberOps};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use vmm_sys_util::eventfd::EventFd;

/// What the event loop holds: a device (or anything else) watching descriptors.
pub type Subscriber = Arc<Mutex<dyn MutEventSubscriber + Send>>;

/// The event loop before its thread starts.
pub struct EventLoop {
    manager: EventManager<Subscriber>,
    stop: Arc<EventFd>,
    stopped: Arc<AtomicBool>,
}

/// Ends the loop when its eventfd is signalled.
struct Stopper {
    event: Arc<EventFd>,
    stopped: Arc<AtomicBool>,
}

impl MutEventSubscriber for Stopper {
    fn process(&mut self, _events: Events, _ops: &mut EventOps) {
        let _ = self.event.read();
        self.stopped.store(true, Ordering::SeqCst);
    }

    fn init(&mut self, ops: &mut EventOps) {
        // Cannot fail: the eventfd is new and the epoll instance too.
        let _ = ops.add(Events::new(&*self.event, EventSet::IN));
    }
}

impl EventLoop {
    /// An event loop with no devices yet.
    pub fn new() -> Result<Self, VmError> {
        let failed = |source| VmError::Host {
            what: "create the device event loop",
            source,
        };
        let mut manager = EventManager::<Subscriber>::new()
            .map_err(|err| failed(std::io::Error::other(err.to_string())))?;
        let stop = Arc::new(EventFd::new(libc::EFD_NONBLOCK).map_err(failed)?);
        let stopped = Arc::new(AtomicBool::new(false));
        manager.add_subscriber(Arc::new(Mutex::new(Stopper {
            event: stop.clone(),
            stopped: stopped.clone(),
        })));
        Ok(EventLoop {
            manager,
            stop,
            stopped,
        })
    }

    /// Adds `subscriber`; its `init` registers the descriptors it watches.
    pub fn add(&mut self, subscriber: Subscriber) {
        self.manager.add_subscriber(subscriber);
    }

    /// Starts the loop's thread (`vmc-vm-devices`), confined by `filters` when given. If the
    /// loop fails (epoll itself failing), `on_failure` is called with why, on that thread.
    pub fn start(
        self,
        filters: Option<&'static Filters>,
        on_failure: impl FnOnce(VmError) + Send + 'static,
    ) -> Result<RunningEventLoop, VmError> {
        let EventLoop {
            mut manager,
            stop,
            stopped,
        } = self;
        let thread = threads::spawn(
            "start the device event loop thread",
            "vmc-vm-devices".to_string(),
            filters.map(|filters| (filters, ThreadKind::Devices)),
            move || {
                while !stopped.load(Ordering::SeqCst) {
                    if let Err(err) = manager.run() {
                        on_failure(VmError::Host {
                            what: "wait for device events",
                            source: std::io::Error::other(err.to_string()),
                        });
                        return;
                    }
                }
            },
        )?;
        Ok(RunningEventLoop { stop, thread })
    }
}

/// The event loop's running thread.
pub struct RunningEventLoop {
    stop: Arc<EventFd>,
    thread: JoinHandle<Option<()>>,
}

impl RunningEventLoop {
    /// Stops the thread and waits for it.
    pub fn stop(self) {
        let _ = self.stop.write(1);
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Reports each time its eventfd fires.
    struct Counter {
        event: Arc<EventFd>,
        seen: mpsc::Sender<()>,
    }

    impl MutEventSubscriber for Counter {
        fn process(&mut self, _events: Events, _ops: &mut EventOps) {
            let _ = self.event.read();
            let _ = self.seen.send(());
        }

        fn init(&mut self, ops: &mut EventOps) {
            ops.add(Events::new(&*self.event, EventSet::IN)).unwrap();
        }
    }

    #[test]
    fn subscribers_are_served_on_the_loop_thread_until_it_stops() {
        let mut event_loop = EventLoop::new().unwrap();
        let event = Arc::new(EventFd::new(libc::EFD_NONBLOCK).unwrap());
        let (seen, notified) = mpsc::channel();
        event_loop.add(Arc::new(Mutex::new(Counter {
            event: event.clone(),
            seen,
        })));
        let running = event_loop.start(None, |err| panic!("{err}")).unwrap();
        for _ in 0..3 {
            event.write(1).unwrap();
            notified.recv_timeout(Duration::from_secs(5)).unwrap();
        }
        running.stop();
        event.write(1).unwrap();
        assert!(
            notified.recv_timeout(Duration::from_millis(50)).is_err(),
            "a stopped loop serves nothing"
        );
    }
}
