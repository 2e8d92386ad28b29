//! AK enrolment: how a verifier comes to trust a machine's attestation key.
//!
//! Who must trust what: the verifier trusts the TPM vendor's EK CA (every
//! certificate given as an EK CA is trusted to certify EKs), or a list of EK public
//! keys the operator published. Nothing else: not the machine, not its OS, not the
//! network. The flow proves that the AK lives in the TPM whose EK is trusted:
//!
//! 1. machine, [`request`]: reads the EK certificate from NV index 0x01c00002,
//!    makes the EK (template L-1, the key the certificate certifies) and the AK;
//!    the [`Request`] carries the certificate and both public areas;
//! 2. verifier, [`challenge`]: checks the EK certificate against the EK CAs (or the
//!    EK against the list) and that the AK is a restricted signing key fixed to its
//!    TPM, then seals a random secret to that EK and the AK's Name
//!    ([`super::credential::make_credential`]); the [`Pending`] state with the
//!    secret stays with the verifier;
//! 3. machine, [`activate`]: the TPM releases the secret only if it holds that EK
//!    and an object with that Name (TPM2_ActivateCredential);
//! 4. verifier, [`finish`]: the secret came back, so the AK is that TPM's; the
//!    [`Enrolment`] record (no secret in it) can be published beside the package.
//!
//! Because the AK is a primary key made from a fixed template, the machine needs
//! no storage: it makes the same AK at every boot, until its TPM is cleared of its
//! endorsement seed (which changes the EK too, and needs a new enrolment).

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use x509_parser::prelude::*;

use super::b64;
use crate::digest::Sha256Digest;
use crate::tpm::object::{ak_template, ek_rsa_template, Key, Public, AK_REQUIRED};
use crate::tpm::{Tpm, EK_CERT_RSA_NV_INDEX, TPM_RH_ENDORSEMENT};

pub const VERSION: u32 = 1;

/// Step 1's output, from the machine to the verifier.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub version: u32,
    /// The EK certificate (DER) from NV index 0x01c00002, when the TPM has one.
    #[serde(with = "b64::option", default)]
    pub ek_certificate: Option<Vec<u8>>,
    /// The EK's TPMT_PUBLIC.
    #[serde(with = "b64")]
    pub ek_public: Vec<u8>,
    /// The AK's TPMT_PUBLIC.
    #[serde(with = "b64")]
    pub ak_public: Vec<u8>,
}

/// Step 2's output, from the verifier to the machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Challenge {
    pub version: u32,
    /// The Name of the AK the secret is sealed to (hex).
    pub ak_name: String,
    #[serde(with = "b64")]
    pub credential_blob: Vec<u8>,
    #[serde(with = "b64")]
    pub encrypted_secret: Vec<u8>,
}

/// What the verifier keeps between steps 2 and 4. Holds the secret: keep it
/// private.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub version: u32,
    pub request: Request,
    #[serde(with = "b64")]
    pub secret: Vec<u8>,
    /// Why the EK is trusted, in words (for the record).
    pub ek_trusted_by: String,
}

/// Step 3's output, from the machine to the verifier.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    pub version: u32,
    #[serde(with = "b64")]
    pub secret: Vec<u8>,
}

/// The enrolment record: this AK is in the TPM with this EK. Public.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolment {
    pub version: u32,
    /// The AK's TPMT_PUBLIC: what quotes are checked with.
    #[serde(with = "b64")]
    pub ak_public: Vec<u8>,
    /// The AK's Name (hex).
    pub ak_name: String,
    /// SHA-256 of the EK's TPMT_PUBLIC (hex).
    pub ek_public_sha256: String,
    /// SHA-256 of the EK certificate (DER, hex), when there was one.
    pub ek_certificate_sha256: Option<String>,
    pub ek_trusted_by: String,
}

impl Enrolment {
    /// The enrolled AK.
    pub fn ak(&self) -> Result<Public> {
        Public::parse(&self.ak_public).context("the enrolment's ak_public")
    }
}

