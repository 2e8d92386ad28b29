//! The stboot initramfs: a newc cpio (optionally gzip-compressed) with stboot as
//! `/init`, the trust policy, an optional host configuration, kernel modules and
//! extra files. Entries are sorted, owned by root, dated 0 and numbered in order, so
//! the same inputs give the same bytes. `/dev/console` is a device node in the
//! archive, so no root privileges are needed to build it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::config::trust_policy::{SIGNING_ROOT_FILE, TLS_ROOTS_FILE, TRUST_POLICY_FILE};

/// The file listing kernel modules in load order (one file name per line).
pub const MODULES_LIST: &str = "lib/modules-load.d/stboot.conf";

#[derive(clap::Args, Debug, Clone)]
pub struct BuildArgs {
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

enum Node {
    Dir,
    File { data: Vec<u8>, mode: u32 },
    CharDev { major: u32, minor: u32, mode: u32 },
}

/// An in-memory tree, written out sorted.
#[derive(Default)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
}

impl Tree {
    fn add_parents(&mut self, path: &str) {
        let mut p = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            if !p.is_empty() {
                p.push('/');
            }
            p.push_str(part);
            self.nodes.entry(p.clone()).or_insert(Node::Dir);
        }
    }

    fn clean(path: &str) -> Result<String> {
        let p = path.trim_start_matches('/');
        if p.is_empty() || p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            bail!("{path:?} is not a clean absolute path inside the initramfs");
        }
        Ok(p.to_string())
    }

    pub fn file(&mut self, path: &str, data: Vec<u8>, mode: u32) -> Result<()> {
        let p = Self::clean(path)?;
        self.add_parents(&p);
        if self.nodes.contains_key(&p) {
            bail!("/{p} is given twice");
        }
        self.nodes.insert(p, Node::File { data, mode });
        Ok(())
    }

    pub fn file_from(&mut self, path: &str, src: &Path, mode: u32) -> Result<()> {
        let data = std::fs::read(src).with_context(|| format!("reading {}", src.display()))?;
        self.file(path, data, mode)
    }

    pub fn dir(&mut self, path: &str) -> Result<()> {
        let p = Self::clean(path)?;
        self.add_parents(&p);
        self.nodes.entry(p).or_insert(Node::Dir);
        Ok(())
    }

    pub fn char_dev(&mut self, path: &str, major: u32, minor: u32, mode: u32) -> Result<()> {
        let p = Self::clean(path)?;
        self.add_parents(&p);
        self.nodes.insert(p, Node::CharDev { major, minor, mode });
        Ok(())
    }

    /// Write the newc archive.
    pub fn write_cpio<W: Write>(&self, mut w: W) -> Result<W> {
        for (ino, (name, node)) in self.nodes.iter().enumerate() {
            let b = cpio::newc::Builder::new(name).ino(ino as u32 + 1).uid(0).gid(0).mtime(0);
            w = match node {
                Node::Dir => b.mode(0o040755).nlink(2).write(w, 0).finish()?,
                Node::File { data, mode } => {
                    let size = u32::try_from(data.len()).map_err(|_| anyhow!("/{name} is larger than 4 GiB"))?;
                    let mut fw = b.mode(0o100000 | mode).nlink(1).write(w, size);
                    fw.write_all(data)?;
                    fw.finish()?
                }
                Node::CharDev { major, minor, mode } => {
                    b.mode(0o020000 | mode).nlink(1).rdev_major(*major).rdev_minor(*minor).write(w, 0).finish()?
                }
            };
        }
        Ok(cpio::newc::trailer(w)?)
    }
}

