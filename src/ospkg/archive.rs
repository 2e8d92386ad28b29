//! The OS package archive (`NAME.zip`): reading entries by the exact names the manifest
//! gives, with sizes capped and CRCs checked, and writing archives that Go's
//! `archive/zip` reads.
//!
//! Nothing is ever extracted under a name taken from the archive itself: callers ask
//! for an entry by name and say where its bytes go.

use std::io::{Read, Seek, Write};

use anyhow::{bail, Context, Result};
use zip::result::ZipError;
use zip::ZipArchive;

use super::manifest::{Manifest, MANIFEST_NAME};

/// The manifest is a few hundred bytes; this bounds what is read into memory.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

/// An opened archive.
pub struct Archive<R: Read + Seek> {
    zip: ZipArchive<R>,
}

impl<R: Read + Seek> Archive<R> {
    /// Open a zip, refusing one that readers could disagree on: two entries of one
    /// name (Go's reader takes the first, others the last), a local header that
    /// disagrees with the central directory, overlapping or unlisted entries, and
    /// Info-ZIP Unicode Path fields (which rename an entry for some readers and not
    /// for Go's). The same signed bytes must mean the same files to every reader.
    pub fn open(reader: R) -> Result<Self> {
        let mut zip = ZipArchive::new(reader).map_err(|e| match e {
            ZipError::InvalidArchive(m) => anyhow::anyhow!("archive: not a valid zip file: {m}"),
            other => anyhow::anyhow!("archive: not a valid zip file: {other}"),
        })?;
        const REMEDY: &str = "rebuild the package with `stmgr ospkg create`";
        if zip.has_duplicate_names() {
            bail!("archive: ambiguous: two entries have the same name; {REMEDY}");
        }
        zip.validate_header_consistency().map_err(|e| anyhow::anyhow!("archive: ambiguous: {e}; {REMEDY}"))?;
        for i in 0..zip.len() {
            let entry = zip.by_index_raw(i).with_context(|| format!("archive: entry #{i}"))?;
            if entry.extra_data_fields().any(|f| matches!(f, zip::extra_fields::ExtraField::UnicodePath(_))) {
                bail!(
                    "archive: ambiguous: entry #{i} carries an Info-ZIP Unicode Path field, which renames it for some readers only; {REMEDY}"
                );
            }
        }
        Ok(Self { zip })
    }

    /// The manifest, checked for what booting needs: its kernel and initramfs
    /// entries exist and are files, and the kernel is an x86 bzImage.
    pub fn manifest_checked(&mut self) -> Result<Manifest> {
        let m = self.manifest()?;
        check_entries(&m, self)?;
        Ok(m)
    }

    /// Index of the first entry named exactly `name` (upstream returns the first match).
    fn index_of(&mut self, name: &str) -> Result<usize> {
        for i in 0..self.zip.len() {
            let entry = self.zip.by_index_raw(i).with_context(|| format!("archive: entry #{i}"))?;
            if entry.name_raw() == name.as_bytes() {
                return Ok(i);
            }
        }
        bail!("archive: no entry named {name:?}")
    }

    /// Read and validate `manifest.json`.
    pub fn manifest(&mut self) -> Result<Manifest> {
        let mut buf = Vec::new();
        self.extract(MANIFEST_NAME, MAX_MANIFEST_BYTES, &mut buf)?;
        Manifest::parse(&buf)
    }

