//! The trust policy directory: `trust_policy.json`, the OS package signing root(s) and
//! the TLS roots.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::Value;

use crate::gojson;

pub const TRUST_POLICY_FILE: &str = "trust_policy.json";
pub const SIGNING_ROOT_FILE: &str = "ospkg_signing_root.pem";
pub const TLS_ROOTS_FILE: &str = "tls_roots.pem";
/// The Sigsum policy (logs, witnesses, quorum) under which Sigsum proofs count;
/// optional.
pub const SIGSUM_POLICY_FILE: &str = "ospkg_trust_policy";
/// Signing certificates or keys that never count (revocation; stboot-rs
/// extension); optional.
pub const REVOKED_SIGNERS_FILE: &str = "ospkg_revoked_signers";
/// The age identities encrypted packages are decrypted with; optional.
pub const DECRYPTION_IDENTITIES_FILE: &str = super::identities::IDENTITIES_FILE;
/// UEFI `db` certificates: when present, only UKI packages whose Secure Boot
/// signature verifies against one of them boot (stboot-rs extension); optional.
pub const UKI_DB_FILE: &str = "ospkg_uki_db.pem";
/// Every file of a trust policy directory stboot reads, and whether it is
/// required: what `stmgr initramfs build` copies (a file missing here would be
/// left behind silently).
pub const FILES: [(&str, bool); 7] = [
    (TRUST_POLICY_FILE, true),
    (SIGNING_ROOT_FILE, true),
    (TLS_ROOTS_FILE, false),
    (SIGSUM_POLICY_FILE, false),
    (REVOKED_SIGNERS_FILE, false),
    (DECRYPTION_IDENTITIES_FILE, false),
    (UKI_DB_FILE, false),
];
/// Where stboot before v0.3.2 kept its TLS roots.
pub const LEGACY_TLS_ROOTS: &str = "/etc/ssl/certs/isrgrootx1.pem";

/// Which PCR each group of measurements goes to. Upstream's 12/13/14 unless the
/// trust policy's `measurement_pcrs` says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Pcrs {
    /// The OS package: archive and descriptor.
    pub detail: u32,
    /// The security configuration: trust policy, roots, Sigsum policy.
    pub authority: u32,
    /// The UX identity.
    pub identity: u32,
}

impl Default for Pcrs {
    fn default() -> Self {
        Self { detail: 12, authority: 13, identity: 14 }
    }
}

impl Pcrs {
    /// Whether `pcr` may hold stboot's measurements: 8-15. 0-7 are the firmware's,
    /// 16 and 23 can be reset from the OS (a value there proves nothing) and 17-22
    /// can only be extended by dynamic launch (locality 3 and 4).
    pub fn allowed(pcr: u64) -> bool {
        (8..=15).contains(&pcr)
    }
}

/// How the OS package is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FetchMethod {
    Network,
    Initramfs,
}

/// `trust_policy.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustPolicy {
    pub ospkg_signature_threshold: u32,
    pub ospkg_fetch_method: FetchMethod,
    /// stboot-rs extension: the PCRs measurements go to (default: upstream's
    /// 12/13/14). Part of the measured trust policy JSON only when the file has it,
    /// so upstream's policies measure as before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measurement_pcrs: Option<Pcrs>,
    /// stboot-rs extension: the lowest OS package version (the manifest's
    /// `ospkg_version`, 0 without one) this machine boots; rollback protection.
    /// Measured with the policy only when the file has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ospkg_min_version: Option<u64>,
    /// stboot-rs extension: whether the TPM floor (NV index 0x01420002, only
    /// rising; [`crate::tpm::floor`]) also bounds the version. Measured with the
    /// policy only when the file has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ospkg_tpm_floor: Option<bool>,
}

