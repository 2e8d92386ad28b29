//! `stmgr` end to end, with `openssl` as an independent implementation of keys,
//! certificates and Ed25519 signatures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn stmgr(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stmgr")).current_dir(dir).args(args).output().expect("run stmgr")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let o = stmgr(dir, args);
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "stmgr {args:?} failed:\n{text}");
    text
}

fn fails(dir: &Path, args: &[&str]) -> String {
    let o = stmgr(dir, args);
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(!o.status.success(), "stmgr {args:?} should have failed:\n{text}");
    text
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    let (good, text) = tool(dir, "openssl", args);
    assert!(good, "openssl {args:?} failed:\n{text}");
    text
}

fn policy(dir: &Path, name: &str, threshold: u32, root_files: &[&str]) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(
        p.join("trust_policy.json"),
        format!(r#"{{"ospkg_signature_threshold": {threshold}, "ospkg_fetch_method": "network"}}"#),
    )
    .unwrap();
    let mut roots = String::new();
    for r in root_files {
        roots.push_str(&std::fs::read_to_string(dir.join(r)).unwrap());
    }
    std::fs::write(p.join("ospkg_signing_root.pem"), roots).unwrap();
    p
}

/// A pretend x86 kernel: only the boot protocol's "HdrS" magic at 0x202 is real.
fn pretend_bzimage() -> Vec<u8> {
    let mut k = vec![0x4d; 300_000];
    k[0x202..0x206].copy_from_slice(b"HdrS");
    k
}

/// A package with a pretend kernel and initramfs.
fn package(dir: &Path) {
    std::fs::write(dir.join("vmlinuz"), pretend_bzimage()).unwrap();
    std::fs::write(dir.join("initrd.cpio"), b"initramfs bytes".repeat(1000)).unwrap();
    ok(
        dir,
        &[
            "ospkg",
            "create",
            "-kernel",
            "vmlinuz",
            "-initramfs",
            "initrd.cpio",
            "-cmdline",
            "console=ttyS0 -- -x",
            "-label",
            "test OS",
            "-url",
            "os.zip",
            "-out",
            "os",
        ],
    );
}

#[test]
fn round_trip_threshold_and_tampering() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ok(d, &["keygen", "certificate", "-isCA"]);
    for i in 1..=3 {
        // upstream single-dash and clap double-dash spellings both work
        ok(
            d,
            &[
                "keygen",
                "certificate",
                "--rootCert",
                "rootcert.pem",
                "-rootKey",
                "rootkey.pem",
                &format!("-certOut=leaf{i}.pem"),
                "-keyOut",
                &format!("leaf{i}.key"),
            ],
        );
    }
    package(d);
    let desc: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("os.json")).unwrap()).unwrap();
    assert_eq!(desc["version"], 1);
    assert_eq!(desc["os_pkg_url"], "os.zip");
    assert!(desc["certificates"].is_null() && desc["signatures"].is_null());

    ok(d, &["ospkg", "sign", "-key", "leaf1.key", "-cert", "leaf1.pem", "-ospkg", "os.zip"]);
    ok(d, &["ospkg", "sign", "-key", "leaf2.key", "-cert", "leaf2.pem", "-ospkg", "os"]);
    let e = fails(d, &["ospkg", "sign", "-key", "leaf2.key", "-cert", "leaf2.pem", "-ospkg", "os.json"]);
    assert!(e.contains("certificate has already been used"), "{e}");
    let e = fails(d, &["ospkg", "sign", "-key", "leaf3.key", "-cert", "leaf1.pem", "-ospkg", "os"]);
    assert!(e.contains("does not belong to the certificate"), "{e}");
    assert!(e.contains("-key leaf3.key") && e.contains("-cert leaf1.pem"), "names both files: {e}");

    let desc: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("os.json")).unwrap()).unwrap();
    assert_eq!(desc["signatures"].as_array().unwrap().len(), 2);
    assert!(desc["certificates"][0].as_str().unwrap().starts_with("LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"));

    let tp2 = policy(d, "tp2", 2, &["rootcert.pem"]);
    let out = ok(d, &["ospkg", "verify", "-trustPolicy", tp2.to_str().unwrap(), "-ospkg", "os"]);
    assert!(out.contains("Signatures: 2 found, 2 valid, 2 required"), "{out}");
    assert!(out.contains("signature 0") && out.contains("valid"), "{out}");
    assert!(out.contains("accepted"), "{out}");

    let tp3 = policy(d, "tp3", 3, &["rootcert.pem"]);
    let out = fails(d, &["ospkg", "verify", "-trustPolicy", tp3.to_str().unwrap(), "-ospkg", "os"]);
    assert!(out.contains("Signatures: 2 found, 2 valid, 3 required") && out.contains("REJECTED"), "{out}");

    let out = ok(d, &["ospkg", "verify", "-rootCerts", "rootcert.pem", "-ospkg", "os"]);
    assert!(out.contains("2 valid"), "{out}");

    // one flipped byte in the archive
    let mut zip = std::fs::read(d.join("os.zip")).unwrap();
    let mid = zip.len() / 2;
    zip[mid] ^= 0x01;
    std::fs::write(d.join("os.zip"), &zip).unwrap();
    let out = fails(d, &["ospkg", "verify", "-trustPolicy", tp2.to_str().unwrap(), "-ospkg", "os"]);
    assert!(out.contains("bad signature") && out.contains("0 valid"), "{out}");
}

#[test]
fn wrong_root_is_rejected_with_reason() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ok(d, &["keygen", "certificate", "-isCA", "-certOut", "r1.pem", "-keyOut", "r1.key"]);
    ok(d, &["keygen", "certificate", "-isCA", "-certOut", "r2.pem", "-keyOut", "r2.key"]);
    ok(
        d,
        &[
            "keygen",
            "certificate",
            "-rootCert",
            "r2.pem",
            "-rootKey",
            "r2.key",
            "-certOut",
            "l.pem",
            "-keyOut",
            "l.key",
        ],
    );
    package(d);
    ok(d, &["ospkg", "sign", "-key", "l.key", "-cert", "l.pem", "-ospkg", "os"]);
    let tp = policy(d, "tp", 1, &["r1.pem"]);
    let out = fails(d, &["ospkg", "verify", "-trustPolicy", tp.to_str().unwrap(), "-ospkg", "os"]);
    assert!(out.contains("untrusted certificate") && out.contains("not a configured signing root"), "{out}");
    // both roots in one file: accepted
    let tp = policy(d, "tpboth", 1, &["r1.pem", "r2.pem"]);
    ok(d, &["ospkg", "verify", "-trustPolicy", tp.to_str().unwrap(), "-ospkg", "os"]);
}

#[test]
fn expired_leaf_does_not_count() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ok(d, &["keygen", "certificate", "-isCA"]);
    let past = ["keygen", "certificate", "-validFrom", "2020-01-01T00:00:00Z", "-validUntil", "2021-01-01T00:00:00Z"];
    // refused unless forced: it would be expired when written
    let e = fails(d, &past);
    assert!(e.contains("-validUntil 2021-01-01 has already passed") && e.contains("-force"), "{e}");
    assert!(!d.join("cert.pem").exists(), "a refused certificate was written");
    ok(d, &[&past[..], &["-force"]].concat());
    package(d);
    // signing with it works (upstream's scripts do), but says what it means
    let out = ok(d, &["ospkg", "sign", "-key", "key.pem", "-cert", "cert.pem", "-ospkg", "os"]);
    assert!(
        out.contains("-cert cert.pem: the certificate expired on 2021-01-01: signatures by it do not count"),
        "{out}"
    );
    let out = fails(d, &["ospkg", "verify", "-rootCerts", "rootcert.pem", "-ospkg", "os"]);
    assert!(out.contains("expired at"), "{out}");
    let e = fails(d, &["keygen", "certificate", "-validUntil", "tomorrow"]);
    assert!(e.contains("RFC 3339"), "{e}");
}

#[test]
fn certificates_pass_openssl_checks() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ok(d, &["keygen", "certificate", "-isCA"]);
    ok(d, &["keygen", "certificate"]);
    let root = openssl(d, &["x509", "-in", "rootcert.pem", "-noout", "-text"]);
    assert!(root.contains("CA:TRUE"), "{root}");
    assert!(root.contains("Digital Signature, Certificate Sign"), "{root}");
    assert!(root.contains("ED25519"), "{root}");
    let leaf = openssl(d, &["x509", "-in", "cert.pem", "-noout", "-text"]);
    assert!(!leaf.contains("CA:TRUE") && !leaf.contains("Basic Constraints"), "{leaf}");
    assert!(leaf.contains("Digital Signature") && !leaf.contains("Certificate Sign"), "{leaf}");
    assert!(!leaf.contains("Extended Key Usage"), "{leaf}");
    let v = openssl(d, &["verify", "-trusted", "rootcert.pem", "cert.pem"]);
    assert!(v.contains("cert.pem: OK"), "{v}");
    let key = std::fs::metadata(d.join("key.pem")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
}

#[test]
fn openssl_keys_and_signatures_interoperate() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    // openssl makes the PKI: an Ed25519 root CA and a leaf with codeSigning EKU
    openssl(d, &["genpkey", "-algorithm", "ed25519", "-out", "root.key"]);
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "root.key",
            "-subj",
            "/CN=openssl root",
            "-days",
            "30",
            "-out",
            "root.pem",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,digitalSignature",
        ],
    );
    openssl(d, &["genpkey", "-algorithm", "ed25519", "-out", "leaf.key"]);
    openssl(d, &["req", "-new", "-key", "leaf.key", "-subj", "/CN=openssl leaf", "-out", "leaf.csr"]);
    std::fs::write(d.join("ext.cnf"), "extendedKeyUsage=codeSigning\nkeyUsage=digitalSignature\n").unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "10",
            "-extfile",
            "ext.cnf",
            "-out",
            "leaf.pem",
        ],
    );
    openssl(d, &["genpkey", "-algorithm", "ed25519", "-out", "leaf2.key"]);
    openssl(d, &["req", "-new", "-key", "leaf2.key", "-subj", "/CN=openssl leaf 2", "-out", "leaf2.csr"]);
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "leaf2.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "10",
            "-out",
            "leaf2.pem",
        ],
    );

    package(d);
    // stmgr signs with an openssl key and certificate
    ok(d, &["ospkg", "sign", "-key", "leaf.key", "-cert", "leaf.pem", "-ospkg", "os"]);

    // openssl signs the digest with the second key; the signature is added by hand
    let zip = std::fs::read(d.join("os.zip")).unwrap();
    let digest = stboot::verify::digest(&zip);
    std::fs::write(d.join("digest.bin"), digest.as_bytes()).unwrap();
    openssl(d, &["pkeyutl", "-sign", "-rawin", "-inkey", "leaf2.key", "-in", "digest.bin", "-out", "sig2.bin"]);
    let sig2 = std::fs::read(d.join("sig2.bin")).unwrap();
    assert_eq!(sig2.len(), 64);
    let mut desc = stboot::ospkg::Descriptor::parse(&std::fs::read(d.join("os.json")).unwrap()).unwrap();
    desc.certificates.push(std::fs::read(d.join("leaf2.pem")).unwrap());
    desc.signatures.push(sig2);
    std::fs::write(d.join("os.json"), desc.to_json()).unwrap();

    let tp = policy(d, "tp", 2, &["root.pem"]);
    let out = ok(d, &["ospkg", "verify", "-trustPolicy", tp.to_str().unwrap(), "-ospkg", "os"]);
    assert!(out.contains("2 found, 2 valid, 2 required"), "{out}");

    // and openssl verifies the signature stmgr made
    let desc = stboot::ospkg::Descriptor::parse(&std::fs::read(d.join("os.json")).unwrap()).unwrap();
    std::fs::write(d.join("sig1.bin"), &desc.signatures[0]).unwrap();
    openssl(d, &["pkey", "-in", "leaf.key", "-pubout", "-out", "leaf.pub"]);
    let v = openssl(
        d,
        &["pkeyutl", "-verify", "-rawin", "-pubin", "-inkey", "leaf.pub", "-in", "digest.bin", "-sigfile", "sig1.bin"],
    );
    assert!(v.contains("Signature Verified Successfully"), "{v}");
}

