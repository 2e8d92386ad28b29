//! The TPM event log of stboot's measurements, in the TCG PC Client "crypto agile"
//! format (TCG PC Client Platform Firmware Profile, section 10): a legacy
//! `TCG_PCR_EVENT` carrying the "Spec ID Event03" header, then one `TCG_PCR_EVENT2`
//! per extend, in order, little-endian.
//!
//! Event types and data are upstream's (`host/tpm.go`, see [`super::event_type`]).
//! The digest is the value that was extended into the SHA-256 bank, SHA-256(D), so
//! that replaying the log (by [`replay`], `tpm2_eventlog`, or any verifier) gives the
//! PCR values; upstream's unreleased log recorded D itself, which does not replay.
//!
//! [`parse`] also reads firmware logs (`binary_bios_measurements`): any number of
//! banks, as the header declares them; only SHA-256 is kept.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

use super::{Measurement, Sha256Digest};

/// `EV_NO_ACTION`: not extended (the header is one).
pub const EV_NO_ACTION: u32 = 0x0000_0003;
const TPM_ALG_SHA1: u16 = 0x0004;
const TPM_ALG_SHA256: u16 = 0x000B;
const SPEC_ID_SIGNATURE: &[u8; 16] = b"Spec ID Event03\0";

/// One entry: the PCR, the event type, the SHA-256 digest extended, the event data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub pcr: u32,
    pub event_type: u32,
    /// The SHA-256 bank's digest; `None` when the entry has no SHA-256 digest.
    pub sha256: Option<Sha256Digest>,
    pub data: Vec<u8>,
}

/// The header event: `TCG_EfiSpecIDEvent` with one bank, SHA-256.
fn spec_id_event() -> Vec<u8> {
    let mut spec = Vec::new();
    spec.extend_from_slice(SPEC_ID_SIGNATURE);
    spec.extend_from_slice(&0u32.to_le_bytes()); // platformClass: client
    spec.extend_from_slice(&[0, 2, 0, 2]); // specVersionMinor 0, Major 2, errata 0, uintnSize 2 (64-bit)
    spec.extend_from_slice(&1u32.to_le_bytes()); // numberOfAlgorithms
    spec.extend_from_slice(&TPM_ALG_SHA256.to_le_bytes());
    spec.extend_from_slice(&32u16.to_le_bytes());
    spec.push(0); // vendorInfoSize
    let mut e = Vec::new();
    e.extend_from_slice(&0u32.to_le_bytes()); // PCR 0
    e.extend_from_slice(&EV_NO_ACTION.to_le_bytes());
    e.extend_from_slice(&[0u8; 20]); // SHA-1 digest field of the legacy format, zero
    e.extend_from_slice(&(spec.len() as u32).to_le_bytes());
    e.extend_from_slice(&spec);
    e
}

/// The log of `ms`, in order (each extended with [`Measurement::extend_value`]).
pub fn write(ms: &[Measurement]) -> Vec<u8> {
    let mut log = spec_id_event();
    for m in ms {
        log.extend_from_slice(&m.pcr.to_le_bytes());
        log.extend_from_slice(&m.event_type.to_le_bytes());
        log.extend_from_slice(&1u32.to_le_bytes()); // one digest
        log.extend_from_slice(&TPM_ALG_SHA256.to_le_bytes());
        log.extend_from_slice(m.extend_value().as_bytes());
        log.extend_from_slice(&(m.data.len() as u32).to_le_bytes());
        log.extend_from_slice(&m.data);
    }
    log
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        match self.b.get(self.at..self.at.saturating_add(n)) {
            Some(s) => {
                self.at += n;
                Ok(s)
            }
            None => bail!("event log: {what} at byte {} runs past the end ({} bytes)", self.at, self.b.len()),
        }
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().expect("4 bytes")))
    }
    fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2, what)?.try_into().expect("2 bytes")))
    }
}

/// Parse a crypto-agile event log. Errors name the byte offset.
pub fn parse(bytes: &[u8]) -> Result<Vec<Event>> {
    let mut r = Reader { b: bytes, at: 0 };
    // the header, in the legacy format
    let pcr = r.u32("header PCR")?;
    let ty = r.u32("header type")?;
    r.take(20, "header digest")?;
    let size = r.u32("header size")? as usize;
    let spec = r.take(size, "Spec ID event")?;
    if pcr != 0 || ty != EV_NO_ACTION || spec.len() < 29 || &spec[..16] != SPEC_ID_SIGNATURE {
        bail!("event log: no \"Spec ID Event03\" header: not a TCG crypto-agile (TPM 2.0) event log");
    }
    let mut sizes: BTreeMap<u16, usize> = BTreeMap::new();
    let mut s = Reader { b: spec, at: 24 };
    let n = s.u32("number of algorithms")?;
    for _ in 0..n {
        let alg = s.u16("algorithm id")?;
        let size = s.u16("digest size")?;
        sizes.insert(alg, size as usize);
    }
    sizes.entry(TPM_ALG_SHA1).or_insert(20);
    let mut events = Vec::new();
    while r.at < bytes.len() {
        let start = r.at;
        let pcr = r.u32("PCR index")?;
        let event_type = r.u32("event type")?;
        let count = r.u32("digest count")?;
        let mut sha256 = None;
        for _ in 0..count {
            let alg = r.u16("digest algorithm")?;
            let Some(&len) = sizes.get(&alg) else {
                bail!("event log: event at byte {start}: algorithm 0x{alg:04x} is not declared in the header");
            };
            let d = r.take(len, "digest")?;
            if alg == TPM_ALG_SHA256 {
                sha256 = Some(Sha256Digest::from_bytes(d.try_into().context("SHA-256 digest of 32 bytes")?));
            }
        }
        let size = r.u32("event size")? as usize;
        let data = r.take(size, "event data")?.to_vec();
        events.push(Event { pcr, event_type, sha256, data });
    }
    Ok(events)
}

