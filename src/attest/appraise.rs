//! The verifier's half: appraising an evidence file (`stmgr attest verify`).
//!
//! Each check has a name (docs/attestation.md, "The verifier's checks") and, when
//! it fails, a reason; the evidence is accepted only when every check holds:
//!
//! 1. `evidence`: the file reads as evidence of this version;
//! 2. `ak`: the quote's AK is one of the enrolled AKs;
//! 3. `quote`: the AK signed the quote, over SHA-256(nonce || key) of the
//!    verifier's nonce and key, as a key of the endorsement hierarchy, and the
//!    PCR values in the evidence are the quoted ones (`quote.signature`,
//!    `quote.nonce`, `quote.pcrs`);
//! 4. `eventlog`: stboot's (and the firmware's) event log replay to the quoted
//!    values, and stboot's log holds what a boot under the verifier's trust policy
//!    measures, in that order;
//! 5. `package.archive`, `package.descriptor`: the measured archive is the one the
//!    boot report names, and the measured descriptor is the evidence's;
//! 6. `authority`: the machine measured the given trust policy directory (policy,
//!    signing roots, TLS roots, Sigsum policy);
//! 7. `signatures`: the descriptor's signatures over that archive meet the
//!    threshold under that trust policy, by the same code as `stmgr ospkg
//!    verify` and stboot; Sigsum proofs name their log and leaf index;
//! 8. `identity`: the UX identity measured (shown; it is what it is);
//! 9. `firmware` (only with a reference): PCRs 0-7 equal a known-good machine's.
//!
//! The event log's digests are what PCRs are extended with, SHA-256(D): the verifier
//! recomputes each from the data it has (the descriptor, the trust policy, the
//! identity in the log, the archive digest the report claims) and compares; the
//! replay then ties them to the quote.

use std::collections::BTreeMap;

use serde::Serialize;

use super::enrol::Enrolment;
use super::evidence::Evidence;
use super::quote::ClockInfo;
use super::{check_quote, QuoteFailure, FIRMWARE_PCRS};
use crate::config::TrustConfig;
use crate::digest::Sha256Digest;
use crate::measure::eventlog::{self, Event};
use crate::measure::{event_type, Measurement, TpmFloor};
use crate::verify::{Anchors, Form, Threshold, Verdict};

/// What the verifier brings: its nonce, the key it expects the quote to vouch
/// for, the AKs it enrolled and the trust policy it expects the machine to boot
/// under.
pub struct Verifier<'a> {
    pub nonce: &'a [u8],
    /// The key file's bytes; `None` takes the evidence's own key (still bound by
    /// the quote: a verdict then names its digest).
    pub key: Option<&'a [u8]>,
    pub enrolments: &'a [Enrolment],
    pub trust: &'a TrustConfig,
    /// Certificates are checked at this time (Unix seconds).
    pub now_unix: i64,
    /// Firmware PCR values (0-7) of a known-good machine of the same model, when
    /// the verifier has them ([`firmware_reference`]).
    pub firmware_reference: Option<&'a BTreeMap<u32, Sha256Digest>>,
}

/// Reads a firmware reference: a JSON object of PCR numbers to hex values, or an
/// evidence file of a known-good machine (its `pcrs`); only PCRs 0-7 are kept.
pub fn firmware_reference(bytes: &[u8]) -> Result<BTreeMap<u32, Sha256Digest>, String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let pcrs = v.get("pcrs").unwrap_or(&v);
    let obj = pcrs.as_object().ok_or("expected an object of PCR numbers to hex values, or an evidence file")?;
    let mut out = BTreeMap::new();
    for (k, val) in obj {
        let p: u32 = k.trim_start_matches("pcr").parse().map_err(|_| format!("{k:?} is not a PCR number"))?;
        if !FIRMWARE_PCRS.contains(&p) {
            continue;
        }
        let hex = val.as_str().ok_or_else(|| format!("PCR {p}: expected a hex string"))?;
        let d = Sha256Digest::from_hex(hex).ok_or_else(|| format!("PCR {p}: not 64 hex digits"))?;
        out.insert(p, d);
    }
    if out.is_empty() {
        return Err("no value for any of PCRs 0-7".into());
    }
    Ok(out)
}

/// One check and its outcome.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    pub check: &'static str,
    pub ok: bool,
    /// What was found, or why it failed.
    pub detail: String,
}

