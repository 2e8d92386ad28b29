//! How an age-encrypted descriptor or archive (st-1.2) is recognised: by its first
//! bytes. Decryption is [`crate::decrypt`]'s; packages read from files are never
//! decrypted, and [`super::refuse_encrypted`] says so.

/// The first line of every binary age file.
pub const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";
/// The first line of an ASCII-armored age file (`age -a`).
pub const ARMOR_MAGIC: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";

/// Whether these bytes start like an age file (binary or ASCII-armored).
pub fn encryption(head: &[u8]) -> Option<Format> {
    if head.starts_with(AGE_MAGIC) {
        Some(Format::Binary)
    } else if head.starts_with(ARMOR_MAGIC) {
        Some(Format::Armored)
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Binary,
    Armored,
}

/// Whether the first bytes of a download are an age file (binary or armored).
pub fn is_age(head: &[u8]) -> bool {
    encryption(head).is_some()
}
