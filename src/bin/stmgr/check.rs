//! `stmgr hostconfig check` and `stmgr trustpolicy check`.

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Subcommand;
use stboot::config::{host_config, HostConfig, TrustPolicy};

#[derive(Subcommand)]
pub enum HostconfigCmd {
    /// Print the normalised host configuration, or what is wrong with it.
    #[command(after_help = "\
Keys no version of upstream knows are refused, with a suggestion: stboot
ignores them, so a typo in an optional key would change nothing, silently.

Examples:
  stmgr hostconfig check host_configuration.json
  stmgr hostconfig check '{\"network_mode\":\"dhcp\",\"ospkg_pointer\":\"https://h/os.json\"}'")]
    Check(JsonArg),
}

#[derive(Subcommand)]
pub enum TrustpolicyCmd {
    /// Print the normalised trust policy, or what is wrong with it.
    #[command(after_help = "\
Examples:
  stmgr trustpolicy check trust_policy/      (the whole directory, as stboot reads it)
  stmgr trustpolicy check trust_policy/trust_policy.json
  stmgr trustpolicy check '{\"ospkg_signature_threshold\":2,\"ospkg_fetch_method\":\"network\"}'")]
    Check(JsonArg),
}

#[derive(clap::Args)]
pub struct JsonArg {
    /// The JSON text, the path of a file holding it, or (trustpolicy check) the
    /// trust policy directory.
    json: String,
}

impl HostconfigCmd {
    pub fn run(self) -> Result<ExitCode> {
        let HostconfigCmd::Check(a) = self;
        let bytes = a.read()?;
        let cfg = HostConfig::parse(&bytes)?;
        let unknown = host_config::unknown_keys(&bytes);
        if !unknown.is_empty() {
            bail!("{}", unknown.join("\n"));
        }
        // what stboot would skip is refused here: a configuration that boots only
        // from some of its URLs is a mistake waiting to be found at boot
        let skipped = cfg.skipped_urls();
        if !skipped.is_empty() {
            bail!(
                "host configuration: field \"ospkg_pointer\": {}; expected comma-separated http:// or https:// URLs (stboot skips these)",
                skipped.join("; ")
            );
        }
        print!("{}", cfg.to_json());
        Ok(ExitCode::SUCCESS)
    }
}

impl TrustpolicyCmd {
    pub fn run(self) -> Result<ExitCode> {
        let TrustpolicyCmd::Check(a) = self;
        let dir = std::path::Path::new(&a.json);
        if dir.is_dir() {
            // the whole directory, as stboot reads it: every file checked; the
            // policy on stdout as for a file, what else it holds on stderr
            let t = stboot::config::TrustConfig::load(dir, None)?;
            print!("{}", t.policy.to_json());
            eprintln!("signing roots: {}", t.signing_roots.len());
            eprintln!("TLS roots: {}", t.tls_roots.len());
            if let Some(s) = &t.sigsum_policy {
                eprintln!("Sigsum policy: {} log(s)", s.policy.logs().count());
            }
            if let Some(r) = &t.revoked {
                eprintln!("revoked signers: {} (ospkg_revoked_signers)", r.entries.len());
            }
            eprintln!("lowest OS package version booted: {}", t.policy.min_version());
            if t.policy.tpm_floor() {
                eprintln!(
                    "TPM floor: also the floor in TPM NV index 0x{:08x}, when defined (stmgr tpm floor init)",
                    stboot::tpm::floor::COUNTER_NV_INDEX
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        let p = TrustPolicy::parse(&a.read()?)?;
        print!("{}", p.to_json());
        Ok(ExitCode::SUCCESS)
    }
}

impl JsonArg {
    /// The text itself, or a file holding it.
    fn read(&self) -> Result<Vec<u8>> {
        let t = self.json.trim_start();
        if t.starts_with('{') || t.starts_with('[') {
            return Ok(self.json.as_bytes().to_vec());
        }
        stboot::files::read_capped(std::path::Path::new(&self.json), 1 << 20)
    }
}