/// One signer that counted.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct Signer {
    pub subject: String,
    pub certificate_sha256: String,
    /// SHA-256 of the signing root (DER) that issued the certificate.
    pub root_sha256: String,
    /// For a Sigsum proof: the log (key hash, and URL when the policy has one).
    pub sigsum_log: Option<String>,
    pub sigsum_leaf_index: Option<u64>,
    pub sigsum_tree_size: Option<u64>,
}

/// What the machine booted, as the checks established it.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct Booted {
    /// The manifest's label as the boot report states it (the label is inside
    /// the archive, which the verifier does not have: not checked).
    pub label: String,
    pub archive_name: String,
    pub archive_sha256: String,
    pub descriptor_sha256: String,
    pub signers: Vec<Signer>,
    pub trust_policy_sha256: String,
    /// The package's `ospkg_version`, as measured (null: the package has none).
    pub version: Option<u64>,
    /// The floor it was checked against: the higher of the trust policy's
    /// (`ospkg_min_version`, 0 without one) and the measured TPM floor.
    pub min_version: u64,
    /// The UX identity measured, as text (empty: none).
    pub identity: String,
}

/// The result of appraising one evidence file.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Appraisal {
    /// True only when every check held.
    pub verified: bool,
    /// One sentence: what this machine booted, or the first check that failed.
    pub verdict: String,
    pub checks: Vec<Check>,
    pub ak_name: Option<String>,
    pub ek_public_sha256: Option<String>,
    /// SHA-256 of the key the quote vouches for.
    pub key_sha256: Option<String>,
    pub clock: Option<ClockInfo>,
    /// How the firmware's PCRs were checked.
    pub firmware_pcrs: String,
    pub booted: Option<Booted>,
}

impl Appraisal {
    fn pass(&mut self, check: &'static str, detail: impl Into<String>) {
        self.checks.push(Check { check, ok: true, detail: detail.into() });
    }

    fn fail(&mut self, check: &'static str, detail: impl Into<String>) {
        self.checks.push(Check { check, ok: false, detail: detail.into() });
    }

    /// The first failed check.
    pub fn first_failure(&self) -> Option<&Check> {
        self.checks.iter().find(|c| !c.ok)
    }

    fn finish(mut self) -> Self {
        self.verified = !self.checks.is_empty() && self.first_failure().is_none();
        self.verdict = match (self.first_failure(), &self.booted) {
            (Some(c), _) => format!("NOT VERIFIED: {} failed: {}", c.check, c.detail),
            (None, None) => "NOT VERIFIED: nothing was checked".into(),
            (None, Some(b)) => {
                let signers: Vec<String> = b.signers.iter().map(|s| format!("\"{}\"", s.subject)).collect();
                let mut roots: Vec<String> = b.signers.iter().map(|s| format!("sha256:{}", s.root_sha256)).collect();
                roots.dedup();
                let logged: Vec<String> = b
                    .signers
                    .iter()
                    .filter_map(|s| {
                        let log = s.sigsum_log.as_ref()?;
                        let at = s.sigsum_leaf_index.map(|i| i.to_string()).unwrap_or_else(|| "?".into());
                        Some(format!("logged in Sigsum log {log} at index {at}"))
                    })
                    .collect();
                let version = match b.version {
                    Some(n) => format!(", version {n} (floor {})", b.min_version),
                    None => String::new(),
                };
                let mut v = format!(
                    "this machine booted OS package \"{}\" (archive {} sha256:{}{version}), signed by {} under root {}",
                    b.label,
                    b.archive_name,
                    b.archive_sha256,
                    signers.join(", "),
                    roots.join(", ")
                );
                if !logged.is_empty() {
                    v.push_str(&format!(", {}", logged.join(", ")));
                }
                if let Some(k) = &self.key_sha256 {
                    v.push_str(&format!("; its key sha256:{k} is bound to this quote"));
                }
                v
            }
        };
        self
    }
}

