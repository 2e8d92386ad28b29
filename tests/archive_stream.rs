//! The one-pass archive reader (`stboot::ospkg::stream`) against the reader of
//! archives on disk (`Archive`, the zip crate through the central directory): for
//! every archive, written by this stmgr, by another writer (Python's zipfile, with
//! data descriptors and zip64), and for hostile and randomly damaged ones, fed in
//! chunks of every size, either both give the same entries with the same bytes, or
//! the streaming reader refuses. It never accepts what the central directory reads
//! differently, never panics, and leaves no file behind when it refuses.

use std::io::{Cursor, Read, Write};
use std::path::Path;

use stboot::ospkg::archive::{self, Archive};
use stboot::ospkg::stream::{Limits, Streamed, StreamedArchive, Unzip};

mod common;
use common::zips::{manifest, patch_all, python_streamed_zip, unicode_path_zip};

fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn own_zip() -> Vec<u8> {
    let mut kernel = pseudo_random(300_000, 1);
    kernel[0x202..0x206].copy_from_slice(b"HdrS");
    let initrd = [pseudo_random(50_000, 2), vec![b'i'; 100_000]].concat();
    archive::write(Cursor::new(Vec::new()), &manifest(), &kernel, &initrd).unwrap().into_inner()
}

/// Feed `z` to a streaming reader `chunk` bytes at a time.
fn stream(z: &[u8], chunk: usize, dir: &Path, limits: Limits) -> anyhow::Result<StreamedArchive> {
    let mut u = Unzip::new(dir, limits);
    for c in z.chunks(chunk.max(1)) {
        if u.write_all(c).is_err() {
            break; // finish() names the error
        }
    }
    let a = u.finish()?;
    // the digest is the one of the bytes the entries came from, taken by the reader
    assert_eq!((a.sha256(), a.len()), (&stboot::verify::digest(z), z.len() as u64), "the streamed archive's digest");
    Ok(a)
}

/// Every file entry's bytes, by name, as the streaming reader wrote them.
fn streamed_contents(s: &Streamed) -> Vec<(String, Vec<u8>)> {
    s.entries()
        .iter()
        .filter_map(|e| {
            let p = e.path()?;
            Some((e.name().to_string(), std::fs::read(p).unwrap()))
        })
        .collect()
}

/// Every file entry's bytes as the central directory's reader sees them; `None` if it
/// refuses the archive or any entry.
fn directory_contents(z: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let mut a = zip::ZipArchive::new(Cursor::new(z)).ok()?;
    Archive::open(Cursor::new(z)).ok()?;
    let mut out = Vec::new();
    for i in 0..a.len() {
        let mut f = a.by_index(i).ok()?;
        if f.is_dir() {
            continue;
        }
        let mut b = Vec::new();
        f.read_to_end(&mut b).ok()?;
        let name = f.name().ok()?.to_string();
        out.push((name, b));
    }
    Some(out)
}

fn empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

/// The property: accepted means the same entries and bytes as the directory's view.
fn check(z: &[u8], what: &str) -> bool {
    check_in(z, what, &[1, 3, 17, 4096, 65536, z.len()])
}

fn check_in(z: &[u8], what: &str, chunks: &[usize]) -> bool {
    let want = directory_contents(z);
    let mut accepted = false;
    for &chunk in chunks {
        let t = tempfile::tempdir().unwrap();
        match stream(z, chunk, t.path(), Limits::default()) {
            Ok(s) => {
                let got = streamed_contents(s.entries());
                let summary = |v: Option<&Vec<(String, Vec<u8>)>>| {
                    v.map(|v| {
                        v.iter()
                            .map(|(n, b)| format!("{n} ({} bytes, CRC-32 {:08x})", b.len(), crc32fast::hash(b)))
                            .collect::<Vec<_>>()
                    })
                };
                if Some(&got) != want.as_ref() {
                    let why = Archive::open(Cursor::new(z)).err().map(|e| format!("{e:#}"));
                    panic!(
                        "{what}, chunks of {chunk}: accepted as {:?}, but the directory reads {:?} ({why:?})",
                        summary(Some(&got)),
                        summary(want.as_ref())
                    );
                }
                accepted = true;
                drop(s);
            }
            Err(e) => {
                assert!(!accepted, "{what}: accepted in other chunk sizes, refused in chunks of {chunk}: {e:#}");
            }
        }
        assert!(empty(t.path()), "{what}: files left behind");
    }
    accepted
}

