//! Signature verification: is this OS package signed by enough of the keys the owner
//! trusts? One implementation, used by stboot before it boots and by `stmgr ospkg verify`.
//!
//! Rules (docs/formats.md has the reasoning):
//! * the message is the 32-byte SHA-256 digest of the exact archive bytes, signed with
//!   pure Ed25519 and checked with `verify_strict`; signature *i* pairs with certificate *i*;
//! * a certificate counts if it is one of the roots, or is issued directly by one; a
//!   root must be a CA and, if it has keyUsage, allow keyCertSign; leaf and root must be
//!   within their validity periods; an extendedKeyUsage, where present, must allow
//!   codeSigning, serverAuth or anyExtendedKeyUsage; unknown critical extensions,
//!   SHA-1 and MD5 certificate signatures are refused; the leaf key must be Ed25519;
//! * signers are counted once per distinct public key.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use ed25519_dalek::{Signature, VerifyingKey};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{ASN1Time, FromDer};

use crate::digest::Sha256Digest;
use crate::ospkg::package::{ArchiveData, Unverified};
use crate::ospkg::{Descriptor, Manifest};

pub mod sigsum;

const OID_ED25519: &str = "1.3.101.112";
/// Certificate signature algorithms accepted (those Go's crypto/x509 verifies by
/// default, without SHA-1): an allowlist, so SHA-1 or MD5 under any OID (such as
/// OIW's 1.3.14.3.2.29) is refused.
const SIG_ALGS: [(&str, &str); 8] = [
    ("1.3.101.112", "Ed25519"),
    ("1.2.840.10045.4.3.2", "ecdsa-with-SHA256"),
    ("1.2.840.10045.4.3.3", "ecdsa-with-SHA384"),
    ("1.2.840.10045.4.3.4", "ecdsa-with-SHA512"),
    ("1.2.840.113549.1.1.11", "sha256WithRSAEncryption"),
    ("1.2.840.113549.1.1.12", "sha384WithRSAEncryption"),
    ("1.2.840.113549.1.1.13", "sha512WithRSAEncryption"),
    ("1.2.840.113549.1.1.10", "RSASSA-PSS"),
];

/// How many valid, distinct signers a package needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threshold {
    /// At least this many (the trust policy's `ospkg_signature_threshold`).
    AtLeast(u32),
    /// Every signature present must be valid, and there must be at least one
    /// (`stmgr ospkg verify -rootCerts`).
    All,
}

/// Why one signature counted or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// Valid, but by a key that already counted (signature index given).
    Duplicate {
        of: usize,
    },
    /// The certificate could not be decoded.
    MalformedCertificate(String),
    /// The certificate is not trusted by the configured roots.
    UntrustedCertificate(Untrusted),
    /// The certificate's key is not Ed25519.
    UnsupportedKey(String),
    /// The signature does not verify under the certificate's key.
    BadSignature(String),
    /// A Sigsum proof that does not verify (or cannot: no Sigsum policy).
    BadProof(String),
    /// The certificate or its key is listed in `ospkg_revoked_signers` (which entry,
    /// in words).
    Revoked(String),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Valid => f.write_str("valid"),
            Verdict::Duplicate { of } => write!(f, "not counted: same signing key as signature {of}"),
            Verdict::MalformedCertificate(m) => write!(f, "not counted: malformed certificate: {m}"),
            Verdict::UntrustedCertificate(m) => write!(f, "not counted: untrusted certificate: {m}"),
            Verdict::UnsupportedKey(m) => write!(f, "not counted: {m}"),
            Verdict::BadSignature(m) => write!(f, "not counted: bad signature: {m}"),
            Verdict::BadProof(m) => write!(f, "not counted: bad Sigsum proof: {m}"),
            Verdict::Revoked(m) => write!(f, "not counted: revoked: {m}"),
        }
    }
}

/// Why a certificate is not trusted: the kind decides the remedy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untrusted {
    pub kind: UntrustedKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UntrustedKind {
    /// Its issuer is none of the machine's signing roots.
    UnknownIssuer,
    /// The certificate, or the root it chains to, has expired.
    Expired,
    /// Not valid yet: a clock behind, or a certificate dated ahead.
    NotYetValid,
    /// Anything else (key usage, algorithm, a signature that does not verify).
    Other,
}

impl Untrusted {
    fn new(kind: UntrustedKind, message: String) -> Self {
        Self { kind, message }
    }
}

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a signature entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    /// A 64-byte Ed25519 signature (or something that is not a proof).
    Plain,
    /// A Sigsum proof; what it said when it verified.
    Proof(Option<sigsum::ProofSummary>),
}

/// The outcome for one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureCheck {
    pub index: usize,
    /// The certificate's subject, when it could be read.
    pub signer: Option<String>,
    /// SHA-256 of the certificate (DER), when it could be decoded.
    pub certificate_sha256: Option<Sha256Digest>,
    pub form: Form,
    pub verdict: Verdict,
    /// The signing root (its place in the roots given) that issued the certificate,
    /// when the chain was checked and held.
    pub root: Option<usize>,
    /// When the signature stops counting (Unix seconds): the earlier of the
    /// certificate's and its root's notAfter; for a chain that held.
    pub expires: Option<i64>,
}

