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
    /// Root private key [default: rootkey.pem; with -isCA, a new key].
    #[arg(long = "rootKey")]
    root_key: Option<PathBuf>,
    /// Existing leaf private key [default: a new key].
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
}

impl KeygenCmd {
    pub fn run(self) -> Result<ExitCode> {
        let KeygenCmd::Certificate(a) = self;
        // with -isCA the key being certified is -rootKey; otherwise -leafKey
        let (key_path, cert_name, key_name, days) = if a.is_ca {
            (a.root_key.clone(), "rootcert.pem", "rootkey.pem", keys::DEFAULT_ROOT_VALIDITY_DAYS)
        } else {
            (a.leaf_key, "cert.pem", "key.pem", keys::DEFAULT_LEAF_VALIDITY_DAYS)
        };
        let (key, new) = match &key_path {
            Some(p) => (keys::load_signing_key(p)?, false),
            None => (keys::generate_key(), true),
        };
        let v = Validity::from_args(a.valid_from.as_deref(), a.valid_until.as_deref(), days)?;
        let pem = if a.is_ca {
            keys::root_certificate(&key, &v)?
        } else {
            let root_key = a.root_key.unwrap_or_else(|| "rootkey.pem".into());
            let rkey = keys::load_signing_key(&root_key)?;
            let rcert = keys::load_certificate(&a.root_cert)?;
            keys::leaf_certificate(&key, &rcert, &rkey, &v).with_context(|| {
                format!(
                    "issuing a certificate with -rootCert {} and -rootKey {}",
                    a.root_cert.display(),
                    root_key.display()
                )
            })?
        };
        super::write_out(&a.cert_out.unwrap_or_else(|| cert_name.into()), pem.as_bytes(), 0o644)?;
        if new {
            let key_out = a.key_out.unwrap_or_else(|| key_name.into());
            super::write_out(&key_out, keys::signing_key_pem(&key)?.as_bytes(), 0o600)?;
        }
        Ok(ExitCode::SUCCESS)
    }
}
