//! `stmgr attest`: the AK enrolment (`request`, `challenge`, `activate`, `enrol`;
//! `stboot::attest::enrol` does the work), the evidence (`quote`) and its verifier
//! (`verify`, `stboot::attest::appraise`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use stboot::attest::enrol::{self, Answer, Challenge, EkTrust, Pending, Request};
use stboot::digest::Sha256Digest;
use stboot::tpm::Tpm;

#[derive(Subcommand)]
pub enum AttestCmd {
    /// On the machine: the AK enrolment request (EK certificate, EK and AK).
    #[command(after_help = "\
Reads the TPM's EK certificate (NV index 0x01c00002), makes the EK and the AK (a
primary key of the endorsement hierarchy: the same key at every boot, nothing is
stored) and writes the request the verifier checks. docs/attestation.md.

Examples:
  stmgr attest request -out request.json
  stmgr attest request -tpm unix:/run/swtpm/cmd.sock -out request.json")]
    Request(RequestArgs),
    /// At the verifier: check a request and seal a secret to its EK and AK.
    #[command(after_help = "\
The EK is trusted through its certificate, issued by one of the -ekCA
certificates, or because its SHA-256 is in the -ekList file (one hex digest per
line, as `stmgr attest enrol` prints them). Writes the challenge for the machine
and the pending state (with the secret: keep it private) for `stmgr attest enrol`.

Examples:
  stmgr attest challenge -request request.json -ekCA vendor-ek-ca.pem \\
      -out challenge.json -state pending.json")]
    Challenge(ChallengeArgs),
    /// On the machine: let the TPM open the challenge.
    #[command(after_help = "\
The TPM releases the secret only if it holds the EK and the AK the challenge was
made for (TPM2_ActivateCredential).

Examples:
  stmgr attest activate -challenge challenge.json -out answer.json")]
    Activate(ActivateArgs),
    /// At the verifier: check the answer and write the enrolment record.
    #[command(after_help = "\
The record names the AK (public area and Name) and the EK it is bound to; it
holds no secret and can be published beside the OS packages.

Examples:
  stmgr attest enrol -state pending.json -answer answer.json -out enrolment.json")]
    Enrol(EnrolArgs),
    /// In the booted OS: the evidence for a verifier's nonce.
    #[command(after_help = "\
Quotes the firmware's PCRs (0-7) and those stboot measured into (the boot
report's) with the AK, over SHA-256(nonce || key file bytes), and writes the
evidence: the quote, the AK, the PCR values, and what stboot handed over in
/stboot (event logs, boot report, verified descriptor). docs/attestation.md.

Examples:
  stmgr attest quote -nonce $(cat nonce.hex) -out evidence.json
  stmgr attest quote -nonce $(cat nonce.hex) -key /etc/wireguard/wg0.pub -out evidence.json")]
    Quote(QuoteArgs),
    /// At the verifier: check evidence and say what the machine booted.
    #[command(after_help = "\
Checks, each by name: the quote's AK is enrolled (-enrolment, repeatable); the
AK signed the quote over SHA-256(nonce || key); the event logs replay to the
quoted PCRs; the measured archive and descriptor are the evidence's; the machine
measured the given trust policy directory; the package's signatures (and Sigsum
proofs) meet its threshold; with -firmwareReference, PCRs 0-7 equal a known-good
machine's. Prints each check and the verdict. Exit 0: every check holds; 1: the
evidence is not verified; 2: the verifier's own inputs cannot be read.
docs/attestation.md.

Examples:
  stmgr attest verify -evidence evidence.json -nonce $(cat nonce.hex) \\
      -enrolment machine-7.ak.json -trustPolicy trust_policy/
  stmgr attest verify -evidence evidence.json -nonce $(cat nonce.hex) -key wg0.pub \\
      -enrolment machine-7.ak.json -trustPolicy trust_policy/ -json verdict.json")]
    Verify(VerifyArgs),
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The evidence (stmgr attest quote on the machine).
    #[arg(long)]
    evidence: PathBuf,
    /// The nonce you gave the machine, hex.
    #[arg(long)]
    nonce: String,
    /// The key file the quote must vouch for (its bytes exactly); without it, the
    /// evidence's own key is checked and named.
    #[arg(long)]
    key: Option<PathBuf>,
    /// An enrolment record (stmgr attest enrol); repeatable, one per machine.
    #[arg(long = "enrolment", required = true)]
    enrolment: Vec<PathBuf>,
    /// The trust policy directory the machine is expected to boot under
    /// (trust_policy.json, ospkg_signing_root.pem, tls_roots.pem, ospkg_trust_policy).
    #[arg(long = "trustPolicy")]
    trust_policy: PathBuf,
    /// Also write the appraisal as JSON to this file (- for standard output).
    #[arg(long)]
    json: Option<PathBuf>,
    /// PCRs 0-7 of a known-good machine of the same model: a JSON object of PCR
    /// numbers to hex values, or that machine's evidence file.
    #[arg(long = "firmwareReference")]
    firmware_reference: Option<PathBuf>,
}

