//! Measuring what is about to be booted into the TPM, with upstream stboot's PCR
//! layout so that existing attestation policies keep working:
//!
//! | PCR (default) | event | digest D |
//! |---|---|---|
//! | 12 | OS package archive | SHA-256 of the archive |
//! | 12 | OS package descriptor | SHA-256 of the descriptor bytes as received |
//! | 12 | OS package version (stboot-rs, only when the manifest has one) | SHA-256 of its decimal text |
//! | 12 | TPM floor (stboot-rs, only when `ospkg_tpm_floor` asks for it) | SHA-256 of the floor's decimal text, or of `none` |
//! | 13 | trust policy | SHA-256 of the compact trust policy JSON |
//! | 13 | signing root(s) | SHA-256 of each root's DER, in file order |
//! | 13 | TLS roots | SHA-256 of all TLS roots' DER, concatenated |
//! | 13 | Sigsum policy (only when `ospkg_trust_policy` exists) | SHA-256 of the file |
//! | 13 | revoked signers (only when `ospkg_revoked_signers` exists) | SHA-256 of the file |
//! | 13 | UKI Secure Boot db (only when `ospkg_uki_db.pem` exists) | SHA-256 of the file |
//! | 14 | UX identity | SHA-256 of the identity: TPM NV index 0x01420001 with NULs trimmed, else empty |
//!
//! The three PCRs ("detail", "authority", "identity", upstream's names) can be moved
//! with `measurement_pcrs` in `trust_policy.json` ([`Pcrs`]), for platforms where
//! another writer (systemd-stub: 11-13) shares them.
//!
//! Like upstream, the SHA-256 bank is extended with SHA-256(D), not D itself
//! (upstream hashes twice); verifiers built against upstream expect exactly that.
//! Commands go to the kernel's resource manager `/dev/tpmrm0` (else `/dev/tpm0`) as
//! raw TPM 2.0 command buffers.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub mod eventlog;
pub mod uki;

/// upstream's event types (host/tpm.go), and ours after them.
pub mod event_type {
    pub const OSPKG_ARCHIVE: u32 = 0xa000_0000;
    pub const OSPKG_DESCRIPTOR: u32 = 0xa000_0001;
    pub const TRUST_POLICY: u32 = 0xa000_0002;
    pub const SIGNING_ROOT: u32 = 0xa000_0003;
    pub const TLS_ROOTS: u32 = 0xa000_0004;
    pub const UX_IDENTITY: u32 = 0xa000_0005;
    /// stboot-rs: the Sigsum policy (upstream does not measure it).
    pub const SIGSUM_POLICY: u32 = 0xa000_0006;
    /// stboot-rs: the package's `ospkg_version` (decimal text).
    pub const OSPKG_VERSION: u32 = 0xa000_0007;
    /// stboot-rs: `ospkg_revoked_signers`.
    pub const REVOKED_SIGNERS: u32 = 0xa000_0008;
    /// stboot-rs: the TPM floor in force (decimal text, or `none`).
    pub const TPM_FLOOR: u32 = 0xa000_0009;
    /// stboot-rs: `ospkg_uki_db.pem`, the UEFI db certificates UKIs must be signed for.
    pub const UKI_DB: u32 = 0xa000_000a;
    /// The events of the trust policy directory (the authority PCR): what decides
    /// which packages a machine accepts.
    pub const AUTHORITY: [u32; 6] = [TRUST_POLICY, SIGNING_ROOT, TLS_ROOTS, SIGSUM_POLICY, REVOKED_SIGNERS, UKI_DB];
}

pub use crate::config::trust_policy::Pcrs;

/// One measurement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measurement {
    pub pcr: u32,
    pub what: &'static str,
    /// D: the digest of the measured data.
    pub digest: Sha256Digest,
    /// The event type and data of its event log entry (upstream's).
    pub event_type: u32,
    pub data: Vec<u8>,
    /// What the PCR is extended with.
    pub extend: Extend,
}

