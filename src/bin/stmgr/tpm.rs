//! `stmgr tpm predict`: the PCR values stboot will produce when it boots a package,
//! computed before anything is deployed (stboot's own measurement code,
//! `stboot::measure`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use stboot::config::TrustConfig;
use stboot::measure;
use stboot::ospkg::package::Unverified;
use stboot::ospkg::PackagePaths;
use stboot::verify::{self, Threshold};

#[derive(Subcommand)]
pub enum TpmCmd {
    /// Predict the PCRs stboot extends for a package.
    #[command(after_help = "\
Prints one PCR<n>=<hex> line per PCR (12, 13, 14), the SHA-256 bank starting
from zeros, as the booted OS reads them when stboot was the only writer. The
package must verify under the trust policy (stboot boots nothing else).

Examples:
  stmgr tpm predict -trustPolicy trust_policy/ -ospkg os-2026-11
  stmgr tpm predict -trustPolicy trust_policy/ -ospkg os-2026-11 \\
      -identity rack-7")]
    Predict(PredictArgs),
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
}

impl TpmCmd {
    pub fn run(self) -> Result<ExitCode> {
        match self {
            TpmCmd::Predict(a) => predict(a),
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
    let pkg = match verify::verify_package(pkg, trust.anchors(), threshold, now) {
        Ok(p) => p,
        Err(rej) => bail!(
            "{}: stboot would not boot it, so it measures nothing for it: {:#} (stmgr ospkg verify -trustPolicy shows why)",
            paths.descriptor.display(),
            rej.error
        ),
    };
    let mut ms = measure::for_package(&pkg, &trust);
    ms.push(measure::identity_measurement(a.identity.as_bytes()));
    for (pcr, value) in measure::pcr_values(&ms) {
        println!("PCR{pcr}={}", measure::hex(&value));
    }
    Ok(ExitCode::SUCCESS)
}
