use super::*;
use crate::keys::{self, Validity};
use crate::ospkg::Descriptor;
use ed25519_dalek::SigningKey;
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use time::OffsetDateTime;

const NOW: i64 = 1_800_000_000; // 2027-01-15

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

fn validity() -> Validity {
    Validity { not_before: at(NOW - 86400), not_after: at(NOW + 86400) }
}

fn kp(k: &SigningKey) -> KeyPair {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    KeyPair::try_from(k.to_pkcs8_der().unwrap().as_bytes()).unwrap()
}

struct Root {
    key: SigningKey,
    der: Vec<u8>,
}

fn root() -> Root {
    let key = keys::generate_key();
    let der = keys::pem_to_der(&keys::root_certificate(&key, &validity()).unwrap()).unwrap();
    Root { key, der }
}

fn leaf(root: &Root) -> (SigningKey, Vec<u8>) {
    let key = keys::generate_key();
    let der = keys::pem_to_der(&keys::leaf_certificate(&key, &root.der, &root.key, &validity()).unwrap()).unwrap();
    (key, der)
}

/// A leaf with a custom profile, issued by `root`.
fn custom_leaf(root: &Root, tweak: impl FnOnce(&mut CertificateParams)) -> (SigningKey, Vec<u8>) {
    let key = keys::generate_key();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, "custom leaf");
    p.not_before = at(NOW - 86400);
    p.not_after = at(NOW + 86400);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    tweak(&mut p);
    let issuer = Issuer::from_ca_cert_der(&root.der.clone().into(), kp(&root.key)).unwrap();
    (key.clone(), p.signed_by(&kp(&key), &issuer).unwrap().der().to_vec())
}

/// A root with a custom profile.
fn custom_root(tweak: impl FnOnce(&mut CertificateParams)) -> Root {
    let key = keys::generate_key();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, "custom root");
    p.not_before = at(NOW - 86400);
    p.not_after = at(NOW + 86400);
    p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyCertSign];
    tweak(&mut p);
    let der = p.self_signed(&kp(&key)).unwrap().der().to_vec();
    Root { key, der }
}

const ARCHIVE: &[u8] = b"pretend this is a zip";

fn signed(signers: &[&(SigningKey, Vec<u8>)]) -> Descriptor {
    let mut d = Descriptor::new("os.zip").unwrap();
    let dg = digest(ARCHIVE);
    for (k, der) in signers {
        d.certificates.push(crate::pem::encode("CERTIFICATE", der).into_bytes());
        d.signatures.push(keys::sign_digest(k, &dg).to_vec());
    }
    d
}

fn run(d: &Descriptor, roots: &[&Root], t: Threshold) -> Report {
    let roots: Vec<Vec<u8>> = roots.iter().map(|r| r.der.clone()).collect();
    verify(d, &digest(ARCHIVE), &roots, t, NOW).unwrap()
}

#[test]
fn threshold_two_of_three() {
    let r = root();
    let (a, b, c) = (leaf(&r), leaf(&r), leaf(&r));
    let d = signed(&[&a, &b, &c]);
    let rep = run(&d, &[&r], Threshold::AtLeast(2));
    assert_eq!((rep.found, rep.valid), (3, 3));
    assert!(rep.accepted());
    assert!(run(&d, &[&r], Threshold::AtLeast(3)).accepted());
    assert!(!run(&d, &[&r], Threshold::AtLeast(4)).accepted());
    assert_eq!(rep.summary(), "Signatures: 3 found, 3 valid, 2 required");
}

#[test]
fn flipped_archive_byte_is_rejected() {
    let r = root();
    let (a, b) = (leaf(&r), leaf(&r));
    let d = signed(&[&a, &b]);
    let mut tampered = ARCHIVE.to_vec();
    tampered[3] ^= 1;
    let rep = verify(&d, &digest(&tampered), std::slice::from_ref(&r.der), Threshold::AtLeast(1), NOW).unwrap();
    assert_eq!(rep.valid, 0);
    assert!(!rep.accepted());
    assert!(matches!(rep.checks[0].verdict, Verdict::BadSignature(_)));
}

