//! The verifier's side of credential activation: TPM2_MakeCredential done in
//! software (TPM 2.0 Library Part 1 §24, "Credential Protection", and Annex B.10.3
//! for an RSA key). A secret is sealed to an EK *and* the Name of an AK: only a TPM
//! that holds that EK releases it (TPM2_ActivateCredential), and only when it holds
//! an object with that Name. A verifier who trusts the EK (its certificate chains to
//! the TPM vendor's CA) and gets its secret back so learns that the AK lives in that
//! TPM.

use aes::cipher::{AsyncStreamCipher, KeyIvInit};
use hmac::{Hmac, Mac};
use rsa::{BigUint, Oaep, RsaPublicKey};
use sha2::Sha256;

use crate::tpm::object::{Key, Public, ALG_AES, ALG_CFB, ALG_SHA256};
use crate::tpm::wire::Out;

/// What TPM2_ActivateCredential takes: the credential blob (TPM2B_ID_OBJECT's
/// bytes) and the encrypted seed (TPM2B_ENCRYPTED_SECRET's bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub blob: Vec<u8>,
    pub secret: Vec<u8>,
}

/// KDFa with HMAC-SHA256 (Part 1 §11.4.10.2): `bits` bits from
/// HMAC(key, i || label || 0 || context_u || context_v || bits) for i = 1, 2, ...
pub fn kdfa(key: &[u8], label: &str, context_u: &[u8], context_v: &[u8], bits: u32) -> Vec<u8> {
    let bytes = bits.div_ceil(8) as usize;
    let mut out = Vec::with_capacity(bytes + 32);
    let mut i: u32 = 1;
    while out.len() < bytes {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        m.update(&i.to_be_bytes());
        m.update(label.as_bytes());
        m.update(&[0]);
        m.update(context_u);
        m.update(context_v);
        m.update(&bits.to_be_bytes());
        out.extend_from_slice(&m.finalize().into_bytes());
        i += 1;
    }
    out.truncate(bytes);
    out
}

/// Seals `credential` (at most 32 bytes) to the RSA EK `ek` for the object named
/// `name`, with the randomness of `rng`.
pub fn make_credential(
    ek: &Public,
    name: &[u8],
    credential: &[u8],
    rng: &mut impl rsa::rand_core::CryptoRngCore,
) -> Result<Credential, String> {
    let Key::Rsa { symmetric: Some((ALG_AES, 128, ALG_CFB)), modulus, exponent, .. } = &ek.key else {
        return Err("the EK is not an RSA key with AES-128-CFB (the EK Credential Profile's template L-1)".into());
    };
    if ek.name_alg != ALG_SHA256 {
        return Err("the EK's name algorithm is not SHA-256".into());
    }
    if credential.len() > 32 {
        return Err("a credential is at most 32 bytes".into());
    }
    let e = if *exponent == 0 { 65537 } else { *exponent };
    let key = RsaPublicKey::new(BigUint::from_bytes_be(modulus), BigUint::from(e))
        .map_err(|err| format!("the EK's RSA key is unusable: {err}"))?;
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let secret = key
        .encrypt(rng, Oaep::new_with_label::<Sha256, _>("IDENTITY\0"), &seed)
        .map_err(|err| format!("RSA-OAEP to the EK: {err}"))?;

    let sym_key = kdfa(&seed, "STORAGE", name, &[], 128);
    let mut enc_identity = Out::new().tpm2b(credential).clone().into_vec();
    cfb_mode::Encryptor::<aes::Aes128>::new(sym_key.as_slice().into(), &[0u8; 16].into()).encrypt(&mut enc_identity);
    let hmac_key = kdfa(&seed, "INTEGRITY", &[], &[], 256);
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&hmac_key).expect("HMAC takes any key length");
    m.update(&enc_identity);
    m.update(name);
    let mut blob = Out::new();
    blob.tpm2b(&m.finalize().into_bytes()).bytes(&enc_identity);
    Ok(Credential { blob: blob.into_vec(), secret })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kdfa_is_counter_mode_hmac_and_truncates() {
        let long = kdfa(b"k", "STORAGE", b"u", b"", 512);
        assert_eq!(long.len(), 64);
        let short = kdfa(b"k", "STORAGE", b"u", b"", 128);
        assert_eq!(short.len(), 16);
        // the bit count is in the input: 128 bits are not a prefix of 512
        assert_ne!(&long[..16], &short[..]);
        assert_ne!(kdfa(b"k", "INTEGRITY", b"u", b"", 128), short);
    }
}
