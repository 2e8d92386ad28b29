//! A unified kernel image (UKI) as an OS package's kernel (a stboot-rs extension:
//! `stmgr ospkg create -uki FILE`, manifest field `uki`). The UKI is systemd-stub
//! with the kernel, initrd, command line and os-release added as PE sections; it may
//! carry a signed PCR 11 policy (`.pcrsig`, `.pcrpkey`) to which disk keys are sealed.
//!
//! stboot does what the stub would do, from the verified bytes only: it takes
//! `.linux`, `.ucode` + `.initrd` and `.cmdline` out of the image, and measures the
//! sections into PCR 11 in the stub's order and form, so that a policy signed for the
//! UKI still holds after a network boot ([`crate::measure::uki`]).
//!
//! [`UkiLayout::parse`] checks the image before anything is taken out of it: a PE32+
//! x86-64 program whose sections lie inside the file, overlap neither each other nor
//! the headers, in the file or in memory; at most one of each section the stub reads;
//! a `.linux` that is an x86 bzImage; no `.profile` (systemd 257's multi-profile
//! UKIs are not supported). It reads only what it checks (the headers, the start of
//! `.linux`, `.sdmagic`), through a callback, so a large image is never held in memory.

use std::ops::Range;

use anyhow::{bail, ensure, Context, Result};
use sha2::{Digest, Sha256};

use crate::digest::Sha256Digest;

/// The sections systemd-stub reads (systemd's `unified_sections`, in its order).
const UNIFIED: [&str; 13] = [
    ".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname", ".sbat", ".pcrsig", ".pcrpkey",
    ".profile", ".hwids",
];