/// Appraise the evidence file `bytes` for `v`.
pub fn appraise(bytes: &[u8], v: &Verifier<'_>) -> Appraisal {
    let mut a = Appraisal::default();
    let e = match Evidence::parse(bytes) {
        Ok(e) => e,
        Err(err) => {
            a.fail("evidence", format!("{err:#}"));
            return a.finish();
        }
    };
    a.pass("evidence", format!("version {}, {} PCRs quoted", e.version, e.pcrs.len()));

    // the AK
    let name = crate::tpm::object::Public::parse(&e.ak_public).ok().and_then(|p| p.name().ok());
    a.ak_name = name.as_deref().map(crate::digest::hex);
    match v.enrolments.iter().find(|r| r.ak_public == e.ak_public) {
        Some(r) => {
            a.ek_public_sha256 = Some(r.ek_public_sha256.clone());
            a.pass(
                "ak",
                format!("AK {} enrolled with EK sha256:{} ({})", r.ak_name, r.ek_public_sha256, r.ek_trusted_by),
            );
        }
        None => {
            let enrolled: Vec<&str> = v.enrolments.iter().map(|r| r.ak_name.as_str()).collect();
            a.fail(
                "ak",
                format!(
                    "the quote's AK {} is not enrolled (enrolled: {}): a quote from another machine, or an AK the \
                     verifier never enrolled (stmgr attest request|challenge|activate|enrol)",
                    a.ak_name.as_deref().unwrap_or("(unreadable)"),
                    if enrolled.is_empty() { "none".into() } else { enrolled.join(", ") }
                ),
            );
        }
    }

    // the quote
    let key = v.key.or(e.key.as_deref());
    a.key_sha256 = key.map(|k| Sha256Digest::of(k).hex());
    let quoted = match e.quote() {
        Ok(q) => match check_quote(&q, v.nonce, key) {
            Ok(attest) => {
                a.clock = Some(attest.clock);
                a.pass("quote", "signed by the AK over SHA-256(nonce || key); the PCR values are the quoted ones");
                Some(attest)
            }
            Err(f) => {
                let name = match f {
                    QuoteFailure::Malformed(_) => "quote",
                    QuoteFailure::Signature(_) | QuoteFailure::Signer => "quote.signature",
                    QuoteFailure::Binding => "quote.nonce",
                    QuoteFailure::Pcrs(_) => "quote.pcrs",
                };
                a.fail(name, f.to_string());
                None
            }
        },
        Err(err) => {
            a.fail("quote", format!("{err:#}"));
            None
        }
    };
    let pcrs = v.trust.policy.pcrs();
    if let Some(q) = &quoted {
        let missing: Vec<u32> =
            [pcrs.detail, pcrs.authority, pcrs.identity].into_iter().filter(|p| !q.pcrs.contains(p)).collect();
        if !missing.is_empty() {
            a.fail("quote.pcrs", format!("the quote does not cover PCR(s) {missing:?}, which stboot measures into"));
        }
    }

    // the event logs
    let quoted_values: BTreeMap<u32, String> = e.pcrs.clone();
    let log = match eventlog::parse(&e.eventlog) {
        Ok(l) => l,
        Err(err) => {
            a.fail("eventlog", format!("stboot's event log: {err:#}"));
            return a.finish();
        }
    };
    let firmware = match e.firmware_eventlog.as_deref().map(eventlog::parse).transpose() {
        Ok(f) => f,
        Err(err) => {
            a.fail("eventlog", format!("the firmware's event log: {err:#}"));
            return a.finish();
        }
    };
    replay(&mut a, &log, firmware.as_deref(), &quoted_values);
    if let Some(reference) = v.firmware_reference {
        let differ: Vec<String> = reference
            .iter()
            .filter(|(p, want)| quoted_values.get(p).map(|q| q.to_ascii_lowercase()) != Some(want.hex()))
            .map(|(p, want)| {
                let got = quoted_values.get(p).map(String::as_str).unwrap_or("not quoted");
                format!("PCR {p} is {got}, the reference has {}", want.hex())
            })
            .collect();
        let listed: Vec<String> = reference.keys().map(u32::to_string).collect();
        if differ.is_empty() {
            a.pass("firmware", format!("PCRs {} equal the reference", listed.join(",")));
            a.firmware_pcrs.push_str("; equal to the reference");
        } else {
            a.fail("firmware", format!("{} (other firmware, firmware settings or boot order)", differ.join("; ")));
        }
    } else {
        a.firmware_pcrs.push_str("; not compared with a reference (-firmwareReference)");
    }

    // what the log says was measured, against what the verifier expects
    let report_archive = e.report.pointer("/ospkg/archive_sha256").and_then(|s| s.as_str()).unwrap_or("");
    let archive_sha256 = Sha256Digest::from_hex(report_archive);
    let archive_name = first_data(&log, event_type::OSPKG_ARCHIVE);
    let identity = first_data(&log, event_type::UX_IDENTITY);
    let version = std::str::from_utf8(&first_data(&log, event_type::OSPKG_VERSION)).ok().and_then(|t| t.parse().ok());
    // the TPM floor is the machine's state: the verifier learns it from the log
    // (a policy that asks for one and a log without the event fail the log check)
    let tpm_floor = if !v.trust.policy.tpm_floor() {
        TpmFloor::Off
    } else {
        match std::str::from_utf8(&first_data(&log, event_type::TPM_FLOOR)).ok().map(|t| t.parse::<u64>()) {
            Some(Ok(n)) => TpmFloor::At(n),
            _ => TpmFloor::Undefined,
        }
    };
    let authority = crate::measure::AuthorityInputs::of(v.trust);
    let zero = Sha256Digest::from_bytes([0; 32]);
    let package = crate::measure::PackageInputs {
        archive_name: &String::from_utf8_lossy(&archive_name),
        archive_sha256: archive_sha256.as_ref().unwrap_or(&zero),
        descriptor: &e.descriptor,
        version,
        tpm_floor,
    };
    let mut expected = crate::measure::measurements(&pcrs, &package, &authority);
    expected.push(crate::measure::identity_measurement(&pcrs, &identity));
    let shown = crate::text::printable(&String::from_utf8_lossy(&identity));
    let identity_detail = match shown.as_str() {
        "" => format!("no UX identity (measured empty into PCR {})", pcrs.identity),
        s => format!("UX identity \"{s}\" measured into PCR {}", pcrs.identity),
    };
    // a UKI package's sections, in PCR 11 as systemd-stub would measure them: their
    // digests are the UKI's, which is inside the archive measured in PCR 12
    let uki = e.report.pointer("/ospkg/uki").and_then(|s| s.as_str());
    let (uki_events, log): (Vec<Event>, Vec<Event>) = log
        .into_iter()
        .partition(|ev| ev.pcr == crate::measure::uki::PCR && ev.event_type == crate::measure::uki::EV_IPL);
    check_uki_events(&mut a, uki, &uki_events);
    compare_log(&mut a, &log, &expected, (archive_sha256.is_some(), report_archive), identity_detail);
    let anchors = Anchors { tpm_floor: tpm_floor.value(), ..Anchors::from(v.trust) };
    let (floor, which) = anchors.floor();
    if version.unwrap_or(0) < floor {
        a.fail(
            "package.version",
            format!("the package's version {} is below the floor {floor} ({which})", version.unwrap_or(0)),
        );
    }

    // the signatures, under the verifier's trust policy
    let descriptor_sha256 = Sha256Digest::of(&e.descriptor);
    let mut booted = Booted {
        label: e.report.pointer("/ospkg/label").and_then(|s| s.as_str()).unwrap_or("").to_string(),
        archive_name: crate::text::printable(&String::from_utf8_lossy(&archive_name)),
        archive_sha256: report_archive.to_string(),
        descriptor_sha256: descriptor_sha256.hex(),
        signers: Vec::new(),
        trust_policy_sha256: Sha256Digest::of(authority.policy_json.as_bytes()).hex(),
        version,
        min_version: floor,
        identity: shown,
    };
    match (crate::ospkg::Descriptor::parse(&e.descriptor), archive_sha256) {
        (Err(err), _) => a.fail("signatures", format!("the evidence's descriptor: {err:#}")),
        (_, None) => a.fail("signatures", format!("the boot report names no archive digest ({report_archive:?})")),
        (Ok(d), Some(archive)) => {
            let threshold = Threshold::AtLeast(v.trust.policy.ospkg_signature_threshold);
            match crate::verify::verify(&d, &archive, Anchors::from(v.trust), threshold, v.now_unix) {
                Err(err) => a.fail("signatures", format!("{err:#}")),
                Ok(r) => {
                    for c in r.checks.iter().filter(|c| c.verdict == Verdict::Valid) {
                        let proof = match &c.form {
                            Form::Proof(Some(p)) => Some(p),
                            _ => None,
                        };
                        booted.signers.push(Signer {
                            subject: c.signer.clone().unwrap_or_default(),
                            certificate_sha256: c.certificate_sha256.map(|d| d.hex()).unwrap_or_default(),
                            root_sha256: c
                                .root
                                .and_then(|i| v.trust.signing_roots.get(i))
                                .map(|r| Sha256Digest::of(r).hex())
                                .unwrap_or_default(),
                            sigsum_log: proof.map(|p| p.log.clone()),
                            sigsum_leaf_index: proof.and_then(|p| p.leaf_index),
                            sigsum_tree_size: proof.and_then(|p| p.tree_size),
                        });
                    }
                    if r.accepted() {
                        a.pass("signatures", r.summary());
                    } else {
                        let why: Vec<String> = r
                            .checks
                            .iter()
                            .filter_map(|c| c.verdict.reason().map(|m| format!("signature {}: {m}", c.index)))
                            .collect();
                        let why = if why.is_empty() { String::new() } else { format!("; {}", why.join("; ")) };
                        a.fail("signatures", format!("{}{why}", r.summary()));
                    }
                }
            }
        }
    }
    a.booted = Some(booted);
    a.finish()
}

