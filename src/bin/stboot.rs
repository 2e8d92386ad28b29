//! stboot: PID 1 of the LinuxBoot initramfs. Reads its configuration, brings up the
//! network, fetches and verifies an OS package, and kexecs into it; on failure it
//! says why, tries the next URL, retries, and finally reboots. The steps live in the
//! library, one module per step; this file orders them and keeps the timeline.
//!
//! Outside PID 1 it runs nothing but a dry run (`-dryrun`, `--dry-run`): fetch and
//! verify, no modules, no kexec, no TPM, and the host's network untouched unless
//! `--configure-network` is given.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use stboot::config::{self, paths, FetchMethod, HostConfig, HostConfigSource, Options, TrustConfig};
use stboot::fetch::{self, Fetcher};
use stboot::measure;
use stboot::ospkg::package::Unverified;
use stboot::ospkg::PackagePaths;
use stboot::recovery::{self, Failure, Step};
use stboot::verify::{self, PackageFacts, Threshold, VerifiedOsPackage};
use stboot::{boot, handoff, init, network, ospkg, provision};
use tracing::{error, info, warn};

/// Lines per kind of signature verdict on the console; the rest are counted.
const REPORT_LINES_PER_KIND: usize = 3;

const USAGE: &str = "\
stboot: System Transparency's network bootloader, PID 1 of an initramfs

As PID 1 it reads /etc/trust_policy and the host configuration, brings up
the network, fetches, verifies and kexecs an OS package. Options come from the
kernel command line (stboot.loglevel=, stboot.deadline=,
stboot.stall_timeout=, ...; see docs/operator-guide.md) and from init
arguments after `--`.

Outside PID 1 only a dry run is allowed:
  stboot --dry-run [--configure-network] [-loglevel=d]
      fetch and verify once with this machine's /etc/trust_policy and host
      configuration; no modules, no kexec, no TPM; the network is left as it is
      unless --configure-network is given; exit 0 if it would boot
  stboot --version";

/// Durations of the steps of one boot attempt.
#[derive(Default)]
struct Timeline(Vec<(&'static str, Duration)>);

impl Timeline {
    fn step<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let r = f();
        let d = t.elapsed();
        info!("step {name}: {} ms", d.as_millis());
        self.0.push((name, d));
        r
    }
    fn summary(&self, since_start: Duration) -> String {
        let parts: Vec<String> = self.0.iter().map(|(n, d)| format!("{n} {} ms", d.as_millis())).collect();
        format!("Timeline: {}; {} ms since stboot started", parts.join(", "), since_start.as_millis())
    }
}

/// How this process runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// PID 1 of the initramfs: the whole boot.
    Init,
    /// PID 1, `stboot.dryrun`: verify and stage, then stop.
    InitDryRun,
    /// Not PID 1: fetch and verify only; the network is touched only if asked.
    HostDryRun { configure_network: bool },
}

impl Mode {
    fn dry_run(self) -> bool {
        self != Mode::Init
    }
}

struct Boot {
    opts: Options,
    mode: Mode,
    started: Instant,
    network_up: bool,
    stage_dir: PathBuf,
    /// The whole-boot attempt under way (1-based), for the boot report.
    attempt: u32,
    /// Where the host configuration came from, for the boot report.
    source: String,
    /// What failed before the package that boots (URLs, attempts), for the report.
    failed: std::cell::RefCell<Vec<String>>,
}

