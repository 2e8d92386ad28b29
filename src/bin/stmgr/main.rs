//! stmgr: the operator CLI. Keys and certificates, OS packages, config checks and
//! the stboot initramfs; one file per subcommand. Accepts upstream's single-dash
//! flags (`-kernel`) as well as `--kernel` (see `flags`).
//!
//! Help text stays within 80 columns (a serial console is 80 wide); a test renders
//! every subcommand's help and checks it.

mod attest;
mod check;
mod flags;
mod initramfs;
mod keygen;
mod ospkg;
mod tpm;
mod uki;

use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// System Transparency operator tool (stboot-rs).
#[derive(Parser)]
#[command(name = "stmgr", version, about, help_expected = true, term_width = 80, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// debug, info (default), warn, error or panic, as upstream: from warn up,
    /// what was written is not said; from error up, warnings are not printed.
    /// Results (verify's report) and errors are always printed.
    #[arg(long, global = true, value_name = "LEVEL", value_parser = ["debug", "info", "warn", "error", "panic"])]
    loglevel: Option<String>,
}

/// The -loglevel: 0 debug, 1 info, 2 warn, 3 error, 4 panic.
static LEVEL: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(1);

fn level() -> u8 {
    LEVEL.load(std::sync::atomic::Ordering::Relaxed)
}

/// An informational line (what was written), on stdout, up to -loglevel info.
fn info(msg: std::fmt::Arguments) {
    if level() <= 1 {
        println!("{msg}");
    }
}

/// A warning, on stderr, up to -loglevel warn.
fn warn(msg: std::fmt::Arguments) {
    if level() <= 2 {
        eprintln!("warning: {msg}");
    }
}

const EXAMPLES: &str = "\
Examples:
  stmgr keygen certificate -isCA
  stmgr ospkg create -kernel vmlinuz -initramfs initrd.gz -url os.zip -out os
  stmgr ospkg sign -key signer.key -cert signer.pem -ospkg os
  stmgr ospkg verify -trustPolicy trust_policy/ -ospkg os
  stmgr hostconfig check host_configuration.json";

#[derive(Subcommand)]
enum Cmd {
    /// Make keys and certificates.
    #[command(subcommand)]
    Keygen(keygen::KeygenCmd),
    /// Create, sign and verify OS packages.
    #[command(subcommand)]
    Ospkg(ospkg::OspkgCmd),
    /// Check a host configuration.
    #[command(subcommand)]
    Hostconfig(check::HostconfigCmd),
    /// Check a trust policy.
    #[command(subcommand)]
    Trustpolicy(check::TrustpolicyCmd),
    /// Build the stboot initramfs.
    #[command(subcommand)]
    Initramfs(initramfs::InitramfsCmd),
    /// Make a unified kernel image (UKI) for UEFI machines.
    #[command(subcommand)]
    Uki(uki::UkiCmd),
    /// Predict the TPM PCRs stboot produces for a package.
    #[command(subcommand)]
    Tpm(tpm::TpmCmd),
    /// Attestation: enrol a machine's attestation key (AK).
    #[command(subcommand)]
    Attest(attest::AttestCmd),
}

fn main() -> ExitCode {
    let cmd = Cli::command();
    let rewritten = flags::upstream_flags(std::env::args().collect(), &cmd);
    let cli = match cmd.clone().try_get_matches_from(&rewritten.args).and_then(|m| Cli::from_arg_matches(&m)) {
        Ok(c) => c,
        Err(e) if e.use_stderr() => {
            eprintln!("{}", flags::render_error(&e, &rewritten.typed, &cmd).trim_end());
            return ExitCode::from(2);
        }
        Err(e) => {
            // --help, --version
            let text = e.render().to_string();
            println!("{}", text.trim_end());
            return ExitCode::SUCCESS;
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("stmgr: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let l = match cli.loglevel.as_deref() {
        Some("debug") => 0,
        Some("warn") => 2,
        Some("error") => 3,
        Some("panic") => 4,
        _ => 1,
    };
    LEVEL.store(l, std::sync::atomic::Ordering::Relaxed);
    match cli.cmd {
        Cmd::Keygen(c) => c.run(),
        Cmd::Ospkg(c) => c.run(),
        Cmd::Hostconfig(c) => c.run(),
        Cmd::Trustpolicy(c) => c.run(),
        Cmd::Initramfs(c) => c.run(),
        Cmd::Uki(c) => c.run(),
        Cmd::Tpm(c) => c.run(),
        Cmd::Attest(c) => c.run(),
    }
}

/// Write a file and say so.
fn write_out(path: &std::path::Path, bytes: &[u8], mode: u32) -> Result<()> {
    stboot::files::write_file(path, bytes, mode)?;
    info(format_args!("wrote {}", path.display()));
    Ok(())
}