/// What systemd-stub measures into PCR 11, by its version (the order of
/// `unified_sections`, `.pcrsig` skipped). Before 254 the stub knew neither `.uname`
/// nor `.sbat` (Debian 12's 252 has an `.sbat` of its own and does not measure it);
/// `.ucode` came in 256.
const MEASURED_BEFORE_254: &[&str] = &[".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".dtb", ".pcrpkey"];
const MEASURED_254: &[&str] =
    &[".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".dtb", ".uname", ".sbat", ".pcrpkey"];
const MEASURED_256: &[&str] =
    &[".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname", ".sbat", ".pcrpkey"];

/// How much of the file's start holds the headers and the section table at most.
pub(crate) const MAX_HEADERS: u64 = 64 * 1024;
const SDMAGIC_PREFIX: &str = "#### LoaderInfo: systemd-stub ";

/// Reads `len` bytes at `offset` of the image (the callers' files or buffers).
pub type ReadAt<'a> = dyn FnMut(u64, usize) -> Result<Vec<u8>> + 'a;

/// The stub's version, from its `.sdmagic` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StubVersion {
    /// As the stub says it: `252.39-1~deb12u2`.
    pub text: String,
    pub major: u32,
}

/// A checked UKI: where the sections the stub reads lie in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UkiLayout {
    /// Name and file range of each section found (its data, `VirtualSize` bytes).
    sections: Vec<(&'static str, Range<u64>)>,
    stub: Option<StubVersion>,
}

fn show(r: &Range<u64>) -> String {
    format!("bytes {:#x}..{:#x}", r.start, r.end)
}

impl UkiLayout {
    /// Checks the UKI of `len` bytes that `read` reads; see the module documentation.
    pub fn parse(read: &mut ReadAt<'_>, len: u64) -> Result<Self> {
        let head = read(0, len.min(MAX_HEADERS) as usize)?;
        let pe = crate::uki::pe_layout(&head).context("the UKI's headers")?;
        ensure!(
            pe.size_of_headers as u64 <= len,
            "the UKI's headers ({} bytes) are longer than the file ({len} bytes)",
            pe.size_of_headers
        );
        let mut in_file: Vec<(String, Range<u64>)> = Vec::new();
        let mut in_memory: Vec<(String, Range<u64>)> = Vec::new();
        let mut sections: Vec<(&'static str, Range<u64>)> = Vec::new();
        for s in &pe.sections {
            let raw = u64::from(s.raw_offset)..u64::from(s.raw_offset) + u64::from(s.raw_size);
            if s.raw_size > 0 {
                ensure!(
                    raw.end <= len,
                    "section {} ({}) lies past the end of the file ({len} bytes)",
                    s.name,
                    show(&raw)
                );
                ensure!(
                    raw.start >= pe.size_of_headers as u64,
                    "section {} ({}) overlaps the headers (the first {} bytes)",
                    s.name,
                    show(&raw),
                    pe.size_of_headers
                );
                in_file.push((s.name.clone(), raw.clone()));
            }
            // the loader maps VirtualSize bytes (the file's alignment padding is not
            // loaded; systemd's own stub has sections 0x100 apart in memory)
            let mem_len = u64::from(if s.virtual_size > 0 { s.virtual_size } else { s.raw_size });
            if mem_len > 0 {
                let at = u64::from(s.virtual_address);
                in_memory.push((s.name.clone(), at..at + mem_len));
            }
            let Some(name) = UNIFIED.iter().find(|n| **n == s.name) else { continue };
            ensure!(
                !sections.iter().any(|(n, _)| n == name),
                "the UKI has two {name} sections: which one the stub would use is not defined"
            );
            ensure!(
                s.virtual_size <= s.raw_size,
                "section {name} is {} bytes in memory but only {} in the file (the rest would be zeros nobody signed for)",
                s.virtual_size,
                s.raw_size
            );
            sections.push((name, raw.start..raw.start + u64::from(s.virtual_size)));
        }
        for (what, mut ranges) in [("in the file", in_file), ("in memory", in_memory)] {
            ranges.sort_by_key(|(_, r)| (r.start, r.end));
            for w in ranges.windows(2) {
                ensure!(
                    w[0].1.end <= w[1].1.start,
                    "sections {} ({}) and {} ({}) overlap {what}",
                    w[0].0,
                    show(&w[0].1),
                    w[1].0,
                    show(&w[1].1)
                );
            }
        }
        let mut layout = UkiLayout { sections, stub: None };
        if layout.range(".profile").is_some() {
            bail!("the UKI has .profile sections (a multi-profile UKI, systemd 257): not supported; build one UKI per profile");
        }
        let linux =
            layout.range(".linux").filter(|r| !r.is_empty()).context("the UKI has no .linux section (the kernel)")?;
        let head = read(linux.start, (linux.end - linux.start).min(super::bzimage::MAGIC_END as u64) as usize)?;
        ensure!(
            super::bzimage::is_bzimage(&head),
            "the UKI's .linux section is not an x86 bzImage (no \"HdrS\" at offset 0x202)"
        );
        if let Some(r) = sdmagic(&pe.sections) {
            let bytes = read(r.start, (r.end - r.start).min(256) as usize)?;
            layout.stub = stub_version(&bytes);
        }
        Ok(layout)
    }

    /// The file range of section `name`'s data, when the UKI has it.
    pub fn range(&self, name: &str) -> Option<Range<u64>> {
        self.sections.iter().find(|(n, _)| *n == name).map(|(_, r)| r.clone())
    }

    /// The stub's version, when it says it (systemd-stub's `.sdmagic`).
    pub fn stub(&self) -> Option<&StubVersion> {
        self.stub.as_ref()
    }

    /// The sections systemd-stub measures into PCR 11, in its order, with their file
    /// ranges: those this stub's version knows ([`StubVersion::major`]; a stub that
    /// does not say its version is taken as the newest), present and not empty.
    pub fn measured(&self) -> Vec<(&'static str, Range<u64>)> {
        let names = match self.stub.as_ref().map(|s| s.major) {
            Some(v) if v < 254 => MEASURED_BEFORE_254,
            Some(v) if v < 256 => MEASURED_254,
            _ => MEASURED_256,
        };
        names.iter().filter_map(|n| self.range(n).filter(|r| !r.is_empty()).map(|r| (*n, r))).collect()
    }

    /// Whose measurements [`Self::measured`] follows, for the console.
    pub fn measured_as(&self) -> String {
        match &self.stub {
            Some(s) => format!("as its systemd-stub {} would", s.text),
            None => "as systemd-stub 256 and later would (the stub does not say its version: no .sdmagic)".into(),
        }
    }
}

/// The range of the `.sdmagic` section (not one of the stub's unified sections).
fn sdmagic(sections: &[crate::uki::Section]) -> Option<Range<u64>> {
    let s = sections.iter().find(|s| s.name == ".sdmagic")?;
    let len = s.virtual_size.min(s.raw_size);
    Some(u64::from(s.raw_offset)..u64::from(s.raw_offset) + u64::from(len))
}

/// `252.39-1~deb12u2` from `#### LoaderInfo: systemd-stub 252.39-1~deb12u2 ####`.
fn stub_version(bytes: &[u8]) -> Option<StubVersion> {
    let text = std::str::from_utf8(&bytes[..bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())]).ok()?;
    let rest = text.strip_prefix(SDMAGIC_PREFIX)?;
    let version = rest.split_whitespace().next()?;
    let major = version.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()?;
    Some(StubVersion { text: version.to_string(), major })
}

/// The command line the stub passes: `.cmdline` up to a NUL, without trailing
/// white space (a file's final newline). What is measured is the section as it is.
pub fn cmdline_of(section: &[u8]) -> Result<String> {
    let end = section.iter().position(|&b| b == 0).unwrap_or(section.len());
    let s = std::str::from_utf8(&section[..end]).map_err(|_| anyhow::anyhow!("the UKI's .cmdline is not UTF-8"))?;
    Ok(s.trim_end().to_string())
}

/// What booting a UKI hands to the measurement and to the OS: the digests of the
/// sections the stub measures, in its order, and its signed PCR policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UkiFacts {
    /// [`UkiLayout::measured_as`].
    pub measured_as: String,
    pub sections: Vec<(&'static str, Sha256Digest)>,
    /// `.pcrsig` (the signed PCR 11 policy, JSON) and `.pcrpkey` (its public key, PEM).
    pub pcrsig: Option<Vec<u8>>,
    pub pcrpkey: Option<Vec<u8>>,
}

/// The most `.pcrsig` or `.pcrpkey` may hold (systemd's are a few KiB).
const MAX_POLICY_BYTES: u64 = 1 << 20;

impl UkiFacts {
    /// Reads and hashes what [`UkiLayout::measured`] names, through `read`.
    pub fn read(layout: &UkiLayout, read: &mut ReadAt<'_>) -> Result<Self> {
        let mut sections = Vec::new();
        for (name, r) in layout.measured() {
            let mut h = Sha256::new();
            for_each_chunk(read, r, |b| {
                h.update(b);
                Ok(())
            })
            .with_context(|| format!("section {name}"))?;
            sections.push((name, Sha256Digest::from_bytes(h.finalize().into())));
        }
        let mut policy = |name: &str| -> Result<Option<Vec<u8>>> {
            let Some(r) = layout.range(name).filter(|r| !r.is_empty()) else { return Ok(None) };
            ensure!(
                r.end - r.start <= MAX_POLICY_BYTES,
                "the UKI's {name} section is larger than {MAX_POLICY_BYTES} bytes"
            );
            Ok(Some(read(r.start, (r.end - r.start) as usize)?))
        };
        Ok(UkiFacts {
            measured_as: layout.measured_as(),
            sections,
            pcrsig: policy(".pcrsig")?,
            pcrpkey: policy(".pcrpkey")?,
        })
    }
}

/// Reads `range` through `read` in pieces of at most 1 MiB and hands each to `f`, so
/// that a large section is never held in memory whole.
pub fn for_each_chunk(read: &mut ReadAt<'_>, range: Range<u64>, mut f: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
    const CHUNK: u64 = 1 << 20;
    let mut at = range.start;
    while at < range.end {
        let n = (range.end - at).min(CHUNK) as usize;
        let b = read(at, n)?;
        ensure!(b.len() == n, "the UKI ends inside the section");
        f(&b)?;
        at += n as u64;
    }
    Ok(())
}

/// A reader of a UKI held in memory, for [`UkiLayout::parse`] and [`UkiFacts::read`].
pub fn bytes_reader(uki: &[u8]) -> impl FnMut(u64, usize) -> Result<Vec<u8>> + '_ {
    move |at: u64, n: usize| -> Result<Vec<u8>> {
        let start = usize::try_from(at).context("offset")?;
        uki.get(start..start.saturating_add(n)).map(<[u8]>::to_vec).context("a read past the end of the UKI")
    }
}

