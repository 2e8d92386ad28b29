//! PID 1 duties: the filesystems stboot needs, the console, kernel modules, child
//! reaping, and the entropy check; and [`start`], which does them in order and says
//! how this process runs. The raw syscalls live in [`crate::sys`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};
use tracing::{error, info, warn};

use crate::sys;

pub use crate::config::paths::STAGING_DIR;

/// `stboot --help`.
pub const USAGE: &str = "\
stboot: System Transparency's network bootloader, PID 1 of an initramfs

As PID 1 it reads /etc/trust_policy and the host configuration, brings up
the network, fetches, verifies and kexecs an OS package. Options come from the
kernel command line (stboot.loglevel=, stboot.deadline=,
stboot.stall_timeout=, ...; see docs/operator-guide.md) and from init
arguments after `--`.

Outside PID 1 only a dry run is allowed:
  stboot --dry-run [-trustPolicy DIR] [-hostConfig FILE] [--configure-network]
                 [-loglevel=d]
      fetch and verify once with this machine's /etc/trust_policy and host
      configuration, or the directory and file given; no modules, no kexec, no
      TPM; the network is left as it is unless --configure-network is given;
      exit 0 if it would boot
  stboot --version";

/// How this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// PID 1 of the initramfs: the whole boot.
    Init,
    /// PID 1, `stboot.dryrun`: verify and stage, then stop.
    InitDryRun,
    /// Not PID 1: fetch and verify only; the network is touched only if asked.
    HostDryRun { configure_network: bool },
}

impl Mode {
    pub fn dry_run(self) -> bool {
        self != Mode::Init
    }
}

/// What [`start`] leaves for the boot.
#[derive(Debug)]
pub struct Run {
    pub opts: crate::config::Options,
    pub mode: Mode,
    pub pid1: bool,
    pub started: Instant,
    /// Where packages are staged (a tmpfs as PID 1).
    pub stage_dir: PathBuf,
    /// Where the configuration is read from.
    pub sources: crate::config::Sources,
    /// The NICs brought up at start ([`crate::network::wake_nics`]).
    pub woken: Vec<u32>,
}

impl Run {
    /// How many whole-boot attempts: a dry run on a running system answers once; an
    /// init keeps trying (`stboot.boot_attempts`).
    pub fn boot_attempts(&self) -> u32 {
        if matches!(self.mode, Mode::HostDryRun { .. }) {
            1
        } else {
            self.opts.boot_attempts
        }
    }

    /// Whether stboot brings up the network (not in a dry run on a running system
    /// without `--configure-network`).
    pub fn configures_network(&self) -> bool {
        self.mode != (Mode::HostDryRun { configure_network: false })
    }

    /// Say what failed (`context`: "attempt 2/3") and what to do; after a failure
    /// past the measurements, reboot.
    pub fn report(&self, f: &crate::recovery::Failure, context: &str) {
        f.report(context);
        if f.fatal {
            error!("measurements were made for a kernel that did not start: rebooting to reset the PCRs");
            self.finish(false);
        }
    }

