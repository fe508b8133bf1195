//! How a VM run's stdin crosses the serial line, end included.
//!
//! A serial line carries bytes but has no way to say "no more input", and a pipe's end is
//! what makes `echo x | vmc run -i … cat` finish. So for a non-terminal interactive run the
//! VMM encodes stdin with one escape byte and the guest init decodes it:
//!
//! | on the line             | means                          |
//! |-------------------------|--------------------------------|
//! | any byte but `0xff`     | that byte                      |
//! | `0xff 0xff`             | the byte `0xff`                |
//! | `0xff 0x00`             | end of input (the pipe closes) |
//! | `0xff` then other bytes | reserved: dropped              |
//!
//! A terminal run (`-t`) sends keys unchanged: there, Ctrl-D is the end of input, as on any
//! terminal.

/// The escape byte.
pub const ESCAPE: u8 = 0xff;

/// The byte after [`ESCAPE`] that ends the input.
const END: u8 = 0x00;

/// What the VMM sends when its stdin ends.
pub const END_OF_INPUT: [u8; 2] = [ESCAPE, END];

/// Appends `input`, escaped, to `line`.
pub fn encode(input: &[u8], line: &mut Vec<u8>) {
    for &byte in input {
        line.push(byte);
        if byte == ESCAPE {
            line.push(ESCAPE);
        }
    }
}

/// Decodes the line back into the input, across reads that split an escape sequence.
#[derive(Debug, Default)]
pub struct Decoder {
    after_escape: bool,
    ended: bool,
}

impl Decoder {
    /// Appends the input that `line` carries to `input`. Returns `true` once the end of input
    /// has been seen; the bytes after it are ignored.
    pub fn decode(&mut self, line: &[u8], input: &mut Vec<u8>) -> bool {
        for &byte in line {
            if self.ended {
                break;
            }
            match (self.after_escape, byte) {
                (false, ESCAPE) => self.after_escape = true,
                (false, byte) => input.push(byte),
                (true, ESCAPE) => {
                    input.push(ESCAPE);
                    self.after_escape = false;
                }
                (true, END) => self.ended = true,
                (true, _) => self.after_escape = false,
            }
        }
        self.ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(line: &[u8], piece: usize) -> (Vec<u8>, bool) {
        let mut decoder = Decoder::default();
        let mut input = Vec::new();
        let mut ended = false;
        for chunk in line.chunks(piece) {
            ended = decoder.decode(chunk, &mut input);
        }
        (input, ended)
    }

    #[test]
    fn every_byte_value_survives_the_round_trip_in_any_split() {
        let input: Vec<u8> = (0..=255).chain([0xff, 0xff, 0x00, 0x04]).collect();
        let mut line = Vec::new();
        encode(&input, &mut line);
        assert_eq!(line.len(), input.len() + 3, "each 0xff is doubled");
        for piece in [1, 2, 3, 7, line.len()] {
            assert_eq!(decode_in_pieces(&line, piece), (input.clone(), false));
        }
    }

    #[test]
    fn the_end_marker_ends_the_input_even_when_split() {
        let mut line = Vec::new();
        encode(b"last line\n", &mut line);
        line.extend_from_slice(&END_OF_INPUT);
        line.extend_from_slice(b"ignored");
        for piece in [1, 4, line.len()] {
            assert_eq!(
                decode_in_pieces(&line, piece),
                (b"last line\n".to_vec(), true)
            );
        }
    }

    #[test]
    fn reserved_escape_sequences_are_dropped() {
        let (input, ended) = decode_in_pieces(&[b'a', ESCAPE, 0x07, b'b'], 1);
        assert_eq!((input, ended), (b"ab".to_vec(), false));
    }
}
