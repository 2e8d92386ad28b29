//! `stmgr ospkg`: create, sign and verify OS packages.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use stboot::config::{trust_policy, FetchMethod};
use stboot::keys;
use stboot::ospkg::package::Unverified;
use stboot::ospkg::{self, PackagePaths};
use stboot::verify::{self, printable, Threshold, Verdict};

#[derive(Subcommand)]
pub enum OspkgCmd {
    /// Create NAME.zip and an unsigned NAME.json.
    #[command(after_help = "\
Examples:
  stmgr ospkg create -kernel vmlinuz -initramfs initrd.cpio.gz \\
      -cmdline 'console=ttyS0' -label 'OS 2026-11' -url os-2026-11.zip \\
      -out os-2026-11
      writes os-2026-11.zip and os-2026-11.json (dots in names are kept)
  stmgr ospkg create -uki os.efi -label 'OS as a UKI' -url os.zip -out os
      a UKI (systemd-stub with .linux, .initrd, .cmdline, a signed PCR
      policy...): stboot boots its sections and measures them into PCR 11
      as systemd-stub would")]
    Create(CreateArgs),
    /// Add a signature to NAME.json.
    #[command(after_help = "\
Examples:
  stmgr ospkg sign -key signer1.key -cert signer1.pem -ospkg os-2026-11
  stmgr ospkg sign -key signer2.key -cert signer2.pem -ospkg os-2026-11.json")]
    Sign(SignArgs),
    /// Attach a Sigsum proof of NAME.zip (from sigsum-submit) to NAME.json.
    #[command(after_help = "\
The proof's leaf must be NAME.zip's SHA-256 signed by the certificate's key; the
log and witnesses are checked when the package is verified, under the Sigsum
policy in the trust policy directory (ospkg_trust_policy).

Examples:
  sigsum-submit -k signer.key -p trust_policy/ospkg_trust_policy os-2026-11.zip
  stmgr ospkg sigsum -proof os-2026-11.zip.proof -cert signer.pem -ospkg os-2026-11")]
    Sigsum(SigsumArgs),
    /// Check a package as stboot would; exit status 0 only when it would boot.
    #[command(after_help = "\
Exit status 0 means stboot would accept the package under this trust policy:
enough valid signatures, an unambiguous archive with a manifest, a bzImage
kernel and, for the network fetch method, an archive URL in the descriptor.

Examples:
  stmgr ospkg verify -trustPolicy trust_policy/ -ospkg os-2026-11
  stmgr ospkg verify -rootCerts rootcert.pem -ospkg os-2026-11.zip")]
    Verify(VerifyArgs),
}

#[derive(clap::Args)]
pub struct CreateArgs {
    /// The OS kernel (bzImage).
    #[arg(long, required_unless_present = "uki", conflicts_with = "uki")]
    kernel: Option<PathBuf>,
    /// The OS initramfs.
    #[arg(long, required_unless_present = "uki", conflicts_with = "uki")]
    initramfs: Option<PathBuf>,
    /// Kernel command line of the OS.
    #[arg(long, default_value = "", conflicts_with = "uki")]
    cmdline: String,
    /// A unified kernel image (systemd-stub with .linux, .initrd, .cmdline, ...) in
    /// place of -kernel, -initramfs and -cmdline: stboot boots its sections and
    /// measures them into PCR 11 as systemd-stub would (stboot-rs extension).
    #[arg(long)]
    uki: Option<PathBuf>,
    /// Free-text label.
    #[arg(long, default_value = "")]
    label: String,
    /// URL of the archive (absolute, or relative to the descriptor's URL).
    #[arg(long, default_value = "")]
    url: String,
    /// The package's version for rollback protection: a whole number that rises
    /// with each release; machines refuse versions below their trust policy's
    /// ospkg_min_version (stboot-rs extension, in the signed manifest).
    #[arg(long)]
    version: Option<u64>,
    /// Output: NAME, NAME.json, NAME.zip, or a directory.
    #[arg(long, default_value = ospkg::DEFAULT_NAME)]
    out: PathBuf,
}

#[derive(clap::Args)]
pub struct SignArgs {
    /// Ed25519 private key (PKCS#8 PEM or OpenSSH), or its public key (OpenSSH or
    /// PEM) when ssh-agent (SSH_AUTH_SOCK) holds the private half.
    #[arg(long)]
    key: PathBuf,
    /// The key's certificate (PEM).
    #[arg(long)]
    cert: PathBuf,
    /// The package: NAME, NAME.json or NAME.zip.
    #[arg(long)]
    ospkg: PathBuf,
    /// Warn when the certificate expires within this many days.
    #[arg(long = "warnDays", default_value_t = 30)]
    warn_days: i64,
}

