//! Archives from other writers and hostile archives: errors, never panics or
//! unbounded memory.

use std::io::{Cursor, Write};

use stboot::ospkg::archive::{self, Archive};
use stboot::ospkg::Manifest;

mod common;
use common::zips::{manifest, patch_all, python_streamed_zip, unicode_path_zip};

fn good_zip() -> Vec<u8> {
    archive::write(Cursor::new(Vec::new()), &manifest(), &[7u8; 5000], b"initrd").unwrap().into_inner()
}

#[test]
fn reads_own_archive() {
    let z = good_zip();
    let mut a = Archive::open(Cursor::new(&z)).unwrap();
    let m = a.manifest().unwrap();
    assert_eq!(m, manifest());
    let mut k = Vec::new();
    assert_eq!(a.extract(&m.kernel, 1 << 20, &mut k).unwrap(), 5000);
    assert_eq!(k, vec![7u8; 5000]);
    // names are exact: no normalisation, no leading slash
    for name in ["/boot/vmlinuz", "boot//vmlinuz", "BOOT/vmlinuz", "vmlinuz", "boot/"] {
        let e = a.extract(name, 1 << 20, &mut Vec::new()).unwrap_err().to_string();
        assert!(e.contains("no entry named") || e.contains("directory"), "{name}: {e}");
    }
}

#[test]
fn same_input_same_bytes() {
    assert_eq!(good_zip(), good_zip());
}

#[test]
fn truncated_archives_are_errors() {
    let z = good_zip();
    for cut in [0, 10, z.len() / 2, z.len() - 1] {
        let r = Archive::open(Cursor::new(&z[..cut])).and_then(|mut a| a.manifest());
        assert!(r.is_err(), "cut at {cut}");
    }
}

#[test]
fn corrupted_data_fails_crc() {
    let mut z = good_zip();
    // the kernel's deflated data follows its local header; flip bytes inside it
    let pos = z.windows(12).position(|w| w == b"boot/vmlinuz").unwrap() + 12 + 4;
    z[pos] ^= 0xff;
    z[pos + 1] ^= 0xff;
    let mut a = Archive::open(Cursor::new(&z)).unwrap();
    let e = format!("{:#}", a.extract("boot/vmlinuz", 1 << 20, &mut Vec::new()).unwrap_err());
    assert!(e.contains("boot/vmlinuz"), "{e}");
}

#[test]
fn zip_bomb_declared_size_is_refused() {
    let mut zw = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zw.start_file("boot/vmlinuz", o).unwrap();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..64 {
        zw.write_all(&chunk).unwrap();
    }
    let z = zw.finish().unwrap().into_inner();
    assert!(z.len() < 1 << 20, "64 MiB of zeros compress to {} bytes", z.len());
    let mut a = Archive::open(Cursor::new(&z)).unwrap();
    let e = a.extract("boot/vmlinuz", 1 << 20, &mut Vec::new()).unwrap_err().to_string();
    assert!(e.contains("declares 67108864 bytes, more than the limit of 1048576"), "{e}");
}

#[test]
fn zip_bomb_lying_size_is_cut_off() {
    let mut zw = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zw.start_file("boot/vmlinuz", o).unwrap();
    zw.write_all(&vec![0u8; 8 << 20]).unwrap();
    let mut z = zw.finish().unwrap().into_inner();
    // rewrite the declared uncompressed size (local header offset 22, central offset 24) to 100
    let lh = z.windows(4).position(|w| w == b"PK\x03\x04").unwrap();
    z[lh + 22..lh + 26].copy_from_slice(&100u32.to_le_bytes());
    let cd = z.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    z[cd + 24..cd + 28].copy_from_slice(&100u32.to_le_bytes());
    let mut out = Vec::new();
    let r = Archive::open(Cursor::new(&z)).and_then(|mut a| a.extract("boot/vmlinuz", 1 << 20, &mut out));
    let e = r.unwrap_err().to_string();
    assert!(out.len() <= (1 << 20) + 1, "wrote {} bytes", out.len());
    assert!(!e.is_empty());
}

#[test]
fn manifest_naming_missing_entries() {
    let m = Manifest { kernel: "boot/missing".into(), ..manifest() };
    let mut zw = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default();
    zw.start_file("manifest.json", o).unwrap();
    zw.write_all(m.to_json().as_bytes()).unwrap();
    zw.start_file("../../etc/passwd", o).unwrap();
    zw.write_all(b"x").unwrap();
    let z = zw.finish().unwrap().into_inner();
    let mut a = Archive::open(Cursor::new(&z)).unwrap();
    let m = a.manifest().unwrap();
    let e = a.extract(&m.kernel, 1 << 20, &mut Vec::new()).unwrap_err().to_string();
    assert_eq!(e, "archive: no entry named \"boot/missing\"");
}

