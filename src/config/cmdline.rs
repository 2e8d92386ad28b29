//! Options for stboot from the kernel command line (`/proc/cmdline`).
//!
//! Dotted parameters such as `stboot.loglevel=debug` are not passed to init by the
//! kernel, so stboot reads `/proc/cmdline` itself. Unknown tokens are ignored (the
//! firmware may add its own, e.g. `initrd=initrd`); a known option with a bad value
//! is reported and its default kept.

use std::time::Duration;

/// Options with their defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `stboot.loglevel=error|warn|info|debug` (default `info`).
    pub log_level: String,
    /// `stboot.deadline=SECONDS`: the whole fetch phase (default 1200, upstream's 20 min).
    pub deadline: Duration,
    /// `stboot.dhcp_timeout=SECONDS`: how long DHCP may take in all (default 60).
    pub dhcp_timeout: Duration,
    /// `stboot.stall_timeout=SECONDS`: a download attempt ends when the server has
    /// not answered, or sent fewer than 4 KiB/s, for this long (default 10).
    pub stall_timeout: Duration,
    /// `stboot.boot_attempts=N`: whole-boot attempts before rebooting (default 3).
    pub boot_attempts: u32,
    /// `stboot.dryrun=1`: verify but do not kexec.
    pub dry_run: bool,
    /// `stboot.modules=a.ko,b.ko`: load only these from /lib/modules, in this order.
    pub modules: Option<Vec<String>>,
    /// `stboot.provision_wait=SECONDS`: how long Ctrl-C on the console selects the
    /// provisioning package, when the initramfs has one (default 3; 0: never).
    pub provision_wait: Duration,
    /// `stboot.handoff=0`: do not append the event logs and boot report to the OS
    /// initramfs (default 1).
    pub handoff: bool,
    /// `-trustPolicy DIR` (init argument, a dry run outside PID 1 only): the trust
    /// policy directory instead of /etc/trust_policy.
    pub trust_policy: Option<std::path::PathBuf>,
    /// `-hostConfig FILE` (likewise): the host configuration instead of
    /// /etc/host_configuration.json and the EFI variable.
    pub host_config: Option<std::path::PathBuf>,
    /// Problems found while parsing, to be logged once logging is up.
    pub warnings: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            log_level: "info".into(),
            deadline: Duration::from_secs(20 * 60),
            dhcp_timeout: Duration::from_secs(60),
            stall_timeout: Duration::from_secs(10),
            boot_attempts: 3,
            dry_run: false,
            modules: None,
            provision_wait: crate::provision::DEFAULT_WAIT,
            handoff: true,
            trust_policy: None,
            host_config: None,
            warnings: Vec::new(),
        }
    }
}

/// Allowed ranges, in seconds (attempts for `boot_attempts`). A value outside is
/// clamped to the range with a warning: no option can make stboot wait forever or
/// overflow a clock.
pub const DEADLINE_RANGE: (u64, u64) = (10, 7 * 24 * 3600);
pub const DHCP_TIMEOUT_RANGE: (u64, u64) = (1, 3600);
pub const STALL_TIMEOUT_RANGE: (u64, u64) = (1, 600);
pub const BOOT_ATTEMPTS_RANGE: (u64, u64) = (1, 1000);
pub const PROVISION_WAIT_RANGE: (u64, u64) = (0, 600);

/// Parse `val` as a whole number in `range`; outside it, clamp and warn; not a
/// number, keep `current` and warn.
fn number(name: &str, val: &str, range: (u64, u64), current: u64, warnings: &mut Vec<String>) -> u64 {
    let (lo, hi) = range;
    match val.trim().parse::<u128>() {
        Ok(v) if v < u128::from(lo) => {
            warnings.push(format!("{name}={val}: below the minimum of {lo}; using {lo}"));
            lo
        }
        Ok(v) if v > u128::from(hi) => {
            warnings.push(format!("{name}={val}: above the maximum of {hi}; using {hi}"));
            hi
        }
        Ok(v) => v as u64,
        Err(_) => {
            warnings.push(format!("{name}={val:?}: expected a whole number from {lo} to {hi}; keeping {current}"));
            current
        }
    }
}

