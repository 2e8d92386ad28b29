//! Unified kernel images: an EFI stub (systemd-stub, `linuxx64.efi.stub`) with the
//! kernel, initramfs, command line and os-release added as PE sections, as upstream
//! `stmgr uki create` makes with objcopy. Here the sections are appended to the stub
//! directly: the same inputs give the same bytes, and nothing outside stmgr is run.
//!
//! The stub's own sections are kept as they are; each new section starts on the next
//! page-aligned virtual address after the last one and on the next file-aligned
//! offset, and the headers (section count, image size, initialised-data size,
//! checksum) are updated; a COFF symbol table (debugging only) is dropped. The stub
//! must be unsigned (a signature would not cover the
//! new sections) and must have room for the new section headers.

use anyhow::{bail, ensure, Context, Result};

/// Where Debian's `systemd-boot-efi` puts the stub.
pub const DEBIAN_STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";

/// The os-release upstream writes when none is given.
pub const DEFAULT_OSREL: &str =
    "NAME=\"stboot\"\nPRETTY_NAME=\"System Transparency Boot Loader\"\nID=stboot\nBUILD_ID=rolling\n";

/// IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ: read-only data, as
/// systemd's ukify marks every section it adds.
const READONLY_DATA: u32 = 0x4000_0040;
const SECTION_HEADER: usize = 40;
const SECURITY_DIRECTORY: usize = 4;

fn u16_at(b: &[u8], at: usize) -> Result<u16> {
    let s = b.get(at..at + 2).context("the PE file ends inside its headers")?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    let s = b.get(at..at + 4).context("the PE file ends inside its headers")?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn align_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to) * to
}

/// The parts of a PE32+ image's headers this module reads and writes.
#[derive(Debug)]
struct Headers {
    coff: usize,
    opt: usize,
    sections_at: usize,
    count: usize,
    section_alignment: u64,
    file_alignment: u64,
    size_of_headers: usize,
}

/// One entry of the section table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub virtual_address: u32,
    pub virtual_size: u32,
    pub raw_offset: u32,
    pub raw_size: u32,
}

fn headers(pe: &[u8]) -> Result<Headers> {
    ensure!(pe.get(..2) == Some(b"MZ"), "not a PE (EFI) program: no MZ header");
    let lfanew = u32_at(pe, 0x3c)? as usize;
    ensure!(pe.get(lfanew..lfanew + 4) == Some(b"PE\0\0"), "not a PE (EFI) program: no PE signature");
    let coff = lfanew + 4;
    let machine = u16_at(pe, coff)?;
    ensure!(machine == 0x8664, "the stub is for machine {machine:#06x}; expected x86-64 (0x8664)");
    let count = u16_at(pe, coff + 2)? as usize;
    let opt_size = u16_at(pe, coff + 16)? as usize;
    let opt = coff + 20;
    ensure!(u16_at(pe, opt)? == 0x20b, "the stub is not a PE32+ (64-bit) program");
    let h = Headers {
        coff,
        opt,
        sections_at: opt + opt_size,
        count,
        section_alignment: u64::from(u32_at(pe, opt + 32)?),
        file_alignment: u64::from(u32_at(pe, opt + 36)?),
        size_of_headers: u32_at(pe, opt + 60)? as usize,
    };
    ensure!(
        h.section_alignment.is_power_of_two() && h.file_alignment.is_power_of_two(),
        "the stub's section or file alignment is not a power of two"
    );
    ensure!(h.sections_at + count * SECTION_HEADER <= pe.len(), "the PE file ends inside its section table");
    Ok(h)
}

/// The section table of a PE32+ image.
pub fn sections(pe: &[u8]) -> Result<Vec<Section>> {
    let h = headers(pe)?;
    (0..h.count)
        .map(|i| {
            let at = h.sections_at + i * SECTION_HEADER;
            let raw = &pe[at..at + 8];
            let name = String::from_utf8_lossy(&raw[..raw.iter().position(|&c| c == 0).unwrap_or(8)]).into_owned();
            Ok(Section {
                name,
                virtual_size: u32_at(pe, at + 8)?,
                virtual_address: u32_at(pe, at + 12)?,
                raw_size: u32_at(pe, at + 16)?,
                raw_offset: u32_at(pe, at + 20)?,
            })
        })
        .collect()
}

