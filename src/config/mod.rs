//! Configuration: the trust policy directory, the host configuration and the options
//! on the kernel command line, and where each comes from.

pub mod cmdline;
pub mod host_config;
pub mod identities;
pub mod paths;
pub mod trust_policy;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub use cmdline::Options;
pub use host_config::HostConfig;
pub use trust_policy::{FetchMethod, TrustConfig, TrustPolicy};

pub use paths::{HOST_CONFIG_EFIVAR, HOST_CONFIG_PATH, TRUST_POLICY_DIR};
/// A host configuration is small; larger sources are refused unread.
pub const MAX_HOST_CONFIG_BYTES: u64 = 64 * 1024;

/// Where the host configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostConfigSource {
    File(PathBuf),
    EfiVariable(PathBuf),
    /// Neither exists: DHCP and the provisioning package from the initramfs.
    Provisioning,
}

impl fmt::Display for HostConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostConfigSource::File(p) => write!(f, "file {}", p.display()),
            HostConfigSource::EfiVariable(p) => write!(f, "EFI variable {}", p.display()),
            HostConfigSource::Provisioning => f.write_str("none found: provisioning defaults"),
        }
    }
}

/// Find and parse the host configuration: the file if it exists, else the EFI
/// variable if it exists, else the provisioning defaults. An existing but invalid
/// source is an error, never skipped (as upstream).
pub fn load_host_config(file: &Path, efivar: &Path) -> Result<(HostConfig, HostConfigSource)> {
    load_host_config_bytes(file, efivar).map(|(c, s, _)| (c, s))
}

/// [`load_host_config`], and the JSON bytes it parsed (empty for the provisioning
/// defaults), for [`host_config::unknown_keys`].
pub fn load_host_config_bytes(file: &Path, efivar: &Path) -> Result<(HostConfig, HostConfigSource, Vec<u8>)> {
    if file.exists() {
        let bytes = crate::files::read_capped(file, MAX_HOST_CONFIG_BYTES)?;
        let cfg = HostConfig::parse(&bytes).with_context(|| format!("in {}", file.display()))?;
        return Ok((cfg, HostConfigSource::File(file.to_path_buf()), bytes));
    }
    if efivar.exists() {
        let bytes = crate::files::read_capped(efivar, MAX_HOST_CONFIG_BYTES)?;
        if bytes.len() < 4 {
            bail!("{}: {} bytes, expected 4 attribute bytes followed by JSON", efivar.display(), bytes.len());
        }
        let json = trim_nuls(&bytes[4..]);
        let cfg = HostConfig::parse(json).with_context(|| format!("in {}", efivar.display()))?;
        return Ok((cfg, HostConfigSource::EfiVariable(efivar.to_path_buf()), json.to_vec()));
    }
    Ok((HostConfig::provisioning(), HostConfigSource::Provisioning, Vec::new()))
}

/// Where the configuration is read from: the initramfs's fixed paths, or, for a
/// dry run on an admin host, the directory and file given with `-trustPolicy` and
/// `-hostConfig` ([`Options`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    pub trust_policy: PathBuf,
    /// Upstream's TLS root file before v0.3.2 (only with the fixed paths).
    pub legacy_tls_roots: Option<PathBuf>,
    pub host_config: PathBuf,
    /// The EFI variable tried when the host configuration file does not exist
    /// (not for a file given on the command line: that one must exist).
    pub host_config_efivar: Option<PathBuf>,
}

impl Default for Sources {
    fn default() -> Self {
        Sources {
            trust_policy: TRUST_POLICY_DIR.into(),
            legacy_tls_roots: Some(trust_policy::LEGACY_TLS_ROOTS.into()),
            host_config: HOST_CONFIG_PATH.into(),
            host_config_efivar: Some(HOST_CONFIG_EFIVAR.into()),
        }
    }
}

impl Sources {
    /// The fixed paths, but for what `opts` names.
    pub fn given(opts: &Options) -> Self {
        let mut s = Sources::default();
        if let Some(d) = &opts.trust_policy {
            s.trust_policy.clone_from(d);
            s.legacy_tls_roots = None;
        }
        if let Some(f) = &opts.host_config {
            s.host_config.clone_from(f);
            s.host_config_efivar = None;
        }
        s
    }
}

/// The trust policy from its directory (and upstream's legacy TLS root file).
pub fn load_trust(from: &Sources) -> Result<TrustConfig> {
    TrustConfig::load(&from.trust_policy, from.legacy_tls_roots.as_deref())
}