#[test]
fn same_key_counts_once_even_with_two_certificates() {
    let r = root();
    let a = leaf(&r);
    // a second certificate for the same key
    let a2 =
        (a.0.clone(), keys::pem_to_der(&keys::leaf_certificate(&a.0, &r.der, &r.key, &validity()).unwrap()).unwrap());
    assert_ne!(a.1, a2.1);
    let rep = run(&signed(&[&a, &a2]), &[&r], Threshold::AtLeast(2));
    assert_eq!(rep.valid, 1);
    assert_eq!(rep.checks[1].verdict, Verdict::Duplicate { of: 0 });
    assert!(!rep.accepted());
}

#[test]
fn invalid_first_signature_does_not_poison_a_valid_duplicate() {
    // upstream records the certificate as used before checking the signature
    let r = root();
    let a = leaf(&r);
    let mut d = signed(&[&a, &a]);
    d.signatures[0][0] ^= 1;
    let rep = run(&d, &[&r], Threshold::AtLeast(1));
    assert!(matches!(rep.checks[0].verdict, Verdict::BadSignature(_)));
    assert_eq!(rep.checks[1].verdict, Verdict::Valid);
    assert!(rep.accepted());
}

#[test]
fn wrong_root_is_untrusted() {
    let (r, other) = (root(), root());
    let a = leaf(&other);
    let rep = run(&signed(&[&a]), &[&r], Threshold::AtLeast(1));
    match &rep.checks[0].verdict {
        Verdict::UntrustedCertificate(m) => assert!(m.message.contains("is not a configured signing root"), "{m}"),
        v => panic!("{v:?}"),
    }
}

#[test]
fn several_roots() {
    let (r1, r2) = (root(), root());
    let (a, b) = (leaf(&r1), leaf(&r2));
    let d = signed(&[&a, &b]);
    assert!(run(&d, &[&r1, &r2], Threshold::AtLeast(2)).accepted());
    assert_eq!(run(&d, &[&r2], Threshold::AtLeast(1)).valid, 1);
}

#[test]
fn root_key_may_sign_directly() {
    let r = root();
    let as_leaf = (r.key.clone(), r.der.clone());
    assert!(run(&signed(&[&as_leaf]), &[&r], Threshold::AtLeast(1)).accepted());
}

#[test]
fn validity_periods_are_checked() {
    let r = root();
    let expired = custom_leaf(&r, |p| {
        p.not_before = at(NOW - 10 * 86400);
        p.not_after = at(NOW - 86400);
    });
    let future = custom_leaf(&r, |p| p.not_before = at(NOW + 3600));
    let rep = run(&signed(&[&expired, &future]), &[&r], Threshold::AtLeast(1));
    assert_eq!(rep.valid, 0);
    for (c, want) in rep.checks.iter().zip(["expired at", "not valid before"]) {
        match &c.verdict {
            Verdict::UntrustedCertificate(m) => assert!(m.message.contains(want), "{m}"),
            v => panic!("{v:?}"),
        }
    }
    // an expired root invalidates its leaves
    let old_root = custom_root(|p| p.not_after = at(NOW - 1));
    let a = leaf_from(&old_root);
    let rep = run(&signed(&[&a]), &[&old_root], Threshold::AtLeast(1));
    assert!(format!("{}", rep.checks[0].verdict).contains("root"), "{}", rep.checks[0].verdict);
}

fn leaf_from(r: &Root) -> (SigningKey, Vec<u8>) {
    custom_leaf(r, |_| {})
}

#[test]
fn extended_key_usage_rules() {
    let r = root();
    let cases = [
        (vec![], true),
        (vec![ExtendedKeyUsagePurpose::CodeSigning], true),
        (vec![ExtendedKeyUsagePurpose::ServerAuth], true),
        (vec![ExtendedKeyUsagePurpose::Any], true),
        (vec![ExtendedKeyUsagePurpose::EmailProtection], false),
        (vec![ExtendedKeyUsagePurpose::ClientAuth, ExtendedKeyUsagePurpose::TimeStamping], false),
    ];
    for (eku, ok) in cases {
        let l = custom_leaf(&r, |p| p.extended_key_usages = eku.clone());
        let rep = run(&signed(&[&l]), &[&r], Threshold::AtLeast(1));
        assert_eq!(rep.accepted(), ok, "{eku:?}: {rep}");
    }
}