/// A UKI held in memory, checked.
pub fn parse_bytes(uki: &[u8]) -> Result<UkiLayout> {
    UkiLayout::parse(&mut bytes_reader(uki), uki.len() as u64)
}

/// The bytes of a section of a UKI held in memory.
pub fn section<'a>(uki: &'a [u8], layout: &UkiLayout, name: &str) -> Option<&'a [u8]> {
    let r = layout.range(name)?;
    uki.get(r.start as usize..r.end as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UKI made of a minimal PE and the given sections (stmgr's own builder).
    pub(crate) fn uki(sections: &[(&str, &[u8])]) -> Vec<u8> {
        crate::uki::append_sections(&crate::uki::tests::tiny_pe(), sections).unwrap()
    }

    fn bz() -> Vec<u8> {
        let mut k = vec![0u8; 0x400];
        k[0x202..0x206].copy_from_slice(b"HdrS");
        k
    }

    #[test]
    fn finds_the_sections_and_measures_in_the_stubs_order() {
        let k = bz();
        let magic = b"#### LoaderInfo: systemd-stub 252.39-1~deb12u2 ####\0";
        let u = uki(&[
            (".sdmagic", magic),
            (".osrel", b"ID=x\n"),
            (".cmdline", b"console=ttyS0\n"),
            (".sbat", b"sbat,1\n"),
            (".initrd", b"INITRD"),
            (".linux", &k),
        ]);
        let l = parse_bytes(&u).unwrap();
        assert_eq!(l.stub().unwrap(), &StubVersion { text: "252.39-1~deb12u2".into(), major: 252 });
        let names: Vec<_> = l.measured().into_iter().map(|(n, _)| n).collect();
        // 252 does not measure .sbat; .linux first whatever the file order
        assert_eq!(names, [".linux", ".osrel", ".cmdline", ".initrd"]);
        assert_eq!(section(&u, &l, ".initrd").unwrap(), b"INITRD");
        assert_eq!(cmdline_of(section(&u, &l, ".cmdline").unwrap()).unwrap(), "console=ttyS0");
        // a newer stub measures .sbat, and one that does not say its version is taken as the newest
        let u = uki(&[(".linux", &k), (".sbat", b"sbat,1\n"), (".ucode", b"U")]);
        let l = parse_bytes(&u).unwrap();
        assert_eq!(l.stub(), None);
        let names: Vec<_> = l.measured().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, [".linux", ".ucode", ".sbat"]);
    }

    #[test]
    fn refuses_what_the_stub_would_not_load_or_could_read_two_ways() {
        let k = bz();
        let e = |u: &[u8]| parse_bytes(u).unwrap_err().to_string();
        assert!(e(&uki(&[(".osrel", b"x")])).contains("no .linux section"));
        assert!(e(&uki(&[(".linux", b"not a kernel")])).contains("not an x86 bzImage"));
        assert!(e(&uki(&[(".linux", &k), (".profile", b"ID=a")])).contains("multi-profile"));
        // a section past the end of the file
        let u = uki(&[(".linux", &k), (".initrd", b"INITRD")]);
        assert!(e(&u[..u.len() - 1]).contains("lies past the end of the file"), "{}", e(&u[..u.len() - 1]));
        // two sections pointing at the same bytes
        let mut u = uki(&[(".linux", &k), (".initrd", b"INITRD")]);
        let secs = crate::uki::sections(&u).unwrap();
        let linux_off = secs.iter().find(|s| s.name == ".linux").unwrap().raw_offset;
        let table = crate::uki::pe_layout(&u).unwrap();
        let i = table.sections.iter().position(|s| s.name == ".initrd").unwrap();
        let at = section_header_at(&u, i);
        u[at + 20..at + 24].copy_from_slice(&linux_off.to_le_bytes());
        assert!(e(&u).contains("overlap in the file"), "{}", e(&u));
        // a section larger in memory than in the file
        let mut u = uki(&[(".linux", &k), (".initrd", b"INITRD")]);
        let at = section_header_at(&u, i);
        u[at + 8..at + 12].copy_from_slice(&0x10_0000u32.to_le_bytes());
        assert!(e(&u).contains("in memory but only"), "{}", e(&u));
        // a duplicate
        let mut u = uki(&[(".linux", &k), (".initrd", b"INITRD")]);
        let at = section_header_at(&u, i);
        u[at..at + 8].copy_from_slice(b".linux\0\0");
        assert!(e(&u).contains("two .linux sections"), "{}", e(&u));
        // not a PE at all, and short files, never panic
        for n in [0, 1, 2, 64, 200] {
            let _ = parse_bytes(&u[..n.min(u.len())]);
        }
    }

    /// File offset of section header `i`.
    fn section_header_at(pe: &[u8], i: usize) -> usize {
        let lfanew = u32::from_le_bytes(pe[0x3c..0x40].try_into().unwrap()) as usize;
        let opt_size = u16::from_le_bytes(pe[lfanew + 20..lfanew + 22].try_into().unwrap()) as usize;
        lfanew + 24 + opt_size + i * 40
    }
}
