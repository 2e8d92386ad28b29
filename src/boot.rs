//! Booting the verified OS: extract kernel and initramfs from the verified archive into
//! the staging tmpfs, close the writers, reopen them read-only, `kexec_file_load`
//! with the manifest's command line, then `reboot(LINUX_REBOOT_CMD_KEXEC)`.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};

use crate::ospkg::{Archive, Manifest};

/// Kernel and initramfs, staged.
#[derive(Debug)]
pub struct Staged {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    pub cmdline: String,
    pub label: String,
}

/// Extract the entries the manifest names. `limit` caps each entry.
pub fn stage(archive_path: &Path, dir: &Path, limit: u64) -> Result<(Staged, Manifest)> {
    let f = File::open(archive_path).with_context(|| format!("opening {}", archive_path.display()))?;
    let mut a = Archive::open(std::io::BufReader::new(f))?;
    let m = a.manifest()?;
    let kernel = dir.join("kernel");
    let initramfs = dir.join("initramfs");
    for (name, path) in [(&m.kernel, &kernel), (&m.initramfs, &initramfs)] {
        let mut out = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        a.extract(name, limit, &mut out)?;
        out.sync_all().ok();
        drop(out); // a file open for writing makes kexec_file_load fail with ETXTBSY
    }
    Ok((Staged { kernel, initramfs, cmdline: m.cmdline.clone(), label: m.label.clone() }, m))
}

/// Load the staged kernel for kexec.
pub fn load(s: &Staged) -> Result<()> {
    let k = File::open(&s.kernel).with_context(|| format!("opening {}", s.kernel.display()))?;
    let i = File::open(&s.initramfs).with_context(|| format!("opening {}", s.initramfs.display()))?;
    sys::kexec_file_load(&k, &i, &s.cmdline).map_err(explain)
}

/// Jump into the loaded kernel. Only returns on failure.
pub fn execute() -> anyhow::Error {
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    match nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_KEXEC) {
        Ok(never) => match never {},
        Err(e) => anyhow!("reboot(LINUX_REBOOT_CMD_KEXEC) failed: {e}"),
    }
}

fn explain(e: std::io::Error) -> anyhow::Error {
    let why = match e.raw_os_error() {
        Some(libc::EPERM) => "the kernel refuses kexec: lockdown is on (see /sys/kernel/security/lockdown) or kexec is disabled (kernel.kexec_load_disabled); under lockdown the OS kernel must be signed by a key the kernel trusts",
        Some(libc::EKEYREJECTED) => "the OS kernel's signature was rejected (KEXEC_SIG): sign it with a key in the kernel's keyring",
        Some(libc::ENOEXEC) => "the OS kernel is not a bzImage this kernel can load (wrong architecture or format)",
        Some(libc::ETXTBSY) => "a staged file is still open for writing",
        Some(libc::ENOMEM) => "not enough memory to load the OS kernel and initramfs (give the machine more RAM)",
        Some(libc::EINVAL) => "the kernel rejected the image or command line (too little memory, or a malformed image)",
        Some(libc::EBADMSG) => "the OS kernel's signature is malformed",
        Some(libc::ENOSYS) => "this kernel has no kexec_file_load (CONFIG_KEXEC_FILE)",
        _ => "",
    };
    if why.is_empty() {
        anyhow!("kexec_file_load failed: {e}")
    } else {
        anyhow!("kexec_file_load failed: {e}: {why}")
    }
}

mod sys {
    use std::ffi::CString;
    use std::fs::File;
    use std::os::fd::AsRawFd;

    /// `kexec_file_load(kernel, initrd, cmdline_len incl. NUL, cmdline, 0)`.
    pub fn kexec_file_load(kernel: &File, initrd: &File, cmdline: &str) -> std::io::Result<()> {
        let c = CString::new(cmdline).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        let len = c.as_bytes_with_nul().len();
        // SAFETY: both fds are open for the duration of the call; the command line is a
        // valid NUL-terminated string whose length includes the NUL, as the kernel requires.
        let r = unsafe {
            libc::syscall(libc::SYS_kexec_file_load, kernel.as_raw_fd(), initrd.as_raw_fd(), len, c.as_ptr(), 0u64)
        };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}