#[test]
fn own_archives_stream_to_the_same_bytes_in_chunks_of_any_size() {
    let z = own_zip();
    assert!(check(&z, "own archive"));
    let t = tempfile::tempdir().unwrap();
    let s = stream(&z, 4096, t.path(), Limits::default()).unwrap();
    let s = s.entries();
    let names: Vec<&str> = s.entries().iter().map(|e| e.name()).collect();
    assert_eq!(names, ["boot/", "boot/vmlinuz", "boot/initrd", "manifest.json"]);
    assert!(s.get("boot/").unwrap().path().is_none(), "a directory gets no file");
    assert_eq!(s.get("boot/vmlinuz").unwrap().size(), 300_000);
}

/// Go's archive/zip writes Deflate entries with data descriptors; Python's zipfile
/// does too when it cannot seek, and zip64 fields when told to.
#[test]
fn data_descriptors_and_zip64_from_another_writer_stream() {
    let z = python_streamed_zip(
        "ZIP_DEFLATED",
        &[
            r#"with z.open("boot/vmlinuz", "w", force_zip64=True) as f: f.write(b"K" * 100000)"#,
            r#"with z.open("boot/initrd", "w") as f: f.write(bytes(range(256)) * 500)"#,
            r#"with z.open("manifest.json", "w") as f: f.write(MANIFEST)"#,
        ],
    );
    assert!(check(&z, "python zip with data descriptors and zip64"));
}