impl TrustPolicy {
    /// Parse like upstream (`json.Decoder.Decode`: only the first JSON value is read).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        const W: &str = TRUST_POLICY_FILE;
        let obj = gojson::parse_first_object(bytes, W)?;
        let threshold = match gojson::get_non_null(&obj, "ospkg_signature_threshold") {
            None => bail!("{W}: field \"ospkg_signature_threshold\" is missing, expected an integer >= 1"),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(t) if t >= 1 && t <= i64::from(u32::MAX) => t as u32,
                _ => bail!("{W}: field \"ospkg_signature_threshold\": {n} is not allowed, expected an integer >= 1"),
            },
            Some(other) => bail!(
                "{W}: field \"ospkg_signature_threshold\": expected an integer >= 1, found {}",
                gojson::type_name(other)
            ),
        };
        let method = match gojson::get_non_null(&obj, "ospkg_fetch_method") {
            Some(Value::String(s)) if s == "network" => FetchMethod::Network,
            Some(Value::String(s)) if s == "initramfs" => FetchMethod::Initramfs,
            Some(v) => {
                bail!("{W}: field \"ospkg_fetch_method\": {v} is not allowed, expected \"network\" or \"initramfs\"")
            }
            None => bail!("{W}: field \"ospkg_fetch_method\" is missing, expected \"network\" or \"initramfs\""),
        };
        let measurement_pcrs = match gojson::get_non_null(&obj, "measurement_pcrs") {
            None => None,
            Some(v) => Some(parse_pcrs(v)?),
        };
        let ospkg_min_version =
            gojson::opt_whole(&obj, "ospkg_min_version", W, " (the lowest OS package version to boot)")?;
        let ospkg_tpm_floor = gojson::opt_bool(&obj, "ospkg_tpm_floor", W)?;
        Ok(Self {
            ospkg_signature_threshold: threshold,
            ospkg_fetch_method: method,
            measurement_pcrs,
            ospkg_min_version,
            ospkg_tpm_floor,
        })
    }

    /// The lowest package version this policy boots (0: any).
    pub fn min_version(&self) -> u64 {
        self.ospkg_min_version.unwrap_or(0)
    }

    /// Whether the TPM floor bounds the version too.
    pub fn tpm_floor(&self) -> bool {
        self.ospkg_tpm_floor.unwrap_or(false)
    }

    /// The PCRs measurements go to.
    pub fn pcrs(&self) -> Pcrs {
        self.measurement_pcrs.unwrap_or_default()
    }

    /// `stmgr trustpolicy check` output: indented, with a trailing newline.
    pub fn to_json(&self) -> String {
        gojson::marshal_indent(self) + "\n"
    }
}

/// `"measurement_pcrs": {"detail": N, "authority": N, "identity": N}`; a missing
/// key keeps upstream's PCR for it, an unknown key is refused (a typo would
/// otherwise silently measure into the default PCR).
fn parse_pcrs(v: &Value) -> Result<Pcrs> {
    const F: &str = "trust_policy.json: field \"measurement_pcrs\"";
    const RANGE: &str = "expected a PCR from 8 to 15 (0-7 are the firmware's, 16 and 23 can be reset by the OS, 17-22 are for dynamic launch)";
    let Value::Object(obj) = v else {
        bail!(
            "{F}: expected an object like {{\"detail\": 12, \"authority\": 13, \"identity\": 14}}, found {}",
            gojson::type_name(v)
        );
    };
    let mut pcrs = Pcrs::default();
    for (key, val) in obj {
        let slot = match key.as_str() {
            "detail" => &mut pcrs.detail,
            "authority" => &mut pcrs.authority,
            "identity" => &mut pcrs.identity,
            other => bail!("{F}: unknown key {other:?}, expected \"detail\", \"authority\" or \"identity\""),
        };
        *slot = match val {
            Value::Number(n) => match n.as_u64() {
                Some(p) if Pcrs::allowed(p) => p as u32,
                _ => bail!("{F}: \"{key}\": {n} is not allowed, {RANGE}"),
            },
            other => bail!("{F}: \"{key}\": {RANGE}, found {}", gojson::type_name(other)),
        };
    }
    Ok(pcrs)
}

