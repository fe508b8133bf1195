//! The device's packet handling driven through real virtqueues in test memory (virtio-queue's
//! mock split queues), as the guest driver would drive it.

use super::packet::*;
use super::*;
use std::collections::HashMap;
use std::sync::Arc;
use virtio_bindings::bindings::virtio_ring::VRING_DESC_F_WRITE;
use virtio_queue::desc::{split::Descriptor as SplitDescriptor, RawDescriptor};
use virtio_queue::mock::MockSplitQueue;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmc_protocol::channel::HOST_CID;
use vmm_sys_util::eventfd::EventFd;

const STDOUT_PORT: u32 = 1001;
const STDIN_PORT: u32 = 1000;
const GUEST_PORT: u32 = 5000;
/// The guest's buffer per connection, as Linux advertises it.
const GUEST_BUF_ALLOC: u32 = 256 * 1024;

/// A packet as the guest sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    src_cid: u64,
    dst_cid: u64,
    src_port: u32,
    dst_port: u32,
    op: u16,
    flags: u32,
    buf_alloc: u32,
    fwd_cnt: u32,
    data: Vec<u8>,
}

/// The guest's end of the device: its queues and the packet memory it hands out.
struct Guest<'a> {
    memory: &'a GuestMemoryMmap,
    rx: MockSplitQueue<'a, GuestMemoryMmap>,
    tx: MockSplitQueue<'a, GuestMemoryMmap>,
    rx_queue: Queue,
    tx_queue: Queue,
    /// Next free descriptor slot of each queue.
    rx_slot: u16,
    tx_slot: u16,
    /// Next free packet memory.
    next_addr: u64,
    /// RX descriptor head → (header address, data address).
    rx_buffers: HashMap<u16, (u64, u64)>,
    rx_used_seen: u16,
    backend: VsockBackend,
}

impl<'a> Guest<'a> {
    fn new(memory: &'a GuestMemoryMmap, backend: VsockBackend) -> Self {
        let rx = MockSplitQueue::create(memory, GuestAddress(0), QUEUE_SIZE);
        let tx = MockSplitQueue::create(memory, GuestAddress(0x10_0000), QUEUE_SIZE);
        let (rx_queue, tx_queue) = (rx.create_queue().unwrap(), tx.create_queue().unwrap());
        Guest {
            memory,
            rx,
            tx,
            rx_queue,
            tx_queue,
            rx_slot: 0,
            tx_slot: 0,
            next_addr: 0x20_0000,
            rx_buffers: HashMap::new(),
            rx_used_seen: 0,
            backend,
        }
    }

    fn alloc(&mut self, size: u64) -> u64 {
        let addr = self.next_addr;
        self.next_addr += size.next_multiple_of(0x1000);
        addr
    }

    /// Sends a packet on TX and lets the device take it.
    fn send(&mut self, op: u16, flags: u32, fwd_cnt: u32, data: &[u8]) {
        self.send_from(3, GUEST_PORT, STDOUT_PORT, op, flags, fwd_cnt, data);
    }

    #[allow(clippy::too_many_arguments)]
    fn send_from(
        &mut self,
        src_cid: u64,
        src_port: u32,
        dst_port: u32,
        op: u16,
        flags: u32,
        fwd_cnt: u32,
        data: &[u8],
    ) {
        let mut header = Vec::with_capacity(44);
        header.extend_from_slice(&src_cid.to_le_bytes());
        header.extend_from_slice(&u64::from(HOST_CID).to_le_bytes());
        header.extend_from_slice(&src_port.to_le_bytes());
        header.extend_from_slice(&dst_port.to_le_bytes());
        header.extend_from_slice(&(data.len() as u32).to_le_bytes());
        header.extend_from_slice(&TYPE_STREAM.to_le_bytes());
        header.extend_from_slice(&op.to_le_bytes());
        header.extend_from_slice(&flags.to_le_bytes());
        header.extend_from_slice(&GUEST_BUF_ALLOC.to_le_bytes());
        header.extend_from_slice(&fwd_cnt.to_le_bytes());
        let header_addr = self.alloc(44);
        self.memory
            .write_slice(&header, GuestAddress(header_addr))
            .unwrap();
        let mut descriptors = vec![RawDescriptor::from(SplitDescriptor::new(
            header_addr,
            44,
            0,
            0,
        ))];
        if !data.is_empty() {
            let data_addr = self.alloc(data.len() as u64);
            self.memory
                .write_slice(data, GuestAddress(data_addr))
                .unwrap();
            descriptors.push(RawDescriptor::from(SplitDescriptor::new(
                data_addr,
                data.len() as u32,
                0,
                0,
            )));
        }
        self.tx_slot = chain(&self.tx, self.tx_slot, &descriptors);
        assert!(self
            .backend
            .process_tx(self.memory, &mut self.tx_queue)
            .unwrap());
    }