/// What a package is checked against: the signing roots (DER), for Sigsum proofs
/// the Sigsum policy (`ospkg_trust_policy`), the revoked signers
/// (`ospkg_revoked_signers`) and the lowest version to accept
/// (`ospkg_min_version`).
#[derive(Debug, Clone, Copy)]
pub struct Anchors<'a> {
    pub roots: &'a [Vec<u8>],
    pub sigsum_policy: Option<&'a sigsum::Policy>,
    pub revoked: Option<&'a crate::config::trust_policy::Revocations>,
    pub min_version: u64,
    /// The TPM floor ([`crate::tpm::floor`]), when the trust policy asks for it
    /// and the machine has one.
    pub tpm_floor: Option<u64>,
    /// The UEFI `db` certificates (DER) a UKI package's Secure Boot signature must
    /// verify against (`ospkg_uki_db.pem`); with them, only such packages pass.
    pub uki_db: Option<&'a [Vec<u8>]>,
}

impl Anchors<'_> {
    /// The lowest version that boots and where that floor comes from: the higher of
    /// the trust policy's and the TPM's.
    pub fn floor(&self) -> (u64, &'static str) {
        match self.tpm_floor {
            Some(t) if t > self.min_version => (t, "the TPM floor, NV index 0x01420002"),
            _ => (self.min_version, "trust_policy.json ospkg_min_version"),
        }
    }
}

impl<'a> From<&'a crate::config::TrustConfig> for Anchors<'a> {
    /// What OS package signatures are checked against under a trust policy directory.
    fn from(t: &'a crate::config::TrustConfig) -> Self {
        Anchors {
            roots: &t.signing_roots,
            sigsum_policy: t.sigsum_policy.as_ref().map(|p| &p.policy),
            revoked: t.revoked.as_deref(),
            min_version: t.policy.min_version(),
            tpm_floor: None,
            uki_db: t.uki_db.as_ref().map(|d| d.certificates.as_slice()),
        }
    }
}

impl<'a> From<&'a [Vec<u8>]> for Anchors<'a> {
    fn from(roots: &'a [Vec<u8>]) -> Self {
        Anchors { roots, sigsum_policy: None, revoked: None, min_version: 0, tpm_floor: None, uki_db: None }
    }
}

impl<'a, const N: usize> From<&'a [Vec<u8>; N]> for Anchors<'a> {
    fn from(roots: &'a [Vec<u8>; N]) -> Self {
        Anchors { roots, sigsum_policy: None, revoked: None, min_version: 0, tpm_floor: None, uki_db: None }
    }
}

impl<'a> From<&'a Vec<Vec<u8>>> for Anchors<'a> {
    fn from(roots: &'a Vec<Vec<u8>>) -> Self {
        Anchors { roots, sigsum_policy: None, revoked: None, min_version: 0, tpm_floor: None, uki_db: None }
    }
}

/// The outcome of a verification: what was found, what counted, and the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub found: usize,
    pub valid: usize,
    pub threshold: Threshold,
    pub checks: Vec<SignatureCheck>,
}

impl Report {
    pub fn accepted(&self) -> bool {
        match self.threshold {
            Threshold::AtLeast(n) => self.valid >= n as usize,
            Threshold::All => self.found > 0 && self.valid == self.found,
        }
    }

    pub fn required(&self) -> String {
        match self.threshold {
            Threshold::AtLeast(n) => n.to_string(),
            Threshold::All => format!("all ({})", self.found.max(1)),
        }
    }

    /// When the package stops meeting its threshold because certificates expire
    /// (Unix seconds), and the signer whose expiry does it: `None` when it does not
    /// meet it now.
    pub fn threshold_met_until(&self) -> Option<(i64, Option<&str>)> {
        if !self.accepted() {
            return None;
        }
        let mut valid: Vec<(i64, Option<&str>)> = self
            .checks
            .iter()
            .filter(|c| c.verdict == Verdict::Valid)
            .map(|c| (c.expires.unwrap_or(i64::MAX), c.signer.as_deref()))
            .collect();
        valid.sort();
        // the package falls below the threshold when the (valid - threshold + 1)th
        // signer expires; with "all", at the first
        let at = match self.threshold {
            Threshold::AtLeast(n) => self.valid.checked_sub(n as usize)?,
            Threshold::All => 0,
        };
        valid.get(at).copied()
    }

    /// One line: `Signatures: 3 found, 2 valid, 2 required`.
    pub fn summary(&self) -> String {
        format!("Signatures: {} found, {} valid, {} required", self.found, self.valid, self.required())
    }
}

impl Report {
    /// One line per signature, but at most `per_kind` lines for each kind of verdict
    /// (a descriptor with 10,000 signatures must not flood a serial console); the
    /// rest are counted in one line per kind. Signer names are escaped.
    pub fn lines(&self, per_kind: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut shown: Vec<(std::mem::Discriminant<Verdict>, usize, usize)> = Vec::new();
        for c in &self.checks {
            let kind = std::mem::discriminant(&c.verdict);
            let slot = match shown.iter().position(|(k, _, _)| *k == kind) {
                Some(i) => i,
                None => {
                    shown.push((kind, 0, c.index));
                    shown.len() - 1
                }
            };
            shown[slot].1 += 1;
            if shown[slot].1 <= per_kind {
                let who = c.signer.as_deref().map(printable).unwrap_or_else(|| "?".into());
                let (form, detail) = match &c.form {
                    Form::Plain => ("signature", String::new()),
                    Form::Proof(None) => ("Sigsum proof", String::new()),
                    Form::Proof(Some(p)) => ("Sigsum proof", format!(" ({})", printable(&p.to_string()))),
                };
                out.push(format!(
                    "signature {} ({form} by {who}): {}{detail}",
                    c.index,
                    printable(&c.verdict.to_string())
                ));
            }
        }
        for (_, n, first) in shown {
            if n > per_kind {
                let like = self.checks.iter().find(|c| c.index == first).map(|c| c.verdict.kind()).unwrap_or("");
                out.push(format!("... and {} more signatures like signature {first} ({like})", n - per_kind));
            }
        }
        out.push(self.summary());
        out
    }
}