    /// End the process: an init never exits (a dry run idles, a failure reboots); a
    /// dry run outside PID 1 removes its staging directory and exits 0 or 1. Only a
    /// dry run ends `ok` (a boot ends in the kexec'd kernel).
    pub fn finish(&self, ok: bool) -> ! {
        if ok {
            tracing::info!("Dry run: verified the OS package and did not boot it");
        }
        if !self.pid1 {
            let _ = std::fs::remove_dir_all(&self.stage_dir);
            std::process::exit(if ok { 0 } else { 1 });
        }
        if ok {
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        crate::recovery::reboot()
    }
}

/// Why [`start`] ended the process before a boot began: what to print, and the
/// exit code.
#[derive(Debug)]
pub struct EarlyExit {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl EarlyExit {
    pub fn exit(self) -> ! {
        if !self.stdout.is_empty() {
            println!("{}", self.stdout);
        }
        if !self.stderr.is_empty() {
            eprintln!("{}", self.stderr);
        }
        std::process::exit(self.code)
    }
}

/// Everything before the boot proper, in order: `--version`/`--help`; refuse to run
/// outside PID 1 unless it is a dry run; as PID 1 the filesystems, the console and
/// child reaping, then the kernel command line; logging; the kernel modules and
/// efivarfs; the random pool; the clock; the staging directory.
pub fn start(args: Vec<String>) -> std::result::Result<Run, EarlyExit> {
    let started = Instant::now();
    let early = |code, stdout: &str, stderr: &str| EarlyExit { code, stdout: stdout.into(), stderr: stderr.into() };
    if args.iter().any(|a| a == "--version" || a == "-version") {
        return Err(early(0, &format!("stboot-rs {}", crate::VERSION), ""));
    }
    if args.iter().any(|a| a == "--help" || a == "-help" || a == "-h") {
        return Err(early(0, USAGE, ""));
    }
    let pid1 = std::process::id() == 1;
    let configure_network = args.iter().any(|a| a == "--configure-network" || a == "-configure-network");
    let boot_args: Vec<String> =
        args.iter().filter(|a| !matches!(a.as_str(), "--configure-network" | "-configure-network")).cloned().collect();
    // as PID 1, /proc must be mounted before the command line can be read
    let mounts = if pid1 {
        let m = mount_filesystems();
        attach_console();
        reap_children();
        m
    } else {
        Vec::new()
    };
    let cmdline = if pid1 { kernel_cmdline() } else { String::new() };
    let opts = crate::config::Options::from_boot(&cmdline, &boot_args);
    let mode = match (pid1, opts.dry_run) {
        (true, false) => Mode::Init,
        (true, true) => Mode::InitDryRun,
        (false, true) => Mode::HostDryRun { configure_network },
        (false, false) => {
            return Err(early(
                2,
                "",
                "stboot: not running as PID 1: refusing to load modules, reconfigure the network and kexec on a running system.\n\
                 stboot: to fetch and verify only, run `stboot --dry-run` (see `stboot --help`).",
            ))
        }
    };
    setup_logging(&opts.log_level);
    std::panic::set_hook(Box::new(|p| error!("BUG: stboot panicked: {p}")));
    info!("stboot-rs {} starting (PID {})", crate::VERSION, std::process::id());
    if let Mode::HostDryRun { configure_network } = mode {
        info!(
            "dry run outside PID 1: no modules, no kexec, no TPM; {}",
            if configure_network {
                "the network is configured as the host configuration says"
            } else {
                "the network is used as it is"
            }
        );
    }
    for m in mounts {
        info!("mounted {m}");
    }
    let given: Vec<&str> = cmdline.split_ascii_whitespace().filter(|t| t.starts_with("stboot.")).collect();
    if !given.is_empty() {
        info!("options from the kernel command line: {}", given.join(" "));
    }
    for w in &opts.warnings {
        warn!("kernel command line: {w}");
    }
    if pid1 {
        use crate::config::paths::{MODULES_DIR, MODULES_LOAD_DIR};
        for (name, r) in load_modules(Path::new(MODULES_DIR), Path::new(MODULES_LOAD_DIR), opts.modules.as_deref()) {
            match r {
                Ok(d) => info!("module {name} loaded ({} ms)", d.as_millis()),
                Err(e) => warn!("module {name} failed: {e:#}"),
            }
        }
        if let Some(m) = mount_efivarfs() {
            info!("mounted {m}");
        }
    }
    // carrier negotiates while the configuration is read
    let woken = if pid1 {
        match crate::network::wake_nics() {
            Ok(w) => w,
            Err(e) => {
                warn!("bringing the NICs up early failed (the network step tries again): {e:#}");
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let waited = wait_for_entropy();
    if !waited.is_zero() {
        info!("random pool ready after waiting {} ms", waited.as_millis());
    }
    let (_, behind) = crate::verify::effective_now();
    if behind {
        warn!("the system clock is before this build's date; certificates are checked at the build date instead");
    }
    let stage_dir = match staging_dir(pid1) {
        Ok(d) => d,
        Err(e) => {
            error!("cannot create the staging directory: {e:#}");
            if pid1 {
                crate::recovery::reboot();
            }
            return Err(early(1, "", ""));
        }
    };
    // the files a dry run on an admin host checks; PID 1 reads its initramfs's only
    let sources = if pid1 {
        if opts.trust_policy.is_some() || opts.host_config.is_some() {
            warn!("-trustPolicy and -hostConfig are for a dry run outside PID 1: ignored; reading /etc");
        }
        crate::config::Sources::default()
    } else {
        crate::config::Sources::given(&opts)
    };
    Ok(Run { opts, mode, pid1, started, stage_dir, sources, woken })
}

/// Timestamps like the kernel's: seconds since boot, so console lines line up with dmesg.
struct Uptime;

impl tracing_subscriber::fmt::time::FormatTime for Uptime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        let t =
            nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).unwrap_or(nix::sys::time::TimeSpec::new(0, 0));
        write!(w, "[{:5}.{:06}] stboot:", t.tv_sec(), t.tv_nsec() / 1000)
    }
}

/// Log to stderr (the console) at `level`, with the kernel's timestamps.
pub fn setup_logging(level: &str) {
    let level = match level {
        "error" => tracing::Level::ERROR,
        "warn" => tracing::Level::WARN,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_timer(Uptime)
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
}

/// What PID 1 mounts, in order: (source, mount point, type, flags, data). The mount
/// points outside /sys must be directories of the initramfs layout (a test checks).
const NODEV: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV).union(MsFlags::MS_NOEXEC);
pub const MOUNTS: [(&str, &str, &str, MsFlags, Option<&str>); 6] = [
    ("proc", "/proc", "proc", NODEV, None),
    ("sysfs", "/sys", "sysfs", NODEV, None),
    ("devtmpfs", "/dev", "devtmpfs", MsFlags::MS_NOSUID, Some("mode=0755")),
    ("tmpfs", "/tmp", "tmpfs", MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV), Some("mode=1777")),
    ("tmpfs", "/run", "tmpfs", MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV), Some("mode=0755")),
    ("securityfs", "/sys/kernel/security", "securityfs", NODEV, None),
];

