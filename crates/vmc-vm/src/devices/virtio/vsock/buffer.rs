//! The buffer between one stream's host thread (which blocks on vmc's stdin, stdout or
//! stderr) and the vsock device (which never blocks): one producer, one consumer, a fixed
//! capacity. The device side is non-blocking and notified through the device's wake-up
//! eventfd; the host thread side blocks on a condition variable.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use vmm_sys_util::eventfd::EventFd;

/// A bounded byte queue between a host thread and the vsock device.
pub struct StreamBuffer {
    state: Mutex<State>,
    changed: Condvar,
    capacity: usize,
    wake_device: Arc<EventFd>,
}

#[derive(Default)]
struct State {
    bytes: VecDeque<u8>,
    /// Bytes taken out so far (for the guest→host direction, the connection's `fwd_cnt`).
    consumed: u64,
    /// The producer will add nothing more.
    producer_done: bool,
    /// The consumer takes nothing more (and has taken everything it will).
    consumer_done: bool,
}

impl StreamBuffer {
    /// An empty buffer of `capacity` bytes, allocated now (so that the confined threads
    /// using it never allocate or free for it); the host thread's changes signal
    /// `wake_device`.
    pub fn new(capacity: usize, wake_device: Arc<EventFd>) -> Arc<Self> {
        Arc::new(StreamBuffer {
            state: Mutex::new(State {
                bytes: VecDeque::with_capacity(capacity),
                ..State::default()
            }),
            changed: Condvar::new(),
            capacity,
            wake_device,
        })
    }

    /// How many bytes it holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A change by the host thread: tell the device.
    fn host_changed(&self) {
        // A full eventfd counter already means "look again".
        let _ = self.wake_device.write(1);
    }

    // The device's side.

    /// Appends as much of `bytes` as fits (none once the consumer is done, which drops them);
    /// returns how many were taken or dropped.
    pub fn push(&self, bytes: &[u8]) -> usize {
        let mut state = self.lock();
        if state.consumer_done {
            return bytes.len();
        }
        let room = self.capacity - state.bytes.len();
        let count = room.min(bytes.len());
        state.bytes.extend(&bytes[..count]);
        self.changed.notify_all();
        count
    }

    /// Calls `take` with the queued bytes (in up to two slices, in order) and removes the
    /// count it returns.
    pub fn take(&self, take: impl FnOnce(&[u8], &[u8]) -> usize) -> usize {
        let mut state = self.lock();
        let (first, second) = state.bytes.as_slices();
        let count = take(first, second).min(state.bytes.len());
        state.bytes.drain(..count);
        state.consumed += count as u64;
        if count > 0 {
            self.changed.notify_all();
        }
        count
    }

    /// Ends the producer's side (the device's, for guest→host streams).
    pub fn finish_producing(&self) {
        self.lock().producer_done = true;
        self.changed.notify_all();
    }

    /// Ends the consumer's side (the device's, for host→guest streams): the host thread's
    /// writes fail from now on.
    pub fn finish_consuming(&self) {
        self.lock().consumer_done = true;
        self.changed.notify_all();
    }

    /// How many bytes it holds.
    pub fn queued(&self) -> usize {
        self.lock().bytes.len()
    }

    /// Bytes consumed so far.
    pub fn consumed(&self) -> u64 {
        self.lock().consumed
    }

    /// The producer is done and everything was taken.
    pub fn drained(&self) -> bool {
        let state = self.lock();
        state.producer_done && state.bytes.is_empty()
    }

    /// The consumer is done.
    pub fn consumer_done(&self) -> bool {
        self.lock().consumer_done
    }

    // The host thread's side.

    /// Appends all of `bytes`, waiting for room; `false` when the consumer is done first.
    pub fn write_all(&self, mut bytes: &[u8]) -> bool {
        let mut state = self.lock();
        while !bytes.is_empty() {
            if state.consumer_done {
                return false;
            }
            let room = self.capacity - state.bytes.len();
            if room == 0 {
                state = self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            let count = room.min(bytes.len());
            state.bytes.extend(&bytes[..count]);
            bytes = &bytes[count..];
            self.host_changed();
        }
        true
    }

    /// Ends the producer's side from the host thread (end of vmc's stdin).
    pub fn close_from_host(&self) {
        self.lock().producer_done = true;
        self.host_changed();
    }

    /// Waits for bytes and copies up to `out.len()` of them into `out` without removing them;
    /// 0 when the producer is done and everything was taken. Follow with [`Self::consume`].
    pub fn peek_blocking(&self, out: &mut [u8]) -> usize {
        let mut state = self.lock();
        while state.bytes.is_empty() && !state.producer_done {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let count = out.len().min(state.bytes.len());
        for (slot, byte) in out.iter_mut().zip(state.bytes.iter()) {
            *slot = *byte;
        }
        count
    }

    /// Removes `count` bytes the host thread has written out (after [`Self::peek_blocking`]).
    pub fn consume(&self, count: usize) {
        let mut state = self.lock();
        let count = count.min(state.bytes.len());
        state.bytes.drain(..count);
        state.consumed += count as u64;
        self.host_changed();
    }

    /// The host thread takes nothing more (its output failed, or it is done).
    pub fn close_consumer_from_host(&self) {
        self.lock().consumer_done = true;
        self.host_changed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer(capacity: usize) -> (Arc<StreamBuffer>, Arc<EventFd>) {
        let wake = Arc::new(EventFd::new(libc::EFD_NONBLOCK).unwrap());
        (StreamBuffer::new(capacity, Arc::clone(&wake)), wake)
    }

    #[test]
    fn push_stops_at_capacity_and_take_counts_consumed_bytes() {
        let (buffer, _wake) = buffer(4);
        assert_eq!(buffer.push(b"abcdef"), 4);
        assert_eq!(
            buffer.take(|first, second| {
                assert_eq!([first, second].concat(), b"abcd");
                3
            }),
            3
        );
        assert_eq!((buffer.queued(), buffer.consumed()), (1, 3));
    }

    #[test]
    fn host_writer_waits_for_room_and_wakes_the_device() {
        let (buffer, wake) = buffer(2);
        let writer = {
            let buffer = Arc::clone(&buffer);
            std::thread::spawn(move || buffer.write_all(b"wxyz"))
        };
        let mut received = Vec::new();
        while received.len() < 4 {
            buffer.take(|first, second| {
                received.extend_from_slice(first);
                received.extend_from_slice(second);
                first.len() + second.len()
            });
            std::thread::yield_now();
        }
        assert!(writer.join().unwrap());
        assert_eq!(received, b"wxyz");
        assert!(wake.read().unwrap() > 0, "the device was woken");
    }

    #[test]
    fn host_reader_sees_the_end_after_the_bytes() {
        let (buffer, _wake) = buffer(8);
        buffer.push(b"hi");
        buffer.finish_producing();
        let mut out = [0u8; 8];
        assert_eq!(buffer.peek_blocking(&mut out), 2);
        assert_eq!(&out[..2], b"hi");
        assert!(!buffer.drained());
        buffer.consume(2);
        assert_eq!(buffer.peek_blocking(&mut out), 0);
        assert!(buffer.drained());
    }

    #[test]
    fn writes_fail_once_the_consumer_is_done() {
        let (buffer, _wake) = buffer(1);
        buffer.finish_consuming();
        assert!(!buffer.write_all(b"x"));
        assert_eq!(buffer.push(b"dropped"), 7);
    }
}
