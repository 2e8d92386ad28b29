//! The TPM 2.0 wire format (TPM 2.0 Library, Part 1 §17 and Part 2): big-endian
//! integers and `TPM2B_*` buffers, a 16-bit size before the bytes. [`Out`] writes,
//! [`In`] reads and names what it expected when the bytes end early, so a
//! malformed quote or public area is an error with a reason, never a panic.

use std::fmt;

/// A structure that could not be read: what was being read and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    pub what: String,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for WireError {}

pub type Result<T> = std::result::Result<T, WireError>;

pub fn error(what: impl Into<String>) -> WireError {
    WireError { what: what.into() }
}

/// Marshals a command or structure.
#[derive(Debug, Default, Clone)]
pub struct Out(pub Vec<u8>);

impl Out {
    pub fn new() -> Self {
        Out(Vec::new())
    }
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    /// A `TPM2B_*`: the 16-bit size, then the bytes. Callers keep `b` under 64 KiB
    /// (every TPM2B this crate writes is a digest, a key or a small blob).
    pub fn tpm2b(&mut self, b: &[u8]) -> &mut Self {
        let len = u16::try_from(b.len()).expect("a TPM2B is shorter than 64 KiB");
        self.u16(len).bytes(b)
    }
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

/// Reads a response or structure; each read names the field for its error.
#[derive(Debug, Clone)]
pub struct In<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> In<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        In { bytes, at: 0 }
    }
    pub fn position(&self) -> usize {
        self.at
    }
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }
    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(error(format!("{what}: needs {n} bytes at offset {}, {} left", self.at, self.remaining())));
        }
        let b = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(b)
    }
    pub fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    pub fn u16(&mut self, what: &str) -> Result<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64(&mut self, what: &str) -> Result<u64> {
        let b = self.take(8, what)?;
        Ok(u64::from_be_bytes(b.try_into().expect("8 bytes")))
    }
    /// A `TPM2B_*`'s bytes.
    pub fn tpm2b(&mut self, what: &str) -> Result<&'a [u8]> {
        let n = self.u16(what)? as usize;
        self.take(n, what)
    }
    /// Nothing may follow a structure that was read whole.
    pub fn end(&self, what: &str) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(error(format!("{what}: {n} unexpected bytes after the end"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_short_input_is_named() {
        let mut o = Out::new();
        o.u16(0x0102).u32(3).tpm2b(b"abc").u64(7);
        let v = o.into_vec();
        let mut i = In::new(&v);
        assert_eq!(i.u16("a").unwrap(), 0x0102);
        assert_eq!(i.u32("b").unwrap(), 3);
        assert_eq!(i.tpm2b("c").unwrap(), b"abc");
        assert_eq!(i.u64("d").unwrap(), 7);
        i.end("x").unwrap();
        let mut short = In::new(&v[..6]);
        short.u16("a").unwrap();
        short.u32("b").unwrap();
        let e = short.tpm2b("the name").unwrap_err();
        assert!(e.what.starts_with("the name: needs 2 bytes"), "{e}");
    }
}