#[test]
fn openssh_key_signs() {
    if Command::new("ssh-keygen").arg("-?").output().is_err() {
        eprintln!("ssh-keygen not installed; skipping");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let st =
        Command::new("ssh-keygen").current_dir(d).args(["-q", "-t", "ed25519", "-N", "", "-f", "id"]).status().unwrap();
    assert!(st.success());
    ok(d, &["keygen", "certificate", "-isCA"]);
    ok(d, &["keygen", "certificate", "-leafKey", "id", "-certOut", "ssh.pem"]);
    package(d);
    ok(d, &["ospkg", "sign", "-key", "id", "-cert", "ssh.pem", "-ospkg", "os"]);
    ok(d, &["ospkg", "verify", "-rootCerts", "rootcert.pem", "-ospkg", "os"]);
}

#[test]
fn config_checks() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let out = ok(d, &["trustpolicy", "check", r#"{"ospkg_signature_threshold":2,"ospkg_fetch_method":"network"}"#]);
    assert_eq!(out, "{\n  \"ospkg_signature_threshold\": 2,\n  \"ospkg_fetch_method\": \"network\"\n}\n");
    let e = fails(d, &["trustpolicy", "check", r#"{"ospkg_signature_threshold":0,"ospkg_fetch_method":"network"}"#]);
    assert!(e.contains("\"ospkg_signature_threshold\": 0 is not allowed"), "{e}");
    // the measurement_pcrs extension: shown with every PCR, or refused naming the field
    let out = ok(
        d,
        &[
            "trustpolicy",
            "check",
            r#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":"network","measurement_pcrs":{"detail":8}}"#,
        ],
    );
    assert!(
        out.contains("\"measurement_pcrs\": {\n    \"detail\": 8,\n    \"authority\": 13,\n    \"identity\": 14\n  }"),
        "{out}"
    );
    let e = fails(
        d,
        &[
            "trustpolicy",
            "check",
            r#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":"network","measurement_pcrs":{"identity":16}}"#,
        ],
    );
    assert!(e.contains("\"measurement_pcrs\": \"identity\": 16 is not allowed, expected a PCR from 8 to 15"), "{e}");

    for f in ["compat-1.txt", "compat-2.txt", "compat-3.txt"] {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/upstream-hostconfigs").join(f),
        )
        .unwrap();
        let json = text.split_once("\n---\n").unwrap().1;
        let out = ok(d, &["hostconfig", "check", json]);
        assert!(out.contains("\"ospkg_pointer\": \"https://USERNAME:PASSWORD@HOSTNAME/os-stable.json\""), "{out}");
    }
    std::fs::write(d.join("h.json"), r#"{"network_mode":"static","ospkg_pointer":"x"}"#).unwrap();
    let e = fails(d, &["hostconfig", "check", "h.json"]);
    assert!(e.contains("\"host_ip\" is missing"), "{e}");
}

/// Package names with dots: only a final .json/.zip is taken off, so two releases
/// never overwrite or sign each other (the first release dropped everything after
/// the first dot).
#[test]
fn dotted_package_names_name_the_right_package() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ok(d, &["keygen", "certificate", "-isCA"]);
    ok(d, &["keygen", "certificate", "-certOut", "leaf.pem", "-keyOut", "leaf.key"]);
    std::fs::write(d.join("vmlinuz"), pretend_bzimage()).unwrap();
    std::fs::write(d.join("initrd.cpio"), b"initramfs".repeat(100)).unwrap();
    let create = |out: &str, label: &str| {
        ok(
            d,
            &[
                "ospkg",
                "create",
                "-kernel",
                "vmlinuz",
                "-initramfs",
                "initrd.cpio",
                "-label",
                label,
                "-url",
                &format!("{out}.zip"),
                "-out",
                out,
            ],
        )
    };
    let out = create("os-2026-11.v1", "v1");
    assert!(out.contains("os-2026-11.v1.zip") && out.contains("os-2026-11.v1.json"), "{out}");
    create("os-2026-11.v2", "v2");
    for f in ["os-2026-11.v1.zip", "os-2026-11.v1.json", "os-2026-11.v2.zip", "os-2026-11.v2.json"] {
        assert!(d.join(f).exists(), "{f}");
    }
    assert!(!d.join("os-2026-11.zip").exists());
    let out = ok(d, &["ospkg", "sign", "-key", "leaf.key", "-cert", "leaf.pem", "-ospkg", "os-2026-11.v2.json"]);
    assert!(out.contains("signed os-2026-11.v2.json"), "{out}");
    let tp = policy(d, "tp", 1, &["rootcert.pem"]);
    let out = ok(d, &["ospkg", "verify", "-trustPolicy", tp.to_str().unwrap(), "-ospkg", "os-2026-11.v2"]);
    assert!(out.contains("accepted") && out.contains("label \"v2\""), "{out}");
    let out = fails(d, &["ospkg", "verify", "-trustPolicy", tp.to_str().unwrap(), "-ospkg", "os-2026-11.v1.zip"]);
    assert!(out.contains("0 valid") && out.contains("REJECTED"), "v1 was never signed: {out}");
}

/// `ospkg verify` exits 0 only for what stboot would boot: with a network trust
/// policy the descriptor must name a .zip URL; the kernel must be a bzImage.
#[test]
fn verify_applies_every_check_stboot_applies() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ok(d, &["keygen", "certificate", "-isCA"]);
    ok(d, &["keygen", "certificate", "-certOut", "leaf.pem", "-keyOut", "leaf.key"]);
    std::fs::write(d.join("vmlinuz"), pretend_bzimage()).unwrap();
    std::fs::write(d.join("vmlinux"), vec![0x7f; 4096]).unwrap();
    std::fs::write(d.join("initrd.cpio"), b"initramfs".repeat(100)).unwrap();
    let tp = policy(d, "tp", 1, &["rootcert.pem"]);
    let make = |name: &str, kernel: &str, url: &str| {
        ok(d, &["ospkg", "create", "-kernel", kernel, "-initramfs", "initrd.cpio", "-url", url, "-out", name]);
        ok(d, &["ospkg", "sign", "-key", "leaf.key", "-cert", "leaf.pem", "-ospkg", name]);
        stmgr(d, &["ospkg", "verify", "-trustPolicy", tp.to_str().unwrap(), "-ospkg", name])
    };
    let text = |o: &Output| String::from_utf8_lossy(&o.stdout).to_string();
    let o = make("good", "vmlinuz", "good.zip");
    assert!(o.status.success(), "{}", text(&o));
    let o = make("nourl", "vmlinuz", "");
    assert!(!o.status.success() && text(&o).contains("\"os_pkg_url\" is empty"), "{}", text(&o));
    let o = make("tar", "vmlinuz", "https://h.example/os.tar");
    assert!(!o.status.success() && text(&o).contains("does not name a .zip"), "{}", text(&o));
    let o = make("elf", "vmlinux", "elf.zip");
    assert!(!o.status.success() && text(&o).contains("not an x86 bzImage"), "{}", text(&o));
    // a valid zip that stboot's one-pass reader of downloads cannot read: the same
    // entries rewritten by Python's zipfile, stored, into a stream it cannot seek
    // (so with data descriptors, whose end a stream cannot find)
    ok(
        d,
        &["ospkg", "create", "-kernel", "vmlinuz", "-initramfs", "initrd.cpio", "-url", "stored.zip", "-out", "stored"],
    );
    let py = r#"
import sys, zipfile, io
class Unseekable(io.RawIOBase):
    def __init__(self, f): self.f = f
    def writable(self): return True
    def write(self, b): return self.f.write(b)
src = zipfile.ZipFile(sys.argv[1])
entries = [(i.filename, src.read(i)) for i in src.infolist() if not i.is_dir()]
with open(sys.argv[1], "wb") as raw:
    with zipfile.ZipFile(Unseekable(raw), "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in entries:
            with z.open(name, "w") as f: f.write(data)
"#;
    let (good, out) = tool(d, "python3", &["-c", py, "stored.zip"]);
    assert!(good, "{out}");
    ok(d, &["ospkg", "sign", "-key", "leaf.key", "-cert", "leaf.pem", "-ospkg", "stored"]);
    let o = stmgr(d, &["ospkg", "verify", "-trustPolicy", tp.to_str().unwrap(), "-ospkg", "stored"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("REJECTED: stored.zip: archive: entry \"boot/vmlinuz\" is stored with a data descriptor"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("rebuild the package with `stmgr ospkg create`"), "{}", text(&o));
    assert!(text(&o).contains("(stboot unpacks a downloaded archive while it arrives)"), "{}", text(&o));
    // the initramfs fetch method reads packages from files, through the directory
    let tpi = d.join("tpi");
    std::fs::create_dir(&tpi).unwrap();
    std::fs::write(
        tpi.join("trust_policy.json"),
        r#"{"ospkg_signature_threshold": 1, "ospkg_fetch_method": "initramfs"}"#,
    )
    .unwrap();
    std::fs::copy(tp.join("ospkg_signing_root.pem"), tpi.join("ospkg_signing_root.pem")).unwrap();
    ok(d, &["ospkg", "verify", "-trustPolicy", tpi.to_str().unwrap(), "-ospkg", "stored"]);
    // without a trust policy the fetch method is unknown: accepted, with a warning
    let out = ok(d, &["ospkg", "verify", "-rootCerts", "rootcert.pem", "-ospkg", "stored"]);
    assert!(
        out.contains("stored with a data descriptor") && out.contains("stboot refuses it when it downloads it"),
        "{out}"
    );
    std::fs::copy(d.join("initrd.cpio"), d.join("sub-initrd")).unwrap();
    std::fs::create_dir(d.join("k")).unwrap();
    std::fs::copy(d.join("vmlinuz"), d.join("k/initrd.cpio")).unwrap();
    let e = fails(d, &["ospkg", "create", "-kernel", "k/initrd.cpio", "-initramfs", "initrd.cpio", "-out", "same"]);
    assert!(e.contains("same file name"), "{e}");
}

/// Every help text fits an 80-column serial console and has examples.
#[test]
fn help_fits_80_columns_everywhere_with_examples() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let paths: &[&[&str]] = &[
        &[],
        &["keygen"],
        &["keygen", "certificate"],
        &["ospkg"],
        &["ospkg", "create"],
        &["ospkg", "sign"],
        &["ospkg", "verify"],
        &["hostconfig", "check"],
        &["trustpolicy", "check"],
        &["initramfs", "build"],
    ];
    for p in paths {
        let mut args: Vec<&str> = p.to_vec();
        args.push("--help");
        let out = ok(d, &args);
        for line in out.lines() {
            assert!(line.chars().count() <= 80, "stmgr {p:?} --help: {} columns: {line:?}", line.chars().count());
        }
        if p.len() == 2 || p.is_empty() {
            assert!(out.contains("Examples:"), "stmgr {p:?} --help has no examples:\n{out}");
        }
    }
}

/// A typo in a flag or subcommand is named as typed, with a suggestion; a value
/// that starts with a dash is still a value.
#[test]
fn unknown_flags_and_subcommands_are_named_with_suggestions() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let e = fails(d, &["ospkg", "create", "-kernel", "k", "-initramfs", "i", "-lable", "x"]);
    assert!(e.contains("'-lable'") && e.contains("'-label'"), "{e}");
    let e = fails(d, &["keygen", "certificate", "-isca"]);
    assert!(e.contains("'-isca'") && e.contains("'-isCA'"), "{e}");
    let e = fails(d, &["ospkg", "creat"]);
    assert!(e.contains("'creat'") && e.contains("'create'"), "{e}");
    let e = fails(d, &["ospkg", "verify", "-loglevel", "d", "-ospkg", "x"]);
    assert!(e.contains("invalid value 'd' for '-loglevel <LEVEL>'"), "{e}");
    assert!(!e.contains("'-l'"), "not read as short flags: {e}");
}

/// `hostconfig check` refuses keys no version of upstream knows, naming them and
/// suggesting the key that was probably meant.
#[test]
fn hostconfig_check_refuses_unknown_keys_with_suggestions() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let e = fails(
        d,
        &[
            "hostconfig",
            "check",
            r#"{"network_mode":"dhcp","ospkg_pointer":"https://h/x.json","netwrk_interfaces":null,"bonding_mod":"","network_interfaces":[{"interface_name":"eth0","mac_adress":"aa:bb:cc:dd:ee:ff"}]}"#,
        ],
    );
    assert!(e.contains("unknown key \"netwrk_interfaces\" (did you mean \"network_interfaces\"?)"), "{e}");
    assert!(e.contains("unknown key \"bonding_mod\" (did you mean \"bonding_mode\"?)"), "{e}");
    assert!(e.contains("network_interfaces[0].\"mac_adress\" (did you mean \"mac_address\"?)"), "{e}");
    // every key some upstream version wrote is fine, in any case
    ok(
        d,
        &[
            "hostconfig",
            "check",
            r#"{"version":1,"Network_Mode":"dhcp","ospkg_pointer":"https://h/x.json","timestamp":1,"bonding":false,"network_interface":"aa:bb:cc:dd:ee:ff"}"#,
        ],
    );
}

/// `hostconfig check` refuses what stboot would skip or refuse: a URL whose scheme
/// is not http(s) or that is not a URL (it accepted `htps://`, which stboot skips),
/// and a misspelt required key is named with the key meant (it said only that
/// `ospkg_pointer` was missing).
#[test]
fn hostconfig_check_refuses_what_stboot_would_skip() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let e = fails(d, &["hostconfig", "check", r#"{"network_mode":"dhcp","ospkg_pointer":"htps://h/x.json"}"#]);
    assert!(
        e.contains("field \"ospkg_pointer\": URL 1: scheme \"htps\" is not http or https")
            && e.contains("stboot skips these"),
        "{e}"
    );
    let e = fails(
        d,
        &["hostconfig", "check", r#"{"network_mode":"dhcp","ospkg_pointer":"https://h/x.json,ftp://h/y.json"}"#],
    );
    assert!(e.contains("URL 2: scheme \"ftp\"") && !e.contains("URL 1"), "{e}");
    let e = fails(d, &["hostconfig", "check", r#"{"network_mode":"dhcp","ospkg_pointr":"https://h/x.json"}"#]);
    assert!(
        e.contains("field \"ospkg_pointer\" is missing")
            && e.contains("unknown key \"ospkg_pointr\" (did you mean \"ospkg_pointer\"?)"),
        "{e}"
    );
    ok(d, &["hostconfig", "check", r#"{"network_mode":"dhcp","ospkg_pointer":"https://h/x.json,http://h/y.json"}"#]);
}

/// `initramfs build` refuses inputs stboot could not use, and says what is wrong.
#[test]
fn initramfs_build_checks_its_inputs() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ok(d, &["keygen", "certificate", "-isCA"]);
    ok(d, &["keygen", "certificate", "-certOut", "leaf.pem", "-keyOut", "leaf.key"]);
    let tp = policy(d, "tp", 1, &["rootcert.pem"]);
    let leaf_tp = policy(d, "leaftp", 1, &["leaf.pem"]);
    std::fs::write(d.join("kernel"), pretend_bzimage()).unwrap();
    std::fs::write(d.join("https.json"), r#"{"network_mode":"dhcp","ospkg_pointer":"https://h/x.json"}"#).unwrap();
    let stmgr_bin = env!("CARGO_BIN_EXE_stmgr"); // dynamically linked: not a valid /init
    let build = |stboot: &str, tpd: &Path, extra: &[&str]| {
        let mut a =
            vec!["initramfs", "build", "-stboot", stboot, "-trustPolicy", tpd.to_str().unwrap(), "-out", "x.cpio"];
        a.extend_from_slice(extra);
        fails(d, &a)
    };
    let e = build("kernel", &tp, &[]);
    assert!(e.contains("this is a Linux kernel"), "{e}");
    let e = build(stmgr_bin, &tp, &[]);
    assert!(e.contains("dynamically linked"), "{e}");
    let e = build("rootcert.pem", &tp, &[]);
    assert!(e.contains("not an ELF executable"), "{e}");
    // the remaining checks need a static stboot: Debian's ldconfig (package
    // libc-bin, always installed) is a static-pie x86-64 program and stands in
    let init = "/sbin/ldconfig";
    assert!(Path::new(init).exists(), "{init} (Debian's libc-bin) is needed as a static stand-in for stboot");
    let e = build(init, &leaf_tp, &[]);
    assert!(e.contains("not a CA certificate"), "{e}");
    let e = build(init, &tp, &["-hostConfig", "https.json"]);
    assert!(e.contains("no tls_roots.pem"), "{e}");
    std::fs::copy(d.join("kernel"), d.join("fake.ko")).unwrap();
    let e = build(init, &tp, &["-module", "fake.ko"]);
    assert!(e.contains("not an x86-64 kernel module"), "{e}");
}

/// An expired signing certificate is reported as expired, with its dates and what to
/// do, not only as "untrusted".
#[test]
fn an_expired_certificate_says_expired_with_dates_and_a_remedy() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ok(d, &["keygen", "certificate", "-isCA", "-validFrom", "2020-01-01T00:00:00Z"]);
    ok(
        d,
        &[
            "keygen",
            "certificate",
            "-certOut",
            "old.pem",
            "-keyOut",
            "old.key",
            "-validFrom",
            "2020-01-01T00:00:00Z",
            "-validUntil",
            "2021-01-01T00:00:00Z",
            "-force",
        ],
    );
    package(d);
    ok(d, &["ospkg", "sign", "-key", "old.key", "-cert", "old.pem", "-ospkg", "os"]);
    let tp = policy(d, "tp", 1, &["rootcert.pem"]);
    let out = fails(d, &["ospkg", "verify", "-trustPolicy", tp.to_str().unwrap(), "-ospkg", "os"]);
    assert!(out.contains("expired at") && out.contains("2021"), "{out}");
    assert!(out.contains("what to do (untrusted certificate):") && out.contains("issue a new one"), "{out}");
}

/// `stmgr uki create -format FORMAT` of ./bzImage and ./initrd to OUT.
/// `bzImage` (a pretend kernel with an EFI stub's MZ header) and `initrd` in `dir`,
/// what [`uki_args`] names; returns the kernel.
fn uki_inputs(dir: &Path, initrd: &[u8]) -> Vec<u8> {
    let mut kernel = pretend_bzimage();
    kernel[..2].copy_from_slice(b"MZ");
    std::fs::write(dir.join("bzImage"), &kernel).unwrap();
    std::fs::write(dir.join("initrd"), initrd).unwrap();
    kernel
}

fn uki_args<'a>(format: &'a str, out: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["uki", "create", "-format", format, "-kernel", "bzImage", "-initramfs", "initrd"];
    v.extend(["-cmdline", "console=ttyS0", "-out", out]);
    v.extend_from_slice(more);
    v
}

/// `stmgr uki create` around Debian's systemd-stub: objdump (binutils, an
/// independent PE reader) sees the sections in upstream's order, and each holds
/// exactly its input. Booting a UKI is the `uki` QEMU scenario.
#[test]
fn uki_create_adds_the_sections_upstream_adds() {
    let stub = Path::new(stboot::uki::DEBIAN_STUB);
    assert!(stub.exists(), "{} is missing: apt-get install systemd-boot-efi (scripts/setup.sh does)", stub.display());
    let d = tempfile::tempdir().unwrap();
    let kernel = uki_inputs(d.path(), b"070701 pretend cpio");
    let out = ok(d.path(), &uki_args("uki", "st", &[]));
    assert!(out.contains("wrote st.uki"), "{out}");
    let uki = std::fs::read(d.path().join("st.uki")).unwrap();
    for (name, want) in [
        (".osrel", stboot::uki::DEFAULT_OSREL.as_bytes()),
        (".cmdline", b"console=ttyS0\n".as_slice()),
        (".initrd", b"070701 pretend cpio".as_slice()),
        (".linux", kernel.as_slice()),
    ] {
        assert_eq!(stboot::uki::section_data(&uki, name).unwrap().unwrap(), want, "section {name}");
    }
    let o = Command::new("objdump").arg("-h").arg(d.path().join("st.uki")).output().expect("run objdump");
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "objdump -h: {table}");
    let names: Vec<&str> = table.lines().filter_map(|l| l.split_whitespace().nth(1)).collect();
    let at = |n: &str| names.iter().position(|x| *x == n).unwrap_or_else(|| panic!("{n} missing:\n{table}"));
    assert!(
        at(".sbat") < at(".osrel")
            && at(".osrel") < at(".cmdline")
            && at(".cmdline") < at(".initrd")
            && at(".initrd") < at(".linux")
    );

    // same inputs, same bytes
    ok(d.path(), &uki_args("uki", "again", &[]));
    assert_eq!(std::fs::read(d.path().join("again.uki")).unwrap(), uki);

    // the ISO, read by xorriso and mtools: its El Torito EFI boot image is a FAT
    // image whose EFI/BOOT/BOOTX64.EFI is the UKI, byte for byte
    ok(d.path(), &uki_args("iso", "st", &[]));
    let run = |cmd: &str, args: &[&str]| {
        let (good, text) = tool(d.path(), cmd, args);
        assert!(good, "{cmd} {args:?}: {text}");
        text
    };
    let report = run("xorriso", &["-indev", "st.iso", "-report_el_torito", "plain"]);
    assert!(
        report.lines().any(|l| l.starts_with("El Torito boot img")
            && l.contains("UEFI")
            && l.contains(" y ")
            && l.contains("none")),
        "{report}"
    );
    assert!(report.contains("El Torito img path :   1  /ESP.IMG"), "{report}");
    run("xorriso", &["-osirrox", "on", "-indev", "st.iso", "-extract", "/ESP.IMG", "esp.img"]);
    run("mcopy", &["-i", "esp.img", "::/EFI/BOOT/BOOTX64.EFI", "from-iso.efi"]);
    assert_eq!(std::fs::read(d.path().join("from-iso.efi")).unwrap(), uki);
    let e = fails(
        d.path(),
        &["uki", "create", "-format", "iso", "-kernel", "bzImage", "-initramfs", "initrd", "-out", "st"],
    );
    assert!(e.contains("st.iso: the ISO exists; pass -force"), "{e}");
    ok(d.path(), &uki_args("iso", "st", &["-force"]));
    // all or nothing: with the ISO refused, the UKI beside it is not replaced either
    // (it said so and exited 1 after writing a new .uki that no longer matched)
    std::fs::write(d.path().join("initrd2"), b"another initramfs").unwrap();
    let (uki_before, iso_before) =
        (std::fs::read(d.path().join("st.uki")).unwrap(), std::fs::read(d.path().join("st.iso")).unwrap());
    let e = fails(
        d.path(),
        &["uki", "create", "-format", "uki,iso", "-kernel", "bzImage", "-initramfs", "initrd2", "-out", "st"],
    );
    assert!(e.contains("st.iso: the ISO exists; pass -force to replace it (nothing was written)"), "{e}");
    assert_eq!(std::fs::read(d.path().join("st.uki")).unwrap(), uki_before, "the .uki was replaced");
    assert_eq!(std::fs::read(d.path().join("st.iso")).unwrap(), iso_before);
    let out = ok(
        d.path(),
        &["uki", "create", "-format", "uki,iso", "-kernel", "bzImage", "-initramfs", "initrd2", "-out", "st", "-force"],
    );
    assert!(out.contains("wrote st.uki") && out.contains("wrote st.iso"), "{out}");
    assert_ne!(std::fs::read(d.path().join("st.uki")).unwrap(), uki_before);
    assert!(!d.path().join("st.uki.partial").exists() && !d.path().join("st.iso.partial").exists());

    // bad input: named, with a remedy
    let e = fails(d.path(), &["uki", "create", "-format", "uki", "-kernel", "initrd", "-initramfs", "initrd"]);
    assert!(e.contains("-kernel initrd: not an EFI program") && e.contains("CONFIG_EFI_STUB"), "{e}");
    let e = fails(
        d.path(),
        &["uki", "create", "-format", "uki", "-kernel", "bzImage", "-initramfs", "initrd", "-stub", "st.uki"],
    );
    assert!(e.contains("already has a .osrel section") && e.contains("-stub"), "{e}");
    let e = fails(d.path(), &["uki", "create", "-format", "tar", "-kernel", "bzImage", "-initramfs", "initrd"]);
    assert!(e.contains("-format \"tar\""), "{e}");
    let e = fails(
        d.path(),
        &["uki", "create", "-format", "uki", "-kernel", "bzImage", "-initramfs", "initrd", "-signkey", "k"],
    );
    assert!(e.contains("both -signcert and -signkey"), "{e}");
}

/// Runs a helper tool in `dir`; returns (success, stdout and stderr).
fn tool(dir: &Path, cmd: &str, args: &[&str]) -> (bool, String) {
    let o = Command::new(cmd)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {cmd} (scripts/setup.sh installs it): {e}"));
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

/// `-signkey -signcert`: sbsigntool's sbverify accepts the signature with the
/// signing certificate and refuses it with another; sbsign, signing the same
/// unsigned UKI, signs the same Authenticode digest (so both agree on which bytes
/// count); signing is deterministic; `uki to-iso` carries the signed UKI unchanged.
/// That OVMF with Secure Boot enforced boots it (and refuses others) is the
/// `secureboot` QEMU scenario.
#[test]
fn uki_secure_boot_signature_is_accepted_by_sbverify_and_matches_sbsign() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    uki_inputs(p, b"070701 pretend cpio");
    for (name, bits) in [("db", "2048"), ("other", "3072")] {
        let key = format!("rsa:{bits}");
        openssl(
            p,
            &["req", "-new", "-x509", "-newkey", &key, "-nodes", "-days", "30", "-subj", &format!("/CN={name}/")]
                .into_iter()
                .chain(["-keyout", &format!("{name}.key"), "-out", &format!("{name}.crt")])
                .collect::<Vec<_>>(),
        );
    }
    let out = ok(p, &uki_args("uki", "signed", &["-signkey", "db.key", "-signcert", "db.crt"]));
    assert!(out.contains("wrote signed.uki") && out.contains("Secure Boot signed"), "{out}");
    let (good, text) = tool(p, "sbverify", &["--cert", "db.crt", "signed.uki"]);
    assert!(good && text.contains("Signature verification OK"), "{text}");
    let (good, text) = tool(p, "sbverify", &["--cert", "other.crt", "signed.uki"]);
    assert!(!good && text.contains("Signature verification failed"), "{text}");

    // sbsign over the unsigned UKI signs the same digest
    ok(p, &uki_args("uki", "plain", &[]));
    let (good, text) =
        tool(p, "sbsign", &["--key", "db.key", "--cert", "db.crt", "--output", "sbsigned.uki", "plain.uki"]);
    assert!(good, "{text}");
    let ours = std::fs::read(p.join("signed.uki")).unwrap();
    let theirs = std::fs::read(p.join("sbsigned.uki")).unwrap();
    let our = stboot::secureboot::signatures(&ours).unwrap().remove(0);
    let their = stboot::secureboot::signatures(&theirs).unwrap().remove(0);
    assert_eq!(our.digest, their.digest, "stmgr and sbsign sign different Authenticode digests");
    assert_eq!(our.digest, stboot::secureboot::digest(&ours).unwrap(), "the signed digest is not the image's");
    assert_eq!(our.certificates, their.certificates, "the signing certificate is not in the signature");
    // the signature does not change the sections
    let plain = std::fs::read(p.join("plain.uki")).unwrap();
    assert_eq!(
        stboot::uki::section_data(&ours, ".linux").unwrap(),
        stboot::uki::section_data(&plain, ".linux").unwrap()
    );

    let signer = stboot::secureboot::Signer::from_pem(
        &std::fs::read(p.join("db.key")).unwrap(),
        &std::fs::read(p.join("db.crt")).unwrap(),
    )
    .unwrap();
    let e = signer.sign(&ours).unwrap_err().to_string();
    assert!(e.contains("already signed"), "{e}");

    // deterministic: no signing time
    ok(p, &uki_args("uki", "again", &["-signkey", "db.key", "-signcert", "db.crt"]));
    assert_eq!(std::fs::read(p.join("again.uki")).unwrap(), ours);

    // to-iso: the default name drops .uki, the UKI goes in unchanged, and an existing
    // ISO is not overwritten
    let out = ok(p, &["uki", "to-iso", "-in", "signed.uki"]);
    assert!(out.contains("wrote signed.iso"), "{out}");
    assert!(tool(p, "xorriso", &["-osirrox", "on", "-indev", "signed.iso", "-extract", "/ESP.IMG", "esp.img"]).0);
    assert!(tool(p, "mcopy", &["-i", "esp.img", "::/EFI/BOOT/BOOTX64.EFI", "from-iso.efi"]).0);
    assert_eq!(std::fs::read(p.join("from-iso.efi")).unwrap(), ours);
    let e = fails(p, &["uki", "to-iso", "-in", "signed.uki"]);
    assert!(e.contains("signed.iso: the ISO exists; remove it first"), "{e}");
    ok(p, &["uki", "to-iso", "-in", "signed.uki", "-out", "other.iso"]);
    let e = fails(p, &["uki", "to-iso", "-in", "initrd"]);
    assert!(e.contains("-in initrd: not a UKI"), "{e}");
    let e = fails(p, &["uki", "to-iso"]);
    assert!(e.contains("-in"), "{e}");

    // bad keys: named, with what was expected
    let mismatch = ["-signkey", "other.key", "-signcert", "db.crt"];
    let e = fails(p, &uki_args("uki", "x", &mismatch));
    assert!(e.contains("-signkey other.key -signcert db.crt") && e.contains("do not belong together"), "{e}");
    ok(p, &["keygen", "certificate", "-isCA", "-certOut", "ed.pem", "-keyOut", "ed.key"]);
    let e = fails(p, &uki_args("uki", "x", &["-signkey", "ed.key", "-signcert", "ed.pem"]));
    assert!(e.contains("-signkey ed.key") && e.contains("Secure Boot needs RSA"), "{e}");
    let e = fails(p, &uki_args("uki", "x", &["-signkey", "db.crt", "-signcert", "db.crt"]));
    assert!(e.contains("\"CERTIFICATE\" PEM block; expected an RSA private key"), "{e}");
    assert!(!p.join("x.uki").exists(), "a UKI was written although signing failed");
}

/// `-sbat FILE` replaces the stub's .sbat section and `-append-sbat` adds to it, as
/// objcopy (binutils) reads the result: one .sbat, after .linux, with the expected
/// lines; bad lines are named.
#[test]
fn uki_sbat_replaces_or_extends_the_stubs_sbat() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let kernel = uki_inputs(p, b"070701 pretend cpio");
    let line = "stboot,1,System Transparency,stboot,0.1,https://system-transparency.org\n";
    std::fs::write(p.join("add.csv"), line).unwrap();
    std::fs::write(p.join("new.csv"), format!("{}\n{line}", stboot::uki::SBAT_HEADER)).unwrap();
    let stub = std::fs::read(stboot::uki::DEBIAN_STUB).unwrap();
    let stub_sbat = stboot::uki::section_data(&stub, ".sbat").unwrap().expect("Debian's stub has .sbat").to_vec();
    let stub_sbat = String::from_utf8(stub_sbat).unwrap().trim_end_matches('\0').to_string();
    assert!(stub_sbat.starts_with("sbat,1,"), "{stub_sbat}");

    let sbat_of = |name: &str| {
        let (good, text) = tool(p, "objdump", &["-h", name]);
        assert!(good, "{text}");
        let names: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().nth(1)).collect();
        assert_eq!(names.iter().filter(|n| **n == ".sbat").count(), 1, "{text}");
        assert_eq!(names.iter().rev().find(|n| n.starts_with('.')), Some(&".sbat"), "{text}");
        let (good, text) = tool(p, "objcopy", &["-O", "binary", "--only-section=.sbat", name, "sbat.bin"]);
        assert!(good, "{text}");
        String::from_utf8(std::fs::read(p.join("sbat.bin")).unwrap()).unwrap()
    };
    ok(p, &uki_args("uki", "replaced", &["-sbat", "new.csv"]));
    assert_eq!(sbat_of("replaced.uki"), format!("{}\n{line}", stboot::uki::SBAT_HEADER));
    ok(p, &uki_args("uki", "appended", &["-sbat", "add.csv", "-append-sbat"]));
    assert_eq!(sbat_of("appended.uki"), format!("{stub_sbat}{line}"));
    // the other sections are untouched
    let uki = std::fs::read(p.join("appended.uki")).unwrap();
    assert_eq!(stboot::uki::section_data(&uki, ".linux").unwrap().unwrap(), kernel.as_slice());

    let e = fails(p, &uki_args("uki", "x", &["-sbat", "add.csv"]));
    assert!(e.contains("-sbat add.csv: line 1: the first line must be the SBAT header"), "{e}");
    let e = fails(p, &uki_args("uki", "x", &["-sbat", "new.csv", "-append-sbat"]));
    assert!(e.contains("-sbat new.csv: line 1: the stub's SBAT already has the sbat header"), "{e}");
    let e = fails(p, &uki_args("uki", "x", &["-append-sbat"]));
    assert!(e.contains("-append-sbat: give the SBAT lines to add with -sbat FILE"), "{e}");
}

/// Runs integration-tests/sigsum-log.py (an independent Sigsum log and witnesses)
/// in `dir`: logs FILE submitted with KEY, writes PROOF; `more` are its options.
fn sigsum_log(dir: &Path, state: &str, file: &str, key: &str, proof: &str, more: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("integration-tests/sigsum-log.py");
    let (good, text) = tool(dir, "python3", &[&[script.to_str().unwrap(), state, file, key, proof][..], more].concat());
    assert!(good, "sigsum-log.py {more:?}: {text} (scripts/setup.sh installs python3-cryptography)");
}

/// Sigsum proofs made by an independent log (integration-tests/sigsum-log.py) count
/// toward the threshold only when they verify under the trust policy's Sigsum
/// policy, and each failure names the check that failed.
#[test]
fn sigsum_proofs_count_only_when_log_witnesses_and_inclusion_check_out() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ok(d, &["keygen", "certificate", "-isCA"]);
    for n in ["plain", "sigsum", "other"] {
        ok(d, &["keygen", "certificate", "-certOut", &format!("{n}.pem"), "-keyOut", &format!("{n}.key")]);
    }
    package(d);
    std::fs::write(d.join("another.zip"), b"another archive").unwrap();
    ok(d, &["ospkg", "sign", "-key", "plain.key", "-cert", "plain.pem", "-ospkg", "os"]);
    let tp = policy(d, "tp", 2, &["rootcert.pem"]);
    let policy_file = tp.join("ospkg_trust_policy");
    sigsum_log(d, "log", "os.zip", "sigsum.key", "good.proof", &["--policy-out", policy_file.to_str().unwrap()]);

    // stmgr ospkg sigsum attaches it verbatim; with the proof the threshold of 2 is met
    let unsigned = std::fs::read(d.join("os.json")).unwrap();
    let out = ok(d, &["ospkg", "sigsum", "-proof", "good.proof", "-cert", "sigsum.pem", "-ospkg", "os"]);
    assert!(out.contains("attached the Sigsum proof to os.json"), "{out}");
    let (desc, _) = stboot::ospkg::read_descriptor(&d.join("os.json")).unwrap();
    assert_eq!(desc.signatures[1], std::fs::read(d.join("good.proof")).unwrap());
    let out = ok(d, &["ospkg", "verify", "-trustPolicy", "tp", "-ospkg", "os"]);
    assert!(out.contains("signature 0 (signature by CN=") && out.contains("): valid"), "{out}");
    assert!(
        out.contains("signature 1 (Sigsum proof by CN=") && out.contains("3 of 3 cosignatures by policy witnesses"),
        "{out}"
    );
    assert!(out.contains("(http://log.invalid)") && out.contains("Signatures: 2 found, 2 valid, 2 required"), "{out}");

    // without the Sigsum policy the proof does not count, and the output says why
    std::fs::rename(&policy_file, d.join("policy.saved")).unwrap();
    let out = fails(d, &["ospkg", "verify", "-trustPolicy", "tp", "-ospkg", "os"]);
    assert!(out.contains("the trust policy has no Sigsum policy (ospkg_trust_policy)"), "{out}");
    assert!(
        out.contains("Signatures: 2 found, 1 valid, 2 required") && out.contains("what to do (bad Sigsum proof)"),
        "{out}"
    );
    std::fs::rename(d.join("policy.saved"), &policy_file).unwrap();
    // -rootCerts has no Sigsum policy either (as upstream)
    let out = fails(d, &["ospkg", "verify", "-rootCerts", "rootcert.pem", "-ospkg", "os"]);
    assert!(out.contains("no Sigsum policy"), "{out}");

    // stmgr ospkg sigsum checks the leaf before it attaches anything
    std::fs::write(d.join("os.json"), &unsigned).unwrap();
    let e = fails(d, &["ospkg", "sigsum", "-proof", "good.proof", "-cert", "other.pem", "-ospkg", "os"]);
    assert!(e.contains("leaf was signed by another key than the certificate's"), "{e}");
    sigsum_log(d, "log", "another.zip", "sigsum.key", "another.proof", &[]);
    let e = fails(d, &["ospkg", "sigsum", "-proof", "another.proof", "-cert", "sigsum.pem", "-ospkg", "os"]);
    assert!(e.contains("does not verify for this archive"), "{e}");
    let e = fails(d, &["ospkg", "sigsum", "-proof", "os.zip", "-cert", "sigsum.pem", "-ospkg", "os"]);
    assert!(e.contains("not a Sigsum proof"), "{e}");
    assert_eq!(std::fs::read(d.join("os.json")).unwrap(), unsigned, "a refused proof changed the descriptor");

    // each check, through the library stboot uses (proof for os.zip by sigsum.key)
    let digest = stboot::verify::digest(&std::fs::read(d.join("os.zip")).unwrap());
    let key =
        stboot::keys::certificate_ed25519_key(&stboot::keys::load_certificate(&d.join("sigsum.pem")).unwrap()).unwrap();
    let pol = stboot::verify::sigsum::parse_policy(&std::fs::read(&policy_file).unwrap(), "policy").unwrap();
    let check = |proof: &str| {
        stboot::verify::sigsum::check(&std::fs::read(d.join(proof)).unwrap(), digest.as_bytes(), &key, Some(&pol))
    };
    let cases: &[(&str, &[&str], Option<&str>)] = &[
        ("size1", &["--size", "1"], None),
        ("v1", &["--version", "1"], None),
        ("v1-size1", &["--version", "1", "--size", "1"], None),
        ("first-leaf", &["--size", "9", "--index", "0"], None),
        ("quorum-met", &["--cosign", "2"], None),
        ("quorum-not-met", &["--cosign", "1"], Some("quorum is not met: 1 of 1 cosignatures are by policy witnesses")),
        ("no-cosignatures", &["--cosign", "0"], Some("quorum is not met: 0 of 0")),
        ("wrong-root", &["--tamper", "root"], Some("the tree head is not signed by log")),
        ("signed-wrong-root", &["--tamper", "signed-root"], Some("inclusion proof does not lead from this leaf")),
        ("bad-path", &["--tamper", "path"], Some("inclusion proof does not lead from this leaf")),
        ("leaf-other-key", &["--tamper", "leafsig"], Some("leaf signature does not verify for this archive")),
        // as sigsum-go: a cosignature that does not verify is not counted, the rest may do
        ("bad-cosignature", &["--tamper", "cosig"], None),
        (
            "bad-cosignature-no-quorum",
            &["--tamper", "cosig", "--cosign", "2"],
            Some("quorum is not met: 2 of 2 cosignatures are by policy witnesses, 1 of them did not verify"),
        ),
    ];
    for (name, opts, want) in cases {
        sigsum_log(d, "log", "os.zip", "sigsum.key", name, opts);
        match (check(name), want) {
            (Ok(s), None) => {
                assert_eq!(s.version, if name.starts_with("v1") { 1 } else { 2 }, "{name}");
                assert_eq!(s.failed, usize::from(*name == "bad-cosignature"), "{name}: {s}");
            }
            (Err(e), Some(w)) => assert!(e.contains(w), "{name}: {e}"),
            (got, want) => panic!("{name}: got {got:?}, wanted {want:?}"),
        }
    }
    // a log the policy does not name; a proof for another archive (v1: its short checksum)
    sigsum_log(d, "otherlog", "os.zip", "sigsum.key", "unknown-log", &[]);
    assert!(check("unknown-log").unwrap_err().contains("is not a log of the Sigsum policy"));
    sigsum_log(d, "log", "another.zip", "sigsum.key", "another-v1", &["--version", "1"]);
    assert!(check("another-v1").unwrap_err().contains("a proof for another archive"));
    assert!(check("another.proof").unwrap_err().contains("does not verify for this archive"));
    // the proof's signer, checked against another certificate's key
    let other =
        stboot::keys::certificate_ed25519_key(&stboot::keys::load_certificate(&d.join("other.pem")).unwrap()).unwrap();
    let e = stboot::verify::sigsum::check(
        &std::fs::read(d.join("good.proof")).unwrap(),
        digest.as_bytes(),
        &other,
        Some(&pol),
    )
    .unwrap_err();
    assert!(e.contains("leaf was signed by another key"), "{e}");

    // a key counts once: a plain signature and a proof by the same key are one signer
    ok(d, &["ospkg", "sign", "-key", "sigsum.key", "-cert", "sigsum.pem", "-ospkg", "os"]);
    let (mut desc, _) = stboot::ospkg::read_descriptor(&d.join("os.json")).unwrap();
    desc.signatures.push(std::fs::read(d.join("good.proof")).unwrap());
    desc.certificates.push(desc.certificates[1].clone());
    let roots = stboot::config::trust_policy::read_certs(&d.join("rootcert.pem")).unwrap();
    let anchors = stboot::verify::Anchors { sigsum_policy: Some(&pol), ..stboot::verify::Anchors::from(&roots) };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let r = stboot::verify::verify(&desc, &digest, anchors, stboot::verify::Threshold::AtLeast(3), now).unwrap();
    assert_eq!((r.found, r.valid, r.accepted()), (3, 2, false), "{r}");
    assert!(
        r.to_string().contains("signature 2 (Sigsum proof by")
            && r.to_string().contains("same signing key as signature 1"),
        "{r}"
    );

    // a policy that does not parse is named, with its line
    std::fs::write(&policy_file, "log nothex\nquorum none\n").unwrap();
    let e = fails(d, &["ospkg", "verify", "-trustPolicy", "tp", "-ospkg", "os"]);
    assert!(e.contains("ospkg_trust_policy: line 1") && e.contains("expected Sigsum policy lines"), "{e}");
}

/// The private keys stmgr writes are PKCS#8 version 1 (private key only), as
/// upstream's Go stmgr and `openssl genpkey` write them, so OpenSSL 3.0 (and
/// Python's cryptography, which the Sigsum test log uses) read them; they were
/// version 2 before, which OpenSSL 3.0 refuses.
#[test]
fn written_keys_are_pkcs8_v1_that_openssl_reads() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ok(d, &["keygen", "certificate", "-isCA"]);
    ok(d, &["keygen", "certificate", "-certOut", "leaf.pem", "-keyOut", "leaf.key"]);
    for key in ["rootkey.pem", "leaf.key"] {
        let text = openssl(d, &["pkey", "-in", key, "-noout", "-text"]);
        assert!(text.contains("ED25519 Private-Key"), "{text}");
        let asn1 = openssl(d, &["asn1parse", "-in", key]);
        assert!(asn1.contains("INTEGER           :00") && !asn1.contains("cont [ 1 ]"), "{asn1}");
    }
    // and the public key openssl derives is the certificate's
    let from_key = openssl(d, &["pkey", "-in", "leaf.key", "-pubout"]);
    let from_cert = openssl(d, &["x509", "-in", "leaf.pem", "-noout", "-pubkey"]);
    assert_eq!(from_key, from_cert);
}

/// `keygen certificate -leafKey` takes a public key, as upstream: OpenSSH (what
/// ssh-keygen and sigsum-key write) or PEM; a private key still works. The
/// certificate certifies exactly that key, and signatures by its private half count.
#[test]
fn leaf_key_may_be_a_public_key() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ok(d, &["keygen", "certificate", "-isCA"]);
    let (good, text) = tool(d, "ssh-keygen", &["-q", "-t", "ed25519", "-N", "", "-C", "signer", "-f", "ssh.key"]);
    assert!(good, "{text}");
    openssl(d, &["genpkey", "-algorithm", "ed25519", "-out", "ossl.key"]);
    openssl(d, &["pkey", "-in", "ossl.key", "-pubout", "-out", "ossl.pub"]);
    package(d);
    for (leaf, private) in [("ssh.key.pub", "ssh.key"), ("ossl.pub", "ossl.key"), ("ossl.key", "ossl.key")] {
        let cert = format!("{leaf}.pem");
        let out = ok(d, &["keygen", "certificate", "-leafKey", leaf, "-certOut", &cert]);
        assert!(!d.join("key.pem").exists(), "a key was written for an existing -leafKey: {out}");
        let der = stboot::keys::load_certificate(&d.join(&cert)).unwrap();
        let want = stboot::keys::load_signing_key(&d.join(private)).unwrap().verifying_key();
        assert_eq!(stboot::keys::certificate_ed25519_key(&der), Some(*want.as_bytes()), "{leaf}");
    }
    ok(d, &["ospkg", "sign", "-key", "ssh.key", "-cert", "ssh.key.pub.pem", "-ospkg", "os"]);
    ok(d, &["ospkg", "sign", "-key", "ossl.key", "-cert", "ossl.pub.pem", "-ospkg", "os"]);
    let tp = policy(d, "tp", 2, &["rootcert.pem"]);
    let out = ok(d, &["ospkg", "verify", "-trustPolicy", tp.to_str().unwrap(), "-ospkg", "os"]);
    assert!(out.contains("Signatures: 2 found, 2 valid, 2 required"), "{out}");
    // not a key: named, with what was expected
    let e = fails(d, &["keygen", "certificate", "-leafKey", "os.json", "-certOut", "x.pem"]);
    assert!(e.contains("-leafKey os.json") && e.contains("expected an Ed25519 public key"), "{e}");
    let (good, text) = tool(d, "ssh-keygen", &["-q", "-t", "ecdsa", "-N", "", "-f", "ec.key"]);
    assert!(good, "{text}");
    let e = fails(d, &["keygen", "certificate", "-leafKey", "ec.key.pub", "-certOut", "x.pem"]);
    assert!(e.contains("expected ssh-ed25519"), "{e}");
}

