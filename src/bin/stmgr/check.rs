//! `stmgr hostconfig check`, `stmgr hostconfig efivar` and `stmgr trustpolicy check`.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
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
    /// Write the host configuration into the STHostConfig EFI variable: of an
    /// OVMF variable store file, or of this running UEFI machine (efivarfs).
    #[command(after_help = "\
The configuration is checked first, as by hostconfig check; nothing is written
when it does not pass. stboot reads the variable when the initramfs has no
host_configuration.json.

Examples:
  stmgr hostconfig efivar -hostConfig host_configuration.json -vars OVMF_VARS.fd
  stmgr hostconfig efivar -hostConfig host_configuration.json -vars /usr/share/OVMF/OVMF_VARS_4M.fd -out machine7.vars.fd
  stmgr hostconfig efivar -hostConfig host_configuration.json -efivarfs    # as root, on the machine")]
    Efivar(EfivarArgs),
}

#[derive(clap::Args)]
pub struct EfivarArgs {
    /// The host configuration: a file, or the JSON text.
    #[arg(long = "hostConfig")]
    host_config: String,
    /// An OVMF variable store (OVMF_VARS.fd) to set the variable in.
    #[arg(long, conflicts_with = "efivarfs", required_unless_present = "efivarfs")]
    vars: Option<std::path::PathBuf>,
    /// Where to write the changed store (default: -vars itself).
    #[arg(long, requires = "vars")]
    out: Option<std::path::PathBuf>,
    /// Set the variable on this machine, in its efivarfs.
    #[arg(long)]
    efivarfs: bool,
    /// The efivarfs directory.
    #[arg(long = "efivarfsDir", default_value = stboot::config::paths::EFIVARS_DIR)]
    efivarfs_dir: std::path::PathBuf,
    /// Write a configuration with keys this stmgr does not know (one for another
    /// stboot version; stboot warns about them and ignores them). It must still
    /// parse.
    #[arg(long)]
    force: bool,
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
        match self {
            HostconfigCmd::Check(a) => {
                let cfg = checked(&a.read()?)?;
                print!("{}", cfg.to_json());
            }
            HostconfigCmd::Efivar(a) => {
                let bytes = JsonArg { json: a.host_config.clone() }.read()?;
                match checked(&bytes) {
                    Err(e) if a.force && HostConfig::parse(&bytes).is_ok() => {
                        eprintln!("stmgr: writing it anyway (-force): {e:#}")
                    }
                    r => {
                        r.context("-hostConfig: nothing was written (-force writes unknown keys)")?;
                    }
                }
                let data = bytes.trim_ascii();
                if let Some(vars) = &a.vars {
                    let fd = std::fs::read(vars).with_context(|| format!("-vars {}: cannot read", vars.display()))?;
                    let changed = stboot::efivars::set_in_store(&fd, data)
                        .with_context(|| format!("-vars {}", vars.display()))?;
                    let out = a.out.as_ref().unwrap_or(vars);
                    std::fs::write(out, changed).with_context(|| format!("-out {}: cannot write", out.display()))?;
                    println!(
                        "STHostConfig-{} set in {} ({} bytes of JSON)",
                        stboot::efivars::HOST_CONFIG_GUID,
                        out.display(),
                        data.len()
                    );
                } else {
                    let path = stboot::efivars::write_efivarfs(&a.efivarfs_dir, data)?;
                    println!("{} written ({} bytes of JSON)", path.display(), data.len());
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The host configuration in `bytes`, refused as `hostconfig check` refuses it.
fn checked(bytes: &[u8]) -> Result<HostConfig> {
    let cfg = HostConfig::parse(bytes)?;
    let unknown = host_config::unknown_keys(bytes);
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
    Ok(cfg)
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
            if let Some(db) = &t.uki_db {
                eprintln!(
                    "UKI Secure Boot db: {} certificate(s) ({}); only UKI packages signed for it boot",
                    db.certificates.len(),
                    stboot::config::trust_policy::UKI_DB_FILE
                );
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