impl Verdict {
    /// What the operator can do about a signature that did not count.
    pub fn remedy(&self) -> &'static str {
        match self {
            Verdict::Valid => "nothing",
            Verdict::Duplicate { .. } => "a key counts once: sign with another key of a different certificate",
            Verdict::MalformedCertificate(_) => "the certificate in the descriptor is damaged: sign the package again",
            Verdict::UntrustedCertificate(u) => match u.kind {
                UntrustedKind::UnknownIssuer => "the signer's root is not in this machine's /etc/trust_policy/ospkg_signing_root.pem: add that root to the trust policy and rebuild the initramfs (stmgr initramfs build -trustPolicy DIR), or sign with a certificate issued by a root the machine has",
                UntrustedKind::Expired => "the certificate (or its root) has expired: issue a new one (stmgr keygen certificate -rootCert ROOT -rootKey KEY) and sign the package again",
                UntrustedKind::NotYetValid => "the certificate is not valid yet: check the machine's clock (stboot never believes a clock before its build time), or issue a certificate valid from now and sign again",
                UntrustedKind::Other => "sign with a certificate issued by a root in ospkg_signing_root.pem (stmgr keygen certificate -rootCert ROOT -rootKey KEY)",
            },
            Verdict::UnsupportedKey(_) => "sign with an Ed25519 key and its certificate",
            Verdict::BadSignature(_) => "the archive changed after signing, or the signature was made with another key: sign the package again",
            Verdict::Revoked(_) => "the signer is revoked by the trust policy (ospkg_revoked_signers): sign the package with a key that is not revoked (stmgr ospkg sign), or remove the entry if it was listed by mistake",
            Verdict::BadProof(_) => "check that ospkg_trust_policy names the log and witnesses the proof was made with, and that the proof is for this archive and the certificate's key (stmgr ospkg sigsum checks both); or submit the archive again and attach the new proof",
        }
    }

    /// The verdict's kind for the boot report: `valid`, `duplicate_key`,
    /// `malformed_certificate`, `untrusted_certificate.unknown_issuer` (`.expired`,
    /// `.not_yet_valid`, `.other`), `unsupported_key`, `bad_signature`,
    /// `bad_sigsum_proof`.
    pub fn code(&self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Duplicate { .. } => "duplicate_key",
            Verdict::MalformedCertificate(_) => "malformed_certificate",
            Verdict::UntrustedCertificate(u) => match u.kind {
                UntrustedKind::UnknownIssuer => "untrusted_certificate.unknown_issuer",
                UntrustedKind::Expired => "untrusted_certificate.expired",
                UntrustedKind::NotYetValid => "untrusted_certificate.not_yet_valid",
                UntrustedKind::Other => "untrusted_certificate.other",
            },
            Verdict::UnsupportedKey(_) => "unsupported_key",
            Verdict::BadSignature(_) => "bad_signature",
            Verdict::BadProof(_) => "bad_sigsum_proof",
            Verdict::Revoked(_) => "revoked",
        }
    }

    /// Why it did not count, in words (`None` when valid).
    pub fn reason(&self) -> Option<String> {
        match self {
            Verdict::Valid => None,
            Verdict::Duplicate { of } => Some(format!("same signing key as signature {of}")),
            Verdict::MalformedCertificate(m)
            | Verdict::UnsupportedKey(m)
            | Verdict::BadSignature(m)
            | Verdict::BadProof(m)
            | Verdict::Revoked(m) => Some(m.clone()),
            Verdict::UntrustedCertificate(u) => Some(u.message.clone()),
        }
    }

    /// A short name of the kind of verdict.
    pub fn kind(&self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Duplicate { .. } => "duplicate key",
            Verdict::MalformedCertificate(_) => "malformed certificate",
            Verdict::UntrustedCertificate(_) => "untrusted certificate",
            Verdict::UnsupportedKey(_) => "unsupported key",
            Verdict::BadSignature(_) => "bad signature",
            Verdict::BadProof(_) => "bad Sigsum proof",
            Verdict::Revoked(_) => "revoked",
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines(usize::MAX).join("\n"))
    }
}

pub use crate::text::printable;

/// A package whose signatures met the threshold under the trust policy. Only
/// [`verify_package`] makes one; staging and kexec accept nothing else.
#[derive(Debug)]
pub struct VerifiedOsPackage {
    archive: ArchiveData,
    facts: PackageFacts,
}

/// What everything after staging needs to know of a verified package (the
/// measurements, the event log, the boot report): what staging returns beside the
/// staged files, once it has consumed the package. Only verification makes one.
#[derive(Debug, Clone)]
pub struct PackageFacts {
    origin: crate::ospkg::package::Origin,
    manifest: Manifest,
    archive_sha256: Sha256Digest,
    archive_len: u64,
    descriptor_bytes: Vec<u8>,
    report: Report,
    uki_signer: Option<crate::secureboot::check::Accepted>,
}

