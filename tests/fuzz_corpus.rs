//! The fuzz targets (`fuzz/targets.rs`) over their committed corpus
//! (`fuzz/corpus/<target>/`) and over seeded mutations of it: a regression test for
//! every parser of untrusted input that runs in `cargo test` on the stable toolchain.
//! Coverage-guided fuzzing of the same targets: `fuzz/README.md`.
//!
//! `cargo test --test fuzz_corpus -- --ignored write_seed_corpus` rewrites the seeds.

#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Mutations per target: bounded in count and time.
const MUTATIONS: usize = 20_000;
const TIME_PER_TARGET: Duration = Duration::from_secs(4);

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target)
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir(target))
        .unwrap_or_else(|e| panic!("fuzz/corpus/{target}: {e}"))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut d = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let len = d.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                d[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                d[i] = [0, 0xff, b'"', b'{', b'}', b'\\', b'\n', 0x80][rng.below(8)];
            }
            2 => {
                let i = rng.below(len + 1);
                let b = rng.next() as u8;
                d.insert(i, b);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below(len - i).min(64);
                d.drain(i..i + n);
            }
            4 => d.truncate(rng.below(len + 1)),
            5 if len > 0 => {
                // splice a piece of another seed
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let piece = other[a..(a + 1 + rng.below(64)).min(other.len())].to_vec();
                    let i = rng.below(len);
                    d.splice(i..i, piece);
                }
            }
            _ if len > 1 => {
                // a byte run that often stands for a length: make it huge
                let i = rng.below(len - 1);
                d[i] = 0xff;
                d[i + 1] = 0xff;
            }
            _ => {}
        }
    }
    d
}

