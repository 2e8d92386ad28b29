//! Evidence of what a machine booted, that someone outside it can check (issue 20;
//! in progress): the booted OS makes a TPM quote over stboot's and the firmware's
//! PCRs with the verifier's nonce (and, optionally, a server key it vouches for),
//! signed by the attestation key ([`crate::tpm::object::ak_template`]); a verifier
//! checks the quote's signature, its nonce and key binding, and that the quoted
//! PCRs are those the handed-over event logs replay to.
//!
//! Done so far: making the AK and the quote ([`make_quote`]), reading a quote
//! ([`quote::Attest`]) and checking it ([`check_quote`]); the verifier's half of the
//! AK enrolment ([`credential::make_credential`]; the TPM's half is
//! [`crate::tpm::Tpm::activate_credential`]) and the enrolment around it
//! ([`enrol`]); the evidence file ([`evidence`]). To come: `stmgr attest verify`
//! with the event log replay and the package checks of the verdict.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::digest::Sha256Digest;
use crate::tpm::object::{ak_template, Public};
use crate::tpm::{Tpm, TPM_RH_ENDORSEMENT};

pub mod appraise;
pub mod credential;
pub mod enrol;
pub mod evidence;
pub mod quote;

use quote::Attest;

/// The firmware's PCRs (0-7), quoted with stboot's.
pub const FIRMWARE_PCRS: std::ops::RangeInclusive<u32> = 0..=7;

/// The qualifying data of a quote: SHA-256(nonce || key). The key (e.g. a
/// WireGuard public key file, its bytes exactly) is what the quote vouches for:
/// a verifier who gave the nonce learns that this key is on the machine that made
/// the quote.
pub fn qualifying_data(nonce: &[u8], key: Option<&[u8]>) -> Sha256Digest {
    let mut h = Sha256::new();
    h.update(nonce);
    h.update(key.unwrap_or_default());
    Sha256Digest::from_bytes(h.finalize().into())
}

/// A verifier's nonce, given in hex: 8 to 64 bytes (a fresh random 32 is right:
/// `openssl rand -hex 32`).
pub fn nonce_from_hex(text: &str) -> Result<Vec<u8>, String> {
    let t = text.trim();
    if t.len() % 2 != 0 || !t.is_ascii() {
        return Err(format!("the nonce {t:?} is not hex (an even number of hex digits)"));
    }
    match crate::digest::unhex(t) {
        None => Err(format!("the nonce {t:?} is not hex")),
        Some(b) if !(8..=64).contains(&b.len()) => {
            Err(format!("the nonce is {} bytes; give 8 to 64 (openssl rand -hex 32)", b.len()))
        }
        Some(b) => Ok(b),
    }
}

/// A quote as the TPM made it, with the AK that signed it and the PCR values it
/// covers (read right after the quote; the verifier checks them against the
/// quote's digest).
#[derive(Debug, Clone)]
pub struct Quote {
    pub ak_public: Public,
    pub attest: Vec<u8>,
    pub signature: Vec<u8>,
    pub pcr_values: Vec<(u32, Sha256Digest)>,
}

/// The AK (made again from its template: the same key each time) quotes `pcrs`
/// over SHA-256(nonce || key).
pub fn make_quote(tpm: &mut Tpm, nonce: &[u8], key: Option<&[u8]>, pcrs: &[u32]) -> Result<Quote> {
    let ak = tpm.create_primary(TPM_RH_ENDORSEMENT, &ak_template()).context("making the AK (CreatePrimary)")?;
    let quoted = tpm.quote(ak.handle, qualifying_data(nonce, key).as_bytes(), pcrs).context("TPM2_Quote");
    let flushed = tpm.flush(ak.handle);
    let (attest, signature) = quoted?;
    flushed.context("flushing the AK")?;
    let mut pcr_values = Vec::with_capacity(pcrs.len());
    for &p in pcrs {
        pcr_values.push((p, tpm.read_pcr(p).with_context(|| format!("reading PCR {p}"))?));
    }
    Ok(Quote { ak_public: ak.public, attest, signature, pcr_values })
}

/// Why a quote is not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuoteFailure {
    /// The quote or its signature could not be read.
    Malformed(String),
    /// The AK is not one a quote can be trusted from (not restricted, not fixed to
    /// its TPM), or the quote is not signed by it.
    Signature(String),
    /// The quote was made for another nonce or key: stale, replayed, or for
    /// someone else.
    Binding,
    /// The AK is not a primary key of the endorsement hierarchy.
    Signer,
    /// The PCR values given are not those quoted.
    Pcrs(String),
}

impl std::fmt::Display for QuoteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QuoteFailure::Malformed(e) => write!(f, "the quote cannot be read: {e}"),
            QuoteFailure::Signature(e) => write!(f, "{e}"),
            QuoteFailure::Binding => f.write_str(
                "the quote was made for another nonce or key (a replayed or stale quote, or the wrong key file)",
            ),
            QuoteFailure::Signer => {
                f.write_str("the quote's signer is not this AK as a key of the endorsement hierarchy")
            }
            QuoteFailure::Pcrs(e) => write!(f, "{e}"),
        }
    }
}

/// Checks `q` against the verifier's `nonce` and `key`: the AK's attributes, its
/// signature, the qualifying data, the signer's hierarchy and that `q`'s PCR
/// values are the quoted ones. The checked quote.
pub fn check_quote(q: &Quote, nonce: &[u8], key: Option<&[u8]>) -> Result<Attest, QuoteFailure> {
    use crate::tpm::object::AK_REQUIRED;
    if q.ak_public.attributes & AK_REQUIRED != AK_REQUIRED {
        return Err(QuoteFailure::Signature(format!(
            "the AK's attributes 0x{:08x} lack fixedTPM, fixedParent, sensitiveDataOrigin, restricted or sign: \
             its signature proves nothing about a TPM",
            q.ak_public.attributes
        )));
    }
    quote::check_signature(&q.ak_public, &q.attest, &q.signature).map_err(QuoteFailure::Signature)?;
    let a = Attest::parse(&q.attest).map_err(|e| QuoteFailure::Malformed(e.to_string()))?;
    if a.extra_data != qualifying_data(nonce, key).as_bytes() {
        return Err(QuoteFailure::Binding);
    }
    if q.ak_public.qualified_name_as_primary(TPM_RH_ENDORSEMENT).ok().as_deref() != Some(&a.qualified_signer[..]) {
        return Err(QuoteFailure::Signer);
    }
    let given: Vec<u32> = q.pcr_values.iter().map(|(p, _)| *p).collect();
    if given != a.pcrs {
        return Err(QuoteFailure::Pcrs(format!("values are given for PCRs {given:?}, the quote covers {:?}", a.pcrs)));
    }
    let values: Vec<Sha256Digest> = q.pcr_values.iter().map(|(_, v)| *v).collect();
    if quote::pcr_digest(&values).as_bytes() != &a.pcr_digest[..] {
        return Err(QuoteFailure::Pcrs("the PCR values given are not the values quoted".into()));
    }
    Ok(a)
}

/// Bytes as standard base64 strings in the JSON files of attestation.
pub(crate) mod b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s.trim()).map_err(|e| serde::de::Error::custom(format!("not base64: {e}")))
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(b: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
            match b {
                Some(b) => super::serialize(b, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
            match Option::<String>::deserialize(d)? {
                Some(s) => STANDARD
                    .decode(s.trim())
                    .map(Some)
                    .map_err(|e| serde::de::Error::custom(format!("not base64: {e}"))),
                None => Ok(None),
            }
        }
    }
}
