//! Interop with upstream's Go implementation: `integration-tests/upstream-go` makes and
//! verifies packages with the Go standard library packages upstream stmgr and stboot
//! use (archive/zip, crypto/x509 with Go's default verification, crypto/ed25519).
//! Needs the `go` toolchain (scripts/setup.sh installs golang-go); without it the test
//! is skipped unless STBOOT_REQUIRE_GO is set, as scripts/test.sh does.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn go() -> Option<PathBuf> {
    ["go", "/usr/lib/go/bin/go"]
        .iter()
        .map(PathBuf::from)
        .find(|p| Command::new(p).arg("version").output().is_ok_and(|o| o.status.success()))
}

fn upstream_tool() -> Option<PathBuf> {
    let Some(go) = go() else {
        assert!(std::env::var_os("STBOOT_REQUIRE_GO").is_none(), "STBOOT_REQUIRE_GO is set but no go toolchain found");
        eprintln!("no go toolchain: skipping the upstream interop test");
        return None;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = root.join("target/upstream-go");
    std::fs::create_dir_all(&target).unwrap();
    let bin = target.join("upstream-go");
    let o = Command::new(go)
        .current_dir(root.join("integration-tests/upstream-go"))
        .env("GOCACHE", target.join("cache"))
        .env("GOPATH", target.join("gopath"))
        .env("GO111MODULE", "off")
        .args(["build", "-o"])
        .arg(&bin)
        .arg("main.go")
        .output()
        .unwrap();
    assert!(o.status.success(), "go build: {}", String::from_utf8_lossy(&o.stderr));
    Some(bin)
}

fn run(cmd: &mut Command) -> (bool, String) {
    let o: Output = cmd.output().unwrap();
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

fn stmgr(dir: &Path, args: &[&str]) -> (bool, String) {
    run(Command::new(env!("CARGO_BIN_EXE_stmgr")).current_dir(dir).args(args))
}

#[test]
fn package_made_by_go_verifies_here() {
    let Some(tool) = upstream_tool() else { return };
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let (ok, out) = run(Command::new(&tool).arg("make").arg(d));
    assert!(ok, "{out}");
    let (ok, out) = stmgr(d, &["ospkg", "verify", "-rootCerts", "rootcert.pem", "-ospkg", "upstream"]);
    assert!(ok && out.contains("Signatures: 2 found, 2 valid"), "{out}");
    // Go's zip writer uses data descriptors; the manifest and entries read here
    let z = std::fs::read(d.join("upstream.zip")).unwrap();
    let kernel_header = z
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"PK\x03\x04")
        .map(|(i, _)| i)
        .find(|&i| {
            let n = u16::from_le_bytes([z[i + 26], z[i + 27]]) as usize;
            &z[i + 30..i + 30 + n] == b"boot/vmlinuz"
        })
        .expect("local header of boot/vmlinuz");
    let flags = u16::from_le_bytes([z[kernel_header + 6], z[kernel_header + 7]]);
    assert_ne!(flags & 0x0008, 0, "Go sets the data-descriptor flag on file entries");
    let mut a = stboot::ospkg::Archive::open(std::io::Cursor::new(&z)).unwrap();
    let m = a.manifest().unwrap();
    assert_eq!(m.cmdline, "console=ttyS0 upstream=1");
    let mut k = Vec::new();
    a.extract(&m.kernel, 1 << 24, &mut k).unwrap();
    let mut want = b"upstream kernel ".repeat(20000);
    want[0x202..0x206].copy_from_slice(b"HdrS");
    assert_eq!(k, want);
    // a flipped byte is refused here too
    let mut bad = z.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    std::fs::write(d.join("upstream.zip"), bad).unwrap();
    let (ok, out) = stmgr(d, &["ospkg", "verify", "-rootCerts", "rootcert.pem", "-ospkg", "upstream"]);
    assert!(!ok && out.contains("0 valid"), "{out}");
}

#[test]
fn package_made_here_verifies_with_go() {
    let Some(tool) = upstream_tool() else { return };
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    for args in [
        &["keygen", "certificate", "-isCA"][..],
        &["keygen", "certificate", "-certOut", "a.pem", "-keyOut", "a.key"],
        &["keygen", "certificate", "-certOut", "b.pem", "-keyOut", "b.key"],
    ] {
        let (ok, out) = stmgr(d, args);
        assert!(ok, "{out}");
    }
    std::fs::write(d.join("k"), vec![9u8; 100_000]).unwrap();
    std::fs::write(d.join("i"), b"initramfs".repeat(100)).unwrap();
    for args in [
        &["ospkg", "create", "-kernel", "k", "-initramfs", "i", "-cmdline", "a<b&c", "-url", "os.zip", "-out", "os"][..],
        &["ospkg", "sign", "-key", "a.key", "-cert", "a.pem", "-ospkg", "os"],
        &["ospkg", "sign", "-key", "b.key", "-cert", "b.pem", "-ospkg", "os"],
    ] {
        let (ok, out) = stmgr(d, args);
        assert!(ok, "{out}");
    }
    let (ok, out) = run(Command::new(&tool).args(["verify", "rootcert.pem", "os", "2"]).current_dir(d));
    assert!(ok, "{out}");
    assert!(out.contains("Signatures: 2 found, 2 valid, 2 required"), "{out}");
    assert!(out.contains("cmdline \"a<b&c\""), "{out}");
    let (ok, out) = run(Command::new(&tool).args(["verify", "rootcert.pem", "os", "3"]).current_dir(d));
    assert!(!ok, "{out}");
}
