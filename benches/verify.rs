//! Throughput of what stboot does with a package: SHA-256 of the archive, signature
//! checks, and extraction. Prints numbers; asserts nothing. `cargo bench --bench verify`.

use std::io::Cursor;
use std::time::Instant;

use stboot::keys::{self, Validity};
use stboot::ospkg::{archive, Descriptor, Manifest};
use stboot::verify::{self, Threshold};

fn main() {
    let size = 64 << 20;
    // incompressible bytes (xorshift), like a compressed kernel and initramfs
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let data: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();

    let t = Instant::now();
    let mut d = verify::digest(b"");
    for _ in 0..4 {
        d = verify::digest(&data);
    }
    let secs = t.elapsed().as_secs_f64();
    println!("sha256: {:.0} MiB/s ({} MiB x4 in {:.3} s) {}..", 256.0 / secs, size >> 20, secs, &d.hex()[..4]);

    let now = time::OffsetDateTime::now_utc();
    let v = Validity { not_before: now - time::Duration::days(1), not_after: now + time::Duration::days(1) };
    let root_key = keys::generate_key();
    let root = keys::pem_to_der(&keys::root_certificate(&root_key, &v).unwrap()).unwrap();
    let mut desc = Descriptor::new("os.zip").unwrap();
    for _ in 0..3 {
        let k = keys::generate_key();
        let c = keys::pem_to_der(&keys::leaf_certificate(&k, &root, &root_key, &v).unwrap()).unwrap();
        desc.certificates.push(stboot::pem::encode("CERTIFICATE", &c).into_bytes());
        desc.signatures.push(keys::sign_digest(&k, &d).to_vec());
    }
    let n = 200;
    let t = Instant::now();
    for _ in 0..n {
        let r = verify::verify(&desc, &d, std::slice::from_ref(&root), Threshold::AtLeast(2), now.unix_timestamp())
            .unwrap();
        assert!(r.accepted());
    }
    println!(
        "verify (3 signatures, X.509 chain checks): {:.3} ms per package",
        t.elapsed().as_secs_f64() * 1000.0 / n as f64
    );

    let m = Manifest {
        version: 1,
        label: "b".into(),
        kernel: "boot/k".into(),
        initramfs: "boot/i".into(),
        cmdline: String::new(),
        ospkg_version: None,
        uki: None,
    };
    let zip =
        archive::write(Cursor::new(Vec::new()), &m, &data[..16 << 20], &data[16 << 20..24 << 20]).unwrap().into_inner();
    let t = Instant::now();
    let mut a = archive::Archive::open(Cursor::new(&zip)).unwrap();
    let mut out = std::io::sink();
    let n1 = a.extract("boot/k", 1 << 30, &mut out).unwrap();
    let n2 = a.extract("boot/i", 1 << 30, &mut out).unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "extract (inflate + CRC-32): {:.0} MiB/s ({} MiB from a {} MiB archive)",
        (n1 + n2) as f64 / secs / 1048576.0,
        (n1 + n2) >> 20,
        zip.len() >> 20
    );
}
