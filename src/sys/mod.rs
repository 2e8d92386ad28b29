//! The raw system calls of stboot, each wrapped in a safe function that takes owned
//! or borrowed handles and returns a typed error. This is the only module allowed
//! `unsafe` (the crate denies it everywhere else, and every block states why it is
//! sound). errno values become explanations an operator can act on here, in pure
//! functions with their own tests.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// `kexec_file_load(kernel, initrd, cmdline_len incl. NUL, cmdline, 0)`.
pub fn kexec_file_load(kernel: &File, initrd: Option<&File>, cmdline: &str) -> io::Result<()> {
    /// The kernel ignores the initrd fd: there is none.
    const KEXEC_FILE_NO_INITRAMFS: u64 = 0x4;
    let c = CString::new(cmdline).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let len = c.as_bytes_with_nul().len();
    let (initrd_fd, flags) = match initrd {
        Some(f) => (f.as_raw_fd(), 0u64),
        None => (-1, KEXEC_FILE_NO_INITRAMFS),
    };
    // SAFETY: the fds are open for the duration of the call (-1 only with
    // KEXEC_FILE_NO_INITRAMFS, when the kernel does not read it); the command line is
    // a valid NUL-terminated string whose length includes the NUL, as the kernel requires.
    let r = unsafe { libc::syscall(libc::SYS_kexec_file_load, kernel.as_raw_fd(), initrd_fd, len, c.as_ptr(), flags) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Clear the immutable flag of `file` (FS_IOC_GETFLAGS, FS_IOC_SETFLAGS): efivarfs
/// sets it on existing variables so that a stray write cannot brick a machine.
pub fn clear_immutable(file: &File) -> io::Result<()> {
    // the request's type differs between glibc (c_ulong) and musl (c_int)
    const FS_IOC_GETFLAGS: libc::Ioctl = 0x8008_6601_u32 as libc::Ioctl;
    const FS_IOC_SETFLAGS: libc::Ioctl = 0x4008_6602_u32 as libc::Ioctl;
    const FS_IMMUTABLE_FL: libc::c_int = 0x10;
    let mut flags: libc::c_int = 0;
    // SAFETY: the fd is open for the call; the kernel writes one int of flags to a
    // valid, exclusively borrowed int (the ioctl's argument is an int despite its name).
    if unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_GETFLAGS, &mut flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & FS_IMMUTABLE_FL == 0 {
        return Ok(());
    }
    flags &= !FS_IMMUTABLE_FL;
    // SAFETY: as above; the kernel reads the int.
    if unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_SETFLAGS, &flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Why `kexec_file_load` failed, in words; empty for errno values without advice.
pub fn explain_kexec(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => "the kernel refuses kexec: lockdown is on (see /sys/kernel/security/lockdown) or kexec is disabled (kernel.kexec_load_disabled); under lockdown the OS kernel must be signed by a key the kernel trusts",
        libc::EKEYREJECTED => "the OS kernel's signature was rejected (KEXEC_SIG): sign it with a key in the kernel's keyring",
        libc::ENOEXEC => "the OS kernel is not a bzImage this kernel can load (wrong architecture or format)",
        libc::ETXTBSY => "a staged file is still open for writing",
        libc::ENOMEM => "not enough memory to load the OS kernel and initramfs (give the machine more RAM)",
        libc::EINVAL => "the kernel rejected the image or command line (too little memory, or a malformed image)",
        libc::EBADMSG => "the OS kernel's signature is malformed",
        libc::ENOSYS => "this kernel has no kexec_file_load (CONFIG_KEXEC_FILE)",
        libc::EBUSY => "another kexec image is already loaded",
        _ => "",
    }
}

/// `finit_module(fd, "", 0)`.
pub fn finit_module(module: &File) -> io::Result<()> {
    // SAFETY: the fd is valid for the call and the params string is a static C string.
    let r = unsafe { libc::syscall(libc::SYS_finit_module, module.as_raw_fd(), c"".as_ptr(), 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Why `finit_module` failed, in words; `None` for an already loaded module (EEXIST),
/// which is not a failure.
pub fn explain_finit_module(e: &io::Error) -> Option<String> {
    Some(match e.raw_os_error() {
        Some(libc::EEXIST) => return None,
        Some(libc::ENOEXEC) => "not a module for this kernel (ENOEXEC): build it for the LinuxBoot kernel".into(),
        Some(libc::EKEYREJECTED) | Some(libc::EBADMSG) => {
            format!("signature rejected: the kernel enforces module signatures ({e})")
        }
        Some(libc::ENOENT) => format!("unknown symbols: a module it depends on is not loaded yet ({e})"),
        _ => e.to_string(),
    })
}

/// Block until the kernel's random pool is initialised.
pub fn random_wait() {
    let mut b = [0u8; 1];
    // SAFETY: the buffer is valid for one byte.
    while unsafe { libc::getrandom(b.as_mut_ptr().cast(), 1, 0) } != 1 {}
}

/// Whether `getrandom` would not block.
pub fn random_ready() -> bool {
    let mut b = [0u8; 1];
    // SAFETY: the buffer is valid for one byte.
    let r = unsafe { libc::getrandom(b.as_mut_ptr().cast(), 1, libc::GRND_NONBLOCK) };
    r == 1
}

/// Make `console` stdin, stdout and stderr.
pub fn attach_stdio(console: &File) {
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors with a valid, open source fd;
        // the standard descriptors are owned by no Rust object that could be confused.
        unsafe { libc::dup2(console.as_raw_fd(), fd) };
    }
}

/// Let the kernel reap exited children (SIGCHLD ignored: no zombies under PID 1).
pub fn ignore_sigchld() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: installing SIG_IGN runs no handler code that could race with anything.
    let _ = unsafe { signal(Signal::SIGCHLD, SigHandler::SigIgn) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kexec_errno_has_advice() {
        for e in [libc::EPERM, libc::ENOEXEC, libc::ENOMEM, libc::EBUSY, libc::ENOSYS, libc::EKEYREJECTED] {
            assert!(!explain_kexec(e).is_empty(), "errno {e}");
        }
        assert!(explain_kexec(libc::ENOMEM).contains("RAM"));
        assert_eq!(explain_kexec(libc::EIO), "");
    }

    #[test]
    fn finit_module_errors() {
        assert_eq!(explain_finit_module(&io::Error::from_raw_os_error(libc::EEXIST)), None);
        let m = explain_finit_module(&io::Error::from_raw_os_error(libc::ENOEXEC)).unwrap();
        assert!(m.contains("not a module for this kernel"), "{m}");
    }
}