/// Step 1, on the machine.
pub fn request(tpm: &mut Tpm) -> Result<Request> {
    let ek_certificate = match tpm.nv_size(EK_CERT_RSA_NV_INDEX)? {
        Some(size) => {
            let nv = tpm.nv_read(EK_CERT_RSA_NV_INDEX, size).context("reading the EK certificate")?;
            Some(strip_nv_padding(&nv).to_vec())
        }
        None => None,
    };
    let (ek, ak) = make_keys(tpm)?;
    if let Some(cert) = &ek_certificate {
        if !certifies(cert, &ek)? {
            bail!(
                "the EK certificate in NV index 0x{EK_CERT_RSA_NV_INDEX:08x} certifies another key than the EK \
                 this TPM makes with the EK Credential Profile's template L-1"
            );
        }
    }
    Ok(Request {
        version: VERSION,
        ek_certificate,
        ek_public: ek.as_bytes().to_vec(),
        ak_public: ak.as_bytes().to_vec(),
    })
}

/// The EK and the AK, made from their templates (and flushed again).
fn make_keys(tpm: &mut Tpm) -> Result<(Public, Public)> {
    let ek = tpm.create_primary(TPM_RH_ENDORSEMENT, &ek_rsa_template()).context("making the EK")?;
    tpm.flush(ek.handle)?;
    let ak = tpm.create_primary(TPM_RH_ENDORSEMENT, &ak_template()).context("making the AK")?;
    tpm.flush(ak.handle)?;
    Ok((ek.public, ak.public))
}

/// What makes the verifier trust an EK.
#[derive(Debug, Default, Clone)]
pub struct EkTrust {
    /// EK CA certificates (DER), each trusted to certify EKs.
    pub cas: Vec<Vec<u8>>,
    /// SHA-256 of trusted EK public areas (TPMT_PUBLIC), as the operator lists them.
    pub ek_publics: Vec<Sha256Digest>,
}

/// Step 2, at the verifier: checks the request and seals a fresh secret to it.
pub fn challenge(
    req: &Request,
    trust: &EkTrust,
    now_unix: i64,
    rng: &mut impl rsa::rand_core::CryptoRngCore,
) -> Result<(Challenge, Pending)> {
    let ek = Public::parse(&req.ek_public).context("the request's ek_public")?;
    let ak = Public::parse(&req.ak_public).context("the request's ak_public")?;
    if ak.attributes & AK_REQUIRED != AK_REQUIRED {
        bail!(
            "the AK's attributes 0x{:08x} lack fixedTPM, fixedParent, sensitiveDataOrigin, restricted or sign",
            ak.attributes
        );
    }
    ak.p256_point().context("the AK")?;
    let ek_trusted_by = ek_trusted_by(req, &ek, trust, now_unix)?;
    let mut secret = vec![0u8; 32];
    rng.fill_bytes(&mut secret);
    let name = ak.name()?;
    let c = super::credential::make_credential(&ek, &name, &secret, rng).map_err(anyhow::Error::msg)?;
    let challenge = Challenge {
        version: VERSION,
        ak_name: crate::digest::hex(&name),
        credential_blob: c.blob,
        encrypted_secret: c.secret,
    };
    Ok((challenge, Pending { version: VERSION, request: req.clone(), secret, ek_trusted_by }))
}

fn ek_trusted_by(req: &Request, ek: &Public, trust: &EkTrust, now_unix: i64) -> Result<String> {
    let ek_sha = Sha256Digest::of(&req.ek_public);
    if trust.ek_publics.contains(&ek_sha) {
        return Ok(format!("EK public sha256:{} is in the list of trusted EKs", ek_sha.hex()));
    }
    let Some(cert) = &req.ek_certificate else {
        bail!("the TPM has no EK certificate and its EK (sha256:{}) is not in the list of trusted EKs", ek_sha.hex());
    };
    if trust.cas.is_empty() {
        bail!("the EK (sha256:{}) is not in the list of trusted EKs, and no EK CA was given", ek_sha.hex());
    }
    let (_, c) = X509Certificate::from_der(cert).map_err(|e| anyhow::anyhow!("the EK certificate: {e}"))?;
    if !certifies(cert, ek)? {
        bail!("the EK certificate certifies another key than the request's EK");
    }
    let now = ASN1Time::from_timestamp(now_unix).map_err(|e| anyhow::anyhow!("bad time {now_unix}: {e}"))?;
    if !c.validity().is_valid_at(now) {
        bail!("the EK certificate is not valid now (valid {} to {})", c.validity().not_before, c.validity().not_after);
    }
    for der in &trust.cas {
        let Ok((_, ca)) = X509Certificate::from_der(der) else { continue };
        if ca.subject() == c.issuer() && c.verify_signature(Some(ca.public_key())).is_ok() {
            if !ca.validity().is_valid_at(now) {
                bail!("the EK CA {} is not valid now", ca.subject());
            }
            return Ok(format!("EK certificate {} issued by EK CA {}", c.subject(), ca.subject()));
        }
    }
    bail!(
        "the EK certificate's issuer ({}) is not among the EK CAs given, or its signature does not verify",
        c.issuer()
    )
}

