//! stboot: PID 1 of the LinuxBoot initramfs. Reads its configuration, brings up the
//! network, fetches and verifies an OS package, and kexecs into it; on failure it
//! says why, tries the next URL, retries, and finally reboots. Every step lives in
//! the library; this file is the order of the steps.
//!
//! Outside PID 1 it runs nothing but a dry run (`-dryrun`, `--dry-run`): fetch and
//! verify, no modules, no kexec, no TPM, and the host's network untouched unless
//! `--configure-network` is given.

use std::time::Instant;

use stboot::config::{self, FetchMethod, TrustConfig};
use stboot::handoff::{self, History};
use stboot::ospkg::{self, package::Unverified, PackagePaths};
use stboot::recovery::{self, At, Failure, Step, Timeline};
use stboot::{boot, fetch, init::Run, measure, network, provision, tpm, verify};
use tracing::{error, info, warn};

fn main() {
    let run = stboot::init::start(std::env::args().skip(1).collect()).unwrap_or_else(|e| e.exit());
    let mut b = Boot { run, network_up: false, history: History::default() };
    let provision = provision::in_initramfs(b.run.pid1);
    if let Some(p) = provision.as_ref().filter(|p| provision::ctrl_c_requested(p, b.run.opts.provision_wait)) {
        b.provision(p, "Ctrl-C on the console");
        warn!("the provisioning package did not boot: going on with the normal boot");
    }
    let tried = recovery::attempts(b.run.boot_attempts(), |n, attempt| {
        b.history.begin_attempt(n);
        let Err(f) = b.attempt() else { b.run.finish(true) };
        b.run.report(&f, attempt);
        b.history.attempt_failed(&f);
        f
    });
    error!("giving up after {tried} boot attempt{}", if tried == 1 { "" } else { "s" });
    if let Some(p) = &provision {
        warn!("falling back to the provisioning package {} instead of rebooting", p.descriptor.display());
        b.provision(p, &format!("all {tried} boot attempts failed"));
    }
    b.run.finish(false);
}

/// One boot across its attempts: whether the network is up, what failed so far.
struct Boot {
    run: Run,
    network_up: bool,
    history: History,
}

impl Boot {
    /// One whole boot attempt. Returns only on failure (or after a dry run).
    fn attempt(&mut self) -> Result<(), Failure> {
        let mut tl = Timeline::default();
        let (trust, host, source) = tl.try_step(Step::Config, || config::load(&self.run.sources))?;
        self.history.source = source.to_string();
        if config::fetch_method(&trust, &host, &source) == FetchMethod::Initramfs {
            let paths = ospkg::initramfs_paths(&host.pointer()).at(Step::Config)?;
            return self.boot_files("OS package", &paths, &trust, &mut tl);
        }
        let urls = fetch::usable_urls(&host.pointer()).at(Step::Config)?;
        if !self.network_up && self.run.configures_network() {
            info!(
                "{}",
                tl.try_step(Step::Network, || network::configure(&host, self.run.opts.dhcp_timeout, &self.run.woken))?
            );
            self.network_up = true;
        }
        let fetcher = fetch::Fetcher::for_boot(&trust, &host, &self.run.opts, &self.run.stage_dir).at(Step::Fetch)?;
        for (i, url) in urls.iter().enumerate() {
            if fetcher.deadline_passed() {
                self.history.url_not_tried(i, urls.len(), "stboot.deadline passed");
                continue;
            }
            let t = Instant::now();
            let pkg = tl.try_step(Step::Fetch, || fetcher.fetch(url, i));
            match pkg.and_then(|pkg| self.boot_package(pkg, &trust, &mut tl)) {
                Err(f) if !f.fatal => self.history.url_failed(i, urls.len(), url, &f, t.elapsed()),
                done => return done,
            }
        }
        Err(self.history.no_good_package())
    }

    /// Verify and boot the provisioning package from the initramfs, under the trust
    /// policy of this initramfs like any other package. Returns if it did not boot.
    fn provision(&mut self, p: &PackagePaths, why: &str) {
        self.history.source = format!("provisioning package ({why})");
        let mut tl = Timeline::default();
        let trust = tl.try_step(Step::Config, || config::load_trust(&self.run.sources));
        let Err(f) = trust.and_then(|t| self.boot_files("the provisioning package", p, &t, &mut tl)) else {
            self.run.finish(true)
        };
        self.run.report(&f, "provisioning package");
    }

    /// Boot the package in the initramfs files `p`.
    fn boot_files(&self, what: &str, p: &PackagePaths, trust: &TrustConfig, tl: &mut Timeline) -> Result<(), Failure> {
        info!("Loading {what} from initramfs: {}", p.archive.display());
        self.boot_package(Unverified::from_files(p).at(Step::Verify)?, trust, tl)
    }

    /// Verify, stage, load, measure and jump. A failure before the measurement can
    /// be followed by another package; one after it cannot (`fatal`).
    fn boot_package(&self, pkg: Unverified, trust: &TrustConfig, tl: &mut Timeline) -> Result<(), Failure> {
        let dry_run = self.run.mode.dry_run();
        let (pkg, tpm_floor) = tl.try_step(Step::Verify, || {
            let tpm_floor = tpm::floor::for_boot(trust.policy.tpm_floor(), dry_run)?;
            anyhow::Ok((verify::verify_logged(pkg, trust, tpm_floor)?, tpm_floor))
        })?;
        // staging consumes the package: what is left of the archive is gone after it
        let budget = fetch::archive_budget(&self.run.stage_dir);
        let (staged, pkg) = tl.try_step(Step::Stage, || boot::stage(pkg, &self.run.stage_dir, &budget))?;
        if dry_run {
            measure::Plan::show_dry_run(&pkg, trust, staged.uki());
            info!("{}", tl.summary(self.run.started.elapsed()));
            return Ok(());
        }
        let plan = measure::Plan::new(&pkg, trust, tpm_floor, staged.uki());
        let boot = self.history.for_report(trust, &plan, tl.steps(), self.run.started.elapsed());
        handoff::attach(self.run.opts.handoff, &staged, &pkg, &plan.measurements, &boot);
        let loaded = tl.try_step(Step::Load, || boot::load(staged))?;
        // measured only now that the kernel has accepted the image: a package that
        // fails before this point leaves no trace in the PCRs
        tl.step(Step::Measure, || plan.extend());
        info!("{}", tl.summary(self.run.started.elapsed()));
        Err(Failure { step: Step::Kexec, error: boot::execute(loaded), fatal: true })
    }
}