#[test]
fn root_must_be_a_ca_with_cert_sign() {
    let not_ca = custom_root(|p| p.is_ca = IsCa::NoCa);
    let l = leaf_from(&not_ca);
    let rep = run(&signed(&[&l]), &[&not_ca], Threshold::AtLeast(1));
    assert!(rep.checks[0].verdict.to_string().contains("is not a CA"), "{rep}");

    let no_certsign = custom_root(|p| p.key_usages = vec![KeyUsagePurpose::DigitalSignature]);
    let l = leaf_from(&no_certsign);
    let rep = run(&signed(&[&l]), &[&no_certsign], Threshold::AtLeast(1));
    assert!(rep.checks[0].verdict.to_string().contains("keyCertSign"), "{rep}");
}

#[test]
fn non_ed25519_leaf_does_not_count() {
    let r = root();
    let ec = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.not_before = at(NOW - 86400);
    p.not_after = at(NOW + 86400);
    let issuer = Issuer::from_ca_cert_der(&r.der.clone().into(), kp(&r.key)).unwrap();
    let der = p.signed_by(&ec, &issuer).unwrap().der().to_vec();
    let mut d = Descriptor::new("").unwrap();
    d.certificates.push(der);
    d.signatures.push(vec![0; 64]);
    let rep = run(&d, &[&r], Threshold::AtLeast(1));
    assert!(matches!(&rep.checks[0].verdict, Verdict::UnsupportedKey(m) if m.contains("only Ed25519")), "{rep}");
}

#[test]
fn der_certificates_are_accepted_too() {
    let r = root();
    let a = leaf(&r);
    let mut d = signed(&[&a]);
    d.certificates[0] = a.1.clone();
    assert!(run(&d, &[&r], Threshold::AtLeast(1)).accepted());
}

#[test]
fn malformed_inputs_are_verdicts_or_errors_never_panics() {
    let r = root();
    let a = leaf(&r);
    let mut d = signed(&[&a, &a, &a, &a, &a, &a]);
    d.certificates[0] = b"garbage".to_vec();
    d.certificates[1] =
        b"-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END CERTIFICATE-----\n".to_vec();
    d.certificates[2] = vec![0x30, 0x03, 0x02, 0x01];
    d.certificates[3] = Vec::new();
    d.signatures[4] = vec![1, 2, 3];
    d.certificates[5] = crate::pem::encode("PRIVATE KEY", b"x").into_bytes();
    let rep = run(&d, &[&r], Threshold::AtLeast(1));
    assert_eq!(rep.valid, 0);
    let text = rep.to_string();
    for want in [
        "neither PEM nor DER",
        "headers",
        "malformed certificate",
        "empty",
        "3 bytes, expected a 64-byte",
        "expected CERTIFICATE",
    ] {
        assert!(text.contains(want), "{want} missing in\n{text}");
    }

    let mut d = signed(&[&a]);
    d.signatures.push(vec![0; 64]);
    let e = verify(&d, &digest(ARCHIVE), std::slice::from_ref(&r.der), Threshold::AtLeast(1), NOW).unwrap_err();
    assert_eq!(e.to_string(), "descriptor: 2 signatures but only 1 certificates; signature i needs certificate i");
    assert!(verify(&d, &digest(ARCHIVE), &[], Threshold::AtLeast(1), NOW).is_err());
}

#[test]
fn extra_certificates_are_ignored() {
    let r = root();
    let a = leaf(&r);
    let mut d = signed(&[&a]);
    d.certificates.push(b"junk".to_vec());
    assert!(run(&d, &[&r], Threshold::AtLeast(1)).accepted());
}

#[test]
fn threshold_all() {
    let r = root();
    let (a, b) = (leaf(&r), leaf(&r));
    assert!(run(&signed(&[&a, &b]), &[&r], Threshold::All).accepted());
    let mut d = signed(&[&a, &b]);
    d.signatures[1][5] ^= 0x40;
    assert!(!run(&d, &[&r], Threshold::All).accepted());
    assert!(!run(&signed(&[]), &[&r], Threshold::All).accepted());
}