    /// Gives the device `count` RX buffers of 4 KiB (as Linux 6.1 does).
    fn give_rx(&mut self, count: usize) {
        for _ in 0..count {
            let (header_addr, data_addr) = (self.alloc(44), self.alloc(4096));
            let flags = VRING_DESC_F_WRITE as u16;
            let descriptors = [
                RawDescriptor::from(SplitDescriptor::new(header_addr, 44, flags, 0)),
                RawDescriptor::from(SplitDescriptor::new(data_addr, 4096, flags, 0)),
            ];
            self.rx_buffers
                .insert(self.rx_slot, (header_addr, data_addr));
            self.rx_slot = chain(&self.rx, self.rx_slot, &descriptors);
        }
    }

    /// Lets the device fill RX buffers and returns the packets it wrote.
    fn receive(&mut self) -> Vec<Seen> {
        self.backend
            .process_rx(self.memory, &mut self.rx_queue)
            .unwrap();
        let used_idx = self.rx.used().idx().load();
        let mut seen = Vec::new();
        while self.rx_used_seen != used_idx {
            let element = self
                .rx
                .used()
                .ring()
                .ref_at(usize::from(self.rx_used_seen % QUEUE_SIZE))
                .unwrap()
                .load();
            self.rx_used_seen = self.rx_used_seen.wrapping_add(1);
            let (header_addr, data_addr) = self.rx_buffers[&(element.id() as u16)];
            let mut header = [0u8; 44];
            self.memory
                .read_slice(&mut header, GuestAddress(header_addr))
                .unwrap();
            let u32_at = |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().unwrap());
            let u64_at = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap());
            let len = u32_at(24);
            assert_eq!(element.len(), 44 + len, "used length is header + data");
            let mut data = vec![0u8; len as usize];
            self.memory
                .read_slice(&mut data, GuestAddress(data_addr))
                .unwrap();
            assert_eq!(u16::from_le_bytes([header[28], header[29]]), TYPE_STREAM);
            seen.push(Seen {
                src_cid: u64_at(0),
                dst_cid: u64_at(8),
                src_port: u32_at(16),
                dst_port: u32_at(20),
                op: u16::from_le_bytes([header[30], header[31]]),
                flags: u32_at(32),
                buf_alloc: u32_at(36),
                fwd_cnt: u32_at(40),
                data,
            });
        }
        seen
    }

    /// The operations of the packets the device writes now.
    fn receive_ops(&mut self) -> Vec<u16> {
        self.receive().iter().map(|packet| packet.op).collect()
    }
}

/// Writes `descriptors` as one chain at `slot` and makes it available; returns the next slot.
fn chain(
    queue: &MockSplitQueue<'_, GuestMemoryMmap>,
    slot: u16,
    descriptors: &[RawDescriptor],
) -> u16 {
    let count = descriptors.len() as u16;
    let linked: Vec<_> = descriptors
        .iter()
        .enumerate()
        .map(|(i, descriptor)| {
            let descriptor = SplitDescriptor::from(*descriptor);
            let last = i + 1 == descriptors.len();
            let flags = if last {
                descriptor.flags()
            } else {
                descriptor.flags()
                    | virtio_bindings::bindings::virtio_ring::VRING_DESC_F_NEXT as u16
            };
            RawDescriptor::from(SplitDescriptor::new(
                descriptor.addr().0,
                descriptor.len(),
                flags,
                slot + i as u16 + 1,
            ))
        })
        .collect();
    queue.add_desc_chains(&linked, slot).unwrap();
    slot + count
}

fn memory() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 64 << 20)]).unwrap()
}

fn wake() -> Arc<EventFd> {
    Arc::new(EventFd::new(libc::EFD_NONBLOCK).unwrap())
}

/// A backend whose stdout port feeds `stdout` and whose stdin port reads `stdin`.
fn backend(stdout: &Arc<StreamBuffer>, stdin: &Arc<StreamBuffer>) -> VsockBackend {
    let mut backend = VsockBackend::default();
    backend.listen(
        STDOUT_PORT,
        HostEnd {
            to_guest: None,
            from_guest: Some(Arc::clone(stdout)),
        },
    );
    backend.listen(
        STDIN_PORT,
        HostEnd {
            to_guest: Some(Arc::clone(stdin)),
            from_guest: None,
        },
    );
    backend
}

fn buffers(capacity: usize) -> (Arc<StreamBuffer>, Arc<StreamBuffer>) {
    let wake = wake();
    (
        StreamBuffer::new(capacity, Arc::clone(&wake)),
        StreamBuffer::new(capacity, wake),
    )
}

