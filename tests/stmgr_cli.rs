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
    let o = Command::new("openssl").current_dir(dir).args(args).output().expect("run openssl");
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "openssl {args:?} failed:\n{text}");
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
    ok(d, &["keygen", "certificate", "-validFrom", "2020-01-01T00:00:00Z", "-validUntil", "2021-01-01T00:00:00Z"]);
    package(d);
    ok(d, &["ospkg", "sign", "-key", "key.pem", "-cert", "cert.pem", "-ospkg", "os"]);
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
    std::fs::write(d.join("digest.bin"), digest).unwrap();
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
