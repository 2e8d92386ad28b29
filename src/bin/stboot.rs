//! stboot: PID 1 of the LinuxBoot initramfs. Reads its configuration, brings up the
//! network, fetches and verifies an OS package, and kexecs into it; on failure it
//! says why, retries, and finally reboots. The steps live in the library, one module
//! per step; this file only orders them and keeps the timeline.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use stboot::config::{self, FetchMethod, HostConfig, HostConfigSource, Options, TrustConfig};
use stboot::fetch::{self, Fetcher};
use stboot::recovery::{self, Failure, Step};
use stboot::verify::{self, Threshold};
use stboot::{boot, init, network, ospkg};
use tracing::{error, info, warn};

/// Timestamps like the kernel's: seconds since boot, so console lines line up with dmesg.
struct Uptime;

impl tracing_subscriber::fmt::time::FormatTime for Uptime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        let t =
            nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).unwrap_or(nix::sys::time::TimeSpec::new(0, 0));
        write!(w, "[{:5}.{:06}] stboot:", t.tv_sec(), t.tv_nsec() / 1000)
    }
}

fn setup_logging(level: &str) {
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

struct Boot {
    opts: Options,
    started: Instant,
    network_up: bool,
}

fn main() {
    let started = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-version") {
        println!("stboot-rs {}", stboot::VERSION);
        return;
    }
    let pid1 = std::process::id() == 1;
    let mounts = if pid1 {
        let m = init::mount_filesystems();
        init::attach_console();
        init::reap_children();
        m
    } else {
        Vec::new()
    };
    let opts = Options::from_boot(&init::kernel_cmdline(), &args);
    setup_logging(&opts.log_level);
    std::panic::set_hook(Box::new(|p| error!("BUG: stboot panicked: {p}")));
    info!("stboot-rs {} starting (PID {})", stboot::VERSION, std::process::id());
    for m in mounts {
        info!("mounted {m}");
    }
    for w in &opts.warnings {
        warn!("kernel command line: {w}");
    }
    for (name, r) in
        init::load_modules(Path::new("/lib/modules"), Path::new("/lib/modules-load.d"), opts.modules.as_deref())
    {
        match r {
            Ok(d) => info!("module {name} loaded ({} ms)", d.as_millis()),
            Err(e) => warn!("module {name} failed: {e:#}"),
        }
    }
    if let Some(m) = init::mount_efivarfs() {
        info!("mounted {m}");
    }
    let waited = init::wait_for_entropy();
    if !waited.is_zero() {
        info!("random pool ready after waiting {} ms", waited.as_millis());
    }
    let (_, behind) = verify::effective_now();
    if behind {
        warn!("the system clock is before this build's date; certificates are checked at the build date instead");
    }

    let mut b = Boot { opts, started, network_up: false };
    let attempts = b.opts.boot_attempts;
    for attempt in 1..=attempts {
        // panic = "abort": a panic is reported by the hook above and ends PID 1, so
        // there is nothing to catch here
        match b.attempt() {
            Err(f) => f.report(attempt, attempts),
            Ok(()) => {
                // dry run: verified, not booted; an init must not exit
                info!("Dry run: verified the OS package and did not boot it");
                if !pid1 {
                    return;
                }
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
        }
        if attempt < attempts {
            let wait = recovery::backoff(attempt);
            info!("retrying the whole boot in {} s", wait.as_secs());
            std::thread::sleep(wait);
        }
    }
    error!("giving up after {attempts} boot attempts");
    if pid1 {
        recovery::reboot();
    }
    std::process::exit(1);
}

fn fail(step: Step) -> impl FnOnce(anyhow::Error) -> Failure {
    move |error| Failure { step, error }
}

impl Boot {
    /// One whole boot attempt. Returns only on failure (or in a dry run).
    fn attempt(&mut self) -> std::result::Result<(), Failure> {
        let mut tl = Timeline::default();
        let (trust, host, source) = tl.step("config", load_config).map_err(fail(Step::Config))?;
        let provisioning = host.ospkg_pointer == config::host_config::PROVISION_POINTER;
        let method = if provisioning { FetchMethod::Initramfs } else { trust.policy.ospkg_fetch_method };
        if provisioning {
            warn!("PROVISION MODE: no host configuration; booting /ospkg/provision.{{json,zip}} from the initramfs");
        }
        info!("host configuration from {source}");
        info!("trust policy: threshold {}, fetch method {:?}", trust.policy.ospkg_signature_threshold, method);
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
        let threshold = Threshold::AtLeast(trust.policy.ospkg_signature_threshold);
        let stage_dir = init::staging_dir().map_err(fail(Step::Config))?;
        let budget = fetch::staging_budget();
        let check = |digest: &[u8; 32], d: &ospkg::Descriptor| -> Result<()> {
            let (now, _) = verify::effective_now();
            let report = verify::verify(d, digest, &trust.signing_roots, threshold, now)?;
            for c in &report.checks {
                info!("signature {} ({}): {}", c.index, c.signer.as_deref().unwrap_or("?"), c.verdict);
            }
            info!("{}", report.summary());
            if !report.accepted() {
                bail!("not enough valid signatures: {}", report.summary());
            }
            info!("OS package passed verification");
            Ok(())
        };

        let (archive_path, archive_sha256, descriptor_bytes) = match method {
            FetchMethod::Network => {
                if !self.network_up {
                    let cfg = host.clone();
                    let timeout = self.opts.dhcp_timeout;
                    let net = tl.step("network", || network::configure(&cfg, timeout)).map_err(fail(Step::Network))?;
                    info!(
                        "network: {} address {} gateway {} dns [{}]{}",
                        net.interface,
                        net.address,
                        net.gateway.map(|g| g.to_string()).unwrap_or_else(|| "none".into()),
                        net.dns.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
                        net.lease_time.map(|t| format!(" lease {t} s")).unwrap_or_default()
                    );
                    self.network_up = true;
                }
                let (urls, bad) = fetch::pointer_urls(&host.pointer());
                for b in bad {
                    warn!("ospkg_pointer: {b}; skipped");
                }
                if urls.is_empty() {
                    return Err(fail(Step::Config)(anyhow!("ospkg_pointer has no usable http(s) URL")));
                }
                let deadline = Instant::now() + self.opts.deadline;
                let fetcher = Fetcher::new(&trust.tls_roots, deadline, stage_dir, budget).map_err(fail(Step::Fetch))?;
                let mut verify_time = Duration::ZERO;
                let (fetched, ()) = tl
                    .step("fetch+verify", || {
                        fetcher.first_good(&urls, |f| {
                            let t = Instant::now();
                            let r = check(&f.archive_sha256, &f.descriptor);
                            verify_time += t.elapsed();
                            if r.is_err() {
                                let _ = std::fs::remove_file(&f.archive_path);
                            }
                            r
                        })
                    })
                    .map_err(fail(Step::Fetch))?;
                info!("verification took {} ms", verify_time.as_millis());
                info!(
                    "OS package {} ({} bytes) from {}",
                    fetched.archive_url,
                    fetched.archive_len,
                    fetch::redact(&fetched.descriptor_url)
                );
                (fetched.archive_path, fetched.archive_sha256, fetched.descriptor_bytes)
            }
            FetchMethod::Initramfs => {
                let paths = ospkg::initramfs_paths(&host.pointer()).map_err(fail(Step::Config))?;
                let (desc_path, zip_path) = (paths.descriptor, paths.archive);
                info!("Loading OS package from initramfs: {}", zip_path.display());
                let (digest, desc_bytes) = tl
                    .step("verify", || -> Result<([u8; 32], Vec<u8>)> {
                        let (d, bytes) = ospkg::read_descriptor(&desc_path)?;
                        let digest = verify::digest_file(&zip_path)?;
                        check(&digest, &d)?;
                        Ok((digest, bytes))
                    })
                    .map_err(fail(Step::Verify))?;
                (zip_path, digest, desc_bytes)
            }
        };

        let (staged, manifest) =
            tl.step("stage", || boot::stage(&archive_path, stage_dir, budget)).map_err(fail(Step::Stage))?;
        if method == FetchMethod::Network {
            let _ = std::fs::remove_file(&archive_path); // free the tmpfs memory
        }
        info!(
            "booting {:?}: kernel {}, initramfs {}, cmdline {:?}",
            manifest.label, manifest.kernel, manifest.initramfs, staged.cmdline
        );
        tl.step("measure", || measure(&archive_sha256, &descriptor_bytes, &trust));
        if self.opts.dry_run {
            info!("{}", tl.summary(self.started.elapsed()));
            return Ok(());
        }
        tl.step("kexec_load", || boot::load(&staged)).map_err(fail(Step::Kexec))?;
        info!("{}", tl.summary(self.started.elapsed()));
        info!("Handing over control - kexec");
        Err(fail(Step::Kexec)(boot::execute()))
    }
}

/// Extend the TPM's PCRs with what is about to boot. A missing or failing TPM is
/// reported, and the boot goes on (as upstream: the measurements are for attestation,
/// the signatures are what gate the boot).
fn measure(archive_sha256: &[u8; 32], descriptor: &[u8], trust: &TrustConfig) {
    let policy = stboot::gojson::marshal(&trust.policy);
    let ms =
        stboot::measure::measurements(archive_sha256, descriptor, &policy, &trust.signing_roots, &trust.tls_roots, "");
    let mut tpm = match stboot::measure::Tpm::open() {
        Ok(Some(t)) => t,
        Ok(None) => {
            warn!("no TPM found: measurements skipped");
            return;
        }
        Err(e) => {
            warn!("TPM unusable, measurements skipped: {e:#}");
            return;
        }
    };
    for m in &ms {
        let hex = stboot::measure::hex(&m.digest);
        match tpm.extend(m.pcr, &m.extend_value()) {
            Ok(()) => info!("measured {} into PCR {}: {hex}", m.what, m.pcr),
            Err(e) => warn!("measuring {} into PCR {} failed: {e:#}", m.what, m.pcr),
        }
    }
    for pcr in [12, 13, 14] {
        if let Ok(v) = tpm.read_pcr(pcr) {
            info!("PCR {pcr} = {}", stboot::measure::hex(&v));
        }
    }
}

fn load_config() -> Result<(TrustConfig, HostConfig, HostConfigSource)> {
    let trust = TrustConfig::load(
        Path::new(config::TRUST_POLICY_DIR),
        Some(Path::new(config::trust_policy::LEGACY_TLS_ROOTS)),
    )?;
    let (host, source) =
        config::load_host_config(Path::new(config::HOST_CONFIG_PATH), Path::new(config::HOST_CONFIG_EFIVAR))?;
    Ok((trust, host, source))
}
