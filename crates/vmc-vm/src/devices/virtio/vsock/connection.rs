//! One stream connection's state machine: what the guest's packets do to it and what it owes
//! the guest next. No guest memory and no I/O here: the host side is a pair of
//! [`StreamBuffer`]s, the guest side is packet fields in and [`Reply`]s out.
//!
//! Credit (virtio spec 5.10.6.3): each side advertises `buf_alloc` (its buffer for the
//! connection) and `fwd_cnt` (how much of the peer's data it has consumed); a sender may have
//! at most `buf_alloc - (sent - fwd_cnt)` bytes in flight. Guest→host data waits in the
//! `from_guest` buffer until the host thread writes it out; only then does `fwd_cnt` move,
//! so a blocked stdout stops granting credit and the guest's writer blocks. Host→guest data is
//! sent as far as the guest's credit allows.
//!
//! Connections are opened by the guest today (REQUEST → RESPONSE); one opened by the host
//! (exec, later) would start by owing a REQUEST and wait for the guest's RESPONSE.

use super::buffer::StreamBuffer;
use super::packet::{
    Reply, OP_CREDIT_REQUEST, OP_CREDIT_UPDATE, OP_RESPONSE, OP_RST, OP_RW, OP_SHUTDOWN,
    SHUTDOWN_RCV, SHUTDOWN_SEND,
};
use std::sync::Arc;

/// The `buf_alloc` advertised by a stream without a host consumer (its data is dropped).
const DISCARD_BUF_ALLOC: u32 = 64 * 1024;

/// The host end of a stream: where the guest's data goes, where the data for the guest
/// comes from (either may be absent).
#[derive(Clone, Default)]
pub struct HostEnd {
    /// Data from the host to the guest (stdin, control).
    pub to_guest: Option<Arc<StreamBuffer>>,
    /// Data from the guest to the host (stdout, stderr).
    pub from_guest: Option<Arc<StreamBuffer>>,
}

impl HostEnd {
    /// Ends both directions: the host threads stop waiting on them.
    fn close(&self) {
        if let Some(buffer) = &self.to_guest {
            buffer.finish_consuming();
        }
        if let Some(buffer) = &self.from_guest {
            buffer.finish_producing();
        }
    }
}

/// What a guest packet did to the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// It goes on.
    Open,
    /// The guest reset it: forget it, owe nothing.
    Closed,
}

/// A stream connection between a host port and a guest port.
pub struct Connection {
    /// The host's port.
    pub host_port: u32,
    /// The guest's port.
    pub guest_port: u32,
    host: HostEnd,
    /// Guest data received (the guest's `tx_cnt`, as far as we know it).
    received: u32,
    /// Guest data dropped because the stream has no host consumer.
    discarded: u32,
    /// The `fwd_cnt` the guest last heard from us.
    advertised_fwd_cnt: u32,
    /// Host data sent to the guest.
    sent: u32,
    peer_buf_alloc: u32,
    peer_fwd_cnt: u32,
    /// The guest's SHUTDOWN flags so far.
    peer_shutdown: u32,
    owe_response: bool,
    owe_credit_update: bool,
    owe_reset: bool,
    /// We asked for credit and have not heard from the guest since.
    credit_requested: bool,
    /// We told the guest we send no more (the host's input ended).
    shut_down_sending: bool,
}

impl Connection {
    /// A connection the guest requested (from `guest_port` to `host_port`, advertising
    /// `buf_alloc`/`fwd_cnt`), accepted: it owes the guest a RESPONSE.
    pub fn accepted(
        host_port: u32,
        guest_port: u32,
        host: HostEnd,
        buf_alloc: u32,
        fwd_cnt: u32,
    ) -> Self {
        Connection {
            host_port,
            guest_port,
            host,
            received: 0,
            discarded: 0,
            advertised_fwd_cnt: 0,
            sent: 0,
            peer_buf_alloc: buf_alloc,
            peer_fwd_cnt: fwd_cnt,
            peer_shutdown: 0,
            owe_response: true,
            owe_credit_update: false,
            owe_reset: false,
            credit_requested: false,
            shut_down_sending: false,
        }
    }

    /// Our buffer for the guest's data.
    fn buf_alloc(&self) -> u32 {
        self.host
            .from_guest
            .as_ref()
            .map_or(DISCARD_BUF_ALLOC, |buffer| {
                u32::try_from(buffer.capacity()).unwrap_or(u32::MAX)
            })
    }

    /// How much of the guest's data we have consumed (written out on the host, or dropped).
    fn fwd_cnt(&self) -> u32 {
        let consumed = self
            .host
            .from_guest
            .as_ref()
            .map_or(0, |buffer| buffer.consumed() as u32);
        consumed.wrapping_add(self.discarded)
    }

    /// How much the guest may still send before it hears from us again.
    fn guest_credit(&self) -> u32 {
        let in_flight = self.received.wrapping_sub(self.advertised_fwd_cnt);
        self.buf_alloc().saturating_sub(in_flight)
    }

    /// How much we may send to the guest now.
    fn our_credit(&self) -> u32 {
        let in_flight = self.sent.wrapping_sub(self.peer_fwd_cnt);
        self.peer_buf_alloc.saturating_sub(in_flight)
    }