#[derive(Args)]
pub struct QuoteArgs {
    /// The TPM: a device, unix:PATH, tcp:HOST:PORT or auto.
    #[arg(long, default_value = "auto")]
    tpm: String,
    /// The verifier's nonce, hex (8 to 64 bytes).
    #[arg(long)]
    nonce: String,
    /// A key file the quote vouches for (its bytes exactly), e.g. a WireGuard public key.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Where stboot's handoff is.
    #[arg(long, default_value = stboot::handoff::DIR)]
    handoff: PathBuf,
    /// Where the evidence goes (JSON).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub struct RequestArgs {
    /// The TPM: a device, unix:PATH or tcp:HOST:PORT (a software TPM's command
    /// socket), or auto (/dev/tpmrm0, else /dev/tpm0).
    #[arg(long, default_value = "auto")]
    tpm: String,
    /// Where the request goes (JSON).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub struct ChallengeArgs {
    /// The machine's request (stmgr attest request).
    #[arg(long)]
    request: PathBuf,
    /// EK CA certificates (PEM), each trusted to certify EKs; repeatable.
    #[arg(long = "ekCA")]
    ek_ca: Vec<PathBuf>,
    /// Trusted EKs: a file of SHA-256 digests of EK public areas, one per line.
    #[arg(long = "ekList")]
    ek_list: Option<PathBuf>,
    /// Where the challenge for the machine goes (JSON).
    #[arg(long)]
    out: PathBuf,
    /// The pending state, with the secret (written mode 0600).
    #[arg(long)]
    state: PathBuf,
}

#[derive(Args)]
pub struct ActivateArgs {
    /// The TPM: a device, unix:PATH, tcp:HOST:PORT or auto.
    #[arg(long, default_value = "auto")]
    tpm: String,
    /// The verifier's challenge (stmgr attest challenge).
    #[arg(long)]
    challenge: PathBuf,
    /// Where the answer goes (JSON, mode 0600).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub struct EnrolArgs {
    /// The pending state stmgr attest challenge wrote.
    #[arg(long)]
    state: PathBuf,
    /// The machine's answer (stmgr attest activate).
    #[arg(long)]
    answer: PathBuf,
    /// Where the enrolment record goes (JSON; public).
    #[arg(long)]
    out: PathBuf,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{}: not {what}", path.display()))
}

fn write_json(path: &Path, value: &impl serde::Serialize, mode: u32) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    crate::write_out(path, text.as_bytes(), mode)
}