#[test]
fn not_a_zip() {
    let e = Archive::open(Cursor::new(b"this is not a zip archive at all".to_vec())).err().unwrap().to_string();
    assert!(e.contains("not a valid zip file"), "{e}");
}

/// Go's archive/zip writes data descriptors (flag 0x0008); zip64 appears for big
/// archives. Python's zipfile writes both when told to, as an independent writer.
#[test]
fn data_descriptors_and_zip64_from_another_writer() {
    let z = python_streamed_zip(
        "ZIP_DEFLATED",
        &[
            r#"with z.open("boot/vmlinuz", "w", force_zip64=True) as f: f.write(b"K" * 100000)"#,
            r#"with z.open("boot/initrd", "w") as f: f.write(b"I" * 1000)"#,
            r#"with z.open("manifest.json", "w") as f: f.write(MANIFEST)"#,
        ],
    );
    let mut a = Archive::open(Cursor::new(&z)).unwrap();
    let m = a.manifest().unwrap();
    let mut k = Vec::new();
    a.extract(&m.kernel, 1 << 20, &mut k).unwrap();
    assert_eq!(k, vec![b'K'; 100000]);
}

/// Random corruptions of a valid archive and descriptor: every outcome is Ok or an
/// error, never a panic (a panic fails this test). Deterministic pseudo-random bytes.
#[test]
fn mutated_inputs_never_panic() {
    use stboot::ospkg::Descriptor;
    let zip = good_zip();
    use stboot::keys;
    let now = time::OffsetDateTime::now_utc();
    let v = keys::Validity { not_before: now - time::Duration::days(1), not_after: now + time::Duration::days(1) };
    let (root_key, leaf_key) = (keys::generate_key(), keys::generate_key());
    let root = keys::pem_to_der(&keys::root_certificate(&root_key, &v).unwrap()).unwrap();
    let leaf = keys::pem_to_der(&keys::leaf_certificate(&leaf_key, &root, &root_key, &v).unwrap()).unwrap();
    let digest = stboot::verify::digest(&zip);
    let mut desc = Descriptor::new("os.zip").unwrap();
    desc.certificates.push(stboot::pem::encode("CERTIFICATE", &leaf).into_bytes());
    desc.signatures.push(keys::sign_digest(&leaf_key, &digest).to_vec());
    let json = desc.to_json().into_bytes();
    let unmodified = stboot::verify::verify(
        &desc,
        &digest,
        std::slice::from_ref(&root),
        stboot::verify::Threshold::AtLeast(1),
        now.unix_timestamp(),
    )
    .unwrap();
    assert!(unmodified.accepted());
    let mut x: u64 = 0x2545F4914F6CDD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..1500 {
        let mut z = zip.clone();
        let mut j = json.clone();
        for _ in 0..(1 + next() % 8) {
            let p = (next() as usize) % z.len();
            z[p] = next() as u8;
            let q = (next() as usize) % j.len();
            j[q] = next() as u8;
        }
        if i % 5 == 0 {
            z.truncate((next() as usize) % z.len());
            j.truncate((next() as usize) % j.len());
        }
        if let Ok(mut a) = Archive::open(Cursor::new(&z)) {
            if let Ok(m) = a.manifest() {
                let _ = a.extract(&m.kernel, 1 << 20, &mut std::io::sink());
                let _ = a.extract(&m.initramfs, 1 << 20, &mut std::io::sink());
            }
        }
        if let Ok(d) = Descriptor::parse(&j) {
            let _ = stboot::verify::verify(
                &d,
                &stboot::digest::Sha256Digest::default(),
                std::slice::from_ref(&root),
                stboot::verify::Threshold::AtLeast(1),
                0,
            );
        }
    }
}