/// Mount proc, sys, devtmpfs, tmpfs staging, and securityfs/efivarfs when present.
/// Already-mounted filesystems (EBUSY) are fine.
pub fn mount_filesystems() -> Vec<String> {
    MOUNTS.iter().map(|&(src, dst, fs, flags, data)| mount_one(src, dst, fs, flags, data)).collect()
}

/// efivarfs may be a module: mount it after modules are loaded.
pub fn mount_efivarfs() -> Option<String> {
    let dir = "/sys/firmware/efi/efivars";
    if !Path::new("/sys/firmware/efi").exists() {
        return None;
    }
    Some(mount_one("efivarfs", dir, "efivarfs", NODEV, None))
}

fn mount_one(src: &str, dst: &str, fs: &str, flags: MsFlags, data: Option<&str>) -> String {
    let _ = std::fs::create_dir_all(dst);
    match mount(Some(src), dst, Some(fs), flags, data) {
        Ok(()) => format!("{fs} on {dst}"),
        Err(nix::errno::Errno::EBUSY) => format!("{fs} on {dst} (already mounted)"),
        Err(e) => format!("{fs} on {dst} FAILED: {e}"),
    }
}

/// Make /dev/console stdin, stdout and stderr, with software flow control off.
pub fn attach_console() {
    if let Ok(f) = std::fs::OpenOptions::new().read(true).write(true).open(crate::config::paths::CONSOLE) {
        sys::attach_stdio(&f);
        if let Err(e) = no_flow_control(&f) {
            tracing::warn!("console: {e:#}; a Ctrl-S on the serial line would stop stboot until a Ctrl-Q");
        }
    }
}

/// Switch off software flow control (IXON/IXOFF) on a terminal: with it on, one
/// Ctrl-S (0x13) on the serial line, a stray byte from a BMC's serial-over-LAN say,
/// stops every write to the console until a Ctrl-Q, and stboot with it once about
/// 4 KiB of log are queued. Not a terminal: nothing to do.
pub fn no_flow_control(console: &impl std::os::fd::AsFd) -> anyhow::Result<()> {
    use nix::sys::termios::{self, InputFlags, SetArg};
    let Ok(mut t) = termios::tcgetattr(console.as_fd()) else {
        return Ok(());
    };
    if !t.input_flags.intersects(InputFlags::IXON | InputFlags::IXOFF) {
        return Ok(());
    }
    t.input_flags.remove(InputFlags::IXON | InputFlags::IXOFF | InputFlags::IXANY);
    termios::tcsetattr(console.as_fd(), SetArg::TCSANOW, &t)
        .map_err(|e| anyhow::anyhow!("switching off software flow control (IXON): {e}"))
}

/// As PID 1, let the kernel reap exited children (SIGCHLD ignored ⇒ no zombies).
pub fn reap_children() {
    sys::ignore_sigchld();
}

/// Load kernel modules from `/lib/modules`: those listed in
/// `/lib/modules-load.d/*.conf` first, in order, then any other `.ko` by name.
/// Returns one line per module.
pub fn load_modules(dir: &Path, lists: &Path, only: Option<&[String]>) -> Vec<(String, Result<Duration>)> {
    let mut order: Vec<String> = Vec::new();
    if let Some(only) = only {
        order.extend(only.iter().cloned());
    } else {
        let mut confs: Vec<_> = std::fs::read_dir(lists).into_iter().flatten().flatten().map(|e| e.path()).collect();
        confs.sort();
        for c in confs.iter().filter(|p| p.extension().is_some_and(|e| e == "conf")) {
            for line in std::fs::read_to_string(c).unwrap_or_default().lines() {
                let l = line.trim();
                if !l.is_empty() && !l.starts_with('#') {
                    order.push(if l.ends_with(".ko") { l.to_string() } else { format!("{l}.ko") });
                }
            }
        }
        let mut rest: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(String::from))
            .filter(|n| n.ends_with(".ko") && !order.contains(n))
            .collect();
        rest.sort();
        order.extend(rest);
    }
    order
        .into_iter()
        .map(|name| {
            let t = Instant::now();
            let r = load_module(&dir.join(&name)).map(|_| t.elapsed());
            (name, r)
        })
        .collect()
}