impl PackageFacts {
    /// Whose Secure Boot signature on the UKI counted, when the trust policy has
    /// UEFI `db` certificates.
    pub fn uki_signer(&self) -> Option<&crate::secureboot::check::Accepted> {
        self.uki_signer.as_ref()
    }
    pub fn origin(&self) -> &crate::ospkg::package::Origin {
        &self.origin
    }
    /// The archive's manifest, checked for what booting needs.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// SHA-256 of the archive bytes that were verified.
    pub fn archive_sha256(&self) -> &Sha256Digest {
        &self.archive_sha256
    }
    pub fn archive_len(&self) -> u64 {
        self.archive_len
    }
    /// The descriptor bytes as received (they are measured).
    pub fn descriptor_bytes(&self) -> &[u8] {
        &self.descriptor_bytes
    }
    /// The signature verdicts that accepted it.
    pub fn report(&self) -> &Report {
        &self.report
    }
    /// The console line for [`Self::uki_signer`].
    pub fn uki_signer_line(&self) -> Option<String> {
        let a = self.uki_signer.as_ref()?;
        Some(format!(
            "UKI {}: Secure Boot signature by {:?} verifies against {} certificate #{} ({:?})",
            self.manifest.uki.as_deref().unwrap_or(""),
            printable(&a.signer),
            crate::config::trust_policy::UKI_DB_FILE,
            a.db_index,
            printable(&a.db_subject)
        ))
    }
}

impl VerifiedOsPackage {
    pub fn facts(&self) -> &PackageFacts {
        &self.facts
    }
    pub fn report(&self) -> &Report {
        &self.facts.report
    }
    /// The archive's manifest, checked for what booting needs.
    pub fn manifest(&self) -> &Manifest {
        &self.facts.manifest
    }
    pub fn origin(&self) -> &crate::ospkg::package::Origin {
        &self.facts.origin
    }
    /// SHA-256 of the archive bytes that were verified.
    pub fn archive_sha256(&self) -> &Sha256Digest {
        &self.facts.archive_sha256
    }
    pub fn archive_len(&self) -> u64 {
        self.facts.archive_len
    }
    /// The descriptor bytes as received.
    pub fn descriptor_bytes(&self) -> &[u8] {
        &self.facts.descriptor_bytes
    }
    /// The verified archive (the handle that was hashed, or the entries it was
    /// unpacked into while it was hashed) and the facts: for staging, which consumes
    /// the package. There is no `&mut` way in.
    ///
    /// ```compile_fail
    /// fn tamper(p: &mut stboot::verify::VerifiedOsPackage) {
    ///     let _ = p.archive_data();
    /// }
    /// ```
    ///
    /// and only staging, in this crate, takes it apart:
    ///
    /// ```compile_fail
    /// fn take(p: stboot::verify::VerifiedOsPackage) {
    ///     let _ = p.into_parts();
    /// }
    /// ```
    pub(crate) fn into_parts(self) -> (ArchiveData, PackageFacts) {
        (self.archive, self.facts)
    }
}

/// A package that was not accepted, with the report when signatures were checked.
#[derive(Debug)]
pub struct Rejected {
    pub report: Option<Report>,
    pub error: anyhow::Error,
    pub kind: RejectedKind,
}

/// What kept a package from being accepted: the kind decides the remedy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectedKind {
    /// The signatures could not be checked at all (no signing roots, more
    /// signatures than certificates).
    Unverifiable,
    /// Too few signatures counted (the report says why each did not).
    Signatures,
    /// Signed well enough, but older than the trust policy's floor
    /// (`ospkg_min_version`): a downgrade.
    Rollback,
    /// Signed well enough, but what it holds cannot boot (a kernel that is not a
    /// bzImage, an empty initramfs, a broken manifest): the package, not its
    /// signatures, is wrong.
    Contents,
    /// Signed well enough, but the trust policy has UEFI `db` certificates
    /// (`ospkg_uki_db.pem`) and the package is no UKI whose Secure Boot signature
    /// verifies against them.
    SecureBoot,
}

