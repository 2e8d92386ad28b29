//! Age-encrypted packages over real HTTPS (`integration-tests/hostile-server.py`),
//! encrypted by Debian's `age` command and keyed by `age-keygen`: an implementation
//! that shares no code with the `age` crate stboot decrypts with.
//!
//! For each case: what comes out verifies and is byte for byte the signed package, or
//! the error names the object, the reason and the remedy; nothing is left in the
//! staging directory, and the identity never appears in a message.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::hostile::{env, fetcher_with};
use reqwest::Url;
use stboot::decrypt::{DecryptFailure, FailureKind, Identities};
use stboot::fetch::Fetcher;
use stboot::verify::{self, Threshold};

struct Keys {
    _dir: tempfile::TempDir,
    /// The identity file age-keygen wrote for this machine, and another machine's.
    mine: PathBuf,
    other: PathBuf,
    my_recipient: String,
}

fn age(args: &[&str]) {
    let o = Command::new("age")
        .args(args)
        .output()
        .expect("the age command is installed (Debian package age; scripts/setup.sh installs it)");
    assert!(o.status.success(), "age {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

fn keygen(path: &Path) -> String {
    let o =
        Command::new("age-keygen").arg("-o").arg(path).output().expect("age-keygen is installed (Debian package age)");
    assert!(o.status.success(), "age-keygen: {}", String::from_utf8_lossy(&o.stderr));
    // "Public key: age1..." on stderr
    String::from_utf8_lossy(&o.stderr).trim().trim_start_matches("Public key: ").to_string()
}

/// Keys, and encrypted variants of the server's signed package in its www directory:
/// `enc.json`/`enc.zip` (both encrypted to this machine), `half.json` (plain,
/// pointing at `enc.zip`), `other.json` (both encrypted to another machine only),
/// `multi.json` (to both), `corrupt.json` (plain, pointing at a damaged `enc.zip`),
/// `armored.json` (`age -a`).
fn setup() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        let mine = d.path().join("mine.txt");
        let other = d.path().join("other.txt");
        let my_recipient = keygen(&mine);
        let other_recipient = keygen(&other);
        assert!(my_recipient.starts_with("age1"), "{my_recipient}");
        let www = &env().www;
        let s = |p: &Path| p.to_str().unwrap().to_string();
        let plain_desc = std::fs::read_to_string(www.join("pkg.json")).unwrap();
        let desc_for = |name: &str, archive: &str| {
            let p = d.path().join(name);
            std::fs::write(&p, plain_desc.replace("\"pkg.zip\"", &format!("\"{archive}\""))).unwrap();
            p
        };
        let enc = |recipients: &[&str], input: &Path, out: &str, armor: bool| {
            let mut a: Vec<String> = Vec::new();
            for r in recipients {
                a.extend(["-r".into(), r.to_string()]);
            }
            if armor {
                a.push("-a".into());
            }
            a.extend(["-o".into(), s(&www.join(out)), s(input)]);
            age(&a.iter().map(String::as_str).collect::<Vec<_>>());
        };
        let zip = www.join("pkg.zip");
        enc(&[&my_recipient], &zip, "enc.zip", false);
        enc(&[&my_recipient], &desc_for("enc", "enc.zip"), "enc.json", false);
        std::fs::copy(desc_for("half", "enc.zip"), www.join("half.json")).unwrap();
        enc(&[&other_recipient], &zip, "other.zip", false);
        enc(&[&other_recipient], &desc_for("other", "other.zip"), "other.json", false);
        enc(&[&other_recipient, &my_recipient], &zip, "multi.zip", false);
        enc(&[&other_recipient, &my_recipient], &desc_for("multi", "multi.zip"), "multi.json", false);
        enc(&[&my_recipient], &zip, "armored.zip", true);
        std::fs::copy(desc_for("armored", "armored.zip"), www.join("armored.json")).unwrap();
        // one flipped bit in the middle of the payload
        let mut bad = std::fs::read(www.join("enc.zip")).unwrap();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x10;
        std::fs::write(www.join("corrupt.zip"), bad).unwrap();
        std::fs::copy(desc_for("corrupt", "corrupt.zip"), www.join("corrupt.json")).unwrap();
        Keys { _dir: d, mine, other, my_recipient }
    })
}

