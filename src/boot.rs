//! Booting the verified OS: extract kernel and initramfs from the verified archive
//! (read through the handle that was hashed) into private files on the staging
//! tmpfs, `kexec_file_load` them with the manifest's command line, then
//! `reboot(LINUX_REBOOT_CMD_KEXEC)`.
//!
//! The types carry the order: [`stage`] takes only a [`VerifiedOsPackage`], [`load`]
//! only what [`stage`] made, and [`execute`] only what [`load`] made.

use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::sys;
use crate::verify::VerifiedOsPackage;

/// Kernel and initramfs of a verified package, staged in files only stboot wrote.
/// The files are removed when this is dropped.
#[derive(Debug)]
pub struct Staged {
    kernel: StagedFile,
    initramfs: StagedFile,
    cmdline: String,
}

/// A file stboot wrote, known by its inode so that what is loaded is what was written.
#[derive(Debug)]
struct StagedFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl StagedFile {
    /// Open the staged file read-only (kexec_file_load refuses a file that is open
    /// for writing anywhere) and check it is the inode that was written.
    fn open(&self) -> Result<File> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        let m = f.metadata().with_context(|| format!("reading {}", self.path.display()))?;
        if (m.dev(), m.ino()) != (self.dev, self.ino) {
            bail!("{} was replaced after staging; refusing to load it", self.path.display());
        }
        Ok(f)
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Staged {
    /// Append `cpio` (the handoff archive, [`crate::handoff`]) to the staged
    /// initramfs, after zero padding; on failure the file is cut back to the verified
    /// bytes.
    pub fn append_to_initramfs(&self, cpio: &[u8]) -> Result<()> {
        let p = &self.initramfs.path;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(p)
            .with_context(|| format!("opening {}", p.display()))?;
        let m = f.metadata().with_context(|| format!("reading {}", p.display()))?;
        if (m.dev(), m.ino()) != (self.initramfs.dev, self.initramfs.ino) {
            bail!("{} was replaced after staging; refusing to touch it", p.display());
        }
        if let Err(e) = crate::handoff::append(&mut f, cpio) {
            let _ = f.set_len(m.len());
            return Err(explain_write(anyhow::Error::new(e), p)).context("appending the handoff archive");
        }
        Ok(()) // `f` is closed here, before kexec_file_load
    }
}

/// Extract the entries the manifest names into `dir`. `limit` caps each entry.
pub fn stage(pkg: &VerifiedOsPackage, dir: &Path, limit: u64) -> Result<Staged> {
    let m = pkg.manifest();
    let mut a = pkg.archive()?;
    let mut write = |name: &str, file: &str| -> Result<StagedFile> {
        let path = dir.join(file);
        let _ = std::fs::remove_file(&path);
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        let staged = {
            let md = out.metadata().with_context(|| format!("reading {}", path.display()))?;
            StagedFile { path: path.clone(), dev: md.dev(), ino: md.ino() }
        };
        a.extract(name, limit, &mut out).map_err(|e| explain_write(e, &path))?;
        Ok(staged) // `out` is closed here: a writer makes kexec_file_load fail with ETXTBSY
    };
    let kernel = write(&m.kernel, "kernel")?;
    let initramfs = write(&m.initramfs, "initramfs")?;
    Ok(Staged { kernel, initramfs, cmdline: m.cmdline.clone() })
}

fn explain_write(e: anyhow::Error, path: &Path) -> anyhow::Error {
    let full =
        e.chain().filter_map(|c| c.downcast_ref::<std::io::Error>()).any(|io| io.raw_os_error() == Some(libc::ENOSPC));
    if full {
        anyhow!(
            "{}: the staging tmpfs is full: give the machine more memory, or make the package smaller",
            path.display()
        )
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
    sys::kexec_file_load(&k, &i, &s.cmdline).map_err(|e| {
        let why = e.raw_os_error().map(sys::explain_kexec).unwrap_or("");
        if why.is_empty() {
            anyhow!("kexec_file_load failed: {e}")
        } else {
            anyhow!("kexec_file_load failed: {e}: {why}")
        }
    })?;
    Ok(Loaded(()))
}

/// Jump into the loaded kernel. Only returns on failure.
pub fn execute(_loaded: Loaded) -> anyhow::Error {
    nix::unistd::sync();
    match nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_KEXEC) {
        Ok(never) => match never {},
        Err(e) => anyhow!("reboot(LINUX_REBOOT_CMD_KEXEC) failed: {e}"),
    }
}
