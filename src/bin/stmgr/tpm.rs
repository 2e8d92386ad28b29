//! `stmgr tpm predict`: the PCR values stboot will produce when it boots a package,
//! computed before anything is deployed (stboot's own measurement code,
//! `stboot::measure`); `stmgr tpm replay`: the PCRs an event log implies;
//! `stmgr tpm floor init|show|raise`: the TPM floor (`stboot::tpm::floor`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use stboot::config::TrustConfig;
use stboot::measure::{self, eventlog};
use stboot::ospkg::package::Unverified;
use stboot::ospkg::PackagePaths;
use stboot::tpm::floor::{self, TpmFloor};
use stboot::tpm::Tpm;
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
    /// The TPM floor: the lowest OS package version the machine boots, kept in
    /// its TPM where it only rises.
    #[command(
        subcommand,
        after_help = "\
Used when trust_policy.json has \"ospkg_tpm_floor\": true. The floor lives in NV
indices 0x01420002 (a counter only TPM2_NV_Increment writes) and 0x01420003 (its
base, write-locked). Define them once per machine with init; the booted OS raises
the floor with raise once it has checked that the release works.

Examples:
  stmgr tpm floor init -floor 1
  stmgr tpm floor show
  stmgr tpm floor raise                # to the booted version, from /stboot/report.json
  stmgr tpm floor raise -version 4"
    )]
    Floor(FloorCmd),
}

#[derive(Subcommand)]
pub enum FloorCmd {
    /// Define the floor's NV indices (owner hierarchy, empty password) at -floor.
    Init(FloorInitArgs),
    /// Print the floor (or that there is none).
    Show(FloorTpmArg),
    /// Raise the floor to the booted (or a given) version; never lowers it.
    Raise(FloorRaiseArgs),
}

#[derive(Args)]
pub struct FloorTpmArg {
    /// The TPM: a device, unix:PATH or tcp:HOST:PORT (a software TPM's command
    /// socket), or auto (/dev/tpmrm0, else /dev/tpm0).
    #[arg(long, default_value = "auto")]
    tpm: String,
}

#[derive(Args)]
pub struct FloorInitArgs {
    #[command(flatten)]
    tpm: FloorTpmArg,
    /// The floor to start at.
    #[arg(long, default_value_t = 0)]
    floor: u64,
}

#[derive(Args)]
pub struct FloorRaiseArgs {
    #[command(flatten)]
    tpm: FloorTpmArg,
    /// The version to raise the floor to; default: the booted package's
    /// ospkg.version in the boot report.
    #[arg(long)]
    version: Option<u64>,
    /// The boot report stboot handed over.
    #[arg(long = "bootReport", default_value = stboot::handoff::REPORT)]
    boot_report: PathBuf,
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
    /// The machine's TPM floor (stmgr tpm floor show), or none; needed when
    /// the trust policy has ospkg_tpm_floor.
    #[arg(long = "tpmFloor", value_name = "N|none")]
    tpm_floor: Option<String>,
}

impl TpmCmd {
    pub fn run(self) -> Result<ExitCode> {
        match self {
            TpmCmd::Predict(a) => predict(a),
            TpmCmd::Replay(a) => replay(a),
            TpmCmd::Floor(c) => c.run(),
        }
    }
}

