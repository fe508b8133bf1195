//! What the VMM tells the guest init on the receive line of COM2 (the guest's ttyS1): the
//! signals vmc received, for the workload, and new sizes of vmc's terminal in a `-t` run.
//!
//! | on the line                          | means                                           |
//! |--------------------------------------|-------------------------------------------------|
//! | `N` (one byte, N ≠ 28)               | send signal N to the workload                   |
//! | `28` (SIGWINCH), rows, cols (2 × u16 big-endian) | the terminal is now rows × cols: resize the console (the kernel then signals the workload) |

use nix::sys::signal::Signal;

/// One message to the guest init.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestControl {
    /// Send this signal to the workload.
    Signal(Signal),
    /// Give the console this size (rows, columns).
    Resize {
        /// Rows.
        rows: u16,
        /// Columns.
        cols: u16,
    },
}

/// The bytes of a resize message after its first byte.
const RESIZE_ARGUMENT_BYTES: usize = 4;

impl GuestControl {
    /// Appends the message's bytes to `line`.
    pub fn encode(&self, line: &mut Vec<u8>) {
        match *self {
            GuestControl::Signal(signal) => line.push(signal as u8),
            GuestControl::Resize { rows, cols } => {
                line.push(Signal::SIGWINCH as u8);
                line.extend_from_slice(&rows.to_be_bytes());
                line.extend_from_slice(&cols.to_be_bytes());
            }
        }
    }
}

/// Turns the line's bytes back into messages, across reads that split a resize message.
#[derive(Debug, Default)]
pub struct Decoder {
    resize: Option<Vec<u8>>,
}

impl Decoder {
    /// The messages that `bytes` completes; bytes that are no signal are dropped.
    pub fn decode(&mut self, bytes: &[u8]) -> Vec<GuestControl> {
        let mut messages = Vec::new();
        for &byte in bytes {
            if let Some(argument) = &mut self.resize {
                argument.push(byte);
                if argument.len() == RESIZE_ARGUMENT_BYTES {
                    messages.push(GuestControl::Resize {
                        rows: u16::from_be_bytes([argument[0], argument[1]]),
                        cols: u16::from_be_bytes([argument[2], argument[3]]),
                    });
                    self.resize = None;
                }
            } else if byte == Signal::SIGWINCH as u8 {
                self.resize = Some(Vec::with_capacity(RESIZE_ARGUMENT_BYTES));
            } else if let Ok(signal) = Signal::try_from(i32::from(byte)) {
                messages.push(GuestControl::Signal(signal));
            }
        }
        messages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_survive_the_line_in_any_split() {
        let sent = [
            GuestControl::Signal(Signal::SIGTERM),
            GuestControl::Resize {
                rows: 40,
                cols: 300,
            },
            GuestControl::Signal(Signal::SIGKILL),
        ];
        let mut line = Vec::new();
        sent.iter().for_each(|message| message.encode(&mut line));
        assert_eq!(line, [15, 28, 0, 40, 1, 44, 9]);
        for piece in 1..=line.len() {
            let mut decoder = Decoder::default();
            let received: Vec<_> = line.chunks(piece).flat_map(|c| decoder.decode(c)).collect();
            assert_eq!(received, sent, "in pieces of {piece}");
        }
    }

    #[test]
    fn bytes_that_are_no_signal_are_dropped() {
        assert_eq!(
            Decoder::default().decode(&[0, 200, 2]),
            [GuestControl::Signal(Signal::SIGINT)]
        );
    }
}