fn url(name: &str) -> Url {
    Url::parse(&format!("https://127.0.0.1:{}/good/{name}.json", env().tls_port)).unwrap()
}

fn identities(path: &Path) -> Option<Arc<Identities>> {
    Some(Arc::new(Identities::parse(&std::fs::read(path).unwrap(), path).unwrap()))
}

fn fetcher(stage: &Path, ids: Option<Arc<Identities>>) -> Fetcher {
    fetcher_with(stage, Duration::from_secs(2), std::slice::from_ref(&env().tls_ca_der), 64 << 20).with_identities(ids)
}

fn staged(stage: &Path) -> Vec<String> {
    std::fs::read_dir(stage).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

/// Fetch `name` and verify it: it must be exactly the signed package.
fn boots(name: &str, ids: Option<Arc<Identities>>) {
    let stage = tempfile::tempdir().unwrap();
    let pkg = fetcher(stage.path(), ids).fetch(&url(name), 0).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    // one pass: the plaintext was unpacked, neither it nor the ciphertext is kept
    let mut kept = staged(stage.path());
    kept.sort();
    assert!(kept.iter().all(|f| f.starts_with("entry-")) && !kept.is_empty(), "{name}: {kept:?}");
    let want = std::fs::read(env().www.join("pkg.zip")).unwrap();
    assert_eq!(pkg.archive().sha256(), &verify::digest(&want), "{name}: the hash is not the signed archive's");
    assert_eq!(pkg.archive().len(), want.len() as u64);
    let desc = String::from_utf8(pkg.descriptor_bytes().to_vec()).unwrap();
    assert!(desc.starts_with('{') && desc.contains("\"signatures\""), "{name}: the descriptor is the plaintext");
    let (now, _) = verify::effective_now();
    let v = verify::verify_package(pkg, std::slice::from_ref(&env().signing_root_der), Threshold::AtLeast(2), now)
        .unwrap_or_else(|e| panic!("{name}: {:#}", e.error));
    assert_eq!(v.archive_sha256(), &verify::digest(&want));
    drop(v);
    assert!(staged(stage.path()).is_empty(), "{name}: removed on drop");
}

/// Fetch `name`: it must fail with a decryption failure of `kind`, leave nothing staged
/// and never show a secret key. Returns the message and the remedy.
fn refused(name: &str, ids: Option<Arc<Identities>>, kind: fn(&FailureKind) -> bool) -> (String, String) {
    let stage = tempfile::tempdir().unwrap();
    let e = match fetcher(stage.path(), ids).fetch(&url(name), 0) {
        Ok(p) => panic!("{name}: fetched a package from {:?}", p.origin()),
        Err(e) => e,
    };
    assert!(staged(stage.path()).is_empty(), "{name}: left {:?}", staged(stage.path()));
    let msg = format!("{e:#}");
    assert!(!msg.contains("AGE-SECRET-KEY"), "{msg}");
    let f = e.chain().find_map(|c| c.downcast_ref::<DecryptFailure>()).unwrap_or_else(|| panic!("{name}: {msg}"));
    assert!(kind(&f.kind), "{name}: {msg}");
    (f.to_string(), f.remedy())
}

#[test]
fn an_encrypted_package_is_decrypted_and_is_the_signed_one() {
    let k = setup();
    boots("enc", identities(&k.mine));
    // a plain descriptor with an encrypted archive, and several recipients
    boots("half", identities(&k.mine));
    boots("multi", identities(&k.mine));
    // the other machine's identity file with ours appended
    let both = k._dir.path().join("both.txt");
    let text = std::fs::read_to_string(&k.other).unwrap() + &std::fs::read_to_string(&k.mine).unwrap();
    std::fs::write(&both, text).unwrap();
    boots("enc", identities(&both));
}

#[test]
fn an_unencrypted_package_still_boots_when_identities_exist() {
    let k = setup();
    boots("pkg", identities(&k.mine));
}

#[test]
fn encrypted_for_another_machine_names_this_machines_recipient() {
    let k = setup();
    let (f, remedy) =
        refused("other", identities(&k.mine), |k| matches!(k, FailureKind::NoMatchingIdentity { tried: 1, .. }));
    assert!(f.contains("descriptor https://127.0.0.1:"), "{f}");
    assert!(remedy.contains(&k.my_recipient), "{remedy}");
}

#[test]
fn encrypted_without_identities_says_where_they_belong() {
    setup();
    let (f, _) = refused("enc", None, |k| matches!(k, FailureKind::NoIdentities));
    assert!(f.contains("/etc/trust_policy/decryption_identities"), "{f}");
    let (f, _) = refused("half", None, |k| matches!(k, FailureKind::NoIdentities));
    assert!(f.starts_with("archive https://"), "{f}");
}

#[test]
fn a_damaged_ciphertext_is_refused_and_nothing_stays_staged() {
    let k = setup();
    let (f, _) = refused("corrupt", identities(&k.mine), |k| matches!(k, FailureKind::Corrupt(_)));
    assert!(f.contains("a damaged age file"), "{f}");
}

#[test]
fn an_armored_file_is_named_as_such() {
    let k = setup();
    let (_, remedy) = refused("armored", identities(&k.mine), |k| matches!(k, FailureKind::Armored));
    assert!(remedy.contains("without -a"), "{remedy}");
}

/// Packages from files (the initramfs, stmgr's arguments) are never decrypted: an age
/// file there is named as one, not reported as broken JSON or zip.
#[test]
fn an_encrypted_package_from_files_is_named_not_decrypted() {
    setup();
    let www = &env().www;
    let d = tempfile::tempdir().unwrap();
    let paths = |json: &str, zip: &str| {
        std::fs::copy(www.join(json), d.path().join("p.json")).unwrap();
        std::fs::copy(www.join(zip), d.path().join("p.zip")).unwrap();
        stboot::ospkg::PackagePaths::from_arg(&d.path().join("p")).unwrap()
    };
    for (json, zip, named) in [("enc.json", "pkg.zip", "p.json"), ("pkg.json", "enc.zip", "p.zip")] {
        let e = stboot::ospkg::package::Unverified::from_files(&paths(json, zip)).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains(named) && msg.contains("an age-encrypted file"), "{json}/{zip}: {msg}");
    }
}

