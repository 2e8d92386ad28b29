//! Booting the verified OS: take the kernel and initramfs the archive was unpacked
//! into while it downloaded, or extract them from the verified archive file (read
//! through the handle that was hashed), into private files on the staging tmpfs;
//! `kexec_file_load` them, through read-only handles on those same open files, with
//! the manifest's command line; then `reboot(LINUX_REBOOT_CMD_KEXEC)`.
//!
//! The types carry the order: [`stage`] takes only a [`VerifiedOsPackage`], [`load`]
//! only what [`stage`] made, and [`execute`] only what [`load`] made.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::fetch::Budget;
use crate::ospkg::package::ArchiveData;
use crate::ospkg::uki::{for_each_chunk, UkiFacts, UkiLayout};
use crate::sys;
use crate::verify::{PackageFacts, VerifiedOsPackage};

/// Kernel and initramfs of a verified package, staged in files only stboot wrote.
/// The files are removed when this is dropped.
#[derive(Debug)]
pub struct Staged {
    kernel: StagedFile,
    initramfs: StagedFile,
    cmdline: String,
    /// For a UKI package: what its stub would have measured and handed over.
    uki: Option<UkiFacts>,
}

/// A file stboot wrote, held open read-only from the moment its writer closed, so
/// that what is loaded is what was written: nothing re-opens it by name.
#[derive(Debug)]
struct StagedFile {
    path: PathBuf,
    file: File,
}

/// The same open file as `f` (its inode, whatever its name now points to), opened
/// anew through /proc/self/fd with `opts`.
fn reopen(f: &File, opts: &mut std::fs::OpenOptions, path: &Path) -> Result<File> {
    opts.open(format!("/proc/self/fd/{}", f.as_raw_fd()))
        .with_context(|| format!("re-opening {} through /proc/self/fd (is /proc mounted?)", path.display()))
}

impl StagedFile {
    /// `writer`, which wrote `path`, is closed; a read-only handle on the same file
    /// takes its place (kexec_file_load refuses a file that is open for writing).
    fn from_written(writer: File, path: PathBuf) -> Result<Self> {
        let file = reopen(&writer, std::fs::OpenOptions::new().read(true), &path)?;
        drop(writer);
        Ok(Self { path, file })
    }

    /// A handle for kexec_file_load (which reads from offset 0).
    fn open(&self) -> Result<File> {
        self.file.try_clone().with_context(|| format!("duplicating the handle on {}", self.path.display()))
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Staged {
    /// What a UKI package's sections measure as (PCR 11) and its signed PCR policy;
    /// `None` for a package of a kernel and an initramfs.
    pub fn uki(&self) -> Option<&UkiFacts> {
        self.uki.as_ref()
    }

    /// Append `cpio` (the handoff archive, [`crate::handoff`]) to the staged
    /// initramfs, after zero padding; on failure the file is cut back to the verified
    /// bytes.
    pub fn append_to_initramfs(&self, cpio: &[u8]) -> Result<()> {
        let p = &self.initramfs.path;
        let mut f = reopen(&self.initramfs.file, std::fs::OpenOptions::new().append(true), p)?;
        let m = f.metadata().with_context(|| format!("reading {}", p.display()))?;
        if let Err(e) = append_padded(&mut f, cpio) {
            let _ = f.set_len(m.len());
            return Err(explain_write(anyhow::Error::new(e), p)).context("appending the handoff archive");
        }
        Ok(()) // `f` is closed here, before kexec_file_load
    }
}

/// Why staging or loading failed, where the kind decides what the operator does.
/// Other staging failures (a broken archive) stay plain errors.
#[derive(Debug)]
pub enum BootError {
    /// Kernel and initramfs together are larger than the package budget.
    OverBudget { error: crate::ospkg::archive::EntryTooLarge, budget: Budget },
    /// The staging tmpfs ran out of space writing `path`.
    TmpfsFull { path: PathBuf },
    /// `kexec_file_load` refused: the errno and what it means here.
    Kexec { error: std::io::Error, why: &'static str },
}

impl std::fmt::Display for BootError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BootError::OverBudget { error, budget } => write!(f, "{error}: kernel and initramfs: {}", budget.why),
            BootError::TmpfsFull { path } => write!(f, "{}: the staging tmpfs is full", path.display()),
            BootError::Kexec { error, why: "" } => write!(f, "kexec_file_load failed: {error}"),
            BootError::Kexec { error, why } => write!(f, "kexec_file_load failed: {error}: {why}"),
        }
    }
}

impl std::error::Error for BootError {}

