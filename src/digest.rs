//! [`Sha256Digest`]: the one type of a SHA-256 digest, wherever one travels: the
//! archive's (what the signatures cover), a descriptor's, a certificate's, a
//! measurement's, and a PCR value of the TPM's SHA-256 bank. Shown as lower-case hex.

use std::fmt;

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// A digest computed elsewhere (a hasher's result, bytes read from a TPM).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// 64 hex digits (either case), as operators write a digest into a list; `None`
    /// for anything else.
    pub fn from_hex(text: &str) -> Option<Self> {
        unhex(text)?.try_into().ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, 64 digits.
    pub fn hex(&self) -> String {
        hex(&self.0)
    }
}

/// Lower-case hex of any bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of an even number of hex digits (either case); `None` for anything
/// else. The inverse of [`hex`].
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len() / 2).map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({})", self.hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer_in_hex() {
        let d = Sha256Digest::of(b"");
        assert_eq!(d.to_string(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(format!("{d:?}"), format!("Sha256Digest({d})"));
    }

    #[test]
    fn unhex_inverts_hex_and_refuses_the_rest() {
        let d = Sha256Digest::of(b"x");
        assert_eq!(unhex(&d.hex()).unwrap(), d.as_bytes());
        assert_eq!(Sha256Digest::from_hex(&d.hex().to_uppercase()), Some(d));
        assert_eq!(unhex("0A0b").unwrap(), [10, 11]);
        for bad in ["0", "zz", "0g", "\u{e9}0", "a\u{e9}", "\u{e9}\u{e9}"] {
            assert_eq!(unhex(bad), None, "{bad:?}");
        }
        assert_eq!(Sha256Digest::from_hex("00"), None, "a digest is 32 bytes");
    }
}