    /// Copy entry `name` to `out`, refusing an entry that declares or yields more than
    /// `limit` bytes ([`EntryTooLarge`]), and checking its CRC-32. Returns the number of bytes written.
    pub fn extract<W: Write>(&mut self, name: &str, limit: u64, out: &mut W) -> Result<u64> {
        let i = self.index_of(name)?;
        let entry = self.zip.by_index(i).map_err(|e| entry_err(name, e))?;
        if entry.is_dir() {
            bail!("archive: entry {name:?} is a directory, expected a file");
        }
        if entry.size() > limit {
            return Err(anyhow::Error::new(EntryTooLarge {
                name: name.to_string(),
                limit,
                declared: Some(entry.size()),
            }));
        }
        let (declared, want_crc) = (entry.size(), entry.crc32());
        let mut reader = crate::io::Crc32::new(crate::io::Limit::new(entry, limit));
        let copied = crate::io::copy(&mut reader, out);
        let (crc, n) = reader.value();
        match copied {
            Ok(()) => {}
            Err(crate::io::CopyError::Read(e)) if crate::io::cause::<crate::io::LimitExceeded>(&e).is_some() => {
                return Err(anyhow::Error::new(EntryTooLarge { name: name.to_string(), limit, declared: None }))
            }
            // the zip crate checks the CRC when the entry ends and says only "invalid
            // data": tell a mismatch by the bytes themselves
            Err(crate::io::CopyError::Read(_)) if n == declared && crc != want_crc => {
                bail!("archive: entry {name:?}: CRC-32 mismatch, the archive is corrupt")
            }
            Err(crate::io::CopyError::Read(e)) => {
                return Err(anyhow::Error::new(e).context(format!("archive: entry {name:?}: reading")))
            }
            Err(crate::io::CopyError::Write(e)) => {
                return Err(anyhow::Error::new(e).context(format!("archive: entry {name:?}: writing")))
            }
        }
        if n == 0 {
            bail!("archive: entry {name:?} is empty");
        }
        Ok(n)
    }
}

pub use super::bzimage::is_bzimage;
use super::bzimage::MAGIC_END as BZIMAGE_MAGIC_END;

/// What [`check_entries`] asks of an archive reader.
pub(crate) trait Entries {
    /// `None` when there is no entry `name`, else whether it is a file with data.
    fn is_file(&mut self, name: &str) -> Result<Option<bool>>;
    /// The size of entry `name` in bytes.
    fn size(&mut self, name: &str) -> Result<u64>;
    /// At most `len` bytes of entry `name` from `offset` on.
    fn read_at(&mut self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>>;
    /// The first [`BZIMAGE_MAGIC_END`] bytes of entry `name` (fewer if it is shorter).
    fn head(&mut self, name: &str) -> Result<Vec<u8>> {
        self.read_at(name, 0, BZIMAGE_MAGIC_END)
    }
    /// Entry `name`, whole and in order, into `out`.
    fn copy_to(&mut self, name: &str, out: &mut dyn Write) -> Result<()>;
}

/// The Secure Boot signature of the UKI of a UKI package checked against the UEFI
/// `db` certificates `db` ([`crate::secureboot::check`]), reading the entry once.
/// A package of a kernel and an initramfs has no such signature and is refused.
pub(crate) fn check_uki_signature(
    m: &Manifest,
    archive: &mut dyn Entries,
    db: &[Vec<u8>],
) -> Result<crate::secureboot::check::Accepted> {
    let Some(uki) = &m.uki else {
        bail!(
            "the package is a kernel and an initramfs, not a UKI: with {} in the trust policy only UKI packages whose Secure Boot signature verifies against it boot",
            crate::config::trust_policy::UKI_DB_FILE
        );
    };
    let len = archive.size(uki)?;
    let head = archive.read_at(uki, 0, super::uki::MAX_HEADERS as usize)?;
    crate::secureboot::check::check_image(&head, len, |w| archive.copy_to(uki, w), db).with_context(|| {
        format!(
            "the UKI {uki:?}: its Secure Boot signature does not verify against {}",
            crate::config::trust_policy::UKI_DB_FILE
        )
    })
}

/// The checks of the entries a manifest names, shared by both archive readers (the
/// zip file, and the one-pass stream) so that they cannot drift apart: the kernel and
/// the initramfs are non-empty files, and the kernel is an x86 bzImage; or the UKI is
/// a non-empty file that [`super::uki::UkiLayout::parse`] accepts.
pub(crate) fn check_entries(m: &Manifest, archive: &mut dyn Entries) -> Result<()> {
    let named = match &m.uki {
        Some(uki) => vec![uki],
        None => vec![&m.kernel, &m.initramfs],
    };
    for name in named {
        match archive.is_file(name)? {
            None => bail!("archive: no entry named {name:?}"),
            Some(false) => {
                bail!("archive: entry {name:?} named by the manifest is empty or a directory, expected a file")
            }
            Some(true) => {}
        }
    }
    if let Some(uki) = &m.uki {
        let len = archive.size(uki)?;
        let mut read = |at: u64, n: usize| archive.read_at(uki, at, n);
        super::uki::UkiLayout::parse(&mut read, len).with_context(|| format!("archive: the UKI {uki:?}"))?;
        return Ok(());
    }
    if !is_bzimage(&archive.head(&m.kernel)?) {
        bail!(
            "archive: the kernel {:?} is not an x86 bzImage (no \"HdrS\" at offset 0x202); package the OS kernel (vmlinuz), not vmlinux or an initramfs",
            m.kernel
        );
    }
    Ok(())
}

impl<R: Read + Seek> Entries for Archive<R> {
    fn is_file(&mut self, name: &str) -> Result<Option<bool>> {
        let Ok(i) = self.index_of(name) else { return Ok(None) };
        let entry = self.zip.by_index_raw(i).map_err(|e| entry_err(name, e))?;
        Ok(Some(!entry.is_dir() && entry.size() > 0))
    }