impl RejectedKind {
    /// The kind, for the boot report.
    pub fn code(self) -> &'static str {
        match self {
            RejectedKind::Unverifiable => "unverifiable",
            RejectedKind::Signatures => "signatures",
            RejectedKind::Contents => "contents",
            RejectedKind::Rollback => "rollback",
            RejectedKind::SecureBoot => "secure-boot",
        }
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for Rejected {}

impl Rejected {
    /// What the operator can do: for too few signatures, the remedy of each kind of
    /// signature that did not count, once each.
    pub fn remedy(&self) -> String {
        match self.kind {
            RejectedKind::Unverifiable => "check the signing roots in /etc/trust_policy/ospkg_signing_root.pem and the descriptor's signatures and certificates (stmgr ospkg verify -trustPolicy DIR -ospkg NAME names the problem)".into(),
            RejectedKind::Rollback => "serve a package whose version (stmgr ospkg create -version N) is at least the floor named above; if the floor is wrong, lower ospkg_min_version in trust_policy.json and rebuild the initramfs (stmgr initramfs build -trustPolicy DIR), or for the TPM floor have the TPM owner reset it (docs/operator-guide.md, \"The TPM floor\")".into(),
            RejectedKind::SecureBoot => format!("sign the UKI for this machine's db (sbsign, or stmgr uki create -signkey -signcert with a key whose certificate is in /etc/trust_policy/{0} or issued by one there), then package and sign it again; or, if this machine should boot packages that are not so signed, remove {0} from the trust policy and rebuild the initramfs", crate::config::trust_policy::UKI_DB_FILE),
            RejectedKind::Contents => "the package is signed, but it cannot boot as built: create it again with a bzImage kernel and a non-empty initramfs (stmgr ospkg create -kernel F -initramfs F), sign it and check it with stmgr ospkg verify".into(),
            RejectedKind::Signatures => {
                let mut remedies: Vec<&str> = Vec::new();
                for c in self.report.iter().flat_map(|r| &r.checks) {
                    let r = c.verdict.remedy();
                    if !matches!(c.verdict, Verdict::Valid) && !remedies.contains(&r) {
                        remedies.push(r);
                    }
                }
                let more = match &self.report {
                    Some(r) => format!(
                        "sign the package with more keys of certificates issued by the signing roots (stmgr ospkg sign): {} valid, {} required",
                        r.valid,
                        r.required()
                    ),
                    None => "sign the package with more keys (stmgr ospkg sign)".into(),
                };
                if remedies.is_empty() {
                    more
                } else {
                    remedies.join("; ")
                }
            }
        }
    }
}

/// Verify `pkg`: signatures over the SHA-256 of exactly the bytes that were read,
/// the threshold, and that the archive is an unambiguous zip whose manifest names a
/// kernel and an initramfs that are present (what stboot needs to boot it).
pub fn verify_package<'a>(
    pkg: Unverified,
    anchors: impl Into<Anchors<'a>>,
    threshold: Threshold,
    now_unix: i64,
) -> std::result::Result<VerifiedOsPackage, Rejected> {
    let anchors = anchors.into();
    let report = match verify(pkg.descriptor(), pkg.archive().sha256(), anchors, threshold, now_unix) {
        Ok(r) => r,
        Err(error) => return Err(Rejected { report: None, error, kind: RejectedKind::Unverifiable }),
    };
    if !report.accepted() {
        let error = anyhow::anyhow!("not enough valid signatures: {}", report.summary());
        return Err(Rejected { report: Some(report), error, kind: RejectedKind::Signatures });
    }
    let manifest = match pkg.archive() {
        ArchiveData::File(f) => f.open().and_then(|mut a| a.manifest_checked()),
        ArchiveData::Streamed(s) => s.entries().manifest_checked(),
    };
    let (floor, which) = anchors.floor();
    match manifest {
        Ok(manifest) if manifest.rollback_version() < floor => {
            let error = anyhow::anyhow!(
                "OS package version {}{} is below this machine's floor {floor} ({which}): a downgrade, refused",
                manifest.rollback_version(),
                if manifest.ospkg_version.is_none() { " (its manifest has no ospkg_version)" } else { "" },
            );
            Err(Rejected { report: Some(report), error, kind: RejectedKind::Rollback })
        }
        Ok(manifest) => {
            let uki_signer = match anchors.uki_db.map(|db| pkg.archive().check_uki_signature(&manifest, db)) {
                None => None,
                Some(Ok(accepted)) => Some(accepted),
                Some(Err(error)) => {
                    return Err(Rejected { report: Some(report), error, kind: RejectedKind::SecureBoot })
                }
            };
            let (archive_sha256, archive_len) = (*pkg.archive().sha256(), pkg.archive().len());
            let (origin, descriptor_bytes, archive) = pkg.into_parts();
            let facts =
                PackageFacts { origin, manifest, archive_sha256, archive_len, descriptor_bytes, report, uki_signer };
            Ok(VerifiedOsPackage { archive, facts })
        }
        Err(error) => Err(Rejected { report: Some(report), error, kind: RejectedKind::Contents }),
    }
}

/// Lines per kind of signature verdict on the console; the rest are counted.
pub const CONSOLE_LINES_PER_KIND: usize = 3;

/// [`verify_package`] under `trust` (its roots, Sigsum policy and threshold) at the
/// current [`effective_now`], with the verdicts on the console (at most
/// [`CONSOLE_LINES_PER_KIND`] lines per kind) and the time it took.
pub fn verify_logged(
    pkg: Unverified,
    trust: &crate::config::TrustConfig,
    tpm_floor: crate::tpm::floor::TpmFloor,
) -> std::result::Result<VerifiedOsPackage, Rejected> {
    use tracing::info;
    let (now, _) = effective_now();
    let t = std::time::Instant::now();
    let threshold = Threshold::AtLeast(trust.policy.ospkg_signature_threshold);
    let anchors = Anchors { tpm_floor: tpm_floor.value(), ..Anchors::from(trust) };
    let r = verify_package(pkg, anchors, threshold, now);
    let report = match &r {
        Ok(p) => Some(p.report()),
        Err(rej) => rej.report.as_ref(),
    };
    for line in report.map(|r| r.lines(CONSOLE_LINES_PER_KIND)).unwrap_or_default() {
        info!("{line}");
    }
    info!("verification took {} ms", t.elapsed().as_millis());
    if let Ok(p) = &r {
        if let Some(v) = p.manifest().ospkg_version {
            let (floor, which) = anchors.floor();
            info!("OS package version {v} (floor {floor}: {which})");
        }
        if let Some(line) = expiry_line(p.report(), now) {
            info!("{line}");
        }
        if let Some(line) = p.facts().uki_signer_line() {
            info!("{line}");
        }
        info!("OS package passed verification");
    }
    r
}

