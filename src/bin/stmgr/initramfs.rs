//! `stmgr initramfs build`: the stboot initramfs.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum InitramfsCmd {
    /// Build a newc cpio: same inputs, same bytes.
    #[command(after_help = "\
The inputs are checked: stboot must be a static x86-64 program, signing roots
CA certificates, modules x86-64 kernel modules, and an https ospkg_pointer
needs tls_roots.pem in the trust policy directory.

Examples:
  stmgr initramfs build -stboot stboot -trustPolicy trust_policy/ \\
      -hostConfig host_configuration.json -module e1000e.ko \\
      -out stboot.cpio.gz")]
    Build(stboot::initramfs::BuildArgs),
}

impl InitramfsCmd {
    pub fn run(self) -> Result<ExitCode> {
        let InitramfsCmd::Build(args) = self;
        let (path, n) = stboot::initramfs::build(&args)?;
        super::info(format_args!("wrote {} ({n} bytes)", path.display()));
        Ok(ExitCode::SUCCESS)
    }
}
