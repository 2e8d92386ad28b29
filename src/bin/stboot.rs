//! stboot: PID 1 of the LinuxBoot initramfs. Reads its configuration, brings up the
//! network, fetches and verifies an OS package, and kexecs into it; on failure it
//! says why, tries the next URL, retries, and finally reboots. Every step lives in
//! the library; this file is the order of the steps.
//!
//! Outside PID 1 it runs nothing but a dry run (`-dryrun`, `--dry-run`): fetch and
//! verify, no modules, no kexec, no TPM, and the host's network untouched unless
//! `--configure-network` is given.

use std::time::Instant;

use anyhow::anyhow;
use stboot::config::{self, FetchMethod, HostConfig, TrustConfig};
use stboot::init::{Mode, Run};
use stboot::ospkg::{package::Unverified, PackagePaths};
use stboot::recovery::{self, Failure, Step, Timeline};
use stboot::verify::{self, Threshold};
use stboot::{boot, fetch, handoff, measure, network, ospkg, provision};
use tracing::{error, info, warn};

fn main() {
    let run = stboot::init::start(std::env::args().skip(1).collect()).unwrap_or_else(|e| e.exit());
    let mut b =
        Boot { run, network_up: false, source: String::new(), failed: Vec::new(), attempt_started: Instant::now() };
    // the provisioning package, if the initramfs has one (never outside PID 1)
    let provision = if b.run.pid1 { provision::package(std::path::Path::new(config::paths::OSPKG_DIR)) } else { None };
    if let Some(p) = provision.as_ref().filter(|p| provision::ctrl_c_requested(p, b.run.opts.provision_wait)) {
        let f = match b.provision(p, "Ctrl-C on the console") {
            Ok(()) => b.run.finish(true),
            Err(f) => f,
        };
        f.report("provisioning package");
        if f.fatal {
            b.run.finish(false);
        }
        warn!("the provisioning package did not boot: going on with the normal boot");
    }
    // a dry run on a running system answers once; an init keeps trying
    let attempts = if matches!(b.run.mode, Mode::HostDryRun { .. }) { 1 } else { b.run.opts.boot_attempts };
    let mut tried = 0;
    for attempt in 1..=attempts {
        tried = attempt;
        let f = match b.attempt(attempt) {
            Ok(()) => {
                info!("Dry run: verified the OS package and did not boot it");
                b.run.finish(true)
            }
            Err(f) => f,
        };
        f.report(&format!("attempt {attempt}/{attempts}"));
        if f.fatal {
            error!("measurements were made for a kernel that did not start: rebooting to reset the PCRs");
            b.run.finish(false);
        }
        // a failed fetch step lists its URLs, each recorded already
        if f.step != Step::Fetch {
            b.failed.push(handoff::FailureRecord::new(attempt, None, &f, b.attempt_started.elapsed().as_secs_f64()));
        }
        if !f.step.retry_can_help() {
            error!("a {} error is the same on every attempt: not trying again", f.step);
            break;
        }
        if attempt < attempts {
            let wait = recovery::backoff(attempt);
            info!("retrying the whole boot in {} s", wait.as_secs());
            std::thread::sleep(wait);
        }
    }
    error!("giving up after {tried} boot attempt{}", if tried == 1 { "" } else { "s" });
    if let Some(p) = &provision {
        warn!("falling back to the provisioning package {} instead of rebooting", p.descriptor.display());
        match b.provision(p, &format!("all {tried} boot attempts failed")) {
            Ok(()) => b.run.finish(true),
            Err(f) => f.report("provisioning package"),
        }
    }
    b.run.finish(false);
}

/// One boot's state across its attempts, for the console and the boot report.
struct Boot {
    run: Run,
    network_up: bool,
    /// Where the host configuration came from, for the boot report.
    source: String,
    /// What failed before the package that boots (URLs, attempts), for the report.
    failed: Vec<handoff::FailureRecord>,
    /// When the attempt under way began.
    attempt_started: Instant,
}

