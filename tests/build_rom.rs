//! `scripts/build-rom.sh --replace`: a new LinuxBoot kernel goes into an existing
//! coreboot ROM and the ROM's kernel command line stays (it was silently replaced
//! by the build default, so a board whose console is not ttyS0 lost it after the
//! first key rotation). Needs only cbfstool (Debian's coreboot-utils), not a
//! coreboot tree: the ROM is a bare CBFS with a payload added by cbfstool, as
//! coreboot's build adds it. Skipped (loudly) without cbfstool unless
//! STBOOT_REQUIRE_CBFSTOOL is set, as scripts/test.sh does.

use std::path::Path;
use std::process::Command;

fn have_cbfstool() -> bool {
    let ok = Command::new("sh").args(["-c", "command -v cbfstool"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("STBOOT_REQUIRE_CBFSTOOL").is_none(),
            "STBOOT_REQUIRE_CBFSTOOL is set but cbfstool is missing"
        );
        eprintln!("SKIPPED build_rom: cbfstool is not installed (scripts/setup.sh installs coreboot-utils)");
    }
    ok
}

/// A stand-in bzImage cbfstool accepts (the boot protocol's "HdrS" at 0x202),
/// with `marker` in its body to tell two apart.
fn bzimage(path: &Path, marker: &[u8]) {
    let mut b = vec![0u8; 8192];
    b[0x202..0x206].copy_from_slice(b"HdrS");
    b[0x206..0x208].copy_from_slice(&[0x0c, 0x02]); // protocol 2.12
    b[4096..4096 + marker.len()].copy_from_slice(marker);
    std::fs::write(path, b).unwrap();
}

fn cbfstool(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("cbfstool").args(args).current_dir(dir).output().unwrap();
    assert!(o.status.success(), "cbfstool {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The payload as stored (cbfstool extract -U): its segments, command line included.
fn payload(dir: &Path, rom: &str) -> Vec<u8> {
    cbfstool(dir, &[rom, "extract", "-n", "fallback/payload", "-f", "payload.bin", "-U"]);
    std::fs::read(dir.join("payload.bin")).unwrap()
}

fn replace(dir: &Path, rom: &str, bz: &str, cmdline: Option<&str>) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-rom.sh");
    let mut c = Command::new("bash");
    c.arg(script).args(["--replace", rom, bz]).current_dir(dir).env("COREBOOT_OUT", dir.join("out"));
    match cmdline {
        Some(v) => c.env("ROM_CMDLINE", v),
        None => c.env_remove("ROM_CMDLINE"),
    };
    let o = c.output().unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn replace_keeps_the_roms_command_line_unless_told_otherwise() {
    if !have_cbfstool() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    bzimage(&d.join("old.bz"), b"OLD-STBOOT");
    bzimage(&d.join("new.bz"), b"NEW-STBOOT");
    cbfstool(d, &["rom", "create", "-m", "x86", "-s", "0x100000"]);
    cbfstool(d, &["rom", "add-payload", "-f", "old.bz", "-n", "fallback/payload", "-C", "console=ttyS1,57600 quiet"]);

    let (ok, err) = replace(d, "rom", "new.bz", None);
    assert!(ok, "{err}");
    assert!(
        err.contains("kernel command line kept: \"console=ttyS1,57600 quiet\" (ROM_CMDLINE=... to change it)"),
        "{err}"
    );
    let p = payload(d, "rom");
    assert!(contains(&p, b"NEW-STBOOT") && !contains(&p, b"OLD-STBOOT"), "the payload was not replaced");
    assert!(contains(&p, b"console=ttyS1,57600 quiet\0"), "the command line was not kept");
    assert!(!contains(&p, b"panic=-1"), "the build default crept in");

    // told otherwise: the new line, and the old one named
    let (ok, err) = replace(d, "rom", "old.bz", Some("console=ttyS0,115200"));
    assert!(ok, "{err}");
    assert!(
        err.contains("kernel command line: \"console=ttyS0,115200\" (ROM_CMDLINE; was \"console=ttyS1,57600 quiet\")"),
        "{err}"
    );
    let p = payload(d, "rom");
    assert!(contains(&p, b"OLD-STBOOT") && contains(&p, b"console=ttyS0,115200\0"));
    assert!(!contains(&p, b"ttyS1"));

    // a payload without a command line: nothing to keep, so it must be given
    cbfstool(d, &["bare", "create", "-m", "x86", "-s", "0x100000"]);
    cbfstool(d, &["bare", "add-payload", "-f", "old.bz", "-n", "fallback/payload"]);
    let before = std::fs::read(d.join("bare")).unwrap();
    let (ok, err) = replace(d, "bare", "new.bz", None);
    assert!(
        !ok && err.contains("cannot read its payload's kernel command line; give the one to use with ROM_CMDLINE="),
        "{err}"
    );
    assert_eq!(std::fs::read(d.join("bare")).unwrap(), before, "a refused replace changed the ROM");

    // not a bzImage, not a ROM: named
    let (ok, err) = replace(d, "rom", "payload.bin", None);
    assert!(!ok && err.contains("payload.bin: not a Linux bzImage"), "{err}");
    let (ok, err) = replace(d, "nonexistent.rom", "new.bz", None);
    assert!(!ok && err.contains("nonexistent.rom: no such ROM"), "{err}");
}
