//! NV indices: their public areas (TPM2_NV_ReadPublic), reading them, and the
//! commands that define, write, lock and increment them. Every command uses the
//! empty password, of the owner hierarchy or of the index, as upstream's tools and
//! stprov leave a server's TPM; an index whose writes a policy guards is written
//! through a policy session ([`Tpm::nv_increment_by_policy`]).

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::wire::{In, Out};
use super::{password_session, session_entry, Tpm, TPM_ALG_SHA256, TPM_RC_HANDLE, TPM_ST_NO_SESSIONS, TPM_ST_SESSIONS};

const TPM_CC_NV_DEFINE_SPACE: u32 = 0x0000_012A;
const TPM_CC_NV_INCREMENT: u32 = 0x0000_0134;
const TPM_CC_NV_WRITE: u32 = 0x0000_0137;
const TPM_CC_NV_WRITE_LOCK: u32 = 0x0000_0138;
const TPM_CC_NV_READ_PUBLIC: u32 = 0x0000_0169;
const TPM_CC_NV_READ: u32 = 0x0000_014E;
const TPM_CC_POLICY_COMMAND_CODE: u32 = 0x0000_016C;
const TPM_RH_OWNER: u32 = 0x4000_0001;

/// TPMA_NV bits (TPM 2.0 Part 2, 13.4).
pub mod attr {
    pub const AUTHWRITE: u32 = 1 << 2;
    pub const POLICYWRITE: u32 = 1 << 3;
    /// TPM_NT_COUNTER in the index type field (bits 4-7).
    pub const COUNTER: u32 = 1 << 4;
    /// The index type field.
    pub const TYPE_MASK: u32 = 0xF << 4;
    pub const POLICY_DELETE: u32 = 1 << 10;
    pub const WRITELOCKED: u32 = 1 << 11;
    pub const WRITEDEFINE: u32 = 1 << 13;
    pub const AUTHREAD: u32 = 1 << 18;
    pub const NO_DA: u32 = 1 << 25;
    pub const WRITTEN: u32 = 1 << 29;
    pub const PLATFORMCREATE: u32 = 1 << 30;
}

/// An NV index's public area (TPMS_NV_PUBLIC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvPublic {
    pub index: u32,
    pub name_alg: u16,
    pub attributes: u32,
    pub auth_policy: Vec<u8>,
    pub size: u16,
}

impl NvPublic {
    /// A SHA-256-named index.
    pub fn new(index: u32, attributes: u32, auth_policy: &[u8], size: u16) -> Self {
        NvPublic { index, name_alg: TPM_ALG_SHA256, attributes, auth_policy: auth_policy.to_vec(), size }
    }

    fn marshal(&self) -> Vec<u8> {
        let mut o = Out::new();
        o.u32(self.index).u16(self.name_alg).u32(self.attributes).tpm2b(&self.auth_policy).u16(self.size);
        o.into_vec()
    }

    fn parse(i: &mut In<'_>) -> Result<Self> {
        let area = i.tpm2b("NV_ReadPublic: nvPublic")?;
        let mut a = In::new(area);
        let p = NvPublic {
            index: a.u32("nvPublic.nvIndex")?,
            name_alg: a.u16("nvPublic.nameAlg")?,
            attributes: a.u32("nvPublic.attributes")?,
            auth_policy: a.tpm2b("nvPublic.authPolicy")?.to_vec(),
            size: a.u16("nvPublic.dataSize")?,
        };
        a.end("nvPublic")?;
        Ok(p)
    }
}

/// The policy digest of TPM2_PolicyCommandCode(`cc`) alone: an index with it as
/// its write policy can be written by that command only.
pub fn policy_command_code(cc: u32) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8; 32]);
    h.update(TPM_CC_POLICY_COMMAND_CODE.to_be_bytes());
    h.update(cc.to_be_bytes());
    h.finalize().into()
}

/// The policy of an index only TPM2_NV_Increment may write.
pub fn increment_only_policy() -> [u8; 32] {
    policy_command_code(TPM_CC_NV_INCREMENT)
}

impl Tpm {
    /// NV index `index`'s public area (TPM2_NV_ReadPublic); `None` when the index is
    /// not defined.
    pub fn nv_public(&mut self, index: u32) -> Result<Option<NvPublic>> {
        let (rc, r) = self.command_rc(TPM_ST_NO_SESSIONS, TPM_CC_NV_READ_PUBLIC, &index.to_be_bytes())?;
        if rc & !0xF00 == TPM_RC_HANDLE {
            return Ok(None);
        }
        if rc != 0 {
            bail!("TPM: NV_ReadPublic of 0x{index:08x} failed with response code 0x{rc:x}");
        }
        let p = NvPublic::parse(&mut In::new(&r[10..]))?;
        if p.index != index {
            bail!("TPM: NV_ReadPublic of 0x{index:08x} answered for 0x{:08x}", p.index);
        }
        Ok(Some(p))
    }

