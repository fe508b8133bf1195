//! SHA-256 digests: computing them while data streams past, and checking them.

use crate::error::{ImageError, Result};
use sha2::{Digest as _, Sha256};
use std::io::{self, Read, Write};

/// Returns `sha256:<hex>` of `bytes`.
pub fn sha256_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Returns the 64-hex part of a `sha256:<hex>` digest, or an error if it is not one.
pub fn sha256_hex(digest: &str) -> Result<&str> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if is_sha256_hex(hex) => Ok(hex),
        _ => Err(ImageError::Malformed {
            what: format!("digest {digest:?}"),
            reason: "only sha256 digests (sha256: + 64 lowercase hex digits) are supported".into(),
        }),
    }
}

/// True if `s` is exactly 64 lowercase hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Fails with [`ImageError::DigestMismatch`] unless `actual == expected`.
pub fn verify(what: &str, expected: &str, actual: &str) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(ImageError::DigestMismatch {
            what: what.to_string(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        })
    }
}

/// A reader that hashes and counts everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// Reads whatever is left (so the digest covers the whole stream) and returns
    /// `(sha256:<hex>, bytes read)`.
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        let hex = hex::encode(self.hasher.finalize());
        Ok((format!("sha256:{hex}"), self.bytes))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Returns the inner writer and `(sha256:<hex>, bytes written)`.
    pub fn finish(self) -> (W, String, u64) {
        let hex = hex::encode(self.hasher.finalize());
        (self.inner, format!("sha256:{hex}"), self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_and_writer_agree_with_one_shot_digest() {
        let data = b"hello layers";
        let expected = sha256_of(data);
        let (digest, n) = HashingReader::new(&data[..]).finish().unwrap();
        assert_eq!((digest.as_str(), n), (expected.as_str(), data.len() as u64));
        let mut writer = HashingWriter::new(Vec::new());
        writer.write_all(data).unwrap();
        let (out, digest, n) = writer.finish();
        assert_eq!(
            (out.as_slice(), digest.as_str(), n),
            (&data[..], expected.as_str(), 12)
        );
    }

    #[test]
    fn sha256_hex_rejects_other_algorithms_and_bad_hex() {
        assert!(sha256_hex("sha512:abcd").is_err());
        assert!(sha256_hex("sha256:ABCD").is_err());
        let ok = sha256_of(b"");
        assert_eq!(sha256_hex(&ok).unwrap().len(), 64);
    }
}