/// The bytes of the named section (its raw data, without file-alignment padding).
pub fn section_data<'a>(pe: &'a [u8], name: &str) -> Result<Option<&'a [u8]>> {
    let Some(s) = sections(pe)?.into_iter().find(|s| s.name == name) else {
        return Ok(None);
    };
    let len = s.virtual_size.min(s.raw_size) as usize;
    let start = s.raw_offset as usize;
    pe.get(start..start + len).map(Some).context("a section lies outside the file")
}

/// `pe` without its section `name` (the stub's .sbat, replaced by `-sbat`): the
/// header is taken out of the table, the section's bytes are zeroed (they are no
/// longer loaded or covered by a signature, so they must say nothing) and the
/// initialised-data size and checksum are updated. Unchanged when there is no such
/// section.
pub fn remove_section(pe: &[u8], name: &str) -> Result<Vec<u8>> {
    let h = headers(pe)?;
    let all = sections(pe)?;
    let Some(i) = all.iter().position(|s| s.name == name) else {
        return Ok(pe.to_vec());
    };
    let s = &all[i];
    let mut out = pe.to_vec();
    let (start, end) = (s.raw_offset as usize, s.raw_offset as usize + s.raw_size as usize);
    out.get_mut(start..end).context("a section lies outside the file")?.fill(0);
    let table = h.sections_at;
    out.copy_within(table + (i + 1) * SECTION_HEADER..table + h.count * SECTION_HEADER, table + i * SECTION_HEADER);
    let last = table + (h.count - 1) * SECTION_HEADER;
    out[last..last + SECTION_HEADER].fill(0);
    put_u16(&mut out, h.coff + 2, (h.count - 1) as u16);
    let initialised = u32_at(&out, h.opt + 8)?.saturating_sub(s.raw_size);
    put_u32(&mut out, h.opt + 8, initialised);
    let sum = checksum(&out, h.opt + 64);
    put_u32(&mut out, h.opt + 64, sum);
    Ok(out)
}

/// The SBAT header line shim requires first (SBAT.md).
pub const SBAT_HEADER: &str = "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md";

/// The contents of a new .sbat section: `lines` (a CSV file, as `-sbat` takes), or
/// with `stub_sbat` given, the stub's SBAT followed by `lines` (`-append-sbat`).
/// Each line needs shim's six fields with a numeric generation; a replacement must
/// start with the `sbat,1` header, and added lines must not repeat it.
pub fn sbat(stub_sbat: Option<&[u8]>, lines: &[u8]) -> Result<Vec<u8>> {
    let text = std::str::from_utf8(lines).map_err(|_| anyhow::anyhow!("not text; expected SBAT CSV lines"))?;
    let mut count = 0;
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        ensure!(
            fields.len() == 6,
            "line {}: {} fields, expected 6 (component,generation,vendor,package,version,url)",
            n + 1,
            fields.len()
        );
        ensure!(fields[1].trim().parse::<u32>().is_ok(), "line {}: generation {:?} is not a number", n + 1, fields[1]);
        let header = fields[0] == "sbat";
        match (count, stub_sbat.is_some()) {
            (0, false) if !header => bail!("line {}: the first line must be the SBAT header {SBAT_HEADER}", n + 1),
            (_, true) if header => bail!(
                "line {}: the stub's SBAT already has the sbat header; with -append-sbat give only the lines to add",
                n + 1
            ),
            _ => {}
        }
        count += 1;
    }
    ensure!(count > 0, "no SBAT lines");
    let mut out = Vec::new();
    if let Some(old) = stub_sbat {
        // the section is NUL-padded
        let old = &old[..old.iter().position(|&b| b == 0).unwrap_or(old.len())];
        out.extend_from_slice(old);
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    out.extend_from_slice(text.trim_end_matches('\n').as_bytes());
    out.push(b'\n');
    Ok(out)
}

/// What Authenticode signing needs to know of a PE32+ image's layout.
#[derive(Debug)]
pub struct PeLayout {
    pub sections: Vec<Section>,
    /// File offset of the optional header's CheckSum field.
    pub checksum_field: usize,
    /// File offset of the certificate (security) data directory entry.
    pub security_directory: usize,
    pub size_of_headers: usize,
    /// The certificate table (file offset, size); size 0 when unsigned.
    pub certificate_table: (u32, u32),
}

