//! What stboot hands to the OS it boots, without kernel patches: a small newc cpio
//! appended to the OS initramfs at kexec time. The kernel unpacks concatenated
//! archives in order, so these files appear in the OS's initial root:
//!
//! | path | content |
//! |---|---|
//! | [`EVENTLOG`] | stboot's TPM event log ([`crate::measure::eventlog`]) |
//! | [`FIRMWARE_EVENTLOG`] | the firmware's event log, when the kernel exposes one |
//! | [`REPORT`] | the boot report (JSON): what was booted, from where, why |
//! | [`DESCRIPTOR`] | the verified OS package descriptor, the bytes as received (their SHA-256 is the descriptor event in the detail PCR): its signatures, certificates and Sigsum proofs, for attestation evidence |
//!
//! The initramfs bytes that were verified are not changed: the kexec'd initramfs is
//! exactly the verified one, zero-padded to a multiple of 4 bytes, followed by this
//! archive. `stboot.handoff=0` turns it off.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

pub const DIR: &str = "/stboot";
pub const EVENTLOG: &str = "/stboot/eventlog.bin";
pub const FIRMWARE_EVENTLOG: &str = "/stboot/firmware-eventlog.bin";
pub const REPORT: &str = "/stboot/report.json";
pub const DESCRIPTOR: &str = "/stboot/descriptor.json";
/// Where systemd-stub puts a UKI's signed PCR policy and its key for systemd in the
/// initrd (systemd-cryptsetup, systemd-creds), and so does stboot for a UKI package.
pub const EXTRA_DIR: &str = "/.extra";
pub const PCR_SIGNATURE: &str = "/.extra/tpm2-pcr-signature.json";
pub const PCR_PUBLIC_KEY: &str = "/.extra/tpm2-pcr-public-key.pem";
/// Where the running kernel exposes the firmware's log (securityfs).
pub const FIRMWARE_EVENTLOG_SOURCE: &str = "/sys/kernel/security/tpm0/binary_bios_measurements";

/// The version of the boot report's format ([`Report::version`]). 1 was lines of
/// console text for failures and signatures; 2 has typed fields.
pub const REPORT_VERSION: u32 = 2;

/// The boot report: JSON in [`REPORT`], one object, documented field by field in
/// docs/formats.md ("The boot report").
#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    /// [`REPORT_VERSION`].
    pub version: u32,
    pub stboot_version: String,
    /// Where the host configuration came from (or why the provisioning package).
    pub host_config_source: String,
    /// The package that is booted.
    pub ospkg: Ospkg,
    /// The signatures that were checked, and the decision.
    pub signatures: Signatures,
    /// SHA-256 of the compact trust policy JSON (as measured).
    pub trust_policy_sha256: String,
    /// UX identity measured into the identity PCR.
    pub identity: String,
    /// PCR values after stboot's extends (SHA-256 bank), computed from the values
    /// before and the event log; empty without a TPM.
    pub pcrs: BTreeMap<String, String>,
    /// Every URL (and attempt) that failed before the package that boots.
    pub failures: Vec<FailureRecord>,
    /// Durations of stboot's steps in this attempt, in order.
    pub steps: Vec<StepTime>,
    /// Milliseconds since stboot started.
    pub since_start_ms: u128,
    pub eventlog: String,
    pub firmware_eventlog: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepTime {
    /// [`crate::recovery::Step::code`].
    pub step: String,
    pub ms: u128,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Ospkg {
    /// Where it came from: URLs (credentials removed) or files.
    pub origin: String,
    pub label: String,
    pub archive_sha256: String,
    pub archive_bytes: u64,
    pub descriptor_sha256: String,
    /// The manifest's kernel and initramfs entries.
    pub kernel: String,
    pub initramfs: String,
    pub cmdline: String,
    /// The manifest's `ospkg_version` (null: none).
    pub version: Option<u64>,
    /// The trust policy's floor, `ospkg_min_version` (0: none).
    pub min_version: u64,
    /// The TPM floor it was checked against (null: the trust policy does not ask
    /// for one, or the machine has none).
    pub tpm_floor: Option<u64>,
    /// The manifest's `uki` entry, for a UKI package (then kernel, initramfs and
    /// cmdline are empty, and PCR 11 holds its sections).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uki: Option<String>,
}

/// The signature checks of the package that boots.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Signatures {
    /// The trust policy's `ospkg_signature_threshold`.
    pub threshold: u32,
    pub found: usize,
    /// Distinct keys whose signature (or Sigsum proof) counted.
    pub valid: usize,
    pub checks: Vec<SignatureRecord>,
}