/// Assemble the tree for `args`.
pub fn tree(args: &BuildArgs) -> Result<Tree> {
    let mut t = Tree::default();
    check_stboot(&args.stboot)?;
    t.file_from("init", &args.stboot, 0o755)?;
    for d in ["dev", "proc", "sys", "tmp", "etc", "run"] {
        t.dir(d)?;
    }
    t.char_dev("dev/console", 5, 1, 0o600)?;
    let tp = &args.trust_policy;
    for (name, required) in [(TRUST_POLICY_FILE, true), (SIGNING_ROOT_FILE, true), (TLS_ROOTS_FILE, false)] {
        let src = tp.join(name);
        if src.exists() {
            t.file_from(&format!("etc/trust_policy/{name}"), &src, 0o644)?;
        } else if required {
            bail!("{}: missing; the trust policy directory needs {name}", src.display());
        }
    }
    // Refuse a trust policy stboot would refuse at boot.
    let trust = crate::config::TrustConfig::load(tp, None)
        .with_context(|| format!("checking trust policy {}", tp.display()))?;
    check_signing_roots(&tp.join(SIGNING_ROOT_FILE), &trust.signing_roots)?;
    if let Some(h) = &args.host_config {
        let bytes = std::fs::read(h).with_context(|| format!("reading {}", h.display()))?;
        let cfg = crate::config::HostConfig::parse(&bytes).with_context(|| format!("checking {}", h.display()))?;
        if let Some(k) = crate::config::host_config::unknown_keys(&bytes).first() {
            bail!("{}: {k}; stboot would ignore it", h.display());
        }
        let https = cfg.pointer().split(',').any(|u| u.trim().starts_with("https://"));
        if https && trust.tls_roots.is_empty() {
            bail!(
                "{}: ospkg_pointer has https URLs, but {} has no {TLS_ROOTS_FILE}: stboot could not trust any server; add the CA that issued the servers' certificates",
                h.display(),
                tp.display()
            );
        }
        t.file("etc/host_configuration.json", bytes, 0o644)?;
    }
    let mut order = String::new();
    for m in &args.modules {
        let name = base_name(m)?;
        if !name.ends_with(".ko") {
            bail!("{}: expected an uncompressed kernel module (.ko)", m.display());
        }
        check_module(m)?;
        t.file_from(&format!("lib/modules/{name}"), m, 0o644)?;
        order.push_str(&name);
        order.push('\n');
    }
    if !order.is_empty() {
        t.file(MODULES_LIST, order.into_bytes(), 0o644)?;
    }
    for p in &args.ospkgs {
        let paths = crate::ospkg::PackagePaths::from_arg(p)?;
        for f in [&paths.descriptor, &paths.archive] {
            t.file_from(&format!("ospkg/{}", base_name(f)?), f, 0o644)?;
        }
    }
    for spec in &args.files {
        let (src, dst) = spec.split_once(':').ok_or_else(|| anyhow!("--file {spec:?}: expected SOURCE:/PATH"))?;
        t.file_from(dst, Path::new(src), 0o644)?;
    }
    Ok(t)
}

/// Build the initramfs file; returns its path and size.
pub fn build(args: &BuildArgs) -> Result<(PathBuf, u64)> {
    let t = tree(args)?;
    let cpio = t.write_cpio(Vec::new())?;
    let bytes = match args.compress.as_str() {
        "none" => cpio,
        "gzip" => {
            let mut gz = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::best());
            gz.write_all(&cpio)?;
            gz.finish()?
        }
        other => bail!("--compress {other:?}: expected gzip or none"),
    };
    std::fs::write(&args.out, &bytes).with_context(|| format!("writing {}", args.out.display()))?;
    Ok((args.out.clone(), bytes.len() as u64))
}

/// What an ELF file's header says, as far as the checks below need.
struct Elf {
    class64: bool,
    machine: u16,
    kind: u16,
    interpreter: bool,
}

const ET_REL: u16 = 1;
const EM_X86_64: u16 = 62;

fn read_elf(bytes: &[u8]) -> Option<Elf> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[5] != 1 {
        return None;
    }
    let u16_at = |o: usize| bytes.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let class64 = bytes[4] == 2;
    let (kind, machine) = (u16_at(16)?, u16_at(18)?);
    let mut interpreter = false;
    if class64 {
        let phoff = u64::from_le_bytes(bytes[32..40].try_into().ok()?) as usize;
        let (phentsize, phnum) = (u16_at(54)? as usize, u16_at(56)? as usize);
        for i in 0..phnum {
            let at = phoff.checked_add(i.checked_mul(phentsize)?)?;
            let p_type = bytes.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))?;
            interpreter |= p_type == 3; // PT_INTERP: dynamically linked
        }
    }
    Some(Elf { class64, machine, kind, interpreter })
}