/// Everything the trust policy directory holds.
#[derive(Debug, Clone)]
pub struct TrustConfig {
    pub policy: TrustPolicy,
    /// DER of each OS package signing root.
    pub signing_roots: Vec<Vec<u8>>,
    pub signing_roots_path: PathBuf,
    /// DER of each TLS root; empty when no TLS roots file exists.
    pub tls_roots: Vec<Vec<u8>>,
    pub tls_roots_path: Option<PathBuf>,
    /// The Sigsum policy, when `ospkg_trust_policy` exists.
    pub sigsum_policy: Option<std::sync::Arc<SigsumPolicy>>,
    /// The revoked signers, when `ospkg_revoked_signers` exists.
    pub revoked: Option<std::sync::Arc<Revocations>>,
    /// The age identities, when `decryption_identities` exists (secret; not measured).
    pub decryption_identities: Option<std::sync::Arc<super::identities::Identities>>,
    /// The UEFI `db` certificates UKI packages must be signed for, when
    /// `ospkg_uki_db.pem` exists.
    pub uki_db: Option<std::sync::Arc<UkiDb>>,
}

/// `ospkg_uki_db.pem`: the certificates (DER, in file order) and the file's bytes
/// (measured).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UkiDb {
    pub certificates: Vec<Vec<u8>>,
    pub bytes: Vec<u8>,
}

/// The UEFI `db` certificates of a trust policy directory, if it has them.
pub fn read_uki_db(dir: &Path) -> Result<Option<UkiDb>> {
    let path = dir.join(UKI_DB_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let what = path.display().to_string();
    let certificates = crate::pem::certificates(&bytes, &what)
        .context("expected the PEM certificates of the UEFI db the UKIs are signed for")?;
    for (i, der) in certificates.iter().enumerate() {
        x509_parser::parse_x509_certificate(der)
            .map_err(|e| anyhow::anyhow!("{what}: certificate #{i} is not valid X.509: {e}"))?;
    }
    Ok(Some(UkiDb { certificates, bytes }))
}

/// `ospkg_trust_policy`: the parsed Sigsum policy and the file's bytes (measured).
#[derive(Debug)]
pub struct SigsumPolicy {
    pub policy: ::sigsum::Policy,
    pub bytes: Vec<u8>,
}

impl TrustConfig {
    /// Read a trust policy directory. TLS roots come from `DIR/tls_roots.pem`, else
    /// from `legacy_tls_roots` if given and present; they are optional here (they are
    /// needed only for HTTPS, and only the fetch step knows whether it will use it).
    pub fn load(dir: &Path, legacy_tls_roots: Option<&Path>) -> Result<Self> {
        let policy_path = dir.join(TRUST_POLICY_FILE);
        let bytes = std::fs::read(&policy_path).with_context(|| format!("reading {}", policy_path.display()))?;
        let policy = TrustPolicy::parse(&bytes).with_context(|| format!("in {}", policy_path.display()))?;
        let signing_roots_path = dir.join(SIGNING_ROOT_FILE);
        let signing_roots = read_certs(&signing_roots_path)?;
        let mut tls_roots = Vec::new();
        let mut tls_roots_path = None;
        let candidates = [Some(dir.join(TLS_ROOTS_FILE)), legacy_tls_roots.map(Path::to_path_buf)];
        for p in candidates.into_iter().flatten() {
            if p.exists() {
                tls_roots = read_certs(&p)?;
                tls_roots_path = Some(p);
                break;
            }
        }
        let sigsum_policy = read_sigsum_policy(dir)?.map(std::sync::Arc::new);
        let revoked = read_revocations(dir)?.map(std::sync::Arc::new);
        let decryption_identities = super::identities::Identities::load(dir)?.map(std::sync::Arc::new);
        let uki_db = read_uki_db(dir)?.map(std::sync::Arc::new);
        Ok(Self {
            policy,
            signing_roots,
            signing_roots_path,
            tls_roots,
            tls_roots_path,
            sigsum_policy,
            revoked,
            decryption_identities,
            uki_db,
        })
    }
}

/// `ospkg_revoked_signers`: one SHA-256 per line, of a signing certificate (DER)
/// or of its public key (SubjectPublicKeyInfo DER), as `sha256:HEX` or `HEX`, with
/// an optional comment after it; `#` lines and blank lines are ignored. A signer
/// listed either way never counts toward the threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocations {
    /// Each entry and its line number (from 1).
    pub entries: Vec<(crate::digest::Sha256Digest, usize)>,
    /// The file's bytes, as measured.
    pub bytes: Vec<u8>,
}

