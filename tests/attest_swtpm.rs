//! Quotes from a real (software) TPM: swtpm on a Unix socket, fresh per test. The
//! AK is made from its template, PCR 12 is extended as stboot would, the quote is
//! checked, and each kind of tampering is refused with its reason. Skipped (loudly)
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
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Some(Swtpm { child, _dir: dir, sock })
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
