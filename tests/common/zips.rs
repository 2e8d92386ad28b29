//! Archives the archive tests share: the manifest they name, byte patching, an
//! archive with an Info-ZIP Unicode Path field, and archives written by another
//! writer (Python's zipfile, streaming, so with data descriptors). Used by
//! `tests/archive_hostile.rs` (the reader of archives on disk) and
//! `tests/archive_stream.rs` (the one-pass reader).
#![allow(dead_code)]

use std::io::{Cursor, Write};
use std::process::Command;

use stboot::ospkg::Manifest;

pub fn manifest() -> Manifest {
    Manifest {
        version: 1,
        label: "t".into(),
        kernel: "boot/vmlinuz".into(),
        initramfs: "boot/initrd".into(),
        cmdline: "console=ttyS0".into(),
        ospkg_version: None,
        uki: None,
    }
}

/// Replace every occurrence of `from` with `to` (same length) in `z`; how many.
pub fn patch_all(z: &mut [u8], from: &[u8], to: &[u8]) -> usize {
    assert_eq!(from.len(), to.len());
    let mut n = 0;
    let mut i = 0;
    while i + from.len() <= z.len() {
        if &z[i..i + from.len()] == from {
            z[i..i + from.len()].copy_from_slice(to);
            n += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    n
}

/// `boot/vmlinuz` (600 bytes) with an Info-ZIP Unicode Path field (0x7075) that
/// renames it for the zip crate and not for Go's reader; with `complete`, also the
/// initramfs and manifest entries [`manifest`] names.
pub fn unicode_path_zip(complete: bool) -> Vec<u8> {
    use zip::write::{ExtendedFileOptions, FileOptions};
    let mut zw = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let mut opts = FileOptions::<ExtendedFileOptions>::default();
    let name = b"boot/vmlinuz";
    let mut field = vec![1u8];
    field.extend_from_slice(&crc32fast::hash(name).to_le_bytes());
    field.extend_from_slice(name);
    opts.add_extra_field(0x7075, field, false).unwrap();
    zw.start_file("boot/vmlinuz", opts).unwrap();
    zw.write_all(&[7u8; 600]).unwrap();
    if complete {
        zw.start_file("boot/initrd", FileOptions::<ExtendedFileOptions>::default()).unwrap();
        zw.write_all(b"initrd").unwrap();
        zw.start_file("manifest.json", FileOptions::<ExtendedFileOptions>::default()).unwrap();
        zw.write_all(manifest().to_json().as_bytes()).unwrap();
    }
    zw.finish().unwrap().into_inner()
}

/// An archive written by Python's zipfile into a stream it cannot seek, as Go's
/// archive/zip writes: every entry has a data descriptor (flag 0x0008).
/// `compression` is `ZIP_DEFLATED` or `ZIP_STORED`; `entries` are Python lines run
/// inside `with zipfile.ZipFile(...) as z:`, with the manifest JSON as `MANIFEST`.
pub fn python_streamed_zip(compression: &str, entries: &[&str]) -> Vec<u8> {
    let mut py = String::from(
        r#"
import sys, zipfile, io
MANIFEST = sys.argv[2].encode()
class Unseekable(io.RawIOBase):
    def __init__(self, f): self.f = f
    def writable(self): return True
    def write(self, b): return self.f.write(b)
with open(sys.argv[1], "wb") as raw:
"#,
    );
    py += &format!("    with zipfile.ZipFile(Unseekable(raw), \"w\", compression=zipfile.{compression}) as z:\n");
    for e in entries {
        py += &format!("        {e}\n");
    }
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("py.zip");
    let st = Command::new("python3")
        .arg("-c")
        .arg(&py)
        .arg(&p)
        .arg(manifest().to_json())
        .status()
        .expect("python3 (scripts/setup.sh installs it) writes the archives of another writer");
    assert!(st.success(), "python3 failed on:\n{py}");
    let z = std::fs::read(&p).unwrap();
    assert_ne!(u16::from_le_bytes([z[6], z[7]]) & 0x0008, 0, "expected a data descriptor");
    z
}