/// The ciphertext stays on the staging tmpfs until its plaintext is unpacked beside
/// it, so both count toward the package budget: a budget that holds the ciphertext
/// but not both is refused naming the rule (a 116 MiB package once announced a
/// 119 MiB budget and then failed with ENOSPC), and one that holds both boots.
#[test]
fn ciphertext_and_unpacked_entries_share_the_budget() {
    let k = setup();
    let www = &env().www;
    let cipher = std::fs::metadata(www.join("enc.zip")).unwrap().len();
    // the unpacked size, from a fetch with room to spare
    let stage = tempfile::tempdir().unwrap();
    let pkg = fetcher(stage.path(), identities(&k.mine)).fetch(&url("enc"), 0).unwrap();
    let unpacked: u64 = std::fs::read_dir(stage.path()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    drop(pkg);
    assert!(unpacked > 1000, "{unpacked}");
    let with_budget = |budget: u64| {
        let stage = tempfile::tempdir().unwrap();
        let f = fetcher_with(stage.path(), Duration::from_secs(2), std::slice::from_ref(&env().tls_ca_der), budget)
            .with_identities(identities(&k.mine));
        let r = f.fetch(&url("enc"), 0).map(|_| ()).map_err(|e| format!("{e:#}"));
        assert!(r.is_ok() || staged(stage.path()).is_empty(), "left {:?}", staged(stage.path()));
        r
    };
    // enough for the unpacked entries alone (all that was counted before), not for both
    let e = with_budget(unpacked + cipher / 2).unwrap_err();
    assert!(
        e.contains(&format!("the {cipher} bytes of ciphertext stay on the staging tmpfs until the plaintext is unpacked, so both must fit in {} bytes", unpacked + cipher / 2)),
        "{e}"
    );
    with_budget(cipher + unpacked).expect("a budget for both");
}
