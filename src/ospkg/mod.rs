//! OS packages: a descriptor (`NAME.json`) and an archive (`NAME.zip`) with the same stem.

pub mod age;
pub mod archive;
pub mod bzimage;
pub mod descriptor;
pub mod manifest;
pub mod package;
pub mod stream;
pub mod uki;

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

pub use archive::Archive;
pub use descriptor::Descriptor;
pub use manifest::Manifest;

/// Upstream's default stem.
pub const DEFAULT_NAME: &str = "system-transparency-os-package";

/// The two files of a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagePaths {
    pub descriptor: PathBuf,
    pub archive: PathBuf,
}

impl PackagePaths {
    /// Either file of the pair, the bare stem, or a directory (then the default stem
    /// inside it), as upstream's `-ospkg`/`-out` accept. Only a final `.json` or
    /// `.zip` is taken off: `os-2026.11.v2` and `os.v2.json` name the package
    /// `os-2026.11.v2` and `os.v2`, dots and all.
    pub fn from_arg(arg: &Path) -> Result<Self> {
        let stem: PathBuf = if arg.is_dir() {
            arg.join(DEFAULT_NAME)
        } else {
            let name = arg.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                anyhow::anyhow!("{}: expected a package file name (NAME, NAME.json or NAME.zip)", arg.display())
            })?;
            let base = name.strip_suffix(".json").or_else(|| name.strip_suffix(".zip")).unwrap_or(name);
            if base.is_empty() {
                bail!("{}: expected a package file name (NAME, NAME.json or NAME.zip)", arg.display());
            }
            arg.with_file_name(base)
        };
        let with = |ext: &str| {
            let mut s = stem.clone().into_os_string();
            s.push(ext);
            PathBuf::from(s)
        };
        Ok(Self { descriptor: with(".json"), archive: with(".zip") })
    }
}

/// Write `paths.archive` and an unsigned `paths.descriptor` for `kernel` and
/// `initramfs`; `version` is the manifest's `ospkg_version` (rollback protection).
pub fn create(
    paths: &PackagePaths,
    kernel: &Path,
    initramfs: &Path,
    cmdline: &str,
    label: &str,
    url: &str,
    version: Option<u64>,
) -> Result<()> {
    use anyhow::Context;
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let (k, i) = (read(kernel)?, read(initramfs)?);
    if k.is_empty() {
        bail!("{}: the kernel is empty", kernel.display());
    }
    if i.is_empty() {
        bail!("{}: the initramfs is empty", initramfs.display());
    }
    let entry = |p: &Path| -> Result<String> {
        let base =
            p.file_name().and_then(|n| n.to_str()).ok_or_else(|| anyhow::anyhow!("{}: no file name", p.display()))?;
        Ok(format!("boot/{base}"))
    };
    if entry(kernel)? == entry(initramfs)? {
        bail!(
            "{} and {}: kernel and initramfs have the same file name, and the archive names entries by it; rename one",
            kernel.display(),
            initramfs.display()
        );
    }
    let manifest = Manifest {
        version: manifest::MANIFEST_VERSION,
        label: label.to_string(),
        kernel: entry(kernel)?,
        initramfs: entry(initramfs)?,
        cmdline: cmdline.to_string(),
        ospkg_version: version,
        uki: None,
    };
    manifest.validate()?;
    let descriptor = Descriptor::new(url)?;
    let zip = archive::write(std::io::Cursor::new(Vec::new()), &manifest, &k, &i)?.into_inner();
    write_file(&paths.archive, &zip)?;
    write_file(&paths.descriptor, descriptor.to_json().as_bytes())
}

/// The [`uki::UkiFacts`] of a UKI package's archive file (`None` for a package of
/// a kernel and an initramfs), for predicting its measurements: the UKI is read
/// into memory.
pub fn uki_facts(archive_file: &Path, m: &Manifest) -> Result<Option<uki::UkiFacts>> {
    use anyhow::Context;
    let Some(name) = &m.uki else { return Ok(None) };
    let f = std::fs::File::open(archive_file).with_context(|| format!("opening {}", archive_file.display()))?;
    let mut a = archive::Archive::open(std::io::BufReader::new(f))?;
    let mut bytes = Vec::new();
    a.extract(name, u64::MAX, &mut bytes)?;
    let layout = uki::parse_bytes(&bytes).with_context(|| format!("archive: the UKI {name:?}"))?;
    let mut read = uki::bytes_reader(&bytes);
    let facts = uki::UkiFacts::read(&layout, &mut read)?;
    Ok(Some(facts))
}

/// A package whose kernel is the unified kernel image `uki` (manifest field `uki`,
/// entry `boot/<its file name>`), checked as stboot will check it before anything
/// is written.
pub fn create_uki(paths: &PackagePaths, uki: &Path, label: &str, url: &str, version: Option<u64>) -> Result<()> {
    use anyhow::Context;
    let bytes = std::fs::read(uki).with_context(|| format!("reading {}", uki.display()))?;
    uki::parse_bytes(&bytes).with_context(|| format!("{}: not a UKI stboot can boot", uki.display()))?;
    let base =
        uki.file_name().and_then(|n| n.to_str()).ok_or_else(|| anyhow::anyhow!("{}: no file name", uki.display()))?;
    let manifest = Manifest {
        version: manifest::MANIFEST_VERSION,
        label: label.to_string(),
        kernel: String::new(),
        initramfs: String::new(),
        cmdline: String::new(),
        ospkg_version: version,
        uki: Some(format!("boot/{base}")),
    };
    manifest.validate()?;
    let descriptor = Descriptor::new(url)?;
    let entry = format!("boot/{base}");
    let zip = archive::write_entries(std::io::Cursor::new(Vec::new()), &manifest, &[(&entry, &bytes)])?.into_inner();
    write_file(&paths.archive, &zip)?;
    write_file(&paths.descriptor, descriptor.to_json().as_bytes())
}