/// The SHA-256 PCR values the events imply, starting from zeros (`EV_NO_ACTION`
/// events are not extended).
pub fn replay(events: &[Event]) -> BTreeMap<u32, Sha256Digest> {
    let mut by_pcr: BTreeMap<u32, Vec<Sha256Digest>> = BTreeMap::new();
    for e in events.iter().filter(|e| e.event_type != EV_NO_ACTION) {
        if let Some(d) = e.sha256 {
            by_pcr.entry(e.pcr).or_default().push(d);
        }
    }
    by_pcr.into_iter().map(|(pcr, ds)| (pcr, super::replay(&ds))).collect()
}

/// A name for an event type, for listings.
pub fn type_name(t: u32) -> String {
    use super::event_type as et;
    match t {
        et::OSPKG_ARCHIVE => "OS package archive".into(),
        et::OSPKG_DESCRIPTOR => "OS package descriptor".into(),
        et::TRUST_POLICY => "trust policy".into(),
        et::SIGNING_ROOT => "OS package signing root".into(),
        et::TLS_ROOTS => "TLS roots".into(),
        et::UX_IDENTITY => "UX identity".into(),
        et::SIGSUM_POLICY => "Sigsum policy".into(),
        et::OSPKG_VERSION => "OS package version".into(),
        et::REVOKED_SIGNERS => "revoked signers".into(),
        et::TPM_FLOOR => "TPM floor".into(),
        et::UKI_DB => "UKI Secure Boot db".into(),
        EV_NO_ACTION => "EV_NO_ACTION".into(),
        other => format!("0x{other:08x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Measurement> {
        let pcrs = super::super::Pcrs::default();
        let digest = Sha256Digest::from_bytes([7; 32]);
        let pkg = super::super::PackageInputs {
            archive_name: "os.zip",
            archive_sha256: &digest,
            descriptor: b"{\"version\":1}",
            version: Some(3),
            tpm_floor: super::super::TpmFloor::At(2),
        };
        let (roots, tls) = ([b"root-der".to_vec()], [b"tls-der".to_vec()]);
        let authority = super::super::AuthorityInputs {
            policy_json: "{\"ospkg_signature_threshold\":1,\"ospkg_fetch_method\":\"network\"}".into(),
            signing_roots: &roots,
            tls_roots: &tls,
            sigsum_policy: Some(b"quorum none\n"),
            revoked: Some(b"# none\n"),
            uki_db: Some(b"-----BEGIN CERTIFICATE-----\n"),
        };
        let mut ms = super::super::measurements(&pcrs, &pkg, &authority);
        ms.push(super::super::identity_measurement(&pcrs, b"rack-7"));
        ms
    }

    #[test]
    fn written_logs_parse_and_replay_to_the_measured_pcrs() {
        let ms = sample();
        let log = write(&ms);
        let events = parse(&log).unwrap();
        assert_eq!(events.len(), ms.len());
        assert_eq!(events[0].event_type, super::super::event_type::OSPKG_ARCHIVE);
        assert_eq!(events[0].data, b"os.zip");
        assert_eq!(events.last().unwrap().data, b"rack-7");
        assert_eq!(replay(&events), super::super::pcr_values(&ms));
    }

    #[test]
    fn broken_logs_are_errors_with_offsets_never_panics() {
        let log = write(&sample());
        for cut in [0, 3, 31, 40, 70, log.len() - 1] {
            let e = parse(&log[..cut]).unwrap_err().to_string();
            assert!(e.contains("event log"), "{cut}: {e}");
        }
        let mut bad = log.clone();
        bad[32..48].copy_from_slice(b"Spec ID Event02\0");
        assert!(parse(&bad).unwrap_err().to_string().contains("Spec ID Event03"));
        for i in 0..log.len() {
            let mut m = log.clone();
            m[i] ^= 0xff;
            let _ = parse(&m);
        }
    }

    /// tpm2_eventlog (tpm2-tools, an independent parser) reads the log and reports the
    /// same PCRs.
    #[test]
    fn tpm2_eventlog_reads_it_and_agrees() {
        if std::process::Command::new("tpm2_eventlog").arg("--version").output().is_err() {
            assert!(std::env::var_os("STBOOT_REQUIRE_NETNS").is_none(), "tpm2_eventlog (tpm2-tools) is missing");
            eprintln!("SKIPPED tpm2_eventlog_reads_it_and_agrees: tpm2-tools is not installed");
            return;
        }
        let ms = sample();
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log.bin");
        std::fs::write(&p, write(&ms)).unwrap();
        let o = std::process::Command::new("tpm2_eventlog").arg(&p).output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
        for (pcr, v) in super::super::pcr_values(&ms) {
            let want = format!("{pcr} : 0x{}", v.hex());
            assert!(out.contains(&want), "tpm2_eventlog does not say {want:?}:\n{out}");
        }
    }
}
