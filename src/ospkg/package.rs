//! A package as it arrives, before anyone has checked its signatures: the descriptor
//! and the archive, either as an open handle on its bytes (packages from files) or as
//! the entries it was unpacked into while it downloaded ([`super::stream`]), with the
//! SHA-256 of its bytes taken while they were read. Only
//! [`crate::verify::verify_package`] turns it into something that can be staged and
//! booted.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{Archive, Descriptor, PackagePaths};
use crate::digest::Sha256Digest;

/// Where a package came from, for the console and reports. URLs are redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Network { descriptor: String, archive: String },
    Files { descriptor: PathBuf, archive: PathBuf },
}

impl Origin {
    /// The archive's name for the event log, as upstream: the file name of a download,
    /// "OS package from initramfs" otherwise.
    pub fn archive_name(&self) -> String {
        match self {
            Origin::Network { archive, .. } => archive.rsplit('/').next().unwrap_or(archive).to_string(),
            Origin::Files { .. } => "OS package from initramfs".to_string(),
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Network { archive, descriptor } => write!(f, "{archive} (descriptor {descriptor})"),
            Origin::Files { archive, .. } => write!(f, "{}", archive.display()),
        }
    }
}

/// The archive bytes: an open file and the SHA-256 and length of its content,
/// taken while they were read through this same handle. A staged download is
/// removed when this is dropped.
#[derive(Debug)]
pub struct ArchiveFile {
    file: File,
    sha256: Sha256Digest,
    len: u64,
    remove_on_drop: Option<PathBuf>,
}

impl ArchiveFile {
    /// Hash `file` from its start.
    pub fn hash(mut file: File, what: &Path) -> Result<Self> {
        file.seek(SeekFrom::Start(0)).with_context(|| format!("reading {}", what.display()))?;
        let mut h = crate::io::Hash::new(&mut file);
        std::io::copy(&mut h, &mut std::io::sink()).with_context(|| format!("reading {}", what.display()))?;
        let (sha256, len) = h.finish();
        let mut head = [0u8; 64];
        file.seek(SeekFrom::Start(0)).with_context(|| format!("reading {}", what.display()))?;
        let n = file.read(&mut head).with_context(|| format!("reading {}", what.display()))?;
        super::refuse_encrypted(&head[..n], what)?;
        if len == 0 {
            bail!("{}: the archive is empty", what.display());
        }
        Ok(Self { file, sha256, len, remove_on_drop: None })
    }

    pub fn sha256(&self) -> &Sha256Digest {
        &self.sha256
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The zip, read from the start of the same handle.
    pub fn open(&self) -> Result<Archive<BufReader<&File>>> {
        let mut f = &self.file;
        f.seek(SeekFrom::Start(0)).context("rewinding the archive")?;
        Archive::open(BufReader::new(f))
    }

    /// The archive bytes, from the start of the same handle.
    pub fn reader(&self) -> Result<impl Read + '_> {
        let mut f = &self.file;
        f.seek(SeekFrom::Start(0)).context("rewinding the archive")?;
        Ok(f)
    }
}

impl Drop for ArchiveFile {
    fn drop(&mut self) {
        if let Some(p) = &self.remove_on_drop {
            let _ = std::fs::remove_file(p); // frees the tmpfs memory
        }
    }
}

pub use super::stream::StreamedArchive;

/// The archive of a package: its bytes in a file, or its entries unpacked in one pass.
#[derive(Debug)]
pub enum ArchiveData {
    File(ArchiveFile),
    Streamed(StreamedArchive),
}

impl ArchiveData {
    /// SHA-256 of the archive bytes: what the signatures are over.
    pub fn sha256(&self) -> &Sha256Digest {
        match self {
            ArchiveData::File(f) => f.sha256(),
            ArchiveData::Streamed(s) => s.sha256(),
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            ArchiveData::File(f) => f.len(),
            ArchiveData::Streamed(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The Secure Boot signature of the package's UKI, checked against the UEFI
    /// `db` certificates ([`super::archive::check_uki_signature`]).
    pub fn check_uki_signature(
        &self,
        m: &super::Manifest,
        db: &[Vec<u8>],
    ) -> Result<crate::secureboot::check::Accepted> {
        match self {
            ArchiveData::File(f) => super::archive::check_uki_signature(m, &mut f.open()?, db),
            ArchiveData::Streamed(s) => super::archive::check_uki_signature(m, &mut s.entries(), db),
        }
    }
}

/// A package nobody has verified yet. Its archive is one whose digest was taken from
/// the bytes it holds ([`ArchiveFile::hash`], [`super::stream::Unzip::finish`]);
/// the fields are private, so nothing can swap the archive after that.
///
/// ```compile_fail
/// fn swap(p: &mut stboot::ospkg::package::Unverified, a: stboot::ospkg::package::ArchiveData) {
///     p.archive = a;
/// }
/// ```
#[derive(Debug)]
pub struct Unverified {
    origin: Origin,
    descriptor: Descriptor,
    /// The descriptor bytes as received (they are measured).
    descriptor_bytes: Vec<u8>,
    archive: ArchiveData,
}

impl Unverified {
    /// A package fetched over the network: its descriptor (parsed from
    /// `descriptor_bytes`) and the archive unpacked while it arrived.
    pub fn downloaded(
        origin: Origin,
        descriptor: Descriptor,
        descriptor_bytes: Vec<u8>,
        archive: StreamedArchive,
    ) -> Self {
        Self { origin, descriptor, descriptor_bytes, archive: ArchiveData::Streamed(archive) }
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    /// The descriptor bytes as received.
    pub fn descriptor_bytes(&self) -> &[u8] {
        &self.descriptor_bytes
    }

    pub fn archive(&self) -> &ArchiveData {
        &self.archive
    }

    /// Origin, descriptor bytes and archive, for the verifier that consumes it.
    pub(crate) fn into_parts(self) -> (Origin, Vec<u8>, ArchiveData) {
        (self.origin, self.descriptor_bytes, self.archive)
    }

    /// Read a package from its two files (the initramfs, or stmgr's arguments).
    pub fn from_files(paths: &PackagePaths) -> Result<Self> {
        let (descriptor, descriptor_bytes) = super::read_descriptor(&paths.descriptor)?;
        let f = File::open(&paths.archive).with_context(|| format!("opening {}", paths.archive.display()))?;
        let archive = ArchiveData::File(ArchiveFile::hash(f, &paths.archive)?);
        let origin = Origin::Files { descriptor: paths.descriptor.clone(), archive: paths.archive.clone() };
        Ok(Self { origin, descriptor, descriptor_bytes, archive })
    }
}
