//! One-pass reading of an OS package archive while it streams in: every entry is
//! inflated from its local header into its own private file as the bytes arrive, so
//! the zip itself is never kept. Nothing here decides what is booted: the caller
//! hashes the same bytes, verifies the signatures over that hash, and only then uses
//! the files. [`Unzip::finish`] cross-checks the central directory against what was
//! streamed (names, offsets, flags, methods, sizes, CRC-32s, the entry count); any
//! disagreement, and anything a reader of the central directory would see
//! differently (duplicate names, Info-ZIP Unicode Path fields, bytes before the first
//! entry or between entries, data after the end record), refuses the archive as
//! ambiguous, as [`super::Archive::open`] does for archives read from a file.
//!
//! What cannot be streamed is refused with the reason: a stored (uncompressed) entry
//! with a data descriptor (its end cannot be found without the central directory),
//! encryption, and compression methods other than stored and Deflate. Go's
//! `archive/zip` (upstream's stmgr) writes Deflate entries with data descriptors, the
//! zip crate (this stmgr) writes sizes in the local headers: both stream.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use flate2::{Decompress, FlushDecompress, Status};

use super::archive::{check_entries, Entries, MAX_MANIFEST_BYTES};
use super::manifest::{Manifest, MANIFEST_NAME};
use crate::digest::Sha256Digest;

const LOCAL: u32 = 0x0403_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const DESCRIPTOR: u32 = 0x0807_4b50;
const END: u32 = 0x0605_4b50;
const END64: u32 = 0x0606_4b50;
const END64_LOCATOR: u32 = 0x0706_4b50;
/// Info-ZIP Unicode Path extra field.
const UNICODE_PATH: u16 = 0x7075;
const ZIP64: u16 = 0x0001;
const REMEDY: &str = "rebuild the package with `stmgr ospkg create`";

/// Bounds on what an archive may make the staging directory hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// All entries together, inflated.
    pub total: u64,
    /// Entries (upstream's packages have four).
    pub entries: usize,
    /// The central directory and end records.
    pub tail: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { total: 1 << 30, entries: 64, tail: 1 << 20 }
    }
}

/// One entry as it was streamed: its name, where its local header was, and, unless
/// it is a directory, the private file its inflated bytes went to. Only the
/// streaming reader makes one, and nothing outside this crate can change it.
#[derive(Debug)]
pub struct Entry {
    name: String,
    /// Offset of its local header in the archive.
    offset: u64,
    flags: u16,
    method: u16,
    /// MS-DOS time and date of its local header.
    modified: u32,
    crc32: u32,
    compressed: u64,
    size: u64,
    /// The inflated bytes (`None` for a directory); removed with the entry.
    file: Option<(File, PathBuf)>,
}