#[test]
fn non_canonical_signature_is_rejected_by_strict_verification() {
    // S >= L (the group order) must be rejected; add L to a valid S.
    let r = root();
    let a = leaf(&r);
    let mut d = signed(&[&a]);
    let l: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let s = &mut d.signatures[0][32..];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = s[i] as u16 + l[i] as u16 + carry;
        s[i] = v as u8;
        carry = v >> 8;
    }
    assert!(!run(&d, &[&r], Threshold::AtLeast(1)).accepted());
}

#[test]
fn effective_now_never_before_build() {
    let (now, _) = effective_now();
    assert!(now >= crate::BUILD_UNIX_TIME as i64);
}

#[test]
fn archive_file_hash_matches_digest_of_bytes() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("a.zip");
    let data: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&p, &data).unwrap();
    let a = crate::ospkg::package::ArchiveFile::hash(std::fs::File::open(&p).unwrap(), &p).unwrap();
    assert_eq!((a.sha256(), a.len()), (&digest(&data), data.len() as u64));
    std::fs::write(&p, b"").unwrap();
    let e = crate::ospkg::package::ArchiveFile::hash(std::fs::File::open(&p).unwrap(), &p).unwrap_err();
    assert!(e.to_string().contains("a.zip: the archive is empty"), "{e}");
}

/// DER helpers for hand-made certificates: split a constructed value's contents into
/// whole TLVs, and encode a TLV.
fn der_items(contents: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut b = contents;
    while !b.is_empty() {
        let (len, hdr) = match b[1] {
            l if l < 0x80 => (l as usize, 2),
            l => {
                let n = (l & 0x7f) as usize;
                (b[2..2 + n].iter().fold(0usize, |a, &d| (a << 8) | d as usize), 2 + n)
            }
        };
        out.push(b[..hdr + len].to_vec());
        b = &b[hdr + len..];
    }
    out
}

fn der_tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    match contents.len() {
        l if l < 0x80 => v.push(l as u8),
        l if l < 0x100 => v.extend([0x81, l as u8]),
        l => v.extend([0x82, (l >> 8) as u8, l as u8]),
    }
    v.extend_from_slice(contents);
    v
}

fn der_contents(tlv: &[u8]) -> &[u8] {
    let hdr = if tlv[1] < 0x80 { 2 } else { 2 + (tlv[1] & 0x7f) as usize };
    &tlv[hdr..]
}

/// A leaf whose signature algorithm is SHA-1 with RSA under OIW's OID 1.3.14.3.2.29,
/// which a denylist of the usual SHA-1 OIDs let through. The allowlist refuses it
/// before any signature check.
#[test]
fn sha1_under_the_oiw_oid_is_refused() {
    let r = root();
    let (k, der) = leaf(&r);
    let outer = der_items(der_contents(&der));
    let mut tbs = der_items(der_contents(&outer[0]));
    let oiw_sha1_rsa = [der_tlv(0x06, &[0x2b, 0x0e, 0x03, 0x02, 0x1d]), der_tlv(0x05, &[])].concat();
    let alg = der_tlv(0x30, &oiw_sha1_rsa);
    tbs[2] = alg.clone();
    let cert = der_tlv(0x30, &[der_tlv(0x30, &tbs.concat()), alg, outer[2].clone()].concat());
    let rep = run(&signed(&[&(k, cert)]), &[&r], Threshold::AtLeast(1));
    assert!(!rep.accepted());
    let v = rep.checks[0].verdict.to_string();
    assert!(v.contains("1.3.14.3.2.29") && v.contains("not accepted"), "{v}");
}