/// What a measurement extends its PCR with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extend {
    /// SHA-256(D): upstream stboot's measurements hash the digest once more.
    DigestOfDigest,
    /// D itself, as the TCG's measurements and systemd-stub's do ([`uki`]).
    Digest,
}

impl Measurement {
    /// The value the SHA-256 bank is extended with: SHA-256(D), as upstream, or D
    /// for systemd-stub's measurements.
    pub fn extend_value(&self) -> Sha256Digest {
        match self.extend {
            Extend::DigestOfDigest => Sha256Digest::of(self.digest.as_bytes()),
            Extend::Digest => self.digest,
        }
    }
}

fn sha(b: &[u8]) -> Sha256Digest {
    Sha256Digest::of(b)
}

/// What stboot measures of the package it boots.
#[derive(Debug, Clone, Copy)]
pub struct PackageInputs<'a> {
    /// The event data of the archive's measurement (upstream: its file name; the
    /// digest is the archive's).
    pub archive_name: &'a str,
    pub archive_sha256: &'a Sha256Digest,
    /// The descriptor bytes as received.
    pub descriptor: &'a [u8],
    /// The manifest's `ospkg_version`, measured (as decimal text) only when the
    /// package has one.
    pub version: Option<u64>,
    /// The TPM floor the package was checked against, measured when the trust
    /// policy asks for one ([`TpmFloor::event_text`]).
    pub tpm_floor: TpmFloor,
}

pub use crate::tpm::floor::TpmFloor;

/// What stboot measures of its trust policy directory.
#[derive(Debug, Clone)]
pub struct AuthorityInputs<'a> {
    /// The trust policy as compact JSON (Go's field order).
    pub policy_json: String,
    pub signing_roots: &'a [Vec<u8>],
    pub tls_roots: &'a [Vec<u8>],
    /// `ospkg_trust_policy`, when present.
    pub sigsum_policy: Option<&'a [u8]>,
    /// `ospkg_revoked_signers`, when present.
    pub revoked: Option<&'a [u8]>,
    /// `ospkg_uki_db.pem`, when present.
    pub uki_db: Option<&'a [u8]>,
}

impl<'a> AuthorityInputs<'a> {
    /// What is measured of `trust`.
    pub fn of(trust: &'a crate::config::TrustConfig) -> Self {
        Self {
            policy_json: crate::gojson::marshal(&trust.policy),
            signing_roots: &trust.signing_roots,
            tls_roots: &trust.tls_roots,
            sigsum_policy: trust.sigsum_policy.as_ref().map(|p| p.bytes.as_slice()),
            revoked: trust.revoked.as_ref().map(|r| r.bytes.as_slice()),
            uki_db: trust.uki_db.as_ref().map(|d| d.bytes.as_slice()),
        }
    }
}

/// The measurements of a boot, in order, but for the last one, the UX identity
/// ([`identity_measurement`]).
pub fn measurements(pcrs: &Pcrs, pkg: &PackageInputs<'_>, authority: &AuthorityInputs<'_>) -> Vec<Measurement> {
    use event_type as t;
    let of = |pcr, what, event_type, data: Vec<u8>| Measurement {
        pcr,
        what,
        digest: sha(&data),
        event_type,
        data,
        extend: Extend::DigestOfDigest,
    };
    let mut v = vec![
        Measurement {
            pcr: pcrs.detail,
            what: "OS package archive",
            digest: *pkg.archive_sha256,
            event_type: t::OSPKG_ARCHIVE,
            data: pkg.archive_name.as_bytes().to_vec(),
            extend: Extend::DigestOfDigest,
        },
        of(pcrs.detail, "OS package descriptor", t::OSPKG_DESCRIPTOR, pkg.descriptor.to_vec()),
    ];
    // the version is inside the archive (measured above), but a verifier without
    // the archive can read it only from its own event (not upstream's: only when
    // the package has one, so upstream's packages measure as before)
    if let Some(version) = pkg.version {
        v.push(of(pcrs.detail, "OS package version", t::OSPKG_VERSION, version.to_string().into_bytes()));
    }
    // the floor it was checked against: the TPM's, read from NV, is known only
    // from here (the trust policy's is in the policy JSON below)
    if let Some(text) = pkg.tpm_floor.event_text() {
        v.push(of(pcrs.detail, "TPM floor", t::TPM_FLOOR, text.into_bytes()));
    }
    v.push(of(pcrs.authority, "trust policy", t::TRUST_POLICY, authority.policy_json.as_bytes().to_vec()));
    for r in authority.signing_roots {
        v.push(of(pcrs.authority, "OS package signing root", t::SIGNING_ROOT, r.clone()));
    }
    v.push(of(pcrs.authority, "TLS roots", t::TLS_ROOTS, authority.tls_roots.concat()));
    // the Sigsum policy decides which proofs count, so it is security configuration
    // like the roots (not measured by upstream as far as is known; docs/formats.md)
    if let Some(p) = authority.sigsum_policy {
        v.push(of(pcrs.authority, "Sigsum policy", t::SIGSUM_POLICY, p.to_vec()));
    }
    if let Some(r) = authority.revoked {
        v.push(of(pcrs.authority, "revoked signers", t::REVOKED_SIGNERS, r.to_vec()));
    }
    if let Some(d) = authority.uki_db {
        v.push(of(pcrs.authority, "UKI Secure Boot db", t::UKI_DB, d.to_vec()));
    }
    v
}

