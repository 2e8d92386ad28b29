//! Keys and certificates for operators (`stmgr keygen`, `stmgr ospkg sign`).
//!
//! The certificate profile is upstream's: Ed25519 keys; subject and issuer CN are the
//! base64 SHA-256 of the raw public key; a root is self-signed with
//! basicConstraints cA=TRUE and keyUsage digitalSignature+keyCertSign; a leaf has
//! keyUsage digitalSignature, no basicConstraints and no extendedKeyUsage.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::{OsRng, RngCore};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyUsagePurpose, SerialNumber};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

pub mod agent;

/// A key that signs: a private key file, or ssh-agent holding the private half of
/// a public key file.
pub enum Key {
    Local(SigningKey),
    Agent(agent::AgentKey),
}

impl Key {
    pub fn public(&self) -> VerifyingKey {
        match self {
            Key::Local(k) => k.verifying_key(),
            Key::Agent(a) => *a.public(),
        }
    }

    /// Pure Ed25519 over `msg`.
    pub fn sign(&self, msg: &[u8]) -> Result<[u8; 64]> {
        match self {
            Key::Local(k) => Ok(k.sign(msg).to_bytes()),
            Key::Agent(a) => a.sign(msg),
        }
    }
}

/// Load a key to sign with: a private key file (PKCS#8 PEM or OpenSSH), or, as
/// upstream, a public key file (OpenSSH or PEM) whose private half ssh-agent holds.
pub fn load_key(path: &Path) -> Result<Key> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if text.contains("PRIVATE KEY-----") {
        return Ok(Key::Local(parse_signing_key(&text).with_context(|| format!("in {}", path.display()))?));
    }
    let public = parse_public_key(&text).with_context(|| format!("in {}", path.display()))?;
    Ok(Key::Agent(agent::AgentKey::find(public).with_context(|| format!("{}", path.display()))?))
}

/// A [`Key`] as rcgen's signer; keeps the reason when the agent fails (rcgen's
/// error cannot carry it).
struct CertSigner<'a> {
    key: &'a Key,
    public: [u8; 32],
    failure: std::sync::Mutex<Option<String>>,
}

impl<'a> CertSigner<'a> {
    fn new(key: &'a Key) -> Self {
        CertSigner { key, public: key.public().to_bytes(), failure: std::sync::Mutex::new(None) }
    }

    /// rcgen's error, or the agent's reason behind it.
    fn explain(&self, e: rcgen::Error) -> anyhow::Error {
        match self.failure.lock().ok().and_then(|mut f| f.take()) {
            Some(reason) => anyhow!("{reason}"),
            None => anyhow!("{e}"),
        }
    }
}

impl rcgen::PublicKeyData for CertSigner<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

impl rcgen::SigningKey for CertSigner<'_> {
    fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        self.key.sign(msg).map(|s| s.to_vec()).map_err(|e| {
            if let Ok(mut f) = self.failure.lock() {
                *f = Some(format!("{e:#}"));
            }
            rcgen::Error::RemoteKeyError
        })
    }
}

/// Default validity of a new root certificate (upstream's 72 hours made packages
/// "expire" three days after signing; see docs/operator-guide.md).
pub const DEFAULT_ROOT_VALIDITY_DAYS: i64 = 10 * 365;
/// Default validity of a new signing (leaf) certificate.
pub const DEFAULT_LEAF_VALIDITY_DAYS: i64 = 5 * 365;

/// Load an Ed25519 private key: PKCS#8 PEM (`PRIVATE KEY`, as stmgr and
/// `openssl genpkey -algorithm ed25519` write) or an unencrypted OpenSSH key.
pub fn load_signing_key(path: &Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_signing_key(&text).with_context(|| format!("in {}", path.display()))
}

pub fn parse_signing_key(text: &str) -> Result<SigningKey> {
    if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
        let k = ssh_key::PrivateKey::from_openssh(text).map_err(|e| anyhow!("not a valid OpenSSH private key: {e}"))?;
        if k.is_encrypted() {
            bail!("the OpenSSH key is encrypted; decrypt it first (ssh-keygen -p)");
        }
        let kp = k
            .key_data()
            .ed25519()
            .ok_or_else(|| anyhow!("the OpenSSH key is {}, expected ssh-ed25519", k.algorithm()))?;
        return Ok(SigningKey::from_bytes(&kp.private.to_bytes()));
    }
    if text.contains("-----BEGIN PRIVATE KEY-----") {
        return SigningKey::from_pkcs8_pem(text)
            .map_err(|e| anyhow!("not an Ed25519 PKCS#8 private key ({e}); only Ed25519 keys sign OS packages"));
    }
    bail!("expected a PEM \"PRIVATE KEY\" (PKCS#8) or \"OPENSSH PRIVATE KEY\" block")
}

