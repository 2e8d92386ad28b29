//! `stmgr uki create`: a unified kernel image (stub + kernel + initramfs + command
//! line) for UEFI machines, with upstream's flags.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use stboot::uki;

#[derive(Subcommand)]
pub enum UkiCmd {
    /// Make a UKI of a kernel and the stboot initramfs.
    #[command(after_help = "\
The UKI is systemd-stub (Debian package systemd-boot-efi) with .osrel,
.cmdline, .initrd and .linux sections added; UEFI firmware boots it directly.
The ISO carries a FAT image with the UKI as EFI/BOOT/BOOTX64.EFI as its
El Torito EFI boot image (for a BMC's virtual media).

Examples:
  stmgr uki create -format uki,iso -kernel bzImage \\
      -initramfs stboot.cpio.gz -cmdline console=ttyS0,115200 -out stboot")]
    Create(Box<CreateArgs>),
    /// Put an existing UKI (for example one signed with sbsign) into a bootable ISO.
    #[command(after_help = "\
Examples:
  stmgr uki to-iso -in stboot.uki              # writes stboot.iso
  stmgr uki to-iso -in signed.efi -out boot.iso")]
    ToIso(ToIsoArgs),
}

#[derive(Args)]
pub struct ToIsoArgs {
    /// The UKI (an EFI program).
    #[arg(long = "in", value_name = "FILE")]
    input: PathBuf,
    /// Output ISO (default: the input name without .uki, plus .iso).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Args)]
pub struct CreateArgs {
    /// Output formats, comma separated: uki, iso.
    #[arg(long, default_value = "iso", value_name = "LIST")]
    format: String,
    /// Output path; .uki or .iso is added unless present.
    #[arg(long, default_value = "stmgr", value_name = "PATH")]
    out: PathBuf,
    /// Kernel to boot (an EFI-stub bzImage).
    #[arg(long, value_name = "FILE")]
    kernel: PathBuf,
    /// Initramfs (the stboot initramfs); the default is upstream's (where u-root
    /// writes one).
    #[arg(long, value_name = "FILE", default_value = "/tmp/initramfs.linux_amd64.cpio")]
    initramfs: PathBuf,
    /// Kernel command line.
    #[arg(long, default_value = "", value_name = "TEXT")]
    cmdline: String,
    /// More sections, as NAME:FILE (repeatable), after the others: for an OS
    /// UKI, its signed PCR policy (.pcrsig from systemd-measure sign) and key
    /// (.pcrpkey), or .uname, .splash, .dtb.
    #[arg(long = "section", value_name = "NAME:FILE")]
    section: Vec<String>,
    /// os-release file for the .osrel section (default: stboot's).
    #[arg(long, value_name = "FILE")]
    osrelease: Option<PathBuf>,
    /// EFI stub (default: systemd-boot-efi's linuxx64.efi.stub).
    #[arg(long, value_name = "FILE")]
    stub: Option<PathBuf>,
    /// Replace an existing ISO (a UKI is always replaced, as upstream does).
    #[arg(long)]
    force: bool,
    /// SBAT metadata (CSV) that replaces the stub's .sbat section.
    #[arg(long, value_name = "FILE")]
    sbat: Option<PathBuf>,
    /// Add the -sbat lines after the stub's own SBAT instead of replacing it.
    #[arg(long = "append-sbat")]
    append_sbat: bool,
    /// Certificate for Secure Boot signing (PEM; enrolled in db, or issued by one that is).
    #[arg(long, value_name = "FILE")]
    signcert: Option<PathBuf>,
    /// RSA private key for Secure Boot signing (PEM, unencrypted).
    #[arg(long, value_name = "FILE")]
    signkey: Option<PathBuf>,
}

impl UkiCmd {
    pub fn run(self) -> Result<ExitCode> {
        match self {
            UkiCmd::Create(a) => create(&a)?,
            UkiCmd::ToIso(a) => to_iso(&a)?,
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn read(what: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("-{what} {}: cannot read", path.display()))
}

fn create(a: &CreateArgs) -> Result<()> {
    let (mut want_uki, mut want_iso) = (false, false);
    for f in a.format.split(',') {
        match f {
            "uki" => want_uki = true,
            "iso" => want_iso = true,
            "" => {}
            other => bail!("-format {other:?}: expected a comma-separated list of uki and iso"),
        }
    }
    if !want_uki && !want_iso {
        bail!("-format {:?}: no output format given; expected uki, iso or both", a.format);
    }
    if a.signcert.is_some() != a.signkey.is_some() {
        bail!("both -signcert and -signkey are required for signing the UKI");
    }
    // read and check the signing key before the work is done
    let signer = match (&a.signkey, &a.signcert) {
        (Some(key), Some(cert)) => Some(
            stboot::secureboot::Signer::from_pem(&read("signkey", key)?, &read("signcert", cert)?)
                .with_context(|| format!("-signkey {} -signcert {}", key.display(), cert.display()))?,
        ),
        _ => None,
    };
    let stub_path = a.stub.clone().unwrap_or_else(|| PathBuf::from(uki::DEBIAN_STUB));
    let mut stub = std::fs::read(&stub_path).with_context(|| {
        format!(
            "-stub {}: cannot read the EFI stub; install Debian's systemd-boot-efi or pass -stub FILE",
            stub_path.display()
        )
    })?;
    let sbat = match &a.sbat {
        None if a.append_sbat => bail!("-append-sbat: give the SBAT lines to add with -sbat FILE"),
        None => None,
        Some(path) => {
            let lines = read("sbat", path)?;
            let old = uki::section_data(&stub, ".sbat").with_context(|| format!("-stub {}", stub_path.display()))?;
            let sbat = uki::sbat(old.filter(|_| a.append_sbat), &lines)
                .with_context(|| format!("-sbat {}", path.display()))?;
            stub = uki::remove_section(&stub, ".sbat")?;
            Some(sbat)
        }
    };
    let kernel = read("kernel", &a.kernel)?;
    if kernel.get(..2) != Some(b"MZ") {
        bail!("-kernel {}: not an EFI program (no MZ header); the kernel needs CONFIG_EFI_STUB", a.kernel.display());
    }
    let initramfs = read("initramfs", &a.initramfs)?;
    let osrel = match &a.osrelease {
        Some(p) => read("osrelease", p)?,
        None => uki::DEFAULT_OSREL.as_bytes().to_vec(),
    };
    let cmdline = format!("{}\n", a.cmdline);
    // upstream's order
    let mut sections: Vec<(&str, &[u8])> =
        vec![(".osrel", &osrel), (".cmdline", cmdline.as_bytes()), (".initrd", &initramfs), (".linux", &kernel)];
    if let Some(sbat) = &sbat {
        sections.push((".sbat", sbat));
    }
    let mut extra = Vec::new();
    for s in &a.section {
        let Some((name, file)) = s.split_once(':').filter(|(n, f)| n.starts_with('.') && !f.is_empty()) else {
            bail!("-section {s:?}: expected NAME:FILE, with NAME starting with a dot (.pcrsig:policy.json)");
        };
        if sections.iter().any(|(n, _)| *n == name) {
            bail!(
                "-section {name}: stmgr writes that section itself (-osrelease, -cmdline, -initramfs, -kernel, -sbat)"
            );
        }
        extra.push((name, read("section", Path::new(file))?));
    }
    sections.extend(extra.iter().map(|(n, b)| (*n, b.as_slice())));
    let image = uki::append_sections(&stub, &sections).with_context(|| format!("-stub {}", stub_path.display()))?;
    let image = match &signer {
        Some(s) => s.sign(&image).context("Secure Boot signing the UKI")?,
        None => image,
    };
    // all or nothing: every output is made and checked before any is written, so a
    // .uki and an .iso never come from different runs
    let mut outputs: Vec<(PathBuf, Vec<u8>, String)> = Vec::new();
    if want_uki {
        let signed = if signer.is_some() { ", Secure Boot signed" } else { "" };
        outputs.push((with_suffix(&a.out, ".uki"), image.clone(), format!("{} bytes{signed}", image.len())));
    }
    if want_iso {
        let iso = iso_bytes(&image)?;
        let what = format!("{} bytes; EFI boot image EFI/BOOT/BOOTX64.EFI = the UKI", iso.len());
        outputs.push((with_suffix(&a.out, ".iso"), iso, what));
    }
    // upstream replaces a .uki but refuses an existing .iso without -force
    for (out, _, _) in outputs.iter().filter(|(o, _, _)| o.extension().is_some_and(|e| e == "iso")) {
        if out.exists() && !a.force {
            bail!("-out {}: the ISO exists; pass -force to replace it (nothing was written)", out.display());
        }
    }
    for (out, bytes, what) in &outputs {
        write_replacing(out, bytes)?;
        super::info(format_args!("wrote {} ({what})", out.display()));
    }
    Ok(())
}

/// The ISO image (El Torito, UEFI) whose ESP boots `uki`.
fn iso_bytes(uki: &[u8]) -> Result<Vec<u8>> {
    stboot::iso::iso_image(&stboot::iso::esp_image(uki)?)
}

/// Write `bytes` to `out` whole or not at all: a file beside it, then a rename.
fn write_replacing(out: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = out.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).with_context(|| format!("-out {}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("-out {}: cannot replace it", out.display()))
}

fn write_iso(uki: &[u8], out: &Path) -> Result<()> {
    let iso = iso_bytes(uki)?;
    write_replacing(out, &iso)?;
    super::info(format_args!(
        "wrote {} ({} bytes; EFI boot image EFI/BOOT/BOOTX64.EFI = the UKI)",
        out.display(),
        iso.len()
    ));
    Ok(())
}

fn to_iso(a: &ToIsoArgs) -> Result<()> {
    let uki = read("in", &a.input)?;
    // a UKI signed elsewhere is taken as it is; it must at least be an EFI program
    stboot::uki::sections(&uki).with_context(|| format!("-in {}: not a UKI", a.input.display()))?;
    let out = match &a.out {
        Some(o) => o.clone(),
        None => {
            let name = a.input.to_string_lossy();
            PathBuf::from(format!("{}.iso", name.strip_suffix(".uki").unwrap_or(&name)))
        }
    };
    // upstream's to-iso refuses to overwrite (and has no -force)
    if out.exists() {
        bail!("-out {}: the ISO exists; remove it first", out.display());
    }
    write_iso(&uki, &out)
}

fn with_suffix(out: &Path, suffix: &str) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    if !s.to_string_lossy().ends_with(suffix) {
        s.push(suffix);
    }
    PathBuf::from(s)
}
