//! The fuzz targets: every parser that reads input stboot did not make (network,
//! initramfs, EFI variable, kernel command line). Each function must return for any
//! input, never panic. Used by `fuzz/fuzz_targets/*.rs` (cargo fuzz, libFuzzer) and by
//! `tests/fuzz_corpus.rs` (the committed corpus plus seeded mutations, in `cargo test`).
#![allow(dead_code)]

use std::io::Cursor;
use std::sync::OnceLock;

/// A target: its name (its directory under `fuzz/corpus/`) and its function.
pub type Target = (&'static str, fn(&[u8]));

pub const TARGETS: [Target; 11] = [
    ("descriptor", descriptor),
    ("manifest", manifest),
    ("archive", archive),
    ("certificate", certificate),
    ("host_config", host_config),
    ("trust_policy", trust_policy),
    ("cmdline", cmdline),
    ("dhcp", dhcp),
    ("ipv6", ipv6),
    ("uki", uki),
    ("authenticode", authenticode),
];

/// A UKI's Secure Boot signature (`ospkg_uki_db.pem`): the digest plan from its
/// headers, the image streamed through it, its certificate table checked, with the
/// first certificate the image carries as the db (so the RSA and chain checks run
/// too, not only the parsing).
pub fn authenticode(data: &[u8]) {
    use stboot::secureboot::{check, signatures};
    let db: Vec<Vec<u8>> = signatures(data)
        .ok()
        .and_then(|s| s.into_iter().next())
        .and_then(|s| s.certificates.into_iter().next())
        .into_iter()
        .collect();
    let _ = check::check_image(data, data.len() as u64, |w| Ok(w.write_all(data)?), &db);
}

/// A UKI, an OS package's kernel (`stmgr ospkg create -uki`): its layout checked,
/// the sections systemd-stub measures read and hashed, its command line.
pub fn uki(data: &[u8]) {
    use stboot::ospkg::uki;
    let Ok(layout) = uki::parse_bytes(data) else { return };
    let _ = uki::UkiFacts::read(&layout, &mut uki::bytes_reader(data));
    if let Some(c) = uki::section(data, &layout, ".cmdline") {
        let _ = uki::cmdline_of(c);
    }
}

/// An OS package descriptor from a provisioning server, and the archive URL it names.
pub fn descriptor(data: &[u8]) {
    if let Ok(d) = stboot::ospkg::Descriptor::parse(data) {
        let base = reqwest::Url::parse("https://user:pw@provisioning.example:8443/os/pkg.json").unwrap();
        if let Ok(u) = stboot::fetch::archive_url(&d, &base) {
            let _ = stboot::fetch::redact(&u);
        }
        let _ = d.to_json();
    }
}

/// `manifest.json` from inside an archive.
pub fn manifest(data: &[u8]) {
    if let Ok(m) = stboot::ospkg::Manifest::parse(data) {
        let _ = m.to_json();
    }
}

/// An OS package archive: open (with the ambiguity checks), the checked manifest,
/// and extraction of what it names under a small limit.
pub fn archive(data: &[u8]) {
    let Ok(mut a) = stboot::ospkg::Archive::open(Cursor::new(data)) else { return };
    if let Ok(m) = a.manifest_checked() {
        let _ = a.extract(&m.kernel, 1 << 20, &mut std::io::sink());
        let _ = a.extract(&m.initramfs, 1 << 20, &mut std::io::sink());
    }
}

struct Pki {
    root_der: Vec<u8>,
}

fn pki() -> &'static Pki {
    static P: OnceLock<Pki> = OnceLock::new();
    P.get_or_init(|| {
        // a fixed key: the target must be deterministic
        let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let v =
            stboot::keys::Validity::from_args(Some("2020-01-01T00:00:00Z"), Some("2040-01-01T00:00:00Z"), 1).unwrap();
        let root_der = stboot::keys::pem_to_der(&stboot::keys::root_certificate(&key, &v).unwrap()).unwrap();
        Pki { root_der }
    })
}

/// A certificate from a descriptor (PEM or DER), judged against a signing root, and
/// PEM files like the trust policy's.
pub fn certificate(data: &[u8]) {
    let _ = stboot::pem::decode(data);
    let _ = stboot::verify::describe_certificate(data);
    let mut d = stboot::ospkg::Descriptor::new("os.zip").unwrap();
    d.certificates.push(data.to_vec());
    d.signatures.push(vec![0u8; 64]);
    let now = 1_800_000_000;
    if let Ok(r) = stboot::verify::verify(
        &d,
        &stboot::digest::Sha256Digest::default(),
        &[pki().root_der.clone()],
        stboot::verify::Threshold::AtLeast(1),
        now,
    ) {
        let _ = r.lines(3);
    }
}

/// The host configuration (initramfs file or EFI variable).
pub fn host_config(data: &[u8]) {
    if let Ok(c) = stboot::config::HostConfig::parse(data) {
        let _ = c.to_json();
        let _ = c.pointer();
        let _ = stboot::fetch::pointer_urls(&c.pointer());
        let _ = stboot::ospkg::initramfs_paths(&c.pointer());
    }
    let _ = stboot::config::host_config::unknown_keys(data);
}

/// `trust_policy.json`.
pub fn trust_policy(data: &[u8]) {
    if let Ok(p) = stboot::config::TrustPolicy::parse(data) {
        let _ = p.to_json();
    }
}

/// The kernel command line and init arguments.
pub fn cmdline(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let o = stboot::config::Options::parse(&text);
    // every duration must be usable as a deadline without overflow
    let now = std::time::Instant::now();
    let _ = now + o.deadline + o.dhcp_timeout + o.stall_timeout;
    let args: Vec<String> = text.split_whitespace().map(String::from).collect();
    let o = stboot::config::Options::from_boot("", &args);
    let _ = now + o.deadline;
}

/// A DHCP reply from the network.
pub fn dhcp(data: &[u8]) {
    if let Ok(m) = stboot::network::dhcp::decode(data) {
        let _ = stboot::network::dhcp::summary(&m);
    }
}

/// IPv6 from the network: the first byte chooses a router advertisement (even) or a
/// DHCPv6 message (odd); the rest is the message.
pub fn ipv6(data: &[u8]) {
    let Some((which, msg)) = data.split_first() else { return };
    if which % 2 == 0 {
        if let Ok(ra) = stboot::network::ipv6::parse_router_advert(msg) {
            let _ = stboot::network::ipv6::describe(&ra);
        }
    } else if let Ok(m) = stboot::network::dhcpv6::decode(msg) {
        let _ = stboot::network::dhcpv6::summary(&m);
    }
}