/// The data of the first event of type `t` in `log` (empty when there is none).
fn first_data(log: &[Event], t: u32) -> Vec<u8> {
    log.iter().find(|e| e.event_type == t).map(|e| e.data.clone()).unwrap_or_default()
}

/// Replays the firmware's events and then stboot's, per PCR, and compares each
/// quoted PCR. Without a firmware log, PCRs 0-7 cannot be replayed: said, not
/// failed (nothing in them is stboot's).
fn replay(a: &mut Appraisal, log: &[Event], firmware: Option<&[Event]>, quoted: &BTreeMap<u32, String>) {
    let mut all: Vec<Event> = firmware.unwrap_or_default().to_vec();
    all.extend_from_slice(log);
    let replayed = eventlog::replay(&all);
    let zero = Sha256Digest::from_bytes([0; 32]);
    let mut wrong = Vec::new();
    let mut checked = Vec::new();
    for (pcr, value) in quoted {
        if FIRMWARE_PCRS.contains(pcr) && firmware.is_none() {
            continue;
        }
        let got = replayed.get(pcr).copied().unwrap_or(zero);
        if got.hex() != value.to_ascii_lowercase() {
            wrong.push(format!("PCR {pcr} is {value} in the quote, the event logs replay to {}", got.hex()));
        }
        checked.push(pcr.to_string());
    }
    a.firmware_pcrs = match firmware {
        Some(f) => format!("replayed from the firmware's event log ({} events)", f.len()),
        None => "not checked: the machine handed over no firmware event log".into(),
    };
    if wrong.is_empty() {
        a.pass("eventlog", format!("PCRs {} replay from the event logs to the quoted values", checked.join(",")));
    } else {
        a.fail(
            "eventlog",
            format!("{} (an event changed, dropped or added, or PCRs extended outside the log)", wrong.join("; ")),
        );
    }
}

