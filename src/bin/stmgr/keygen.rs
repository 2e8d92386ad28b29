//! `stmgr keygen`: Ed25519 root and signing certificates.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use stboot::keys::{self, Validity};

#[derive(Subcommand)]
pub enum KeygenCmd {
    /// Make an Ed25519 root (-isCA) or signing (leaf) certificate.
    #[command(after_help = "\
Examples:
  stmgr keygen certificate -isCA
      rootcert.pem and rootkey.pem, valid for 10 years
  stmgr keygen certificate -rootCert rootcert.pem -rootKey rootkey.pem \\
      -certOut signer1.pem -keyOut signer1.key
  stmgr keygen certificate -leafKey existing.key -certOut signer2.pem")]
    Certificate(CertificateArgs),
}

#[derive(clap::Args)]
pub struct CertificateArgs {
    /// Make a self-signed root certificate.
    #[arg(long = "isCA")]
    is_ca: bool,
    /// Root certificate that issues the leaf.
    #[arg(long = "rootCert", default_value = "rootcert.pem")]
    root_cert: PathBuf,
    /// Root private key, or its public key when ssh-agent holds the private half
    /// [default: rootkey.pem; with -isCA, a new key].
    #[arg(long = "rootKey")]
    root_key: Option<PathBuf>,
    /// Existing leaf key to certify: a public key (OpenSSH or PEM, as upstream) or a
    /// private key [default: a new key].
    #[arg(long = "leafKey")]
    leaf_key: Option<PathBuf>,
    /// Where to write the certificate [default: rootcert.pem or cert.pem].
    #[arg(long = "certOut")]
    cert_out: Option<PathBuf>,
    /// Where to write a new private key [default: rootkey.pem or key.pem].
    #[arg(long = "keyOut")]
    key_out: Option<PathBuf>,
    /// Start of validity, RFC 3339 [default: now].
    #[arg(long = "validFrom")]
    valid_from: Option<String>,
    /// End of validity, RFC 3339 [default: 10 years (root) or 5 years (leaf)].
    #[arg(long = "validUntil")]
    valid_until: Option<String>,
    /// The signer's readable name (X.520 pseudonym; the CN stays the key hash, as
    /// upstream): shown by stboot, ospkg verify and the boot report.
    #[arg(long)]
    name: Option<String>,
    /// Write the certificate even if its validity has already ended.
    #[arg(long)]
    force: bool,
}

impl KeygenCmd {
    pub fn run(self) -> Result<ExitCode> {
        let KeygenCmd::Certificate(a) = self;
        let v = Validity::from_args(
            a.valid_from.as_deref(),
            a.valid_until.as_deref(),
            if a.is_ca { keys::DEFAULT_ROOT_VALIDITY_DAYS } else { keys::DEFAULT_LEAF_VALIDITY_DAYS },
        )?;
        v.check_not_over(a.force)?;
        if let Some(n) = &a.name {
            keys::check_name(n)?;
        }
        // the key being certified: with -isCA -rootKey, otherwise -leafKey (a
        // public key is enough there); without one, a new key written to -keyOut
        let (cert_name, key_name) = if a.is_ca { ("rootcert.pem", "rootkey.pem") } else { ("cert.pem", "key.pem") };
        let given = if a.is_ca { &a.root_key } else { &a.leaf_key };
        let new_key = if given.is_none() { Some(keys::generate_key()) } else { None };
        let pem = if a.is_ca {
            let key = match (&new_key, given) {
                (Some(k), _) => keys::Key::Local(k.clone()),
                (None, Some(p)) => keys::load_key(p).with_context(|| format!("-rootKey {}", p.display()))?,
                (None, None) => unreachable!("a key is either given or new"),
            };
            keys::root_certificate_with(&key, &v, a.name.as_deref())?
        } else {
            let leaf = match (&new_key, given) {
                (Some(k), _) => k.verifying_key(),
                (None, Some(p)) => keys::load_public_key(p).with_context(|| format!("-leafKey {}", p.display()))?,
                (None, None) => unreachable!("a key is either given or new"),
            };
            let root_key = a.root_key.unwrap_or_else(|| "rootkey.pem".into());
            let rkey = keys::load_key(&root_key).with_context(|| format!("-rootKey {}", root_key.display()))?;
            let rcert = keys::load_certificate(&a.root_cert)?;
            keys::leaf_certificate_for(&leaf, &rcert, &rkey, &v, a.name.as_deref()).with_context(|| {
                format!(
                    "issuing a certificate with -rootCert {} and -rootKey {}",
                    a.root_cert.display(),
                    root_key.display()
                )
            })?
        };
        super::write_out(&a.cert_out.unwrap_or_else(|| cert_name.into()), pem.as_bytes(), 0o644)?;
        if let Some(key) = &new_key {
            let key_out = a.key_out.unwrap_or_else(|| key_name.into());
            super::write_out(&key_out, keys::signing_key_pem(key)?.as_bytes(), 0o600)?;
        }
        Ok(ExitCode::SUCCESS)
    }
}