/// A signatureValue in a constructed BIT STRING (BER, not DER): Go and OpenSSL
/// refuse the certificate, and so does stboot.
#[test]
fn a_non_der_signature_value_is_refused() {
    let r = root();
    let (k, der) = leaf(&r);
    let outer = der_items(der_contents(&der));
    let constructed = der_tlv(0x23, &outer[2]);
    let cert = der_tlv(0x30, &[outer[0].clone(), outer[1].clone(), constructed].concat());
    let rep = run(&signed(&[&(k.clone(), cert)]), &[&r], Threshold::AtLeast(1));
    assert!(!rep.accepted());
    let v = rep.checks[0].verdict.to_string();
    assert!(v.contains("malformed certificate") && v.contains("not strict DER"), "{v}");
    // the untouched certificate still counts: the check is not too strict
    assert!(run(&signed(&[&(k, der)]), &[&r], Threshold::AtLeast(1)).accepted());
}

/// A malformed extendedKeyUsage that is not critical used to be ignored; Go refuses
/// the certificate, and so does stboot.
#[test]
fn a_malformed_non_critical_eku_is_refused() {
    let r = root();
    let eku_oid = [2u64, 5, 29, 37];
    // not a SEQUENCE at all: the extension does not parse
    let bad = rcgen::CustomExtension::from_oid_content(&eku_oid, vec![0x04, 0x00]);
    let l = custom_leaf(&r, |p| p.custom_extensions.push(bad));
    let rep = run(&signed(&[&l]), &[&r], Threshold::AtLeast(1));
    assert!(!rep.accepted());
    let v = rep.checks[0].verdict.to_string();
    assert!(v.contains("malformed extension 2.5.29.37"), "{v}");
    // an INTEGER where the KeyPurposeId OIDs belong: x509-parser reads no purpose
    let odd = rcgen::CustomExtension::from_oid_content(&eku_oid, vec![0x30, 0x03, 0x02, 0x01, 0x05]);
    let l = custom_leaf(&r, |p| p.custom_extensions.push(odd));
    assert!(!run(&signed(&[&l]), &[&r], Threshold::AtLeast(1)).accepted());
}

/// Certificate subjects are printed with control characters escaped: a subject
/// with CR/LF cannot forge a console line such as "OS package passed verification".
#[test]
fn signer_names_cannot_forge_console_lines() {
    let r = root();
    let l = custom_leaf(&r, |p| {
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(DnType::CommonName, "x\r\n[ 9.0] stboot:  INFO OS package passed verification\x1b[2J");
    });
    let rep = run(&signed(&[&l]), &[&r], Threshold::AtLeast(1));
    let lines = rep.lines(3);
    assert!(lines.iter().all(|l| !l.contains(['\r', '\n', '\x1b'])), "{lines:?}");
    assert!(lines[0].contains("\\r\\n"), "{lines:?}");
}

/// A flood of signatures is summarised: at most `per_kind` lines per kind of verdict.
#[test]
fn report_lines_are_capped_per_verdict_kind() {
    let r = root();
    let good = leaf(&r);
    let mut d = signed(&[&good]);
    for _ in 0..10_000 {
        d.certificates.push(b"not a certificate".to_vec());
        d.signatures.push(vec![0; 64]);
    }
    let rep = verify(&d, &digest(ARCHIVE), std::slice::from_ref(&r.der), Threshold::AtLeast(1), NOW).unwrap();
    let lines = rep.lines(3);
    assert_eq!(lines.len(), 1 + 3 + 1 + 1, "{lines:?}");
    assert!(lines[4].contains("9997 more signatures like signature 1 (malformed certificate)"), "{lines:?}");
    assert_eq!(lines[5], "Signatures: 10001 found, 1 valid, 1 required");
}

#[test]
fn the_higher_floor_counts_and_is_named() {
    let roots: Vec<Vec<u8>> = Vec::new();
    let policy = |min_version, tpm_floor| Anchors { min_version, tpm_floor, ..Anchors::from(&roots) };
    assert_eq!(policy(2, None).floor(), (2, "trust_policy.json ospkg_min_version"));
    assert_eq!(policy(2, Some(3)).floor(), (3, "the TPM floor, NV index 0x01420002"));
    assert_eq!(policy(3, Some(3)).floor(), (3, "trust_policy.json ospkg_min_version"), "a tie: the policy's");
    assert_eq!(policy(4, Some(1)).floor(), (4, "trust_policy.json ospkg_min_version"));
    assert_eq!(policy(0, Some(0)).floor(), (0, "trust_policy.json ospkg_min_version"));
}