/// Two `manifest.json` entries: Go's reader takes the first, the zip crate (and the
/// first release) the last. The same signed bytes must not mean two things: refused.
#[test]
fn duplicate_entry_names_are_refused_as_ambiguous() {
    use zip::write::SimpleFileOptions;
    let mut zw = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default();
    zw.start_file("boot/vmlinuz", opts).unwrap();
    zw.write_all(&[7u8; 600]).unwrap();
    zw.start_file("boot/initrd", opts).unwrap();
    zw.write_all(b"initrd").unwrap();
    zw.start_file("manifest.json", opts).unwrap();
    zw.write_all(manifest().to_json().as_bytes()).unwrap();
    let evil = Manifest { kernel: "boot/initrd".into(), initramfs: "boot/vmlinuz".into(), ..manifest() };
    zw.start_file("manifesX.json", opts).unwrap();
    zw.write_all(evil.to_json().as_bytes()).unwrap();
    let mut z = zw.finish().unwrap().into_inner();
    assert!(Archive::open(Cursor::new(&z)).is_ok(), "distinct names are fine");
    assert_eq!(patch_all(&mut z, b"manifesX.json", b"manifest.json"), 2, "local and central name");
    let e = Archive::open(Cursor::new(&z)).err().expect("refused").to_string();
    assert!(e.contains("ambiguous") && e.contains("same name"), "{e}");
}

/// A local header whose name differs from the central directory's: readers that
/// stream by local headers and readers that use the directory disagree. Refused.
#[test]
fn local_header_disagreeing_with_the_central_directory_is_refused() {
    let mut z = good_zip();
    let local = z.windows(4).position(|w| w == b"PK\x03\x04").unwrap();
    let name_len = u16::from_le_bytes([z[local + 26], z[local + 27]]) as usize;
    assert!(name_len > 0);
    z[local + 30] ^= 0x20; // first letter of the first entry's local name only
    let e = Archive::open(Cursor::new(&z)).err().expect("refused").to_string();
    assert!(e.contains("ambiguous"), "{e}");
}

/// An Info-ZIP Unicode Path field renames an entry for the zip crate and not for
/// Go's reader: refused wherever it appears.
#[test]
fn unicode_path_extra_fields_are_refused() {
    let z = unicode_path_zip(true);
    let e = Archive::open(Cursor::new(&z)).err().expect("refused").to_string();
    assert!(e.contains("Unicode Path"), "{e}");
}

/// The manifest's kernel must be a bzImage; verification checks it.
#[test]
fn a_kernel_that_is_not_a_bzimage_is_refused_by_the_checked_manifest() {
    let z = good_zip();
    let e = Archive::open(Cursor::new(&z)).unwrap().manifest_checked().unwrap_err().to_string();
    assert!(e.contains("not an x86 bzImage"), "{e}");
    let mut k = vec![7u8; 5000];
    k[0x202..0x206].copy_from_slice(b"HdrS");
    let z = archive::write(Cursor::new(Vec::new()), &manifest(), &k, b"initrd").unwrap().into_inner();
    assert_eq!(Archive::open(Cursor::new(&z)).unwrap().manifest_checked().unwrap(), manifest());
}

/// A stored entry whose bytes do not match its CRC-32 (local header and central
/// directory agree on the wrong value): the mismatch is named, decided from the
/// bytes, not from the zip crate's message.
#[test]
fn a_crc_mismatch_is_named() {
    use zip::write::SimpleFileOptions;
    let mut zw = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zw.start_file("boot/vmlinuz", stored).unwrap();
    zw.write_all(&[7u8; 600]).unwrap();
    zw.start_file("manifest.json", stored).unwrap();
    zw.write_all(manifest().to_json().as_bytes()).unwrap();
    let mut z = zw.finish().unwrap().into_inner();
    let find = |z: &[u8], sig: &[u8; 4], name_at: usize| {
        (0..z.len() - name_at - 12)
            .find(|&i| &z[i..i + 4] == sig && &z[i + name_at..i + name_at + 12] == b"boot/vmlinuz")
    };
    let local = find(&z, b"PK\x03\x04", 30).unwrap();
    let central = find(&z, b"PK\x01\x02", 46).unwrap();
    z[local + 14] ^= 1;
    z[central + 16] ^= 1;
    let mut a = Archive::open(Cursor::new(&z)).expect("headers agree");
    let e = format!("{:#}", a.extract("boot/vmlinuz", 1 << 20, &mut Vec::new()).unwrap_err());
    assert!(e.contains("CRC-32 mismatch"), "{e}");
}

/// A write error (the staging tmpfs is full) stays an `io::Error` in the chain, so
/// staging can say what it means.
#[test]
fn a_write_error_keeps_its_errno() {
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from_raw_os_error(28)) // ENOSPC
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let z = good_zip();
    let mut a = Archive::open(Cursor::new(&z)).unwrap();
    let e = a.extract("boot/vmlinuz", 1 << 20, &mut Full).unwrap_err();
    let errno = e.chain().find_map(|c| c.downcast_ref::<std::io::Error>()).and_then(|io| io.raw_os_error());
    assert_eq!(errno, Some(28), "{e:#}");
}
