//! A real (software) TPM: swtpm on a Unix socket, fresh per test. Quotes: the
//! AK is made from its template, PCR 12 is extended as stboot would, the quote is
//! checked, and each kind of tampering is refused with its reason. The TPM floor:
//! it only rises, and indices not as defined are refused. Skipped (loudly)
//! without swtpm unless STBOOT_REQUIRE_SWTPM is set, as scripts/test.sh does.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use stboot::attest::{check_quote, make_quote, QuoteFailure};
use stboot::digest::Sha256Digest;
use stboot::tpm::Tpm;

struct Swtpm {
    child: Child,
    _dir: tempfile::TempDir,
    sock: PathBuf,
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn swtpm() -> Option<Swtpm> {
    let have = Command::new("sh").args(["-c", "command -v swtpm"]).output().is_ok_and(|o| o.status.success());
    if !have {
        assert!(std::env::var_os("STBOOT_REQUIRE_SWTPM").is_none(), "STBOOT_REQUIRE_SWTPM is set but swtpm is missing");
        eprintln!("SKIPPED attest_swtpm: swtpm is not installed (scripts/setup.sh installs it)");
        return None;
    }
    swtpm_in(tempfile::tempdir().unwrap())
}

/// swtpm on the state in `dir`.
fn swtpm_in(dir: tempfile::TempDir) -> Option<Swtpm> {
    let sock = dir.path().join("cmd.sock");
    let ctrl = dir.path().join("ctrl.sock");
    let child = Command::new("swtpm")
        .args(["socket", "--tpm2", "--flags", "not-need-init,startup-clear"])
        .arg("--tpmstate")
        .arg(format!("dir={}", dir.path().display()))
        .arg("--server")
        .arg(format!("type=unixio,path={}", sock.display()))
        .arg("--ctrl")
        .arg(format!("type=unixio,path={}", ctrl.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting swtpm");
    let sw = Swtpm { child, _dir: dir, sock };
    // listening, not only there: the socket file exists from bind(), before listen()
    for _ in 0..400 {
        if std::os::unix::net::UnixStream::connect(&sw.sock).is_ok() {
            return Some(sw);
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("swtpm does not accept on {} after 10 s", sw.sock.display());
}

const PCRS: [u32; 11] = [0, 1, 2, 3, 4, 5, 6, 7, 12, 13, 14];

#[test]
fn a_quote_checks_and_every_tampering_is_named() {
    let Some(sw) = swtpm() else { return };
    let mut tpm = Tpm::open_spec(&format!("unix:{}", sw.sock.display())).expect("connecting to swtpm");
    tpm.extend(12, &Sha256Digest::of(b"an OS package")).unwrap();
    let nonce = b"0123456789abcdef0123456789abcdef";
    let key = b"wg public key\n";
    let q = make_quote(&mut tpm, nonce, Some(key), &PCRS).expect("quoting");
    let a = check_quote(&q, nonce, Some(key)).expect("a fresh quote checks");
    assert_eq!(a.pcrs, PCRS.to_vec());
    assert!(q.pcr_values.iter().any(|(p, v)| *p == 12 && *v != Sha256Digest::from_bytes([0; 32])));

    // the same AK again: a primary key of the endorsement hierarchy is made again
    let again = make_quote(&mut tpm, nonce, Some(key), &PCRS).unwrap();
    assert_eq!(again.ak_public, q.ak_public, "the AK is not the same key the second time");

    assert_eq!(check_quote(&q, b"another nonce", Some(key)), Err(QuoteFailure::Binding));
    assert_eq!(check_quote(&q, nonce, Some(b"another key")), Err(QuoteFailure::Binding));
    assert_eq!(check_quote(&q, nonce, None), Err(QuoteFailure::Binding));

    let mut pcrs = q.clone();
    pcrs.pcr_values[8].1 = Sha256Digest::of(b"another package");
    assert!(matches!(check_quote(&pcrs, nonce, Some(key)), Err(QuoteFailure::Pcrs(_))));

    let mut forged = q.clone();
    let n = forged.attest.len();
    forged.attest[n - 1] ^= 1; // the PCR digest
    let e = check_quote(&forged, nonce, Some(key)).unwrap_err();
    assert!(matches!(&e, QuoteFailure::Signature(m) if m.contains("not the AK's")), "{e}");

    let mut stranger = q.clone();
    stranger.ak_public = stboot::tpm::object::Public::parse(
        tpm.create_primary(0x4000_0001, &stboot::tpm::object::ak_template()).unwrap().public.as_bytes(),
    )
    .unwrap(); // the same template in the owner hierarchy: another key
    assert!(matches!(check_quote(&stranger, nonce, Some(key)), Err(QuoteFailure::Signature(_))));

    for cut in [0, 10, q.signature.len() - 1] {
        let mut short = q.clone();
        short.signature.truncate(cut);
        assert!(matches!(check_quote(&short, nonce, Some(key)), Err(QuoteFailure::Signature(_))), "cut {cut}");
    }
}

#[test]
fn a_credential_sealed_to_the_ek_and_the_ak_is_released_only_by_that_tpm_for_that_ak() {
    use stboot::attest::credential::make_credential;
    use stboot::tpm::object::{ak_template, ek_rsa_template};
    use stboot::tpm::TPM_RH_ENDORSEMENT;
    let (Some(a), Some(b)) = (swtpm(), swtpm()) else { return };
    let mut tpm = Tpm::open_spec(&format!("unix:{}", a.sock.display())).unwrap();
    let mut other = Tpm::open_spec(&format!("unix:{}", b.sock.display())).unwrap();
    let ek = tpm.create_primary(TPM_RH_ENDORSEMENT, &ek_rsa_template()).expect("making the EK");
    let ak = tpm.create_primary(TPM_RH_ENDORSEMENT, &ak_template()).expect("making the AK");
    let ak_name = ak.public.name().unwrap();
    let mut rng = rand_core::OsRng;
    let secret = b"a challenge of 32 bytes........!";

    let c = make_credential(&ek.public, &ak_name, secret, &mut rng).unwrap();
    let got = tpm.activate_credential(ak.handle, ek.handle, &c.blob, &c.secret).expect("activating");
    assert_eq!(got, secret);

    // another TPM (another EK) cannot open it, even with an AK of the same template
    let other_ek = other.create_primary(TPM_RH_ENDORSEMENT, &ek_rsa_template()).unwrap();
    let other_ak = other.create_primary(TPM_RH_ENDORSEMENT, &ak_template()).unwrap();
    assert_ne!(other_ek.public, ek.public, "two swtpms made the same EK");
    let e = other.activate_credential(other_ak.handle, other_ek.handle, &c.blob, &c.secret).unwrap_err();
    assert!(format!("{e:#}").contains("ActivateCredential") || format!("{e:#}").contains("0x"), "{e:#}");

    // the right TPM, but sealed for another object's Name: refused
    let mut wrong_name = ak_name.clone();
    wrong_name[5] ^= 1;
    let c2 = make_credential(&ek.public, &wrong_name, secret, &mut rng).unwrap();
    assert!(tpm.activate_credential(ak.handle, ek.handle, &c2.blob, &c2.secret).is_err());
    // and the first one still works (the failed attempts changed nothing)
    assert_eq!(tpm.activate_credential(ak.handle, ek.handle, &c.blob, &c.secret).unwrap(), secret);
}

/// A swtpm "manufactured" by swtpm_setup: an RSA EK certificate in NV index
/// 0x01c00002, issued by swtpm's local CA (/var/lib/swtpm-localca).
fn manufactured_swtpm() -> Option<Swtpm> {
    let have = Command::new("sh").args(["-c", "command -v swtpm_setup"]).output().is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var_os("STBOOT_REQUIRE_SWTPM").is_none(),
            "STBOOT_REQUIRE_SWTPM is set but swtpm_setup is missing"
        );
        eprintln!(
            "SKIPPED attest_swtpm enrolment: swtpm_setup is not installed (scripts/setup.sh installs swtpm-tools)"
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new("swtpm_setup")
        .args(["--tpm2", "--create-ek-cert", "--overwrite", "--tpmstate"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "swtpm_setup: {}", String::from_utf8_lossy(&o.stderr));
    swtpm_in(dir)
}

fn local_ca() -> Vec<Vec<u8>> {
    let pem = std::fs::read("/var/lib/swtpm-localca/issuercert.pem").expect("swtpm's local CA");
    stboot::pem::certificates(&pem, "issuercert.pem").unwrap()
}

#[test]
fn an_ak_is_enrolled_through_the_ek_certificate_and_only_its_tpm_answers() {
    use stboot::attest::enrol::{activate, challenge, finish, request, Answer, EkTrust};
    let (Some(a), Some(b)) = (manufactured_swtpm(), swtpm()) else { return };
    let mut tpm = Tpm::open_spec(&format!("unix:{}", a.sock.display())).unwrap();
    let mut other = Tpm::open_spec(&format!("unix:{}", b.sock.display())).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut rng = rand_core::OsRng;

    let req = request(&mut tpm).expect("the enrolment request");
    assert!(req.ek_certificate.is_some(), "swtpm_setup wrote no EK certificate");
    let trust = EkTrust { cas: local_ca(), ek_publics: vec![] };
    let (ch, pending) = challenge(&req, &trust, now, &mut rng).expect("the challenge");
    assert!(pending.ek_trusted_by.contains("issued by EK CA"), "{}", pending.ek_trusted_by);
    let answer = activate(&mut tpm, &ch).expect("the TPM answers");
    let record = finish(&pending, &answer).expect("enrolled");
    assert_eq!(record.ak_public, req.ak_public);

    // the enrolled AK is the one that quotes
    let q = make_quote(&mut tpm, b"nonce", None, &PCRS).unwrap();
    assert_eq!(record.ak().unwrap(), q.ak_public);

    // another TPM cannot answer the challenge
    let e = activate(&mut other, &ch).unwrap_err();
    assert!(format!("{e:#}").contains("not the AK the challenge is for"), "{e:#}");
    // a made-up answer is refused
    let forged = Answer { version: 1, secret: vec![0; 32] };
    assert!(format!("{:#}", finish(&pending, &forged).unwrap_err()).contains("not enrolled"));
    // without a trusted CA or a listed EK, no challenge is made
    let e = challenge(&req, &EkTrust::default(), now, &mut rng).unwrap_err();
    assert!(format!("{e:#}").contains("no EK CA was given"), "{e:#}");
    // a CA that did not issue the EK certificate
    let stranger = stboot::keys::root_certificate(
        &stboot::keys::generate_key(),
        &stboot::keys::Validity::from_args(None, None, 30).unwrap(),
    )
    .unwrap();
    let stranger = EkTrust { cas: stboot::pem::certificates(stranger.as_bytes(), "x").unwrap(), ek_publics: vec![] };
    let e = challenge(&req, &stranger, now, &mut rng).unwrap_err();
    assert!(format!("{e:#}").contains("is not among the EK CAs"), "{e:#}");
    // a TPM without an EK certificate, trusted by its listed EK
    let bare = request(&mut other).unwrap();
    assert!(bare.ek_certificate.is_none());
    let listed = EkTrust { cas: vec![], ek_publics: vec![Sha256Digest::of(&bare.ek_public)] };
    let (ch, pending) = challenge(&bare, &listed, now, &mut rng).unwrap();
    finish(&pending, &activate(&mut other, &ch).unwrap()).expect("a listed EK enrols");
}

#[test]
fn stmgr_attest_enrols_a_machine_in_four_commands() {
    use std::os::unix::fs::PermissionsExt;
    let Some(sw) = manufactured_swtpm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let tpm = format!("unix:{}", sw.sock.display());
    let stmgr = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_stmgr")).args(args).current_dir(dir.path()).output().unwrap();
        (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr))
    };
    let (ok, out) = stmgr(&["attest", "request", "-tpm", &tpm, "-out", "request.json"]);
    assert!(ok && out.contains("EK certificate: present"), "{out}");
    // no trust anchor: refused, saying what is missing
    let (ok, out) = stmgr(&["attest", "challenge", "-request", "request.json", "-out", "c.json", "-state", "p.json"]);
    assert!(!ok && out.contains("no EK CA was given"), "{out}");
    let (ok, out) = stmgr(&[
        "attest",
        "challenge",
        "-request",
        "request.json",
        "-ekCA",
        "/var/lib/swtpm-localca/issuercert.pem",
        "-out",
        "challenge.json",
        "-state",
        "pending.json",
    ]);
    assert!(ok && out.contains("EK trusted: EK certificate"), "{out}");
    let mode = std::fs::metadata(dir.path().join("pending.json")).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the pending state (with the secret) is readable by others: {mode:o}");
    let (ok, out) = stmgr(&["attest", "activate", "-tpm", &tpm, "-challenge", "challenge.json", "-out", "answer.json"]);
    assert!(ok, "{out}");
    let (ok, out) = stmgr(&["attest", "enrol", "-state", "pending.json", "-answer", "answer.json", "-out", "ak.json"]);
    assert!(ok && out.contains("enrolled: AK 000b"), "{out}");
    let record = std::fs::read_to_string(dir.path().join("ak.json")).unwrap();
    let pending = std::fs::read_to_string(dir.path().join("pending.json")).unwrap();
    let secret = pending.split("\"secret\": \"").nth(1).unwrap().split('"').next().unwrap();
    assert!(!record.contains(secret), "the record holds the secret");
    // the EK listed instead of its CA
    let ek = out.split("EK sha256:").nth(1).unwrap().split(' ').next().unwrap().to_string();
    std::fs::write(dir.path().join("eks.txt"), format!("# our fleet\nsha256:{ek}\n")).unwrap();
    let (ok, out) = stmgr(&[
        "attest",
        "challenge",
        "-request",
        "request.json",
        "-ekList",
        "eks.txt",
        "-out",
        "c2.json",
        "-state",
        "p2.json",
    ]);
    assert!(ok && out.contains("is in the list of trusted EKs"), "{out}");
}

#[test]
fn stmgr_attest_quote_writes_evidence_whose_quote_checks() {
    use stboot::attest::evidence::Evidence;
    let Some(sw) = swtpm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let handoff = dir.path().join("stboot");
    std::fs::create_dir(&handoff).unwrap();
    // what stboot hands over (the report names the PCRs it measured into)
    std::fs::write(handoff.join("eventlog.bin"), b"LOG").unwrap();
    std::fs::write(handoff.join("report.json"), br#"{"version": 2, "pcrs": {"12": "00", "13": "00", "14": "00"}}"#)
        .unwrap();
    std::fs::write(handoff.join("descriptor.json"), br#"{"version": 1}"#).unwrap();
    std::fs::write(dir.path().join("wg0.pub"), b"wg key\n").unwrap();
    let tpm = format!("unix:{}", sw.sock.display());
    let nonce = "00112233445566778899aabbccddeeff";
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_stmgr")).args(args).current_dir(dir.path()).output().unwrap();
        (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr))
    };
    let h = handoff.display().to_string();
    let (ok, out) =
        run(&["attest", "quote", "-tpm", &tpm, "-nonce", nonce, "-key", "wg0.pub", "-handoff", &h, "-out", "e.json"]);
    assert!(ok && out.contains("quoted PCRs 0,1,2,3,4,5,6,7,12,13,14"), "{out}");
    let e = Evidence::parse(&std::fs::read(dir.path().join("e.json")).unwrap()).unwrap();
    assert_eq!(e.eventlog, b"LOG");
    assert_eq!(e.descriptor, br#"{"version": 1}"#);
    assert!(e.firmware_eventlog.is_none());
    let n = stboot::attest::nonce_from_hex(nonce).unwrap();
    check_quote(&e.quote().unwrap(), &n, Some(b"wg key\n")).expect("the evidence's quote checks");
    assert_eq!(check_quote(&e.quote().unwrap(), &n, None), Err(QuoteFailure::Binding));

    let (ok, out) = run(&["attest", "quote", "-tpm", &tpm, "-nonce", "00zz", "-handoff", &h, "-out", "x.json"]);
    assert!(!ok && out.contains("is not hex"), "{out}");
    let (ok, out) = run(&["attest", "quote", "-tpm", &tpm, "-nonce", "0011", "-handoff", &h, "-out", "x.json"]);
    assert!(!ok && out.contains("give 8 to 64"), "{out}");
    let (ok, out) =
        run(&["attest", "quote", "-tpm", &tpm, "-nonce", nonce, "-handoff", "/nonexistent", "-out", "x.json"]);
    assert!(!ok && out.contains("/nonexistent/eventlog.bin (handed over by stboot)"), "{out}");
    let mut bad = std::fs::read_to_string(dir.path().join("e.json")).unwrap();
    bad = bad.replacen("\"version\": 1", "\"version\": 9", 1);
    let e = Evidence::parse(bad.as_bytes()).unwrap_err();
    assert!(format!("{e:#}").contains("evidence version 9"), "{e:#}");
    assert!(Evidence::parse(b"{\"version\": 1").is_err());
}

// -- the verifier: evidence from a boot replayed into swtpm, appraised ----------

/// What stboot would have booted: a package signed by `plain` (a signature) and
/// `logged` (a Sigsum proof from integration-tests/sigsum-log.py), a trust policy
/// directory with a threshold of 2 and the Sigsum policy, and the tools to make
/// evidence of booting it.
struct Scene {
    dir: tempfile::TempDir,
    sw: Swtpm,
    enrolment: stboot::attest::enrol::Enrolment,
}

fn stmgr_in(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_stmgr")).args(args).current_dir(dir).output().unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr))
}

fn must(dir: &std::path::Path, args: &[&str]) -> String {
    let (ok, out) = stmgr_in(dir, args);
    assert!(ok, "stmgr {args:?}: {out}");
    out
}

/// The PKI, the package (descriptor os.json, archive os.zip) and the trust policy
/// directory `tp` (threshold 2, TLS roots, Sigsum policy), made once per scene.
fn make_package(d: &std::path::Path) {
    must(d, &["keygen", "certificate", "-isCA"]);
    for n in ["plain", "logged", "third"] {
        must(d, &["keygen", "certificate", "-certOut", &format!("{n}.pem"), "-keyOut", &format!("{n}.key")]);
    }
    let mut k = vec![0x4d; 300_000];
    k[0x202..0x206].copy_from_slice(b"HdrS");
    std::fs::write(d.join("vmlinuz"), k).unwrap();
    std::fs::write(d.join("initrd.cpio"), b"initramfs bytes".repeat(1000)).unwrap();
    let create = ["-kernel", "vmlinuz", "-initramfs", "initrd.cpio", "-cmdline", "console=ttyS0", "-label"];
    must(d, &[&["ospkg", "create"][..], &create, &["test OS", "-url", "os.zip", "-out", "os"]].concat());
    must(d, &["ospkg", "sign", "-key", "plain.key", "-cert", "plain.pem", "-ospkg", "os"]);
    let tp = d.join("tp");
    std::fs::create_dir(&tp).unwrap();
    std::fs::write(
        tp.join("trust_policy.json"),
        r#"{"ospkg_signature_threshold": 2, "ospkg_fetch_method": "network"}"#,
    )
    .unwrap();
    std::fs::copy(d.join("rootcert.pem"), tp.join("ospkg_signing_root.pem")).unwrap();
    std::fs::copy(d.join("plain.pem"), tp.join("tls_roots.pem")).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("integration-tests/sigsum-log.py");
    let policy = tp.join("ospkg_trust_policy");
    let log = |file: &str, proof: &str| {
        let o = Command::new("python3")
            .current_dir(d)
            .arg(&script)
            .args(["log", file, "logged.key", proof, "--index", "3", "--policy-out"])
            .arg(&policy)
            .output()
            .expect("python3 (scripts/setup.sh installs it)");
        assert!(o.status.success(), "sigsum-log.py: {}", String::from_utf8_lossy(&o.stderr));
    };
    log("os.zip", "os.proof");
    std::fs::write(d.join("another.zip"), b"another archive").unwrap();
    log("another.zip", "another.proof");
    std::fs::copy(d.join("os.json"), d.join("plain-only.json")).unwrap();
    must(d, &["ospkg", "sigsum", "-proof", "os.proof", "-cert", "logged.pem", "-ospkg", "os"]);
}

/// Enrols the swtpm's AK (its EK listed by digest, as an operator without a vendor
/// CA would).
fn enrol(tpm: &mut Tpm) -> stboot::attest::enrol::Enrolment {
    use stboot::attest::enrol::{activate, challenge, finish, request, EkTrust};
    let req = request(tpm).unwrap();
    let trust = EkTrust { cas: vec![], ek_publics: vec![Sha256Digest::of(&req.ek_public)] };
    let (ch, pending) = challenge(&req, &trust, 0, &mut rand_core::OsRng).unwrap();
    finish(&pending, &activate(tpm, &ch).unwrap()).unwrap()
}

impl Scene {
    fn new() -> Option<Scene> {
        let sw = swtpm()?;
        let dir = tempfile::tempdir().unwrap();
        make_package(dir.path());
        let mut tpm = Tpm::open_spec(&format!("unix:{}", sw.sock.display())).unwrap();
        let enrolment = enrol(&mut tpm);
        std::fs::write(dir.path().join("ak.json"), serde_json::to_string(&enrolment).unwrap()).unwrap();
        Some(Scene { dir, sw, enrolment })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn tpm(&self) -> Tpm {
        Tpm::open_spec(&format!("unix:{}", self.sw.sock.display())).unwrap()
    }

    /// "Boots" `descriptor` (a file in the scene) under the trust policy `tp`:
    /// extends the TPM with the measurements stboot makes and hands over what
    /// stboot hands over, in `handoff/`.
    fn boot(&self, descriptor: &str, tp: &str) {
        self.boot_version(descriptor, tp, None)
    }

    /// [`Scene::boot`] of a package whose manifest says `version`.
    fn boot_version(&self, descriptor: &str, tp: &str, version: Option<u64>) {
        self.boot_full(descriptor, tp, version, None)
    }

    /// [`Scene::boot_version`], the package a UKI whose sections (name, digest) go
    /// into PCR 11 first when `uki` is given, and the report names it.
    fn boot_full(
        &self,
        descriptor: &str,
        tp: &str,
        version: Option<u64>,
        uki: Option<&[(&'static str, Sha256Digest)]>,
    ) {
        let d = self.path();
        let trust = stboot::config::TrustConfig::load(&d.join(tp), None).unwrap();
        let desc = std::fs::read(d.join(descriptor)).unwrap();
        let archive = Sha256Digest::of(&std::fs::read(d.join("os.zip")).unwrap());
        let pcrs = trust.policy.pcrs();
        let pkg = stboot::measure::PackageInputs {
            archive_name: "os.zip",
            archive_sha256: &archive,
            descriptor: &desc,
            version,
            tpm_floor: match trust.policy.tpm_floor() {
                false => stboot::measure::TpmFloor::Off,
                true => match stboot::tpm::floor::read(&mut self.tpm()).unwrap() {
                    Some(n) => stboot::measure::TpmFloor::At(n),
                    None => stboot::measure::TpmFloor::Undefined,
                },
            },
        };
        let mut ms = uki.map(|s| stboot::measure::uki::measurements(11, s)).unwrap_or_default();
        ms.extend(stboot::measure::measurements(&pcrs, &pkg, &stboot::measure::AuthorityInputs::of(&trust)));
        ms.push(stboot::measure::identity_measurement(&pcrs, b"machine-7"));
        let mut tpm = self.tpm();
        for m in &ms {
            tpm.extend(m.pcr, &m.extend_value()).unwrap();
        }
        let h = d.join("handoff");
        std::fs::create_dir_all(&h).unwrap();
        std::fs::write(h.join("eventlog.bin"), stboot::measure::eventlog::write(&ms)).unwrap();
        std::fs::write(h.join("descriptor.json"), &desc).unwrap();
        let mut report = serde_json::json!({"version": 2, "ospkg": {"label": "test OS", "archive_sha256": archive.hex()},
            "pcrs": {"pcr12": "", "pcr13": "", "pcr14": ""}});
        if uki.is_some() {
            report["ospkg"]["uki"] = "boot/os.efi".into();
            report["pcrs"]["pcr11"] = "".into();
        }
        std::fs::write(h.join("report.json"), report.to_string()).unwrap();
    }

    /// `stmgr attest quote` for `nonce` with the key file wg0.pub; the evidence's bytes.
    fn quote(&self, nonce: &str, out: &str) -> Vec<u8> {
        let d = self.path();
        std::fs::write(d.join("wg0.pub"), b"wg0 public key\n").unwrap();
        let tpm = format!("unix:{}", self.sw.sock.display());
        must(
            d,
            &["attest", "quote", "-tpm", &tpm, "-nonce", nonce, "-key", "wg0.pub", "-handoff", "handoff", "-out", out],
        );
        std::fs::read(d.join(out)).unwrap()
    }

    fn appraise(
        &self,
        evidence: &[u8],
        nonce: &str,
        key: Option<&[u8]>,
        tp: &str,
    ) -> stboot::attest::appraise::Appraisal {
        self.appraise_with(evidence, nonce, key, tp, std::slice::from_ref(&self.enrolment))
    }

    fn appraise_with(
        &self,
        evidence: &[u8],
        nonce: &str,
        key: Option<&[u8]>,
        tp: &str,
        enrolments: &[stboot::attest::enrol::Enrolment],
    ) -> stboot::attest::appraise::Appraisal {
        let trust = stboot::config::TrustConfig::load(&self.path().join(tp), None).unwrap();
        let nonce = stboot::attest::nonce_from_hex(nonce).unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let v = stboot::attest::appraise::Verifier {
            nonce: &nonce,
            key,
            enrolments,
            trust: &trust,
            now_unix: now,
            firmware_reference: None,
        };
        stboot::attest::appraise::appraise(evidence, &v)
    }
}

const N1: &str = "0102030405060708090a0b0c0d0e0f100102030405060708090a0b0c0d0e0f10";
const N2: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

/// The failed checks of `a`, as (name, detail).
fn failures(a: &stboot::attest::appraise::Appraisal) -> Vec<(&'static str, String)> {
    a.checks.iter().filter(|c| !c.ok).map(|c| (c.check, c.detail.clone())).collect()
}

/// `a` failed, `check` among its failures with `words` in its reason.
fn refused(a: &stboot::attest::appraise::Appraisal, check: &str, words: &str) {
    assert!(!a.verified, "accepted: {}", a.verdict);
    let f = failures(a);
    assert!(f.iter().any(|(c, d)| *c == check && d.contains(words)), "expected {check}: {words:?}; got {f:#?}");
    // shown with --nocapture: the reasons a verifier reads
    eprintln!("REFUSED {check}: {}", f.iter().find(|(c, _)| *c == check).map(|(_, d)| d.as_str()).unwrap_or(""));
    assert!(a.verdict.starts_with("NOT VERIFIED"), "{}", a.verdict);
}

#[test]
fn stmgr_attest_verify_names_the_package_its_signers_and_its_log_entry() {
    let Some(s) = Scene::new() else { return };
    let d = s.path();
    s.boot("os.json", "tp");
    s.quote(N1, "evidence.json");
    let (ok, out) = stmgr_in(
        d,
        &[
            "attest",
            "verify",
            "-evidence",
            "evidence.json",
            "-nonce",
            N1,
            "-key",
            "wg0.pub",
            "-enrolment",
            "ak.json",
            "-trustPolicy",
            "tp",
            "-json",
            "verdict.json",
        ],
    );
    assert!(ok, "{out}");
    let root =
        Sha256Digest::of(&stboot::pem::certificates(&std::fs::read(d.join("rootcert.pem")).unwrap(), "r").unwrap()[0]);
    let archive = Sha256Digest::of(&std::fs::read(d.join("os.zip")).unwrap());
    let key = Sha256Digest::of(b"wg0 public key\n");
    for want in [
        "ok   quote ",
        "ok   eventlog ",
        "ok   signatures         Signatures: 2 found, 2 valid, 2 required",
        "ok   identity           UX identity \"machine-7\" measured into PCR 14",
        &format!("this machine booted OS package \"test OS\" (archive os.zip sha256:{})", archive.hex()),
        &format!("under root sha256:{}", root.hex()),
        "logged in Sigsum log ",
        " at index 3",
        &format!("its key sha256:{} is bound to this quote", key.hex()),
        "firmware PCRs 0-7: not checked: the machine handed over no firmware event log",
    ] {
        assert!(out.contains(want), "{want:?} not in:\n{out}");
    }
    assert!(out.contains("signed by \"CN=") && out.matches("CN=").count() >= 2, "{out}");
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("verdict.json")).unwrap()).unwrap();
    assert_eq!(j["verified"], true);
    assert_eq!(j["booted"]["archive_sha256"], archive.hex());
    assert_eq!(j["booted"]["identity"], "machine-7");
    assert_eq!(j["booted"]["signers"][1]["sigsum_leaf_index"], 3);
    assert_eq!(j["booted"]["signers"][0]["sigsum_log"], serde_json::Value::Null);

    // stmgr attest verify of evidence.json with the enrolment, and more flags
    let verify = |nonce: &str, more: &[&str]| {
        let base = ["attest", "verify", "-evidence", "evidence.json", "-nonce", nonce, "-enrolment", "ak.json"];
        Command::new(env!("CARGO_BIN_EXE_stmgr")).args(base).args(more).current_dir(d).output().unwrap()
    };
    let text = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
    };
    // without -key the evidence's own key is the one named
    let o = verify(N1, &["-trustPolicy", "tp"]);
    assert!(o.status.success() && text(&o).contains(&key.hex()), "{}", text(&o));
    // another nonce: exit 1, the reason on the console
    let o = verify(N2, &["-trustPolicy", "tp"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("FAIL quote.nonce") && out.contains("NOT VERIFIED: quote.nonce failed"), "{out}");
    // a verifier's own mistakes are errors naming the flag, exit 2
    std::fs::write(d.join("list.json"), "[1]").unwrap();
    for (more, says) in [
        (&["-trustPolicy", "nope"][..], "-trustPolicy nope"),
        (
            &["-trustPolicy", "tp", "-firmwareReference", "list.json"][..],
            "-firmwareReference list.json: expected an object",
        ),
        (
            &["-trustPolicy", "tp", "-firmwareReference", "ak.json"][..],
            "-firmwareReference ak.json: \"ak_name\" is not a PCR number",
        ),
    ] {
        let o = verify(N1, more);
        assert!(o.status.code() == Some(2) && text(&o).contains(says), "{more:?}: {:?} {}", o.status, text(&o));
    }
    // a firmware reference: the evidence's own PCRs 0-7 hold; another value fails
    let o = verify(N1, &["-trustPolicy", "tp", "-firmwareReference", "evidence.json"]);
    assert!(
        o.status.success() && text(&o).contains("ok   firmware           PCRs 0,1,2,3,4,5,6,7 equal the reference"),
        "{}",
        text(&o)
    );
    std::fs::write(d.join("ref.json"), format!(r#"{{"pcr3": "{}"}}"#, "ab".repeat(32))).unwrap();
    let o = verify(N1, &["-trustPolicy", "tp", "-firmwareReference", "ref.json"]);
    let want = format!("FAIL firmware           PCR 3 is {}, the reference has {}", "0".repeat(64), "ab".repeat(32));
    assert!(o.status.code() == Some(1) && text(&o).contains(&want), "{}", text(&o));
}

#[test]
fn evidence_that_does_not_hold_is_refused_with_its_reason() {
    let Some(s) = Scene::new() else { return };
    let d = s.path();
    s.boot("os.json", "tp");
    let good = s.quote(N1, "evidence.json");
    let key = b"wg0 public key\n".as_slice();
    let ok = s.appraise(&good, N1, Some(key), "tp");
    assert!(ok.verified, "{:#?}", ok.checks);

    // another nonce (a replayed quote: an earlier boot's evidence carries that
    // boot's nonce) and another key
    refused(&s.appraise(&good, N2, Some(key), "tp"), "quote.nonce", "another nonce or key");
    refused(&s.appraise(&good, N1, Some(b"another key\n"), "tp"), "quote.nonce", "another nonce or key");

    // an AK that was not enrolled: the enrolment of another TPM only
    let other = swtpm().unwrap();
    let mut other_tpm = Tpm::open_spec(&format!("unix:{}", other.sock.display())).unwrap();
    let other_enrolment = enrol(&mut other_tpm);
    let a = s.appraise_with(&good, N1, Some(key), "tp", std::slice::from_ref(&other_enrolment));
    refused(&a, "ak", "is not enrolled");
    // the quote claims the other TPM's enrolled AK: its signature does not hold
    let mut claims: serde_json::Value = serde_json::from_slice(&good).unwrap();
    claims["ak_public"] = serde_json::json!(b64(&other_enrolment.ak_public));
    let a = s.appraise_with(&bytes(&claims), N1, Some(key), "tp", std::slice::from_ref(&other_enrolment));
    refused(&a, "quote.signature", "not the AK's");

    // the event log: one event changed, dropped, added
    let ev: serde_json::Value = serde_json::from_slice(&good).unwrap();
    let log = unb64(&ev["eventlog"]);
    let events = stboot::measure::eventlog::parse(&log).unwrap();
    let rewrite = |f: &dyn Fn(&mut Vec<stboot::measure::eventlog::Event>)| {
        let mut changed = events.clone();
        f(&mut changed);
        let mut v = ev.clone();
        v["eventlog"] = serde_json::json!(b64(&raw_log(&changed)));
        bytes(&v)
    };
    let changed = rewrite(&|es| es[2].sha256 = Some(Sha256Digest::of(b"another trust policy")));
    refused(&s.appraise(&changed, N1, Some(key), "tp"), "eventlog", "the event logs replay to");
    let dropped = rewrite(&|es| {
        es.remove(1);
    });
    refused(&s.appraise(&dropped, N1, Some(key), "tp"), "eventlog", "the event logs replay to");
    let added = rewrite(&|es| {
        let mut extra = es[0].clone();
        extra.sha256 = Some(Sha256Digest::of(b"one more"));
        es.push(extra)
    });
    refused(&s.appraise(&added, N1, Some(key), "tp"), "eventlog", "the event logs replay to");
    // the identity event's data changed, its digest kept: named
    let renamed = rewrite(&|es| {
        let last = es.len() - 1;
        es[last].data = b"machine-8".to_vec();
    });
    refused(&s.appraise(&renamed, N1, Some(key), "tp"), "identity", "not what was measured");

    // the PCR values in the evidence are not those quoted
    let mut v = ev.clone();
    v["pcrs"]["13"] = serde_json::json!(Sha256Digest::of(b"x").hex());
    refused(&s.appraise(&bytes(&v), N1, Some(key), "tp"), "quote.pcrs", "not the values quoted");

    // a descriptor swapped for another signed one
    let mut v = ev.clone();
    v["descriptor"] = serde_json::json!(b64(&std::fs::read(d.join("plain-only.json")).unwrap()));
    refused(&s.appraise(&bytes(&v), N1, Some(key), "tp"), "package.descriptor", "not the one measured");
    // the report names another archive
    let mut v = ev.clone();
    v["report"]["ospkg"]["archive_sha256"] = serde_json::json!(Sha256Digest::of(b"another").hex());
    refused(&s.appraise(&bytes(&v), N1, Some(key), "tp"), "package.archive", "is not sha256:");

    // another trust policy than the machine's (no Sigsum policy): the measured
    // authority differs, and the proof does not count
    let tp2 = d.join("tp2");
    std::fs::create_dir(&tp2).unwrap();
    for f in ["trust_policy.json", "ospkg_signing_root.pem", "tls_roots.pem"] {
        std::fs::copy(d.join("tp").join(f), tp2.join(f)).unwrap();
    }
    let a = s.appraise(&good, N1, Some(key), "tp2");
    refused(&a, "authority", "the machine measured 1 Sigsum policy event(s), the directory gives 0");
    refused(&a, "signatures", "Signatures: 2 found, 1 valid, 2 required");

    // truncated and malformed evidence: a reason, never a panic
    for cut in [0, 1, good.len() / 3, good.len() / 2, good.len() - 2] {
        refused(&s.appraise(&good[..cut], N1, Some(key), "tp"), "evidence", "not an evidence file");
    }
    let mut v = ev.clone();
    v["quote"] = serde_json::json!(b64(b"not a quote"));
    refused(&s.appraise(&bytes(&v), N1, Some(key), "tp"), "quote.signature", "");
    let mut v = ev.clone();
    v["eventlog"] = serde_json::json!("%%%");
    refused(&s.appraise(&bytes(&v), N1, Some(key), "tp"), "evidence", "not base64");
    let mut v = ev.clone();
    v["eventlog"] = serde_json::json!(b64(&log[..log.len() - 5]));
    refused(&s.appraise(&bytes(&v), N1, Some(key), "tp"), "eventlog", "runs past the end");
    let mut v = ev.clone();
    v["descriptor"] = serde_json::json!(b64(b"{"));
    let a = s.appraise(&bytes(&v), N1, Some(key), "tp");
    refused(&a, "package.descriptor", "not the one measured");
    refused(&a, "signatures", "the evidence's descriptor");
}

#[test]
fn a_boot_the_verifier_must_not_accept_is_refused_though_its_quote_holds() {
    let Some(s) = Scene::new() else { return };
    let key = b"wg0 public key\n".as_slice();

    // PCRs extended outside the log (after the boot): the log does not replay
    s.boot("os.json", "tp");
    s.tpm().extend(13, &Sha256Digest::of(b"unlogged")).unwrap();
    let e = s.quote(N1, "outside.json");
    refused(&s.appraise(&e, N1, Some(key), "tp"), "eventlog", "PCR 13 is");
    let Some(s) = Scene::new() else { return };
    let d2 = s.path();

    // a package whose signatures fall short under the policy: threshold 3, measured
    // as such (the machine was told 3 and booted anyway; the verifier says no)
    let tp3 = d2.join("tp3");
    std::fs::create_dir(&tp3).unwrap();
    for f in ["ospkg_signing_root.pem", "tls_roots.pem", "ospkg_trust_policy"] {
        std::fs::copy(d2.join("tp").join(f), tp3.join(f)).unwrap();
    }
    std::fs::write(
        tp3.join("trust_policy.json"),
        r#"{"ospkg_signature_threshold": 3, "ospkg_fetch_method": "network"}"#,
    )
    .unwrap();
    s.boot("os.json", "tp3");
    let e = s.quote(N1, "short.json");
    let a = s.appraise(&e, N1, Some(key), "tp3");
    refused(&a, "signatures", "Signatures: 2 found, 2 valid, 3 required");
    assert!(failures(&a)[0].1.ends_with("3 required"), "{:?}", failures(&a));
    assert_eq!(failures(&a).len(), 1, "{:#?}", failures(&a));
}

#[test]
fn a_sigsum_proof_for_another_archive_does_not_count() {
    let Some(s) = Scene::new() else { return };
    let d = s.path();
    // the descriptor carries a proof whose leaf is another archive's
    let mut desc: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("os.json")).unwrap()).unwrap();
    desc["signatures"][1] = serde_json::json!(b64(&std::fs::read(d.join("another.proof")).unwrap()));
    std::fs::write(d.join("wrong-proof.json"), serde_json::to_vec(&desc).unwrap()).unwrap();
    s.boot("wrong-proof.json", "tp");
    let e = s.quote(N1, "e.json");
    let a = s.appraise(&e, N1, Some(b"wg0 public key\n"), "tp");
    refused(&a, "signatures", "signature 1: the leaf signature does not verify for this archive");
    assert_eq!(failures(&a).len(), 1, "{:#?}", failures(&a));
}

fn b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn unb64(v: &serde_json::Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap()
}

fn bytes(v: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// An event log with exactly these events (their SHA-256 digests as given).
fn raw_log(events: &[stboot::measure::eventlog::Event]) -> Vec<u8> {
    let mut log = stboot::measure::eventlog::write(&[]);
    for e in events {
        log.extend_from_slice(&e.pcr.to_le_bytes());
        log.extend_from_slice(&e.event_type.to_le_bytes());
        log.extend_from_slice(&1u32.to_le_bytes());
        log.extend_from_slice(&0x000bu16.to_le_bytes());
        log.extend_from_slice(e.sha256.unwrap().as_bytes());
        log.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
        log.extend_from_slice(&e.data);
    }
    log
}

/// swtpm on TCP (the port and the next one, for its control channel), which
/// tpm2-tools' swtpm TCTI speaks; `None` when tpm2-tools are missing (loudly).
fn swtpm_tcp() -> Option<(Swtpm, u16)> {
    let have = Command::new("sh").args(["-c", "command -v tpm2_quote"]).output().is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var_os("STBOOT_REQUIRE_SWTPM").is_none(),
            "STBOOT_REQUIRE_SWTPM is set but tpm2-tools are missing"
        );
        eprintln!(
            "SKIPPED attest_swtpm tpm2-tools interop: tpm2-tools are not installed (scripts/setup.sh installs them)"
        );
        return None;
    }
    swtpm()?; // swtpm itself present (or skipped loudly)
    for _ in 0..50 {
        let port = 20000
            + (std::process::id() as u16 % 20000)
            + (rand_core::RngCore::next_u32(&mut rand_core::OsRng) % 5000) as u16 * 2;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err()
            || std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_err()
        {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--flags", "not-need-init,startup-clear"])
            .arg("--tpmstate")
            .arg(format!("dir={}", dir.path().display()))
            .args(["--server", &format!("type=tcp,port={port},bindaddr=127.0.0.1")])
            .args(["--ctrl", &format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting swtpm");
        // owned at once, so that it is killed and waited for whatever happens
        let sw = Swtpm { child, _dir: dir, sock: PathBuf::new() };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some((sw, port));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("swtpm did not listen on 127.0.0.1:{port}");
    }
    panic!("no two free consecutive TCP ports");
}

/// tpm2-tools as an independent producer: the AK tpm2_createprimary makes from
/// the documented command line is ours, and a tpm2_quote with the same qualifying
/// data, put into an evidence file, is accepted by the verifier.
#[test]
fn a_quote_made_by_tpm2_tools_is_accepted() {
    let Some((sw, port)) = swtpm_tcp() else { return };
    let Some(s) = Scene::new() else { return };
    let d = s.path();
    let tcti = format!("swtpm:host=127.0.0.1,port={port}");
    let tool = |args: &[&str]| {
        let o = Command::new(args[0]).args(&args[1..]).args(["-T", &tcti]).current_dir(d).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // the machine: this TPM, its AK enrolled, the boot measured by tpm2_pcrextend
    let mut tpm = Tpm::open_spec(&format!("tcp:127.0.0.1:{port}")).unwrap();
    let enrolment = enrol(&mut tpm);
    drop(tpm);
    s.boot("os.json", "tp"); // writes handoff/ (and extends the scene's own TPM, unused here)
    let events = stboot::measure::eventlog::parse(&std::fs::read(d.join("handoff/eventlog.bin")).unwrap()).unwrap();
    for e in &events {
        tool(&["tpm2_pcrextend", &format!("{}:sha256={}", e.pcr, e.sha256.unwrap().hex())]);
    }
    tool(&[
        "tpm2_createprimary",
        "-C",
        "e",
        "-g",
        "sha256",
        "-G",
        "ecc256:ecdsa-sha256:null",
        "-a",
        "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign",
        "-c",
        "ak.ctx",
    ]);
    tool(&["tpm2_readpublic", "-c", "ak.ctx", "-o", "ak.pub"]);
    let tss = std::fs::read(d.join("ak.pub")).unwrap();
    let ak_public = tss[2..].to_vec(); // TPM2B_PUBLIC: the size, then TPMT_PUBLIC
    assert_eq!(u16::from_be_bytes([tss[0], tss[1]]) as usize, ak_public.len());
    assert_eq!(ak_public, enrolment.ak_public, "tpm2_createprimary's AK is not stboot-rs's AK template");

    let nonce = stboot::attest::nonce_from_hex(N1).unwrap();
    let key = b"wg0 public key\n";
    let q = stboot::attest::qualifying_data(&nonce, Some(key));
    let pcrs = "sha256:0,1,2,3,4,5,6,7,12,13,14";
    tool(&[
        "tpm2_quote",
        "-c",
        "ak.ctx",
        "-l",
        pcrs,
        "-q",
        &q.hex(),
        "-m",
        "quote.msg",
        "-s",
        "quote.sig",
        "-g",
        "sha256",
    ]);
    let listing = tool(&["tpm2_pcrread", pcrs]);
    let mut values = std::collections::BTreeMap::new();
    for line in listing.lines() {
        if let Some((p, v)) = line.trim().split_once(": 0x") {
            values.insert(p.trim().parse::<u32>().unwrap(), v.trim().to_ascii_lowercase());
        }
    }
    assert_eq!(values.len(), 11, "{listing}");
    let h = |f: &str| std::fs::read(d.join("handoff").join(f)).unwrap();
    let evidence = stboot::attest::evidence::Evidence {
        version: 1,
        nonce: N1.into(),
        key: Some(key.to_vec()),
        ak_public,
        quote: std::fs::read(d.join("quote.msg")).unwrap(),
        signature: std::fs::read(d.join("quote.sig")).unwrap(),
        pcrs: values,
        eventlog: h("eventlog.bin"),
        firmware_eventlog: None,
        report: serde_json::from_slice(&h("report.json")).unwrap(),
        descriptor: h("descriptor.json"),
    };
    let bytes = serde_json::to_vec(&evidence).unwrap();
    let a = s.appraise_with(&bytes, N1, Some(key), "tp", std::slice::from_ref(&enrolment));
    assert!(a.verified, "{:#?}", a.checks);
    refused(
        &s.appraise_with(&bytes, N2, Some(key), "tp", std::slice::from_ref(&enrolment)),
        "quote.nonce",
        "another nonce",
    );
    drop(sw);
}

/// The version stboot measured is read from the event log, named in the verdict and
/// held against the verifier's floor.
#[test]
fn the_measured_version_is_named_and_held_against_the_floor() {
    let Some(s) = Scene::new() else { return };
    let d = s.path();
    let tp = d.join("tp-floor");
    std::fs::create_dir(&tp).unwrap();
    for f in ["ospkg_signing_root.pem", "tls_roots.pem", "ospkg_trust_policy"] {
        std::fs::copy(d.join("tp").join(f), tp.join(f)).unwrap();
    }
    std::fs::write(
        tp.join("trust_policy.json"),
        r#"{"ospkg_signature_threshold": 2, "ospkg_fetch_method": "network", "ospkg_min_version": 2}"#,
    )
    .unwrap();
    let key = b"wg0 public key\n".as_slice();
    s.boot_version("os.json", "tp-floor", Some(2));
    let e = s.quote(N1, "v2.json");
    let a = s.appraise(&e, N1, Some(key), "tp-floor");
    assert!(a.verified && a.verdict.contains("version 2 (floor 2)"), "{:#?}", a);
    assert_eq!(a.booted.as_ref().unwrap().version, Some(2));

    // a machine that booted version 1 under this policy (its floor was not enforced):
    // the verifier refuses it
    let Some(s) = Scene::new() else { return };
    let tp = s.path().join("tp-floor");
    std::fs::create_dir(&tp).unwrap();
    for f in ["ospkg_signing_root.pem", "tls_roots.pem", "ospkg_trust_policy"] {
        std::fs::copy(s.path().join("tp").join(f), tp.join(f)).unwrap();
    }
    std::fs::copy(d.join("tp-floor/trust_policy.json"), tp.join("trust_policy.json")).unwrap();
    s.boot_version("os.json", "tp-floor", Some(1));
    let e = s.quote(N1, "v1.json");
    let a = s.appraise(&e, N1, Some(key), "tp-floor");
    refused(
        &a,
        "package.version",
        "the package's version 1 is below the floor 2 (trust_policy.json ospkg_min_version)",
    );
    assert_eq!(failures(&a).len(), 1, "{:#?}", failures(&a));

    // the TPM floor: measured, read back from the log, and the higher floor counts
    for (version, floor_ok) in [(3, true), (2, false)] {
        let Some(s) = Scene::new() else { return };
        let tp = s.path().join("tp-tpm-floor");
        std::fs::create_dir(&tp).unwrap();
        for f in ["ospkg_signing_root.pem", "tls_roots.pem", "ospkg_trust_policy"] {
            std::fs::copy(s.path().join("tp").join(f), tp.join(f)).unwrap();
        }
        std::fs::write(
            tp.join("trust_policy.json"),
            r#"{"ospkg_signature_threshold": 2, "ospkg_fetch_method": "network", "ospkg_min_version": 1, "ospkg_tpm_floor": true}"#,
        )
        .unwrap();
        stboot::tpm::floor::init(&mut s.tpm(), 3).unwrap();
        s.boot_version("os.json", "tp-tpm-floor", Some(version));
        let e = s.quote(N1, &format!("v{version}.json"));
        let a = s.appraise(&e, N1, Some(key), "tp-tpm-floor");
        if floor_ok {
            assert!(a.verified && a.verdict.contains("version 3 (floor 3)"), "{:#?}", a);
        } else {
            refused(
                &a,
                "package.version",
                "the package's version 2 is below the floor 3 (the TPM floor, NV index 0x01420002)",
            );
            assert_eq!(failures(&a).len(), 1, "{:#?}", failures(&a));
        }
    }
}

// -- the TPM floor (rollback protection kept in NV) ---------------------------------

#[test]
fn the_tpm_floor_only_rises_and_nothing_but_an_increment_writes_it() {
    use stboot::tpm::floor::{self, BASE_NV_INDEX, COUNTER_NV_INDEX, MAX_RAISE};
    let Some(sw) = swtpm() else { return };
    let mut tpm = Tpm::open_spec(&format!("unix:{}", sw.sock.display())).unwrap();
    assert_eq!(floor::read(&mut tpm).unwrap(), None, "a fresh TPM has no floor");
    let e = floor::raise(&mut tpm, 2).unwrap_err();
    assert!(format!("{e:#}").contains("is not defined (define it once: stmgr tpm floor init)"), "{e:#}");

    assert_eq!(floor::init(&mut tpm, 1).unwrap(), 1);
    assert_eq!(floor::read(&mut tpm).unwrap(), Some(1));
    let e = floor::init(&mut tpm, 0).unwrap_err();
    assert!(format!("{e:#}").contains("0x01420002 is already defined (the floor is 1)"), "{e:#}");

    assert_eq!(floor::raise(&mut tpm, 3).unwrap(), floor::Raised { from: 1, to: 3 });
    assert_eq!(floor::raise(&mut tpm, 2).unwrap(), floor::Raised { from: 3, to: 3 }, "never lowered");
    let e = floor::raise(&mut tpm, 3 + MAX_RAISE + 1).unwrap_err();
    assert!(format!("{e:#}").contains("more than 256 at once"), "{e:#}");
    assert_eq!(floor::read(&mut tpm).unwrap(), Some(3));

    // the TPM itself refuses every other way down: a write of the counter, an
    // increment without the policy, a new base
    assert!(tpm.nv_write(COUNTER_NV_INDEX, &0u64.to_be_bytes()).is_err());
    assert!(tpm.nv_write(BASE_NV_INDEX, &u64::MAX.to_be_bytes()).is_err(), "the base is write-locked");
    let e = format!("{:#}", tpm.nv_write(BASE_NV_INDEX, &[0; 8]).unwrap_err());
    assert!(e.contains("writing NV index 0x01420003"), "{e}");
    assert_eq!(floor::read(&mut tpm).unwrap(), Some(3));
}

#[test]
fn indices_not_as_stmgr_defines_them_are_refused_not_ignored() {
    use stboot::tpm::floor::{self, BASE_NV_INDEX, COUNTER_NV_INDEX};
    use stboot::tpm::nv::{attr, NvPublic};
    // an ordinary index anyone can write at the counter's handle: it could be lowered
    let Some(sw) = swtpm() else { return };
    let mut tpm = Tpm::open_spec(&format!("unix:{}", sw.sock.display())).unwrap();
    let plain = attr::AUTHWRITE | attr::AUTHREAD | attr::NO_DA;
    tpm.nv_define(&NvPublic::new(COUNTER_NV_INDEX, plain, &[], 8)).unwrap();
    let e = format!("{:#}", floor::read(&mut tpm).unwrap_err());
    assert!(e.contains("0x01420002 is defined but 0x01420003 is not"), "{e}");
    assert!(e.contains("tpm2_nvundefine 0x01420002 -C o"), "{e}");
    tpm.nv_define(&NvPublic::new(BASE_NV_INDEX, plain, &[], 8)).unwrap();
    tpm.nv_write(COUNTER_NV_INDEX, &9u64.to_be_bytes()).unwrap();
    tpm.nv_write(BASE_NV_INDEX, &0u64.to_be_bytes()).unwrap();
    let e = format!("{:#}", floor::read(&mut tpm).unwrap_err());
    assert!(e.contains("NV index 0x01420002 is not a counter only TPM2_NV_Increment writes"), "{e}");
    assert!(e.contains("attributes 0x22040004, expected 0x22040018"), "{e}");
    assert!(e.contains("write policy none, expected "), "{e}");
    assert!(e.contains("a floor that could be lowered is not trusted"), "{e}");
}

#[test]
fn stmgr_tpm_floor_init_show_and_raise_from_the_boot_report() {
    let Some(sw) = swtpm() else { return };
    let d = tempfile::tempdir().unwrap();
    let tpm = format!("unix:{}", sw.sock.display());
    let run = |args: &[&str]| stmgr_in(d.path(), &[&["tpm", "floor"], args, &["-tpm", &tpm]].concat());
    assert_eq!(run(&["show"]), (true, "no TPM floor (NV index 0x01420002 is not defined)\n".into()));
    let (ok, out) = run(&["init", "-floor", "1"]);
    assert!(
        ok && out.starts_with("TPM floor 1: NV indices 0x01420002 (counter) and 0x01420003 (base) defined"),
        "{out}"
    );
    std::fs::write(d.path().join("report.json"), r#"{"version":2,"ospkg":{"version":2}}"#).unwrap();
    assert_eq!(run(&["raise", "-bootReport", "report.json"]), (true, "TPM floor raised from 1 to 2\n".into()));
    assert_eq!(
        run(&["raise", "-bootReport", "report.json"]),
        (true, "TPM floor 2: already at or above version 2, unchanged\n".into())
    );
    assert_eq!(run(&["raise", "-version", "4"]), (true, "TPM floor raised from 2 to 4\n".into()));
    assert_eq!(run(&["show"]), (true, "TPM floor 4\n".into()));
    std::fs::write(d.path().join("report.json"), r#"{"version":2,"ospkg":{"version":null}}"#).unwrap();
    let (ok, out) = run(&["raise", "-bootReport", "report.json"]);
    assert!(!ok && out.contains("report.json: field \"ospkg.version\" is missing or not a whole number"), "{out}");
    let (ok, out) = run(&["raise", "-bootReport", "absent.json"]);
    assert!(!ok && out.contains("reading the boot report absent.json (give the version with -version N)"), "{out}");
}

/// A UKI package's boot: its sections' events in PCR 11 (quoted, replayed) are
/// accepted as a name and its contents each, `.linux` first, and named in the
/// verdict; the same events without a UKI in the boot report, or a name event whose
/// digest is not its name's, are refused.
#[test]
fn a_uki_boot_names_its_sections_and_odd_pcr11_events_are_refused() {
    let Some(s) = Scene::new() else { return };
    let sections: [(&'static str, Sha256Digest); 3] = [
        (".linux", Sha256Digest::of(b"K")),
        (".osrel", Sha256Digest::of(b"ID=x\n")),
        (".initrd", Sha256Digest::of(b"I")),
    ];
    s.boot_full("os.json", "tp", None, Some(&sections));
    let ev = s.quote(N1, "evidence.json");
    let a = s.appraise(&ev, N1, None, "tp");
    assert!(a.verified, "{:#?}", failures(&a));
    let uki = a.checks.iter().find(|c| c.check == "package.uki").expect("a package.uki check");
    assert!(uki.detail.contains("sections .linux .osrel .initrd measured into PCR 11"), "{}", uki.detail);
    assert!(
        a.checks.iter().any(|c| c.check == "eventlog" && c.ok && c.detail.contains("11,12,13,14")),
        "{:#?}",
        a.checks
    );

    // the report says nothing of a UKI: the PCR 11 events are unexplained
    let mut e: serde_json::Value = serde_json::from_slice(&ev).unwrap();
    e["report"]["ospkg"].as_object_mut().unwrap().remove("uki");
    let a = s.appraise(e.to_string().as_bytes(), N1, None, "tp");
    refused(&a, "eventlog", "UKI section events in PCR 11, but the boot report names no UKI");

    // a name event that is not its name's digest
    let mut log = stboot::measure::eventlog::parse(&unb64(&e["eventlog"])).unwrap();
    log[0].sha256 = Some(Sha256Digest::of(b".linux"));
    let mut e: serde_json::Value = serde_json::from_slice(&ev).unwrap();
    e["eventlog"] = b64(&raw_log(&log)).into();
    let a = s.appraise(e.to_string().as_bytes(), N1, None, "tp");
    refused(&a, "package.uki", "the events for section \".linux\" are not a name and its contents");
}
