//! `stmgr initramfs build`: the stboot initramfs.

use std::path::PathBuf;
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
    Build(BuildFlags),
}

/// `stmgr initramfs build`'s flags; the library's [`stboot::initramfs::BuildArgs`].
#[derive(clap::Args, Debug, Clone)]
pub struct BuildFlags {
    /// The stboot binary (static); becomes /init.
    #[arg(long, value_name = "FILE")]
    pub stboot: PathBuf,
    /// Trust policy directory: trust_policy.json, ospkg_signing_root.pem and (for HTTPS) tls_roots.pem.
    #[arg(long = "trustPolicy", value_name = "DIR")]
    pub trust_policy: PathBuf,
    /// Host configuration, becomes /etc/host_configuration.json.
    #[arg(long = "hostConfig", value_name = "FILE")]
    pub host_config: Option<PathBuf>,
    /// Kernel module (.ko) for /lib/modules; repeat, in load order.
    #[arg(long = "module", value_name = "FILE")]
    pub modules: Vec<PathBuf>,
    /// OS package (either file or the stem) for /ospkg/ (fetch method initramfs); repeatable.
    #[arg(long = "ospkg", value_name = "NAME")]
    pub ospkgs: Vec<PathBuf>,
    /// Extra file, as SOURCE:/PATH/IN/INITRAMFS; repeatable.
    #[arg(long = "file", value_name = "SRC:/PATH")]
    pub files: Vec<String>,
    /// Compression: gzip or none.
    #[arg(long, default_value = "gzip")]
    pub compress: String,
    /// Output file.
    #[arg(long, default_value = "stboot-initramfs.cpio.gz", value_name = "FILE")]
    pub out: PathBuf,
}

impl From<BuildFlags> for stboot::initramfs::BuildArgs {
    fn from(f: BuildFlags) -> Self {
        Self {
            stboot: f.stboot,
            trust_policy: f.trust_policy,
            host_config: f.host_config,
            modules: f.modules,
            ospkgs: f.ospkgs,
            files: f.files,
            compress: f.compress,
            out: f.out,
        }
    }
}

impl InitramfsCmd {
    pub fn run(self) -> Result<ExitCode> {
        let InitramfsCmd::Build(args) = self;
        let (path, n) = stboot::initramfs::build(&args.into())?;
        super::info(format_args!("wrote {} ({n} bytes)", path.display()));
        Ok(ExitCode::SUCCESS)
    }
}