/// `-loglevel` (upstream has it on every subcommand) is accepted anywhere after
/// `stmgr`; from warn up the "wrote" lines go, results stay; a bad level is named.
#[test]
fn loglevel_is_accepted_and_quietens_informational_lines() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let out = ok(d, &["keygen", "certificate", "-isCA", "-loglevel", "error"]);
    assert!(out.trim().is_empty(), "{out}");
    let out = ok(d, &["keygen", "certificate", "-loglevel", "debug", "-certOut", "l.pem", "-keyOut", "l.key"]);
    assert!(out.contains("wrote l.pem"), "{out}");
    std::fs::write(d.join("vmlinuz"), pretend_bzimage()).unwrap();
    std::fs::write(d.join("initrd"), b"initrd").unwrap();
    let out =
        ok(d, &["ospkg", "create", "-loglevel", "warn", "-kernel", "vmlinuz", "-initramfs", "initrd", "-out", "os"]);
    assert!(!out.contains("wrote"), "{out}");
    let out = ok(d, &["ospkg", "sign", "-loglevel", "info", "-key", "l.key", "-cert", "l.pem", "-ospkg", "os"]);
    assert!(out.contains("signed os.json"), "{out}");
    let out = ok(d, &["-loglevel", "panic", "ospkg", "verify", "-rootCerts", "rootcert.pem", "-ospkg", "os"]);
    assert!(out.contains("Signatures: 1 found, 1 valid"), "results are always printed: {out}");
    let e = fails(d, &["hostconfig", "check", "-loglevel", "loud", "{}"]);
    assert!(e.contains("'loud'") && e.contains("debug, info, warn, error, panic"), "{e}");
}