/// The UX identity, into the identity PCR (default 14).
pub fn identity_measurement(pcrs: &Pcrs, identity: &[u8]) -> Measurement {
    Measurement {
        pcr: pcrs.identity,
        what: "UX identity",
        digest: sha(identity),
        event_type: event_type::UX_IDENTITY,
        data: identity.to_vec(),
        extend: Extend::DigestOfDigest,
    }
}

pub use crate::tpm::{Tpm, MAX_IDENTITY_BYTES, UX_IDENTITY_NV_INDEX};

pub use crate::digest::{hex, Sha256Digest};

/// The measurements of booting `pkg` under `trust` and the TPM floor it was
/// checked against, in order, the UX `identity` (which only the TPM knows; empty
/// without one) last. A UKI package's sections come first, into PCR 11, as its
/// systemd-stub would have measured them before the kernel started ([`uki`]).
pub fn for_package(
    pkg: &crate::verify::PackageFacts,
    trust: &crate::config::TrustConfig,
    tpm_floor: TpmFloor,
    uki_facts: Option<&crate::ospkg::uki::UkiFacts>,
    identity: &[u8],
) -> Vec<Measurement> {
    let package = PackageInputs {
        archive_name: &pkg.origin().archive_name(),
        archive_sha256: pkg.archive_sha256(),
        descriptor: pkg.descriptor_bytes(),
        version: pkg.manifest().ospkg_version,
        tpm_floor,
    };
    let mut ms = uki_facts.map(|u| uki::measurements(uki::PCR, &u.sections)).unwrap_or_default();
    ms.extend(measurements(&trust.policy.pcrs(), &package, &AuthorityInputs::of(trust)));
    ms.push(identity_measurement(&trust.policy.pcrs(), identity));
    ms
}

/// The TPM for one boot: opened once, the UX identity read from it, the PCRs read
/// and extended. A missing or failing TPM is reported and the boot goes on (as
/// upstream: the measurements are for attestation, the signatures are what gate
/// the boot).
pub struct Session {
    tpm: Option<Tpm>,
    /// The UX identity from NV index [`UX_IDENTITY_NV_INDEX`] (empty without one).
    pub identity: Vec<u8>,
}

