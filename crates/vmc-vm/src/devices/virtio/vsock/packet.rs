//! The virtio-vsock packet header's constants (virtio spec 1.2, 5.10.6) and the header fields
//! vmc writes, on top of the `virtio-vsock` crate's packet parsing.

use virtio_vsock::packet::VsockPacket;
use vm_memory::bitmap::BitmapSlice;

/// The only socket type vmc supports: a stream.
pub const TYPE_STREAM: u16 = 1;

/// Connection request.
pub const OP_REQUEST: u16 = 1;
/// Connection accepted.
pub const OP_RESPONSE: u16 = 2;
/// Connection reset (refused, or closed for good).
pub const OP_RST: u16 = 3;
/// The sender will not receive (`SHUTDOWN_RCV`) and/or send (`SHUTDOWN_SEND`) any more.
pub const OP_SHUTDOWN: u16 = 4;
/// Data.
pub const OP_RW: u16 = 5;
/// The sender's buffer space changed (`buf_alloc`/`fwd_cnt` carry it).
pub const OP_CREDIT_UPDATE: u16 = 6;
/// The sender asks for a credit update.
pub const OP_CREDIT_REQUEST: u16 = 7;

/// `OP_SHUTDOWN` flag: no more data will be received.
pub const SHUTDOWN_RCV: u32 = 1;
/// `OP_SHUTDOWN` flag: no more data will be sent.
pub const SHUTDOWN_SEND: u32 = 2;

/// The largest payload accepted in one packet from the guest (Linux sends at most 64 KiB).
pub const MAX_PACKET_DATA: u32 = 64 * 1024;

/// What one packet to the guest says, apart from the addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// The operation.
    pub op: u16,
    /// `OP_SHUTDOWN`'s flags (0 otherwise).
    pub flags: u32,
    /// The payload length (for `OP_RW`).
    pub len: u32,
    /// The sender's buffer size for this connection.
    pub buf_alloc: u32,
    /// Bytes of the peer's data the sender has consumed.
    pub fwd_cnt: u32,
}

/// Writes the header of a packet from the host (`host_port`) to the guest (`guest_cid`,
/// `guest_port`) into an RX packet.
pub fn write_header<B: BitmapSlice>(
    packet: &mut VsockPacket<'_, B>,
    guest_cid: u64,
    host_port: u32,
    guest_port: u32,
    reply: Reply,
) {
    packet
        .set_src_cid(u64::from(vmc_protocol::channel::HOST_CID))
        .set_dst_cid(guest_cid)
        .set_src_port(host_port)
        .set_dst_port(guest_port)
        .set_type(TYPE_STREAM)
        .set_op(reply.op)
        .set_flags(reply.flags)
        .set_len(reply.len)
        .set_buf_alloc(reply.buf_alloc)
        .set_fwd_cnt(reply.fwd_cnt);
}