impl Options {
    /// Options from `/proc/cmdline` (`stboot.*`), then upstream's init arguments
    /// (what follows `--` on the kernel command line reaches init as argv):
    /// `-loglevel=e|w|i|d`, `-dryrun`, `-deadline=MINUTES`, with one or two dashes.
    pub fn from_boot(cmdline: &str, args: &[String]) -> Self {
        let mut o = Self::parse(cmdline);
        o.apply_args(args);
        o
    }

    fn apply_args(&mut self, args: &[String]) {
        let mut it = args.iter().peekable();
        while let Some(a) = it.next() {
            let flag = a.trim_start_matches('-');
            if flag.len() == a.len() {
                self.warnings.push(format!("init argument {a:?} ignored"));
                continue;
            }
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (flag, None),
            };
            let mut value = || inline.clone().or_else(|| it.next().cloned()).unwrap_or_default();
            match name {
                "dryrun" | "dry-run" => self.dry_run = inline.as_deref().is_none_or(|v| v == "true" || v == "1"),
                "loglevel" => match value().as_str() {
                    "e" | "error" => self.log_level = "error".into(),
                    // upstream spells it "warm"
                    "w" | "warm" | "warn" => self.log_level = "warn".into(),
                    "i" | "info" => self.log_level = "info".into(),
                    "d" | "debug" => self.log_level = "debug".into(),
                    v => self
                        .warnings
                        .push(format!("-loglevel {v:?}: expected e, w, i or d; keeping {}", self.log_level)),
                },
                "deadline" => {
                    // upstream's -deadline is in minutes
                    let range = (DEADLINE_RANGE.0.div_ceil(60), DEADLINE_RANGE.1 / 60);
                    let m = number("-deadline", &value(), range, self.deadline.as_secs() / 60, &mut self.warnings);
                    self.deadline = Duration::from_secs(m * 60);
                }
                "trustPolicy" | "trust-policy" => self.trust_policy = Some(value().into()),
                "hostConfig" | "host-config" => self.host_config = Some(value().into()),
                _ => self.warnings.push(format!("unknown init argument {a:?} ignored")),
            }
        }
    }

    pub fn parse(cmdline: &str) -> Self {
        let mut o = Options::default();
        for tok in cmdline.split_ascii_whitespace() {
            let Some(rest) = tok.strip_prefix("stboot.") else { continue };
            let (key, val) = rest.split_once('=').unwrap_or((rest, "1"));
            let name = format!("stboot.{key}");
            let w = &mut o.warnings;
            match key {
                "loglevel" => match val {
                    "error" | "warn" | "info" | "debug" | "trace" => o.log_level = val.to_string(),
                    _ => w.push(format!("stboot.loglevel={val:?}: expected error, warn, info or debug; keeping info")),
                },
                "deadline" => {
                    o.deadline = Duration::from_secs(number(&name, val, DEADLINE_RANGE, o.deadline.as_secs(), w))
                }
                "dhcp_timeout" => {
                    let cur = o.dhcp_timeout.as_secs();
                    o.dhcp_timeout = Duration::from_secs(number(&name, val, DHCP_TIMEOUT_RANGE, cur, w))
                }
                "stall_timeout" => {
                    let cur = o.stall_timeout.as_secs();
                    o.stall_timeout = Duration::from_secs(number(&name, val, STALL_TIMEOUT_RANGE, cur, w))
                }
                "boot_attempts" => {
                    let cur = u64::from(o.boot_attempts);
                    o.boot_attempts = number(&name, val, BOOT_ATTEMPTS_RANGE, cur, w) as u32
                }
                "provision_wait" => {
                    let cur = o.provision_wait.as_secs();
                    o.provision_wait = Duration::from_secs(number(&name, val, PROVISION_WAIT_RANGE, cur, w))
                }
                "dryrun" => o.dry_run = matches!(val, "1" | "true" | "yes"),
                "handoff" => match val {
                    "1" | "true" | "yes" | "on" => o.handoff = true,
                    "0" | "false" | "no" | "off" => o.handoff = false,
                    _ => w.push(format!("stboot.handoff={val:?}: expected 0 or 1; keeping 1")),
                },
                "modules" => o.modules = Some(val.split(',').filter(|s| !s.is_empty()).map(String::from).collect()),
                _ => o.warnings.push(format!("unknown option stboot.{key}, ignored")),
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_and_ignores_foreign() {
        let o = Options::parse("console=ttyS0 initrd=initrd stboot.loglevel=debug stboot.deadline=30 stboot.dryrun stboot.modules=a.ko,b.ko quiet");
        assert_eq!(o.log_level, "debug");
        assert_eq!(o.deadline, Duration::from_secs(30));
        assert!(o.dry_run);
        assert_eq!(o.modules, Some(vec!["a.ko".to_string(), "b.ko".to_string()]));
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    }

    #[test]
    fn upstream_init_arguments() {
        let args: Vec<String> = ["-loglevel=d", "--dryrun", "-deadline", "5"].iter().map(|s| s.to_string()).collect();
        let o = Options::from_boot("console=ttyS0", &args);
        assert_eq!(o.log_level, "debug");
        assert!(o.dry_run);
        assert_eq!(o.deadline, Duration::from_secs(300));
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
        let o = Options::from_boot("", &["--loglevel".to_string(), "warm".to_string(), "x".to_string()]);
        assert_eq!(o.log_level, "warn");
        assert_eq!(o.warnings.len(), 1);
    }

    #[test]
    fn bad_values_warn_and_keep_defaults() {
        let o = Options::parse("stboot.deadline=soon stboot.loglevel=warm stboot.boot_attempts=0 stboot.bogus=1");
        assert_eq!(o.deadline, Options::default().deadline);
        assert_eq!(o.log_level, "info");
        assert_eq!(o.boot_attempts, 1, "0 is clamped to the minimum");
        assert_eq!(o.warnings.len(), 4, "{:?}", o.warnings);
    }

    /// Every numeric option, fed values that once panicked PID 1 ("overflow when
    /// adding duration to instant") and others at the edges: clamped, warned, and
    /// usable with `Instant::now() + d`.
    #[test]
    fn extreme_values_are_clamped_with_a_warning() {
        let huge = ["18446744073709551615", "18446744073709551616", "99999999999999999999999999", "-1", "0", "1e9", ""];
        for v in huge {
            let line = format!(
                "stboot.deadline={v} stboot.dhcp_timeout={v} stboot.stall_timeout={v} stboot.boot_attempts={v}"
            );
            let o = Options::parse(&line);
            assert_eq!(o.warnings.len(), 4, "{v}: {:?}", o.warnings);
            for (d, (lo, hi)) in [
                (o.deadline, DEADLINE_RANGE),
                (o.dhcp_timeout, DHCP_TIMEOUT_RANGE),
                (o.stall_timeout, STALL_TIMEOUT_RANGE),
            ] {
                assert!((lo..=hi).contains(&d.as_secs()), "{v}: {d:?}");
                let _ = std::time::Instant::now() + d; // must not overflow
            }
            assert!((1..=1000).contains(&o.boot_attempts), "{v}");
            let args = vec![format!("-deadline={v}")];
            let o = Options::from_boot("", &args);
            assert!((DEADLINE_RANGE.0..=DEADLINE_RANGE.1).contains(&o.deadline.as_secs()), "-deadline={v}");
            assert_eq!(o.warnings.len(), 1, "-deadline={v}: {:?}", o.warnings);
        }
        let o = Options::parse("stboot.deadline=18446744073709551615");
        assert_eq!(o.deadline.as_secs(), DEADLINE_RANGE.1);
        assert!(o.warnings[0].contains("above the maximum"), "{:?}", o.warnings);
        let o = Options::parse("stboot.stall_timeout=3");
        assert_eq!((o.stall_timeout.as_secs(), o.warnings.len()), (3, 0));
        let o = Options::parse("stboot.provision_wait=0");
        assert_eq!((o.provision_wait.as_secs(), o.warnings.len()), (0, 0));
        let o = Options::parse("stboot.provision_wait=100000");
        assert_eq!(o.provision_wait.as_secs(), PROVISION_WAIT_RANGE.1);
    }
}