/// A UKI package's PCR 11 events ([`crate::measure::uki`]): pairs of a section's
/// name (UTF-16 event data; its digest must be that of the name with its NUL) and
/// the section's contents, `.linux` first; none when the boot report names no UKI.
fn check_uki_events(a: &mut Appraisal, uki: Option<&str>, events: &[Event]) {
    let Some(uki) = uki else {
        if !events.is_empty() {
            a.fail(
                "eventlog",
                format!(
                    "stboot's event log has {} UKI section events in PCR {}, but the boot report names no UKI",
                    events.len(),
                    crate::measure::uki::PCR
                ),
            );
        }
        return;
    };
    // both come from the machine: shown, not trusted
    let uki = crate::text::printable(uki);
    let name_of = |e: &Event| {
        let units: Vec<u16> = e.data.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        String::from_utf16(units.strip_suffix(&[0]).unwrap_or(&units)).ok()
    };
    let mut names = Vec::new();
    let mut wrong = None;
    for pair in events.chunks(2) {
        let (Some(name), Some(data)) = (pair.first(), pair.get(1)) else {
            wrong = Some("a section's name without its contents".to_string());
            break;
        };
        let n = name_of(name).unwrap_or_default();
        let mut with_nul = n.as_bytes().to_vec();
        with_nul.push(0);
        if name.sha256 != Some(Sha256Digest::of(&with_nul)) || name_of(data).as_deref() != Some(n.as_str()) {
            wrong = Some(format!("the events for section {n:?} are not a name and its contents"));
            break;
        }
        names.push(n);
    }
    match wrong {
        None if names.first().map(String::as_str) == Some(".linux") => a.pass(
            "package.uki",
            format!(
                "the UKI {uki}: sections {} measured into PCR {} (their bytes are in the archive measured in PCR 12)",
                crate::text::printable(&names.join(" ")),
                crate::measure::uki::PCR
            ),
        ),
        None => a.fail("package.uki", format!("the UKI {uki}: no .linux measured first into PCR 11 ({names:?})")),
        Some(w) => a.fail("package.uki", format!("the UKI {uki}: {w}")),
    }
}

