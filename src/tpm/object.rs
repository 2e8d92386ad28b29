//! TPM key objects: the public area (`TPMT_PUBLIC`, TPM 2.0 Library Part 2 §12.2),
//! its Name, and the two templates attestation uses.
//!
//! - The **endorsement key** (EK) is made with the TCG EK Credential Profile's
//!   template L-1 (RSA 2048, AES-128-CFB, policy "PolicySecret(TPM_RH_ENDORSEMENT)"),
//!   the one the TPM vendor's (or swtpm's) EK certificate in NV index 0x01c00002
//!   certifies. The same template gives the same key for as long as the TPM's
//!   endorsement seed is unchanged.
//! - The **attestation key** (AK) is a primary key of the endorsement hierarchy too,
//!   with [`ak_template`]: a restricted ECDSA P-256 signing key. Being a primary key,
//!   it needs no storage: a diskless machine makes the same AK again at every boot,
//!   and the AK a verifier enrolled once stays the machine's AK. Being restricted, it
//!   signs only what the TPM itself produced (quotes), whoever asks it to.

use sha2::{Digest, Sha256};

use super::wire::{error, In, Out, Result};

pub const ALG_RSA: u16 = 0x0001;
pub const ALG_AES: u16 = 0x0006;
pub const ALG_SHA256: u16 = 0x000B;
pub const ALG_NULL: u16 = 0x0010;
pub const ALG_RSASSA: u16 = 0x0014;
pub const ALG_ECDSA: u16 = 0x0018;
pub const ALG_ECC: u16 = 0x0023;
pub const ALG_CFB: u16 = 0x0043;
pub const ECC_NIST_P256: u16 = 0x0003;

/// TPMA_OBJECT bits (Part 2 §8.3).
pub mod attr {
    pub const FIXED_TPM: u32 = 1 << 1;
    pub const FIXED_PARENT: u32 = 1 << 4;
    pub const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    pub const USER_WITH_AUTH: u32 = 1 << 6;
    pub const ADMIN_WITH_POLICY: u32 = 1 << 7;
    pub const RESTRICTED: u32 = 1 << 16;
    pub const DECRYPT: u32 = 1 << 17;
    pub const SIGN: u32 = 1 << 18;
}

/// What an AK must be for its quotes to mean anything: made in this TPM and never
/// to leave it, and a restricted signing key (it signs only TPM-made structures).
pub const AK_REQUIRED: u32 =
    attr::FIXED_TPM | attr::FIXED_PARENT | attr::SENSITIVE_DATA_ORIGIN | attr::RESTRICTED | attr::SIGN;

/// The EK template's policy: PolicySecret(TPM_RH_ENDORSEMENT) (EK Credential
/// Profile 2.0, §B.3.3).
pub const EK_POLICY: [u8; 32] = [
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7,
    0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
];

/// The key of a public area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Rsa {
        /// (algorithm, key bits, mode) of the symmetric parameters; `None` for TPM_ALG_NULL.
        symmetric: Option<(u16, u16, u16)>,
        /// (scheme, hash); `None` for TPM_ALG_NULL.
        scheme: Option<(u16, u16)>,
        bits: u16,
        /// 0 means 65537.
        exponent: u32,
        modulus: Vec<u8>,
    },
    Ecc {
        symmetric: Option<(u16, u16, u16)>,
        scheme: Option<(u16, u16)>,
        curve: u16,
        kdf: Option<(u16, u16)>,
        x: Vec<u8>,
        y: Vec<u8>,
    },
}

/// A public area (`TPMT_PUBLIC`), with the exact bytes it was read from: the Name
/// is a hash of those bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Public {
    pub name_alg: u16,
    pub attributes: u32,
    pub auth_policy: Vec<u8>,
    pub key: Key,
    bytes: Vec<u8>,
}

