//! stmgr: the operator CLI. Keys and certificates, OS packages, config checks and
//! the stboot initramfs. Accepts upstream's single-dash flags (`-kernel`) as well as
//! `--kernel`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{CommandFactory, Parser, Subcommand};
use stboot::config::{trust_policy, FetchMethod, HostConfig, TrustPolicy};
use stboot::keys::{self, Validity};
use stboot::ospkg::package::Unverified;
use stboot::ospkg::{self, PackagePaths};
use stboot::verify::{self, Threshold};

/// System Transparency operator tool (stboot-rs).
#[derive(Parser)]
#[command(name = "stmgr", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Make keys and certificates.
    #[command(subcommand)]
    Keygen(KeygenCmd),
    /// Create, sign and verify OS packages.
    #[command(subcommand)]
    Ospkg(OspkgCmd),
    /// Check a host configuration.
    #[command(subcommand)]
    Hostconfig(CheckCmd),
    /// Check a trust policy.
    #[command(subcommand)]
    Trustpolicy(CheckCmd),
    /// Build the stboot initramfs.
    #[command(subcommand)]
    Initramfs(InitramfsCmd),
}

#[derive(Subcommand)]
enum KeygenCmd {
    /// Make an Ed25519 root (-isCA) or signing (leaf) certificate.
    Certificate {
        /// Make a self-signed root certificate.
        #[arg(long = "isCA")]
        is_ca: bool,
        /// Root certificate that issues the leaf.
        #[arg(long = "rootCert", default_value = "rootcert.pem")]
        root_cert: PathBuf,
        /// Root private key [default: rootkey.pem; with -isCA a new key unless given].
        #[arg(long = "rootKey")]
        root_key: Option<PathBuf>,
        /// Existing leaf private key; a new one is made when not given.
        #[arg(long = "leafKey")]
        leaf_key: Option<PathBuf>,
        /// Where to write the certificate [default: rootcert.pem or cert.pem].
        #[arg(long = "certOut")]
        cert_out: Option<PathBuf>,
        /// Where to write a new private key [default: rootkey.pem or key.pem].
        #[arg(long = "keyOut")]
        key_out: Option<PathBuf>,
        /// Start of validity, RFC 3339 [default: now].
        #[arg(long = "validFrom")]
        valid_from: Option<String>,
        /// End of validity, RFC 3339 [default: 10 years (root) or 5 years (leaf) after validFrom].
        #[arg(long = "validUntil")]
        valid_until: Option<String>,
    },
}

#[derive(Subcommand)]
enum OspkgCmd {
    /// Create NAME.zip and an unsigned NAME.json.
    Create {
        /// The OS kernel (bzImage).
        #[arg(long)]
        kernel: PathBuf,
        /// The OS initramfs.
        #[arg(long)]
        initramfs: PathBuf,
        /// Kernel command line of the OS.
        #[arg(long, default_value = "")]
        cmdline: String,
        /// Free-text label.
        #[arg(long, default_value = "")]
        label: String,
        /// URL of the archive (absolute, or relative to the descriptor's URL).
        #[arg(long, default_value = "")]
        url: String,
        /// Output: either file name, the stem, or a directory.
        #[arg(long, default_value = ospkg::DEFAULT_NAME)]
        out: PathBuf,
    },
    /// Add a signature to NAME.json.
    Sign {
        /// Ed25519 private key (PKCS#8 PEM or OpenSSH).
        #[arg(long)]
        key: PathBuf,
        /// The key's certificate (PEM).
        #[arg(long)]
        cert: PathBuf,
        /// The package: either file, or the stem.
        #[arg(long)]
        ospkg: PathBuf,
    },
    /// Verify a package's signatures; exit status 0 only when accepted.
    Verify {
        /// Trust policy directory (threshold and ospkg_signing_root.pem).
        #[arg(long = "trustPolicy", conflicts_with = "root_certs", required_unless_present = "root_certs")]
        trust_policy: Option<PathBuf>,
        /// Root certificates (PEM); every signature present must then be valid.
        #[arg(long = "rootCerts")]
        root_certs: Option<PathBuf>,
        /// The package: either file, or the stem.
        #[arg(long)]
        ospkg: PathBuf,
    },
}

#[derive(Subcommand)]
enum CheckCmd {
    /// Print the normalised configuration, or the error and exit non-zero.
    Check {
        /// The JSON text, or the path of a file holding it.
        json: String,
    },
}

#[derive(Subcommand)]
enum InitramfsCmd {
    /// Build a newc cpio: same inputs, same bytes.
    Build(stboot::initramfs::BuildArgs),
}

