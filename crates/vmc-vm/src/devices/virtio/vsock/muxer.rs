//! The host side of the vsock device: the ports the guest may connect to, the open
//! connections, and the resets owed for packets that belong to none. It turns the guest's TX
//! packets into connection events and fills the guest's RX buffers with what is owed, each
//! connection in turn.

use super::connection::{Connection, HostEnd, Received};
use super::packet::{write_header, Reply, MAX_PACKET_DATA, OP_REQUEST, OP_RST, TYPE_STREAM};
use std::collections::{BTreeMap, VecDeque};
use virtio_vsock::packet::{VsockPacket, PKT_HEADER_SIZE};
use vm_memory::bitmap::BitmapSlice;
use vm_memory::Bytes;
use vmc_protocol::channel::HOST_CID;

/// The connections between the guest and the host's stream ends.
pub struct Muxer {
    guest_cid: u64,
    /// Host ports not connected yet, with the stream end each will connect to (once).
    listeners: BTreeMap<u32, HostEnd>,
    connections: Vec<Connection>,
    /// (host port, guest port) of packets that matched no connection: each is owed an RST.
    refusals: VecDeque<(u32, u32)>,
    /// Where the round of connections starts next time.
    next: usize,
    scratch: Vec<u8>,
}

impl Muxer {
    /// No listeners, no connections, for a guest at `guest_cid`.
    pub fn new(guest_cid: u64) -> Self {
        Muxer {
            guest_cid,
            listeners: BTreeMap::new(),
            connections: Vec::new(),
            refusals: VecDeque::new(),
            next: 0,
            // Allocated now, in full: the event-loop thread only reuses it.
            scratch: Vec::with_capacity(MAX_PACKET_DATA as usize),
        }
    }

    /// Accepts one guest connection to `port`, joined to `host`.
    pub fn listen(&mut self, port: u32, host: HostEnd) {
        self.listeners.insert(port, host);
    }

    /// Handles a packet the guest sent (from its TX queue).
    pub fn receive<B: BitmapSlice>(&mut self, packet: &VsockPacket<'_, B>) {
        if packet.src_cid() != self.guest_cid || packet.dst_cid() != u64::from(HOST_CID) {
            // Not from our guest, or not for us: nobody to answer.
            return;
        }
        let (host_port, guest_port, op) = (packet.dst_port(), packet.src_port(), packet.op());
        let index = self
            .connections
            .iter()
            .position(|c| c.host_port == host_port && c.guest_port == guest_port);
        if packet.type_() != TYPE_STREAM {
            if op != OP_RST {
                self.refusals.push_back((host_port, guest_port));
            }
            return;
        }
        match index {
            Some(index) => {
                let len = packet.len() as usize;
                self.scratch.resize(len, 0);
                let copied = packet
                    .data_slice()
                    .map_or(0, |data| data.copy_to(&mut self.scratch[..len]));
                let connection = &mut self.connections[index];
                let received = connection.receive(
                    op,
                    packet.flags(),
                    packet.buf_alloc(),
                    packet.fwd_cnt(),
                    &self.scratch[..copied],
                );
                if received == Received::Closed {
                    self.connections.remove(index);
                }
            }
            None if op == OP_REQUEST => match self.listeners.remove(&host_port) {
                Some(host) => self.connections.push(Connection::accepted(
                    host_port,
                    guest_port,
                    host,
                    packet.buf_alloc(),
                    packet.fwd_cnt(),
                )),
                None => self.refusals.push_back((host_port, guest_port)),
            },
            None if op != OP_RST => self.refusals.push_back((host_port, guest_port)),
            None => {}
        }
    }

    /// Fills an RX packet from the guest's queue with the next packet owed, if any; returns
    /// the bytes written (header and data).
    pub fn send<B: BitmapSlice>(&mut self, packet: &mut VsockPacket<'_, B>) -> Option<u32> {
        if let Some((host_port, guest_port)) = self.refusals.pop_front() {
            let reset = Reply {
                op: OP_RST,
                flags: 0,
                len: 0,
                buf_alloc: 0,
                fwd_cnt: 0,
            };
            write_header(packet, self.guest_cid, host_port, guest_port, reset);
            return Some(PKT_HEADER_SIZE as u32);
        }
        let count = self.connections.len();
        for turn in 0..count {
            let index = (self.next + turn) % count;
            let data = packet.data_slice().cloned();
            let room = data.as_ref().map_or(0, |data| data.len());
            let connection = &mut self.connections[index];
            let reply = connection.next_reply(room, |first, second| {
                let Some(data) = &data else { return 0 };
                let written = data
                    .write_slice(first, 0)
                    .and_then(|()| data.write_slice(second, first.len()));
                written.map_or(0, |()| first.len() + second.len())
            });
            let Some(reply) = reply else { continue };
            let (host_port, guest_port) = (connection.host_port, connection.guest_port);
            write_header(packet, self.guest_cid, host_port, guest_port, reply);
            if reply.op == OP_RST {
                self.connections.remove(index);
                self.next = index;
            } else {
                self.next = index + 1;
            }
            return Some(PKT_HEADER_SIZE as u32 + reply.len);
        }
        None
    }
}