/// The trust policy and the host configuration, with where the latter came from.
/// Keys of the host configuration no upstream knows are warned about and ignored,
/// as upstream does.
pub fn load(from: &Sources) -> Result<(TrustConfig, HostConfig, HostConfigSource)> {
    let trust = load_trust(from)?;
    let (host, source, bytes) = match &from.host_config_efivar {
        Some(efivar) => load_host_config_bytes(&from.host_config, efivar)?,
        None => {
            if !from.host_config.exists() {
                bail!("-hostConfig {}: no such file", from.host_config.display());
            }
            load_host_config_bytes(&from.host_config, Path::new(""))?
        }
    };
    for w in host_config::unknown_keys(&bytes) {
        tracing::warn!("{w} in {source}: ignored, as upstream does");
    }
    Ok((trust, host, source))
}

/// The fetch method in force: the trust policy's, but the initramfs for the
/// synthesised provisioning configuration. Says which on the console, with the rest
/// of the configuration ([`log_summary`]).
pub fn fetch_method(trust: &TrustConfig, host: &HostConfig, source: &HostConfigSource) -> FetchMethod {
    let provisioning = host.ospkg_pointer == host_config::PROVISION_POINTER;
    let method = if provisioning { FetchMethod::Initramfs } else { trust.policy.ospkg_fetch_method };
    if provisioning {
        tracing::warn!(
            "PROVISION MODE: no host configuration; booting /ospkg/provision.{{json,zip}} from the initramfs"
        );
    }
    log_summary(trust, source, method);
    method
}

/// The configuration in force, on the console: where the host configuration came
/// from, threshold and fetch method, measurement PCRs, Sigsum policy, decryption
/// recipients (never the identities), signing and TLS roots.
pub fn log_summary(trust: &TrustConfig, source: &HostConfigSource, method: FetchMethod) {
    use tracing::info;
    info!("host configuration from {source}");
    info!("trust policy: threshold {}, fetch method {:?}", trust.policy.ospkg_signature_threshold, method);
    if let Some(p) = trust.policy.measurement_pcrs {
        info!(
            "measurement PCRs from trust_policy.json: detail {}, authority {}, identity {} (upstream: 12, 13, 14)",
            p.detail, p.authority, p.identity
        );
    }
    if let Some(p) = &trust.sigsum_policy {
        info!("Sigsum policy: {} log(s); Sigsum proofs can count toward the threshold", p.policy.logs().count());
    }
    if let Some(ids) = &trust.decryption_identities {
        info!(
            "decryption identities: {} ({}); age-encrypted packages are decrypted after download",
            ids.len(),
            ids.recipients().join(", ")
        );
    }
    for r in &trust.signing_roots {
        info!("signing root: {}", crate::keys::describe_certificate(r));
    }
    match &trust.tls_roots_path {
        Some(p) => {
            for r in &trust.tls_roots {
                info!("TLS root ({}): {}", p.display(), crate::keys::describe_certificate(r));
            }
        }
        None => info!("no TLS roots: only http:// URLs can be fetched"),
    }
}

fn trim_nuls(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
    &b[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_order_file_then_efivar_then_provisioning() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("host_configuration.json");
        let var = d.path().join("STHostConfig");
        let (c, s) = load_host_config(&file, &var).unwrap();
        assert_eq!(s, HostConfigSource::Provisioning);
        assert_eq!(c.ospkg_pointer, "provision.zip");

        let mut v = vec![7, 0, 0, 0];
        v.extend_from_slice(br#"{"network_mode":"dhcp","ospkg_pointer":"http://efi/x.json"}"#);
        std::fs::write(&var, &v).unwrap();
        let (c, s) = load_host_config(&file, &var).unwrap();
        assert_eq!(s, HostConfigSource::EfiVariable(var.clone()));
        assert_eq!(c.ospkg_pointer, "http://efi/x.json");

        std::fs::write(&file, br#"{"network_mode":"dhcp","ospkg_pointer":"http://file/x.json"}"#).unwrap();
        let (c, _) = load_host_config(&file, &var).unwrap();
        assert_eq!(c.ospkg_pointer, "http://file/x.json");

        std::fs::write(&file, b"{").unwrap();
        let e = format!("{:#}", load_host_config(&file, &var).unwrap_err());
        assert!(e.contains("host_configuration.json") && e.contains("not valid JSON"), "{e}");

        std::fs::remove_file(&file).unwrap();
        std::fs::write(&var, [7, 0]).unwrap();
        assert!(load_host_config(&file, &var).unwrap_err().to_string().contains("4 attribute bytes"));
    }
}
