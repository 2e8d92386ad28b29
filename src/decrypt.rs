//! Age-encrypted OS packages (st-1.2): when the trust policy directory has
//! `decryption_identities`, a descriptor or archive that arrives as an age file
//! (`age-encryption.org/v1`) is decrypted right after its download, and everything
//! after (verification, measurement, boot) sees the plaintext. The `age` crate does the
//! cryptography; this module decides when to use it and says what went wrong.
//!
//! * the archive is decrypted from its tmpfs file into a second tmpfs file, hashed on
//!   the way (64 KiB at a time: never the whole package in the heap); the ciphertext
//!   file is removed as soon as the plaintext is complete;
//! * a package that is not encrypted is accepted, with a warning, when identities exist
//!   (the signatures, not the encryption, decide what boots);
//! * an encrypted package without identities, for identities that do not match, or
//!   with corrupt ciphertext is refused for this URL with the reason and the remedy.
//!
//! The identities are secrets: no error or log line ever contains a line of the file.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub use crate::config::identities::{Identities, IDENTITIES_FILE};
pub use crate::ospkg::age::{encryption, is_age, Format, AGE_MAGIC};

/// A decryptor for `input`, whose header must end within [`MAX_HEADER`] bytes of
/// `head` (the start of `input`): the crate re-reads the header from its start after
/// every line, so an unbounded header would cost time growing with the square of its
/// length, outside the download's stall timeout and deadline.
fn decryptor<R: io::BufRead>(
    ids: &Identities,
    head: &[u8],
    input: R,
    what: &str,
) -> Result<age::stream::StreamReader<WholeHeader<R>>, DecryptFailure> {
    let header = header_len(head).map_err(|reason| DecryptFailure {
        what: what.to_string(),
        path: ids.path.clone(),
        kind: FailureKind::Corrupt(reason),
    })?;
    let d = age::Decryptor::new_buffered(WholeHeader { inner: input, header }).map_err(|e| failure(ids, what, &e))?;
    d.decrypt(ids.keys().iter().map(|k| k as &dyn age::Identity)).map_err(|e| failure(ids, what, &e))
}

/// What went wrong decrypting with `ids`, as the operator is told.
fn failure(ids: &Identities, what: &str, e: &age::DecryptError) -> DecryptFailure {
    let kind = match e {
        age::DecryptError::NoMatchingKeys => {
            FailureKind::NoMatchingIdentity { tried: ids.len(), recipients: ids.recipients() }
        }
        age::DecryptError::Io(io) => FailureKind::Corrupt(io.to_string()),
        other => FailureKind::Corrupt(other.to_string()),
    };
    DecryptFailure { what: what.to_string(), path: ids.path.clone(), kind }
}

/// The most bytes an age header may take here: a header with one X25519 recipient
/// is about 200 bytes, one with 300 recipients about 32 KiB.
pub const MAX_HEADER: usize = 64 * 1024;

/// The length of the age header at the start of `head` (up to and including the
/// newline of its `---` MAC line), which must end within [`MAX_HEADER`] bytes.
fn header_len(head: &[u8]) -> Result<usize, String> {
    let window = &head[..head.len().min(MAX_HEADER)];
    let end = window.windows(4).position(|w| w == b"\n---").and_then(|i| {
        let after = i + 4;
        window[after..].iter().position(|&b| b == b'\n').map(|j| after + j + 1)
    });
    match end {
        Some(n) => Ok(n),
        None if head.len() < MAX_HEADER => Err("its header does not end (no complete --- line)".into()),
        None => Err(format!(
            "its header does not end within {} KiB (no complete --- line): not a header age writes",
            MAX_HEADER / 1024
        )),
    }
}

/// A reader that hands the age crate its whole header (`header` bytes, found by
/// [`header_len`]) in one `read_until`: the crate parses the header again from its
/// start after each `read_until`, which one line at a time costs the number of lines
/// times the header's length. After the header it reads as `inner` does.
pub struct WholeHeader<R> {
    inner: R,
    /// Header bytes not yet handed out.
    header: usize,
}

impl<R: io::BufRead> Read for WholeHeader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.header = self.header.saturating_sub(n);
        Ok(n)
    }
}

impl<R: io::BufRead> io::BufRead for WholeHeader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.header = self.header.saturating_sub(n);
        self.inner.consume(n)
    }

    fn read_until(&mut self, byte: u8, out: &mut Vec<u8>) -> io::Result<usize> {
        if self.header == 0 {
            return self.inner.read_until(byte, out);
        }
        // the rest of the header ends with a newline: read exactly up to it
        let start = out.len();
        out.resize(start + self.header, 0);
        let got = read_up_to(&mut self.inner, &mut out[start..])?;
        out.truncate(start + got);
        self.header -= got;
        Ok(got)
    }
}