impl Entry {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Inflated size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Where its bytes are (`None` for a directory).
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|(_, p)| p.as_path())
    }

    /// The writer of its file and the file's path, for staging, which takes the
    /// entry (the file is then removed when the taker is done with it).
    pub(crate) fn into_file(mut self) -> Option<(File, PathBuf)> {
        self.file.take()
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some((_, p)) = &self.file {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The entries of an archive that streamed through and passed the cross-check.
#[derive(Debug)]
pub struct Streamed {
    entries: Vec<Entry>,
}

/// An archive that was unpacked while it streamed in, with the SHA-256 and length of
/// the archive bytes its entries came from, taken by the same reader that unpacked
/// them ([`Unzip::finish`] is the only maker): the digest the signatures are checked
/// against is the digest of the bytes these entries were inflated from. The zip
/// itself was not kept.
///
/// Nobody else can make one, or change one, so no code outside the reader can pair
/// entries with a digest of its choosing:
///
/// ```compile_fail
/// use stboot::ospkg::package::StreamedArchive;
/// fn forge(entries: stboot::ospkg::stream::Streamed) -> StreamedArchive {
///     StreamedArchive { entries, sha256: [0; 32], len: 1 }
/// }
/// ```
#[derive(Debug)]
pub struct StreamedArchive {
    entries: Streamed,
    sha256: Sha256Digest,
    len: u64,
}

impl StreamedArchive {
    pub fn entries(&self) -> &Streamed {
        &self.entries
    }

    /// SHA-256 of the archive bytes.
    pub fn sha256(&self) -> &Sha256Digest {
        &self.sha256
    }

    /// Length of the archive in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries, for staging, which consumes the verified package.
    pub(crate) fn into_entries(self) -> Streamed {
        self.entries
    }
}

impl Streamed {
    /// Every entry, in archive order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Take the entry called `name` out (its file then lives as long as the taker
    /// keeps it).
    pub(crate) fn take(&mut self, name: &str) -> Option<Entry> {
        let i = self.entries.iter().position(|e| e.name == name)?;
        Some(self.entries.remove(i))
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The manifest, checked for what booting needs, as
    /// [`super::Archive::manifest_checked`] checks it: its kernel and initramfs
    /// entries exist and are non-empty files, and the kernel is an x86 bzImage.
    pub fn manifest_checked(&self) -> Result<Manifest> {
        let m = read_entry(self, MANIFEST_NAME, MAX_MANIFEST_BYTES + 1)?;
        if m.len() as u64 > MAX_MANIFEST_BYTES {
            bail!("archive: entry {MANIFEST_NAME:?} declares more than the limit of {MAX_MANIFEST_BYTES} bytes");
        }
        let m = Manifest::parse(&m)?;
        check_entries(&m, &mut &*self)?;
        Ok(m)
    }

    /// Bytes all entries hold.
    pub fn size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }
}

/// The first `max` bytes of unpacked entry `name`.
fn read_entry(s: &Streamed, name: &str, max: u64) -> Result<Vec<u8>> {
    read_entry_at(s, name, 0, max)
}

/// At most `max` bytes of unpacked entry `name` from `offset` on.
fn read_entry_at(s: &Streamed, name: &str, offset: u64, max: u64) -> Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let e = s.get(name).ok_or_else(|| anyhow!("archive: no entry named {name:?}"))?;
    let Some((f, path)) = &e.file else {
        bail!("archive: entry {name:?} named by the manifest is empty or a directory, expected a file")
    };
    let mut f: &File = f;
    f.seek(SeekFrom::Start(offset)).map_err(|e| anyhow!("reading {}: {e}", path.display()))?;
    let mut buf = Vec::new();
    f.take(max).read_to_end(&mut buf).map_err(|e| anyhow!("reading {}: {e}", path.display()))?;
    Ok(buf)
}

impl Entries for &Streamed {
    fn is_file(&mut self, name: &str) -> Result<Option<bool>> {
        Ok(self.get(name).map(|e| e.file.is_some() && e.size > 0))
    }

    fn size(&mut self, name: &str) -> Result<u64> {
        self.get(name).map(|e| e.size).ok_or_else(|| anyhow!("archive: no entry named {name:?}"))
    }

    fn read_at(&mut self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        read_entry_at(self, name, offset, len as u64)
    }

    fn copy_to(&mut self, name: &str, out: &mut dyn std::io::Write) -> Result<()> {
        use std::io::{Seek, SeekFrom};
        let e = self.get(name).ok_or_else(|| anyhow!("archive: no entry named {name:?}"))?;
        let Some((f, path)) = &e.file else { bail!("archive: entry {name:?} is a directory, expected a file") };
        let mut f: &File = f;
        f.seek(SeekFrom::Start(0)).map_err(|e| anyhow!("reading {}: {e}", path.display()))?;
        std::io::copy(&mut f, out).map_err(|e| anyhow!("reading {}: {e}", path.display()))?;
        Ok(())
    }
}

/// Where the parser is.
enum State {
    /// Expecting a local header, or the central directory.
    Header,
    Stored {
        left: u64,
    },
    Deflate(Box<Decompress>),
    /// After a Deflate entry with flag 0x0008.
    Descriptor,
    /// The central directory and end records: kept, checked by `finish`.
    Tail,
}

/// The entry being streamed.
struct Current {
    entry: Entry,
    /// Sizes and CRC from the local header (zero with a data descriptor).
    declared: (u32, u64, u64),
    zip64: bool,
    crc: crc32fast::Hasher,
    consumed: u64,
    written: u64,
}

/// A `Write` sink that parses a zip as it is written to it. Errors are kept and
/// reported by [`Unzip::finish`] (a write returns an `io::Error` with the same text).
pub struct Unzip {
    /// SHA-256 and length of every byte written: the archive's digest.
    hash: sha2::Sha256,
    written: u64,
    dir: PathBuf,
    limits: Limits,
    state: State,
    pending: Vec<u8>,
    offset: u64,
    total: u64,
    entries: Vec<Entry>,
    current: Option<Current>,
    tail: Vec<u8>,
    tail_offset: u64,
    error: Option<String>,
    out: Vec<u8>,
}

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64le(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The extra fields of a header: refuses Unicode Path, returns the zip64 field.
fn extra_fields(extra: &[u8], what: &str) -> Result<Option<Vec<u8>>> {
    let mut zip64 = None;
    let mut i = 0;
    while i + 4 <= extra.len() {
        let (id, len) = (u16le(extra, i), u16le(extra, i + 2) as usize);
        let body = extra.get(i + 4..i + 4 + len).ok_or_else(|| anyhow!("archive: {what}: truncated extra field"))?;
        if id == UNICODE_PATH {
            bail!(
                "archive: ambiguous: {what} carries an Info-ZIP Unicode Path field, which renames it for some readers only; {REMEDY}"
            );
        }
        if id == ZIP64 {
            zip64 = Some(body.to_vec());
        }
        i += 4 + len;
    }
    Ok(zip64)
}

impl Unzip {
    /// Entries go to private files `entry-N` in `dir`.
    pub fn new(dir: &Path, limits: Limits) -> Self {
        Self {
            hash: sha2::Digest::new(),
            written: 0,
            dir: dir.to_path_buf(),
            limits,
            state: State::Header,
            pending: Vec::new(),
            offset: 0,
            total: 0,
            entries: Vec::new(),
            current: None,
            tail: Vec::new(),
            tail_offset: 0,
            error: None,
            out: vec![0; 64 * 1024],
        }
    }

    /// Parse `data`, the next bytes of the archive.
    fn feed(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let used = match &mut self.state {
                State::Header => self.header(data)?,
                State::Stored { left } => {
                    let n = (*left).min(data.len() as u64) as usize;
                    *left -= n as u64;
                    let done = *left == 0;
                    self.emit(&data[..n])?;
                    self.current.as_mut().expect("an entry is open").consumed += n as u64;
                    if done {
                        self.end_entry()?;
                    }
                    n
                }
                State::Deflate(_) => self.inflate(data)?,
                State::Descriptor => self.descriptor(data)?,
                State::Tail => {
                    if self.tail.len() + data.len() > self.limits.tail {
                        bail!("archive: the central directory is larger than {} bytes; {REMEDY}", self.limits.tail);
                    }
                    self.tail.extend_from_slice(data);
                    data.len()
                }
            };
            self.offset += used as u64;
            data = &data[used..];
        }
        Ok(())
    }

    /// Gather at least `want` bytes of a header from `pending` + `data`; how many of
    /// `data` were taken, or `None` when more are needed (all of `data` is kept).
    fn gather(&mut self, data: &[u8], want: usize) -> Option<usize> {
        let take = want.saturating_sub(self.pending.len()).min(data.len());
        self.pending.extend_from_slice(&data[..take]);
        (self.pending.len() >= want).then_some(take)
    }

    /// A local header, or the start of the central directory.
    fn header(&mut self, data: &[u8]) -> Result<usize> {
        let start = self.offset - self.pending.len() as u64;
        let Some(t0) = self.gather(data, 4) else { return Ok(data.len()) };
        let sig = u32le(&self.pending, 0);
        if sig == CENTRAL || sig == END || sig == END64 {
            if self.entries.is_empty() {
                bail!("archive: no entries before the central directory");
            }
            self.tail_offset = start;
            self.tail = std::mem::take(&mut self.pending);
            self.state = State::Tail;
            return Ok(t0);
        }
        if sig != LOCAL {
            bail!(
                "archive: unexpected bytes at offset {start}, expected a local file header or the central directory (a zip with data before or between its entries is ambiguous); {REMEDY}"
            );
        }
        let Some(t1) = self.gather(&data[t0..], 30) else { return Ok(data.len()) };
        let (n, e) = (u16le(&self.pending, 26) as usize, u16le(&self.pending, 28) as usize);
        let Some(t2) = self.gather(&data[t0 + t1..], 30 + n + e) else { return Ok(data.len()) };
        let h = std::mem::take(&mut self.pending);
        let i = self.entries.len();
        if i >= self.limits.entries {
            bail!("archive: more than {} entries; {REMEDY}", self.limits.entries);
        }
        let name = String::from_utf8(h[30..30 + n].to_vec())
            .map_err(|_| anyhow!("archive: entry #{i}: the name is not UTF-8; {REMEDY}"))?;
        let what = format!("entry {name:?}");
        let (flags, method) = (u16le(&h, 6), u16le(&h, 8));
        let (crc, mut csize, mut usize_) = (u32le(&h, 14), u32le(&h, 18) as u64, u32le(&h, 22) as u64);
        let zip64 = extra_fields(&h[30 + n..], &what)?;
        if let Some(z) = &zip64 {
            // the local zip64 field holds the uncompressed then the compressed size
            if usize_ == 0xFFFF_FFFF && z.len() >= 8 {
                usize_ = u64le(z, 0);
            }
            if csize == 0xFFFF_FFFF && z.len() >= 16 {
                csize = u64le(z, 8);
            }
        }
        if flags & 0x0041 != 0 {
            bail!("archive: {what} is encrypted; {REMEDY}");
        }
        let descriptor = flags & 0x0008 != 0;
        let state = match method {
            0 if descriptor => bail!(
                "archive: {what} is stored with a data descriptor, so its end cannot be found while streaming; {REMEDY}"
            ),
            0 => State::Stored { left: csize },
            8 => State::Deflate(Box::new(Decompress::new(false))),
            m => bail!("archive: {what} uses compression method {m}, expected stored (0) or Deflate (8); {REMEDY}"),
        };
        let file = if name.ends_with('/') {
            None
        } else {
            let path = self.dir.join(format!("entry-{i}"));
            let _ = std::fs::remove_file(&path);
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(|e| anyhow::Error::new(e).context(format!("creating {}", path.display())))?;
            Some((f, path))
        };
        self.state = state;
        let entry = Entry {
            name,
            offset: start,
            flags,
            method,
            modified: u32le(&h, 10),
            crc32: 0,
            compressed: 0,
            size: 0,
            file,
        };
        self.current = Some(Current {
            entry,
            declared: (crc, csize, usize_),
            zip64: zip64.is_some(),
            crc: crc32fast::Hasher::new(),
            consumed: 0,
            written: 0,
        });
        if matches!(self.state, State::Stored { left: 0 }) {
            self.end_entry()?;
        }
        Ok(t0 + t1 + t2)
    }

    /// Write inflated bytes of the current entry.
    fn emit(&mut self, bytes: &[u8]) -> Result<()> {
        let cur = self.current.as_mut().expect("an entry is open");
        self.total += bytes.len() as u64;
        if self.total > self.limits.total {
            bail!(
                "archive: entry {:?} expands past the limit of {} bytes for all entries",
                cur.entry.name,
                self.limits.total
            );
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let Some((f, path)) = &mut cur.entry.file else {
            bail!("archive: directory entry {:?} has content; {REMEDY}", cur.entry.name);
        };
        f.write_all(bytes).map_err(|e| anyhow::Error::new(e).context(format!("writing {}", path.display())))?;
        cur.crc.update(bytes);
        cur.written += bytes.len() as u64;
        Ok(())
    }

    fn inflate(&mut self, data: &[u8]) -> Result<usize> {
        let State::Deflate(d) = &mut self.state else { unreachable!("inflate only in the Deflate state") };
        let mut out = std::mem::take(&mut self.out);
        let before = d.total_in();
        let produced_before = d.total_out();
        let status = d.decompress(data, &mut out, FlushDecompress::None);
        let used = (d.total_in() - before) as usize;
        let produced = (d.total_out() - produced_before) as usize;
        let status = status.map_err(|e| {
            let name = &self.current.as_ref().expect("an entry is open").entry.name;
            anyhow!("archive: entry {name:?}: bad Deflate data: {e}")
        });
        let r = status.and_then(|s| {
            self.emit(&out[..produced])?;
            self.current.as_mut().expect("an entry is open").consumed += used as u64;
            Ok(s)
        });
        self.out = out;
        match r? {
            Status::StreamEnd => {
                let cur = self.current.as_ref().expect("an entry is open");
                if cur.entry.flags & 0x0008 != 0 {
                    self.state = State::Descriptor;
                } else {
                    self.end_entry()?;
                }
            }
            Status::Ok | Status::BufError => {
                if used == 0 && produced == 0 {
                    bail!("archive: bad Deflate data (no progress)");
                }
            }
        }
        Ok(used)
    }

    /// The data descriptor after a Deflate entry: CRC-32 and sizes, with or without
    /// its signature, 32- or 64-bit sizes (zip64 entries).
    fn descriptor(&mut self, data: &[u8]) -> Result<usize> {
        let zip64 = self.current.as_ref().expect("an entry is open").zip64;
        let body = if zip64 { 20 } else { 12 };
        // the signature is optional: look at the first 4 bytes before deciding
        let Some(t0) = self.gather(data, 4) else { return Ok(data.len()) };
        let want = if u32le(&self.pending, 0) == DESCRIPTOR { 4 + body } else { body };
        let Some(t1) = self.gather(&data[t0..], want) else { return Ok(data.len()) };
        let d = std::mem::take(&mut self.pending);
        let b = &d[d.len() - body..];
        let (crc, csize, size) = if zip64 {
            (u32le(b, 0), u64le(b, 4), u64le(b, 12))
        } else {
            (u32le(b, 0), u32le(b, 4) as u64, u32le(b, 8) as u64)
        };
        let cur = self.current.as_mut().expect("an entry is open");
        cur.declared = (crc, csize, size);
        self.end_entry()?;
        Ok(t0 + t1)
    }

    /// Check the entry just streamed against what its header (or descriptor) says.
    fn end_entry(&mut self) -> Result<()> {
        let mut cur = self.current.take().expect("an entry is open");
        let crc = cur.crc.clone().finalize();
        let name = &cur.entry.name;
        let (dcrc, dcsize, dsize) = cur.declared;
        if cur.consumed != dcsize || cur.written != dsize {
            bail!(
                "archive: ambiguous: entry {name:?} declares {dcsize} compressed / {dsize} bytes, but {} / {} streamed; {REMEDY}",
                cur.consumed,
                cur.written
            );
        }
        if crc != dcrc {
            bail!("archive: entry {name:?}: CRC-32 mismatch, the archive is corrupt");
        }
        cur.entry.crc32 = crc;
        cur.entry.compressed = cur.consumed;
        cur.entry.size = cur.written;
        self.entries.push(cur.entry);
        self.state = State::Header;
        Ok(())
    }

    /// The archive is complete: cross-check the central directory against what was
    /// streamed and hand over the entries with the digest of the bytes they came from.
    pub fn finish(mut self) -> Result<StreamedArchive> {
        if let Some(e) = self.error.take() {
            bail!("{e}");
        }
        if !matches!(self.state, State::Tail) {
            bail!("archive: truncated: it ends before its central directory");
        }
        self.check_tail()?;
        let sha256 = Sha256Digest::from_bytes(sha2::Digest::finalize(std::mem::take(&mut self.hash)).into());
        let entries = Streamed { entries: std::mem::take(&mut self.entries) };
        Ok(StreamedArchive { entries, sha256, len: self.written })
    }

    fn check_tail(&self) -> Result<()> {
        let t = &self.tail;
        let amb = |why: String| anyhow!("archive: ambiguous: {why}; {REMEDY}");
        let mut i = 0;
        let mut seen = 0usize;
        let mut names = std::collections::HashSet::new();
        while t.len() >= i + 4 && u32le(t, i) == CENTRAL {
            let h = t.get(i..i + 46).ok_or_else(|| anyhow!("archive: truncated central directory"))?;
            let (n, e, c) = (u16le(h, 28) as usize, u16le(h, 30) as usize, u16le(h, 32) as usize);
            let name =
                t.get(i + 46..i + 46 + n).ok_or_else(|| anyhow!("archive: truncated central directory"))?.to_vec();
            let extra =
                t.get(i + 46 + n..i + 46 + n + e).ok_or_else(|| anyhow!("archive: truncated central directory"))?;
            t.get(i + 46 + n + e..i + 46 + n + e + c).ok_or_else(|| anyhow!("archive: truncated central directory"))?;
            let name = String::from_utf8(name).map_err(|_| amb("a central directory name is not UTF-8".into()))?;
            let zip64 = extra_fields(extra, &format!("entry {name:?}"))?;
            let (mut csize, mut size, mut offset) = (u32le(h, 20) as u64, u32le(h, 24) as u64, u32le(h, 42) as u64);
            if let Some(z) = zip64 {
                // in order, only those whose 32-bit field is saturated
                let mut at = 0;
                for v in [&mut size, &mut csize, &mut offset] {
                    if *v == 0xFFFF_FFFF {
                        *v = z
                            .get(at..at + 8)
                            .map(|b| u64le(b, 0))
                            .ok_or_else(|| amb(format!("entry {name:?}: short zip64 field")))?;
                        at += 8;
                    }
                }
            }
            if u16le(h, 34) != 0 {
                return Err(amb(format!("entry {name:?} is on another disk of a multi-disk archive")));
            }
            if !names.insert(name.clone()) {
                return Err(amb(format!("two entries are named {name:?}")));
            }
            let s = self
                .entries
                .get(seen)
                .ok_or_else(|| amb("the central directory lists more entries than the archive has".into()))?;
            let listed = (name.as_str(), offset, u16le(h, 8), u16le(h, 10), u32le(h, 12), u32le(h, 16), csize, size);
            let streamed = (s.name.as_str(), s.offset, s.flags, s.method, s.modified, s.crc32, s.compressed, s.size);
            if listed != streamed {
                let show = |v: (&str, u64, u16, u16, u32, u32, u64, u64)| {
                    format!(
                        "name {:?}, offset {}, flags {:#06x}, method {}, time {:08x}, CRC-32 {:08x}, sizes {}/{}",
                        v.0, v.1, v.2, v.3, v.4, v.5, v.6, v.7
                    )
                };
                return Err(amb(format!(
                    "the central directory's entry #{seen} ({}) disagrees with its local header and data ({})",
                    show(listed),
                    show(streamed)
                )));
            }
            seen += 1;
            i += 46 + n + e + c;
        }
        if seen != self.entries.len() {
            return Err(amb(format!(
                "the central directory lists {seen} entries, the archive has {}",
                self.entries.len()
            )));
        }
        let cd_size = i as u64;
        // optional zip64 end record and locator, then the end record
        if t.len() >= i + 4 && u32le(t, i) == END64 {
            let len = t
                .get(i + 4..i + 12)
                .map(|b| u64le(b, 0))
                .ok_or_else(|| anyhow!("archive: truncated zip64 end record"))?;
            i += 12 + usize::try_from(len).map_err(|_| amb("a huge zip64 end record".into()))?;
            if t.len() < i + 20 || u32le(t, i) != END64_LOCATOR {
                return Err(amb("a zip64 end record without its locator".into()));
            }
            i += 20;
        }
        let end = t.get(i..i + 22).ok_or_else(|| anyhow!("archive: truncated: no end of central directory record"))?;
        if u32le(end, 0) != END {
            return Err(amb(format!(
                "unexpected bytes after the central directory at offset {}",
                self.tail_offset + i as u64
            )));
        }
        let count = u16le(end, 10) as usize;
        if u16le(end, 4) != 0 || u16le(end, 6) != 0 || u16le(end, 8) != u16le(end, 10) {
            return Err(amb("the end record describes a multi-disk archive".into()));
        }
        let (size32, off32, comment) = (u32le(end, 12) as u64, u32le(end, 16) as u64, u16le(end, 20) as usize);
        if t.len() != i + 22 + comment {
            return Err(amb(format!(
                "{} bytes after the end record, which announces a comment of {comment}",
                t.len() - i - 22
            )));
        }
        if (count != 0xFFFF && count != seen)
            || (size32 != 0xFFFF_FFFF && size32 != cd_size)
            || (off32 != 0xFFFF_FFFF && off32 != self.tail_offset)
        {
            return Err(amb(format!(
                "the end record (entries {count}, directory size {size32}, offset {off32}) disagrees with the archive (entries {seen}, size {cd_size}, offset {})",
                self.tail_offset
            )));
        }
        Ok(())
    }
}

impl Write for Unzip {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(e) = &self.error {
            return Err(io::Error::new(io::ErrorKind::InvalidData, e.clone()));
        }
        match self.feed(data) {
            Ok(()) => {
                sha2::Digest::update(&mut self.hash, data);
                self.written += data.len() as u64;
                Ok(data.len())
            }
            Err(e) => {
                let msg = format!("{e:#}");
                self.error = Some(msg.clone());
                // a write error (a full tmpfs) keeps its errno for the caller
                let errno = e.chain().find_map(|c| c.downcast_ref::<io::Error>()).and_then(io::Error::raw_os_error);
                Err(match errno {
                    Some(n) => io::Error::from_raw_os_error(n),
                    None => io::Error::new(io::ErrorKind::InvalidData, msg),
                })
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Unzip {
    /// The reason the archive was refused while streaming, if it was.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Whether the entries, inflated, went past [`Limits::total`].
    pub fn over_total(&self) -> bool {
        self.total > self.limits.total
    }
}
