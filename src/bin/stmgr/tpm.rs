//! `stmgr tpm predict`: the PCR values stboot will produce when it boots a package,
//! computed before anything is deployed (stboot's own measurement code,
//! `stboot::measure`); `stmgr tpm replay`: the PCRs an event log implies.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use stboot::config::TrustConfig;
use stboot::measure::{self, eventlog};
use stboot::ospkg::package::Unverified;
use stboot::ospkg::PackagePaths;
use stboot::verify::{self, Threshold};

#[derive(Subcommand)]
pub enum TpmCmd {
    /// Predict the PCRs stboot extends for a package.
    #[command(after_help = "\
Prints one PCR<n>=<hex> line per PCR (12, 13, 14, or those the trust policy's
measurement_pcrs chooses), the SHA-256 bank starting from zeros, as the booted OS reads them when stboot was the only writer. The
package must verify under the trust policy (stboot boots nothing else).

Examples:
  stmgr tpm predict -trustPolicy trust_policy/ -ospkg os-2026-11
  stmgr tpm predict -trustPolicy trust_policy/ -ospkg os-2026-11 \\
      -identity rack-7")]
    Predict(PredictArgs),
    /// List an event log's events and the PCRs they imply.
    #[command(after_help = "\
Reads a TCG crypto-agile (TPM 2.0) event log: stboot's, or the firmware's
(/sys/kernel/security/tpm0/binary_bios_measurements). Lists each event, then
prints one PCR<n>=<hex> line per PCR the log extends (SHA-256 bank, from
zeros).

Examples:
  stmgr tpm replay stboot-eventlog.bin
  stmgr tpm replay stboot-eventlog.bin | grep '^PCR'")]
    Replay(ReplayArgs),
}

#[derive(Args)]
pub struct ReplayArgs {
    /// The event log file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

#[derive(Args)]
pub struct PredictArgs {
    /// The trust policy directory the stboot initramfs carries.
    #[arg(long = "trustPolicy")]
    trust_policy: PathBuf,
    /// The package: NAME, NAME.json or NAME.zip (as the server holds it,
    /// after decryption if it is encrypted).
    #[arg(long)]
    ospkg: PathBuf,
    /// The machine's UX identity (TPM NV index 0x01420001); default: none.
    #[arg(long, default_value = "")]
    identity: String,
    /// Also write the event log stboot will write for these measurements.
    #[arg(long = "eventlog", value_name = "FILE")]
    eventlog: Option<PathBuf>,
}

impl TpmCmd {
    pub fn run(self) -> Result<ExitCode> {
        match self {
            TpmCmd::Predict(a) => predict(a),
            TpmCmd::Replay(a) => replay(a),
        }
    }
}

fn predict(a: PredictArgs) -> Result<ExitCode> {
    let trust = TrustConfig::load(&a.trust_policy, None)
        .with_context(|| format!("-trustPolicy {}", a.trust_policy.display()))?;
    let paths = PackagePaths::from_arg(&a.ospkg)?;
    let pkg = Unverified::from_files(&paths)?;
    let (now, _) = verify::effective_now();
    let threshold = Threshold::AtLeast(trust.policy.ospkg_signature_threshold);
    let pkg = match verify::verify_package(pkg, verify::Anchors::from(&trust), threshold, now) {
        Ok(p) => p,
        Err(rej) => bail!(
            "{}: stboot would not boot it, so it measures nothing for it: {:#} (stmgr ospkg verify -trustPolicy shows why)",
            paths.descriptor.display(),
            rej.error
        ),
    };
    let ms = measure::for_package(pkg.facts(), &trust, a.identity.as_bytes());
    if let Some(out) = &a.eventlog {
        super::write_out(out, &eventlog::write(&ms), 0o644)?;
    }
    for (pcr, value) in measure::pcr_values(&ms) {
        println!("PCR{pcr}={value}");
    }
    Ok(ExitCode::SUCCESS)
}

fn replay(a: ReplayArgs) -> Result<ExitCode> {
    let bytes = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let events = eventlog::parse(&bytes).with_context(|| format!("{}", a.file.display()))?;
    for (i, e) in events.iter().enumerate() {
        let digest = e.sha256.map(|d| d.hex()).unwrap_or_else(|| "(no SHA-256 digest)".into());
        println!(
            "event {i}: PCR {} {} sha256={digest} data={}",
            e.pcr,
            eventlog::type_name(e.event_type),
            preview(&e.data)
        );
    }
    for (pcr, value) in eventlog::replay(&events) {
        println!("PCR{pcr}={value}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Short text for event data: printable text quoted (cut at 60 characters), else
/// its length.
fn preview(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(t) if t.chars().all(|c| !c.is_control() || c == '\n') => {
            let cut: String = t.chars().take(60).collect();
            let more = if t.chars().count() > 60 { "..." } else { "" };
            format!("{:?}{more}", cut)
        }
        _ => format!("({} bytes)", data.len()),
    }
}