/// stboot becomes /init: it must be a static x86-64 executable.
fn check_stboot(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let expected =
        "expected the static x86-64 stboot (cargo build --release --target x86_64-unknown-linux-musl --bin stboot)";
    match read_elf(&bytes) {
        None if crate::ospkg::archive::is_bzimage(&bytes) => {
            bail!("-stboot {}: this is a Linux kernel, {expected}", path.display())
        }
        None => bail!("-stboot {}: not an ELF executable; {expected}", path.display()),
        Some(e) if !e.class64 || e.machine != EM_X86_64 => {
            bail!("-stboot {}: not an x86-64 program; {expected}", path.display())
        }
        Some(e) if e.kind == ET_REL => bail!("-stboot {}: an object file, not a program; {expected}", path.display()),
        Some(e) if e.interpreter => bail!(
            "-stboot {}: dynamically linked (it names a program interpreter), but the initramfs has no C library; {expected}",
            path.display()
        ),
        Some(_) => Ok(()),
    }
}

/// A kernel module must be an x86-64 ELF relocatable object; its vermagic, when it
/// can be read, is checked by the kernel at load time.
fn check_module(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    match read_elf(&bytes) {
        Some(e) if e.kind == ET_REL && e.machine == EM_X86_64 && e.class64 => Ok(()),
        _ => bail!(
            "-module {}: not an x86-64 kernel module (an ELF relocatable object); compressed modules (.ko.xz, .ko.zst) must be decompressed first",
            path.display()
        ),
    }
}

/// Signing roots must be CA certificates: a signing (leaf) certificate there would let
/// only packages signed by that one key boot, which is never what was meant.
fn check_signing_roots(path: &Path, roots: &[Vec<u8>]) -> Result<()> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    for (i, der) in roots.iter().enumerate() {
        let (_, c) = X509Certificate::from_der(der).map_err(|e| anyhow!("{}: certificate {i}: {e}", path.display()))?;
        let ca = matches!(c.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
        if !ca {
            bail!(
                "{}: certificate {i} ({}) is not a CA certificate (basicConstraints cA is not set): put the root certificate there (stmgr keygen certificate -isCA), not a signing certificate",
                path.display(),
                crate::verify::printable(&c.subject().to_string())
            );
        }
    }
    Ok(())
}

fn base_name(p: &Path) -> Result<String> {
    p.file_name().and_then(|n| n.to_str()).map(String::from).ok_or_else(|| anyhow!("{}: no file name", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpio_is_sorted_with_parents_and_console() {
        let mut t = Tree::default();
        t.file("etc/trust_policy/x.json", b"{}".to_vec(), 0o644).unwrap();
        t.file("init", b"ELF".to_vec(), 0o755).unwrap();
        t.char_dev("dev/console", 5, 1, 0o600).unwrap();
        assert!(t.file("../escape", vec![], 0o644).is_err());
        assert!(t.file("init", vec![], 0o644).is_err());
        let bytes = t.write_cpio(Vec::new()).unwrap();
        let mut r = std::io::Cursor::new(bytes);
        let mut names = Vec::new();
        loop {
            let e = cpio::newc::Reader::new(r).unwrap();
            if e.entry().is_trailer() {
                break;
            }
            names.push((e.entry().name().to_string(), e.entry().mode(), e.entry().rdev_major(), e.entry().mtime()));
            r = e.finish().unwrap();
        }
        let just: Vec<_> = names.iter().map(|n| n.0.as_str()).collect();
        assert_eq!(just, ["dev", "dev/console", "etc", "etc/trust_policy", "etc/trust_policy/x.json", "init"]);
        assert_eq!(names[1].1, 0o020600);
        assert_eq!(names[1].2, 5);
        assert_eq!(names[5].1, 0o100755);
        assert!(names.iter().all(|n| n.3 == 0));
    }
}