impl BootError {
    /// The kind, for the boot report.
    pub fn code(&self) -> &'static str {
        match self {
            BootError::OverBudget { .. } => "over_budget",
            BootError::TmpfsFull { .. } => "tmpfs_full",
            BootError::Kexec { .. } => "kexec",
        }
    }

    /// What the operator can do.
    pub fn remedy(&self) -> &'static str {
        match self {
            BootError::OverBudget { .. } | BootError::TmpfsFull { .. } => {
                "give the machine more memory, or make the package smaller (the console's package size line says how much fits)"
            }
            BootError::Kexec { error, .. } => match error.raw_os_error() {
                Some(libc::EPERM | libc::EKEYREJECTED | libc::EBADMSG) => "sign the OS kernel with a key the LinuxBoot kernel trusts, or build the LinuxBoot kernel without lockdown (kernel-config/)",
                Some(libc::ENOEXEC | libc::EINVAL) => "the package's kernel is not one this kernel can kexec: build the package with an x86_64 bzImage (stmgr ospkg create -kernel)",
                Some(libc::ENOMEM) => "give the machine more memory, or make the package smaller",
                Some(libc::ENOSYS) => "build the LinuxBoot kernel with CONFIG_KEXEC_FILE (kernel-config/)",
                _ => "the reason is above; check the kernel's messages (dmesg) on the console",
            },
        }
    }
}

/// Append `cpio` to the initramfs file `f` (opened for appending), after zero padding
/// to a multiple of 4 bytes (the kernel skips zeros between archives).
pub(crate) fn append_padded(f: &mut std::fs::File, cpio: &[u8]) -> std::io::Result<()> {
    let len = f.metadata()?.len();
    let pad = ((4 - len % 4) % 4) as usize;
    std::io::Write::write_all(f, &[0u8; 3][..pad])?;
    std::io::Write::write_all(f, cpio)?;
    std::io::Write::flush(f)
}

/// The kernel and initramfs the manifest names, as private files in `dir`: taken
/// from the entries a streamed archive was unpacked into (the others are removed
/// now; the fetch held them to its budget), or extracted from the archive file, the
/// two together at most `budget` bytes ([`crate::fetch::archive_budget`]).
///
/// It consumes the package: what was verified is staged, and the rest of the archive
/// (its file, or the other unpacked entries) is removed before this returns. The
/// facts the later steps need come back with the staged files.
pub fn stage(pkg: VerifiedOsPackage, dir: &Path, budget: &Budget) -> Result<(Staged, PackageFacts)> {
    let (archive, facts) = pkg.into_parts();
    let m = facts.manifest();
    let p = crate::verify::printable;
    tracing::info!("OS package {} ({} bytes)", facts.origin(), facts.archive_len());
    if let Some(uki) = &m.uki {
        let [file] = stage_entries(archive, [(uki.as_str(), "uki")], dir, budget)?;
        let staged = unpack_uki(&file, dir)?;
        tracing::info!(
            "booting {:?}: UKI {} (kernel, initrd and command line from its sections), cmdline {:?}",
            p(&m.label),
            p(uki),
            staged.cmdline
        );
        return Ok((staged, facts));
    }
    tracing::info!(
        "booting {:?}: kernel {}, initramfs {}, cmdline {:?}",
        p(&m.label),
        p(&m.kernel),
        p(&m.initramfs),
        m.cmdline
    );
    if m.kernel == m.initramfs {
        bail!("archive: the manifest names the entry {:?} as both kernel and initramfs", m.kernel);
    }
    let [kernel, initramfs] =
        stage_entries(archive, [(m.kernel.as_str(), "kernel"), (m.initramfs.as_str(), "initramfs")], dir, budget)?;
    let cmdline = m.cmdline.clone();
    Ok((Staged { kernel, initramfs, cmdline, uki: None }, facts))
}

/// The archive entries `names` (entry name, file name in `dir`) as private staged
/// files: taken from the entries a streamed archive was unpacked into (the others
/// are removed now), or extracted from the archive file within `budget`.
fn stage_entries<const N: usize>(
    archive: ArchiveData,
    names: [(&str, &str); N],
    dir: &Path,
    budget: &Budget,
) -> Result<[StagedFile; N]> {
    let mut out = Vec::with_capacity(N);
    match archive {
        ArchiveData::Streamed(s) => {
            let mut entries = s.into_entries();
            for (name, _) in names {
                let e = entries.take(name).ok_or_else(|| anyhow!("archive: no entry named {name:?}"))?;
                let (f, path) = e.into_file().ok_or_else(|| anyhow!("archive: entry {name:?} is a directory"))?;
                out.push(StagedFile::from_written(f, path)?);
            }
            // the manifest and directories go with `entries`, here
        }
        ArchiveData::File(f) => {
            let mut a = f.open()?;
            let mut left = budget.bytes;
            for (name, file) in names {
                let (mut w, path) = create_private(dir, file)?;
                match a.extract(name, left, &mut w) {
                    Ok(n) => left -= n,
                    Err(e) => {
                        let _ = std::fs::remove_file(&path);
                        return Err(match e.downcast::<crate::ospkg::archive::EntryTooLarge>() {
                            Ok(error) => anyhow::Error::new(BootError::OverBudget { error, budget: budget.clone() }),
                            Err(e) => explain_write(e, &path),
                        });
                    }
                }
                out.push(StagedFile::from_written(w, path)?);
            }
        }
    }
    out.try_into().map_err(|_| anyhow!("staging: {N} entries expected"))
}