/// One signature entry of the descriptor and its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureRecord {
    pub index: usize,
    /// `signature` or `sigsum_proof`.
    pub form: String,
    /// The certificate's subject, when it could be read.
    pub signer: Option<String>,
    pub certificate_sha256: Option<String>,
    /// [`crate::verify::Verdict::code`].
    pub verdict: String,
    /// Why it did not count (`None` when valid).
    pub reason: Option<String>,
}

/// One failure before the package that boots: an attempt that failed before its
/// URLs, or one URL of an attempt.
#[derive(Debug, Clone, Serialize)]
pub struct FailureRecord {
    /// The whole-boot attempt, from 1.
    pub attempt: u32,
    /// The URL's place in `ospkg_pointer` (from 1), for a URL's failure.
    pub url_index: Option<usize>,
    /// The URL, credentials removed.
    pub url: Option<String>,
    /// [`crate::recovery::Step::code`] of the step that failed.
    pub step: String,
    /// [`crate::recovery::Failure::kind`].
    pub kind: String,
    pub message: String,
    pub seconds: f64,
}

impl FailureRecord {
    /// The record of `f` in `attempt`, at URL `url` (its index from 1) when there is one.
    pub fn new(attempt: u32, url: Option<(usize, String)>, f: &crate::recovery::Failure, seconds: f64) -> Self {
        let (url_index, url) = match url {
            Some((i, u)) => (Some(i), Some(u)),
            None => (None, None),
        };
        Self {
            attempt,
            url_index,
            url,
            step: f.step.code().to_string(),
            kind: f.kind(),
            message: format!("{:#}", f.error),
            seconds: (seconds * 10.0).round() / 10.0,
        }
    }
}

/// What failed before the package that boots, across boot attempts and URLs: each
/// failure is said once on the console with its remedy and kept for the report.
#[derive(Debug, Default)]
pub struct History {
    /// Where the host configuration came from (or why the provisioning package).
    pub source: String,
    failures: Vec<FailureRecord>,
    attempt: u32,
    attempt_started: Option<std::time::Instant>,
    /// This attempt's URLs, one line each, for the attempt's failure.
    urls: Vec<String>,
}

impl History {
    /// Boot attempt `attempt` (from 1) begins.
    pub fn begin_attempt(&mut self, attempt: u32) {
        (self.attempt, self.attempt_started) = (attempt, Some(std::time::Instant::now()));
        self.urls.clear();
    }

    /// URL `i` (from 0) of `n` was not tried, and why.
    pub fn url_not_tried(&mut self, i: usize, n: usize, why: &str) {
        self.urls.push(format!("URL {} of {n}: not tried, {why}", i + 1));
    }

    /// URL `i` (from 0) of `n` failed with `f` after `took`.
    pub fn url_failed(&mut self, i: usize, n: usize, url: &url::Url, f: &crate::recovery::Failure, took: Duration) {
        use tracing::warn;
        let (which, secs) = (format!("URL {} of {n}", i + 1), took.as_secs_f64());
        warn!("{which} failed after {secs:.1} s at step {}: {:#}", f.step, f.error);
        warn!("what to do: {}", f.remedy());
        self.urls.push(format!("{which} ({secs:.1} s): {:#}", f.error));
        let url = Some((i + 1, crate::fetch::redact(url)));
        self.failures.push(FailureRecord::new(self.attempt, url, f, secs));
    }

