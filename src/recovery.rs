//! What happens after a failure: say what failed, at which step, and what the
//! operator can do; retry the whole boot with backoff; finally reboot. Nothing
//! unverified is ever booted on any of these paths.

use std::fmt;
use std::time::Duration;

use tracing::error;

/// The boot steps: one vocabulary for the console (`Display`), the timeline and the
/// boot report ([`Step::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Config,
    Network,
    Fetch,
    Verify,
    Stage,
    /// `kexec_file_load`: the running kernel loads the OS kernel.
    Load,
    /// The TPM extends, after the kernel accepted the image.
    Measure,
    /// The jump into the loaded kernel.
    Kexec,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Config => "configuration",
            Step::Network => "network",
            Step::Fetch => "fetch",
            Step::Verify => "verification",
            Step::Stage => "staging",
            Step::Load | Step::Kexec => "kexec",
            Step::Measure => "measurement",
        })
    }
}

impl Step {
    /// The step's name in the timeline and the boot report.
    pub fn code(self) -> &'static str {
        match self {
            Step::Config => "config",
            Step::Network => "network",
            Step::Fetch => "fetch",
            Step::Verify => "verify",
            Step::Stage => "stage",
            Step::Load => "kexec_load",
            Step::Measure => "measure",
            Step::Kexec => "kexec",
        }
    }

    /// Whether trying the whole boot again can help: a configuration (trust policy,
    /// host configuration) read from the initramfs or an EFI variable is the same
    /// on the next attempt, so a failure there is not retried.
    pub fn retry_can_help(self) -> bool {
        !matches!(self, Step::Config)
    }

    /// What an operator can do about a failure at this step.
    pub fn hint(self) -> &'static str {
        match self {
            Step::Config => "fix the file the message names (the trust policy under /etc/trust_policy/, or the host configuration), check it with `stmgr trustpolicy check DIR` / `stmgr hostconfig check FILE`, and rebuild the initramfs (or rewrite the STHostConfig EFI variable)",
            Step::Network => "check cabling/switch port, that a DHCP server (or, for IPv6, a router) answers on the link, the NIC driver modules in the initramfs, network_interfaces and the static addresses in the host configuration; raise stboot.dhcp_timeout for slow switch ports",
            Step::Fetch => "the reason for each URL is above: check that the provisioning server is up, the ospkg_pointer URLs and credentials, that tls_roots.pem holds the server's CA, and that packages are signed by enough keys of ospkg_signing_root.pem (`stmgr ospkg verify -trustPolicy`)",
            Step::Verify => "the package was not accepted for the reason above: check it with `stmgr ospkg verify -trustPolicy DIR -ospkg NAME`, which says what to do",
            Step::Stage => "the package's manifest or archive is broken, or the machine lacks memory to stage it: check it with `stmgr ospkg verify`",
            Step::Load | Step::Kexec => "the kernel refused to load the OS kernel: see the reason above",
            Step::Measure => "the TPM could not be extended: see the reason above",
        }
    }
}

