//! The TPM 2.0 device: raw command buffers to the kernel's resource manager
//! (`/dev/tpmrm0`, else `/dev/tpm0`), or to a software TPM's socket (swtpm's
//! `--server`, for tests and for enrolment on a host), and the commands stboot and
//! `stmgr attest` send: PCR read and extend, CreatePrimary, Quote and the
//! credential activation of the AK enrolment ([`object`] for the keys), NV indices
//! ([`nv`]) and the rollback floor kept in them ([`floor`]).

use std::fs::File;
use std::io::{Read, Write};

use anyhow::{bail, Context, Result};

use crate::digest::Sha256Digest;

pub mod floor;
pub mod nv;
pub mod object;
pub mod wire;

use object::Public;
use wire::{In, Out};

const TPM_ST_NO_SESSIONS: u16 = 0x8001;
const TPM_ST_SESSIONS: u16 = 0x8002;
const TPM_CC_PCR_EXTEND: u32 = 0x0000_0182;
const TPM_CC_PCR_READ: u32 = 0x0000_017E;
const TPM_CC_CREATE_PRIMARY: u32 = 0x0000_0131;
const TPM_CC_FLUSH_CONTEXT: u32 = 0x0000_0165;
const TPM_CC_QUOTE: u32 = 0x0000_0158;
const TPM_CC_START_AUTH_SESSION: u32 = 0x0000_0176;
const TPM_CC_POLICY_SECRET: u32 = 0x0000_0151;
const TPM_CC_ACTIVATE_CREDENTIAL: u32 = 0x0000_0147;
/// TPM_RC_HANDLE, without the bits that say which handle.
const TPM_RC_HANDLE: u32 = 0x08B;
const TPM_RS_PW: u32 = 0x4000_0009;
const TPM_RH_NULL: u32 = 0x4000_0007;
/// The endorsement hierarchy, where the EK and the AK are primary keys.
pub const TPM_RH_ENDORSEMENT: u32 = 0x4000_000B;
const TPM_SE_POLICY: u8 = 0x01;
const TPM_ALG_SHA256: u16 = 0x000B;
const TPM_ALG_NULL: u16 = 0x0010;

/// The NV index of the EK Credential Profile's RSA 2048 EK certificate.
pub const EK_CERT_RSA_NV_INDEX: u32 = 0x01c0_0002;

/// The NV index upstream stboot (and stprov) keep the UX identity in.
pub const UX_IDENTITY_NV_INDEX: u32 = 0x0142_0001;
/// Longer identities are refused (upstream reads whatever is there; a name is short).
pub const MAX_IDENTITY_BYTES: u16 = 2048;

/// Where commands go: a character device answers each write with one read; a
/// socket (swtpm) is a stream, read by the response header's size.
enum Channel {
    Device(File),
    Stream(Box<dyn ReadWrite>),
}

trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

/// A TPM 2.0.
pub struct Tpm {
    channel: Channel,
    pub path: String,
}

/// A primary key made by [`Tpm::create_primary`]; flushed by [`Tpm::flush`].
#[derive(Debug)]
pub struct Loaded {
    pub handle: u32,
    pub public: Public,
}