/// Why an encrypted object could not be decrypted; says what to do.
#[derive(Debug)]
pub struct DecryptFailure {
    /// "descriptor https://..." or "archive https://...".
    pub what: String,
    pub path: PathBuf,
    pub kind: FailureKind,
}

#[derive(Debug)]
pub enum FailureKind {
    /// Encrypted, but this machine has no identities.
    NoIdentities,
    /// `age -a` output.
    Armored,
    NoMatchingIdentity {
        tried: usize,
        recipients: Vec<String>,
    },
    /// Bad header, bad MAC, truncated or altered ciphertext.
    Corrupt(String),
}

impl fmt::Display for DecryptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match &self.kind {
            FailureKind::NoIdentities => {
                write!(f, "{} is age-encrypted, but there is no {p} to decrypt it with", self.what)
            }
            FailureKind::Armored => {
                write!(f, "{} is an ASCII-armored age file (age -a); stboot reads binary age files only", self.what)
            }
            FailureKind::NoMatchingIdentity { tried, .. } => write!(
                f,
                "{} is age-encrypted to other recipients: {}",
                self.what,
                if *tried == 1 {
                    format!("the identity in {p} cannot decrypt it")
                } else {
                    format!("none of the {tried} identities in {p} can decrypt it")
                }
            ),
            FailureKind::Corrupt(e) => write!(f, "{} is a damaged age file: {e}", self.what),
        }
    }
}

impl std::error::Error for DecryptFailure {}

impl DecryptFailure {
    /// The kind, for the boot report.
    pub fn code(&self) -> &'static str {
        match &self.kind {
            FailureKind::NoIdentities => "no_identities",
            FailureKind::Armored => "armored",
            FailureKind::NoMatchingIdentity { .. } => "no_matching_identity",
            FailureKind::Corrupt(_) => "corrupt",
        }
    }

    pub fn remedy(&self) -> String {
        match &self.kind {
            FailureKind::NoIdentities => format!(
                "put this machine's age identity into {} (stmgr initramfs build -trustPolicy DIR takes DIR/{IDENTITIES_FILE}), or publish the package unencrypted",
                self.path.display()
            ),
            FailureKind::Armored => "encrypt without -a (armor): age -r age1... -o NAME.zip.age NAME.zip".into(),
            FailureKind::NoMatchingIdentity { recipients, .. } => format!(
                "encrypt the package to this machine's recipient{} {}",
                if recipients.len() == 1 { "" } else { "s (any one)" },
                recipients.join(", ")
            ),
            FailureKind::Corrupt(_) => "publish the encrypted file again: it was cut short or altered (the server's copy, or on the way)".into(),
        }
    }
}

/// The descriptor bytes to parse: decrypted if they are an age file. Returns whether
/// they were encrypted.
pub fn descriptor(bytes: Vec<u8>, ids: Option<&Identities>, what: &str, limit: u64) -> Result<(Vec<u8>, bool)> {
    let Some(format) = encryption(&bytes) else {
        return Ok((bytes, false));
    };
    let ids = check(format, ids, what)?;
    let mut plain = Vec::new();
    decryptor(ids, &bytes, &bytes[..], what)?
        .take(limit + 1)
        .read_to_end(&mut plain)
        .map_err(|e| failure(ids, what, &age::DecryptError::Io(e)))?;
    if plain.len() as u64 > limit {
        bail!("{what}: the decrypted descriptor is larger than {limit} bytes");
    }
    Ok((plain, true))
}

fn check<'a>(format: Format, ids: Option<&'a Identities>, what: &str) -> Result<&'a Identities, DecryptFailure> {
    let path = || {
        ids.map(|i| i.path.clone())
            .unwrap_or_else(|| Path::new(crate::config::paths::TRUST_POLICY_DIR).join(IDENTITIES_FILE))
    };
    let fail = |kind| DecryptFailure { what: what.to_string(), path: path(), kind };
    match (format, ids) {
        (Format::Armored, _) => Err(fail(FailureKind::Armored)),
        (Format::Binary, None) => Err(fail(FailureKind::NoIdentities)),
        (Format::Binary, Some(ids)) => Ok(ids),
    }
}