impl Public {
    /// Reads a whole `TPMT_PUBLIC` (only RSA and ECC keys; the attestation flow has
    /// no other kind).
    pub fn parse(bytes: &[u8]) -> Result<Public> {
        let mut i = In::new(bytes);
        let kind = i.u16("public area: type")?;
        let name_alg = i.u16("public area: nameAlg")?;
        let attributes = i.u32("public area: objectAttributes")?;
        let auth_policy = i.tpm2b("public area: authPolicy")?.to_vec();
        let symmetric = sym_def(&mut i)?;
        let key = match kind {
            ALG_RSA => {
                let scheme = read_scheme(&mut i, "public area: RSA scheme")?;
                let bits = i.u16("public area: RSA keyBits")?;
                let exponent = i.u32("public area: RSA exponent")?;
                let modulus = i.tpm2b("public area: RSA modulus")?.to_vec();
                Key::Rsa { symmetric, scheme, bits, exponent, modulus }
            }
            ALG_ECC => {
                let scheme = read_scheme(&mut i, "public area: ECC scheme")?;
                let curve = i.u16("public area: ECC curveID")?;
                let kdf = read_scheme(&mut i, "public area: ECC kdf")?;
                let x = i.tpm2b("public area: ECC point x")?.to_vec();
                let y = i.tpm2b("public area: ECC point y")?.to_vec();
                Key::Ecc { symmetric, scheme, curve, kdf, x, y }
            }
            other => return Err(error(format!("public area: key type 0x{other:04x}, not RSA or ECC"))),
        };
        i.end("public area")?;
        Ok(Public { name_alg, attributes, auth_policy, key, bytes: bytes.to_vec() })
    }

    /// A public area from its fields (a template: the key fields are the `unique`
    /// the TPM is given).
    pub fn new(name_alg: u16, attributes: u32, auth_policy: &[u8], key: Key) -> Public {
        let mut o = Out::new();
        let kind = match key {
            Key::Rsa { .. } => ALG_RSA,
            Key::Ecc { .. } => ALG_ECC,
        };
        o.u16(kind).u16(name_alg).u32(attributes).tpm2b(auth_policy);
        match &key {
            Key::Rsa { symmetric, scheme, bits, exponent, modulus } => {
                put_sym_def(&mut o, *symmetric);
                put_scheme(&mut o, *scheme);
                o.u16(*bits).u32(*exponent).tpm2b(modulus);
            }
            Key::Ecc { symmetric, scheme, curve, kdf, x, y } => {
                put_sym_def(&mut o, *symmetric);
                put_scheme(&mut o, *scheme);
                o.u16(*curve);
                put_scheme(&mut o, *kdf);
                o.tpm2b(x).tpm2b(y);
            }
        }
        Public { name_alg, attributes, auth_policy: auth_policy.to_vec(), key, bytes: o.into_vec() }
    }

    /// The marshalled `TPMT_PUBLIC`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The object's Name: nameAlg, then the nameAlg digest of the public area
    /// (Part 1 §16). Only SHA-256 names are made here.
    pub fn name(&self) -> Result<Vec<u8>> {
        if self.name_alg != ALG_SHA256 {
            return Err(error(format!("public area: nameAlg 0x{:04x}, not SHA-256", self.name_alg)));
        }
        let mut n = ALG_SHA256.to_be_bytes().to_vec();
        n.extend_from_slice(&Sha256::digest(&self.bytes));
        Ok(n)
    }

    /// The Qualified Name of this object as a primary key of `hierarchy` (a
    /// TPM_RH_* handle): nameAlg || H(hierarchy handle || Name) (Part 1 §16). A
    /// quote carries its signer's qualified name, which so says in which
    /// hierarchy the AK was made.
    pub fn qualified_name_as_primary(&self, hierarchy: u32) -> Result<Vec<u8>> {
        let name = self.name()?;
        let mut h = Sha256::new();
        h.update(hierarchy.to_be_bytes());
        h.update(&name);
        let mut q = ALG_SHA256.to_be_bytes().to_vec();
        q.extend_from_slice(&h.finalize());
        Ok(q)
    }