impl Session {
    pub fn open() -> Self {
        use tracing::{info, warn};
        let mut tpm = match Tpm::open() {
            Ok(Some(t)) => t,
            Ok(None) => {
                warn!("no TPM found: measurements skipped");
                return Self { tpm: None, identity: Vec::new() };
            }
            Err(e) => {
                warn!("TPM unusable, measurements skipped: {e:#}");
                return Self { tpm: None, identity: Vec::new() };
            }
        };
        let nv = format!("TPM NV index 0x{UX_IDENTITY_NV_INDEX:08x}");
        let identity = match tpm.ux_identity() {
            Ok(Some(id)) => {
                info!("UX identity {:?} from {nv}", crate::verify::printable(&String::from_utf8_lossy(&id)));
                id
            }
            Ok(None) => {
                info!("UX identity: none ({nv} is not defined); the empty identity is measured");
                Vec::new()
            }
            Err(e) => {
                warn!("reading the UX identity from {nv} failed: {e:#}; the empty identity is measured");
                Vec::new()
            }
        };
        Self { tpm: Some(tpm), identity }
    }

    /// The current values of `pcrs`; `None` without a TPM or when one cannot be read.
    pub fn read(&mut self, pcrs: &[u32]) -> Option<BTreeMap<u32, Sha256Digest>> {
        let tpm = self.tpm.as_mut()?;
        pcrs.iter().map(|&p| tpm.read_pcr(p).ok().map(|v| (p, v))).collect()
    }

    /// Extend the PCRs with `ms`, in order, and log each step and the values after.
    pub fn extend(&mut self, ms: &[Measurement]) -> Option<BTreeMap<u32, Sha256Digest>> {
        use tracing::{info, warn};
        let tpm = self.tpm.as_mut()?;
        for m in ms {
            match tpm.extend(m.pcr, &m.extend_value()) {
                Ok(()) => info!("measured {} into PCR {}: {}", m.what, m.pcr, m.digest.hex()),
                Err(e) => warn!("measuring {} into PCR {} failed: {e:#}", m.what, m.pcr),
            }
        }
        let after = self.read(&touched(ms));
        for (pcr, v) in after.iter().flatten() {
            info!("PCR {pcr} = {}", v.hex());
        }
        after
    }
}

/// The measurements of booting one package and the TPM they go into. The PCR values
/// after them are known (and handed to the OS with the event log) before anything is
/// extended; [`Plan::extend`] extends them only once the kernel accepted the image.
pub struct Plan {
    /// In order, the UX identity last.
    pub measurements: Vec<Measurement>,
    /// The TPM floor the package was checked against (measured).
    pub tpm_floor: TpmFloor,
    session: Session,
    /// The PCRs after the measurements; `None` without a readable TPM.
    pub predicted: Option<BTreeMap<u32, Sha256Digest>>,
}

impl Plan {
    /// Open the TPM, read the UX identity and the PCRs the measurements touch.
    pub fn new(
        pkg: &crate::verify::PackageFacts,
        trust: &crate::config::TrustConfig,
        tpm_floor: TpmFloor,
        uki_facts: Option<&crate::ospkg::uki::UkiFacts>,
    ) -> Self {
        let mut session = Session::open();
        let measurements = for_package(pkg, trust, tpm_floor, uki_facts, &session.identity);
        let before = session.read(&touched(&measurements));
        if let Some(u) = uki_facts {
            tracing::info!("UKI: its sections are measured into PCR {} {}", uki::PCR, u.measured_as);
            if let Some(v) = before.as_ref().and_then(|b| b.get(&uki::PCR)).filter(|v| **v != Sha256Digest::default()) {
                tracing::warn!(
                    "PCR {} is not zero before stboot measures the UKI ({}): something measured into it before \
                     (systemd-stub, when stboot itself was started from a UKI), so PCR {} in the OS will not be the \
                     value systemd-measure calculates for the UKI, and secrets sealed to that value will not unlock; \
                     what to do: boot stboot from the ROM (coreboot/LinuxBoot), or seal to PCR {} as the boot report \
                     gives it (docs/formats.md, \"UKI packages\")",
                    uki::PCR,
                    v.hex(),
                    uki::PCR,
                    uki::PCR
                );
            }
        }
        let predicted = before.map(|before| after(&before, &measurements));
        Self { measurements, tpm_floor, session, predicted }
    }

    /// The UX identity from the TPM (empty without one).
    pub fn identity(&self) -> &[u8] {
        &self.session.identity
    }