impl FloorCmd {
    fn run(self) -> Result<ExitCode> {
        match self {
            FloorCmd::Init(a) => {
                let mut tpm = Tpm::open_spec(&a.tpm.tpm)?;
                let f = floor::init(&mut tpm, a.floor)?;
                println!(
                    "TPM floor {f}: NV indices 0x{:08x} (counter) and 0x{:08x} (base) defined on {}",
                    floor::COUNTER_NV_INDEX,
                    floor::BASE_NV_INDEX,
                    tpm.path
                );
            }
            FloorCmd::Show(a) => {
                let mut tpm = Tpm::open_spec(&a.tpm)?;
                match floor::read(&mut tpm)? {
                    Some(f) => println!("TPM floor {f}"),
                    None => println!("no TPM floor (NV index 0x{:08x} is not defined)", floor::COUNTER_NV_INDEX),
                }
            }
            FloorCmd::Raise(a) => {
                let version = match a.version {
                    Some(v) => v,
                    None => booted_version(&a.boot_report)?,
                };
                let mut tpm = Tpm::open_spec(&a.tpm.tpm)?;
                let r = floor::raise(&mut tpm, version)?;
                if r.to == r.from {
                    println!("TPM floor {}: already at or above version {version}, unchanged", r.from);
                } else {
                    println!("TPM floor raised from {} to {}", r.from, r.to);
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The booted package's version, from the boot report stboot handed over.
fn booted_version(report: &std::path::Path) -> Result<u64> {
    let text = std::fs::read(report)
        .with_context(|| format!("reading the boot report {} (give the version with -version N)", report.display()))?;
    let r: serde_json::Value = serde_json::from_slice(&text)
        .with_context(|| format!("{}: not JSON (give the version with -version N)", report.display()))?;
    match r.pointer("/ospkg/version").and_then(serde_json::Value::as_u64) {
        Some(v) => Ok(v),
        None => bail!(
            "{}: field \"ospkg.version\" is missing or not a whole number: the booted package has no version \
             (stmgr ospkg create -version N), so there is nothing to raise the floor to",
            report.display()
        ),
    }
}

/// `-tpmFloor N|none` for a trust policy that does (`wanted`) or does not ask for
/// a TPM floor.
fn tpm_floor_arg(arg: Option<&str>, wanted: bool) -> Result<TpmFloor> {
    match (arg, wanted) {
        (None, false) => Ok(TpmFloor::Off),
        (Some(_), false) => bail!(
            "-tpmFloor: this trust policy does not ask for a TPM floor (no \"ospkg_tpm_floor\": true), so stboot \
             neither reads nor measures one; leave -tpmFloor out"
        ),
        (None, true) => bail!(
            "trust_policy.json has \"ospkg_tpm_floor\": true, so the machine's floor is measured: give it with \
             -tpmFloor N (stmgr tpm floor show on the machine) or -tpmFloor none"
        ),
        (Some("none"), true) => Ok(TpmFloor::Undefined),
        (Some(n), true) => n
            .parse()
            .map(TpmFloor::At)
            .map_err(|_| anyhow::anyhow!("-tpmFloor {n:?}: expected a whole number >= 0 or none")),
    }
}

fn predict(a: PredictArgs) -> Result<ExitCode> {
    let trust = TrustConfig::load(&a.trust_policy, None)
        .with_context(|| format!("-trustPolicy {}", a.trust_policy.display()))?;
    let paths = PackagePaths::from_arg(&a.ospkg)?;
    let pkg = Unverified::from_files(&paths)?;
    let (now, _) = verify::effective_now();
    let threshold = Threshold::AtLeast(trust.policy.ospkg_signature_threshold);
    let tpm_floor = tpm_floor_arg(a.tpm_floor.as_deref(), trust.policy.tpm_floor())?;
    let anchors = verify::Anchors { tpm_floor: tpm_floor.value(), ..verify::Anchors::from(&trust) };
    let pkg = match verify::verify_package(pkg, anchors, threshold, now) {
        Ok(p) => p,
        Err(rej) => bail!(
            "{}: stboot would not boot it, so it measures nothing for it: {:#} (stmgr ospkg verify -trustPolicy shows why)",
            paths.descriptor.display(),
            rej.error
        ),
    };
    let uki = stboot::ospkg::uki_facts(&paths.archive, pkg.facts().manifest())?;
    let ms = measure::for_package(pkg.facts(), &trust, tpm_floor, uki.as_ref(), a.identity.as_bytes());
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