/// The layout of a PE32+ image, for [`crate::secureboot`].
pub fn pe_layout(pe: &[u8]) -> Result<PeLayout> {
    let h = headers(pe)?;
    let rva_count = u32_at(pe, h.opt + 108)? as usize;
    ensure!(rva_count > SECURITY_DIRECTORY, "the PE has no certificate directory entry ({rva_count} data directories)");
    let security_directory = h.opt + 112 + SECURITY_DIRECTORY * 8;
    Ok(PeLayout {
        sections: sections(pe)?,
        checksum_field: h.opt + 64,
        security_directory,
        size_of_headers: h.size_of_headers,
        certificate_table: (u32_at(pe, security_directory)?, u32_at(pe, security_directory + 4)?),
    })
}

/// Points the certificate directory at (`offset`, `size`) and recomputes the checksum.
pub fn set_certificate_table(pe: &mut [u8], offset: u32, size: u32) -> Result<()> {
    let layout = pe_layout(pe)?;
    put_u32(pe, layout.security_directory, offset);
    put_u32(pe, layout.security_directory + 4, size);
    let sum = checksum(pe, layout.checksum_field);
    put_u32(pe, layout.checksum_field, sum);
    Ok(())
}

/// Appends `add` (name, contents) as new read-only data sections to the PE32+ image
/// `stub` and returns the new image.
pub fn append_sections(stub: &[u8], add: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    let h = headers(stub)?;
    let existing = sections(stub)?;
    let security = h.opt + 112 + SECURITY_DIRECTORY * 8;
    let rva_count = u32_at(stub, h.opt + 108)? as usize;
    if rva_count > SECURITY_DIRECTORY && u32_at(stub, security + 4)? != 0 {
        bail!("the stub is already signed (it has an Authenticode signature): use an unsigned stub; the UKI is signed as a whole with -signcert and -signkey");
    }
    for (name, _) in add {
        ensure!(name.len() <= 8, "section name {name:?} is longer than 8 bytes");
        if existing.iter().any(|s| s.name == *name) {
            bail!("the stub already has a {name} section: is it already a UKI? Pass the plain stub with -stub");
        }
    }
    let table_end = h.sections_at + (h.count + add.len()) * SECTION_HEADER;
    let first_data = existing.iter().map(|s| s.raw_offset as usize).filter(|&o| o > 0).min().unwrap_or(stub.len());
    if table_end > h.size_of_headers.min(first_data) {
        bail!(
            "the stub has no room for {} more section headers ({} bytes of headers, {} needed)",
            add.len(),
            h.size_of_headers.min(first_data),
            table_end
        );
    }
    let data_end = existing.iter().map(|s| u64::from(s.raw_offset) + u64::from(s.raw_size)).max().unwrap_or(0);
    // A COFF symbol table after the sections (debugging only; systemd's stub has
    // one) is dropped, as `objcopy --strip-all` would; anything else is refused.
    let symbols = u64::from(u32_at(stub, h.coff + 8)?);
    let mut out = stub.to_vec();
    if symbols != 0 && symbols >= data_end && symbols <= stub.len() as u64 {
        out.truncate(data_end as usize);
        put_u32(&mut out, h.coff + 8, 0);
        put_u32(&mut out, h.coff + 12, 0);
    }
    ensure!(
        data_end as usize == out.len(),
        "the stub has {} bytes after its last section (a signature or debug data?); expected none",
        out.len() as u64 - data_end.min(out.len() as u64)
    );
    let mut vaddr =
        existing.iter().map(|s| u64::from(s.virtual_address) + u64::from(s.virtual_size)).max().unwrap_or(0);
    let mut initialised = u64::from(u32_at(stub, h.opt + 8)?);
    for (i, (name, data)) in add.iter().enumerate() {
        // page-aligned in memory, as upstream and ukify place them (systemd's stub
        // has 512-byte section alignment)
        vaddr = align_up(vaddr, h.section_alignment.max(4096));
        let offset = align_up(out.len() as u64, h.file_alignment);
        let raw_size = align_up(data.len() as u64, h.file_alignment);
        let end = vaddr + data.len() as u64;
        ensure!(
            end <= u64::from(u32::MAX) && offset + raw_size <= u64::from(u32::MAX),
            "the UKI would be larger than 4 GiB"
        );
        out.resize(offset as usize, 0);
        out.extend_from_slice(data);
        out.resize((offset + raw_size) as usize, 0);
        let at = h.sections_at + (h.count + i) * SECTION_HEADER;
        let mut header = [0u8; SECTION_HEADER];
        header[..name.len()].copy_from_slice(name.as_bytes());
        put_u32(&mut header, 8, data.len() as u32);
        put_u32(&mut header, 12, vaddr as u32);
        put_u32(&mut header, 16, raw_size as u32);
        put_u32(&mut header, 20, offset as u32);
        put_u32(&mut header, 36, READONLY_DATA);
        out[at..at + SECTION_HEADER].copy_from_slice(&header);
        initialised += raw_size;
        vaddr = end;
    }
    put_u16(&mut out, h.coff + 2, (h.count + add.len()) as u16);
    put_u32(&mut out, h.opt + 8, initialised.min(u64::from(u32::MAX)) as u32);
    put_u32(&mut out, h.opt + 56, align_up(vaddr, h.section_alignment) as u32);
    let sum = checksum(&out, h.opt + 64);
    put_u32(&mut out, h.opt + 64, sum);
    Ok(out)
}