    /// A dry run touches no TPM: say what would be measured (the UX identity empty).
    pub fn show_dry_run(
        pkg: &crate::verify::PackageFacts,
        trust: &crate::config::TrustConfig,
        uki_facts: Option<&crate::ospkg::uki::UkiFacts>,
    ) {
        for m in &for_package(pkg, trust, TpmFloor::NoTpm, uki_facts, b"") {
            tracing::info!("dry run: would measure {} into PCR {}: {}", m.what, m.pcr, m.digest.hex());
        }
    }

    /// Extend the PCRs, and warn if they do not end where predicted (another writer).
    pub fn extend(mut self) {
        let after = self.session.extend(&self.measurements);
        if self.predicted.is_some() && after.is_some() && self.predicted != after {
            tracing::warn!(
                "the PCRs after measuring differ from the values in the boot report: another writer extended them meanwhile"
            );
        }
    }
}

/// The PCR values after extending PCRs holding `before` with `ms` (PCRs that `ms`
/// does not touch keep their value).
pub fn after(before: &BTreeMap<u32, Sha256Digest>, ms: &[Measurement]) -> BTreeMap<u32, Sha256Digest> {
    let mut v = before.clone();
    for m in ms {
        let cur = v.entry(m.pcr).or_default();
        *cur = extend_pcr(cur, &m.extend_value());
    }
    v
}

/// One TPM2_PCR_Extend of the SHA-256 bank: SHA-256(pcr || value).
fn extend_pcr(pcr: &Sha256Digest, value: &Sha256Digest) -> Sha256Digest {
    let mut h = Sha256::new();
    h.update(pcr.as_bytes());
    h.update(value.as_bytes());
    Sha256Digest::from_bytes(h.finalize().into())
}