fn main() {
    let started = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-version") {
        println!("stboot-rs {}", stboot::VERSION);
        return;
    }
    if args.iter().any(|a| a == "--help" || a == "-help" || a == "-h") {
        println!("{USAGE}");
        return;
    }
    let pid1 = std::process::id() == 1;
    let configure_network = args.iter().any(|a| a == "--configure-network" || a == "-configure-network");
    let boot_args: Vec<String> =
        args.iter().filter(|a| !matches!(a.as_str(), "--configure-network" | "-configure-network")).cloned().collect();
    // as PID 1, /proc must be mounted before the command line can be read
    let mounts = if pid1 {
        let m = init::mount_filesystems();
        init::attach_console();
        init::reap_children();
        m
    } else {
        Vec::new()
    };
    let cmdline = if pid1 { init::kernel_cmdline() } else { String::new() };
    let opts = Options::from_boot(&cmdline, &boot_args);
    let mode = match (pid1, opts.dry_run) {
        (true, false) => Mode::Init,
        (true, true) => Mode::InitDryRun,
        (false, true) => Mode::HostDryRun { configure_network },
        (false, false) => {
            eprintln!(
                "stboot: not running as PID 1: refusing to load modules, reconfigure the network and kexec on a running system.\n\
                 stboot: to fetch and verify only, run `stboot --dry-run` (see `stboot --help`)."
            );
            std::process::exit(2);
        }
    };
    init::setup_logging(&opts.log_level);
    std::panic::set_hook(Box::new(|p| error!("BUG: stboot panicked: {p}")));
    info!("stboot-rs {} starting (PID {})", stboot::VERSION, std::process::id());
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
        for (name, r) in init::load_modules(
            Path::new(paths::MODULES_DIR),
            Path::new(paths::MODULES_LOAD_DIR),
            opts.modules.as_deref(),
        ) {
            match r {
                Ok(d) => info!("module {name} loaded ({} ms)", d.as_millis()),
                Err(e) => warn!("module {name} failed: {e:#}"),
            }
        }
        if let Some(m) = init::mount_efivarfs() {
            info!("mounted {m}");
        }
    }
    let waited = init::wait_for_entropy();
    if !waited.is_zero() {
        info!("random pool ready after waiting {} ms", waited.as_millis());
    }
    let (_, behind) = verify::effective_now();
    if behind {
        warn!("the system clock is before this build's date; certificates are checked at the build date instead");
    }
    let stage_dir = match init::staging_dir(pid1) {
        Ok(d) => d,
        Err(e) => {
            error!("cannot create the staging directory: {e:#}");
            finish(pid1, false);
        }
    };

    let host_dry_run = matches!(mode, Mode::HostDryRun { .. });
    let cleanup = stage_dir.clone();
    let finish = |ok: bool| -> ! {
        if host_dry_run {
            let _ = std::fs::remove_dir_all(&cleanup);
        }
        finish(pid1, ok)
    };
    let mut b = Boot {
        opts,
        mode,
        started,
        network_up: false,
        stage_dir,
        attempt: 0,
        source: String::new(),
        failed: Default::default(),
    };
    // the provisioning package, if the initramfs has one (never outside PID 1)
    let provision = if pid1 { provision::package(Path::new(paths::OSPKG_DIR)) } else { None };
    if let Some(p) = &provision {
        if b.ctrl_c_for_provisioning(p) {
            match b.provision(p, "Ctrl-C on the console") {
                Ok(()) => finish(true),
                Err(f) if f.fatal => {
                    f.report("provisioning package");
                    finish(false);
                }
                Err(f) => {
                    f.report("provisioning package");
                    warn!("the provisioning package did not boot: going on with the normal boot");
                }
            }
        }
    }
    // a dry run on a running system answers once; an init keeps trying
    let attempts = if host_dry_run { 1 } else { b.opts.boot_attempts };
    for attempt in 1..=attempts {
        b.attempt = attempt;
        match b.attempt() {
            Ok(()) => {
                info!("Dry run: verified the OS package and did not boot it");
                finish(true);
            }
            Err(f) if f.fatal => {
                f.report(&format!("attempt {attempt}/{attempts}"));
                error!("measurements were made for a kernel that did not start: rebooting to reset the PCRs");
                finish(false);
            }
            Err(f) => {
                f.report(&format!("attempt {attempt}/{attempts}"));
                // a failed fetch step lists its URLs, each recorded already
                let why = if f.step == Step::Fetch { "every URL failed".to_string() } else { format!("{:#}", f.error) };
                b.failed.borrow_mut().push(format!("attempt {attempt} failed at step {}: {why}", f.step));
                if !f.step.retry_can_help() {
                    error!("a {} error is the same on every attempt: not trying again", f.step);
                    break;
                }
            }
        }
        if attempt < attempts {
            let wait = recovery::backoff(attempt);
            info!("retrying the whole boot in {} s", wait.as_secs());
            std::thread::sleep(wait);
        }
    }
    error!("giving up after {} boot attempt{}", b.attempt, if b.attempt == 1 { "" } else { "s" });
    if let Some(p) = &provision {
        warn!("falling back to the provisioning package {} instead of rebooting", p.descriptor.display());
        match b.provision(p, &format!("all {attempts} boot attempts failed")) {
            Ok(()) => finish(true),
            Err(f) => f.report("provisioning package"),
        }
    }
    finish(false);
}