#[derive(clap::Args)]
pub struct SigsumArgs {
    /// The Sigsum proof (sigsum-submit writes NAME.zip.proof).
    #[arg(long)]
    proof: PathBuf,
    /// Certificate of the key that submitted it (PEM).
    #[arg(long)]
    cert: PathBuf,
    /// The package: NAME, NAME.json or NAME.zip.
    #[arg(long)]
    ospkg: PathBuf,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// Trust policy directory (trust_policy.json, ospkg_signing_root.pem, and
    /// ospkg_trust_policy for Sigsum proofs).
    #[arg(long = "trustPolicy", conflicts_with = "root_certs", required_unless_present = "root_certs")]
    trust_policy: Option<PathBuf>,
    /// Root certificates (PEM); every signature present must then be valid.
    #[arg(long = "rootCerts")]
    root_certs: Option<PathBuf>,
    /// The package: NAME, NAME.json or NAME.zip.
    #[arg(long)]
    ospkg: PathBuf,
}

impl OspkgCmd {
    pub fn run(self) -> Result<ExitCode> {
        match self {
            OspkgCmd::Create(a) => create(a),
            OspkgCmd::Sign(a) => sign(a),
            OspkgCmd::Sigsum(a) => sigsum(a),
            OspkgCmd::Verify(a) => verify_cmd(a),
        }
    }
}

fn create(a: CreateArgs) -> Result<ExitCode> {
    let paths = PackagePaths::from_arg(&a.out)?;
    match (&a.uki, &a.kernel, &a.initramfs) {
        (Some(uki), _, _) => ospkg::create_uki(&paths, uki, &a.label, &a.url, a.version)?,
        (None, Some(k), Some(i)) => ospkg::create(&paths, k, i, &a.cmdline, &a.label, &a.url, a.version)?,
        _ => anyhow::bail!("give -kernel and -initramfs, or -uki"),
    }
    super::info(format_args!("wrote {} and {}", paths.archive.display(), paths.descriptor.display()));
    Ok(ExitCode::SUCCESS)
}

fn sign(a: SignArgs) -> Result<ExitCode> {
    let paths = PackagePaths::from_arg(&a.ospkg)?;
    let key = keys::load_key(&a.key).with_context(|| format!("-key {}", a.key.display()))?;
    let cert = keys::load_certificate(&a.cert)?;
    stboot::sign::sign(&paths, &key, &cert).with_context(|| {
        format!("signing {} with -key {} and -cert {}", paths.descriptor.display(), a.key.display(), a.cert.display())
    })?;
    super::info(format_args!("signed {}", paths.descriptor.display()));
    let (now, _) = verify::effective_now();
    if let Some(w) = keys::validity_warning(&cert, now, a.warn_days) {
        super::warn(format_args!("-cert {}: {w}", a.cert.display()));
    }
    Ok(ExitCode::SUCCESS)
}

fn sigsum(a: SigsumArgs) -> Result<ExitCode> {
    let paths = PackagePaths::from_arg(&a.ospkg)?;
    let proof = std::fs::read(&a.proof).with_context(|| format!("-proof {}: cannot read", a.proof.display()))?;
    let cert = keys::load_certificate(&a.cert)?;
    stboot::sign::attach_sigsum_proof(&paths, &proof, &cert).with_context(|| {
        format!(
            "attaching -proof {} with -cert {} to {}",
            a.proof.display(),
            a.cert.display(),
            paths.descriptor.display()
        )
    })?;
    super::info(format_args!("attached the Sigsum proof to {}", paths.descriptor.display()));
    Ok(ExitCode::SUCCESS)
}

