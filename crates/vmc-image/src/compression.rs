//! Recognising and undoing layer compression (none, gzip, zstd).

use crate::error::{IoContext, Result};
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// How a layer blob is compressed, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (`1f 8b`).
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
}

impl Compression {
    /// Recognises the compression from the first bytes of a blob.
    pub fn sniff(magic: &[u8]) -> Compression {
        if magic.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// Recognises the compression of the file at `path`.
    pub fn of_file(path: &Path) -> Result<Compression> {
        let mut magic = [0u8; 4];
        let mut file = File::open(path).io_ctx("opening", path)?;
        let n = read_up_to(&mut file, &mut magic).io_ctx("reading", path)?;
        Ok(Compression::sniff(&magic[..n]))
    }
}

/// Reads until `buf` is full or EOF; returns the byte count.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Opens a layer blob as an uncompressed tar stream.
pub fn open_tar_stream(path: &Path) -> Result<Box<dyn Read>> {
    let mut reader = BufReader::new(File::open(path).io_ctx("opening", path)?);
    let magic = reader.fill_buf().io_ctx("reading", path)?;
    match Compression::sniff(magic) {
        Compression::None => Ok(Box::new(reader)),
        Compression::Gzip => Ok(Box::new(MultiGzDecoder::new(reader))),
        Compression::Zstd => Ok(Box::new(
            zstd::stream::read::Decoder::with_buffer(reader).io_ctx("reading zstd stream", path)?,
        )),
    }
}