    /// The attempt's failure once none of its URLs gave a bootable package.
    pub fn no_good_package(&self) -> crate::recovery::Failure {
        let all = self.urls.join("\n  ");
        let e = anyhow::anyhow!("no provisioning URL gave a bootable OS package:\n  {all}");
        crate::recovery::Failure::new(crate::recovery::Step::Fetch, e)
    }

    /// The attempt failed with `f` (reported already). A failed fetch step lists its
    /// URLs, each recorded already.
    pub fn attempt_failed(&mut self, f: &crate::recovery::Failure) {
        if f.step != crate::recovery::Step::Fetch {
            let secs = self.attempt_started.map_or(0.0, |t| t.elapsed().as_secs_f64());
            self.failures.push(FailureRecord::new(self.attempt, None, f, secs));
        }
    }

    /// What the report needs beyond the package, with this history.
    pub fn for_report<'a>(
        &'a self,
        trust: &'a crate::config::TrustConfig,
        plan: &'a crate::measure::Plan,
        steps: &'a [(crate::recovery::Step, Duration)],
        since_start: Duration,
    ) -> Boot<'a> {
        Boot {
            host_config_source: &self.source,
            failures: &self.failures,
            trust,
            identity: plan.identity(),
            tpm_floor: plan.tpm_floor,
            pcrs: plan.predicted.as_ref(),
            steps,
            since_start,
        }
    }
}

/// What the boot knows beyond the package, for the report.
pub struct Boot<'a> {
    /// Where the host configuration came from (or why the provisioning package).
    pub host_config_source: &'a str,
    /// What failed before (URLs, attempts).
    pub failures: &'a [FailureRecord],
    pub trust: &'a crate::config::TrustConfig,
    /// The UX identity from the TPM (empty without one).
    pub identity: &'a [u8],
    /// The TPM floor the package was checked against.
    pub tpm_floor: crate::measure::TpmFloor,
    /// The PCRs after the measurements, when the TPM could be read.
    pub pcrs: Option<&'a BTreeMap<u32, crate::digest::Sha256Digest>>,
    pub steps: &'a [(crate::recovery::Step, Duration)],
    pub since_start: Duration,
}

impl Report {
    /// The report of booting `pkg` with the measurements' event log beside it.
    pub fn new(pkg: &crate::verify::PackageFacts, boot: &Boot<'_>, firmware_eventlog: bool) -> Self {
        let m = pkg.manifest();
        let r = pkg.report();
        let checks = r
            .checks
            .iter()
            .map(|c| SignatureRecord {
                index: c.index,
                form: match c.form {
                    crate::verify::Form::Plain => "signature".into(),
                    crate::verify::Form::Proof(_) => "sigsum_proof".into(),
                },
                signer: c.signer.clone(),
                certificate_sha256: c.certificate_sha256.map(|d| d.hex()),
                verdict: c.verdict.code().into(),
                reason: c.verdict.reason(),
            })
            .collect();
        Report {
            version: REPORT_VERSION,
            stboot_version: crate::VERSION.to_string(),
            host_config_source: boot.host_config_source.to_string(),
            ospkg: Ospkg {
                origin: pkg.origin().to_string(),
                label: m.label.clone(),
                archive_sha256: pkg.archive_sha256().hex(),
                archive_bytes: pkg.archive_len(),
                descriptor_sha256: crate::verify::digest(pkg.descriptor_bytes()).hex(),
                kernel: m.kernel.clone(),
                initramfs: m.initramfs.clone(),
                cmdline: m.cmdline.clone(),
                version: m.ospkg_version,
                min_version: boot.trust.policy.min_version(),
                tpm_floor: boot.tpm_floor.value(),
                uki: m.uki.clone(),
            },
            signatures: Signatures {
                threshold: boot.trust.policy.ospkg_signature_threshold,
                found: r.found,
                valid: r.valid,
                checks,
            },
            trust_policy_sha256: crate::verify::digest(crate::gojson::marshal(&boot.trust.policy).as_bytes()).hex(),
            identity: String::from_utf8_lossy(boot.identity).into_owned(),
            pcrs: boot.pcrs.into_iter().flatten().map(|(p, v)| (p.to_string(), v.hex())).collect(),
            failures: boot.failures.to_vec(),
            steps: boot.steps.iter().map(|(n, d)| StepTime { step: n.code().to_string(), ms: d.as_millis() }).collect(),
            since_start_ms: boot.since_start.as_millis(),
            eventlog: EVENTLOG.into(),
            firmware_eventlog: firmware_eventlog.then(|| FIRMWARE_EVENTLOG.into()),
        }
    }
}