/// Step 3, on the machine: the TPM opens the challenge if it is for its EK and AK.
pub fn activate(tpm: &mut Tpm, challenge: &Challenge) -> Result<Answer> {
    let ek = tpm.create_primary(TPM_RH_ENDORSEMENT, &ek_rsa_template()).context("making the EK")?;
    let ak = tpm.create_primary(TPM_RH_ENDORSEMENT, &ak_template()).context("making the AK");
    let result = ak.and_then(|ak| {
        let r = if crate::digest::hex(&ak.public.name()?) != challenge.ak_name {
            Err(anyhow::anyhow!("this TPM's AK is not the AK the challenge is for (another machine's challenge?)"))
        } else {
            tpm.activate_credential(ak.handle, ek.handle, &challenge.credential_blob, &challenge.encrypted_secret)
                .context("the TPM refused the challenge: it was not made for this TPM's EK and AK")
        };
        let _ = tpm.flush(ak.handle);
        r
    });
    let _ = tpm.flush(ek.handle);
    Ok(Answer { version: VERSION, secret: result? })
}

/// Step 4, at the verifier.
pub fn finish(pending: &Pending, answer: &Answer) -> Result<Enrolment> {
    if !subtle_eq(&pending.secret, &answer.secret) {
        bail!("the answer's secret is not the one sealed to the EK: the AK is not enrolled");
    }
    let ak = Public::parse(&pending.request.ak_public)?;
    Ok(Enrolment {
        version: VERSION,
        ak_public: pending.request.ak_public.clone(),
        ak_name: crate::digest::hex(&ak.name()?),
        ek_public_sha256: Sha256Digest::of(&pending.request.ek_public).hex(),
        ek_certificate_sha256: pending.request.ek_certificate.as_deref().map(|c| Sha256Digest::of(c).hex()),
        ek_trusted_by: pending.ek_trusted_by.clone(),
    })
}

/// Equal in time independent of where the bytes differ.
fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the certificate `der` is for the RSA key of `ek`.
fn certifies(der: &[u8], ek: &Public) -> Result<bool> {
    Ok(rsa_modulus_of_certificate(der)? == trim_zeros(rsa_modulus(ek)?))
}

fn rsa_modulus(p: &Public) -> Result<&[u8]> {
    match &p.key {
        Key::Rsa { modulus, .. } => Ok(modulus),
        Key::Ecc { .. } => bail!("the EK is not an RSA key"),
    }
}

fn rsa_modulus_of_certificate(der: &[u8]) -> Result<Vec<u8>> {
    let (_, c) = X509Certificate::from_der(der).map_err(|e| anyhow::anyhow!("the EK certificate: {e}"))?;
    match c.public_key().parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(k)) => Ok(trim_zeros(k.modulus).to_vec()),
        _ => bail!("the EK certificate's key is not RSA"),
    }
}

fn trim_zeros(b: &[u8]) -> &[u8] {
    &b[b.iter().position(|&x| x != 0).unwrap_or(b.len())..]
}

/// NV indices are often larger than the certificate: the DER's own length says
/// where it ends.
fn strip_nv_padding(nv: &[u8]) -> &[u8] {
    match X509Certificate::from_der(nv) {
        Ok((rest, _)) => &nv[..nv.len() - rest.len()],
        Err(_) => nv,
    }
}