/// As upstream: `-rootKey` and `ospkg sign -key` may be public keys whose private
/// halves ssh-agent holds (a real ssh-agent, started for the test). The root
/// certificate, a leaf issued by it and a package signature made through the agent
/// verify; without the agent, or with a key it does not hold, the error says what to do.
#[test]
fn root_and_signing_keys_may_live_in_ssh_agent() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    for n in ["root", "signer"] {
        let (good, text) = tool(d, "ssh-keygen", &["-q", "-t", "ed25519", "-N", "", "-C", n, "-f", n]);
        assert!(good, "{text}");
    }
    let sock = d.join("agent.sock");
    let agent = Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("run ssh-agent (openssh-client; scripts/setup.sh installs it)");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _agent = Kill(agent);
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let with_agent = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_stmgr"))
            .current_dir(d)
            .env("SSH_AUTH_SOCK", &sock)
            .args(args)
            .output()
            .unwrap()
    };
    let add =
        Command::new("ssh-add").current_dir(d).env("SSH_AUTH_SOCK", &sock).args(["-q", "root", "signer"]).output();
    assert!(add.as_ref().is_ok_and(|o| o.status.success()), "ssh-add: {add:?}");
    // the private key files are gone: only the agent can sign
    std::fs::rename(d.join("root"), d.join("root.gone")).unwrap();
    std::fs::rename(d.join("signer"), d.join("signer.gone")).unwrap();

    let o = with_agent(&["keygen", "certificate", "-isCA", "-rootKey", "root.pub", "-certOut", "rootcert.pem"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = with_agent(&[
        "keygen",
        "certificate",
        "-rootCert",
        "rootcert.pem",
        "-rootKey",
        "root.pub",
        "-leafKey",
        "signer.pub",
        "-certOut",
        "signer.pem",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    package(d);
    let o = with_agent(&["ospkg", "sign", "-key", "signer.pub", "-cert", "signer.pem", "-ospkg", "os"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // openssl agrees the root is self-signed by the root key and issued the leaf
    let text = openssl(d, &["verify", "-CAfile", "rootcert.pem", "signer.pem"]);
    assert!(text.contains("signer.pem: OK"), "{text}");
    let tp = policy(d, "tp", 1, &["rootcert.pem"]);
    let out = ok(d, &["ospkg", "verify", "-trustPolicy", tp.to_str().unwrap(), "-ospkg", "os"]);
    assert!(out.contains("Signatures: 1 found, 1 valid, 1 required"), "{out}");

    // without SSH_AUTH_SOCK, or with a key the agent does not hold
    let o = Command::new(env!("CARGO_BIN_EXE_stmgr"))
        .current_dir(d)
        .env_remove("SSH_AUTH_SOCK")
        .args(["ospkg", "sign", "-key", "signer.pub", "-cert", "signer.pem", "-ospkg", "os"])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("-key signer.pub") && e.contains("SSH_AUTH_SOCK is not set"), "{e}");
    let (good, text) = tool(d, "ssh-keygen", &["-q", "-t", "ed25519", "-N", "", "-f", "stranger"]);
    assert!(good, "{text}");
    let o = with_agent(&["keygen", "certificate", "-isCA", "-rootKey", "stranger.pub", "-certOut", "x.pem"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("does not hold this key's private half: ssh-add it"), "{e}");
}

/// `stmgr tpm predict` gives the PCRs that integration-tests/expected-pcrs.py (an
/// independent computation of upstream's layout) gives, with and without a UX
/// identity and a Sigsum policy; a package that would not boot has no prediction.
#[test]
fn tpm_predict_matches_an_independent_computation() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ok(d, &["keygen", "certificate", "-isCA"]);
    ok(
        d,
        &[
            "keygen",
            "certificate",
            "-rootCert",
            "rootcert.pem",
            "-rootKey",
            "rootkey.pem",
            "-certOut",
            "l.pem",
            "-keyOut",
            "l.key",
        ],
    );
    package(d);
    ok(d, &["ospkg", "sign", "-key", "l.key", "-cert", "l.pem", "-ospkg", "os"]);
    let tp = policy(d, "tp", 1, &["rootcert.pem"]);
    std::fs::copy(d.join("rootcert.pem"), tp.join("tls_roots.pem")).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("integration-tests/expected-pcrs.py");
    let expected = |extra: &[&Path]| {
        let o = Command::new("python3").arg(&script).arg(d.join("os")).arg(&tp).args(extra).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // "pcr12=.. pcr13=.. pcr14=.." -> "PCR12=..\nPCR13=..\nPCR14=..\n"
        String::from_utf8(o.stdout)
            .unwrap()
            .split_whitespace()
            .map(|w| w.replace("pcr", "PCR") + "\n")
            .collect::<String>()
    };
    let predict = |more: &[&str]| {
        let tps = tp.to_str().unwrap();
        let mut args = vec!["tpm", "predict", "-trustPolicy", tps, "-ospkg", "os"];
        args.extend_from_slice(more);
        ok(d, &args)
    };
    assert_eq!(predict(&[]), expected(&[]));
    std::fs::write(d.join("id"), b"rack-7").unwrap();
    assert_eq!(predict(&["-identity", "rack-7"]), expected(&[&d.join("id")]));
    assert_ne!(predict(&["-identity", "rack-7"]), predict(&[]));
    std::fs::write(tp.join("ospkg_trust_policy"), "quorum none\n").unwrap();
    assert_eq!(predict(&[]), expected(&[]), "the Sigsum policy is measured into PCR 13");
    // the event log of the prediction replays to the same PCRs, listing upstream's
    // event types and data
    let lines = predict(&["-identity", "rack-7", "-eventlog", "log.bin", "-loglevel", "warn"]);
    let replayed = ok(d, &["tpm", "replay", "log.bin"]);
    let pcr_lines: String = replayed.lines().filter(|l| l.starts_with("PCR")).map(|l| format!("{l}\n")).collect();
    assert_eq!(pcr_lines, lines);
    for want in [
        "event 0: PCR 12 OS package archive",
        "data=\"OS package from initramfs\"",
        "event 2: PCR 13 trust policy",
        "data=\"{\\\"ospkg_signature_threshold\\\":1,",
        "PCR 13 Sigsum policy",
        "PCR 14 UX identity sha256=",
        "data=\"rack-7\"",
    ] {
        assert!(replayed.contains(want), "missing {want:?}:\n{replayed}");
    }
    let e = fails(d, &["tpm", "replay", "os.json"]);
    assert!(e.contains("os.json") && e.contains("event log"), "{e}");
    // other PCRs chosen in the trust policy: the prediction moves with them, the
    // policy measured includes the choice, and PCRs 12-14 are not touched
    let json = std::fs::read_to_string(tp.join("trust_policy.json")).unwrap();
    let chosen = json.replace('}', r#", "measurement_pcrs": {"detail": 8, "authority": 9, "identity": 15}}"#);
    std::fs::write(tp.join("trust_policy.json"), chosen).unwrap();
    let moved = predict(&["-identity", "rack-7"]);
    assert_eq!(moved, expected(&[&d.join("id")]));
    let names: Vec<&str> = moved.lines().map(|l| l.split('=').next().unwrap()).collect();
    assert_eq!(names, ["PCR8", "PCR9", "PCR15"], "{moved}");
    let value = |text: &str, pcr: &str| {
        text.lines().find(|l| l.starts_with(pcr)).unwrap().split('=').nth(1).unwrap().to_owned()
    };
    // the package and the identity measure the same wherever they go; the policy not
    assert_eq!(value(&moved, "PCR8="), value(&lines, "PCR12="));
    assert_eq!(value(&moved, "PCR15="), value(&lines, "PCR14="));
    assert_ne!(value(&moved, "PCR9="), value(&lines, "PCR13="));
    // threshold 2 with one signer: stboot would not boot it
    let tp2 = policy(d, "tp2", 2, &["rootcert.pem"]);
    let e = fails(d, &["tpm", "predict", "-trustPolicy", tp2.to_str().unwrap(), "-ospkg", "os"]);
    assert!(e.contains("stboot would not boot it") && e.contains("1 valid, 2 required"), "{e}");
    // a policy that asks for the TPM floor measures the machine's: it must be given
    std::fs::write(
        tp.join("trust_policy.json"),
        r#"{"ospkg_signature_threshold": 1, "ospkg_fetch_method": "network", "ospkg_tpm_floor": true}"#,
    )
    .unwrap();
    let e = fails(d, &["tpm", "predict", "-trustPolicy", tp.to_str().unwrap(), "-ospkg", "os"]);
    assert!(e.contains("trust_policy.json has \"ospkg_tpm_floor\": true, so the machine's floor is measured"), "{e}");
    let floor0 = predict(&["-tpmFloor", "0"]);
    assert_eq!(floor0, expected(&[Path::new("--tpm-floor=0")]));
    assert_eq!(predict(&["-tpmFloor", "none"]), expected(&[Path::new("--tpm-floor=none")]));
    assert_ne!(predict(&["-tpmFloor", "none"]), floor0);
    // the package has no version (0): a TPM floor of 1 refuses it, as stboot would
    let e = fails(d, &["tpm", "predict", "-trustPolicy", tp.to_str().unwrap(), "-ospkg", "os", "-tpmFloor", "1"]);
    assert!(e.contains("is below this machine's floor 1 (the TPM floor, NV index 0x01420002)"), "{e}");
    let e = fails(d, &["tpm", "predict", "-trustPolicy", tp2.to_str().unwrap(), "-ospkg", "os", "-tpmFloor", "1"]);
    assert!(e.contains("this trust policy does not ask for a TPM floor"), "{e}");
    let out = ok(d, &["trustpolicy", "check", tp.to_str().unwrap()]);
    assert!(out.contains("TPM floor: also the floor in TPM NV index 0x01420002"), "{out}");
}

/// Proofs that sigsum-go v0.11.2 (what upstream stmgr v0.6.6 links) refuses to parse
/// are refused here too, with the reason: otherwise a descriptor would boot under
/// stboot-rs and not under upstream. Each case is a good proof from the independent
/// log, changed in one place; the good proof itself is accepted first.
#[test]
fn sigsum_proofs_follow_sigsum_go_v0_11_2_grammar() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ok(d, &["keygen", "certificate", "-isCA"]);
    ok(d, &["keygen", "certificate", "-certOut", "sigsum.pem", "-keyOut", "sigsum.key"]);
    package(d);
    let policy_file = d.join("policy");
    sigsum_log(d, "log", "os.zip", "sigsum.key", "good.proof", &["--policy-out", policy_file.to_str().unwrap()]);
    sigsum_log(d, "log", "os.zip", "sigsum.key", "size1.proof", &["--size", "1"]);
    let digest = stboot::verify::digest(&std::fs::read(d.join("os.zip")).unwrap());
    let key =
        stboot::keys::certificate_ed25519_key(&stboot::keys::load_certificate(&d.join("sigsum.pem")).unwrap()).unwrap();
    let pol = stboot::verify::sigsum::parse_policy(&std::fs::read(&policy_file).unwrap(), "policy").unwrap();
    let check = |proof: &str| stboot::verify::sigsum::check(proof.as_bytes(), digest.as_bytes(), &key, Some(&pol));
    let good = std::fs::read_to_string(d.join("good.proof")).unwrap();
    let size1 = std::fs::read_to_string(d.join("size1.proof")).unwrap();
    check(&good).expect("the good proof");
    check(&size1).expect("the good size-1 proof");
    let cosig = good.lines().find(|l| l.starts_with("cosignature=")).unwrap().to_string();
    let parts: Vec<&str> = cosig.split(' ').collect();
    let index = good.lines().find(|l| l.starts_with("leaf_index=")).unwrap().to_string();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "a cosignature timestamp of 2^63",
            good.replace(&cosig, &format!("{} 9223372036854775808 {}", parts[0], parts[2])),
            "the cosignature's timestamp 9223372036854775808 is not below 2^63",
        ),
        (
            "one witness cosigning twice",
            good.replace(&cosig, &format!("{cosig}\n{cosig}")),
            "a second cosignature by witness key hash",
        ),
        (
            "a size-1 tree with an inclusion block",
            format!("{size1}\nleaf_index=0\n"),
            "a tree of size 1 has no inclusion proof, but the proof carries one",
        ),
        ("no newline at the end", good.trim_end_matches('\n').to_string(), "last line does not end with a newline"),
        ("a leading zero", good.replace(&index, &index.replace("leaf_index=", "leaf_index=0")), "has a leading zero"),
        ("two spaces between values", good.replacen(' ', "  ", 1), "values separated by single spaces"),
        (
            "no node hash",
            good.lines().filter(|l| !l.starts_with("node_hash=")).map(|l| format!("{l}\n")).collect(),
            "no node_hash= line",
        ),
    ];
    for (what, proof, want) in cases {
        let e = check(&proof).expect_err(what);
        assert!(e.contains("not a valid Sigsum proof") && e.contains(want), "{what}: {e}");
    }
}

/// The Sigsum policy file follows sigsum-go v0.11.2's grammar, as upstream stboot
/// v0.6 reads it: a comment may follow a line, and a witness may be a member of two
/// groups (sigsum-go v0.12 and later refuse both; upstream trust policies have them).
#[test]
fn sigsum_policy_grammar_is_v0_11_2() {
    let k = |b: u8| format!("{:064x}", u128::from(b));
    let (log, w1, w2) = (k(1), k(2), k(3));
    let text = format!(
        "log {log} https://log.example # the log\nwitness W1 {w1}  # first\nwitness W2 {w2}\n\
         group A any W1 W2\ngroup B all W1 W2\ngroup C 1 A B\nquorum C\n"
    );
    stboot::verify::sigsum::parse_policy(text.as_bytes(), "ospkg_trust_policy").expect("v0.11.2 accepts it");
    let e = stboot::verify::sigsum::parse_policy(b"log 00\nquorum none\n", "ospkg_trust_policy").unwrap_err();
    assert!(e.to_string().contains("ospkg_trust_policy"), "{e}");
}

/// Rollback protection and revocation (issue 21): the version is in the signed
/// manifest and shown; a trust policy floor refuses a lower version naming both
/// numbers; a revoked signer (by certificate or by key) never counts, and the entry
/// that matched is named; a broken list names its file and line.
#[test]
fn versions_floors_and_revoked_signers() {
    use stboot::digest::Sha256Digest;
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ok(d, &["keygen", "certificate", "-isCA"]);
    for n in ["a", "b"] {
        ok(d, &["keygen", "certificate", "-certOut", &format!("{n}.pem"), "-keyOut", &format!("{n}.key")]);
    }
    std::fs::write(d.join("vmlinuz"), pretend_bzimage()).unwrap();
    std::fs::write(d.join("initrd.cpio"), b"initramfs bytes".repeat(100)).unwrap();
    for (name, v) in [("v1", Some("1")), ("v2", Some("2")), ("none", None)] {
        let url = format!("{name}.zip");
        let mut args =
            vec!["ospkg", "create", "-kernel", "vmlinuz", "-initramfs", "initrd.cpio", "-url", &url, "-out", name];
        if let Some(v) = v {
            args.extend(["-version", v]);
        }
        ok(d, &args);
        for k in ["a", "b"] {
            ok(d, &["ospkg", "sign", "-key", &format!("{k}.key"), "-cert", &format!("{k}.pem"), "-ospkg", name]);
        }
    }
    // the version is inside the signed archive
    let zip = std::fs::read(d.join("v2.zip")).unwrap();
    let manifest =
        stboot::ospkg::archive::Archive::open(std::io::Cursor::new(zip)).unwrap().manifest_checked().unwrap();
    assert_eq!(manifest.ospkg_version, Some(2));
    let e = fails(d, &["ospkg", "create", "-kernel", "vmlinuz", "-initramfs", "initrd.cpio", "-version", "two"]);
    assert!(e.contains("two"), "{e}");

    let tp = policy(d, "tp", 2, &["rootcert.pem"]);
    let out = ok(d, &["ospkg", "verify", "-trustPolicy", "tp", "-ospkg", "v1"]);
    assert!(out.contains("version 1 (this trust policy's floor: 0)"), "{out}");
    let out = ok(d, &["ospkg", "verify", "-trustPolicy", "tp", "-ospkg", "none"]);
    assert!(out.contains("version: none (counts as 0; this trust policy's floor: 0)"), "{out}");

    // a floor of 2: version 1 and no version are downgrades, version 2 boots
    std::fs::write(
        tp.join("trust_policy.json"),
        r#"{"ospkg_signature_threshold": 2, "ospkg_fetch_method": "network", "ospkg_min_version": 2}"#,
    )
    .unwrap();
    let out = fails(d, &["ospkg", "verify", "-trustPolicy", "tp", "-ospkg", "v1"]);
    assert!(
        out.contains("OS package version 1 is below this machine's floor 2 (trust_policy.json ospkg_min_version): a downgrade, refused"),
        "{out}"
    );
    let out = fails(d, &["ospkg", "verify", "-trustPolicy", "tp", "-ospkg", "none"]);
    assert!(
        out.contains("OS package version 0 (its manifest has no ospkg_version) is below this machine's floor 2"),
        "{out}"
    );
    let out = ok(d, &["ospkg", "verify", "-trustPolicy", "tp", "-ospkg", "v2"]);
    assert!(out.contains("version 2 (this trust policy's floor: 2)") && out.contains("2 valid, 2 required"), "{out}");
    std::fs::write(
        tp.join("trust_policy.json"),
        r#"{"ospkg_signature_threshold": 2, "ospkg_fetch_method": "network", "ospkg_min_version": -1}"#,
    )
    .unwrap();
    let e = fails(d, &["ospkg", "verify", "-trustPolicy", "tp", "-ospkg", "v2"]);
    assert!(e.contains("trust_policy.json: field \"ospkg_min_version\": expected a whole number >= 0"), "{e}");
    std::fs::write(
        tp.join("trust_policy.json"),
        r#"{"ospkg_signature_threshold": 2, "ospkg_fetch_method": "network"}"#,
    )
    .unwrap();

    // b's certificate revoked: b's signature does not count, and the line is named
    let der = |f: &str| stboot::pem::certificates(&std::fs::read(d.join(f)).unwrap(), f).unwrap().remove(0);
    let b_cert = Sha256Digest::of(&der("b.pem"));
    std::fs::write(tp.join("ospkg_revoked_signers"), format!("# b's key leaked\nsha256:{}  bob\n", b_cert.hex()))
        .unwrap();
    // stmgr trustpolicy check reads the whole directory, the list too
    let out = ok(d, &["trustpolicy", "check", "tp"]);
    assert!(out.contains("revoked signers: 1 (ospkg_revoked_signers)"), "{out}");
    let out = fails(d, &["ospkg", "verify", "-trustPolicy", "tp", "-ospkg", "v2"]);
    assert!(
        out.contains(&format!(
            "not counted: revoked: the certificate sha256:{} is listed in ospkg_revoked_signers line 2",
            b_cert.hex()
        )),
        "{out}"
    );
    assert!(out.contains("Signatures: 2 found, 1 valid, 2 required") && out.contains("what to do (revoked)"), "{out}");
    // a's key revoked (SHA-256 of its SubjectPublicKeyInfo, as openssl prints it)
    let a_der = der("a.pem");
    let (_, a) = x509_parser::parse_x509_certificate(&a_der).unwrap();
    let a_key = Sha256Digest::of(a.public_key().raw);
    std::fs::write(tp.join("ospkg_revoked_signers"), format!("{}\n", a_key.hex())).unwrap();
    let out = fails(d, &["ospkg", "verify", "-trustPolicy", "tp", "-ospkg", "v2"]);
    assert!(
        out.contains(&format!("its public key sha256:{} is listed in ospkg_revoked_signers line 1", a_key.hex())),
        "{out}"
    );
    // what openssl computes for the key is what the list takes
    let spki = openssl(d, &["x509", "-in", "a.pem", "-pubkey", "-noout"]);
    std::fs::write(d.join("a.pub.pem"), spki).unwrap();
    openssl(d, &["pkey", "-pubin", "-in", "a.pub.pem", "-outform", "DER", "-out", "a.pub.der"]);
    assert_eq!(Sha256Digest::of(&std::fs::read(d.join("a.pub.der")).unwrap()), a_key);
    // a broken entry: the file and the line
    std::fs::write(tp.join("ospkg_revoked_signers"), "# list\n\nsha256:xyz\n").unwrap();
    let e = fails(d, &["ospkg", "verify", "-trustPolicy", "tp", "-ospkg", "v2"]);
    assert!(e.contains("ospkg_revoked_signers: line 3: \"sha256:xyz\" is not a SHA-256 in hex"), "{e}");
    let e = fails(d, &["trustpolicy", "check", "tp"]);
    assert!(e.contains("ospkg_revoked_signers: line 3"), "{e}");
}

/// Expiry an operator sees coming: `ospkg verify` names the day the package stops
/// meeting its threshold and whose certificate does it; `ospkg sign` warns about a
/// certificate that expires soon (`-warnDays`) or is not valid yet.
#[test]
fn the_day_a_package_stops_booting_is_named() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ok(d, &["keygen", "certificate", "-isCA", "-validUntil", "2045-01-01T00:00:00Z"]);
    for (n, until) in [("a", "2040-01-01T00:00:00Z"), ("b", "2039-06-01T00:00:00Z")] {
        ok(
            d,
            &[
                "keygen",
                "certificate",
                "-validUntil",
                until,
                "-certOut",
                &format!("{n}.pem"),
                "-keyOut",
                &format!("{n}.key"),
            ],
        );
    }
    package(d);
    for n in ["a", "b"] {
        let out = ok(d, &["ospkg", "sign", "-key", &format!("{n}.key"), "-cert", &format!("{n}.pem"), "-ospkg", "os"]);
        assert!(!out.contains("warning"), "{out}");
    }
    let subject = |f: &str| {
        let der = stboot::pem::certificates(&std::fs::read(d.join(f)).unwrap(), f).unwrap().remove(0);
        x509_parser::parse_x509_certificate(&der).unwrap().1.subject().to_string()
    };
    // two of two: the first expiry ends it; one of two: the second
    policy(d, "tp2", 2, &["rootcert.pem"]);
    let out = ok(d, &["ospkg", "verify", "-trustPolicy", "tp2", "-ospkg", "os"]);
    let want = "signatures meet the threshold until 2039-06-01 (in ";
    assert!(
        out.contains(want)
            && out.contains(&format!("when the certificate of {:?} (or its root) expires", subject("b.pem"))),
        "{out}"
    );
    policy(d, "tp1", 1, &["rootcert.pem"]);
    let out = ok(d, &["ospkg", "verify", "-trustPolicy", "tp1", "-ospkg", "os"]);
    assert!(out.contains("until 2040-01-01") && out.contains(&subject("a.pem")), "{out}");

    // a certificate that expires in 10 days: a warning at 30 (the default), none at 5
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::days(10))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    ok(d, &["keygen", "certificate", "-validUntil", &soon, "-certOut", "soon.pem", "-keyOut", "soon.key"]);
    let before = std::fs::read(d.join("os.json")).unwrap();
    let out = ok(d, &["ospkg", "sign", "-key", "soon.key", "-cert", "soon.pem", "-ospkg", "os"]);
    std::fs::write(d.join("os.json"), before).unwrap();
    let days = out.contains("(in 9 days)") || out.contains("(in 10 days)");
    assert!(out.contains("-cert soon.pem: the certificate expires on") && days, "{out}");
    let out = ok(d, &["ospkg", "sign", "-key", "soon.key", "-cert", "soon.pem", "-ospkg", "os", "-warnDays", "5"]);
    assert!(!out.contains("warning"), "{out}");
    // not valid yet
    ok(
        d,
        &[
            "keygen",
            "certificate",
            "-validFrom",
            "2038-01-01T00:00:00Z",
            "-certOut",
            "later.pem",
            "-keyOut",
            "later.key",
        ],
    );
    let out = ok(d, &["ospkg", "sign", "-key", "later.key", "-cert", "later.pem", "-ospkg", "os"]);
    assert!(out.contains("the certificate is not valid before 2038-01-01"), "{out}");
}