impl Tpm {
    /// The first TPM device present; `None` when the machine has none.
    pub fn open() -> Result<Option<Self>> {
        for path in ["/dev/tpmrm0", "/dev/tpm0"] {
            match std::fs::OpenOptions::new().read(true).write(true).open(path) {
                Ok(dev) => return Ok(Some(Tpm { channel: Channel::Device(dev), path: path.into() })),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("opening {path}")),
            }
        }
        Ok(None)
    }

    /// The TPM `spec` names: a device path, `unix:PATH` or `tcp:HOST:PORT` (a
    /// software TPM's command socket, swtpm `socket --server ...`), or `auto` (the
    /// machine's, as [`Tpm::open`]).
    pub fn open_spec(spec: &str) -> Result<Self> {
        let channel = if spec == "auto" {
            return Tpm::open()?.context("no TPM found (/dev/tpmrm0, /dev/tpm0); name one with -tpm");
        } else if let Some(p) = spec.strip_prefix("unix:") {
            let s = std::os::unix::net::UnixStream::connect(p).with_context(|| format!("connecting to {p}"))?;
            Channel::Stream(Box::new(s))
        } else if let Some(a) = spec.strip_prefix("tcp:") {
            let s = std::net::TcpStream::connect(a).with_context(|| format!("connecting to {a}"))?;
            Channel::Stream(Box::new(s))
        } else {
            let dev = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(spec)
                .with_context(|| format!("opening {spec}"))?;
            Channel::Device(dev)
        };
        Ok(Tpm { channel, path: spec.into() })
    }

    fn command(&mut self, tag: u16, cc: u32, body: &[u8]) -> Result<Vec<u8>> {
        let (mut rc, mut resp) = self.command_rc(tag, cc, body)?;
        // TPM_RC_YIELDED, TPM_RC_TESTING, TPM_RC_RETRY: the TPM asks for the same
        // command again (swtpm answers a first quote with RETRY)
        for _ in 0..20 {
            if !matches!(rc, 0x908 | 0x90A | 0x922) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            (rc, resp) = self.command_rc(tag, cc, body)?;
        }
        if rc != 0 {
            bail!("TPM: command 0x{cc:x} failed with response code 0x{rc:x}{}", rc_hint(rc));
        }
        Ok(resp)
    }

    /// Send a command; the response code and the whole response.
    fn command_rc(&mut self, tag: u16, cc: u32, body: &[u8]) -> Result<(u32, Vec<u8>)> {
        let mut cmd = Vec::with_capacity(10 + body.len());
        cmd.extend_from_slice(&tag.to_be_bytes());
        cmd.extend_from_slice(&((10 + body.len()) as u32).to_be_bytes());
        cmd.extend_from_slice(&cc.to_be_bytes());
        cmd.extend_from_slice(body);
        let path = &self.path;
        let resp = match &mut self.channel {
            Channel::Device(dev) => {
                dev.write_all(&cmd).with_context(|| format!("writing to {path}"))?;
                let mut resp = vec![0u8; 4096];
                let n = dev.read(&mut resp).with_context(|| format!("reading from {path}"))?;
                resp.truncate(n);
                resp
            }
            Channel::Stream(s) => {
                s.write_all(&cmd).with_context(|| format!("writing to {path}"))?;
                let mut resp = vec![0u8; 10];
                s.read_exact(&mut resp).with_context(|| format!("reading from {path}"))?;
                let size = u32::from_be_bytes([resp[2], resp[3], resp[4], resp[5]]) as usize;
                if !(10..=65536).contains(&size) {
                    bail!("TPM: a response of {size} bytes from {path}");
                }
                resp.resize(size, 0);
                s.read_exact(&mut resp[10..]).with_context(|| format!("reading from {path}"))?;
                resp
            }
        };
        if resp.len() < 10 {
            bail!("TPM: short response ({} bytes)", resp.len());
        }
        let rc = u32::from_be_bytes([resp[6], resp[7], resp[8], resp[9]]);
        Ok((rc, resp))
    }

    /// The UX identity from NV index [`UX_IDENTITY_NV_INDEX`], NULs trimmed at both
    /// ends as upstream does; `None` when the index is not defined.
    pub fn ux_identity(&mut self) -> Result<Option<Vec<u8>>> {
        let Some(size) = self.nv_size(UX_IDENTITY_NV_INDEX)? else {
            return Ok(None);
        };
        if size > MAX_IDENTITY_BYTES {
            bail!("NV index 0x{UX_IDENTITY_NV_INDEX:08x} holds {size} bytes, more than {MAX_IDENTITY_BYTES} for an identity");
        }
        let raw = self.nv_read(UX_IDENTITY_NV_INDEX, size)?;
        Ok(Some(trim_nul(&raw).to_vec()))
    }

    /// TPM2_PCR_Extend of the SHA-256 bank with `value`.
    pub fn extend(&mut self, pcr: u32, value: &Sha256Digest) -> Result<()> {
        let mut body = Out::new();
        body.u32(pcr);
        password_session(&mut body);
        body.u32(1).u16(TPM_ALG_SHA256).bytes(value.as_bytes()); // one digest
        self.command(TPM_ST_SESSIONS, TPM_CC_PCR_EXTEND, &body.0).map(|_| ())
    }

    /// TPM2_PCR_Read of one SHA-256 PCR.
    pub fn read_pcr(&mut self, pcr: u32) -> Result<Sha256Digest> {
        let mut body = Out::new();
        body.u32(1);
        put_selection(&mut body, &[pcr]);
        let r = self.command(TPM_ST_NO_SESSIONS, TPM_CC_PCR_READ, &body.0)?;
        // header 10, update counter 4, selection 10, digest count 4, size 2, digest
        if r.len() < 62 || u16::from_be_bytes([r[28], r[29]]) != 32 {
            bail!("TPM: unexpected PCR_Read response ({} bytes)", r.len());
        }
        Ok(Sha256Digest::from_bytes(r[30..62].try_into().expect("32 bytes")))
    }

    /// TPM2_CreatePrimary in `hierarchy` (empty authorization) with `template`.
    pub fn create_primary(&mut self, hierarchy: u32, template: &Public) -> Result<Loaded> {
        let mut body = Out::new();
        body.u32(hierarchy);
        password_session(&mut body);
        body.tpm2b(&[0, 0, 0, 0]); // inSensitive: empty userAuth and data
        body.tpm2b(template.as_bytes());
        body.u16(0); // outsideInfo
        body.u32(0); // creationPCR: none
        let r = self.command(TPM_ST_SESSIONS, TPM_CC_CREATE_PRIMARY, &body.0)?;
        let mut i = In::new(&r[10..]);
        let handle = i.u32("CreatePrimary: objectHandle")?;
        i.u32("CreatePrimary: parameterSize")?;
        let public = Public::parse(i.tpm2b("CreatePrimary: outPublic")?)?;
        Ok(Loaded { handle, public })
    }

    /// TPM2_FlushContext: forget a transient object or session.
    pub fn flush(&mut self, handle: u32) -> Result<()> {
        self.command(TPM_ST_NO_SESSIONS, TPM_CC_FLUSH_CONTEXT, &handle.to_be_bytes()).map(|_| ())
    }

    /// TPM2_Quote of the SHA-256 `pcrs` by `ak` over `qualifying_data`, with the
    /// key's own scheme: the marshalled TPMS_ATTEST and TPMT_SIGNATURE, exactly as
    /// `tpm2_quote` writes them (`-m`, `-s`).
    pub fn quote(&mut self, ak: u32, qualifying_data: &[u8], pcrs: &[u32]) -> Result<(Vec<u8>, Vec<u8>)> {
        let mut body = Out::new();
        body.u32(ak);
        password_session(&mut body);
        body.tpm2b(qualifying_data).u16(TPM_ALG_NULL).u32(1);
        put_selection(&mut body, pcrs);
        let r = self.command(TPM_ST_SESSIONS, TPM_CC_QUOTE, &body.0)?;
        let mut i = In::new(&r[10..]);
        let size = i.u32("Quote: parameterSize")? as usize;
        let attest = i.tpm2b("Quote: quoted")?.to_vec();
        let used = 2 + attest.len();
        let signature = i
            .take(
                size.checked_sub(used).context("Quote: parameterSize shorter than its parameters")?,
                "Quote: signature",
            )?
            .to_vec();
        Ok((attest, signature))
    }

    /// TPM2_StartAuthSession of an unbound, unsalted SHA-256 policy session; the
    /// caller satisfies its policy, uses it once (it ends with that command) and
    /// flushes it when a command failed.
    fn start_policy_session(&mut self) -> Result<u32> {
        let mut body = Out::new();
        body.u32(TPM_RH_NULL).u32(TPM_RH_NULL);
        body.tpm2b(&[0x5a; 32]); // nonceCaller: any; the session is not used for HMACs
        body.u16(0).u8(TPM_SE_POLICY).u16(TPM_ALG_NULL).u16(TPM_ALG_SHA256);
        let r = self.command(TPM_ST_NO_SESSIONS, TPM_CC_START_AUTH_SESSION, &body.0)?;
        Ok(In::new(&r[10..]).u32("StartAuthSession: sessionHandle")?)
    }

    /// TPM2_ActivateCredential: the secret a verifier sealed to `ek` for the
    /// object named `ak` (TPM2_MakeCredential), which the TPM releases only when it
    /// holds both. The EK is used through a policy session satisfying its policy,
    /// PolicySecret(TPM_RH_ENDORSEMENT).
    pub fn activate_credential(&mut self, ak: u32, ek: u32, credential_blob: &[u8], secret: &[u8]) -> Result<Vec<u8>> {
        let session = self.start_policy_session()?;
        let result = (|| {
            let mut body = Out::new();
            body.u32(TPM_RH_ENDORSEMENT).u32(session);
            password_session(&mut body);
            body.u16(0).u16(0).u16(0).u32(0); // nonceTPM, cpHashA, policyRef, expiration
            self.command(TPM_ST_SESSIONS, TPM_CC_POLICY_SECRET, &body.0)?;
            let mut body = Out::new();
            body.u32(ak).u32(ek);
            let mut auth = Out::new();
            session_entry(&mut auth, TPM_RS_PW); // the AK: empty password
            session_entry(&mut auth, session); // the EK: the policy session (then flushed)
            body.u32(auth.0.len() as u32).bytes(&auth.0);
            body.tpm2b(credential_blob).tpm2b(secret);
            let r = self.command(TPM_ST_SESSIONS, TPM_CC_ACTIVATE_CREDENTIAL, &body.0)?;
            let mut i = In::new(&r[10..]);
            i.u32("ActivateCredential: parameterSize")?;
            Ok(i.tpm2b("ActivateCredential: certInfo")?.to_vec())
        })();
        if result.is_err() {
            let _ = self.flush(session); // a failed command leaves the session loaded
        }
        result
    }
}

