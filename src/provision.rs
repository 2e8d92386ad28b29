//! Provisioning mode (st-1.1+): an initramfs may carry a provisioning package,
//! `/ospkg/provision.json` and `/ospkg/provision.zip` (typically stprov, which writes
//! the host configuration and the identity). It is booted, verified like any other
//! package:
//!
//! * when there is no host configuration at all (upstream's behaviour);
//! * when the operator presses Ctrl-C on the console during the first seconds
//!   (`stboot.provision_wait`, default [`DEFAULT_WAIT`]); stboot says so, with the
//!   number of seconds, before it waits;
//! * when a normal boot has failed all its attempts: instead of rebooting, stboot
//!   falls back to it.
//!
//! Ctrl-C is read as the byte 0x03 from the console with the line discipline's
//! signal and line handling switched off for the window (PID 1 has no controlling
//! terminal, so no SIGINT would arrive), and the terminal is restored afterwards.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices, Termios};

use crate::ospkg::PackagePaths;

/// The provisioning package's name under `/ospkg`.
pub const NAME: &str = "provision";
/// How long the console waits for Ctrl-C when nothing else is configured.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(3);
/// The byte a terminal sends for Ctrl-C.
pub const CTRL_C: u8 = 0x03;

/// The provisioning package under `ospkg_dir`, when both of its files exist.
pub fn package(ospkg_dir: &Path) -> Option<PackagePaths> {
    let p = PackagePaths {
        descriptor: ospkg_dir.join(format!("{NAME}.json")),
        archive: ospkg_dir.join(format!("{NAME}.zip")),
    };
    (p.descriptor.is_file() && p.archive.is_file()).then_some(p)
}

/// The provisioning package in the initramfs ([`crate::config::paths::OSPKG_DIR`]),
/// if it has one; never outside PID 1 (`pid1` false).
pub fn in_initramfs(pid1: bool) -> Option<PackagePaths> {
    pid1.then(|| package(Path::new(crate::config::paths::OSPKG_DIR))).flatten()
}

/// A terminal switched to raw input (no line editing, no echo, Ctrl-C as a byte,
/// not a signal); the saved settings come back with [`RawInput::restore`] or on drop.
pub struct RawInput<'a> {
    fd: BorrowedFd<'a>,
    saved: Option<Termios>,
}

impl<'a> RawInput<'a> {
    pub fn enter(console: &'a impl AsFd) -> Result<Self> {
        let fd = console.as_fd();
        let saved = termios::tcgetattr(fd).context("reading the console's terminal settings")?;
        let mut raw = saved.clone();
        raw.local_flags.remove(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG);
        // a Ctrl-S in the window must not stop the console's output (and stboot)
        raw.input_flags.remove(termios::InputFlags::IXON | termios::InputFlags::IXOFF);
        raw.control_chars[SpecialCharacterIndices::VMIN as usize] = 0;
        raw.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw).context("switching the console to raw input")?;
        Ok(Self { fd, saved: Some(saved) })
    }

    pub fn restore(mut self) -> Result<()> {
        self.put_back()
    }

    fn put_back(&mut self) -> Result<()> {
        match self.saved.take() {
            Some(t) => termios::tcsetattr(self.fd, SetArg::TCSANOW, &t).context("restoring the console's settings"),
            None => Ok(()),
        }
    }
}

impl Drop for RawInput<'_> {
    fn drop(&mut self) {
        let _ = self.put_back();
    }
}