#[test]
fn what_cannot_be_streamed_or_read_one_way_is_refused_with_the_reason() {
    let z = own_zip();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("bytes before the first entry", [b"MZ garbage".to_vec(), z.clone()].concat(), "unexpected bytes at offset 0"),
        ("bytes after the end record", [z.clone(), b"trailing".to_vec()].concat(), "after the end record"),
        ("truncated in an entry", z[..z.len() / 2].to_vec(), "truncated"),
        ("truncated in the directory", z[..z.len() - 30].to_vec(), "truncated"),
        ("not a zip", b"this is not a zip file at all".to_vec(), "unexpected bytes at offset 0"),
        ("an empty archive", zip::ZipWriter::new(Cursor::new(Vec::new())).finish().unwrap().into_inner(), "no entries"),
    ];
    for (what, bytes, want) in cases {
        let t = tempfile::tempdir().unwrap();
        let e = format!("{:#}", stream(&bytes, 1000, t.path(), Limits::default()).unwrap_err());
        assert!(e.contains(want), "{what}: {e}");
        assert!(empty(t.path()), "{what}: files left behind");
    }
    // a stored entry with a data descriptor has no end a stream can find
    let stored = python_streamed_zip("ZIP_STORED", &[r#"with z.open("boot/vmlinuz", "w") as f: f.write(b"K" * 1000)"#]);
    let t = tempfile::tempdir().unwrap();
    let e = format!("{:#}", stream(&stored, 100, t.path(), Limits::default()).unwrap_err());
    assert!(e.contains("stored with a data descriptor"), "{e}");
}

#[test]
fn the_inflated_total_is_bounded() {
    // 10 MB of zeros deflate to a few KB: a bomb for a small limit
    let m = manifest();
    let z = archive::write(Cursor::new(Vec::new()), &m, &vec![0u8; 10_000_000], b"i").unwrap().into_inner();
    assert!(z.len() < 100_000);
    let t = tempfile::tempdir().unwrap();
    let limits = Limits { total: 1_000_000, ..Limits::default() };
    let e = format!("{:#}", stream(&z, 4096, t.path(), limits).unwrap_err());
    assert!(e.contains("expands past the limit of 1000000 bytes"), "{e}");
    assert!(empty(t.path()));
}

/// The cases the reader of archives on disk refuses as ambiguous (tests/
/// archive_hostile.rs) are refused by the streaming reader too, naming why.
#[test]
fn the_ambiguous_archives_are_refused() {
    use zip::write::SimpleFileOptions;
    // two entries of the same name
    let mut zw = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default();
    for (n, b) in [("boot/vmlinuz", &[7u8; 600][..]), ("manifest.json", b"{}"), ("manifesX.json", b"{}")] {
        zw.start_file(n, opts).unwrap();
        zw.write_all(b).unwrap();
    }
    let mut dup = zw.finish().unwrap().into_inner();
    assert_eq!(patch_all(&mut dup, b"manifesX.json", b"manifest.json"), 2);
    // the first local name differs from the directory's
    let mut renamed = own_zip();
    let local = renamed.windows(4).position(|w| w == b"PK\x03\x04").unwrap();
    renamed[local + 30] ^= 0x20;
    // a CRC that does not match the bytes (local header and directory agree)
    let mut crc = own_zip();
    let k = crc.windows(12).position(|w| w == b"boot/vmlinuz").unwrap();
    let local = k - 30;
    let old = crc[local + 14..local + 18].to_vec();
    let bad: Vec<u8> = old.iter().map(|b| b ^ 0x55).collect();
    assert_eq!(patch_all(&mut crc, &old, &bad), 2);
    // an Info-ZIP Unicode Path field
    let unicode = unicode_path_zip(false);
    for (what, z, want) in [
        ("duplicate names", dup, "two entries are named \"manifest.json\""),
        ("local name differs", renamed, "disagrees with its local header"),
        ("CRC mismatch", crc, "CRC-32 mismatch"),
        ("Unicode Path", unicode, "Unicode Path"),
    ] {
        assert!(
            Archive::open(Cursor::new(&z)).is_err() || what == "CRC mismatch",
            "{what}: the disk reader accepts it"
        );
        let t = tempfile::tempdir().unwrap();
        let e = format!("{:#}", stream(&z, 4096, t.path(), Limits::default()).unwrap_err());
        assert!(e.contains(want), "{what}: {e}");
        assert!(empty(t.path()), "{what}: files left behind");
    }
}

/// Random damage: the streaming reader never panics, and whatever it accepts, the
/// central directory's reader reads the same (checked for every chunk size).
#[test]
fn damaged_archives_never_mean_two_things() {
    let z = own_zip();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (rounds, mut accepted) = (300, 0);
    for round in 0..rounds {
        let mut m = z.clone();
        for _ in 0..(1 + next() % 4) {
            // damage headers more often than data: near the start, or the last 200 bytes
            let at = if next() % 2 == 0 { (next() % 200) as usize } else { m.len() - 1 - (next() % 200) as usize };
            m[at] ^= (next() % 255 + 1) as u8;
        }
        if check_in(&m, &format!("round {round}"), &[7, 4096, m.len()]) {
            accepted += 1;
        }
    }
    // some damage (timestamps, attributes) leaves an archive that means the same
    eprintln!("{accepted} of {rounds} damaged archives accepted, each read the same both ways");
}

/// Both readers check the entries the manifest names with one function, so they give
/// the same answer, word for word: a kernel that is not a bzImage, an empty kernel or
/// initramfs, and a good archive.
#[test]
fn both_readers_check_the_manifest_the_same_way() {
    let mut bz = pseudo_random(5000, 3);
    bz[0x202..0x206].copy_from_slice(b"HdrS");
    let cases: [(&str, Vec<u8>, Vec<u8>, stboot::ospkg::Manifest); 4] = [
        ("not a bzImage", pseudo_random(5000, 4), b"initrd".to_vec(), manifest()),
        ("empty kernel", Vec::new(), b"initrd".to_vec(), manifest()),
        ("empty initramfs", bz.clone(), Vec::new(), manifest()),
        ("good", bz, b"initrd".to_vec(), manifest()),
    ];
    for (what, kernel, initrd, m) in cases {
        let z = archive::write(Cursor::new(Vec::new()), &m, &kernel, &initrd).unwrap().into_inner();
        let from_file = Archive::open(Cursor::new(&z)).unwrap().manifest_checked().map_err(|e| format!("{e:#}"));
        let t = tempfile::tempdir().unwrap();
        let s = stream(&z, 4096, t.path(), Limits::default()).unwrap();
        let streamed = s.entries().manifest_checked().map_err(|e| format!("{e:#}"));
        assert_eq!(from_file, streamed, "{what}");
        assert_eq!(from_file.is_ok(), what == "good", "{what}: {from_file:?}");
    }
}
