//! The evidence file: one JSON object the booted OS writes for a verifier
//! (docs/attestation.md, "The evidence file"), everything the verifier needs but its
//! own trust anchors: the quote and the AK, the PCR values quoted, what stboot
//! handed over (its event log, the firmware's, the boot report, the verified
//! descriptor) and the key the quote vouches for.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::b64;
use super::{make_quote, Quote, FIRMWARE_PCRS};
use crate::digest::Sha256Digest;
use crate::tpm::object::Public;
use crate::tpm::Tpm;

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evidence {
    pub version: u32,
    /// The verifier's nonce (hex), as given.
    pub nonce: String,
    /// The key file the quote vouches for, its bytes exactly; null without one.
    #[serde(with = "b64::option", default)]
    pub key: Option<Vec<u8>>,
    /// The AK's TPMT_PUBLIC.
    #[serde(with = "b64")]
    pub ak_public: Vec<u8>,
    /// TPMS_ATTEST, as the TPM made it (`tpm2_quote -m`).
    #[serde(with = "b64")]
    pub quote: Vec<u8>,
    /// TPMT_SIGNATURE (`tpm2_quote -s`).
    #[serde(with = "b64")]
    pub signature: Vec<u8>,
    /// The SHA-256 PCR values quoted, by PCR number (hex).
    pub pcrs: std::collections::BTreeMap<u32, String>,
    /// stboot's event log (/stboot/eventlog.bin).
    #[serde(with = "b64")]
    pub eventlog: Vec<u8>,
    /// The firmware's event log (/stboot/firmware-eventlog.bin), when there was one.
    #[serde(with = "b64::option", default)]
    pub firmware_eventlog: Option<Vec<u8>>,
    /// The boot report (/stboot/report.json), as JSON.
    pub report: serde_json::Value,
    /// The verified descriptor as received (/stboot/descriptor.json).
    #[serde(with = "b64")]
    pub descriptor: Vec<u8>,
}

/// The PCRs quoted: the firmware's and those stboot measured into (the report's
/// `pcrs`; 12-14 when it names none).
pub fn pcrs_to_quote(report: &serde_json::Value) -> Vec<u32> {
    let mut pcrs: Vec<u32> = FIRMWARE_PCRS.collect();
    let stboot: Vec<u32> = report
        .get("pcrs")
        .and_then(|p| p.as_object())
        .map(|m| m.keys().filter_map(|k| k.trim_start_matches("pcr").parse().ok()).collect())
        .unwrap_or_default();
    pcrs.extend(if stboot.is_empty() { vec![12, 13, 14] } else { stboot });
    pcrs.sort_unstable();
    pcrs.dedup();
    pcrs.retain(|&p| p < 24);
    pcrs
}

/// Makes the evidence on the booted machine: reads what stboot handed over in
/// `handoff` (normally /stboot), quotes with the AK.
pub fn collect(tpm: &mut Tpm, nonce: &[u8], key: Option<&[u8]>, handoff: &Path) -> Result<Evidence> {
    let read = |name: &str| {
        let p = handoff.join(name);
        std::fs::read(&p).with_context(|| format!("reading {} (handed over by stboot)", p.display()))
    };
    let eventlog = read("eventlog.bin")?;
    let firmware_eventlog = read("firmware-eventlog.bin").ok();
    let report: serde_json::Value =
        serde_json::from_slice(&read("report.json")?).context("the boot report is not JSON")?;
    let descriptor = read("descriptor.json")?;
    let pcrs = pcrs_to_quote(&report);
    let q = make_quote(tpm, nonce, key, &pcrs)?;
    Ok(Evidence {
        version: VERSION,
        nonce: crate::digest::hex(nonce),
        key: key.map(<[u8]>::to_vec),
        ak_public: q.ak_public.as_bytes().to_vec(),
        quote: q.attest,
        signature: q.signature,
        pcrs: q.pcr_values.iter().map(|(p, v)| (*p, v.hex())).collect(),
        eventlog,
        firmware_eventlog,
        report,
        descriptor,
    })
}

impl Evidence {
    /// Reads an evidence file, refusing another version.
    pub fn parse(bytes: &[u8]) -> Result<Evidence> {
        let e: Evidence = serde_json::from_slice(bytes).context("not an evidence file (stmgr attest quote)")?;
        if e.version != VERSION {
            bail!("evidence version {}; this stmgr reads version {VERSION}", e.version);
        }
        Ok(e)
    }

    /// The quote in it, as [`super::check_quote`] takes it.
    pub fn quote(&self) -> Result<Quote> {
        let ak_public = Public::parse(&self.ak_public).context("the evidence's ak_public")?;
        let mut pcr_values = Vec::with_capacity(self.pcrs.len());
        for (p, v) in &self.pcrs {
            let d = Sha256Digest::from_hex(v).with_context(|| format!("the evidence's PCR {p}: not 64 hex digits"))?;
            pcr_values.push((*p, d));
        }
        Ok(Quote { ak_public, attest: self.quote.clone(), signature: self.signature.clone(), pcr_values })
    }
}