impl Revocations {
    /// Parse the file's bytes; `what` names the file in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<Self> {
        let text = std::str::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{what}: not text"))?;
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let word = line.split_whitespace().next().unwrap_or("");
            let hex = word.strip_prefix("sha256:").unwrap_or(word);
            let d = crate::digest::Sha256Digest::from_hex(hex).ok_or_else(|| {
                anyhow::anyhow!(
                    "{what}: line {}: {word:?} is not a SHA-256 in hex; expected sha256:HEX of a signing certificate \
                     (openssl x509 -outform der | sha256sum) or of its public key, one per line",
                    i + 1
                )
            })?;
            entries.push((d, i + 1));
        }
        Ok(Self { entries, bytes: bytes.to_vec() })
    }

    /// The line of the entry `d`, if listed.
    pub fn line_of(&self, d: &crate::digest::Sha256Digest) -> Option<usize> {
        self.entries.iter().find(|(e, _)| e == d).map(|(_, l)| *l)
    }
}

/// The revoked signers of a trust policy directory, if it lists any.
pub fn read_revocations(dir: &Path) -> Result<Option<Revocations>> {
    let path = dir.join(REVOKED_SIGNERS_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Revocations::parse(&bytes, &path.display().to_string()).map(Some)
}

/// The Sigsum policy of a trust policy directory, if it has one.
pub fn read_sigsum_policy(dir: &Path) -> Result<Option<SigsumPolicy>> {
    let path = dir.join(SIGSUM_POLICY_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let policy = parse_sigsum_policy(&bytes, &path.display().to_string())?;
    Ok(Some(SigsumPolicy { policy, bytes }))
}

/// Parse the Sigsum policy file in sigsum-go v0.11.2's grammar (the one upstream
/// stmgr v0.6.6 and stboot v0.6 read): a `#` starts a comment anywhere on a line, and a
/// witness may be a member of more than one group. sigsum-go v0.12 and later refuse
/// both; trust policies written for upstream have them, so they keep working here.
/// `what` names the file.
pub fn parse_sigsum_policy(bytes: &[u8], what: &str) -> anyhow::Result<::sigsum::Policy> {
    let text = std::str::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{what}: not text; expected a Sigsum policy"))?;
    // the crate takes comments only at the start of a line: cut them off as v0.11.2
    // does (line numbers stay the same)
    let text: String = text.lines().map(|l| format!("{}\n", l.split('#').next().unwrap_or(""))).collect();
    ::sigsum::Policy::parse(&text).map_err(|e| {
        anyhow::anyhow!(
            "{what}: {e}; expected Sigsum policy lines (log KEY [URL], witness NAME KEY [URL], group NAME K|all|any MEMBER..., quorum NAME|none)"
        )
    })
}

/// Read a PEM file of one or more certificates.
pub fn read_certs(path: &Path) -> Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let certs = crate::pem::certificates(&bytes, &path.display().to_string())?;
    for (i, der) in certs.iter().enumerate() {
        x509_parser::parse_x509_certificate(der)
            .map_err(|e| anyhow::anyhow!("{}: certificate #{i} is not valid X.509: {e}", path.display()))?;
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_policies() {
        let p =
            TrustPolicy::parse(br#"{"ospkg_signature_threshold": 2, "ospkg_fetch_method": "network", "unknown": 1}"#)
                .unwrap();
        assert_eq!(p.ospkg_signature_threshold, 2);
        assert_eq!(p.ospkg_fetch_method, FetchMethod::Network);
        let p = TrustPolicy::parse(br#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":"initramfs"} trailing"#)
            .unwrap();
        assert_eq!(p.ospkg_fetch_method, FetchMethod::Initramfs);
        assert_eq!(p.to_json(), "{\n  \"ospkg_signature_threshold\": 1,\n  \"ospkg_fetch_method\": \"initramfs\"\n}\n");
        assert_eq!(gojson::marshal(&p), r#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":"initramfs"}"#);
    }

    #[test]
    fn measurement_pcrs() {
        use Pcrs;
        let base = r#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":"network""#;
        let p = TrustPolicy::parse(format!("{base}}}").as_bytes()).unwrap();
        assert_eq!((p.measurement_pcrs, p.pcrs()), (None, Pcrs::default()));
        // upstream's policy measures exactly as before: the field is not added
        assert_eq!(gojson::marshal(&p), format!("{base}}}"));
        let p = TrustPolicy::parse(format!(r#"{base},"measurement_pcrs":{{"detail":8,"identity":15}}}}"#).as_bytes())
            .unwrap();
        assert_eq!(p.pcrs(), Pcrs { detail: 8, authority: 13, identity: 15 });
        assert_eq!(
            gojson::marshal(&p),
            format!(r#"{base},"measurement_pcrs":{{"detail":8,"authority":13,"identity":15}}}}"#)
        );
        assert!(p.to_json().contains("\"measurement_pcrs\": {\n    \"detail\": 8,"));
        let p = TrustPolicy::parse(format!(r#"{base},"measurement_pcrs":null}}"#).as_bytes()).unwrap();
        assert_eq!(p.measurement_pcrs, None);
        for (v, want) in [
            ("7", "7 is not allowed, expected a PCR from 8 to 15"),
            ("16", "16 is not allowed"),
            ("23", "23 is not allowed"),
            ("-1", "-1 is not allowed"),
            ("8.5", "8.5 is not allowed"),
            ("\"8\"", "found a string"),
        ] {
            let e = TrustPolicy::parse(format!(r#"{base},"measurement_pcrs":{{"detail":{v}}}}}"#).as_bytes())
                .unwrap_err()
                .to_string();
            assert!(e.contains("field \"measurement_pcrs\": \"detail\"") && e.contains(want), "{v}: {e}");
        }
        let e = TrustPolicy::parse(format!(r#"{base},"measurement_pcrs":{{"details":8}}}}"#).as_bytes()).unwrap_err();
        assert!(e.to_string().contains("unknown key \"details\""), "{e}");
        let e = TrustPolicy::parse(format!(r#"{base},"measurement_pcrs":[8,9,10]}}"#).as_bytes()).unwrap_err();
        assert!(e.to_string().contains("expected an object like"), "{e}");
    }

    #[test]
    fn invalid_policies() {
        let cases: &[(&str, &str)] = &[
            (r#"{"ospkg_fetch_method":"network"}"#, "\"ospkg_signature_threshold\" is missing"),
            (
                r#"{"ospkg_signature_threshold":null,"ospkg_fetch_method":"network"}"#,
                "\"ospkg_signature_threshold\" is missing",
            ),
            (r#"{"ospkg_signature_threshold":0,"ospkg_fetch_method":"network"}"#, "0 is not allowed"),
            (r#"{"ospkg_signature_threshold":-1,"ospkg_fetch_method":"network"}"#, "-1 is not allowed"),
            (r#"{"ospkg_signature_threshold":1.5,"ospkg_fetch_method":"network"}"#, "1.5 is not allowed"),
            (r#"{"ospkg_signature_threshold":1e0,"ospkg_fetch_method":"network"}"#, "is not allowed"),
            (r#"{"ospkg_signature_threshold":"1","ospkg_fetch_method":"network"}"#, "found a string"),
            (r#"{"ospkg_signature_threshold":1}"#, "\"ospkg_fetch_method\" is missing"),
            (r#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":""}"#, "\"\" is not allowed"),
            (r#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":"disk"}"#, "\"disk\" is not allowed"),
            (r#"[]"#, "expected a JSON object"),
        ];
        for (input, want) in cases {
            let e = TrustPolicy::parse(input.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(want), "{input}: {e:?} should contain {want:?}");
        }
    }

    #[test]
    fn a_floor_is_a_whole_number_and_measured_only_when_given() {
        let base = r#""ospkg_signature_threshold": 1, "ospkg_fetch_method": "network""#;
        let p = TrustPolicy::parse(format!("{{{base}, \"ospkg_min_version\": 3}}").as_bytes()).unwrap();
        assert_eq!(p.min_version(), 3);
        assert!(crate::gojson::marshal(&p).ends_with(r#","ospkg_min_version":3}"#), "{}", crate::gojson::marshal(&p));
        let p = TrustPolicy::parse(format!("{{{base}}}").as_bytes()).unwrap();
        assert_eq!(p.min_version(), 0);
        assert!(!crate::gojson::marshal(&p).contains("min_version"));
        assert!(!p.tpm_floor());
        let p = TrustPolicy::parse(format!("{{{base}, \"ospkg_tpm_floor\": true}}").as_bytes()).unwrap();
        assert!(p.tpm_floor());
        assert!(crate::gojson::marshal(&p).ends_with(r#","ospkg_tpm_floor":true}"#), "{}", crate::gojson::marshal(&p));
        let e = TrustPolicy::parse(format!("{{{base}, \"ospkg_tpm_floor\": \"yes\"}}").as_bytes()).unwrap_err();
        assert!(
            e.to_string()
                .contains("trust_policy.json: field \"ospkg_tpm_floor\": expected true or false, found a string"),
            "{e}"
        );
        for bad in ["-1", "2.5", "\"3\"", "true"] {
            let e = TrustPolicy::parse(format!("{{{base}, \"ospkg_min_version\": {bad}}}").as_bytes()).unwrap_err();
            assert!(e.to_string().contains("field \"ospkg_min_version\": expected a whole number >= 0"), "{bad}: {e}");
        }
    }

    #[test]
    fn revoked_signers_are_digests_one_per_line() {
        let a = "ab".repeat(32);
        let b = "CD".repeat(32);
        let text = format!("# leaked 2026-11-30\nsha256:{a}  alice's old key\n\n{b}\n");
        let r = Revocations::parse(text.as_bytes(), "ospkg_revoked_signers").unwrap();
        assert_eq!(r.entries.len(), 2);
        assert_eq!(r.line_of(&crate::digest::Sha256Digest::from_hex(&a).unwrap()), Some(2));
        assert_eq!(r.line_of(&crate::digest::Sha256Digest::from_hex(&b.to_lowercase()).unwrap()), Some(4));
        assert_eq!(r.line_of(&crate::digest::Sha256Digest::from_bytes([0; 32])), None);
        let e = Revocations::parse(b"# x\nsha256:abcd\n", "DIR/ospkg_revoked_signers").unwrap_err().to_string();
        assert!(e.contains("DIR/ospkg_revoked_signers: line 2: \"sha256:abcd\" is not a SHA-256 in hex"), "{e}");
        assert!(Revocations::parse(b"\xff\n", "f").unwrap_err().to_string().contains("not text"));
    }
}
