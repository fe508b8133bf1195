//! The host↔guest channel: virtio-vsock stream connections between vmc-init (guest CID
//! [`GUEST_CID`]) and the VMM (host CID [`HOST_CID`]).
//!
//! Before it starts the workload, the guest init opens one connection per [`Stream`] to the
//! stream's host port (stdin only for `-i`, stderr only without `-t`). The VMM accepts each
//! port once and refuses (RST) any other. Each connection has its own virtio-vsock credit, so
//! each stream has its own flow control: a blocked stdout stops only stdout.
//!
//! - **stdin** (host → guest): vmc's stdin; the host shuts its side down at end of input, so the
//!   workload reads end-of-file.
//! - **stdout**, **stderr** (guest → host): the workload's output. The guest shuts its side down
//!   once the workload has exited; the host answers with a reset once everything it received is
//!   written to vmc's stdout/stderr, which is how the init knows the output is drained before it
//!   reports the exit status.
//! - **control** (host → guest): [`ControlMessage`]s, framed as below.
//!
//! Control framing: each message is `kind` (1 byte), `length` (1 byte), then `length` bytes of
//! payload. A reader skips messages of a kind it does not know (room for exec, stop, …).
//!
//! | kind | payload                              | means                                   |
//! |------|--------------------------------------|-----------------------------------------|
//! | 1    | signal number (1 byte)               | send this signal to the workload        |
//! | 2    | rows, cols (2 × u16 little-endian)   | the terminal is now rows × cols         |

/// The host's context id (VMADDR_CID_HOST): where the guest connects to.
pub const HOST_CID: u32 = 2;

/// The guest's context id, in the vsock device's configuration space.
pub const GUEST_CID: u64 = 3;

/// A stream of the channel, one vsock connection each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    /// vmc's stdin, to the workload.
    Stdin,
    /// The workload's stdout, to vmc's stdout.
    Stdout,
    /// The workload's stderr, to vmc's stderr.
    Stderr,
    /// Control messages from the host ([`ControlMessage`]).
    Control,
}

impl Stream {
    /// Every stream.
    pub const ALL: [Stream; 4] = [
        Stream::Stdin,
        Stream::Stdout,
        Stream::Stderr,
        Stream::Control,
    ];

    /// The stream's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdin => "stdin",
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Control => "control",
        }
    }

    /// The host port the guest connects to for this stream.
    pub fn port(self) -> u32 {
        match self {
            Stream::Stdin => 1000,
            Stream::Stdout => 1001,
            Stream::Stderr => 1002,
            Stream::Control => 1003,
        }
    }
}

/// Kind byte of [`ControlMessage::Signal`].
const KIND_SIGNAL: u8 = 1;
/// Kind byte of [`ControlMessage::Resize`].
const KIND_RESIZE: u8 = 2;
/// Bytes of a message's frame before its payload (kind, length).
const FRAME_HEADER: usize = 2;

/// A message on the control stream, host to guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlMessage {
    /// Send this signal (its number) to the workload.
    Signal(u8),
    /// The host terminal's new size: resize the workload's terminal.
    Resize {
        /// Rows.
        rows: u16,
        /// Columns.
        cols: u16,
    },
}

impl ControlMessage {
    /// Appends the framed message to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            ControlMessage::Signal(signal) => out.extend_from_slice(&[KIND_SIGNAL, 1, signal]),
            ControlMessage::Resize { rows, cols } => {
                out.extend_from_slice(&[KIND_RESIZE, 4]);
                out.extend_from_slice(&rows.to_le_bytes());
                out.extend_from_slice(&cols.to_le_bytes());
            }
        }
    }

    /// The message a complete frame (`kind`, `payload`) carries; `None` for an unknown kind or
    /// a payload of the wrong size.
    fn decode(kind: u8, payload: &[u8]) -> Option<ControlMessage> {
        match (kind, payload) {
            (KIND_SIGNAL, &[signal]) => Some(ControlMessage::Signal(signal)),
            (KIND_RESIZE, &[r0, r1, c0, c1]) => Some(ControlMessage::Resize {
                rows: u16::from_le_bytes([r0, r1]),
                cols: u16::from_le_bytes([c0, c1]),
            }),
            _ => None,
        }
    }
}

/// Turns the control stream's bytes back into messages, across reads that split a frame.
#[derive(Debug, Default)]
pub struct ControlDecoder {
    pending: Vec<u8>,
}

impl ControlDecoder {
    /// The messages that `bytes` completes (unknown or malformed frames are skipped).
    pub fn decode(&mut self, bytes: &[u8]) -> Vec<ControlMessage> {
        self.pending.extend_from_slice(bytes);
        let mut messages = Vec::new();
        let mut start = 0;
        while let [kind, length, ..] = self.pending[start..] {
            let end = start + FRAME_HEADER + usize::from(length);
            if end > self.pending.len() {
                break;
            }
            messages.extend(ControlMessage::decode(
                kind,
                &self.pending[start + FRAME_HEADER..end],
            ));
            start = end;
        }
        self.pending.drain(..start);
        messages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_survive_any_split() {
        let sent = [
            ControlMessage::Signal(15),
            ControlMessage::Resize {
                rows: 40,
                cols: 300,
            },
            ControlMessage::Signal(9),
        ];
        let mut stream = Vec::new();
        sent.iter().for_each(|message| message.encode(&mut stream));
        assert_eq!(stream, [1, 1, 15, 2, 4, 40, 0, 44, 1, 1, 1, 9]);
        for piece in 1..=stream.len() {
            let mut decoder = ControlDecoder::default();
            let received: Vec<_> = stream
                .chunks(piece)
                .flat_map(|chunk| decoder.decode(chunk))
                .collect();
            assert_eq!(received, sent, "in pieces of {piece}");
        }
    }

    #[test]
    fn unknown_and_malformed_frames_are_skipped() {
        let stream = [7, 3, 1, 2, 3, 1, 2, 0, 0, 1, 1, 2];
        assert_eq!(
            ControlDecoder::default().decode(&stream),
            [ControlMessage::Signal(2)]
        );
    }

    #[test]
    fn ports_are_distinct() {
        let mut ports: Vec<_> = Stream::ALL.iter().map(|stream| stream.port()).collect();
        ports.dedup();
        assert_eq!(ports.len(), Stream::ALL.len());
    }
}