/// Read and parse a descriptor file; also returns its bytes as read (they are measured).
pub fn read_descriptor(path: &Path) -> Result<(Descriptor, Vec<u8>)> {
    use anyhow::Context;
    let bytes = crate::files::read_capped(path, descriptor::MAX_DESCRIPTOR_BYTES as u64)?;
    refuse_encrypted(&bytes, path)?;
    let d = Descriptor::parse(&bytes).with_context(|| format!("in {}", path.display()))?;
    Ok((d, bytes))
}

/// Packages from files (the initramfs, stmgr's arguments) are never decrypted: say so
/// instead of a parse error.
pub fn refuse_encrypted(head: &[u8], path: &Path) -> Result<()> {
    if age::encryption(head).is_some() {
        bail!(
            "{}: an age-encrypted file; only packages fetched over the network are decrypted (with /etc/trust_policy/decryption_identities): use the plaintext here (age -d -i KEY -o FILE {})",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

/// Read and parse both files of a package (the archive only as bytes).
pub fn read(paths: &PackagePaths) -> Result<(Descriptor, Vec<u8>)> {
    use anyhow::Context;
    let (descriptor, _) = read_descriptor(&paths.descriptor)?;
    let archive = std::fs::read(&paths.archive).with_context(|| format!("reading {}", paths.archive.display()))?;
    if archive.is_empty() {
        bail!("{}: the archive is empty", paths.archive.display());
    }
    Ok((descriptor, archive))
}

/// Write a package file readable by a web server (upstream writes 0600, which makes
/// servers answer 403).
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::files::write_file(path, bytes, 0o644)
}

/// Where the package lives in the initramfs for fetch method `initramfs`:
/// `/ospkg/<stem>.json` and `/ospkg/<stem>.zip`, where any suffix of the pointer's
/// last element is replaced (as upstream). A pointer that would leave `/ospkg` is refused.
pub fn initramfs_paths(pointer: &str) -> Result<PackagePaths> {
    use std::path::Component;
    let expected = "expected a relative file name under /ospkg without \"..\"";
    let p = Path::new(pointer);
    if pointer.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        bail!("ospkg_pointer {pointer:?}: {expected}");
    }
    // upstream takes off any suffix of the last element; what is left must be a name
    // of its own ("x/..json" would leave "x/.", which is /ospkg/x itself)
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let stem = name.rfind('.').map_or(name, |i| &name[..i]);
    if stem.is_empty() || stem == "." || stem == ".." {
        bail!("ospkg_pointer {pointer:?}: {expected} (the name without its suffix is {stem:?})");
    }
    let base = Path::new(crate::config::paths::OSPKG_DIR).join(p.with_file_name(stem));
    let with = |ext: &str| {
        let mut s = base.clone().into_os_string();
        s.push(ext);
        PathBuf::from(s)
    };
    Ok(PackagePaths { descriptor: with(".json"), archive: with(".zip") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initramfs_pointer_vectors() {
        // upstream's TestOSpkgFiles vectors
        for (ptr, stem) in [
            ("my-ospkg", "/ospkg/my-ospkg"),
            ("my-ospkg.zip", "/ospkg/my-ospkg"),
            ("my-ospkg.json", "/ospkg/my-ospkg"),
            ("some_folder/my-ospkg.zip", "/ospkg/some_folder/my-ospkg"),
        ] {
            let p = initramfs_paths(ptr).unwrap();
            assert_eq!(p.archive, Path::new(&format!("{stem}.zip")), "{ptr}");
            assert_eq!(p.descriptor, Path::new(&format!("{stem}.json")), "{ptr}");
        }
        for bad in
            ["", "../etc/x.zip", "/etc/x.zip", "a/../../b.zip", "./x.zip", "x/..json", "x/...zip", ".json", "x/.zip"]
        {
            assert!(initramfs_paths(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_from_either_file_or_stem() {
        for a in ["x/os.zip", "x/os.json", "x/os"] {
            let p = PackagePaths::from_arg(Path::new(a)).unwrap();
            assert_eq!(p.archive, Path::new("x/os.zip"));
            assert_eq!(p.descriptor, Path::new("x/os.json"));
        }
        for (arg, stem) in [
            ("x/os-2026-11.v2", "x/os-2026-11.v2"),
            ("x/os.v2.json", "x/os.v2"),
            ("x/os.v2.zip", "x/os.v2"),
            ("os.tar", "os.tar"),
            ("a.b.c", "a.b.c"),
        ] {
            let p = PackagePaths::from_arg(Path::new(arg)).unwrap();
            assert_eq!(p.descriptor, Path::new(&format!("{stem}.json")), "{arg}");
            assert_eq!(p.archive, Path::new(&format!("{stem}.zip")), "{arg}");
        }
        assert!(PackagePaths::from_arg(Path::new(".json")).is_err());
        let d = tempfile::tempdir().unwrap();
        let p = PackagePaths::from_arg(d.path()).unwrap();
        assert_eq!(p.archive, d.path().join("system-transparency-os-package.zip"));
    }
}
