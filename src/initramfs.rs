//! The stboot initramfs: a newc cpio (optionally gzip-compressed) laid out as
//! `initramfs/layout.txt` says ([`LAYOUT`]): stboot as `/init`, the trust policy, an
//! optional host configuration, kernel modules, OS packages, and extra files.
//! Entries are sorted, owned by root, dated 0 and numbered in order, so the same
//! inputs give the same bytes. `/dev/console` is a device node in the archive, so no
//! root privileges are needed to build it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::config::trust_policy::{SIGNING_ROOT_FILE, TLS_ROOTS_FILE};

/// The initramfs layout, as data: the one description of where things go.
pub const LAYOUT: &str = include_str!("../initramfs/layout.txt");

/// One line of the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir {
        path: String,
        mode: u32,
    },
    Nod {
        path: String,
        mode: u32,
        major: u32,
        minor: u32,
    },
    /// A file from input `input` (absent inputs are allowed where `optional`).
    File {
        path: String,
        input: String,
        optional: bool,
        mode: u32,
    },
    /// Any number of files from input `input`, each under its base name in `dir`.
    Files {
        dir: String,
        input: String,
        mode: u32,
    },
}

/// The inputs the builder gives the layout, by name.
pub const INPUTS: [&str; 12] = [
    "stboot",
    "trust_policy.json",
    "ospkg_signing_root.pem",
    "tls_roots.pem",
    "ospkg_trust_policy",
    "ospkg_revoked_signers",
    "decryption_identities",
    "ospkg_uki_db.pem",
    "host_config",
    "modules",
    "modules.list",
    "ospkg",
];

/// Parse a layout (gen_init_cpio syntax with `@INPUT` sources and `files`).
pub fn parse_layout(text: &str) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        let bad = |why: &str| anyhow!("initramfs/layout.txt line {}: {why}: {raw:?}", i + 1);
        let mode = |s: &str| u32::from_str_radix(s, 8).map_err(|_| bad("mode is not octal"));
        let owner_root = |a: &str, b: &str| if a == "0" && b == "0" { Ok(()) } else { Err(bad("owner must be 0 0")) };
        let input = |s: &str| -> Result<(String, bool)> {
            let name = s.strip_prefix('@').ok_or_else(|| bad("a source must be an @INPUT"))?;
            let (name, optional) = match name.strip_suffix('?') {
                Some(n) => (n, true),
                None => (name, false),
            };
            if !INPUTS.contains(&name) {
                return Err(bad(&format!("unknown input @{name}")));
            }
            Ok((name.to_string(), optional))
        };
        out.push(match w.as_slice() {
            ["dir", p, m, u, g] => {
                owner_root(u, g)?;
                Entry::Dir { path: p.to_string(), mode: mode(m)? }
            }
            ["nod", p, m, u, g, "c", maj, min] => {
                owner_root(u, g)?;
                let n = |s: &str| s.parse::<u32>().map_err(|_| bad("device number"));
                Entry::Nod { path: p.to_string(), mode: mode(m)?, major: n(maj)?, minor: n(min)? }
            }
            ["file", p, src, m, u, g] => {
                owner_root(u, g)?;
                let (input, optional) = input(src)?;
                Entry::File { path: p.to_string(), input, optional, mode: mode(m)? }
            }
            ["files", d, src, m, u, g] => {
                owner_root(u, g)?;
                let (input, optional) = input(src)?;
                if optional {
                    return Err(bad("files takes any number of inputs already; no ?"));
                }
                Entry::Files { dir: d.to_string(), input, mode: mode(m)? }
            }
            _ => return Err(bad("expected dir, nod, file or files")),
        });
    }
    Ok(out)
}

/// The layout stboot's initramfs has.
pub fn layout() -> Vec<Entry> {
    parse_layout(LAYOUT).expect("initramfs/layout.txt is checked by a test")
}