fn main() -> ExitCode {
    let args = upstream_flags(std::env::args().collect());
    let cli = Cli::parse_from(args);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("stmgr: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Rewrite upstream's single-dash long flags (`-kernel x`, `-isCA`, `-out=x`) to
/// clap's `--kernel`. Only names stmgr knows are rewritten, so values that start
/// with a dash pass through untouched.
fn upstream_flags(args: Vec<String>) -> Vec<String> {
    fn longs(c: &clap::Command, out: &mut Vec<String>) {
        out.extend(c.get_arguments().filter_map(|a| a.get_long().map(String::from)));
        for s in c.get_subcommands() {
            longs(s, out);
        }
    }
    let mut known = Vec::new();
    longs(&Cli::command(), &mut known);
    args.into_iter()
        .enumerate()
        .map(|(i, a)| match a.strip_prefix('-') {
            Some(rest) if i > 0 && !rest.starts_with('-') && rest.len() > 1 => {
                let name = rest.split('=').next().unwrap_or(rest);
                if known.iter().any(|k| k == name) {
                    format!("--{rest}")
                } else {
                    a
                }
            }
            _ => a,
        })
        .collect()
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.cmd {
        Cmd::Keygen(KeygenCmd::Certificate {
            is_ca,
            root_cert,
            root_key,
            leaf_key,
            cert_out,
            key_out,
            valid_from,
            valid_until,
        }) => {
            // with -isCA the key being certified is -rootKey; otherwise -leafKey
            let (key_path, cert_name, key_name, days) = if is_ca {
                (root_key.clone(), "rootcert.pem", "rootkey.pem", keys::DEFAULT_ROOT_VALIDITY_DAYS)
            } else {
                (leaf_key, "cert.pem", "key.pem", keys::DEFAULT_LEAF_VALIDITY_DAYS)
            };
            let (key, new) = match &key_path {
                Some(p) => (keys::load_signing_key(p)?, false),
                None => (keys::generate_key(), true),
            };
            let v = Validity::from_args(valid_from.as_deref(), valid_until.as_deref(), days)?;
            let pem = if is_ca {
                keys::root_certificate(&key, &v)?
            } else {
                let rkey = keys::load_signing_key(&root_key.unwrap_or_else(|| "rootkey.pem".into()))?;
                let rcert = keys::load_certificate(&root_cert)?;
                keys::leaf_certificate(&key, &rcert, &rkey, &v)?
            };
            write_out(&cert_out.unwrap_or_else(|| cert_name.into()), pem.as_bytes(), 0o644)?;
            if new {
                write_out(&key_out.unwrap_or_else(|| key_name.into()), keys::signing_key_pem(&key)?.as_bytes(), 0o600)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Ospkg(OspkgCmd::Create { kernel, initramfs, cmdline, label, url, out }) => {
            let paths = PackagePaths::from_arg(&out)?;
            ospkg::create(&paths, &kernel, &initramfs, &cmdline, &label, &url)?;
            println!("wrote {} and {}", paths.archive.display(), paths.descriptor.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Ospkg(OspkgCmd::Sign { key, cert, ospkg: pkg }) => {
            let paths = PackagePaths::from_arg(&pkg)?;
            let key = keys::load_signing_key(&key)?;
            let cert = keys::load_certificate(&cert)?;
            ospkg::sign(&paths, &key, &cert)?;
            println!("signed {}", paths.descriptor.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Ospkg(OspkgCmd::Verify { trust_policy: dir, root_certs, ospkg: pkg }) => {
            let paths = PackagePaths::from_arg(&pkg)?;
            let (roots, threshold, method) = match (dir, root_certs) {
                (Some(dir), _) => {
                    let p = dir.join(trust_policy::TRUST_POLICY_FILE);
                    let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
                    let policy = TrustPolicy::parse(&bytes).with_context(|| format!("in {}", p.display()))?;
                    let roots = trust_policy::read_certs(&dir.join(trust_policy::SIGNING_ROOT_FILE))?;
                    (roots, Threshold::AtLeast(policy.ospkg_signature_threshold), Some(policy.ospkg_fetch_method))
                }
                (None, Some(f)) => (trust_policy::read_certs(&f)?, Threshold::All, None),
                (None, None) => bail!("give -trustPolicy DIR or -rootCerts FILE"),
            };
            let unverified = Unverified::from_files(&paths)?;
            // what stboot checks before it fetches the archive over the network
            let url_problem = match method {
                Some(FetchMethod::Network) => {
                    let base = reqwest::Url::parse("https://provisioning.invalid/ospkg/descriptor.json")?;
                    unverified.descriptor.archive_url(&base).err()
                }
                _ => None,
            };
            let (now, behind) = verify::effective_now();
            if behind {
                eprintln!("warning: the system clock is before this tool's build time; checking certificates at the build time");
            }
            let name = verify::printable(&paths.archive.display().to_string());
            match verify::verify_package(unverified, &roots, threshold, now) {
                Ok(pkg) => {
                    println!("{}", pkg.report());
                    if let Some(e) = url_problem {
                        println!("REJECTED: {name}: {e:#} (stboot fetches the archive from this URL)");
                        return Ok(ExitCode::FAILURE);
                    }
                    println!("accepted: {name} (label {:?})", verify::printable(&pkg.manifest().label));
                    Ok(ExitCode::SUCCESS)
                }
                Err(rej) => {
                    if let Some(r) = &rej.report {
                        println!("{r}");
                    }
                    println!("REJECTED: {name}: {}", verify::printable(&format!("{:#}", rej.error)));
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Cmd::Hostconfig(CheckCmd::Check { json }) => {
            let cfg = HostConfig::parse(&json_arg(&json)?)?;
            print!("{}", cfg.to_json());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Trustpolicy(CheckCmd::Check { json }) => {
            let p = TrustPolicy::parse(&json_arg(&json)?)?;
            print!("{}", p.to_json());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Initramfs(InitramfsCmd::Build(args)) => {
            let (path, n) = stboot::initramfs::build(&args)?;
            println!("wrote {} ({n} bytes)", path.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A JSON argument: the text itself, or a file holding it.
fn json_arg(arg: &str) -> Result<Vec<u8>> {
    if arg.trim_start().starts_with('{') || arg.trim_start().starts_with('[') {
        return Ok(arg.as_bytes().to_vec());
    }
    stboot::files::read_capped(std::path::Path::new(arg), 1 << 20)
}

fn write_out(path: &std::path::Path, bytes: &[u8], mode: u32) -> Result<()> {
    stboot::files::write_file(path, bytes, mode)?;
    println!("wrote {}", path.display());
    Ok(())
}
