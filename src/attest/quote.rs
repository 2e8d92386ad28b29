//! A TPM quote: the `TPMS_ATTEST` the TPM made (TPM 2.0 Library Part 2 §10.12) and
//! the AK's `TPMT_SIGNATURE` over it, as `TPM2_Quote` returns them and as
//! `tpm2_quote -m ... -s ...` writes them.

use sha2::{Digest, Sha256};

use crate::digest::Sha256Digest;
use crate::tpm::object::{Public, ALG_ECDSA, ALG_SHA256};
use crate::tpm::wire::{error, In, Result};

/// TPM_GENERATED_VALUE: the magic that says the TPM made this structure.
const TPM_GENERATED: u32 = 0xff54_4347;
/// TPM_ST_ATTEST_QUOTE.
const ATTEST_QUOTE: u16 = 0x8018;

/// TPMS_CLOCK_INFO: the TPM's clock and how often it was reset and restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ClockInfo {
    pub clock: u64,
    pub reset_count: u32,
    pub restart_count: u32,
    pub safe: bool,
}

/// The parts of a quote a verifier checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attest {
    /// The signer's qualified name.
    pub qualified_signer: Vec<u8>,
    /// The qualifying data the caller gave (here SHA-256(nonce || key)).
    pub extra_data: Vec<u8>,
    pub clock: ClockInfo,
    pub firmware_version: u64,
    /// The SHA-256 PCRs quoted, ascending.
    pub pcrs: Vec<u32>,
    /// SHA-256 of the quoted PCR values, concatenated in ascending order.
    pub pcr_digest: Vec<u8>,
}

impl Attest {
    /// Reads a whole TPMS_ATTEST of a quote.
    pub fn parse(bytes: &[u8]) -> Result<Attest> {
        let mut i = In::new(bytes);
        let magic = i.u32("quote: magic")?;
        if magic != TPM_GENERATED {
            return Err(error(format!("quote: magic 0x{magic:08x}, not TPM_GENERATED_VALUE: not made by a TPM")));
        }
        let kind = i.u16("quote: type")?;
        if kind != ATTEST_QUOTE {
            return Err(error(format!("quote: type 0x{kind:04x}, not a quote (0x8018)")));
        }
        let qualified_signer = i.tpm2b("quote: qualifiedSigner")?.to_vec();
        let extra_data = i.tpm2b("quote: extraData")?.to_vec();
        let clock = ClockInfo {
            clock: i.u64("quote: clock")?,
            reset_count: i.u32("quote: resetCount")?,
            restart_count: i.u32("quote: restartCount")?,
            safe: i.u8("quote: safe")? == 1,
        };
        let firmware_version = i.u64("quote: firmwareVersion")?;
        let banks = i.u32("quote: pcrSelect count")?;
        let mut pcrs = Vec::new();
        for _ in 0..banks {
            let hash = i.u16("quote: pcrSelect hash")?;
            let size = i.u8("quote: pcrSelect size")?;
            let select = i.take(size as usize, "quote: pcrSelect")?;
            let chosen = (0..select.len() * 8).filter(|&p| select[p / 8] & (1 << (p % 8)) != 0).map(|p| p as u32);
            match hash {
                ALG_SHA256 => pcrs.extend(chosen),
                other if chosen.count() > 0 => {
                    return Err(error(format!(
                        "quote: PCRs of bank 0x{other:04x} quoted; only the SHA-256 bank is checked"
                    )))
                }
                _ => {}
            }
        }
        let pcr_digest = i.tpm2b("quote: pcrDigest")?.to_vec();
        i.end("quote")?;
        Ok(Attest { qualified_signer, extra_data, clock, firmware_version, pcrs, pcr_digest })
    }
}

/// The digest a quote carries for `values` (ascending PCR order).
pub fn pcr_digest(values: &[Sha256Digest]) -> Sha256Digest {
    let mut h = Sha256::new();
    for v in values {
        h.update(v.as_bytes());
    }
    Sha256Digest::from_bytes(h.finalize().into())
}

/// Checks that `signature` (a TPMT_SIGNATURE) is `ak`'s ECDSA P-256/SHA-256
/// signature over `attest`.
pub fn check_signature(ak: &Public, attest: &[u8], signature: &[u8]) -> std::result::Result<(), String> {
    let mut i = In::new(signature);
    let parsed = (|| {
        let alg = i.u16("signature: sigAlg")?;
        let hash = i.u16("signature: hash")?;
        let r = i.tpm2b("signature: r")?;
        let s = i.tpm2b("signature: s")?;
        i.end("signature")?;
        Ok::<_, crate::tpm::wire::WireError>((alg, hash, r, s))
    })();
    let (alg, hash, r, s) = parsed.map_err(|e| e.to_string())?;
    if (alg, hash) != (ALG_ECDSA, ALG_SHA256) {
        return Err(format!("signature: algorithm 0x{alg:04x}/0x{hash:04x}, not ECDSA with SHA-256"));
    }
    if r.len() > 32 || s.len() > 32 {
        return Err("signature: r or s longer than 32 bytes".into());
    }
    let mut rs = [0u8; 64];
    rs[32 - r.len()..32].copy_from_slice(r);
    rs[64 - s.len()..].copy_from_slice(s);
    let point = ak.p256_point().map_err(|e| e.to_string())?;
    let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &point);
    key.verify(attest, &rs).map_err(|_| "the signature is not the AK's over this quote".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tpm::wire::Out;

    pub(crate) fn attest_bytes(extra: &[u8], pcrs: &[u32], digest: &[u8]) -> Vec<u8> {
        let mut o = Out::new();
        o.u32(TPM_GENERATED).u16(ATTEST_QUOTE).tpm2b(&[0; 34]).tpm2b(extra);
        o.u64(1000).u32(2).u32(0).u8(1).u64(0x2024);
        let mut select = [0u8; 3];
        for &p in pcrs {
            select[p as usize / 8] |= 1 << (p % 8);
        }
        o.u32(1).u16(ALG_SHA256).u8(3).bytes(&select).tpm2b(digest);
        o.into_vec()
    }

    #[test]
    fn a_quote_reads_back_and_damage_is_named() {
        let b = attest_bytes(b"nonce", &[0, 7, 12, 14], &[9; 32]);
        let a = Attest::parse(&b).unwrap();
        assert_eq!(a.pcrs, vec![0, 7, 12, 14]);
        assert_eq!(a.extra_data, b"nonce");
        assert_eq!(a.clock, ClockInfo { clock: 1000, reset_count: 2, restart_count: 0, safe: true });
        for cut in 0..b.len() {
            assert!(Attest::parse(&b[..cut]).is_err(), "a quote cut at {cut} was read");
        }
        let mut other = b.clone();
        other[0] = 0;
        assert!(Attest::parse(&other).unwrap_err().what.contains("not made by a TPM"));
    }
}
