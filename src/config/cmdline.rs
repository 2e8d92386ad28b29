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
    /// `stboot.boot_attempts=N`: whole-boot attempts before rebooting (default 3).
    pub boot_attempts: u32,
    /// `stboot.dryrun=1`: verify but do not kexec.
    pub dry_run: bool,
    /// `stboot.modules=a.ko,b.ko`: load only these from /lib/modules, in this order.
    pub modules: Option<Vec<String>>,
    /// Problems found while parsing, to be logged once logging is up.
    pub warnings: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            log_level: "info".into(),
            deadline: Duration::from_secs(20 * 60),
            dhcp_timeout: Duration::from_secs(60),
            boot_attempts: 3,
            dry_run: false,
            modules: None,
            warnings: Vec::new(),
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
                "dryrun" => self.dry_run = inline.as_deref().is_none_or(|v| v == "true" || v == "1"),
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
                "deadline" => match value().parse::<u64>() {
                    Ok(m) if m > 0 => self.deadline = Duration::from_secs(m * 60),
                    _ => self
                        .warnings
                        .push(format!("-deadline: expected minutes > 0, keeping {} s", self.deadline.as_secs())),
                },
                _ => self.warnings.push(format!("unknown init argument {a:?} ignored")),
            }
        }
    }

    pub fn parse(cmdline: &str) -> Self {
        let mut o = Options::default();
        for tok in cmdline.split_ascii_whitespace() {
            let Some(rest) = tok.strip_prefix("stboot.") else { continue };
            let (key, val) = rest.split_once('=').unwrap_or((rest, "1"));
            let secs = |o: &mut Options, d: &mut Duration| match val.parse::<u64>() {
                Ok(s) if s > 0 => *d = Duration::from_secs(s),
                _ => o
                    .warnings
                    .push(format!("stboot.{key}={val:?}: expected a number of seconds > 0, keeping {}s", d.as_secs())),
            };
            match key {
                "loglevel" => match val {
                    "error" | "warn" | "info" | "debug" | "trace" => o.log_level = val.to_string(),
                    _ => o
                        .warnings
                        .push(format!("stboot.loglevel={val:?}: expected error, warn, info or debug; keeping info")),
                },
                "deadline" => {
                    let mut d = o.deadline;
                    secs(&mut o, &mut d);
                    o.deadline = d;
                }
                "dhcp_timeout" => {
                    let mut d = o.dhcp_timeout;
                    secs(&mut o, &mut d);
                    o.dhcp_timeout = d;
                }
                "boot_attempts" => match val.parse::<u32>() {
                    Ok(n) if n > 0 => o.boot_attempts = n,
                    _ => o.warnings.push(format!(
                        "stboot.boot_attempts={val:?}: expected a number > 0, keeping {}",
                        o.boot_attempts
                    )),
                },
                "dryrun" => o.dry_run = matches!(val, "1" | "true" | "yes"),
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
        assert_eq!(o.boot_attempts, 3);
        assert_eq!(o.warnings.len(), 4, "{:?}", o.warnings);
    }
}