/// Whether the kernel's random pool is initialised; if not, wait for it and say so.
/// The wait is a blocking `getrandom` on a helper thread (that is what makes the
/// kernel generate jitter entropy); the console hears every 5 s that it goes on.
/// Returns how long it waited.
pub fn wait_for_entropy() -> Duration {
    let t = Instant::now();
    if sys::random_ready() {
        return Duration::ZERO;
    }
    warn!("the kernel's random pool is not initialised yet; TLS and DHCP need it. Waiting (a hardware RNG, RDRAND or virtio-rng avoids this)");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        sys::random_wait();
        let _ = tx.send(());
    });
    while rx.recv_timeout(Duration::from_secs(5)).is_err() {
        info!("still waiting for the random pool after {} s", t.elapsed().as_secs());
    }
    t.elapsed()
}

/// Read `/proc/cmdline`.
pub fn kernel_cmdline() -> String {
    std::fs::read_to_string("/proc/cmdline").unwrap_or_default()
}

/// Create the staging directory: `/tmp/stboot` on PID 1's tmpfs, or a private
/// directory of this process elsewhere (a dry run on a running system). Mode 0700.
pub fn staging_dir(pid1: bool) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = if pid1 {
        PathBuf::from(STAGING_DIR)
    } else {
        std::env::temp_dir().join(format!("stboot-dry-run-{}", std::process::id()))
    };
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// `finit_module` on a file; an already loaded module is fine.
fn load_module(path: &Path) -> Result<()> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    match sys::finit_module(&f) {
        Ok(()) => Ok(()),
        Err(e) => match sys::explain_finit_module(&e) {
            None => Ok(()),
            Some(why) => Err(anyhow::anyhow!("{why}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    /// Write `n` bytes to the pty's terminal end after a Ctrl-S arrived on it, and
    /// read them on the other end: how many arrived within `wait`.
    fn output_after_ctrl_s(pty: nix::pty::OpenptyResult, n: usize, wait: Duration) -> usize {
        let mut master = std::fs::File::from(pty.master);
        master.write_all(&[0x13]).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let mut slave = std::fs::File::from(pty.slave);
        std::thread::spawn(move || {
            let _ = slave.write_all(&vec![b'x'; n]);
            slave
        });
        nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)).unwrap();
        let (mut got, end, mut buf) = (0, Instant::now() + wait, [0u8; 4096]);
        while got < n && Instant::now() < end {
            match master.read(&mut buf) {
                // only the written bytes: the terminal may echo the Ctrl-S as "^S"
                Ok(k) => got += buf[..k].iter().filter(|&&b| b == b'x').count(),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        got
    }

    /// A Ctrl-S on the serial line once stopped stboot: with flow control on (the
    /// kernel's default for a terminal), output stops at the Ctrl-S; with it off,
    /// 256 KiB of log all come through.
    #[test]
    fn a_ctrl_s_on_the_console_does_not_stop_output() {
        let n = 256 * 1024;
        let pty = nix::pty::openpty(None, None).unwrap();
        let t = nix::sys::termios::tcgetattr(&pty.slave).unwrap();
        assert!(t.input_flags.contains(nix::sys::termios::InputFlags::IXON), "a new terminal has IXON on");
        let stopped = output_after_ctrl_s(pty, n, Duration::from_millis(500));
        assert!(stopped < n, "with IXON the output stops (got {stopped} bytes)");

        let pty = nix::pty::openpty(None, None).unwrap();
        no_flow_control(&pty.slave).unwrap();
        let t = nix::sys::termios::tcgetattr(&pty.slave).unwrap();
        assert!(!t.input_flags.intersects(nix::sys::termios::InputFlags::IXON | nix::sys::termios::InputFlags::IXOFF));
        assert_eq!(output_after_ctrl_s(pty, n, Duration::from_secs(20)), n);
        // not a terminal: nothing to do, no error
        no_flow_control(&std::fs::File::open("/dev/null").unwrap()).unwrap();
    }
}