/// Append the event logs (stboot's, for `measurements`, and the firmware's) and
/// the boot report to the staged OS initramfs, if `on` (`stboot.handoff`). A
/// failure is a warning: the boot goes on without them.
pub fn attach(
    on: bool,
    staged: &crate::boot::Staged,
    pkg: &crate::verify::PackageFacts,
    measurements: &[crate::measure::Measurement],
    boot: &Boot<'_>,
) {
    use tracing::{info, warn};
    if !on {
        return info!("handoff: off (stboot.handoff=0): the OS gets no event log and no boot report");
    }
    let firmware = std::fs::read(FIRMWARE_EVENTLOG_SOURCE).ok().filter(|b| !b.is_empty());
    let report = Report::new(pkg, boot, firmware.is_some());
    let log = crate::measure::eventlog::write(measurements);
    let appended = archive(&log, firmware.as_deref(), pkg.descriptor_bytes(), &report, staged.uki())
        .and_then(|c| staged.append_to_initramfs(&c).map(|()| c.len()));
    let mut more: Vec<&str> = firmware.iter().map(|_| FIRMWARE_EVENTLOG).collect();
    more.extend(uki_extra(staged.uki()).into_iter().map(|(path, _)| path));
    match appended {
        Ok(n) => info!(
            "handoff: {n} bytes appended to the OS initramfs: {EVENTLOG} ({} events), {REPORT}, {DESCRIPTOR}{}",
            measurements.len(),
            more.iter().map(|p| format!(", {p}")).collect::<String>()
        ),
        Err(e) => warn!("handoff failed, the OS gets no event log or boot report: {e:#}"),
    }
}

/// The archive to append: the four files (the firmware log only if given), and for
/// a UKI package its `.pcrsig` and `.pcrpkey` where systemd-stub puts them.
pub fn archive(
    eventlog: &[u8],
    firmware_eventlog: Option<&[u8]>,
    descriptor: &[u8],
    report: &Report,
    uki: Option<&crate::ospkg::uki::UkiFacts>,
) -> Result<Vec<u8>> {
    let mut t = crate::initramfs::Tree::default();
    t.dir(DIR, 0o755)?;
    t.file(EVENTLOG, eventlog.to_vec(), 0o444)?;
    if let Some(fw) = firmware_eventlog {
        t.file(FIRMWARE_EVENTLOG, fw.to_vec(), 0o444)?;
    }
    let json = serde_json::to_string_pretty(report)? + "\n";
    t.file(REPORT, json.into_bytes(), 0o444)?;
    t.file(DESCRIPTOR, descriptor.to_vec(), 0o444)?;
    let extra = uki_extra(uki);
    if !extra.is_empty() {
        t.dir(EXTRA_DIR, 0o555)?;
    }
    for (path, bytes) in extra {
        t.file(path, bytes.to_vec(), 0o444)?;
    }
    t.write_cpio(Vec::new())
}