    /// The uncompressed SEC1 point (0x04 || x || y) of a P-256 key, as ring and
    /// p256 take it.
    pub fn p256_point(&self) -> Result<Vec<u8>> {
        match &self.key {
            Key::Ecc { curve: ECC_NIST_P256, x, y, .. } if x.len() <= 32 && y.len() <= 32 && !x.is_empty() => {
                let mut p = vec![0x04];
                p.extend(std::iter::repeat_n(0, 32 - x.len()));
                p.extend_from_slice(x);
                p.extend(std::iter::repeat_n(0, 32 - y.len()));
                p.extend_from_slice(y);
                Ok(p)
            }
            _ => Err(error("public area: not a NIST P-256 key with a point")),
        }
    }
}

fn sym_def(i: &mut In<'_>) -> Result<Option<(u16, u16, u16)>> {
    let alg = i.u16("public area: symmetric algorithm")?;
    if alg == ALG_NULL {
        return Ok(None);
    }
    let bits = i.u16("public area: symmetric keyBits")?;
    let mode = i.u16("public area: symmetric mode")?;
    Ok(Some((alg, bits, mode)))
}

fn put_sym_def(o: &mut Out, s: Option<(u16, u16, u16)>) {
    match s {
        None => o.u16(ALG_NULL),
        Some((alg, bits, mode)) => o.u16(alg).u16(bits).u16(mode),
    };
}

fn read_scheme(i: &mut In<'_>, what: &str) -> Result<Option<(u16, u16)>> {
    let alg = i.u16(what)?;
    if alg == ALG_NULL {
        return Ok(None);
    }
    Ok(Some((alg, i.u16(what)?)))
}

fn put_scheme(o: &mut Out, s: Option<(u16, u16)>) {
    match s {
        None => o.u16(ALG_NULL),
        Some((alg, hash)) => o.u16(alg).u16(hash),
    };
}

/// The EK Credential Profile's template L-1: the RSA 2048 EK that NV index
/// 0x01c00002's certificate certifies.
pub fn ek_rsa_template() -> Public {
    Public::new(
        ALG_SHA256,
        attr::FIXED_TPM
            | attr::FIXED_PARENT
            | attr::SENSITIVE_DATA_ORIGIN
            | attr::ADMIN_WITH_POLICY
            | attr::RESTRICTED
            | attr::DECRYPT,
        &EK_POLICY,
        Key::Rsa {
            symmetric: Some((ALG_AES, 128, ALG_CFB)),
            scheme: None,
            bits: 2048,
            exponent: 0,
            modulus: vec![0; 256],
        },
    )
}

/// The AK: a restricted ECDSA P-256/SHA-256 signing key, usable with an empty
/// password, primary in the endorsement hierarchy. tpm2-tools makes the same key
/// with `tpm2_createprimary -C e -g sha256 -G ecc256:ecdsa-sha256:null -a
/// "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign"`.
pub fn ak_template() -> Public {
    Public::new(
        ALG_SHA256,
        AK_REQUIRED | attr::USER_WITH_AUTH,
        &[],
        Key::Ecc {
            symmetric: None,
            scheme: Some((ALG_ECDSA, ALG_SHA256)),
            curve: ECC_NIST_P256,
            kdf: None,
            x: Vec::new(),
            y: Vec::new(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_back_to_themselves() {
        for t in [ek_rsa_template(), ak_template()] {
            let back = Public::parse(t.as_bytes()).unwrap();
            assert_eq!(back, t);
            assert_eq!(back.name().unwrap().len(), 34);
        }
    }

    #[test]
    fn truncated_and_trailing_bytes_are_refused_with_the_field() {
        let t = ak_template();
        let b = t.as_bytes();
        let e = Public::parse(&b[..b.len() - 1]).unwrap_err();
        assert!(e.what.contains("ECC point y"), "{e}");
        let mut long = b.to_vec();
        long.push(0);
        assert!(Public::parse(&long).unwrap_err().what.contains("unexpected bytes"));
    }
}