impl Boot {
    /// One whole boot attempt. Returns only on failure (or after a dry run).
    fn attempt(&mut self, attempt: u32) -> Result<(), Failure> {
        self.attempt_started = Instant::now();
        let mut tl = Timeline::default();
        let (trust, host, source) = tl.step(Step::Config, config::load).map_err(|e| Failure::new(Step::Config, e))?;
        self.source = source.to_string();
        let provisioning = host.ospkg_pointer == config::host_config::PROVISION_POINTER;
        let method = if provisioning { FetchMethod::Initramfs } else { trust.policy.ospkg_fetch_method };
        if provisioning {
            warn!("PROVISION MODE: no host configuration; booting /ospkg/provision.{{json,zip}} from the initramfs");
        }
        config::log_summary(&trust, &source, method);
        if method == FetchMethod::Initramfs {
            let paths = ospkg::initramfs_paths(&host.pointer()).map_err(|e| Failure::new(Step::Config, e))?;
            info!("Loading OS package from initramfs: {}", paths.archive.display());
            let pkg = Unverified::from_files(&paths).map_err(|e| Failure::new(Step::Verify, e))?;
            return self.boot_package(pkg, &trust, &mut tl);
        }
        // checked before the network step: without a usable URL it would be for nothing
        let (urls, bad) = fetch::pointer_urls(&host.pointer());
        for b in bad {
            warn!("ospkg_pointer: {b}; skipped");
        }
        if urls.is_empty() {
            return Err(Failure::new(Step::Config, anyhow!("ospkg_pointer has no usable http(s) URL")));
        }
        self.network(&host, &mut tl)?;
        let fetcher = fetch::Fetcher::for_boot(&trust, &self.run.opts, &self.run.stage_dir)
            .map_err(|e| Failure::new(Step::Fetch, e))?;
        let mut failures = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            let n = format!("URL {} of {}", i + 1, urls.len());
            if fetcher.deadline_passed() {
                failures.push(format!("{n}: not tried, stboot.deadline passed"));
                continue;
            }
            let t = Instant::now();
            let f = match tl.step(Step::Fetch, || fetcher.fetch(url, i)) {
                Ok(pkg) => match self.boot_package(pkg, &trust, &mut tl) {
                    Err(f) if !f.fatal => f,
                    done => return done,
                },
                Err(e) => Failure::new(Step::Fetch, e),
            };
            let secs = t.elapsed().as_secs_f64();
            warn!("{n} failed after {secs:.1} s at step {}: {:#}", f.step, f.error);
            warn!("what to do: {}", f.remedy());
            failures.push(format!("{n} ({secs:.1} s): {:#}", f.error));
            self.failed.push(handoff::FailureRecord::new(attempt, Some((i + 1, fetch::redact(url))), &f, secs));
        }
        let all = failures.join("\n  ");
        Err(Failure::new(Step::Fetch, anyhow!("no provisioning URL gave a bootable OS package:\n  {all}")))
    }

    /// Verify and boot the provisioning package from the initramfs, under the trust
    /// policy of this initramfs like any other package.
    fn provision(&mut self, p: &PackagePaths, why: &str) -> Result<(), Failure> {
        self.source = format!("provisioning package ({why})");
        let mut tl = Timeline::default();
        let trust = tl.step(Step::Config, config::load_trust).map_err(|e| Failure::new(Step::Config, e))?;
        info!("Loading the provisioning package from initramfs: {}", p.archive.display());
        let pkg = Unverified::from_files(p).map_err(|e| Failure::new(Step::Verify, e))?;
        self.boot_package(pkg, &trust, &mut tl)
    }

    fn network(&mut self, host: &HostConfig, tl: &mut Timeline) -> Result<(), Failure> {
        if self.network_up || self.run.mode == (Mode::HostDryRun { configure_network: false }) {
            return Ok(());
        }
        let timeout = self.run.opts.dhcp_timeout;
        let net =
            tl.step(Step::Network, || network::configure(host, timeout)).map_err(|e| Failure::new(Step::Network, e))?;
        info!("{net}");
        self.network_up = true;
        Ok(())
    }

    /// Verify, stage, load, measure and jump. A failure before the measurement can
    /// be followed by another package; one after it cannot (`fatal`).
    fn boot_package(&self, pkg: Unverified, trust: &TrustConfig, tl: &mut Timeline) -> Result<(), Failure> {
        let threshold = Threshold::AtLeast(trust.policy.ospkg_signature_threshold);
        let pkg = tl
            .step(Step::Verify, || verify::verify_logged(pkg, verify::Anchors::from(trust), threshold))
            .map_err(|rej| Failure::new(Step::Verify, anyhow::Error::new(rej)))?;
        info!("OS package {} ({} bytes)", pkg.origin(), pkg.archive_len());
        let m = pkg.manifest();
        let p = verify::printable;
        info!(
            "booting {:?}: kernel {}, initramfs {}, cmdline {:?}",
            p(&m.label),
            p(&m.kernel),
            p(&m.initramfs),
            m.cmdline
        );
        // staging consumes the package: what is left of the archive is gone after it
        let budget = fetch::archive_budget(&self.run.stage_dir);
        let (staged, pkg) = tl
            .step(Step::Stage, || boot::stage(pkg, &self.run.stage_dir, &budget))
            .map_err(|e| Failure::new(Step::Stage, e))?;
        let mut measurements = measure::for_package(&pkg, trust);
        if self.run.mode.dry_run() {
            // no TPM in a dry run: the UX identity is shown as empty
            measurements.push(measure::identity_measurement(&trust.policy.pcrs(), b""));
            for m in &measurements {
                info!("dry run: would measure {} into PCR {}: {}", m.what, m.pcr, measure::hex(&m.digest));
            }
            info!("{}", tl.summary(self.run.started.elapsed()));
            return Ok(());
        }
        // the identity comes from the TPM; the PCRs after measuring are known before
        // anything is extended: the OS gets them with the event log
        let mut tpm = measure::Session::open();
        measurements.push(measure::identity_measurement(&trust.policy.pcrs(), &tpm.identity));
        let predicted = tpm.read(&measure::touched(&measurements)).map(|before| measure::after(&before, &measurements));
        if self.run.opts.handoff {
            let since_start = self.run.started.elapsed();
            let (source, failed, identity, pcrs) = (&self.source, &self.failed, &tpm.identity, predicted.as_ref());
            let boot = handoff::Boot {
                host_config_source: source,
                failures: failed,
                trust,
                identity,
                pcrs,
                steps: tl.steps(),
                since_start,
            };
            handoff::attach(&staged, &pkg, &measurements, &boot);
        } else {
            info!("handoff: off (stboot.handoff=0): the OS gets no event log and no boot report");
        }
        let loaded = tl.step(Step::Load, || boot::load(staged)).map_err(|e| Failure::new(Step::Load, e))?;
        // measured only now that the kernel has accepted the image: a package that
        // fails before this point leaves no trace in the PCRs
        let after = tl.step(Step::Measure, || tpm.extend(&measurements));
        if predicted.is_some() && after.is_some() && predicted != after {
            warn!("the PCRs after measuring differ from the values in the boot report: another writer extended them meanwhile");
        }
        info!("{}", tl.summary(self.run.started.elapsed()));
        info!("Handing over control - kexec");
        Err(Failure { step: Step::Kexec, error: boot::execute(loaded), fatal: true })
    }
}