/// A UKI package's files for `/.extra/`: its `.pcrsig` and `.pcrpkey`, those it has.
fn uki_extra(uki: Option<&crate::ospkg::uki::UkiFacts>) -> Vec<(&'static str, &[u8])> {
    let Some(u) = uki else { return Vec::new() };
    [(PCR_SIGNATURE, &u.pcrsig), (PCR_PUBLIC_KEY, &u.pcrpkey)]
        .into_iter()
        .filter_map(|(path, bytes)| bytes.as_deref().map(|b| (path, b)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each URL's failure is kept once, with its place and the URL without its
    /// credentials; an attempt that failed at its fetch step adds no record of its
    /// own, one that failed before does.
    #[test]
    fn history_records_each_failure_once() {
        use crate::recovery::{Failure, Step};
        let mut h = History::default();
        h.begin_attempt(1);
        let url = url::Url::parse("https://stboot:s3cret@10.0.2.2:8443/second.json").unwrap();
        let f = Failure::new(Step::Fetch, anyhow::Error::new(crate::fetch::FetchError::Empty));
        h.url_failed(0, 2, &url, &f, Duration::from_millis(1500));
        h.url_not_tried(1, 2, "stboot.deadline passed");
        let all = h.no_good_package();
        h.attempt_failed(&all);
        let msg = format!("{:#}", all.error);
        assert!(msg.contains("URL 1 of 2 (1.5 s): ") && msg.contains("URL 2 of 2: not tried"), "{msg}");
        h.begin_attempt(2);
        h.attempt_failed(&Failure::new(Step::Network, anyhow::anyhow!("no NIC found")));
        let r: Vec<_> = h.failures.iter().map(|r| (r.attempt, r.url_index, r.url.clone(), r.kind.as_str())).collect();
        assert_eq!(
            r,
            [
                (1, Some(1), Some("https://***@10.0.2.2:8443/second.json".to_string()), "fetch.empty"),
                (2, None, None, "network")
            ]
        );
        assert!(!format!("{:?}", h.failures).contains("s3cret"));
    }

    /// The report's JSON has the documented typed fields (docs/formats.md).
    #[test]
    fn the_report_is_typed_json_with_a_version() {
        let r = Report {
            version: REPORT_VERSION,
            signatures: Signatures {
                threshold: 2,
                found: 1,
                valid: 0,
                checks: vec![SignatureRecord {
                    index: 0,
                    form: "signature".into(),
                    signer: Some("CN=alice".into()),
                    certificate_sha256: Some("ab".repeat(32)),
                    verdict: "untrusted_certificate.expired".into(),
                    reason: Some("certificate expired at …".into()),
                }],
            },
            failures: vec![FailureRecord {
                attempt: 1,
                url_index: Some(2),
                url: Some("https://***@h/x.json".into()),
                step: "fetch".into(),
                kind: "fetch.connect".into(),
                message: "cannot connect".into(),
                seconds: 1.2,
            }],
            ..Default::default()
        };
        let v: serde_json::Value = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(v["version"], 2);
        assert_eq!(v["signatures"]["checks"][0]["verdict"], "untrusted_certificate.expired");
        assert_eq!(v["signatures"]["checks"][0]["signer"], "CN=alice");
        assert_eq!(v["failures"][0]["url_index"], 2);
        assert_eq!(v["failures"][0]["kind"], "fetch.connect");
        assert_eq!(v["failures"][0]["seconds"], 1.2);
        assert!(v["ospkg"]["archive_sha256"].is_string() && v["pcrs"].is_object());
    }

    #[test]
    fn the_archive_holds_the_four_files_and_appends_after_padding() {
        let r = Report { stboot_version: "x".into(), ..Default::default() };
        let a = archive(b"LOG", Some(b"FW"), b"{\"version\": 1}", &r, None).unwrap();
        let mut names = Vec::new();
        let mut rd = std::io::Cursor::new(&a);
        loop {
            let e = cpio::newc::Reader::new(&mut rd).unwrap();
            if e.entry().is_trailer() {
                break;
            }
            names.push(e.entry().name().to_string());
            e.finish().unwrap();
        }
        assert_eq!(
            names,
            [
                "stboot",
                "stboot/descriptor.json",
                "stboot/eventlog.bin",
                "stboot/firmware-eventlog.bin",
                "stboot/report.json"
            ]
        );
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("initramfs");
        std::fs::write(&p, b"12345").unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        crate::boot::append_padded(&mut f, &a).unwrap();
        let all = std::fs::read(&p).unwrap();
        assert_eq!(&all[..8], b"12345\0\0\0", "the verified bytes, then zeros to a multiple of 4");
        assert_eq!(&all[8..], &a[..]);
    }
}