/// Drains what the host thread would write out.
fn host_reads(buffer: &StreamBuffer) -> Vec<u8> {
    let mut out = vec![0u8; buffer.queued()];
    let count = buffer.peek_blocking(&mut out);
    buffer.consume(count);
    out.truncate(count);
    out
}

#[test]
fn config_space_holds_the_guest_cid() {
    assert_eq!(VsockBackend::config_space(), 3u64.to_le_bytes());
}

#[test]
fn a_known_port_accepts_once_and_unknown_ports_are_reset() {
    let memory = memory();
    let (stdout, stdin) = buffers(1024);
    let mut guest = Guest::new(&memory, backend(&stdout, &stdin));
    guest.give_rx(8);
    guest.send(OP_REQUEST, 0, 0, b"");
    let response = guest.receive();
    assert_eq!(response.len(), 1);
    let packet = &response[0];
    assert_eq!((packet.src_cid, packet.dst_cid), (2, 3));
    assert_eq!(
        (packet.src_port, packet.dst_port),
        (STDOUT_PORT, GUEST_PORT)
    );
    assert_eq!(
        (packet.op, packet.buf_alloc, packet.fwd_cnt),
        (OP_RESPONSE, 1024, 0)
    );

    guest.send_from(3, GUEST_PORT + 1, 4242, OP_REQUEST, 0, 0, b"");
    guest.send_from(3, GUEST_PORT + 1, STDOUT_PORT, OP_REQUEST, 0, 0, b"");
    let refused = guest.receive();
    assert_eq!(refused.len(), 2);
    assert!(refused
        .iter()
        .all(|p| p.op == OP_RST && p.dst_port == GUEST_PORT + 1));
    assert_eq!(refused[0].src_port, 4242, "unknown port");
    assert_eq!(
        refused[1].src_port, STDOUT_PORT,
        "a port accepts one connection"
    );

    guest.send_from(7, GUEST_PORT, STDOUT_PORT, OP_RW, 0, 0, b"x");
    assert!(
        guest.receive().is_empty(),
        "packets from another CID are dropped"
    );
    assert_eq!(stdout.queued(), 0);
}

#[test]
fn guest_data_reaches_the_host_and_the_drain_ends_with_a_reset() {
    let memory = memory();
    let (stdout, stdin) = buffers(1024);
    let mut guest = Guest::new(&memory, backend(&stdout, &stdin));
    guest.give_rx(8);
    guest.send(OP_REQUEST, 0, 0, b"");
    guest.send(OP_RW, 0, 0, b"hello ");
    guest.send(OP_RW, 0, 0, b"world");
    assert_eq!(guest.receive_ops(), [OP_RESPONSE]);
    guest.send(OP_SHUTDOWN, SHUTDOWN_SEND, 0, b"");
    assert!(
        guest.receive().is_empty(),
        "no reset before the host wrote it all"
    );
    assert_eq!(host_reads(&stdout), b"hello world");
    let reset = guest.receive();
    assert_eq!(reset.len(), 1);
    assert_eq!((reset[0].op, reset[0].fwd_cnt), (OP_RST, 11));
    guest.send(OP_RW, 0, 0, b"late");
    assert_eq!(guest.receive_ops(), [OP_RST], "the connection is gone");
}

#[test]
fn host_data_reaches_the_guest_and_its_end_is_a_shutdown() {
    let memory = memory();
    let (stdout, stdin) = buffers(64 * 1024);
    let mut guest = Guest::new(&memory, backend(&stdout, &stdin));
    guest.give_rx(8);
    guest.send_from(3, GUEST_PORT, STDIN_PORT, OP_REQUEST, 0, 0, b"");
    let all: Vec<u8> = (0..=255).cycle().take(5000).collect();
    assert!(stdin.write_all(&all));
    stdin.close_from_host();
    let packets = guest.receive();
    let ops: Vec<_> = packets.iter().map(|p| p.op).collect();
    assert_eq!(ops, [OP_RESPONSE, OP_RW, OP_RW, OP_SHUTDOWN]);
    assert_eq!(
        packets[1].data.len(),
        4096,
        "a packet fills the guest's buffer"
    );
    let received: Vec<u8> = packets.iter().flat_map(|p| p.data.clone()).collect();
    assert_eq!(received, all);
    assert_eq!(packets[3].flags, SHUTDOWN_SEND);
    assert!(guest.receive().is_empty());
}

