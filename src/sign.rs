//! Signing OS packages, stmgr's side of the signatures stboot checks: a signature by
//! a key and its certificate, or a Sigsum proof with the certificate of the key that
//! submitted it, added to the descriptor (`stmgr ospkg sign`, `stmgr ospkg sigsum`).

use anyhow::{bail, Result};

use crate::ospkg::{self, Descriptor, PackagePaths};
use crate::verify;

/// Add a signature by `key` with certificate `cert_der` to the descriptor.
/// Refuses a certificate or key that already signed, and a key that does not belong
/// to the certificate.
pub fn sign(paths: &PackagePaths, key: &crate::keys::Key, cert_der: &[u8]) -> Result<()> {
    let (mut descriptor, archive) = ospkg::read(paths)?;
    let cert_key = certificate_key(cert_der)?;
    if cert_key != *key.public().as_bytes() {
        bail!("the key does not belong to the certificate (their public keys differ)");
    }
    let digest = verify::digest(&archive);
    add_signature(&mut descriptor, cert_der, key.sign(digest.as_bytes())?.to_vec())?;
    ospkg::write_file(&paths.descriptor, descriptor.to_json().as_bytes())
}

/// `stmgr ospkg sigsum`: attach a Sigsum proof of the archive (what `sigsum-submit`
/// wrote for it) with the certificate of the key that submitted it, as upstream does:
/// the proof's leaf must be this archive signed by the certificate's key (the log
/// and witnesses are checked at verification, under the trust policy's Sigsum
/// policy). The proof goes into the descriptor verbatim.
pub fn attach_sigsum_proof(paths: &PackagePaths, proof: &[u8], cert_der: &[u8]) -> Result<()> {
    let (mut descriptor, archive) = ospkg::read(paths)?;
    let cert_key = certificate_key(cert_der)?;
    if !verify::sigsum::is_proof(proof) {
        bail!("not a Sigsum proof: it does not start with \"version=\"");
    }
    let digest = verify::digest(&archive);
    verify::sigsum::check_leaf(proof, digest.as_bytes(), &cert_key).map_err(|e| anyhow::anyhow!("{e}"))?;
    add_signature(&mut descriptor, cert_der, proof.to_vec())?;
    ospkg::write_file(&paths.descriptor, descriptor.to_json().as_bytes())
}

fn certificate_key(cert_der: &[u8]) -> Result<[u8; 32]> {
    crate::keys::certificate_ed25519_key(cert_der)
        .ok_or_else(|| anyhow::anyhow!("the certificate's key is not Ed25519; only Ed25519 keys sign OS packages"))
}

/// Append signature (or proof) and certificate, refusing a certificate or key that
/// has already signed (a second signature by one key would not count).
fn add_signature(descriptor: &mut Descriptor, cert_der: &[u8], signature: Vec<u8>) -> Result<()> {
    let cert_key = certificate_key(cert_der)?;
    for (i, c) in descriptor.certificates.iter().enumerate() {
        let existing = verify::decode_certificate(c).ok();
        if existing.as_deref() == Some(cert_der) {
            bail!("certificate has already been used (signature {i})");
        }
        if existing.and_then(|d| crate::keys::certificate_ed25519_key(&d)) == Some(cert_key) {
            bail!("this key has already signed (signature {i}); a second signature by the same key would not count");
        }
    }
    // signature i pairs with certificate i: keep the arrays parallel
    descriptor.certificates.truncate(descriptor.signatures.len());
    descriptor.signatures.push(signature);
    descriptor.certificates.push(crate::pem::encode("CERTIFICATE", cert_der).into_bytes());
    Ok(())
}