/// A new private file `dir/name` (0600, not through a link), for writing.
fn create_private(dir: &Path, name: &str) -> Result<(File, PathBuf)> {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    Ok((f, path))
}

/// What systemd-stub does with a UKI, from the staged (verified) UKI file: its
/// sections checked again ([`UkiLayout::parse`]), `.linux` as the kernel, `.ucode`
/// then `.initrd` as the initramfs (the stub's order), `.cmdline` as the command
/// line, and the digests of what the stub measures. The UKI file is removed when
/// `uki` is dropped; meanwhile the staging tmpfs holds it and its sections.
fn unpack_uki(uki: &StagedFile, dir: &Path) -> Result<Staged> {
    use std::os::unix::fs::FileExt;
    let len = uki.file.metadata().with_context(|| format!("reading {}", uki.path.display()))?.len();
    let mut read = |at: u64, n: usize| -> Result<Vec<u8>> {
        let mut b = vec![0u8; n];
        uki.file.read_exact_at(&mut b, at).with_context(|| format!("reading {}", uki.path.display()))?;
        Ok(b)
    };
    let layout = UkiLayout::parse(&mut read, len).context("the UKI")?;
    let facts = UkiFacts::read(&layout, &mut read).context("the UKI")?;
    let cmdline = match layout.range(".cmdline") {
        Some(r) => crate::ospkg::uki::cmdline_of(&read(r.start, (r.end - r.start) as usize)?)?,
        None => String::new(),
    };
    let mut copy_out = |file: &str, sections: &[&str]| -> Result<StagedFile> {
        let (mut w, path) = create_private(dir, file)?;
        for r in sections.iter().filter_map(|n| layout.range(n)) {
            let written = for_each_chunk(&mut read, r, |b| Ok(std::io::Write::write_all(&mut w, b)?));
            if let Err(e) = written {
                let _ = std::fs::remove_file(&path);
                return Err(explain_write(e, &path));
            }
        }
        StagedFile::from_written(w, path)
    };
    let kernel = copy_out("kernel", &[".linux"])?;
    let initramfs = copy_out("initramfs", &[".ucode", ".initrd"])?;
    Ok(Staged { kernel, initramfs, cmdline, uki: Some(facts) })
}

fn explain_write(e: anyhow::Error, path: &Path) -> anyhow::Error {
    let full =
        e.chain().filter_map(|c| c.downcast_ref::<std::io::Error>()).any(|io| io.raw_os_error() == Some(libc::ENOSPC));
    if full {
        anyhow::Error::new(BootError::TmpfsFull { path: path.to_path_buf() })
    } else {
        e
    }
}

/// The OS kernel, loaded by the running kernel and ready to be jumped into.
#[derive(Debug)]
pub struct Loaded(());

/// Load the staged kernel for kexec. The staged files are removed afterwards (the
/// kernel has its own copy).
pub fn load(s: Staged) -> Result<Loaded> {
    let k = s.kernel.open()?;
    let i = s.initramfs.open()?;
    // a UKI without .initrd, handed nothing: no initramfs at all
    let empty = i.metadata().map(|m| m.len() == 0).unwrap_or(false);
    sys::kexec_file_load(&k, (!empty).then_some(&i), &s.cmdline).map_err(|error| {
        let why = error.raw_os_error().map(sys::explain_kexec).unwrap_or("");
        anyhow::Error::new(BootError::Kexec { error, why })
    })?;
    Ok(Loaded(()))
}

/// Jump into the loaded kernel. Only returns on failure.
pub fn execute(_loaded: Loaded) -> anyhow::Error {
    tracing::info!("Handing over control - kexec");
    nix::unistd::sync();
    match nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_KEXEC) {
        Ok(never) => match never {},
        Err(e) => anyhow!("reboot(LINUX_REBOOT_CMD_KEXEC) failed: {e}"),
    }
}