/// The age file downloaded to `file`, decrypted into `out` (the one-pass unzip,
/// [`crate::ospkg::stream`], which hashes what it unpacks): the length of the
/// plaintext, at most `limit` bytes. A write error of `out` (the archive refused
/// while it unpacked) is returned as it is.
pub fn archive(mut file: File, ids: Option<&Identities>, what: &str, out: &mut dyn Write, limit: u64) -> Result<u64> {
    let mut head = vec![0u8; MAX_HEADER];
    file.seek(SeekFrom::Start(0)).context("rewinding the downloaded archive")?;
    let n = read_up_to(&mut file, &mut head).context("reading the downloaded archive")?;
    head.truncate(n);
    let Some(format) = encryption(&head) else {
        bail!("{what}: not an age file");
    };
    let ids = check(format, ids, what)?;
    file.seek(SeekFrom::Start(0)).context("rewinding the downloaded archive")?;
    let reader = decryptor(ids, &head, BufReader::with_capacity(64 * 1024, &file), what)?;
    let mut counted = crate::io::Limit::new(reader, limit);
    match crate::io::copy(&mut counted, out) {
        Ok(()) => {}
        Err(crate::io::CopyError::Read(e)) => {
            if let Some(l) = crate::io::cause::<crate::io::LimitExceeded>(&e) {
                bail!("{what}: the decrypted archive is {l}");
            }
            let mut f = failure(ids, what, &age::DecryptError::Io(e));
            if let FailureKind::Corrupt(reason) = &mut f.kind {
                *reason = format!("{reason} after {} bytes of good plaintext", counted.count());
            }
            return Err(f.into());
        }
        Err(crate::io::CopyError::Write(e)) => {
            return Err(anyhow::Error::new(e).context(format!("{what}: unpacking the plaintext")))
        }
    }
    let len = counted.count();
    if len == 0 {
        bail!("{what}: the decrypted archive is empty");
    }
    Ok(len)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::x25519;
    use std::io::Write;

    fn encrypt(to: &x25519::Recipient, plain: &[u8]) -> Vec<u8> {
        let e = age::Encryptor::with_recipients(std::iter::once(to as &dyn age::Recipient)).unwrap();
        let mut out = Vec::new();
        let mut w = e.wrap_output(&mut out).unwrap();
        w.write_all(plain).unwrap();
        w.finish().unwrap();
        out
    }

    fn ids(keys: &[&x25519::Identity]) -> Identities {
        let text: String = keys
            .iter()
            .map(|k| {
                use age::secrecy::ExposeSecret;
                format!("# created: now\n{}\n", k.to_string().expose_secret())
            })
            .collect();
        Identities::parse(text.as_bytes(), Path::new("/etc/trust_policy/decryption_identities")).unwrap()
    }

    #[test]
    fn identity_file_errors_name_the_line_and_never_echo_it() {
        let p = Path::new("decryption_identities");
        let e = Identities::parse(b"# c\n\nAGE-SECRET-KEY-1SECRETSECRET\n", p).unwrap_err().to_string();
        assert!(e.contains("line 3") && !e.contains("SECRETSECRET"), "{e}");
        let e = Identities::parse(b"# only a comment\n", p).unwrap_err().to_string();
        assert!(e.contains("no identity"), "{e}");
        let e = Identities::parse(b"AGE-PLUGIN-YUBIKEY-1QQQ\n", p).unwrap_err().to_string();
        assert!(e.contains("plugin"), "{e}");
    }

    #[test]
    fn descriptor_round_trip_and_failures() {
        let k = x25519::Identity::generate();
        let other = x25519::Identity::generate();
        let plain = br#"{"version":1}"#.to_vec();
        let ct = encrypt(&k.to_public(), &plain);
        let mine = ids(&[&other, &k]);
        assert_eq!(descriptor(ct.clone(), Some(&mine), "descriptor d", 1 << 20).unwrap(), (plain.clone(), true));
        // unencrypted passes through
        assert_eq!(descriptor(plain.clone(), Some(&mine), "d", 1 << 20).unwrap(), (plain.clone(), false));
        // no identities
        let e = descriptor(ct.clone(), None, "descriptor d", 1 << 20).unwrap_err();
        let f = e.downcast_ref::<DecryptFailure>().unwrap();
        assert!(matches!(f.kind, FailureKind::NoIdentities), "{f}");
        // wrong identity: the remedy names our recipient, not the secret
        let e = descriptor(ct.clone(), Some(&ids(&[&other])), "descriptor d", 1 << 20).unwrap_err();
        let f = e.downcast_ref::<DecryptFailure>().unwrap();
        assert!(
            f.to_string()
                .contains("to other recipients: the identity in /etc/trust_policy/decryption_identities cannot"),
            "{f}"
        );
        assert!(f.remedy().contains(&other.to_public().to_string()), "{}", f.remedy());
        // a flipped byte in the payload
        let mut bad = ct.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let e = descriptor(bad, Some(&mine), "descriptor d", 1 << 20).unwrap_err();
        assert!(matches!(e.downcast_ref::<DecryptFailure>().unwrap().kind, FailureKind::Corrupt(_)), "{e}");
        // too large after decryption
        let e = descriptor(ct, Some(&mine), "descriptor d", 4).unwrap_err();
        assert!(e.to_string().contains("larger than 4 bytes"), "{e}");
    }

    /// A header that never ends (a hostile server's `-> ` and then bytes without a
    /// newline) is refused at once: the crate's reader once spent 82 s on 300 kB and
    /// never finished 1 MB, holding the boot past every URL's budget.
    #[test]
    fn a_header_that_never_ends_is_refused_at_once() {
        let k = x25519::Identity::generate();
        let mine = ids(&[&k]);
        let mut endless = b"age-encryption.org/v1\n-> ".to_vec();
        endless.resize(1 << 20, b'A');
        let t = std::time::Instant::now();
        let e = descriptor(endless.clone(), Some(&mine), "descriptor d", 1 << 20).unwrap_err();
        let f = e.downcast_ref::<DecryptFailure>().unwrap();
        assert!(matches!(f.kind, FailureKind::Corrupt(_)), "{f}");
        assert!(f.to_string().contains("its header does not end within 64 KiB"), "{f}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c");
        std::fs::write(&p, &endless).unwrap();
        let e = archive(File::open(&p).unwrap(), Some(&mine), "archive a", &mut Vec::new(), 1 << 30).unwrap_err();
        assert!(e.to_string().contains("its header does not end within 64 KiB"), "{e}");
        // a short file whose header stops mid-way says so too
        let e = descriptor(b"age-encryption.org/v1\n-> X25519 abc\n".to_vec(), Some(&mine), "d", 1 << 20).unwrap_err();
        assert!(e.to_string().contains("its header does not end (no complete --- line)"), "{e}");
        // the worst header that fits: 64 KiB of the smallest stanzas, parsed and refused
        let mut many = b"age-encryption.org/v1\n".to_vec();
        while many.len() < MAX_HEADER - 64 {
            many.extend_from_slice(b"-> a\n\n");
        }
        many.extend_from_slice(b"--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
        let e = descriptor(many, Some(&mine), "d", 1 << 20).unwrap_err();
        assert!(e.downcast_ref::<DecryptFailure>().is_some(), "{e}");
        eprintln!("three hostile headers refused in {:?} (limit: none of them may hold a boot)", t.elapsed());
    }

    #[test]
    fn archive_is_decrypted_into_a_sink() {
        let dir = tempfile::tempdir().unwrap();
        let k = x25519::Identity::generate();
        let plain: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
        let ct = encrypt(&k.to_public(), &plain);
        let cpath = dir.path().join("c");
        std::fs::write(&cpath, &ct).unwrap();
        let open = || File::open(&cpath).unwrap();
        let mut back = Vec::new();
        let len = archive(open(), Some(&ids(&[&k])), "archive a", &mut back, 1 << 30).unwrap();
        assert_eq!(len, plain.len() as u64);
        assert_eq!(back, plain);
        assert!(is_age(&ct) && !is_age(b"PK\x03\x04"));
        // truncated ciphertext: refused as corrupt
        std::fs::write(&cpath, &ct[..ct.len() - 100]).unwrap();
        let e = archive(open(), Some(&ids(&[&k])), "archive a", &mut Vec::new(), 1 << 30).unwrap_err();
        assert!(matches!(e.downcast_ref::<DecryptFailure>().unwrap().kind, FailureKind::Corrupt(_)), "{e}");
        // over the limit
        std::fs::write(&cpath, &ct).unwrap();
        let e = archive(open(), Some(&ids(&[&k])), "archive a", &mut Vec::new(), 1000).unwrap_err();
        assert!(e.to_string().contains("more than the limit of 1000 bytes"), "{e}");
        // not encrypted
        std::fs::write(&cpath, b"PK\x03\x04").unwrap();
        let e = archive(open(), Some(&ids(&[&k])), "archive a", &mut Vec::new(), 1000).unwrap_err();
        assert!(e.to_string().contains("not an age file"), "{e}");
    }
}