/// PKCS#8 PEM text of a key: version 1, the private key alone (RFC 8410), as Go's
/// `x509.MarshalPKCS8PrivateKey` (upstream stmgr) and `openssl genpkey` write it.
/// (ed25519-dalek's own encoding adds the public key as PKCS#8 version 2, which
/// OpenSSL 3.0 cannot read.)
pub fn signing_key_pem(key: &SigningKey) -> Result<String> {
    use ed25519_dalek::pkcs8::{EncodePrivateKey, KeypairBytes};
    let v1 = KeypairBytes { secret_key: key.to_bytes(), public_key: None };
    Ok(v1.to_pkcs8_pem(Default::default()).map_err(|e| anyhow!("encoding key: {e}"))?.to_string())
}

/// Read a certificate file holding exactly one PEM CERTIFICATE block and nothing else;
/// returns the DER.
pub fn load_certificate(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (block, rest) = crate::pem::decode(&bytes)
        .with_context(|| format!("in {}", path.display()))?
        .ok_or_else(|| anyhow!("{}: no PEM block found, expected one CERTIFICATE", path.display()))?;
    if block.label != "CERTIFICATE" {
        bail!("{}: PEM block is {:?}, expected CERTIFICATE", path.display(), block.label);
    }
    if !rest.iter().all(|b| b.is_ascii_whitespace()) {
        bail!("{}: trailing data after the certificate, expected exactly one", path.display());
    }
    x509_parser::parse_x509_certificate(&block.der)
        .map_err(|e| anyhow!("{}: not a valid X.509 certificate: {e}", path.display()))?;
    Ok(block.der)
}

/// The raw Ed25519 public key of a certificate, if it has one.
pub fn certificate_ed25519_key(der: &[u8]) -> Option<[u8; 32]> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    let spki = c.public_key();
    if spki.algorithm.algorithm.to_id_string() != "1.3.101.112" {
        return None;
    }
    spki.subject_public_key.data.as_ref().try_into().ok()
}

/// Sign the archive digest: pure Ed25519 over the 32-byte SHA-256.
pub fn sign_digest(key: &SigningKey, digest: &crate::digest::Sha256Digest) -> [u8; 64] {
    key.sign(digest.as_bytes()).to_bytes()
}

/// A freshly generated key.
pub fn generate_key() -> SigningKey {
    SigningKey::generate(&mut OsRng)
}

/// Validity period of a new certificate.
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    pub fn from_args(from: Option<&str>, until: Option<&str>, default_days: i64) -> Result<Self> {
        let parse = |s: &str, flag: &str| {
            OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map_err(|e| anyhow!("-{flag} {s:?}: expected an RFC 3339 time like 2030-01-01T00:00:00Z ({e})"))
        };
        let not_before = match from {
            Some(s) => parse(s, "validFrom")?,
            None => OffsetDateTime::now_utc(),
        };
        let not_after = match until {
            Some(s) => parse(s, "validUntil")?,
            None => not_before + time::Duration::days(default_days),
        };
        if not_after <= not_before {
            bail!("-validUntil ({not_after}) must be after -validFrom ({not_before})");
        }
        Ok(Validity { not_before, not_after })
    }

    /// Refuses a window that has already ended: such a certificate is expired the
    /// moment it is written, and nothing it signs counts.
    pub fn check_not_over(&self, force: bool) -> Result<()> {
        let now = OffsetDateTime::now_utc();
        if self.not_after <= now && !force {
            bail!(
                "-validUntil {} has already passed: the certificate would be expired when written and nothing it signs would count; give a later -validUntil (or -force to write it anyway, e.g. for a test)",
                crate::text::utc_date(self.not_after.unix_timestamp())
            );
        }
        Ok(())
    }
}

/// The X.520 `pseudonym` attribute (2.5.4.65): the signer's readable name, beside
/// upstream's CN (the key hash), which is kept as it is.
pub const OID_PSEUDONYM: [u64; 4] = [2, 5, 4, 65];

/// A signer's name for `-name`: 1 to 64 printable characters.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        bail!("-name {name:?}: expected 1 to 64 printable characters, like alice or \"Build server 2\"");
    }
    Ok(())
}