/// Readable signers: `keygen certificate -name` puts the name in the certificate
/// (X.520 pseudonym, read by openssl) beside upstream's CN, and verification
/// names the signer by it.
#[test]
fn signers_have_readable_names() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    ok(d, &["keygen", "certificate", "-isCA", "-name", "fleet root"]);
    for n in ["alice", "bob"] {
        ok(d, &["keygen", "certificate", "-name", n, "-certOut", &format!("{n}.pem"), "-keyOut", &format!("{n}.key")]);
    }
    let subject = openssl(d, &["x509", "-in", "alice.pem", "-noout", "-subject", "-issuer"]);
    assert!(subject.contains("pseudonym = alice") && subject.contains("CN = "), "{subject}");
    assert!(subject.contains("issuer=") && subject.contains("pseudonym = fleet root"), "{subject}");
    openssl(d, &["verify", "-trusted", "rootcert.pem", "alice.pem"]);
    package(d);
    for n in ["alice", "bob"] {
        ok(d, &["ospkg", "sign", "-key", &format!("{n}.key"), "-cert", &format!("{n}.pem"), "-ospkg", "os"]);
    }
    policy(d, "tp", 2, &["rootcert.pem"]);
    let out = ok(d, &["ospkg", "verify", "-trustPolicy", "tp", "-ospkg", "os"]);
    assert!(
        out.contains("signature 0 (signature by alice (CN=") && out.contains("signature 1 (signature by bob (CN="),
        "{out}"
    );
    for bad in ["", "a\nb", &"x".repeat(65)] {
        let e = fails(d, &["keygen", "certificate", "-name", bad, "-certOut", "x.pem", "-keyOut", "x.key"]);
        assert!(e.contains("expected 1 to 64 printable characters"), "{bad:?}: {e}");
    }
}