    /// Applies a packet from the guest: its operation, SHUTDOWN flags, credit fields and
    /// payload.
    pub fn receive(
        &mut self,
        op: u16,
        flags: u32,
        buf_alloc: u32,
        fwd_cnt: u32,
        data: &[u8],
    ) -> Received {
        self.peer_buf_alloc = buf_alloc;
        self.peer_fwd_cnt = fwd_cnt;
        self.credit_requested = false;
        match op {
            OP_RW => self.receive_data(data),
            OP_CREDIT_UPDATE => {}
            OP_CREDIT_REQUEST => self.owe_credit_update = true,
            OP_SHUTDOWN => {
                self.peer_shutdown |= flags & (SHUTDOWN_RCV | SHUTDOWN_SEND);
                if self.peer_shutdown & SHUTDOWN_SEND != 0 {
                    if let Some(buffer) = &self.host.from_guest {
                        buffer.finish_producing();
                    }
                }
                if self.peer_shutdown & SHUTDOWN_RCV != 0 {
                    if let Some(buffer) = &self.host.to_guest {
                        buffer.finish_consuming();
                    }
                }
                if self.peer_shutdown == SHUTDOWN_RCV | SHUTDOWN_SEND {
                    self.reset();
                }
            }
            OP_RST => {
                self.host.close();
                return Received::Closed;
            }
            // A second REQUEST, a RESPONSE to nothing, an unknown operation.
            _ => self.reset(),
        }
        Received::Open
    }

    /// Takes the guest's data, unless the guest has no credit for it or said it was done.
    fn receive_data(&mut self, data: &[u8]) {
        let len = data.len() as u32;
        if self.peer_shutdown & SHUTDOWN_SEND != 0 || len > self.guest_credit() {
            self.reset();
            return;
        }
        self.received = self.received.wrapping_add(len);
        match &self.host.from_guest {
            Some(buffer) => {
                buffer.push(data);
            }
            None => self.discarded = self.discarded.wrapping_add(len),
        }
    }

    /// Resets the connection: the host side ends, the guest is owed an RST.
    fn reset(&mut self) {
        self.host.close();
        self.owe_reset = true;
    }

    /// The next packet the guest is owed, if any. For data, `write` gets the bytes to send
    /// (two slices, in order, at most `room` bytes in all) and returns how many it put in the
    /// packet. After an `OP_RST` reply the connection is over.
    pub fn next_reply(
        &mut self,
        room: usize,
        write: impl FnOnce(&[u8], &[u8]) -> usize,
    ) -> Option<Reply> {
        let (op, flags, len) = self.next_op(room, write)?;
        let fwd_cnt = self.fwd_cnt();
        self.advertised_fwd_cnt = fwd_cnt;
        Some(Reply {
            op,
            flags,
            len,
            buf_alloc: self.buf_alloc(),
            fwd_cnt,
        })
    }

    /// The operation, flags and data length of the next packet.
    fn next_op(
        &mut self,
        room: usize,
        write: impl FnOnce(&[u8], &[u8]) -> usize,
    ) -> Option<(u16, u32, u32)> {
        if self.owe_reset {
            return Some((OP_RST, 0, 0));
        }
        if self.owe_response {
            self.owe_response = false;
            return Some((OP_RESPONSE, 0, 0));
        }
        if let Some(op) = self.next_data(room, write) {
            return Some(op);
        }
        if let Some(buffer) = &self.host.from_guest {
            let drained = self.peer_shutdown & SHUTDOWN_SEND != 0 && buffer.drained();
            if drained || buffer.consumer_done() {
                // Everything the guest sent is written out (or can never be): the reset tells
                // the guest so.
                self.reset();
                return Some((OP_RST, 0, 0));
            }
        }
        let fwd_cnt = self.fwd_cnt();
        let stale =
            fwd_cnt != self.advertised_fwd_cnt && self.guest_credit() < self.buf_alloc() / 2;
        if self.owe_credit_update || stale {
            self.owe_credit_update = false;
            return Some((OP_CREDIT_UPDATE, 0, 0));
        }
        None
    }

    /// Host data for the guest, a request for credit, or the end of the host's data.
    fn next_data(
        &mut self,
        room: usize,
        write: impl FnOnce(&[u8], &[u8]) -> usize,
    ) -> Option<(u16, u32, u32)> {
        let buffer = self.host.to_guest.as_ref()?;
        if self.shut_down_sending || self.peer_shutdown & SHUTDOWN_RCV != 0 {
            return None;
        }
        if buffer.queued() == 0 {
            if buffer.drained() {
                self.shut_down_sending = true;
                return Some((OP_SHUTDOWN, SHUTDOWN_SEND, 0));
            }
            return None;
        }
        let credit = self.our_credit() as usize;
        if credit == 0 {
            if self.credit_requested {
                return None;
            }
            self.credit_requested = true;
            return Some((OP_CREDIT_REQUEST, 0, 0));
        }
        let limit = credit.min(room);
        if limit == 0 {
            return None;
        }
        let count = buffer.take(|first, second| {
            let first = &first[..first.len().min(limit)];
            let second = &second[..second.len().min(limit - first.len())];
            write(first, second)
        });
        self.sent = self.sent.wrapping_add(count as u32);
        Some((OP_RW, 0, count as u32))
    }
}