fn params_for(key: &VerifyingKey, validity: &Validity, name: Option<&str>) -> Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let cn = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(key.as_bytes()));
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    if let Some(n) = name {
        check_name(n)?;
        p.distinguished_name.push(DnType::CustomDnType(OID_PSEUDONYM.to_vec()), rcgen::DnValue::Utf8String(n.into()));
    }
    p.not_before = validity.not_before;
    p.not_after = validity.not_after;
    let mut serial = [0u8; 16];
    OsRng.fill_bytes(&mut serial);
    serial[0] &= 0x7f; // positive and < 2^128, as upstream
    p.serial_number = Some(SerialNumber::from_slice(&serial));
    Ok(p)
}

/// A self-signed root certificate (PEM) for `key`.
pub fn root_certificate(key: &SigningKey, validity: &Validity) -> Result<String> {
    root_certificate_with(&Key::Local(key.clone()), validity, None)
}

/// A self-signed root certificate (PEM) for `key`, which may be in ssh-agent, with
/// the readable `name` if given.
pub fn root_certificate_with(key: &Key, validity: &Validity, name: Option<&str>) -> Result<String> {
    let mut p = params_for(&key.public(), validity, name)?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyCertSign];
    let signer = CertSigner::new(key);
    Ok(p.self_signed(&signer).map_err(|e| signer.explain(e))?.pem())
}

/// A leaf certificate (PEM) for `leaf_key`, issued by the root `root_der` whose key is `root_key`.
pub fn leaf_certificate(
    leaf_key: &SigningKey,
    root_der: &[u8],
    root_key: &SigningKey,
    validity: &Validity,
) -> Result<String> {
    leaf_certificate_for(&leaf_key.verifying_key(), root_der, &Key::Local(root_key.clone()), validity, None)
}

/// A leaf certificate (PEM) for the public key `leaf`, issued by the root `root_der`
/// whose key is `root_key` (the private half of `leaf` is not needed: it may live
/// elsewhere, say as a Sigsum submit key or in ssh-agent), with the readable `name`
/// if given.
pub fn leaf_certificate_for(
    leaf: &VerifyingKey,
    root_der: &[u8],
    root_key: &Key,
    validity: &Validity,
    name: Option<&str>,
) -> Result<String> {
    let root_pub = certificate_ed25519_key(root_der).ok_or_else(|| anyhow!("root certificate has no Ed25519 key"))?;
    if root_pub != *root_key.public().as_bytes() {
        bail!("the root key does not belong to the root certificate");
    }
    let mut p = params_for(leaf, validity, name)?;
    p.is_ca = IsCa::NoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.use_authority_key_identifier_extension = true;
    let signer = CertSigner::new(root_key);
    let issuer = Issuer::from_ca_cert_der(&root_der.to_vec().into(), &signer)
        .map_err(|e| anyhow!("reading the root certificate: {e}"))?;
    let spki = [&ED25519_SPKI_PREFIX[..], leaf.as_bytes()].concat();
    let leaf_spki = rcgen::SubjectPublicKeyInfo::from_der(&spki).map_err(|e| anyhow!("encoding the leaf key: {e}"))?;
    Ok(p.signed_by(&leaf_spki, &issuer).map_err(|e| signer.explain(e))?.pem())
}

/// What an operator should hear about a signing certificate's validity at `now`
/// (Unix seconds) before signing with it: expired, not yet valid, or expiring within
/// `warn_days`. `None` when it is fine or cannot be read (signing reports that).
pub fn validity_warning(der: &[u8], now: i64, warn_days: i64) -> Option<String> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    let (from, until) = (c.validity().not_before.timestamp(), c.validity().not_after.timestamp());
    let date = crate::text::utc_date;
    if until < now {
        Some(format!(
            "the certificate expired on {}: signatures by it do not count; issue a new one (stmgr keygen certificate) and sign with it",
            date(until)
        ))
    } else if from > now {
        Some(format!(
            "the certificate is not valid before {}: signatures by it do not count until then (or the clock here is behind)",
            date(from)
        ))
    } else if until - now < warn_days * 86_400 {
        Some(format!(
            "the certificate expires on {} (in {} days): packages signed with it stop counting its signature then; issue a new one and sign again before that",
            date(until),
            (until - now) / 86_400
        ))
    } else {
        None
    }
}