impl AttestCmd {
    pub fn run(self) -> Result<ExitCode> {
        match self {
            AttestCmd::Request(a) => {
                let mut tpm = Tpm::open_spec(&a.tpm)?;
                let req = enrol::request(&mut tpm)?;
                let ek = Sha256Digest::of(&req.ek_public);
                match &req.ek_certificate {
                    Some(_) => println!("EK certificate: present; EK sha256:{}", ek.hex()),
                    None => println!("EK certificate: none in NV index 0x01c00002; EK sha256:{}", ek.hex()),
                }
                write_json(&a.out, &req, 0o644)?;
            }
            AttestCmd::Challenge(a) => {
                let req: Request = read_json(&a.request, "an enrolment request (stmgr attest request)")?;
                let mut trust = EkTrust::default();
                for p in &a.ek_ca {
                    let pem = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
                    trust.cas.extend(stboot::pem::certificates(&pem, &p.display().to_string())?);
                }
                if let Some(p) = &a.ek_list {
                    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
                    for (n, line) in text.lines().enumerate() {
                        let line = line.trim().trim_start_matches("sha256:");
                        if line.is_empty() || line.starts_with('#') {
                            continue;
                        }
                        let d = Sha256Digest::from_hex(line)
                            .with_context(|| format!("{} line {}: not a SHA-256 digest in hex", p.display(), n + 1))?;
                        trust.ek_publics.push(d);
                    }
                }
                let (now, _) = stboot::verify::effective_now();
                let (challenge, pending) = enrol::challenge(&req, &trust, now, &mut rand_core::OsRng)?;
                println!("EK trusted: {}", pending.ek_trusted_by);
                write_json(&a.state, &pending, 0o600)?;
                write_json(&a.out, &challenge, 0o644)?;
            }
            AttestCmd::Activate(a) => {
                let challenge: Challenge = read_json(&a.challenge, "an enrolment challenge (stmgr attest challenge)")?;
                let mut tpm = Tpm::open_spec(&a.tpm)?;
                let answer = enrol::activate(&mut tpm, &challenge)?;
                write_json(&a.out, &answer, 0o600)?;
            }
            AttestCmd::Enrol(a) => {
                let pending: Pending = read_json(&a.state, "a pending enrolment (stmgr attest challenge -state)")?;
                let answer: Answer = read_json(&a.answer, "an enrolment answer (stmgr attest activate)")?;
                let record = enrol::finish(&pending, &answer)?;
                println!(
                    "enrolled: AK {} of EK sha256:{} ({})",
                    record.ak_name, record.ek_public_sha256, record.ek_trusted_by
                );
                write_json(&a.out, &record, 0o644)?;
            }
            AttestCmd::Quote(a) => {
                let nonce = stboot::attest::nonce_from_hex(&a.nonce).map_err(anyhow::Error::msg)?;
                let key = match &a.key {
                    Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
                    None => None,
                };
                let mut tpm = Tpm::open_spec(&a.tpm)?;
                let e = stboot::attest::evidence::collect(&mut tpm, &nonce, key.as_deref(), &a.handoff)?;
                let pcrs: Vec<String> = e.pcrs.keys().map(u32::to_string).collect();
                println!(
                    "quoted PCRs {} with AK {}",
                    pcrs.join(","),
                    stboot::digest::hex(&e.quote().and_then(|q| Ok(q.ak_public.name()?))?)
                );
                write_json(&a.out, &e, 0o644)?;
            }
            // exit 1: checked and not verified; 2: the verifier's own inputs are wrong
            AttestCmd::Verify(a) => {
                return Ok(verify(a).unwrap_or_else(|e| {
                    eprintln!("stmgr: error: {e:#}");
                    ExitCode::from(2)
                }))
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn verify(a: VerifyArgs) -> Result<ExitCode> {
    use stboot::attest::appraise::{appraise, Verifier};
    let nonce = stboot::attest::nonce_from_hex(&a.nonce).map_err(anyhow::Error::msg)?;
    let key = match &a.key {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading the key file {}", p.display()))?),
        None => None,
    };
    let mut enrolments = Vec::new();
    for p in &a.enrolment {
        enrolments.push(read_json::<enrol::Enrolment>(p, "an enrolment record (stmgr attest enrol)")?);
    }
    let trust = stboot::config::TrustConfig::load(&a.trust_policy, None)
        .with_context(|| format!("-trustPolicy {}", a.trust_policy.display()))?;
    let bytes = std::fs::read(&a.evidence).with_context(|| format!("reading {}", a.evidence.display()))?;
    let reference = match &a.firmware_reference {
        Some(p) => {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            Some(
                stboot::attest::appraise::firmware_reference(&bytes)
                    .map_err(|e| anyhow::anyhow!("-firmwareReference {}: {e}", p.display()))?,
            )
        }
        None => None,
    };
    let (now, _) = stboot::verify::effective_now();
    let v = Verifier {
        nonce: &nonce,
        key: key.as_deref(),
        enrolments: &enrolments,
        trust: &trust,
        now_unix: now,
        firmware_reference: reference.as_ref(),
    };
    let r = appraise(&bytes, &v);
    for c in &r.checks {
        println!("{} {:<18} {}", if c.ok { "ok  " } else { "FAIL" }, c.check, stboot::text::printable(&c.detail));
    }
    println!("firmware PCRs 0-7: {}", r.firmware_pcrs);
    println!("{}", stboot::text::printable(&r.verdict));
    if let Some(p) = &a.json {
        let mut text = serde_json::to_string_pretty(&r)?;
        text.push('\n');
        if p.as_os_str() == "-" {
            print!("{text}");
        } else {
            crate::write_out(p, text.as_bytes(), 0o644)?;
        }
    }
    Ok(if r.verified { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