    /// The size of NV index `index`'s data; `None` when the index is not defined.
    pub fn nv_size(&mut self, index: u32) -> Result<Option<u16>> {
        Ok(self.nv_public(index)?.map(|p| p.size))
    }

    /// The whole data of NV index `index`, read with the index's own authorization
    /// and an empty password, as upstream does (TPM2_NV_Read in chunks).
    pub fn nv_read(&mut self, index: u32, size: u16) -> Result<Vec<u8>> {
        const CHUNK: u16 = 512;
        let mut data = Vec::with_capacity(size as usize);
        while data.len() < size as usize {
            let offset = data.len() as u16;
            let n = CHUNK.min(size - offset);
            let mut body = Out::new();
            body.u32(index).u32(index); // authHandle: the index itself; nvIndex
            password_session(&mut body);
            body.u16(n).u16(offset);
            let r = self.command(TPM_ST_SESSIONS, TPM_CC_NV_READ, &body.0)?;
            // header 10, parameterSize 4, TPM2B_MAX_NV_BUFFER: size 2 + bytes
            let got = r.get(14..16).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize);
            match got.and_then(|g| r.get(16..16 + g)) {
                Some(chunk) if !chunk.is_empty() => data.extend_from_slice(chunk),
                _ => bail!("TPM: unexpected NV_Read response ({} bytes)", r.len()),
            }
        }
        Ok(data)
    }

    /// TPM2_NV_DefineSpace in the owner hierarchy (empty owner password) with an
    /// empty authValue.
    pub fn nv_define(&mut self, public: &NvPublic) -> Result<()> {
        let mut body = Out::new();
        body.u32(TPM_RH_OWNER);
        password_session(&mut body);
        body.u16(0).tpm2b(&public.marshal());
        self.command(TPM_ST_SESSIONS, TPM_CC_NV_DEFINE_SPACE, &body.0)
            .with_context(|| format!("defining NV index 0x{:08x}", public.index))
            .map(|_| ())
    }

    /// TPM2_NV_Write of `data` at offset 0, with the index's empty authValue.
    pub fn nv_write(&mut self, index: u32, data: &[u8]) -> Result<()> {
        let mut body = Out::new();
        body.u32(index).u32(index);
        password_session(&mut body);
        body.tpm2b(data).u16(0);
        self.command(TPM_ST_SESSIONS, TPM_CC_NV_WRITE, &body.0)
            .with_context(|| format!("writing NV index 0x{index:08x}"))
            .map(|_| ())
    }

    /// TPM2_NV_WriteLock with the index's empty authValue: with
    /// [`attr::WRITEDEFINE`], the index is read-only until it is deleted.
    pub fn nv_write_lock(&mut self, index: u32) -> Result<()> {
        let mut body = Out::new();
        body.u32(index).u32(index);
        password_session(&mut body);
        self.command(TPM_ST_SESSIONS, TPM_CC_NV_WRITE_LOCK, &body.0)
            .with_context(|| format!("write-locking NV index 0x{index:08x}"))
            .map(|_| ())
    }

    /// TPM2_NV_Increment of a counter index whose write policy is
    /// [`increment_only_policy`], through a policy session satisfying it.
    pub fn nv_increment_by_policy(&mut self, index: u32) -> Result<()> {
        let session = self.start_policy_session()?;
        let result = (|| {
            let mut body = Out::new();
            body.u32(session).u32(TPM_CC_NV_INCREMENT);
            self.command(TPM_ST_NO_SESSIONS, TPM_CC_POLICY_COMMAND_CODE, &body.0)?;
            let mut body = Out::new();
            body.u32(index).u32(index);
            let mut auth = Out::new();
            session_entry(&mut auth, session);
            body.u32(auth.0.len() as u32).bytes(&auth.0);
            self.command(TPM_ST_SESSIONS, TPM_CC_NV_INCREMENT, &body.0).map(|_| ())
        })();
        if result.is_err() {
            let _ = self.flush(session);
        }
        result.with_context(|| format!("incrementing NV index 0x{index:08x}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_increment_policy_is_the_one_tpm2_tools_computes() {
        // tpm2_startauthsession -S s.ctx; tpm2_policycommandcode -S s.ctx -L out TPM2_CC_NV_Increment
        assert_eq!(
            crate::digest::hex(&increment_only_policy()),
            "e8c02d3c5e701670cbaa327db1a2e9f3f41b2c22793e5c669a6e7f44b912f6c0"
        );
    }

    #[test]
    fn a_public_area_marshals_and_parses_back() {
        let p = NvPublic::new(0x0142_0002, attr::COUNTER | attr::POLICYWRITE, &increment_only_policy(), 8);
        let mut o = Out::new();
        o.tpm2b(&p.marshal());
        assert_eq!(NvPublic::parse(&mut In::new(&o.0)).unwrap(), p);
    }
}