#[test]
fn host_data_waits_for_the_guests_credit() {
    let memory = memory();
    let (stdout, stdin) = buffers(1024);
    let mut guest = Guest::new(&memory, backend(&stdout, &stdin));
    guest.give_rx(8);
    // A guest with 8 bytes of buffer (the first packet sets it; later ones say 256 KiB, so
    // this one asks for the connection by hand).
    guest.send_from(3, GUEST_PORT, STDIN_PORT, OP_REQUEST, 0, 0, b"");
    assert_eq!(guest.receive_ops(), [OP_RESPONSE]);
    // Pretend the guest consumed nothing of 256 KiB minus 8: 8 bytes of credit remain.
    guest.send_from(
        3,
        GUEST_PORT,
        STDIN_PORT,
        OP_CREDIT_UPDATE,
        0,
        0u32.wrapping_sub(GUEST_BUF_ALLOC - 8),
        b"",
    );
    stdin.push(b"0123456789abcdefghij");
    let packets = guest.receive();
    let ops: Vec<_> = packets.iter().map(|p| p.op).collect();
    assert_eq!(ops, [OP_RW, OP_CREDIT_REQUEST], "8 bytes, then a request");
    assert_eq!(packets[0].data, b"01234567");
    assert!(guest.receive().is_empty(), "one request per stall");
    // The guest consumed the 8 bytes: 16 bytes of credit.
    guest.send_from(
        3,
        GUEST_PORT,
        STDIN_PORT,
        OP_CREDIT_UPDATE,
        0,
        0u32.wrapping_sub(GUEST_BUF_ALLOC - 24),
        b"",
    );
    let packets = guest.receive();
    assert_eq!(packets.len(), 1);
    assert_eq!(packets[0].data, b"89abcdefghij");
}

#[test]
fn the_guest_gets_credit_as_the_host_writes_and_is_reset_when_it_overruns() {
    let memory = memory();
    let (stdout, stdin) = buffers(16);
    let mut guest = Guest::new(&memory, backend(&stdout, &stdin));
    guest.give_rx(8);
    guest.send(OP_REQUEST, 0, 0, b"");
    guest.send(OP_RW, 0, 0, b"0123456789");
    assert_eq!(guest.receive_ops(), [OP_RESPONSE]);
    assert!(guest.receive().is_empty(), "nothing consumed: no update");
    assert_eq!(host_reads(&stdout), b"0123456789");
    let update = guest.receive();
    assert_eq!(update.len(), 1, "6 of 16 bytes of credit left: an update");
    assert_eq!(
        (update[0].op, update[0].fwd_cnt, update[0].buf_alloc),
        (OP_CREDIT_UPDATE, 10, 16)
    );
    guest.send(OP_CREDIT_REQUEST, 0, 0, b"");
    assert_eq!(
        guest.receive_ops(),
        [OP_CREDIT_UPDATE],
        "a request is answered"
    );
    guest.send(OP_RW, 0, 0, b"0123456789abcdefg");
    assert_eq!(guest.receive_ops(), [OP_RST], "17 bytes on 16 of credit");
    assert_eq!(stdout.queued(), 0);
    assert!(stdout.drained(), "the host end is closed");
}

#[test]
fn a_full_shutdown_is_answered_with_a_reset_and_a_reset_needs_no_answer() {
    let memory = memory();
    let (stdout, stdin) = buffers(1024);
    let mut guest = Guest::new(&memory, backend(&stdout, &stdin));
    guest.give_rx(8);
    guest.send(OP_REQUEST, 0, 0, b"");
    assert_eq!(guest.receive_ops(), [OP_RESPONSE]);
    guest.send(OP_SHUTDOWN, SHUTDOWN_SEND | SHUTDOWN_RCV, 0, b"");
    assert_eq!(guest.receive_ops(), [OP_RST]);

    guest.send_from(3, GUEST_PORT, STDIN_PORT, OP_REQUEST, 0, 0, b"");
    guest.send_from(3, GUEST_PORT, STDIN_PORT, OP_RST, 0, 0, b"");
    assert!(
        guest.receive().is_empty(),
        "the reset removed the connection"
    );
    assert!(!stdin.write_all(b"x"), "the host's stdin thread stops");
}

#[test]
fn packets_wait_for_rx_buffers() {
    let memory = memory();
    let (stdout, stdin) = buffers(1024);
    let mut guest = Guest::new(&memory, backend(&stdout, &stdin));
    guest.send(OP_REQUEST, 0, 0, b"");
    guest.send_from(3, GUEST_PORT, 4242, OP_REQUEST, 0, 0, b"");
    assert!(guest.receive().is_empty());
    guest.give_rx(1);
    assert_eq!(guest.receive_ops(), [OP_RST]);
    guest.give_rx(1);
    assert_eq!(guest.receive_ops(), [OP_RESPONSE]);
}