    fn size(&mut self, name: &str) -> Result<u64> {
        let i = self.index_of(name)?;
        Ok(self.zip.by_index_raw(i).map_err(|e| entry_err(name, e))?.size())
    }

    /// Reads the entry from its start (a compressed entry cannot seek).
    fn copy_to(&mut self, name: &str, out: &mut dyn Write) -> Result<()> {
        self.extract(name, u64::MAX, &mut &mut *out).map(drop)
    }

    fn read_at(&mut self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        let i = self.index_of(name)?;
        let mut entry = self.zip.by_index(i).map_err(|e| entry_err(name, e))?;
        let read_err = |e: std::io::Error| anyhow::anyhow!("archive: entry {name:?}: {e}");
        std::io::copy(&mut (&mut entry).take(offset), &mut std::io::sink()).map_err(read_err)?;
        let mut out = Vec::with_capacity(len.min(1 << 20));
        entry.take(len as u64).read_to_end(&mut out).map_err(read_err)?;
        Ok(out)
    }
}

fn entry_err(name: &str, e: ZipError) -> anyhow::Error {
    anyhow::anyhow!("archive: entry {name:?}: {e}")
}

/// Write an archive as upstream's `stmgr ospkg create` lays it out: a `boot/`
/// directory entry, the kernel and the initramfs as `boot/<basename>` (Deflate), and
/// `manifest.json`. Timestamps are fixed, so the same inputs give the same bytes.
pub fn write<W: Write + Seek>(out: W, manifest: &Manifest, kernel: &[u8], initramfs: &[u8]) -> Result<W> {
    if manifest.initramfs == manifest.kernel {
        bail!("archive: kernel and initramfs entries would both be named {:?}", manifest.kernel);
    }
    write_entries(out, manifest, &[(&manifest.kernel, kernel), (&manifest.initramfs, initramfs)])
}

/// [`write`] with any entries (a UKI package has one, [`super::create_uki`]), in order,
/// under `boot/`.
pub fn write_entries<W: Write + Seek>(out: W, manifest: &Manifest, entries: &[(&str, &[u8])]) -> Result<W> {
    use zip::write::SimpleFileOptions;
    let mut zw = zip::ZipWriter::new(out);
    let fixed = zip::DateTime::default();
    let dir = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored).last_modified_time(fixed);
    let file = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(fixed)
        .unix_permissions(0o644);
    zw.add_directory("boot/", dir)?;
    for (name, data) in entries {
        zw.start_file(*name, file)?;
        zw.write_all(data)?;
    }
    zw.start_file(MANIFEST_NAME, file)?;
    zw.write_all(manifest.to_json().as_bytes())?;
    Ok(zw.finish()?)
}

/// An entry larger than the bytes left for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryTooLarge {
    pub name: String,
    pub limit: u64,
    /// What the archive declares, when that is what is too large.
    pub declared: Option<u64>,
}

impl std::fmt::Display for EntryTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.declared {
            Some(d) => write!(
                f,
                "archive: entry {:?} declares {d} bytes, more than the limit of {} bytes",
                self.name, self.limit
            ),
            None => write!(f, "archive: entry {:?} expands to more than the limit of {} bytes", self.name, self.limit),
        }
    }
}

impl std::error::Error for EntryTooLarge {}