/// `stmgr hostconfig efivar`: the host configuration into STHostConfig of an OVMF
/// variable store, read back by an independent parser (virt-firmware's
/// virt-fw-vars, which scripts/setup.sh installs into target/venv), and of an
/// efivarfs directory. Checked first: a configuration `hostconfig check` refuses
/// changes nothing. (The efivar-dhcp QEMU scenario boots OVMF with such a store.)
#[test]
fn hostconfig_efivar_writes_sthostconfig_that_others_read() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let host = r#"{"network_mode":"dhcp","ospkg_pointer":"https://os.example/os.json"}"#;
    std::fs::write(d.join("host.json"), format!("{host}\n")).unwrap();
    // efivarfs (a directory standing in for /sys/firmware/efi/efivars)
    std::fs::create_dir(d.join("efivars")).unwrap();
    let out = ok(d, &["hostconfig", "efivar", "-hostConfig", "host.json", "-efivarfs", "-efivarfsDir", "efivars"]);
    assert!(out.contains("efivars/STHostConfig-f401f2c1-b005-4be0-8cee-f2e5945bcbe7 written"), "{out}");
    let file = std::fs::read(d.join("efivars/STHostConfig-f401f2c1-b005-4be0-8cee-f2e5945bcbe7")).unwrap();
    assert_eq!(file, [&[7u8, 0, 0, 0][..], host.as_bytes()].concat());
    // stboot's reader takes it back
    let (cfg, _) = stboot::config::load_host_config(
        &d.join("none.json"),
        &d.join("efivars/STHostConfig-f401f2c1-b005-4be0-8cee-f2e5945bcbe7"),
    )
    .unwrap();
    assert_eq!(cfg.ospkg_pointer, "https://os.example/os.json");
    let e = fails(d, &["hostconfig", "efivar", "-hostConfig", "host.json", "-efivarfs", "-efivarfsDir", "nodir"]);
    assert!(e.contains("nodir: no efivarfs here"), "{e}");

    let ovmf = Path::new("/usr/share/OVMF/OVMF_VARS_4M.fd");
    let fw_vars = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/virt-fw-vars");
    if !ovmf.exists() || !fw_vars.exists() {
        assert!(
            std::env::var_os("STBOOT_REQUIRE_OVMF").is_none(),
            "STBOOT_REQUIRE_OVMF is set but OVMF or virt-fw-vars is missing"
        );
        eprintln!("SKIPPED the OVMF part of hostconfig_efivar: OVMF or target/venv/bin/virt-fw-vars is missing (scripts/setup.sh)");
        return;
    }
    let read_back = |file: &str| -> Vec<String> {
        let o = Command::new(&fw_vars)
            .arg("-i")
            .arg(d.join(file))
            .arg("--output-json")
            .arg(d.join("dump.json"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let dump: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("dump.json")).unwrap()).unwrap();
        dump["variables"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["name"] == "STHostConfig")
            .map(|v| {
                assert_eq!(
                    (v["guid"].as_str(), v["attr"].as_u64()),
                    (Some("f401f2c1-b005-4be0-8cee-f2e5945bcbe7"), Some(7))
                );
                let hex = v["data"].as_str().unwrap();
                String::from_utf8(stboot::digest::unhex(hex).unwrap()).unwrap()
            })
            .collect()
    };
    let vars = ovmf.to_str().unwrap();
    let out = ok(d, &["hostconfig", "efivar", "-hostConfig", "host.json", "-vars", vars, "-out", "m.fd"]);
    assert!(out.contains("STHostConfig-f401f2c1-b005-4be0-8cee-f2e5945bcbe7 set in m.fd"), "{out}");
    assert_eq!(read_back("m.fd"), [host]);
    assert_eq!(std::fs::read(ovmf).unwrap().len(), std::fs::read(d.join("m.fd")).unwrap().len());
    // again, in place: the old one is deleted, one is left
    let other = r#"{"network_mode":"dhcp","ospkg_pointer":"https://os.example/v2.json"}"#;
    ok(d, &["hostconfig", "efivar", "-hostConfig", other, "-vars", "m.fd"]);
    assert_eq!(read_back("m.fd"), [other]);
    assert_eq!(
        stboot::efivars::get_from_store(&std::fs::read(d.join("m.fd")).unwrap()).unwrap().unwrap(),
        other.as_bytes()
    );
    // refused by the check: nothing written
    let before = std::fs::read(d.join("m.fd")).unwrap();
    let typo = r#"{"network_mode":"dhcp","ospkg_pointer":"https://os.example/os.json","bonding_mod":""}"#;
    let e = fails(d, &["hostconfig", "efivar", "-hostConfig", typo, "-vars", "m.fd"]);
    assert!(e.contains("nothing was written") && e.contains("\"bonding_mod\" (did you mean \"bonding_mode\"?)"), "{e}");
    assert_eq!(std::fs::read(d.join("m.fd")).unwrap(), before);
    let out = ok(d, &["hostconfig", "efivar", "-hostConfig", typo, "-vars", "m.fd", "-force"]);
    assert!(out.contains("writing it anyway (-force)"), "{out}");
    assert_eq!(read_back("m.fd"), [typo]);
    let e = fails(d, &["hostconfig", "efivar", "-hostConfig", "{", "-vars", "m.fd", "-force"]);
    assert!(e.contains("nothing was written"), "{e}");
    let e = fails(d, &["hostconfig", "efivar", "-hostConfig", "host.json", "-vars", "host.json"]);
    assert!(e.contains("-vars host.json: not an OVMF variable store"), "{e}");
}