/// When `report`'s package stops meeting its threshold because certificates
/// expire, as one line for the console and `stmgr ospkg verify`: `signatures meet
/// the threshold until 2031-12-05 (in 2191 days), when "CN=..." expires`.
pub fn expiry_line(report: &Report, now_unix: i64) -> Option<String> {
    let (until, who) = report.threshold_met_until()?;
    if until == i64::MAX {
        return None;
    }
    let days = (until - now_unix).max(0) / 86_400;
    Some(format!(
        "signatures meet the threshold until {} (in {days} days), when {} expires",
        crate::text::utc_date(until),
        who.map(|w| format!("the certificate of {:?} (or its root)", printable(w)))
            .unwrap_or_else(|| "a certificate".into())
    ))
}

/// The time certificates are checked against: the system clock, but never earlier
/// than the build time. A machine whose clock was reset (RTC battery, 1970) would
/// otherwise reject every certificate as not yet valid; a clock that is ahead is
/// believed. Returns the time and whether the clock was behind.
pub fn effective_now() -> (i64, bool) {
    let clock = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let floor = crate::BUILD_UNIX_TIME;
    if clock < floor {
        (floor as i64, true)
    } else {
        (clock as i64, false)
    }
}

/// SHA-256 of the archive bytes: the message that is signed.
pub fn digest(archive: &[u8]) -> Sha256Digest {
    Sha256Digest::of(archive)
}

/// Check every signature of `descriptor` over `archive_sha256` against the signing
/// roots (DER) and, for Sigsum proofs, the Sigsum policy of `anchors`.
/// Errors only when the question cannot be asked (no roots, more signatures than
/// certificates); every per-signature problem is a verdict in the report.
pub fn verify<'a>(
    descriptor: &Descriptor,
    archive_sha256: &Sha256Digest,
    anchors: impl Into<Anchors<'a>>,
    threshold: Threshold,
    now_unix: i64,
) -> Result<Report> {
    let anchors = anchors.into();
    let roots = anchors.roots;
    if roots.is_empty() {
        bail!("no signing root certificates configured");
    }
    let (ns, nc) = (descriptor.signatures.len(), descriptor.certificates.len());
    if ns > nc {
        bail!("descriptor: {ns} signatures but only {nc} certificates; signature i needs certificate i");
    }
    let parsed_roots: Vec<X509Certificate> = roots
        .iter()
        .enumerate()
        .map(|(i, der)| {
            X509Certificate::from_der(der)
                .map(|(_, c)| c)
                .map_err(|e| anyhow::anyhow!("signing root #{i} is not valid X.509: {e}"))
        })
        .collect::<Result<_>>()?;
    let now = ASN1Time::from_timestamp(now_unix).map_err(|e| anyhow::anyhow!("bad time {now_unix}: {e}"))?;

    let mut counted: Vec<([u8; 32], usize)> = Vec::new();
    let mut checks = Vec::with_capacity(ns);
    for (i, sig) in descriptor.signatures.iter().enumerate() {
        let form = if sigsum::is_proof(sig) { Form::Proof(None) } else { Form::Plain };
        let der = decode_certificate(&descriptor.certificates[i]);
        let certificate_sha256 = der.as_deref().ok().map(digest);
        let cert = der.as_deref().map_err(String::as_str);
        let (signer, verdict) = check_one(cert, sig, archive_sha256, &anchors, &parsed_roots, now);
        let (form, verdict, root, expires) = match verdict {
            Ok((key, proof, root, expires)) => {
                (if proof.is_some() { Form::Proof(proof) } else { form }, Ok(key), Some(root), Some(expires))
            }
            Err(v) => (form, Err(v), None, None),
        };
        let verdict = match verdict {
            Ok(key) => match counted.iter().find(|(k, _)| *k == key) {
                Some((_, of)) => Verdict::Duplicate { of: *of },
                None => {
                    counted.push((key, i));
                    Verdict::Valid
                }
            },
            Err(v) => v,
        };
        checks.push(SignatureCheck { index: i, signer, certificate_sha256, form, verdict, root, expires });
    }
    Ok(Report { found: ns, valid: counted.len(), threshold, checks })
}

/// How a signer is named: `alice (CN=…)` when the certificate has a readable name
/// (`stmgr keygen certificate -name`, the X.520 pseudonym), else its subject.
fn signer_name(c: &X509Certificate) -> String {
    const PSEUDONYM: &str = "2.5.4.65";
    let name = c.subject().iter_attributes().find(|a| a.attr_type().to_id_string() == PSEUDONYM);
    match name.and_then(|a| a.as_str().ok()) {
        Some(n) => {
            let cn: Vec<String> =
                c.subject().iter_common_name().filter_map(|a| a.as_str().ok()).map(|s| format!("CN={s}")).collect();
            format!("{n} ({})", cn.join(", "))
        }
        None => c.subject().to_string(),
    }
}