/// The PCRs `ms` extends, in ascending order.
pub fn touched(ms: &[Measurement]) -> Vec<u32> {
    let mut v: Vec<u32> = ms.iter().map(|m| m.pcr).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The value of each PCR `ms` touches, after extending zeroed PCRs with `ms` in order.
pub fn pcr_values(ms: &[Measurement]) -> BTreeMap<u32, Sha256Digest> {
    after(&BTreeMap::new(), ms)
}

/// PCR value after extending a zero PCR with `values` in order (for tests and logs).
pub fn replay(values: &[Sha256Digest]) -> Sha256Digest {
    values.iter().fold(Sha256Digest::default(), |pcr, v| extend_pcr(&pcr, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: Sha256Digest = Sha256Digest::from_bytes([1; 32]);

    fn pkg(version: Option<u64>) -> PackageInputs<'static> {
        PackageInputs {
            archive_name: "os.zip",
            archive_sha256: &D1,
            descriptor: b"{}",
            version,
            tpm_floor: TpmFloor::Off,
        }
    }

    fn authority<'a>(
        json: &str,
        roots: &'a [Vec<u8>],
        tls: &'a [Vec<u8>],
        sigsum: Option<&'a [u8]>,
    ) -> AuthorityInputs<'a> {
        AuthorityInputs {
            policy_json: json.into(),
            signing_roots: roots,
            tls_roots: tls,
            sigsum_policy: sigsum,
            revoked: None,
            uki_db: None,
        }
    }

    #[test]
    fn layout_and_double_hash() {
        let d = Pcrs::default();
        let (roots, tls) = ([b"r1".to_vec(), b"r2".to_vec()], [b"t1".to_vec(), b"t2".to_vec()]);
        let mut m = measurements(&d, &pkg(None), &authority("{\"a\":1}", &roots, &tls, None));
        m.push(identity_measurement(&d, b""));
        let pcrs: Vec<u32> = m.iter().map(|x| x.pcr).collect();
        assert_eq!(pcrs, [12, 12, 13, 13, 13, 13, 14]);
        assert_eq!(touched(&m), [12, 13, 14]);
        let with = measurements(&d, &pkg(None), &authority("{}", &[], &[], Some(b"quorum none\n")));
        assert_eq!(with[4].what, "Sigsum policy");
        assert_eq!((with[4].pcr, with[4].digest), (13, sha(b"quorum none\n")));
        // a version and revoked signers: their own events, after the descriptor and
        // after the Sigsum policy
        let mut a = authority("{}", &[], &[], Some(b"quorum none\n"));
        a.revoked = Some(b"sha256:ab\n");
        let more = measurements(&d, &pkg(Some(42)), &a);
        let kinds: Vec<(&str, u32)> = more.iter().map(|m| (m.what, m.pcr)).collect();
        assert_eq!(
            kinds,
            [
                ("OS package archive", 12),
                ("OS package descriptor", 12),
                ("OS package version", 12),
                ("trust policy", 13),
                ("TLS roots", 13),
                ("Sigsum policy", 13),
                ("revoked signers", 13)
            ]
        );
        assert_eq!((more[2].data.as_slice(), more[2].digest), (&b"42"[..], sha(b"42")));
        assert_eq!(more[6].digest, sha(b"sha256:ab\n"));
        // the TPM floor: after the version, only when the policy asks for one
        for (floor, text) in
            [(TpmFloor::At(3), Some("3")), (TpmFloor::Undefined, Some("none")), (TpmFloor::NoTpm, None)]
        {
            let ms = measurements(&d, &PackageInputs { tpm_floor: floor, ..pkg(Some(42)) }, &a);
            let found = ms.iter().find(|m| m.event_type == event_type::TPM_FLOOR);
            assert_eq!(found.map(|m| (m.pcr, m.data.as_slice())), text.map(|t| (12, t.as_bytes())), "{floor:?}");
            assert_eq!(found.map(|m| m.digest), text.map(|t| sha(t.as_bytes())));
            assert_eq!(ms.len(), more.len() + usize::from(text.is_some()));
            if text.is_some() {
                assert_eq!(ms[3].event_type, event_type::TPM_FLOOR, "right after the version");
            }
        }
        assert_eq!(m[0].digest, D1);
        assert_eq!(m[5].digest, sha(b"t1t2"));
        assert_eq!(m[0].extend_value(), sha(&[1; 32]));
        // replay of a single extend: SHA256(0^32 || v)
        let mut z = vec![0u8; 32];
        z.extend_from_slice(&[7; 32]);
        assert_eq!(replay(&[Sha256Digest::from_bytes([7; 32])]), sha(&z));
        assert_eq!(identity_measurement(&d, b"rack-7").digest, sha(b"rack-7"));
    }

    #[test]
    fn chosen_pcrs_move_every_group_and_nothing_else() {
        let chosen = Pcrs { detail: 8, authority: 9, identity: 15 };
        let d = Pcrs::default();
        let args = |p: &Pcrs| {
            let roots = [b"r".to_vec()];
            let mut m = measurements(p, &pkg(None), &authority("{}", &roots, &[], Some(b"quorum none\n")));
            m.push(identity_measurement(p, b"id"));
            m
        };
        let (a, b) = (args(&chosen), args(&d));
        assert_eq!(a.iter().map(|m| m.pcr).collect::<Vec<_>>(), [8, 8, 9, 9, 9, 9, 15]);
        // the same events and digests, only the PCR differs: PCR 8 ends where 12 did
        assert!(a.iter().zip(&b).all(|(x, y)| (x.what, x.digest, &x.data) == (y.what, y.digest, &y.data)));
        let (va, vb) = (pcr_values(&a), pcr_values(&b));
        assert_eq!((va[&8], va[&9], va[&15]), (vb[&12], vb[&13], vb[&14]));
        assert_eq!(touched(&a), [8, 9, 15]);
        // one PCR for all: extended in event order
        let one = Pcrs { detail: 11, authority: 11, identity: 11 };
        let all = args(&one);
        assert_eq!(pcr_values(&all)[&11], replay(&all.iter().map(Measurement::extend_value).collect::<Vec<_>>()));
        assert!((8..=15).all(Pcrs::allowed));
        assert!([0, 7, 16, 17, 22, 23, 24, 1 << 40].iter().all(|&p| !Pcrs::allowed(p)));
    }
}