/// Compares stboot's log with what a boot under the verifier's trust policy
/// measures and names the check each difference belongs to: the trust policy
/// directory's items (`authority`) as a group, then the package's and the
/// identity's events in order.
fn compare_log(
    a: &mut Appraisal,
    log: &[Event],
    expected: &[Measurement],
    (archive_known, report_archive): (bool, &str),
    identity: String,
) {
    let mut failed: Vec<&'static str> = Vec::new();
    let mut fail = |a: &mut Appraisal, check: &'static str, why: String| {
        if !failed.contains(&check) {
            failed.push(check);
            a.fail(check, why);
        }
    };
    // the authority: per kind, what the machine measured against the directory
    let mut differs = Vec::new();
    for t in event_type::AUTHORITY {
        let got: Vec<(u32, Option<Sha256Digest>)> =
            log.iter().filter(|e| e.event_type == t).map(|e| (e.pcr, e.sha256)).collect();
        let want: Vec<(u32, Option<Sha256Digest>)> =
            expected.iter().filter(|m| m.event_type == t).map(|m| (m.pcr, Some(m.extend_value()))).collect();
        if got != want {
            let what = eventlog::type_name(t);
            differs.push(match (got.len(), want.len()) {
                (g, w) if g == w => format!("the machine measured another {what} than the directory's"),
                (g, w) => format!("the machine measured {g} {what} event(s), the directory gives {w}"),
            });
        }
    }
    if !differs.is_empty() {
        fail(a, "authority", format!("{}: it booted under another trust policy", differs.join("; ")));
    }
    // the package and the identity, in order
    let rest = |t: &u32| !event_type::AUTHORITY.contains(t);
    let got: Vec<&Event> = log.iter().filter(|e| rest(&e.event_type)).collect();
    let want: Vec<&Measurement> = expected.iter().filter(|m| rest(&m.event_type)).collect();
    let shape =
        |e: &[(u32, u32)]| e.iter().map(|(p, t)| format!("{} in PCR {p}", eventlog::type_name(*t))).collect::<Vec<_>>();
    let got_shape: Vec<(u32, u32)> = got.iter().map(|e| (e.pcr, e.event_type)).collect();
    let want_shape: Vec<(u32, u32)> = want.iter().map(|m| (m.pcr, m.event_type)).collect();
    if got_shape != want_shape {
        fail(
            a,
            "eventlog",
            format!(
                "stboot's event log measures {}; a boot under this trust policy measures {}",
                shape(&got_shape).join(", "),
                shape(&want_shape).join(", ")
            ),
        );
    } else {
        for (got, want) in got.iter().zip(&want) {
            if got.sha256 == Some(want.extend_value()) {
                continue;
            }
            let (check, why) = match want.event_type {
                event_type::OSPKG_ARCHIVE if !archive_known => {
                    ("package.archive", format!("the boot report names no archive digest ({report_archive:?})"))
                }
                event_type::OSPKG_ARCHIVE => (
                    "package.archive",
                    format!("the archive measured is not sha256:{report_archive}, the one the boot report names"),
                ),
                event_type::OSPKG_DESCRIPTOR => (
                    "package.descriptor",
                    "the descriptor in the evidence is not the one measured (swapped for another?)".to_string(),
                ),
                event_type::OSPKG_VERSION => {
                    ("package.version", "the version event's data is not what was measured".into())
                }
                event_type::TPM_FLOOR => {
                    ("package.version", "the TPM floor event's data is not what was measured".into())
                }
                _ => ("identity", "the UX identity event's data is not what was measured".into()),
            };
            fail(a, check, why);
        }
    }
    let details = [
        ("package.archive", format!("the measured archive is sha256:{report_archive}")),
        ("package.descriptor", "the measured descriptor is the evidence's".to_string()),
        ("authority", "the machine measured the given trust policy, signing roots, TLS roots and Sigsum policy".into()),
        ("identity", identity),
    ];
    for (check, detail) in details {
        let unchecked = check != "authority" && failed.contains(&"eventlog");
        if !failed.contains(&check) && !unchecked {
            a.pass(check, detail);
        }
    }
}