/// Decode a descriptor certificate: PEM text (first block, no headers) or DER.
pub fn decode_certificate(bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
    if bytes.is_empty() {
        return Err("empty".into());
    }
    if bytes.first() == Some(&0x30) {
        return Ok(bytes.to_vec());
    }
    match crate::pem::decode(bytes) {
        Ok(Some((b, _))) if b.label != "CERTIFICATE" => {
            Err(format!("PEM block is {:?}, expected CERTIFICATE", b.label))
        }
        Ok(Some((b, _))) if b.has_headers => Err("PEM block has headers, expected none".into()),
        Ok(Some((b, _))) => Ok(b.der),
        Ok(None) => Err("neither PEM nor DER".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The key that made a valid signature, what a proof said, and the root that
/// issued the certificate.
type Counted = ([u8; 32], Option<sigsum::ProofSummary>, usize, i64);

/// Check signature `sig` by the certificate `der` (decoded from the descriptor, or
/// why it could not be).
fn check_one(
    der: std::result::Result<&[u8], &str>,
    sig: &[u8],
    message: &Sha256Digest,
    anchors: &Anchors,
    roots: &[X509Certificate],
    now: ASN1Time,
) -> (Option<String>, std::result::Result<Counted, Verdict>) {
    let roots_der = anchors.roots;
    let der = match der {
        Ok(d) => d,
        Err(m) => return (None, Err(Verdict::MalformedCertificate(m.to_string()))),
    };
    if let Err(m) = strict_der_outline(der) {
        return (None, Err(Verdict::MalformedCertificate(m)));
    }
    let leaf = match X509Certificate::from_der(der) {
        Ok(([], c)) => c,
        Ok(_) => return (None, Err(Verdict::MalformedCertificate("trailing bytes after the certificate".into()))),
        Err(e) => return (None, Err(Verdict::MalformedCertificate(e.to_string()))),
    };
    let signer = Some(signer_name(&leaf));
    if let Some(revoked) = anchors.revoked {
        let (cert, key) = (digest(der), digest(leaf.public_key().raw));
        let listed = match (revoked.line_of(&cert), revoked.line_of(&key)) {
            (Some(line), _) => {
                Some(format!("the certificate sha256:{} is listed in ospkg_revoked_signers line {line}", cert.hex()))
            }
            (None, Some(line)) => {
                Some(format!("its public key sha256:{} is listed in ospkg_revoked_signers line {line}", key.hex()))
            }
            (None, None) => None,
        };
        if let Some(m) = listed {
            return (signer, Err(Verdict::Revoked(m)));
        }
    }
    let root = match check_chain(der, &leaf, roots_der, roots, now) {
        Ok(root) => root,
        Err(u) => return (signer, Err(Verdict::UntrustedCertificate(u))),
    };
    // the signature counts until the first of the certificate and its root expires
    let expires = leaf.validity().not_after.timestamp().min(roots[root].validity().not_after.timestamp());
    let spki = leaf.public_key();
    if spki.algorithm.algorithm.to_id_string() != OID_ED25519 {
        return (
            signer,
            Err(Verdict::UnsupportedKey(format!(
                "certificate key is {}, only Ed25519 keys sign OS packages",
                spki.algorithm.algorithm.to_id_string()
            ))),
        );
    }
    let key_bytes: [u8; 32] = match spki.subject_public_key.data.as_ref().try_into() {
        Ok(k) => k,
        Err(_) => return (signer, Err(Verdict::UnsupportedKey("Ed25519 key is not 32 bytes".into()))),
    };
    let key = match VerifyingKey::from_bytes(&key_bytes) {
        Ok(k) => k,
        Err(e) => return (signer, Err(Verdict::UnsupportedKey(format!("invalid Ed25519 key: {e}")))),
    };
    if sigsum::is_proof(sig) {
        return match sigsum::check(sig, message.as_bytes(), &key_bytes, anchors.sigsum_policy) {
            Ok(summary) => (signer, Ok((key_bytes, Some(summary), root, expires))),
            Err(m) => (signer, Err(Verdict::BadProof(m))),
        };
    }
    let Ok(sig) = Signature::from_slice(sig) else {
        return (
            signer,
            Err(Verdict::BadSignature(format!("{} bytes, expected a 64-byte Ed25519 signature", sig.len()))),
        );
    };
    match key.verify_strict(message.as_bytes(), &sig) {
        Ok(()) => (signer, Ok((key_bytes, None, root, expires))),
        Err(_) => (
            signer,
            Err(Verdict::BadSignature("does not match this archive's SHA-256 under the certificate's key".into())),
        ),
    }
}

fn check_chain(
    leaf_der: &[u8],
    leaf: &X509Certificate,
    roots_der: &[Vec<u8>],
    roots: &[X509Certificate],
    now: ASN1Time,
) -> std::result::Result<usize, Untrusted> {
    check_validity(leaf, now, "certificate")?;
    check_cert_profile(leaf, "certificate").map_err(|m| Untrusted::new(UntrustedKind::Other, m))?;
    if let Some(i) = roots_der.iter().position(|r| r.as_slice() == leaf_der) {
        return Ok(i); // a root may sign packages directly
    }
    let mut reasons: Vec<Untrusted> = Vec::new();
    for (i, root) in roots.iter().enumerate().filter(|(_, r)| r.subject().as_raw() == leaf.issuer().as_raw()) {
        match check_issuer(leaf, root, now) {
            Ok(()) => return Ok(i),
            Err(u) => reasons.push(u),
        }
    }
    match reasons.len() {
        0 => Err(Untrusted::new(
            UntrustedKind::UnknownIssuer,
            format!("issuer {:?} is not a configured signing root", leaf.issuer().to_string()),
        )),
        1 => Err(reasons.remove(0)),
        _ => Err(Untrusted::new(
            UntrustedKind::Other,
            reasons.iter().map(|u| u.message.as_str()).collect::<Vec<_>>().join("; "),
        )),
    }
}

fn check_issuer(leaf: &X509Certificate, root: &X509Certificate, now: ASN1Time) -> std::result::Result<(), Untrusted> {
    let name = root.subject().to_string();
    check_validity(root, now, &format!("root {name:?}"))?;
    check_issuer_profile(leaf, root, &name).map_err(|m| Untrusted::new(UntrustedKind::Other, m))
}

fn check_issuer_profile(leaf: &X509Certificate, root: &X509Certificate, name: &str) -> std::result::Result<(), String> {
    check_cert_profile(root, &format!("root {name:?}"))?;
    match root.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => {}
        Ok(_) => return Err(format!("root {name:?} is not a CA (basicConstraints cA is not set)")),
        Err(e) => return Err(format!("root {name:?}: bad basicConstraints: {e}")),
    }
    match root.key_usage() {
        Ok(Some(ku)) if !ku.value.key_cert_sign() => {
            return Err(format!("root {name:?} keyUsage does not allow keyCertSign"))
        }
        Ok(_) => {}
        Err(e) => return Err(format!("root {name:?}: bad keyUsage: {e}")),
    }
    let alg = leaf.signature_algorithm.algorithm.to_id_string();
    if !SIG_ALGS.iter().any(|(oid, _)| *oid == alg) {
        let names: Vec<&str> = SIG_ALGS.iter().map(|(_, n)| *n).collect();
        return Err(format!(
            "certificate is signed with algorithm {alg}, which is not accepted (SHA-1 and MD5 never are); accepted: {}",
            names.join(", ")
        ));
    }
    leaf.verify_signature(Some(root.public_key()))
        .map_err(|e| format!("certificate's signature does not verify under root {name:?}: {e}"))
}

/// The validity period, for leaf and root alike.
fn check_validity(c: &X509Certificate, now: ASN1Time, what: &str) -> std::result::Result<(), Untrusted> {
    let v = c.validity();
    if now < v.not_before {
        let m = format!("{what} is not valid before {} (now {})", v.not_before, now);
        return Err(Untrusted::new(UntrustedKind::NotYetValid, m));
    }
    if now > v.not_after {
        return Err(Untrusted::new(UntrustedKind::Expired, format!("{what} expired at {} (now {})", v.not_after, now)));
    }
    Ok(())
}

/// Checks that apply to leaf and root alike: extendedKeyUsage, unknown critical
/// extensions.
fn check_cert_profile(c: &X509Certificate, what: &str) -> std::result::Result<(), String> {
    for ext in c.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::ExtendedKeyUsage(eku) if !(eku.any || eku.code_signing || eku.server_auth) => {
                return Err(format!(
                    "{what} extendedKeyUsage allows neither codeSigning, serverAuth nor anyExtendedKeyUsage"
                ));
            }
            ParsedExtension::ExtendedKeyUsage(_) => {}
            ParsedExtension::BasicConstraints(_)
            | ParsedExtension::KeyUsage(_)
            | ParsedExtension::SubjectAlternativeName(_)
            | ParsedExtension::SubjectKeyIdentifier(_)
            | ParsedExtension::AuthorityKeyIdentifier(_)
            | ParsedExtension::CertificatePolicies(_) => {}
            ParsedExtension::ParseError { error } => {
                // Go refuses a certificate whose known extension does not parse,
                // critical or not; so does stboot
                return Err(format!("{what} has a malformed extension {}: {error}", ext.oid.to_id_string()));
            }
            _ if ext.critical => {
                return Err(format!("{what} has an unsupported critical extension {}", ext.oid.to_id_string()))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The outer structure of a certificate in strict DER, as Go and OpenSSL demand and
/// x509-parser does not fully check: `SEQUENCE { tbsCertificate SEQUENCE,
/// signatureAlgorithm SEQUENCE, signatureValue BIT STRING (primitive, no unused
/// bits) }` with definite minimal lengths and nothing after it.
fn strict_der_outline(der: &[u8]) -> std::result::Result<(), String> {
    /// One TLV at the start of `b`: (tag, contents, rest).
    fn tlv(b: &[u8]) -> std::result::Result<(u8, &[u8], &[u8]), String> {
        let (&tag, rest) = b.split_first().ok_or("truncated")?;
        let (&first, rest) = rest.split_first().ok_or("truncated length")?;
        let (len, rest) = if first < 0x80 {
            (first as usize, rest)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return Err("length is not definite DER".into());
            }
            let len = rest[..n].iter().fold(0usize, |a, &d| (a << 8) | d as usize);
            if rest[0] == 0 || len < 0x80 || (n > 1 && len < 1 << (8 * (n - 1))) {
                return Err("length is not minimally encoded".into());
            }
            (len, &rest[n..])
        };
        if rest.len() < len {
            return Err("truncated".into());
        }
        Ok((tag, &rest[..len], &rest[len..]))
    }
    let bad = |m: String| format!("not strict DER: {m}");
    let (tag, body, trailing) = tlv(der).map_err(bad)?;
    if tag != 0x30 || !trailing.is_empty() {
        return Err(bad("expected one SEQUENCE".into()));
    }
    let (t1, _, rest) = tlv(body).map_err(bad)?;
    let (t2, _, rest) = tlv(rest).map_err(bad)?;
    let (t3, sig, rest) = tlv(rest).map_err(bad)?;
    if (t1, t2) != (0x30, 0x30) || !rest.is_empty() {
        return Err(bad("expected tbsCertificate, signatureAlgorithm and signatureValue".into()));
    }
    if t3 != 0x03 || sig.first() != Some(&0) {
        return Err(bad(format!(
            "signatureValue has tag {t3:#04x}, expected a primitive BIT STRING (0x03) without unused bits"
        )));
    }
    Ok(())
}

pub use crate::keys::describe_certificate;

#[cfg(test)]
mod tests;