/// End the process: an init never exits (a dry run idles, a failure reboots).
fn finish(pid1: bool, ok: bool) -> ! {
    if !pid1 {
        std::process::exit(if ok { 0 } else { 1 });
    }
    if ok {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    recovery::reboot()
}

impl Boot {
    /// One whole boot attempt. Returns only on failure (or after a dry run).
    fn attempt(&mut self) -> Result<(), Failure> {
        let mut tl = Timeline::default();
        let (trust, host, source) = tl.step("config", load_config).map_err(|e| Failure::new(Step::Config, e))?;
        self.source = source.to_string();
        let provisioning = host.ospkg_pointer == config::host_config::PROVISION_POINTER;
        let method = if provisioning { FetchMethod::Initramfs } else { trust.policy.ospkg_fetch_method };
        if provisioning {
            warn!("PROVISION MODE: no host configuration; booting /ospkg/provision.{{json,zip}} from the initramfs");
        }
        log_config(&trust, &source, method);

        match method {
            FetchMethod::Initramfs => {
                let paths = ospkg::initramfs_paths(&host.pointer()).map_err(|e| Failure::new(Step::Config, e))?;
                info!("Loading OS package from initramfs: {}", paths.archive.display());
                let pkg = Unverified::from_files(&paths).map_err(|e| Failure::new(Step::Verify, e))?;
                self.boot_package(pkg, &trust, &mut tl)
            }
            FetchMethod::Network => {
                self.network(&host, &mut tl)?;
                let (urls, bad) = fetch::pointer_urls(&host.pointer());
                for b in bad {
                    warn!("ospkg_pointer: {b}; skipped");
                }
                if urls.is_empty() {
                    return Err(Failure::new(Step::Config, anyhow!("ospkg_pointer has no usable http(s) URL")));
                }
                let fetch::Budget { bytes: max_archive, why: max_archive_why } = fetch::archive_budget(&self.stage_dir);
                info!("package size: {max_archive_why}");
                let settings = fetch::Settings {
                    stall_timeout: self.opts.stall_timeout,
                    retry: fetch::RetryPolicy::default(),
                    deadline: Instant::now() + self.opts.deadline,
                    max_archive,
                    max_archive_why,
                };
                let fetcher = Fetcher::new(&trust.tls_roots, settings, &self.stage_dir)
                    .map_err(|e| Failure::new(Step::Fetch, e))?
                    .with_identities(trust.decryption_identities.clone());
                let mut failures = Vec::new();
                for (i, url) in urls.iter().enumerate() {
                    let n = format!("URL {} of {}", i + 1, urls.len());
                    if fetcher.deadline_passed() {
                        failures.push(format!("{n}: not tried, stboot.deadline passed"));
                        continue;
                    }
                    let t = Instant::now();
                    let fetched = tl.step("fetch", || fetcher.fetch(url, i));
                    let result = match fetched {
                        Ok(pkg) => self.boot_package(pkg, &trust, &mut tl),
                        Err(e) => Err(Failure::new(Step::Fetch, e)),
                    };
                    match result {
                        Ok(()) => return Ok(()),
                        Err(f) if f.fatal => return Err(f),
                        Err(f) => {
                            let secs = t.elapsed().as_secs_f64();
                            warn!("{n} failed after {secs:.1} s at step {}: {:#}", f.step, f.error);
                            warn!("what to do: {}", f.remedy());
                            failures.push(format!("{n} ({secs:.1} s): {:#}", f.error));
                            self.failed.borrow_mut().push(format!(
                                "attempt {}: {n} ({}, {secs:.1} s): {:#}",
                                self.attempt,
                                fetch::redact(url),
                                f.error
                            ));
                        }
                    }
                }
                Err(Failure::new(
                    Step::Fetch,
                    anyhow!("no provisioning URL gave a bootable OS package:\n  {}", failures.join("\n  ")),
                ))
            }
        }
    }

    /// Offer Ctrl-C on the console for `stboot.provision_wait` seconds; true if it came.
    fn ctrl_c_for_provisioning(&self, p: &PackagePaths) -> bool {
        let wait = self.opts.provision_wait;
        if wait.is_zero() {
            info!("provisioning package {} present; Ctrl-C is off (stboot.provision_wait=0)", p.descriptor.display());
            return false;
        }
        let stdin = std::io::stdin();
        // raw input first, then the prompt: a Ctrl-C typed right after it must count
        let raw = match provision::RawInput::enter(&stdin) {
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
        let got = provision::wait_for_byte(&stdin, wait, provision::CTRL_C);
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

    /// Verify and boot the provisioning package from the initramfs, under the trust
    /// policy of this initramfs like any other package.
    fn provision(&mut self, p: &PackagePaths, why: &str) -> Result<(), Failure> {
        self.source = format!("provisioning package ({why})");
        let mut tl = Timeline::default();
        let trust = tl.step("config", load_trust).map_err(|e| Failure::new(Step::Config, e))?;
        info!("Loading the provisioning package from initramfs: {}", p.archive.display());
        let pkg = Unverified::from_files(p).map_err(|e| Failure::new(Step::Verify, e))?;
        self.boot_package(pkg, &trust, &mut tl)
    }

    fn network(&mut self, host: &HostConfig, tl: &mut Timeline) -> Result<(), Failure> {
        if self.network_up || self.mode == (Mode::HostDryRun { configure_network: false }) {
            return Ok(());
        }
        let timeout = self.opts.dhcp_timeout;
        let net =
            tl.step("network", || network::configure(host, timeout)).map_err(|e| Failure::new(Step::Network, e))?;
        info!(
            "network: {} address {} gateway {} dns [{}]{}",
            net.interface,
            net.address,
            net.gateway.map(|g| g.to_string()).unwrap_or_else(|| "none".into()),
            net.dns.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
            net.lease_time.map(|t| format!(" lease {t} s")).unwrap_or_default()
        );
        self.network_up = true;
        Ok(())
    }

    /// Verify, stage, load, measure and jump. A failure before the measurement can
    /// be followed by another package; one after it cannot (`fatal`).
    fn boot_package(&self, pkg: Unverified, trust: &TrustConfig, tl: &mut Timeline) -> Result<(), Failure> {
        let pkg = tl.step("verify", || verify_logged(pkg, trust))?;
        info!("OS package {} ({} bytes)", pkg.origin(), pkg.archive_len());
        let m = pkg.manifest();
        info!(
            "booting {:?}: kernel {}, initramfs {}, cmdline {:?}",
            verify::printable(&m.label),
            verify::printable(&m.kernel),
            verify::printable(&m.initramfs),
            m.cmdline
        );
        let budget = fetch::archive_budget(&self.stage_dir);
        // staging consumes the package: what is left of the archive is gone after it
        let (staged, pkg) = tl
            .step("stage", || boot::stage(pkg, &self.stage_dir, &budget))
            .map_err(|e| Failure::new(Step::Stage, e))?;
        let mut measurements = stboot::measure::for_package(&pkg, trust);
        if self.mode.dry_run() {
            // no TPM in a dry run: the UX identity is shown as empty
            measurements.push(stboot::measure::identity_measurement(&trust.policy.pcrs(), b""));
            for m in &measurements {
                info!("dry run: would measure {} into PCR {}: {}", m.what, m.pcr, stboot::measure::hex(&m.digest));
            }
            info!("{}", tl.summary(self.started.elapsed()));
            return Ok(());
        }
        // the identity comes from the TPM; the PCRs after measuring are known before
        // anything is extended: the OS gets them with the event log
        let mut tpm = measure::Session::open();
        measurements.push(measure::identity_measurement(&trust.policy.pcrs(), &tpm.identity));
        let predicted = tpm.read(&measure::touched(&measurements)).map(|before| measure::after(&before, &measurements));
        if self.opts.handoff {
            self.hand_off(&pkg, trust, &tpm.identity, &measurements, predicted.as_ref(), &staged, tl);
        } else {
            info!("handoff: off (stboot.handoff=0): the OS gets no event log and no boot report");
        }
        let loaded = tl.step("kexec_load", || boot::load(staged)).map_err(|e| Failure::new(Step::Kexec, e))?;
        // measured only now that the kernel has accepted the image: a package that
        // fails before this point leaves no trace in the PCRs
        let after = tl.step("measure", || tpm.extend(&measurements));
        if let (Some(p), Some(a)) = (&predicted, &after) {
            if p != a {
                warn!("the PCRs after measuring differ from the values in the boot report: another writer extended them meanwhile");
            }
        }
        info!("{}", tl.summary(self.started.elapsed()));
        info!("Handing over control - kexec");
        Err(Failure { step: Step::Kexec, error: boot::execute(loaded), fatal: true })
    }
}

impl Boot {
    /// Append the event logs and the boot report to the staged OS initramfs. A
    /// failure is a warning: the boot goes on without them.
    #[allow(clippy::too_many_arguments)]
    fn hand_off(
        &self,
        pkg: &PackageFacts,
        trust: &TrustConfig,
        identity: &[u8],
        ms: &[measure::Measurement],
        pcrs: Option<&std::collections::BTreeMap<u32, [u8; 32]>>,
        staged: &boot::Staged,
        tl: &Timeline,
    ) {
        let firmware = std::fs::read(handoff::FIRMWARE_EVENTLOG_SOURCE).ok().filter(|b| !b.is_empty());
        let m = pkg.manifest();
        let report = handoff::Report {
            stboot_version: stboot::VERSION.to_string(),
            host_config_source: self.source.clone(),
            ospkg: handoff::Ospkg {
                origin: pkg.origin().to_string(),
                label: m.label.clone(),
                archive_sha256: measure::hex(pkg.archive_sha256()),
                archive_bytes: pkg.archive_len(),
                descriptor_sha256: measure::hex(&verify::digest(pkg.descriptor_bytes())),
                cmdline: m.cmdline.clone(),
            },
            failed: self.failed.borrow().clone(),
            signatures: pkg.report().lines(usize::MAX),
            signature_threshold: trust.policy.ospkg_signature_threshold,
            trust_policy_sha256: measure::hex(&verify::digest(stboot::gojson::marshal(&trust.policy).as_bytes())),
            identity: String::from_utf8_lossy(identity).into_owned(),
            pcrs: pcrs.into_iter().flatten().map(|(p, v)| (p.to_string(), measure::hex(v))).collect(),
            steps: tl.0.iter().map(|(n, d)| handoff::StepTime { step: n.to_string(), ms: d.as_millis() }).collect(),
            since_start_ms: self.started.elapsed().as_millis(),
            eventlog: handoff::EVENTLOG.into(),
            firmware_eventlog: firmware.as_ref().map(|_| handoff::FIRMWARE_EVENTLOG.into()),
        };
        let log = measure::eventlog::write(ms);
        let appended = handoff::archive(&log, firmware.as_deref(), &report)
            .and_then(|c| staged.append_to_initramfs(&c).map(|()| c.len()));
        match appended {
            Ok(n) => info!(
                "handoff: {n} bytes appended to the OS initramfs: {} ({} events), {}{}",
                handoff::EVENTLOG,
                ms.len(),
                handoff::REPORT,
                if firmware.is_some() { format!(", {}", handoff::FIRMWARE_EVENTLOG) } else { String::new() }
            ),
            Err(e) => warn!("handoff failed, the OS gets no event log or boot report: {e:#}"),
        }
    }
}

/// Verify and log the verdicts, at most a few lines per kind.
fn verify_logged(pkg: Unverified, trust: &TrustConfig) -> Result<VerifiedOsPackage, Failure> {
    let threshold = Threshold::AtLeast(trust.policy.ospkg_signature_threshold);
    let (now, _) = verify::effective_now();
    let t = Instant::now();
    let r = verify::verify_package(pkg, trust.anchors(), threshold, now);
    let report = match &r {
        Ok(p) => Some(p.report()),
        Err(rej) => rej.report.as_ref(),
    };
    for line in report.map(|r| r.lines(REPORT_LINES_PER_KIND)).unwrap_or_default() {
        info!("{line}");
    }
    info!("verification took {} ms", t.elapsed().as_millis());
    match r {
        Ok(p) => {
            info!("OS package passed verification");
            Ok(p)
        }
        Err(rej) => Err(Failure::new(Step::Verify, anyhow::Error::new(rej))),
    }
}

fn log_config(trust: &TrustConfig, source: &HostConfigSource, method: FetchMethod) {
    info!("host configuration from {source}");
    info!("trust policy: threshold {}, fetch method {:?}", trust.policy.ospkg_signature_threshold, method);
    if let Some(p) = trust.policy.measurement_pcrs {
        info!(
            "measurement PCRs from trust_policy.json: detail {}, authority {}, identity {} (upstream: 12, 13, 14)",
            p.detail, p.authority, p.identity
        );
    }
    if let Some(p) = &trust.sigsum_policy {
        info!("Sigsum policy: {} log(s); Sigsum proofs can count toward the threshold", p.policy.logs().count());
    }
    if let Some(ids) = &trust.decryption_identities {
        info!(
            "decryption identities: {} ({}); age-encrypted packages are decrypted after download",
            ids.len(),
            ids.recipients().join(", ")
        );
    }
    for r in &trust.signing_roots {
        info!("signing root: {}", verify::describe_certificate(r));
    }
    match &trust.tls_roots_path {
        Some(p) => {
            for r in &trust.tls_roots {
                info!("TLS root ({}): {}", p.display(), verify::describe_certificate(r));
            }
        }
        None => info!("no TLS roots: only http:// URLs can be fetched"),
    }
}

fn load_trust() -> Result<TrustConfig> {
    TrustConfig::load(Path::new(config::TRUST_POLICY_DIR), Some(Path::new(config::trust_policy::LEGACY_TLS_ROOTS)))
}

fn load_config() -> Result<(TrustConfig, HostConfig, HostConfigSource)> {
    let trust = load_trust()?;
    let (host, source, bytes) =
        config::load_host_config_bytes(Path::new(config::HOST_CONFIG_PATH), Path::new(config::HOST_CONFIG_EFIVAR))?;
    for w in config::host_config::unknown_keys(&bytes) {
        warn!("{w} in {source}: ignored, as upstream does");
    }
    Ok((trust, host, source))
}