/// The failures whose type carries its kind and remedy.
enum Typed<'a> {
    Fetch(&'a crate::fetch::FetchError),
    Decrypt(&'a crate::decrypt::DecryptFailure),
    Verify(&'a crate::verify::Rejected),
    Boot(&'a crate::boot::BootError),
}

/// A failed boot attempt.
#[derive(Debug)]
pub struct Failure {
    pub step: Step,
    pub error: anyhow::Error,
    /// Nothing else may be tried before a reboot (the PCRs already hold
    /// measurements of a kernel that did not start).
    pub fatal: bool,
}

impl Failure {
    pub fn new(step: Step, error: anyhow::Error) -> Self {
        Self { step, error, fatal: false }
    }

    /// The first error in the chain whose type knows its kind and remedy.
    fn typed(&self) -> Option<Typed<'_>> {
        self.error.chain().find_map(|c| {
            use crate::{boot::BootError, decrypt::DecryptFailure, fetch::FetchError, verify::Rejected};
            c.downcast_ref::<FetchError>()
                .map(Typed::Fetch)
                .or_else(|| c.downcast_ref::<DecryptFailure>().map(Typed::Decrypt))
                .or_else(|| c.downcast_ref::<Rejected>().map(Typed::Verify))
                .or_else(|| c.downcast_ref::<BootError>().map(Typed::Boot))
        })
    }

    /// What the operator can do: the remedy of the first error in the chain that
    /// knows its own (a fetch, decryption, verification or staging failure), else
    /// the step's.
    pub fn remedy(&self) -> String {
        match self.typed() {
            Some(Typed::Fetch(e)) => e.remedy().into(),
            Some(Typed::Decrypt(e)) => e.remedy(),
            Some(Typed::Verify(e)) => e.remedy(),
            Some(Typed::Boot(e)) => e.remedy().into(),
            None => self.step.hint().into(),
        }
    }

    /// The kind of failure, for the boot report: the typed error's kind where the
    /// error has one (`fetch.connect`, `verify.signatures`, `boot.tmpfs_full`, ...),
    /// else the step's code.
    pub fn kind(&self) -> String {
        match self.typed() {
            Some(Typed::Fetch(e)) => format!("fetch.{}", e.code()),
            Some(Typed::Decrypt(e)) => format!("decrypt.{}", e.code()),
            Some(Typed::Verify(e)) => format!("verify.{}", e.kind.code()),
            Some(Typed::Boot(e)) => format!("boot.{}", e.code()),
            None => self.step.code().to_string(),
        }
    }

    /// Say what failed; `context` is e.g. "attempt 2/3".
    pub fn report(&self, context: &str) {
        error!("BOOT FAILED at step {} ({context}): {:#}", self.step, self.error);
        error!("what to do: {}", self.remedy());
    }
}

/// `result.at(Step::Config)?`: an error as a [`Failure`] of that step.
pub trait At<T> {
    fn at(self, step: Step) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> At<T> for Result<T, E> {
    fn at(self, step: Step) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(step, e.into()))
    }
}

/// Durations of the steps of one boot attempt, for the console and the boot report.
#[derive(Debug, Default)]
pub struct Timeline(Vec<(Step, Duration)>);

impl Timeline {
    /// Run `f` as `step`: its duration is logged and kept.
    pub fn step<T>(&mut self, step: Step, f: impl FnOnce() -> T) -> T {
        let t = std::time::Instant::now();
        let r = f();
        let d = t.elapsed();
        tracing::info!("step {}: {} ms", step.code(), d.as_millis());
        self.0.push((step, d));
        r
    }

    /// Run `f` as `step` ([`Timeline::step`]); its error is a [`Failure`] of `step`.
    pub fn try_step<T, E: Into<anyhow::Error>>(
        &mut self,
        step: Step,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, Failure> {
        self.step(step, f).at(step)
    }

    /// The steps so far, in order.
    pub fn steps(&self) -> &[(Step, Duration)] {
        &self.0
    }

    /// `Timeline: config 3 ms, network 1020 ms, ...; 2345 ms since stboot started`.
    pub fn summary(&self, since_start: Duration) -> String {
        let parts: Vec<String> = self.0.iter().map(|(n, d)| format!("{} {} ms", n.code(), d.as_millis())).collect();
        format!("Timeline: {}; {} ms since stboot started", parts.join(", "), since_start.as_millis())
    }
}

/// Backoff before boot attempt `n` (1-based): 5, 10, 20, ... s, at most 60.
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs((5u64 << n.saturating_sub(1).min(4)).min(60))
}

/// The wait before boot attempt `n`: half of [`backoff`], plus a random part of the
/// other half from the 64 random bits `r`. A fleet that failed together does not
/// retry together, and no machine loops back at once (a whole boot brings the
/// network up again).
pub fn jittered_backoff(n: u32, r: u64) -> Duration {
    let b = backoff(n);
    b / 2 + crate::fetch::retry::jitter(b / 2, r)
}

/// Boot attempts 1 to `attempts`, each `attempt(n, "attempt n/attempts")` returning
/// its failure (it returns only on failure), with [`retry`] between them; the number
/// tried.
pub fn attempts(attempts: u32, mut attempt: impl FnMut(u32, &str) -> Failure) -> u32 {
    for n in 1..=attempts {
        if !retry(&attempt(n, &format!("attempt {n}/{attempts}")), n, attempts) {
            return n;
        }
    }
    attempts
}

/// After failed boot attempt `attempt` of `attempts` (reported already): whether
/// to try again, after the backoff. A failure no retry can heal (configuration,
/// trust policy) is not tried again.
pub fn retry(f: &Failure, attempt: u32, attempts: u32) -> bool {
    if !f.step.retry_can_help() {
        error!("a {} error is the same on every attempt: not trying again", f.step);
        return false;
    }
    if attempt >= attempts {
        return false;
    }
    let wait = jittered_backoff(attempt, crate::fetch::retry::os_random());
    tracing::info!("retrying the whole boot in {} s", wait.as_secs());
    std::thread::sleep(wait);
    true
}

/// Give up: reboot the machine, and keep trying if that fails. Never returns.
pub fn reboot() -> ! {
    error!("Recover: rebooting");
    nix::unistd::sync();
    loop {
        let Err(e) = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT);
        error!("reboot failed: {e}; trying again in 5 s");
        std::thread::sleep(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kind and the remedy come from the same typed error in the chain, under
    /// any context; an untyped error gets the step's.
    #[test]
    fn kind_and_remedy_follow_the_typed_error() {
        let e = anyhow::Error::new(crate::fetch::FetchError::Empty).context("archive https://h/x.zip");
        let f = Failure::new(Step::Fetch, e);
        assert_eq!(f.kind(), "fetch.empty");
        assert_eq!(f.remedy(), crate::fetch::FetchError::Empty.remedy());
        let f = Failure::new(Step::Network, anyhow::anyhow!("no NIC found"));
        assert_eq!((f.kind(), f.remedy()), ("network".to_string(), Step::Network.hint().to_string()));
    }

    /// A failure no retry can heal ends the attempts at once; the last attempt
    /// is not followed by a wait.
    #[test]
    fn attempts_stop_at_a_failure_no_retry_heals() {
        let mut seen = Vec::new();
        let tried = attempts(3, |_, ctx| {
            seen.push(ctx.to_string());
            Failure::new(Step::Config, anyhow::anyhow!("bad"))
        });
        assert_eq!((tried, seen), (1, vec!["attempt 1/3".to_string()]));
        let t = std::time::Instant::now();
        assert_eq!(attempts(1, |_, _| Failure::new(Step::Fetch, anyhow::anyhow!("404"))), 1);
        assert!(t.elapsed() < Duration::from_secs(5), "no backoff after the last attempt");
        assert_eq!(attempts(0, |_, _| unreachable!()), 0);
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(5));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(10), Duration::from_secs(60));
        // jittered: from half of it to all of it
        assert_eq!(jittered_backoff(2, 0), Duration::from_secs(5));
        assert!(jittered_backoff(2, u64::MAX) > Duration::from_millis(9999));
        assert!(jittered_backoff(10, u64::MAX / 2) > Duration::from_secs(44));
    }
}