/// The PE image checksum (as in imagehlp's CheckSumMappedFile): the 16-bit one's
/// complement sum of the file with the checksum field taken as zero, plus the length.
fn checksum(pe: &[u8], field: usize) -> u32 {
    let mut sum: u64 = 0;
    for (i, chunk) in pe.chunks(2).enumerate() {
        let at = i * 2;
        if at == field || at == field + 2 {
            continue;
        }
        let word = u64::from(chunk[0]) | (u64::from(*chunk.get(1).unwrap_or(&0)) << 8);
        sum += word;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    (sum as u32).wrapping_add(pe.len() as u32)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal PE32+ image: headers in 0x400 bytes, one .text section.
    pub(crate) fn tiny_pe() -> Vec<u8> {
        let mut b = vec![0u8; 0x600];
        b[..2].copy_from_slice(b"MZ");
        put_u32(&mut b, 0x3c, 0x80);
        b[0x80..0x84].copy_from_slice(b"PE\0\0");
        let coff = 0x84;
        put_u16(&mut b, coff, 0x8664);
        put_u16(&mut b, coff + 2, 1);
        put_u16(&mut b, coff + 16, 240);
        let opt = coff + 20;
        put_u16(&mut b, opt, 0x20b);
        put_u32(&mut b, opt + 32, 0x1000);
        put_u32(&mut b, opt + 36, 0x200);
        put_u32(&mut b, opt + 56, 0x2000);
        put_u32(&mut b, opt + 60, 0x400);
        put_u32(&mut b, opt + 108, 16);
        let s = opt + 240;
        b[s..s + 5].copy_from_slice(b".text");
        put_u32(&mut b, s + 8, 0x10);
        put_u32(&mut b, s + 12, 0x1000);
        put_u32(&mut b, s + 16, 0x200);
        put_u32(&mut b, s + 20, 0x400);
        b[0x400..0x410].copy_from_slice(b"0123456789abcdef");
        b
    }

    #[test]
    fn appended_sections_read_back_aligned_and_in_order() {
        let uki = append_sections(&tiny_pe(), &[(".cmdline", b"console=ttyS0\n"), (".linux", &[7u8; 5000])]).unwrap();
        let s = sections(&uki).unwrap();
        assert_eq!(s.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), [".text", ".cmdline", ".linux"]);
        assert_eq!((s[1].virtual_address, s[1].raw_offset), (0x2000, 0x600));
        assert_eq!((s[2].virtual_address, s[2].raw_offset, s[2].raw_size), (0x3000, 0x800, 0x1400));
        assert_eq!(section_data(&uki, ".cmdline").unwrap().unwrap(), b"console=ttyS0\n");
        assert_eq!(section_data(&uki, ".linux").unwrap().unwrap(), &[7u8; 5000][..]);
        assert_eq!(section_data(&uki, ".text").unwrap().unwrap(), b"0123456789abcdef");
        // SizeOfImage covers the last section
        assert_eq!(u32_at(&uki, 0x84 + 20 + 56).unwrap(), 0x5000);
        assert_eq!(uki.len(), 0x800 + 0x1400);
    }

    #[test]
    fn a_coff_symbol_table_after_the_sections_is_dropped() {
        let mut pe = tiny_pe();
        let end = pe.len() as u32;
        put_u32(&mut pe, 0x84 + 8, end);
        put_u32(&mut pe, 0x84 + 12, 2);
        pe.extend_from_slice(&[0xaa; 36 + 4]);
        let uki = append_sections(&pe, &[(".osrel", b"ID=stboot\n")]).unwrap();
        assert_eq!((u32_at(&uki, 0x84 + 8).unwrap(), u32_at(&uki, 0x84 + 12).unwrap()), (0, 0));
        assert!(!uki.windows(8).any(|w| w == [0xaa; 8]), "symbol table bytes left in the image");
        assert_eq!(section_data(&uki, ".osrel").unwrap().unwrap(), b"ID=stboot\n");
    }

    #[test]
    fn a_removed_section_is_gone_and_its_bytes_zeroed() {
        let uki = append_sections(&tiny_pe(), &[(".sbat", b"sbat,1\n"), (".osrel", b"ID=stboot\n")]).unwrap();
        let without = remove_section(&uki, ".sbat").unwrap();
        let s = sections(&without).unwrap();
        assert_eq!(s.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), [".text", ".osrel"]);
        assert_eq!(section_data(&without, ".osrel").unwrap().unwrap(), b"ID=stboot\n");
        assert!(!without.windows(6).any(|w| w == b"sbat,1"), "the removed section's bytes are still there");
        assert_eq!(checksum(&without, 0x84 + 20 + 64), u32_at(&without, 0x84 + 20 + 64).unwrap());
        assert_eq!(remove_section(&without, ".sbat").unwrap(), without);
        // and a new one can be appended again
        let again = append_sections(&without, &[(".sbat", b"sbat,1,new\n")]).unwrap();
        assert_eq!(section_data(&again, ".sbat").unwrap().unwrap(), b"sbat,1,new\n");
    }

    #[test]
    fn sbat_replaces_or_appends_and_checks_its_lines() {
        let line = "stboot,1,System Transparency,stboot,0.1,https://system-transparency.org";
        let new = format!("{SBAT_HEADER}\n{line}\n");
        assert_eq!(sbat(None, new.as_bytes()).unwrap(), new.as_bytes());
        let stub = format!("{SBAT_HEADER}\nsystemd,1,The systemd Developers,systemd,252,https://systemd.io/\n\0\0");
        let both = sbat(Some(stub.as_bytes()), line.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(both).unwrap(), format!("{}{line}\n", stub.trim_end_matches('\0')));
        let e = sbat(None, line.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("line 1: the first line must be the SBAT header"), "{e}");
        let e = sbat(Some(stub.as_bytes()), new.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("line 1: the stub's SBAT already has the sbat header"), "{e}");
        let e = sbat(None, b"sbat,1,x\n").unwrap_err().to_string();
        assert!(e.contains("line 1: 3 fields, expected 6"), "{e}");
        let e = sbat(Some(b""), b"a,one,b,c,d,e").unwrap_err().to_string();
        assert!(e.contains("generation \"one\" is not a number"), "{e}");
        assert!(sbat(None, b"\n").unwrap_err().to_string().contains("no SBAT lines"));
    }

    #[test]
    fn checksum_matches_a_known_value() {
        // the checksum field itself is ignored, so recomputing gives the same value
        let uki = append_sections(&tiny_pe(), &[(".osrel", b"ID=stboot\n")]).unwrap();
        let field = 0x84 + 20 + 64;
        assert_eq!(checksum(&uki, field), u32_at(&uki, field).unwrap());
        let mut other = uki.clone();
        *other.last_mut().unwrap() ^= 1;
        assert_ne!(checksum(&other, field), u32_at(&uki, field).unwrap());
    }

    #[test]
    fn refuses_what_it_cannot_extend() {
        let pe = tiny_pe();
        let e = append_sections(&pe, &[(".text", b"x")]).unwrap_err().to_string();
        assert!(e.contains("already has a .text section"), "{e}");
        let mut signed = pe.clone();
        put_u32(&mut signed, 0x84 + 20 + 112 + 32 + 4, 0x100);
        let e = append_sections(&signed, &[(".osrel", b"x")]).unwrap_err().to_string();
        assert!(e.contains("already signed"), "{e}");
        let many: Vec<(&str, &[u8])> = (0..20).map(|_| (".x", &b"x"[..])).collect();
        let e = append_sections(&pe, &many).unwrap_err().to_string();
        assert!(e.contains("no room for 20 more section headers"), "{e}");
        let e = append_sections(b"MZ not really", &[]).unwrap_err().to_string();
        assert!(e.contains("PE"), "{e}");
        let e = append_sections(b"ELF", &[]).unwrap_err().to_string();
        assert!(e.contains("no MZ header"), "{e}");
        let mut trailing = pe.clone();
        trailing.extend_from_slice(&[0; 16]);
        let e = append_sections(&trailing, &[(".osrel", b"x")]).unwrap_err().to_string();
        assert!(e.contains("16 bytes after its last section"), "{e}");
    }
}