/// Offer the operator `wait` to press Ctrl-C on the console (stdin) to boot the
/// provisioning package `p` instead of the normal boot; true if it came. Raw input
/// is on before the prompt is printed, so a Ctrl-C typed right after it counts; a
/// console that cannot be read means a normal boot.
pub fn ctrl_c_requested(p: &PackagePaths, wait: Duration) -> bool {
    use tracing::{info, warn};
    if wait.is_zero() {
        info!("provisioning package {} present; Ctrl-C is off (stboot.provision_wait=0)", p.descriptor.display());
        return false;
    }
    let stdin = std::io::stdin();
    let raw = match RawInput::enter(&stdin) {
        Ok(r) => r,
        Err(e) => {
            warn!("cannot read Ctrl-C from the console: {e:#}; normal boot");
            return false;
        }
    };
    info!(
        "provisioning package {} present: press Ctrl-C within {} s to boot it instead of the normal boot",
        p.descriptor.display(),
        wait.as_secs()
    );
    let got = wait_for_byte(&stdin, wait, CTRL_C);
    if let Err(e) = raw.restore() {
        warn!("{e:#}");
    }
    match got {
        Ok(true) => {
            warn!("Ctrl-C on the console: booting the provisioning package");
            true
        }
        Ok(false) => {
            info!("no Ctrl-C within {} s: normal boot", wait.as_secs());
            false
        }
        Err(e) => {
            warn!("cannot read Ctrl-C from the console: {e:#}; normal boot");
            false
        }
    }
}

/// Wait up to `window` for Ctrl-C on `console` (a terminal). `Ok(true)` as soon as
/// it arrives; other keys are ignored. The terminal's settings are restored.
pub fn ctrl_c_within(console: &impl AsFd, window: Duration) -> Result<bool> {
    let raw = RawInput::enter(console)?;
    let found = wait_for_byte(console, window, CTRL_C)?;
    raw.restore()?;
    Ok(found)
}

/// Poll `input` until `byte` arrives or `window` has passed.
pub fn wait_for_byte(input: &impl AsFd, window: Duration, byte: u8) -> Result<bool> {
    let end = Instant::now() + window;
    let mut buf = [0u8; 64];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let ms = PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(input.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, ms) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("waiting for console input"),
        }
        let revents = fds[0].revents().unwrap_or(PollFlags::empty());
        if revents.intersects(PollFlags::POLLERR | PollFlags::POLLNVAL) {
            anyhow::bail!("the console cannot be read (poll: {revents:?})");
        }
        match nix::unistd::read(input.as_fd(), &mut buf) {
            Ok(n) if buf[..n].contains(&byte) => return Ok(true),
            // the other end went away: nothing more will come
            Ok(0) if revents.contains(PollFlags::POLLHUP) => return Ok(false),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
            Err(e) => return Err(e).context("reading the console"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_package_needs_both_files() {
        let d = tempfile::tempdir().unwrap();
        assert!(package(d.path()).is_none());
        std::fs::write(d.path().join("provision.json"), "{}").unwrap();
        assert!(package(d.path()).is_none());
        std::fs::write(d.path().join("provision.zip"), "PK").unwrap();
        assert_eq!(package(d.path()).unwrap().archive, d.path().join("provision.zip"));
    }

    #[test]
    fn ctrl_c_is_found_among_other_bytes_and_a_silent_window_ends() {
        let (r, w) = std::io::pipe().unwrap();
        let mut w2 = w.try_clone().unwrap();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            w2.write_all(b"abc\x03").unwrap();
        });
        let start = Instant::now();
        assert!(wait_for_byte(&r, Duration::from_secs(5), CTRL_C).unwrap());
        assert!(start.elapsed() < Duration::from_secs(4));
        t.join().unwrap();
        let start = Instant::now();
        assert!(!wait_for_byte(&r, Duration::from_millis(300), CTRL_C).unwrap());
        assert!(start.elapsed() >= Duration::from_millis(300));
        drop(w);
    }

    /// A real terminal (a pty): raw mode lets Ctrl-C through as a byte, and the
    /// settings are back afterwards.
    #[test]
    fn a_terminal_is_switched_to_raw_input_and_restored() {
        let pty = nix::pty::openpty(None, None).unwrap();
        let before = termios::tcgetattr(&pty.slave).unwrap();
        assert!(before.local_flags.contains(LocalFlags::ISIG | LocalFlags::ICANON));
        let mut master = std::fs::File::from(pty.master);
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            master.write_all(&[CTRL_C]).unwrap();
            master
        });
        assert!(ctrl_c_within(&pty.slave, Duration::from_secs(5)).unwrap());
        let _master = writer.join().unwrap();
        let after = termios::tcgetattr(&pty.slave).unwrap();
        assert_eq!(after.local_flags, before.local_flags);
        assert!(!ctrl_c_within(&pty.slave, Duration::from_millis(200)).unwrap());
    }
}