/// What goes into the initramfs (`stmgr initramfs build`'s flags).
#[derive(Debug, Clone)]
pub struct BuildArgs {
    /// The stboot binary (static); becomes /init.
    pub stboot: PathBuf,
    /// Trust policy directory: trust_policy.json, ospkg_signing_root.pem and (for HTTPS) tls_roots.pem.
    pub trust_policy: PathBuf,
    /// Host configuration, becomes /etc/host_configuration.json.
    pub host_config: Option<PathBuf>,
    /// Kernel module (.ko) for /lib/modules; repeat, in load order.
    pub modules: Vec<PathBuf>,
    /// OS package (either file or the stem) for /ospkg/ (fetch method initramfs); repeatable.
    pub ospkgs: Vec<PathBuf>,
    /// Extra file, as SOURCE:/PATH/IN/INITRAMFS; repeatable.
    pub files: Vec<String>,
    /// Compression: gzip or none.
    pub compress: String,
    /// Output file.
    pub out: PathBuf,
}

enum Node {
    Dir { mode: u32 },
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
            self.nodes.entry(p.clone()).or_insert(Node::Dir { mode: 0o755 });
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

    pub fn dir(&mut self, path: &str, mode: u32) -> Result<()> {
        let p = Self::clean(path)?;
        self.add_parents(&p);
        self.nodes.insert(p, Node::Dir { mode });
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
                Node::Dir { mode } => b.mode(0o040000 | mode).nlink(2).write(w, 0).finish()?,
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

/// What one input of the layout holds.
enum Input {
    One(Vec<u8>),
    Many(Vec<(String, Vec<u8>)>),
}

/// Assemble the tree for `args`, as the layout says.
pub fn tree(args: &BuildArgs) -> Result<Tree> {
    check_stboot(&args.stboot)?;
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let mut inputs: BTreeMap<&str, Input> = BTreeMap::new();
    inputs.insert("stboot", Input::One(read(&args.stboot)?));

    let tp = &args.trust_policy;
    for (name, required) in crate::config::trust_policy::FILES {
        let src = tp.join(name);
        if src.exists() {
            inputs.insert(name, Input::One(read(&src)?));
        } else if required {
            bail!("{}: missing; the trust policy directory needs {name}", src.display());
        }
    }
    // Refuse a trust policy stboot would refuse at boot.
    let trust = crate::config::TrustConfig::load(tp, None)
        .with_context(|| format!("checking trust policy {}", tp.display()))?;
    check_signing_roots(&tp.join(SIGNING_ROOT_FILE), &trust.signing_roots)?;
    if let Some(h) = &args.host_config {
        let bytes = read(h)?;
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
        inputs.insert("host_config", Input::One(bytes));
    }
    let mut modules = Vec::new();
    let mut order = String::new();
    for m in &args.modules {
        let name = base_name(m)?;
        if !name.ends_with(".ko") {
            bail!("{}: expected an uncompressed kernel module (.ko)", m.display());
        }
        check_module(m)?;
        order.push_str(&name);
        order.push('\n');
        modules.push((name, read(m)?));
    }
    if !order.is_empty() {
        inputs.insert("modules.list", Input::One(order.into_bytes()));
    }
    inputs.insert("modules", Input::Many(modules));
    let mut packages = Vec::new();
    for p in &args.ospkgs {
        let paths = crate::ospkg::PackagePaths::from_arg(p)?;
        for f in [&paths.descriptor, &paths.archive] {
            packages.push((base_name(f)?, read(f)?));
        }
    }
    inputs.insert("ospkg", Input::Many(packages));

    let mut t = Tree::default();
    for e in layout() {
        match e {
            Entry::Dir { path, mode } => t.dir(&path, mode)?,
            Entry::Nod { path, mode, major, minor } => t.char_dev(&path, major, minor, mode)?,
            Entry::File { path, input, optional, mode } => match inputs.remove(input.as_str()) {
                Some(Input::One(data)) => t.file(&path, data, mode)?,
                None if optional => {}
                _ => bail!("initramfs layout: input @{input} for {path} was not given"),
            },
            Entry::Files { dir, input, mode } => match inputs.remove(input.as_str()) {
                Some(Input::Many(files)) => {
                    for (name, data) in files {
                        t.file(&format!("{dir}/{name}"), data, mode)?;
                    }
                }
                _ => bail!("initramfs layout: input @{input} for {dir} was not given"),
            },
        }
    }
    if let Some(name) = inputs.keys().next() {
        bail!("initramfs layout: input @{name} is given but the layout does not place it");
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
        None if crate::ospkg::bzimage::is_bzimage(&bytes) => {
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
    use crate::config::paths;
    use crate::config::trust_policy::{
        DECRYPTION_IDENTITIES_FILE, REVOKED_SIGNERS_FILE, SIGSUM_POLICY_FILE, TRUST_POLICY_FILE, UKI_DB_FILE,
    };

    fn file_at(l: &[Entry], input: &str) -> String {
        l.iter()
            .find_map(|e| match e {
                Entry::File { path, input: i, .. } if i == input => Some(path.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("layout has no file from @{input}"))
    }

    fn files_dir(l: &[Entry], input: &str) -> String {
        l.iter()
            .find_map(|e| match e {
                Entry::Files { dir, input: i, .. } if i == input => Some(dir.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("layout has no files from @{input}"))
    }

    /// The layout puts every file where stboot reads it, and has every directory
    /// stboot mounts on.
    #[test]
    fn layout_matches_the_paths_stboot_reads() {
        let l = parse_layout(LAYOUT).unwrap();
        assert_eq!(file_at(&l, "stboot"), paths::INIT);
        let tp = |f: &str| format!("{}/{f}", paths::TRUST_POLICY_DIR);
        // every file of the trust policy directory, where stboot reads it
        for (name, _) in crate::config::trust_policy::FILES {
            assert_eq!(file_at(&l, name), tp(name), "{name}");
        }
        assert_eq!(file_at(&l, "trust_policy.json"), tp(TRUST_POLICY_FILE));
        assert_eq!(file_at(&l, "ospkg_signing_root.pem"), tp(SIGNING_ROOT_FILE));
        assert_eq!(file_at(&l, "tls_roots.pem"), tp(TLS_ROOTS_FILE));
        assert_eq!(file_at(&l, "ospkg_trust_policy"), tp(SIGSUM_POLICY_FILE));
        assert_eq!(file_at(&l, "ospkg_revoked_signers"), tp(REVOKED_SIGNERS_FILE));
        assert_eq!(file_at(&l, "decryption_identities"), tp(DECRYPTION_IDENTITIES_FILE));
        assert_eq!(file_at(&l, "ospkg_uki_db.pem"), tp(UKI_DB_FILE));
        assert_eq!(file_at(&l, "host_config"), paths::HOST_CONFIG_PATH);
        assert_eq!(files_dir(&l, "modules"), paths::MODULES_DIR);
        assert_eq!(file_at(&l, "modules.list"), paths::MODULES_LIST);
        assert!(paths::MODULES_LIST.starts_with(&format!("{}/", paths::MODULES_LOAD_DIR)));
        assert_eq!(files_dir(&l, "ospkg"), paths::OSPKG_DIR);
        assert!(l.contains(&Entry::Nod { path: paths::CONSOLE.into(), mode: 0o600, major: 5, minor: 1 }));
        let dirs: Vec<&str> = l
            .iter()
            .filter_map(|e| match e {
                Entry::Dir { path, .. } => Some(path.as_str()),
                _ => None,
            })
            .collect();
        // mount points, except those inside an earlier mount (sysfs makes /sys/kernel/security)
        let mounts: Vec<&str> = crate::init::MOUNTS.iter().map(|m| m.1).collect();
        for (i, m) in mounts.iter().enumerate() {
            if !mounts[..i].iter().any(|earlier| m.starts_with(&format!("{earlier}/"))) {
                assert!(dirs.contains(m), "mount point {m} is not a directory of the layout");
            }
        }
        let staging_parent = Path::new(paths::STAGING_DIR).parent().unwrap().to_str().unwrap();
        assert!(dirs.contains(&staging_parent), "{staging_parent}");
        // every input the builder knows is placed exactly once
        for input in INPUTS {
            let n = l
                .iter()
                .filter(|e| matches!(e, Entry::File { input: i, .. } | Entry::Files { input: i, .. } if i == input))
                .count();
            assert_eq!(n, 1, "@{input}");
        }
    }

    #[test]
    fn layout_errors_name_the_line() {
        for (text, want) in [
            ("dir /x 0755 0 0\nfile /y /etc/passwd 0644 0 0", "line 2: a source must be an @INPUT"),
            ("file /y @nope 0644 0 0", "unknown input @nope"),
            ("dir /x 9 0 0", "not octal"),
            ("dir /x 0755 1000 0", "owner must be 0 0"),
            ("slink /a /b 0777 0 0", "expected dir, nod, file or files"),
            ("files /m @modules? 0644 0 0", "no ?"),
        ] {
            let e = parse_layout(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    /// `stmgr initramfs build` with every input gives every entry of the layout,
    /// with the layout's modes.
    #[test]
    fn a_built_initramfs_has_every_entry_of_the_layout() {
        let d = tempfile::tempdir().unwrap();
        let p = |n: &str| d.path().join(n);
        let v = crate::keys::Validity::from_args(None, None, 1).unwrap();
        let root_key = crate::keys::generate_key();
        let tpd = p("tp");
        std::fs::create_dir(&tpd).unwrap();
        std::fs::write(
            tpd.join(TRUST_POLICY_FILE),
            br#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":"network"}"#,
        )
        .unwrap();
        let root = crate::keys::root_certificate(&root_key, &v).unwrap();
        std::fs::write(tpd.join(SIGNING_ROOT_FILE), &root).unwrap();
        std::fs::write(tpd.join(TLS_ROOTS_FILE), &root).unwrap();
        // any certificate stands in for the UEFI db's
        std::fs::write(tpd.join(UKI_DB_FILE), &root).unwrap();
        std::fs::write(tpd.join(SIGSUM_POLICY_FILE), "quorum none\n").unwrap();
        std::fs::write(tpd.join(REVOKED_SIGNERS_FILE), format!("sha256:{}\n", "ab".repeat(32))).unwrap();
        // a test key (age's spec test vector identity)
        std::fs::write(
            tpd.join(DECRYPTION_IDENTITIES_FILE),
            "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX\n",
        )
        .unwrap();
        std::fs::write(p("host.json"), br#"{"network_mode":"dhcp","ospkg_pointer":"https://h/os.json"}"#).unwrap();
        // an ELF header of an x86-64 relocatable object is all the module check reads
        let mut ko = vec![0u8; 64];
        ko[..4].copy_from_slice(b"\x7fELF");
        (ko[4], ko[5], ko[16], ko[18]) = (2, 1, 1, 62);
        std::fs::write(p("e1000.ko"), &ko).unwrap();
        let mut kernel = vec![0u8; 4096];
        kernel[0x202..0x206].copy_from_slice(b"HdrS");
        std::fs::write(p("vmlinuz"), &kernel).unwrap();
        std::fs::write(p("initrd"), b"initrd").unwrap();
        let pkg = crate::ospkg::PackagePaths::from_arg(&p("provision")).unwrap();
        crate::ospkg::create(&pkg, &p("vmlinuz"), &p("initrd"), "", "", "provision.zip", None).unwrap();
        let args = BuildArgs {
            stboot: "/sbin/ldconfig".into(), // a static x86-64 program standing in for stboot
            trust_policy: tpd,
            host_config: Some(p("host.json")),
            modules: vec![p("e1000.ko")],
            ospkgs: vec![p("provision")],
            files: vec![],
            compress: "none".into(),
            out: p("out.cpio"),
        };
        let t = tree(&args).unwrap();
        let built: BTreeMap<String, u32> = t
            .nodes
            .iter()
            .map(|(name, n)| {
                let mode = match n {
                    Node::Dir { mode } => 0o040000 | mode,
                    Node::File { mode, .. } => 0o100000 | mode,
                    Node::CharDev { mode, .. } => 0o020000 | mode,
                };
                (format!("/{name}"), mode)
            })
            .collect();
        for e in layout() {
            let (path, mode) = match e {
                Entry::Dir { path, mode } => (path, 0o040000 | mode),
                Entry::Nod { path, mode, .. } => (path, 0o020000 | mode),
                Entry::File { path, mode, .. } => (path, 0o100000 | mode),
                Entry::Files { dir, input, mode } => {
                    let name = if input == "modules" { "e1000.ko" } else { "provision.zip" };
                    (format!("{dir}/{name}"), 0o100000 | mode)
                }
            };
            assert_eq!(built.get(&path), Some(&mode), "{path}");
        }
    }

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