/// No arguments is a mistake (an empty variable in a script): usage on stderr,
/// exit 2 (upstream exits 0; docs/formats.md, "Deliberate differences"). --help is
/// asked for: exit 0.
#[test]
fn no_arguments_is_an_error_and_help_is_not() {
    let d = tempfile::tempdir().unwrap();
    let o = stmgr(d.path(), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Usage: stmgr"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = stmgr(d.path(), &["--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Usage: stmgr"));
}

/// A UKI as an OS package (`ospkg create -uki`): `tpm predict`'s PCR 11 equals
/// `systemd-measure calculate --phase=` (systemd's own computation) over the
/// sections as binutils' objcopy extracts them from the UKI, for a UKI around
/// Debian's systemd-stub 252 (whose own `.sbat` it does not measure). Broken UKIs
/// are refused with the reason, by `create` and, signed, by `verify`. Booting one is
/// the `uki-package` QEMU scenario.
#[test]
fn a_uki_package_predicts_pcr11_as_systemd_measure_does() {
    let measure = Path::new("/usr/lib/systemd/systemd-measure");
    assert!(measure.exists(), "{} is missing: it comes with Debian 12's systemd", measure.display());
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    uki_inputs(dir, &b"070701 pretend cpio".repeat(100));
    ok(dir, &uki_args("uki", "os", &[]));
    ok(dir, &["keygen", "certificate", "-isCA", "-certOut", "root.pem", "-keyOut", "root.key"]);
    ok(
        dir,
        &[
            "keygen",
            "certificate",
            "-rootCert",
            "root.pem",
            "-rootKey",
            "root.key",
            "-certOut",
            "a.pem",
            "-keyOut",
            "a.key",
        ],
    );
    let tp = policy(dir, "tp", 1, &["root.pem"]);
    let tp = tp.to_str().unwrap();
    ok(dir, &["ospkg", "create", "-uki", "os.uki", "-label", "a UKI", "-url", "uki.zip", "-out", "uki"]);
    ok(dir, &["ospkg", "sign", "-key", "a.key", "-cert", "a.pem", "-ospkg", "uki"]);
    let out = ok(dir, &["ospkg", "verify", "-trustPolicy", tp, "-ospkg", "uki"]);
    assert!(out.contains("accepted: uki.zip"), "{out}");
    assert!(
        out.contains("UKI boot/os.uki: PCR 11 measures .linux .osrel .cmdline .initrd as its systemd-stub 252")
            && out.contains("signed PCR policy (.pcrsig): none"),
        "{out}"
    );
    pcr11_is_systemd_measures(dir, tp, "uki", measure, "os.uki", &["linux", "osrel", "cmdline", "initrd"]);
    // the package's manifest names the UKI and nothing else
    let e = fails(dir, &["ospkg", "create", "-uki", "os.uki", "-kernel", "bzImage", "-out", "both"]);
    assert!(e.contains("cannot be used with"), "{e}");

    // the plain stub: no .linux; a cut UKI: a section past the end
    std::fs::copy(stboot::uki::DEBIAN_STUB, dir.join("stub.efi")).unwrap();
    let e = fails(dir, &["ospkg", "create", "-uki", "stub.efi", "-out", "bad"]);
    assert!(e.contains("stub.efi: not a UKI stboot can boot: the UKI has no .linux section"), "{e}");
    let uki = std::fs::read(dir.join("os.uki")).unwrap();
    std::fs::write(dir.join("cut.uki"), &uki[..uki.len() - 4096]).unwrap();
    let e = fails(dir, &["ospkg", "create", "-uki", "cut.uki", "-out", "bad"]);
    assert!(e.contains("section .linux") && e.contains("lies past the end of the file"), "{e}");

    // signed but broken: a UKI whose .linux is no kernel, put into a signed package
    let mut bad = std::fs::read(dir.join("os.uki")).unwrap();
    let layout = stboot::ospkg::uki::parse_bytes(&bad).unwrap();
    let linux = layout.range(".linux").unwrap();
    bad[linux.start as usize + 0x202..linux.start as usize + 0x206].copy_from_slice(b"XXXX");
    let m = stboot::ospkg::Manifest {
        version: 1,
        label: "broken".into(),
        kernel: String::new(),
        initramfs: String::new(),
        cmdline: String::new(),
        ospkg_version: None,
        uki: Some("boot/os.uki".into()),
    };
    let zip = stboot::ospkg::archive::write_entries(std::io::Cursor::new(Vec::new()), &m, &[("boot/os.uki", &bad)])
        .unwrap()
        .into_inner();
    std::fs::write(dir.join("uki.zip"), zip).unwrap();
    std::fs::write(dir.join("uki.json"), stboot::ospkg::Descriptor::new("uki.zip").unwrap().to_json()).unwrap();
    ok(dir, &["ospkg", "sign", "-key", "a.key", "-cert", "a.pem", "-ospkg", "uki"]);
    let e = fails(dir, &["ospkg", "verify", "-trustPolicy", tp, "-ospkg", "uki"]);
    assert!(e.contains("the UKI \"boot/os.uki\": the UKI's .linux section is not an x86 bzImage"), "{e}");
}

/// With UEFI db certificates in the trust policy (`ospkg_uki_db.pem`), a UKI
/// package counts only when its UKI's Secure Boot signature verifies against one of
/// them, as the firmware would check it; sbsigntool's sbverify, given the same db
/// certificate, agrees on every image. Signed by the db certificate's own key
/// (stmgr), by a leaf through an intermediate the signature carries (sbsign
/// --addcert): accepted. Signed by a stranger, changed after signing, unsigned, or
/// not a UKI at all: refused, each with its reason and the remedy.
#[test]
fn a_uki_package_counts_only_when_signed_for_the_trust_policys_db() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    uki_inputs(dir, &b"070701 pretend cpio".repeat(100));
    // the db CA, an intermediate and a leaf under it; a stranger
    std::fs::write(dir.join("ca.ext"), "basicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign,digitalSignature\n")
        .unwrap();
    let req = |name: &str, extra: &[&str]| {
        let subj = format!("/CN=uki {name}/");
        let (key, out) = (format!("{name}.key"), format!("{name}.crt"));
        let mut a = vec!["req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", &subj, "-keyout", &key, "-out", &out];
        a.extend_from_slice(extra);
        openssl(dir, &a);
    };
    req("db", &["-x509", "-days", "30"]);
    req("stranger", &["-x509", "-days", "30"]);
    for (name, issuer, ext) in [("intermediate", "db", Some("ca.ext")), ("leaf", "intermediate", None)] {
        req(name, &[]);
        let (csr, ca, cakey, out) =
            (format!("{name}.crt"), format!("{issuer}.crt"), format!("{issuer}.key"), format!("{name}.crt"));
        let mut a = vec!["x509", "-req", "-in", &csr, "-CA", &ca, "-CAkey", &cakey, "-days", "30", "-out", &out];
        a.extend(ext.map(|e| ["-extfile", e]).into_iter().flatten());
        openssl(dir, &a);
    }
    ok(dir, &uki_args("uki", "plain", &[]));
    ok(dir, &uki_args("uki", "by-db", &["-signkey", "db.key", "-signcert", "db.crt"]));
    ok(dir, &uki_args("uki", "by-stranger", &["-signkey", "stranger.key", "-signcert", "stranger.crt"]));
    let (good, text) = tool(
        dir,
        "sbsign",
        &[
            "--key",
            "leaf.key",
            "--cert",
            "leaf.crt",
            "--addcert",
            "intermediate.crt",
            "--output",
            "by-leaf.uki",
            "plain.uki",
        ],
    );
    assert!(good, "sbsign: {text}");
    // changed after signing: a byte of .initrd
    let mut changed = std::fs::read(dir.join("by-db.uki")).unwrap();
    let initrd = stboot::ospkg::uki::parse_bytes(&changed).unwrap().range(".initrd").unwrap();
    changed[initrd.start as usize + 7] ^= 1;
    std::fs::write(dir.join("changed.uki"), changed).unwrap();

    let tp = uki_db_policy(dir);
    let tp = tp.to_str().unwrap();
    let out = ok(dir, &["trustpolicy", "check", tp]);
    assert!(out.contains("UKI Secure Boot db: 1 certificate(s) (ospkg_uki_db.pem)"), "{out}");

    let verify = |uki: &str| {
        let (good, sbverify) = tool(dir, "sbverify", &["--cert", "db.crt", &format!("{uki}.uki")]);
        ok(dir, &["ospkg", "create", "-uki", &format!("{uki}.uki"), "-url", &format!("{uki}.zip"), "-out", uki]);
        ok(dir, &["ospkg", "sign", "-key", "a.key", "-cert", "a.pem", "-ospkg", uki]);
        let o = stmgr(dir, &["ospkg", "verify", "-trustPolicy", tp, "-ospkg", uki]);
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert_eq!(o.status.success(), good, "stmgr and sbverify disagree on {uki}.uki:\n{text}\nsbverify: {sbverify}");
        text
    };
    let out = verify("by-db");
    assert!(
        out.contains(r#"UKI boot/by-db.uki: Secure Boot signature by "CN=uki db" verifies against ospkg_uki_db.pem certificate #0 ("CN=uki db")"#),
        "{out}"
    );
    let out = verify("by-leaf");
    assert!(out.contains(r#"signature by "CN=uki leaf" verifies against ospkg_uki_db.pem certificate #0"#), "{out}");
    let remedy = "what to do: sign the UKI for this machine's db";
    for (uki, why) in [
        (
            "by-stranger",
            r#"signed by "CN=uki stranger" (issued by "CN=uki stranger"), which is not in ospkg_uki_db.pem nor issued by a certificate there"#,
        ),
        ("changed", "it signs another image (Authenticode digest"),
        ("plain", "it has no Secure Boot (Authenticode) signature"),
    ] {
        let out = verify(uki);
        let want = format!("REJECTED: {uki}.zip: the UKI \"boot/{uki}.uki\": its Secure Boot signature does not verify against ospkg_uki_db.pem: ");
        assert!(out.contains(&want) && out.contains(why) && out.contains(remedy), "{uki}: {out}");
    }
    // a package of a kernel and an initramfs has no Secure Boot signature to check
    ok(dir, &["ospkg", "create", "-kernel", "bzImage", "-initramfs", "initrd", "-url", "k.zip", "-out", "k"]);
    ok(dir, &["ospkg", "sign", "-key", "a.key", "-cert", "a.pem", "-ospkg", "k"]);
    let out = fails(dir, &["ospkg", "verify", "-trustPolicy", tp, "-ospkg", "k"]);
    assert!(out.contains("the package is a kernel and an initramfs, not a UKI") && out.contains(remedy), "{out}");
    // the db file itself is checked when the policy is read
    std::fs::write(Path::new(tp).join("ospkg_uki_db.pem"), "not PEM\n").unwrap();
    let out = fails(dir, &["ospkg", "verify", "-trustPolicy", tp, "-ospkg", "by-db"]);
    assert!(out.contains("ospkg_uki_db.pem") && out.contains("expected the PEM certificates of the UEFI db"), "{out}");
}

/// A signing root `root.pem` with the leaf `a.pem`/`a.key` in `dir`, and the trust
/// policy `dir/tp` (threshold 1) whose UEFI db is `dir/db.crt` (`ospkg_uki_db.pem`).
fn uki_db_policy(dir: &Path) -> PathBuf {
    ok(dir, &["keygen", "certificate", "-isCA", "-certOut", "root.pem", "-keyOut", "root.key"]);
    let leaf = ["-rootCert", "root.pem", "-rootKey", "root.key", "-certOut", "a.pem", "-keyOut", "a.key"];
    ok(dir, &[&["keygen", "certificate"][..], &leaf].concat());
    let tp = policy(dir, "tp", 1, &["root.pem"]);
    std::fs::copy(dir.join("db.crt"), tp.join("ospkg_uki_db.pem")).unwrap();
    tp
}

/// A tool of systemd 254 (bookworm-backports), which scripts/setup.sh unpacks into
/// target/systemd-254/bin: `ukify`, `systemd-measure`, `linuxx64.efi.stub`.
fn systemd_254(tool: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/systemd-254/bin").join(tool);
    assert!(
        p.exists(),
        "{} is missing: scripts/setup.sh unpacks systemd 254 from bookworm-backports there",
        p.display()
    );
    p
}

/// A UKI that systemd's own ukify (254) builds around systemd-stub 254, Secure Boot
/// signed by sbsign: stboot reads the stub's version, so PCR 11
/// also measures `.uname` and `.sbat` as stub 254 does, and `stmgr tpm predict`'s
/// PCR 11 equals systemd-measure 254's `calculate` over the sections objcopy
/// extracts; the signature verifies against the trust policy's db.
#[test]
fn a_ukify_uki_around_stub_254_predicts_pcr11_as_systemd_measure_254_does() {
    let (ukify, measure, stub) =
        (systemd_254("ukify"), systemd_254("systemd-measure"), systemd_254("linuxx64.efi.stub"));
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    uki_inputs(dir, &b"070701 pretend cpio".repeat(100));
    std::fs::write(dir.join("osrel"), "ID=myos\nPRETTY_NAME=\"a UKI by ukify\"\n").unwrap();
    openssl(dir, &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "pcr.key"]);
    openssl(dir, &["pkey", "-in", "pcr.key", "-pubout", "-out", "pcr.pem"]);
    let subj = "/CN=ukify db/";
    let db = ["req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", subj];
    openssl(dir, &[&db[..], &["-keyout", "db.key", "-out", "db.crt"]].concat());
    let (good, text) = tool(
        dir,
        ukify.to_str().unwrap(),
        &[
            "build",
            "--linux",
            "bzImage",
            "--initrd",
            "initrd",
            "--cmdline",
            "console=ttyS0 quiet",
            "--os-release",
            "@osrel",
            "--uname",
            "6.1.0-test",
            "--pcrpkey",
            "pcr.pem",
            "--stub",
            stub.to_str().unwrap(),
            "--output",
            "unsigned.efi",
        ],
    );
    assert!(good, "ukify: {text}");
    // ukify signs through sbsign too, but first checks the kernel's own signature,
    // which the pretend kernel cannot have
    let sign = ["--key", "db.key", "--cert", "db.crt", "--output", "ukify.efi", "unsigned.efi"];
    let (good, text) = tool(dir, "sbsign", &sign);
    assert!(good, "sbsign: {text}");

    let tp = uki_db_policy(dir);
    let tp = tp.to_str().unwrap();
    ok(dir, &["ospkg", "create", "-uki", "ukify.efi", "-url", "u.zip", "-out", "u"]);
    ok(dir, &["ospkg", "sign", "-key", "a.key", "-cert", "a.pem", "-ospkg", "u"]);
    let out = ok(dir, &["ospkg", "verify", "-trustPolicy", tp, "-ospkg", "u"]);
    assert!(
        out.contains(
            "UKI boot/ukify.efi: PCR 11 measures .linux .osrel .cmdline .initrd .uname .sbat .pcrpkey as its systemd-stub 254.26"
        ) && out.contains(r#"Secure Boot signature by "CN=ukify db" verifies against ospkg_uki_db.pem"#),
        "{out}"
    );
    let sections = ["linux", "osrel", "cmdline", "initrd", "uname", "sbat", "pcrpkey"];
    pcr11_is_systemd_measures(dir, tp, "u", &measure, "ukify.efi", &sections);
}

/// `stmgr tpm predict`'s PCR11 for package `pkg` under trust policy `tp` equals
/// what `measure` (a systemd-measure) calculates over the `sections` of `uki` as
/// binutils' objcopy extracts them.
fn pcr11_is_systemd_measures(dir: &Path, tp: &str, pkg: &str, measure: &Path, uki: &str, sections: &[&str]) {
    let predicted = ok(dir, &["tpm", "predict", "-trustPolicy", tp, "-ospkg", pkg]);
    let pcr11 = predicted.lines().find_map(|l| l.strip_prefix("PCR11=")).unwrap_or_else(|| panic!("{predicted}"));
    let mut args = vec!["calculate".to_string(), "--bank=sha256".into(), "--phase=".into()];
    for s in sections {
        let (good, text) = tool(dir, "objcopy", &["--dump-section", &format!(".{s}=sec.{s}"), uki, "scratch.efi"]);
        assert!(good, "objcopy .{s}: {text}");
        args.push(format!("--{s}=sec.{s}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (good, text) = tool(dir, measure.to_str().unwrap(), &args);
    assert!(good, "{}: {text}", measure.display());
    assert!(text.contains(&format!("11:sha256={pcr11}")), "stmgr: PCR11={pcr11}\n{}: {text}", measure.display());
}