#[test]
fn every_target_survives_its_corpus_and_mutations_of_it() {
    std::panic::set_hook(Box::new(|p| eprintln!("fuzz target panicked: {p}")));
    let mut report = Vec::new();
    for (name, target) in targets::TARGETS {
        let seeds = corpus(name);
        assert!(!seeds.is_empty(), "fuzz/corpus/{name} is empty");
        for s in &seeds {
            target(s);
        }
        let mut rng = Rng(0x5eed ^ (name.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let t = Instant::now();
        let mut n = 0;
        while n < MUTATIONS && t.elapsed() < TIME_PER_TARGET {
            let input = mutate(&mut rng, &seeds);
            if std::panic::catch_unwind(|| target(&input)).is_err() {
                let path = std::env::temp_dir().join(format!("stboot-fuzz-{name}-crash"));
                std::fs::write(&path, &input).unwrap();
                panic!("target {name} panicked on mutation {n}; input saved to {}", path.display());
            }
            n += 1;
        }
        report.push(format!("{name}: {} seeds, {n} mutations", seeds.len()));
    }
    eprintln!("fuzz corpus: {}", report.join("; "));
}

/// Write the seed corpus (run by hand; the files are committed).
#[test]
#[ignore]
fn write_seed_corpus() {
    use stboot::keys;
    use stboot::ospkg::{archive, Descriptor, Manifest};
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let d = corpus_dir(target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), bytes).unwrap();
    };
    let v = keys::Validity::from_args(Some("2020-01-01T00:00:00Z"), Some("2040-01-01T00:00:00Z"), 1).unwrap();
    let root_key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let root_pem = keys::root_certificate(&root_key, &v).unwrap();
    let root_der = keys::pem_to_der(&root_pem).unwrap();
    let leaf_key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let leaf_pem = keys::leaf_certificate(&leaf_key, &root_der, &root_key, &v).unwrap();
    let leaf_der = keys::pem_to_der(&leaf_pem).unwrap();
    write("certificate", "root.pem", root_pem.as_bytes());
    write("certificate", "leaf.pem", leaf_pem.as_bytes());
    write("certificate", "leaf.der", &leaf_der);

    let m = Manifest {
        version: 1,
        label: "seed".into(),
        kernel: "boot/vmlinuz".into(),
        initramfs: "boot/initrd".into(),
        cmdline: "console=ttyS0".into(),
        ospkg_version: Some(3),
        uki: None,
    };
    write("manifest", "manifest.json", m.to_json().as_bytes());
    let mut k = vec![0u8; 1024];
    k[0x202..0x206].copy_from_slice(b"HdrS");
    let z = archive::write(std::io::Cursor::new(Vec::new()), &m, &k, b"initramfs").unwrap().into_inner();
    write("archive", "pkg.zip", &z);

    let mut d = Descriptor::new("pkg.zip").unwrap();
    d.certificates.push(leaf_pem.as_bytes().to_vec());
    d.signatures.push(keys::sign_digest(&leaf_key, &stboot::verify::digest(&z)).to_vec());
    write("descriptor", "signed.json", d.to_json().as_bytes());
    write("descriptor", "absolute.json", Descriptor::new("https://h.example/os/pkg.zip").unwrap().to_json().as_bytes());

    let hc = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/upstream-hostconfigs");
    for f in ["compat-1.txt", "compat-2.txt", "compat-3.txt"] {
        write("host_config", f, &std::fs::read(hc.join(f)).unwrap());
    }
    write(
        "host_config",
        "static.json",
        br#"{"network_mode":"static","host_ip":"10.0.2.15/24","gateway":"10.0.2.2","dns":["10.0.2.3"],"network_interfaces":[{"interface_name":"eth0","mac_address":"52:54:00:12:34:56"}],"ospkg_pointer":"https://user:pw@h/os.json,http://10.0.2.2/os.json","bonding_mode":"802.3ad","bond_name":"bond0"}"#,
    );
    write("trust_policy", "network.json", br#"{"ospkg_signature_threshold":2,"ospkg_fetch_method":"network"}"#);
    write("trust_policy", "initramfs.json", br#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":"initramfs"}"#);
    write(
        "cmdline",
        "options.txt",
        b"console=ttyS0 stboot.loglevel=debug stboot.deadline=30 stboot.dhcp_timeout=5 stboot.stall_timeout=3 stboot.boot_attempts=2 stboot.modules=a.ko,b.ko -- -loglevel=d -dryrun -deadline 5",
    );
    // the values that panicked PID 1 in the first release
    write(
        "cmdline",
        "overflow.txt",
        b"stboot.deadline=18446744073709551615 stboot.dhcp_timeout=18446744073709551615 -deadline=307445734561825861",
    );

    use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode};
    use dhcproto::{Encodable, Encoder};
    let mut msg = Message::default();
    msg.set_opcode(Opcode::BootReply).set_xid(0x1234_5678).set_yiaddr([10, 0, 2, 15]);
    let o = msg.opts_mut();
    o.insert(DhcpOption::MessageType(MessageType::Offer));
    o.insert(DhcpOption::SubnetMask([255, 255, 255, 0].into()));
    o.insert(DhcpOption::Router(vec![[10, 0, 2, 2].into()]));
    o.insert(DhcpOption::DomainNameServer(vec![[10, 0, 2, 3].into()]));
    o.insert(DhcpOption::AddressLeaseTime(86400));
    o.insert(DhcpOption::ServerIdentifier([10, 0, 2, 2].into()));
    let mut buf = Vec::new();
    msg.encode(&mut Encoder::new(&mut buf)).unwrap();
    write("dhcp", "offer.bin", &buf);
    // Rapid Commit (80) must be empty; with a byte it trips dhcproto's debug_assert
    let end = buf.iter().rposition(|&b| b == 255).unwrap();
    let mut rapid = buf.clone();
    rapid.splice(end..end, [80, 1, 0]);
    write("dhcp", "rapid-commit-with-data.bin", &rapid);

    // ipv6: a first byte of 0 selects the router advertisement parser, 1 DHCPv6
    let v6 = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
    let mut ra = vec![0u8, 134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
    ra.extend_from_slice(&[1, 1, 0x52, 0x54, 0, 0, 0, 1, 5, 1, 0, 0, 0, 0, 0x05, 0xdc]);
    ra.extend_from_slice(&[3, 4, 64, 0xc0, 0, 0, 0x0e, 0x10, 0, 0, 0x07, 0x08, 0, 0, 0, 0]);
    ra.extend_from_slice(&v6("2001:db8::"));
    ra.extend_from_slice(&[25, 3, 0, 0, 0, 0, 0x0e, 0x10]);
    ra.extend_from_slice(&v6("2001:db8::53"));
    write("ipv6", "router-advert.bin", &ra);

    // uki: a minimal PE32+ (headers in 0x400 bytes, one .text section) with a UKI's sections
    let mut pe = vec![0u8; 0x600];
    pe[..2].copy_from_slice(b"MZ");
    pe[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
    pe[0x80..0x84].copy_from_slice(b"PE\0\0");
    let (coff, opt) = (0x84, 0x98);
    pe[coff..coff + 2].copy_from_slice(&0x8664u16.to_le_bytes());
    pe[coff + 2..coff + 4].copy_from_slice(&1u16.to_le_bytes());
    let text = opt + 240;
    pe[text..text + 5].copy_from_slice(b".text");
    for (at, v) in [(8, 0x10u32), (12, 0x1000), (16, 0x200), (20, 0x400)] {
        pe[text + at..text + at + 4].copy_from_slice(&v.to_le_bytes());
    }
    pe[coff + 16..coff + 18].copy_from_slice(&240u16.to_le_bytes());
    pe[opt..opt + 2].copy_from_slice(&0x20bu16.to_le_bytes());
    for (at, v) in [(32, 0x1000u32), (36, 0x200), (56, 0x2000), (60, 0x400), (108, 16)] {
        pe[opt + at..opt + at + 4].copy_from_slice(&v.to_le_bytes());
    }
    let mut linux = vec![0u8; 0x400];
    linux[0x202..0x206].copy_from_slice(b"HdrS");
    let magic = b"#### LoaderInfo: systemd-stub 252.39-1~deb12u2 ####\0";
    let sections: [(&str, &[u8]); 6] = [
        (".sdmagic", magic),
        (".osrel", b"ID=fuzz\n"),
        (".cmdline", b"console=ttyS0\n"),
        (".initrd", b"070701"),
        (".pcrsig", b"{}"),
        (".linux", &linux),
    ];
    write("uki", "uki.efi", &stboot::uki::append_sections(&pe, &sections).unwrap());
    let opt = |code: u16, body: &[u8]| [&code.to_be_bytes()[..], &(body.len() as u16).to_be_bytes(), body].concat();
    let iaaddr = opt(5, &[&v6("2001:db8::1:7")[..], &3600u32.to_be_bytes(), &3600u32.to_be_bytes()].concat());
    let iana = opt(3, &[&2u32.to_be_bytes()[..], &1800u32.to_be_bytes(), &3150u32.to_be_bytes(), &iaaddr].concat());
    let reply = [
        &[1u8, 7, 1, 2, 3][..],
        &opt(1, &[0, 3, 0, 1, 0x52, 0x54, 0, 0xaa, 0, 0]),
        &iana,
        &opt(23, &v6("2001:db8::53")),
    ]
    .concat();
    write("ipv6", "dhcpv6-reply.bin", &reply);
}
