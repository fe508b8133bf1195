//! virtio-vsock (virtio spec 1.2, 5.10): the host↔guest channel of
//! [`vmc_protocol::channel`]. The guest (CID [`GUEST_CID`]) connects to the host's stream
//! ports; the device carries each connection's packets between the guest's RX/TX queues and
//! the stream's host end ([`StreamBuffer`]s filled and drained by host threads, [`host`]).
//!
//! Queues: 0 RX (buffers the guest gives for packets to it), 1 TX (packets from it), 2 event
//! (transport events; vmc never sends one). Packet parsing is the `virtio-vsock` crate's; the
//! connection state machine ([`connection`]) and the port table ([`muxer`]) are vmc's.

pub mod buffer;
mod connection;
mod device;
pub mod host;
mod muxer;
mod packet;

pub use buffer::StreamBuffer;
pub use connection::HostEnd;
pub use device::Vsock;

use super::queue::{serve_available, ChainUse};
use muxer::Muxer;
use packet::MAX_PACKET_DATA;
use virtio_queue::Queue;
use virtio_vsock::packet::VsockPacket;
use vm_memory::GuestMemory;
use vmc_protocol::channel::GUEST_CID;

/// Index of the RX queue (device → guest).
pub const RX_QUEUE: usize = 0;
/// Index of the TX queue (guest → device).
pub const TX_QUEUE: usize = 1;
/// Index of the event queue.
pub const EVENT_QUEUE: usize = 2;
/// The size of each of the three queues.
pub const QUEUE_SIZE: u16 = 256;

/// Why a queue could not be served.
#[derive(Debug, thiserror::Error)]
pub enum VsockError {
    /// The guest's queue structures are not in guest memory.
    #[error("vsock queue: {0}")]
    Queue(#[from] virtio_queue::Error),
}

/// The vsock device's packet handling, independent of the transport.
pub struct VsockBackend {
    muxer: Muxer,
}

impl Default for VsockBackend {
    fn default() -> Self {
        VsockBackend {
            muxer: Muxer::new(GUEST_CID),
        }
    }
}

impl VsockBackend {
    /// Lets the guest connect once to host `port`, joined to `host`.
    pub fn listen(&mut self, port: u32, host: HostEnd) {
        self.muxer.listen(port, host);
    }

    /// The device's configuration space: the guest's CID (le64).
    pub fn config_space() -> [u8; 8] {
        GUEST_CID.to_le_bytes()
    }

    /// Takes every packet the guest queued on TX; returns whether any buffer was used (the
    /// guest is then owed an interrupt). Malformed packets are dropped.
    pub fn process_tx<M: GuestMemory>(
        &mut self,
        memory: &M,
        queue: &mut Queue,
    ) -> Result<bool, VsockError> {
        Ok(serve_available(queue, memory, |mut chain| {
            if let Ok(packet) =
                VsockPacket::from_tx_virtq_chain(memory, &mut chain, MAX_PACKET_DATA)
            {
                self.muxer.receive(&packet);
            }
            ChainUse::Used(0)
        })?)
    }

    /// Fills the guest's RX buffers with what it is owed; returns whether any buffer was used.
    pub fn process_rx<M: GuestMemory>(
        &mut self,
        memory: &M,
        queue: &mut Queue,
    ) -> Result<bool, VsockError> {
        Ok(serve_available(queue, memory, |mut chain| {
            match VsockPacket::from_rx_virtq_chain(memory, &mut chain, MAX_PACKET_DATA) {
                // Nothing owed: the buffer stays the guest's for later.
                Ok(mut packet) => self
                    .muxer
                    .send(&mut packet)
                    .map_or(ChainUse::Later, ChainUse::Used),
                // A buffer we cannot write a packet into is given back empty.
                Err(_) => ChainUse::Used(0),
            }
        })?)
    }
}

#[cfg(test)]
mod tests;