/// What a response code usually means, for the common ones of these commands.
fn rc_hint(rc: u32) -> &'static str {
    // a format-one code (bit 7) names its handle, parameter or session in bits 6
    // and 8-11 (Part 2 §6.6): the error itself is the rest
    let error = if rc & 0x080 != 0 { rc & 0x0BF } else { rc };
    match error {
        0x902 | 0x903 => " (the TPM is out of object or session slots: flush transient objects)",
        0x921 => " (the TPM is in dictionary-attack lockout)",
        0x08E => " (authorization failed)",
        0x09D | 0x0A2 => " (the policy or the credential does not match this TPM: was it made for another EK?)",
        0x100 => " (the TPM was not started: TPM2_Startup)",
        _ => "",
    }
}

/// The authorization area with one empty password session (TPM_RS_PW).
fn password_session(o: &mut Out) {
    o.u32(9);
    session_entry(o, TPM_RS_PW);
}

/// One entry of an authorization area: `handle`, no nonce, no attributes (a
/// policy session ends with the command), no HMAC or password.
fn session_entry(o: &mut Out, handle: u32) {
    o.u32(handle).u16(0).u8(0).u16(0);
}

/// A TPMS_PCR_SELECTION of the SHA-256 bank (count written by the caller).
fn put_selection(o: &mut Out, pcrs: &[u32]) {
    let mut select = [0u8; 3];
    for &p in pcrs {
        if let Some(b) = select.get_mut((p / 8) as usize) {
            *b |= 1 << (p % 8);
        }
    }
    o.u16(TPM_ALG_SHA256).u8(3).bytes(&select);
}

pub(crate) fn trim_nul(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&c| c != 0).unwrap_or(b.len());
    let end = b.iter().rposition(|&c| c != 0).map_or(start, |e| e + 1);
    &b[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_names_the_error_whichever_session_or_parameter_it_names() {
        assert_eq!(rc_hint(0x98E), " (authorization failed)");
        assert_eq!(rc_hint(0xA8E), " (authorization failed)", "session 2");
        assert!(rc_hint(0x99D).contains("another EK"));
        assert_eq!(rc_hint(0x921), " (the TPM is in dictionary-attack lockout)");
        assert_eq!(rc_hint(0x101), "");
    }

    #[test]
    fn identity_is_trimmed_of_nuls_at_both_ends() {
        assert_eq!(trim_nul(b"\0\0rack-7\0\0"), b"rack-7");
        assert_eq!(trim_nul(b"a\0b"), b"a\0b");
        assert_eq!(trim_nul(b"\0\0"), b"");
        assert_eq!(trim_nul(b""), b"");
    }
}