fn verify_cmd(a: VerifyArgs) -> Result<ExitCode> {
    let paths = PackagePaths::from_arg(&a.ospkg)?;
    let (trust, roots, threshold, method) = match (a.trust_policy, a.root_certs) {
        (Some(dir), _) => {
            let trust = stboot::config::TrustConfig::load(&dir, None)?;
            let threshold = Threshold::AtLeast(trust.policy.ospkg_signature_threshold);
            let method = Some(trust.policy.ospkg_fetch_method);
            (Some(trust), Vec::new(), threshold, method)
        }
        // as upstream: no Sigsum policy, so a proof cannot count
        (None, Some(f)) => (None, trust_policy::read_certs(&f)?, Threshold::All, None),
        (None, None) => bail!("give -trustPolicy DIR or -rootCerts FILE"),
    };
    let unverified = Unverified::from_files(&paths)?;
    // what stboot checks before it fetches the archive over the network
    let url_problem = match method {
        Some(FetchMethod::Network) => {
            let base = reqwest::Url::parse("https://provisioning.invalid/ospkg/descriptor.json")?;
            unverified.descriptor().archive_url(&base).err()
        }
        _ => None,
    };
    let (now, behind) = verify::effective_now();
    if behind {
        super::warn(format_args!(
            "the system clock is before this tool's build time; checking certificates at the build time"
        ));
    }
    // stboot unpacks a downloaded archive in one pass, which some zips do not allow
    let stream_problem = match method {
        Some(FetchMethod::Initramfs) => None,
        _ => one_pass_problem(&paths.archive),
    };
    let name = printable(&paths.archive.display().to_string());
    let anchors = match &trust {
        Some(t) => verify::Anchors::from(t),
        None => verify::Anchors::from(&roots),
    };
    match verify::verify_package(unverified, anchors, threshold, now) {
        Ok(pkg) => {
            println!("{}", pkg.report());
            if let Some(e) = url_problem {
                println!("REJECTED: {name}: {e:#} (stboot fetches the archive from this URL)");
                println!(
                    "what to do: create the package with -url NAME.zip (relative to the descriptor) or a full URL"
                );
                return Ok(ExitCode::FAILURE);
            }
            if let Some(e) = stream_problem {
                let e = printable(&e);
                if method.is_some() {
                    println!("REJECTED: {name}: {e} (stboot unpacks a downloaded archive while it arrives)");
                    return Ok(ExitCode::FAILURE);
                }
                super::warn(format_args!(
                    "{name}: {e}; stboot refuses it when it downloads it (the initramfs fetch method reads it anyway)"
                ));
            }
            let m = pkg.manifest();
            match m.ospkg_version {
                Some(v) => println!("version {v} (this trust policy's floor: {})", anchors.min_version),
                None => println!("version: none (counts as 0; this trust policy's floor: {})", anchors.min_version),
            }
            if let Some(line) = verify::expiry_line(pkg.report(), now) {
                println!("{line}");
            }
            if let Some(line) = pkg.facts().uki_signer_line() {
                println!("{line}");
            }
            if let Some(u) = ospkg::uki_facts(&paths.archive, m)? {
                let sections: Vec<&str> = u.sections.iter().map(|(n, _)| *n).collect();
                println!(
                    "UKI {}: PCR 11 measures {} {}; signed PCR policy (.pcrsig): {}",
                    printable(m.uki.as_deref().unwrap_or_default()),
                    sections.join(" "),
                    u.measured_as,
                    if u.pcrsig.is_some() { "yes" } else { "none" }
                );
            }
            println!("accepted: {name} (label {:?})", printable(&m.label));
            Ok(ExitCode::SUCCESS)
        }
        Err(rej) => {
            if let Some(r) = &rej.report {
                println!("{r}");
                let mut seen: Vec<&str> = Vec::new();
                for c in r.checks.iter().filter(|c| c.verdict != Verdict::Valid) {
                    let remedy = c.verdict.remedy();
                    if !seen.contains(&remedy) {
                        seen.push(remedy);
                        println!("what to do ({}): {remedy}", c.verdict.kind());
                    }
                }
            }
            println!("REJECTED: {name}: {}", printable(&format!("{:#}", rej.error)));
            if rej.kind == verify::RejectedKind::SecureBoot {
                println!("what to do: {}", rej.remedy());
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Why stboot's one-pass reader of downloaded archives ([`stboot::ospkg::stream`])
/// refuses `archive`, if it does: the archive is unpacked into a private temporary
/// directory, as stboot would, and removed again.
fn one_pass_problem(archive: &std::path::Path) -> Option<String> {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("stmgr-one-pass-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let made = {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(&dir)
    };
    if let Err(e) = made {
        return Some(format!("cannot check whether it streams: creating {}: {e}", dir.display()));
    }
    let limits = stboot::ospkg::stream::Limits { total: u64::MAX, ..Default::default() };
    let mut unzip = stboot::ospkg::stream::Unzip::new(&dir, limits);
    let fed = std::fs::File::open(archive).and_then(|mut f| std::io::copy(&mut f, &mut unzip));
    let r = match fed {
        Err(_) if unzip.error().is_some() => unzip.finish().map(drop),
        Err(e) => Err(anyhow::anyhow!("reading {}: {e}", archive.display())),
        Ok(_) => {
            let _ = unzip.flush();
            unzip.finish().map(drop)
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    r.err().map(|e| format!("{e:#}"))
}