/// DER SubjectPublicKeyInfo of an Ed25519 key, up to the 32 key bytes (RFC 8410).
const ED25519_SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// Load the Ed25519 public key a certificate is to be issued for: a public key
/// (OpenSSH `ssh-ed25519 ...` as ssh-keygen and sigsum-key write, or PEM
/// `PUBLIC KEY`), as upstream's `-leafKey` takes; or a private key, whose public
/// half is used (an addition of stboot-rs).
pub fn load_public_key(path: &Path) -> Result<VerifyingKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_public_key(&text).with_context(|| format!("in {}", path.display()))
}

pub fn parse_public_key(text: &str) -> Result<VerifyingKey> {
    let trimmed = text.trim();
    if !trimmed.is_empty() && !trimmed.contains("-----BEGIN") && !trimmed.contains('\n') {
        let algorithm = trimmed.split_whitespace().next().unwrap_or("");
        if algorithm != "ssh-ed25519" {
            bail!("the OpenSSH public key is {algorithm:?}, expected ssh-ed25519 (only Ed25519 keys sign OS packages), or PEM \"PUBLIC KEY\"");
        }
        let k =
            ssh_key::PublicKey::from_openssh(trimmed).map_err(|e| anyhow!("not a valid OpenSSH public key: {e}"))?;
        let ed = k
            .key_data()
            .ed25519()
            .ok_or_else(|| anyhow!("the OpenSSH key is {}, expected ssh-ed25519", k.algorithm()))?;
        return VerifyingKey::from_bytes(&ed.0).map_err(|e| anyhow!("invalid Ed25519 key: {e}"));
    }
    if text.contains("-----BEGIN PUBLIC KEY-----") {
        use ed25519_dalek::pkcs8::DecodePublicKey;
        return VerifyingKey::from_public_key_pem(text)
            .map_err(|e| anyhow!("not an Ed25519 public key ({e}); only Ed25519 keys sign OS packages"));
    }
    if text.contains("PRIVATE KEY-----") {
        return Ok(parse_signing_key(text)?.verifying_key());
    }
    bail!("expected an Ed25519 public key (OpenSSH \"ssh-ed25519 ...\" or PEM \"PUBLIC KEY\") or private key")
}

/// DER of a PEM certificate made by this module.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>> {
    Ok(crate::pem::decode(pem.as_bytes())?.ok_or_else(|| anyhow!("no PEM block"))?.0.der)
}

/// Subject and expiry of a certificate, for logs and summaries.
pub fn describe_certificate(der: &[u8]) -> String {
    use x509_parser::prelude::FromDer;
    match x509_parser::certificate::X509Certificate::from_der(der) {
        Ok((_, c)) => {
            format!("{} (valid until {})", crate::text::printable(&c.subject().to_string()), c.validity().not_after)
        }
        Err(e) => format!("<unparsable certificate: {e}>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::hex;

    /// Upstream stmgr's key test vector, and a signature made by `openssl pkeyutl
    /// -sign -rawin` with that key (Ed25519 is deterministic, so it is a known answer).
    #[test]
    fn known_answer_upstream_key_and_openssl_signature() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIKrt4aIojIpXfdmw2aVWHNCNGZDvDSL+t1CI6STXjh7F\n-----END PRIVATE KEY-----\n";
        let k = parse_signing_key(pem).unwrap();
        assert_eq!(
            hex(k.verifying_key().as_bytes()),
            "aabdeccc316b5a0f2fc76f39a445d5e901973c75ff8d5485457674e49e60850f"
        );
        let digest = crate::digest::Sha256Digest::of(b"stboot-rs known answer");
        assert_eq!(digest.hex(), "3647fccf2887682284ff63824ef312d2de315380988127fd4684d8c98fb602be");
        assert_eq!(
            hex(&sign_digest(&k, &digest)),
            "f4b69a6b166d50844685d8d53e8f20a0b6141647450a8cd5fd8a7b87363497f7f82950e098a6bb55e97d486d257ca0105f034a695cf51accf2037154c57f6605"
        );
    }

    #[test]
    fn key_errors() {
        let e = parse_signing_key("hello").unwrap_err().to_string();
        assert!(e.contains("expected a PEM"), "{e}");
        let rsa_like = crate::pem::encode("PRIVATE KEY", &[0x30, 0x03, 0x02, 0x01, 0x00]);
        assert!(parse_signing_key(&rsa_like).unwrap_err().to_string().contains("Ed25519"));
    }
}
