//! Checking a UKI's Secure Boot signature against UEFI `db` certificates, as the
//! firmware would before it runs the image (the trust policy's
//! `ospkg_uki_db.pem`, [`crate::config::trust_policy::UkiDb`]).
//!
//! The image is read once, front to back ([`DigestStream`]): the Authenticode
//! digest is computed on the way and the certificate table kept, so that a large UKI
//! inside a zip entry is never held in memory or read twice. A signature counts when
//! - it is a PKCS #7 SignedData over an `SpcIndirectDataContent` whose SHA-256
//!   digest is this image's Authenticode digest;
//! - its one SignerInfo has the content-type and message-digest attributes, the
//!   latter the SHA-256 of the `SpcIndirectDataContent`, and an RSA PKCS #1 v1.5
//!   SHA-256 signature over those attributes by the signer's key;
//! - the signer's certificate is a `db` certificate, or is issued by one, directly
//!   or through intermediates the signature carries (each link's signature checked).
//!
//! Like the firmware (EDK2 ignores certificate times: there is no trusted clock
//! before the OS), validity periods are not checked; `dbx` is not consulted: a
//! compromised key is taken out of `db`. One signature that counts is enough, as
//! for the firmware.

use std::io::Write;
use std::ops::Range;

use anyhow::{anyhow, bail, ensure, Context, Result};
use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::asn1::ObjectIdentifier;
use der::{Decode, Encode, Reader, SliceReader};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{
    ID_CONTENT_TYPE, ID_MESSAGE_DIGEST, ID_SHA256, ID_SIGNED_DATA, RSA_ENCRYPTION, SPC_INDIRECT_DATA_OBJID,
    WIN_CERT_REVISION_2_0, WIN_CERT_TYPE_PKCS_SIGNED_DATA,
};

const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
/// The most a certificate table may hold (a signature with a few certificates is a
/// few KiB).
const MAX_TABLE: u64 = 1 << 20;
/// How many intermediate certificates a chain to `db` may pass through.
const MAX_DEPTH: usize = 4;

/// The file ranges an image's Authenticode digest covers, in file order, and its
/// certificate table: known from the headers alone.
#[derive(Debug, Clone)]
pub struct DigestPlan {
    hashed: Vec<Range<u64>>,
    table: Range<u64>,
    len: u64,
}

impl DigestPlan {
    /// `head`: the start of the image, holding its headers and section table;
    /// `len`: the image's length. Refuses a layout whose digest would be ambiguous
    /// (a certificate table not at the end, sections not laid out one after the
    /// other after the headers), which signing tools never produce.
    pub fn new(head: &[u8], len: u64) -> Result<Self> {
        let l = crate::uki::pe_layout(head)?;
        let (cs, sd, hdr) = (l.checksum_field as u64, l.security_directory as u64, l.size_of_headers as u64);
        ensure!(
            cs + 4 <= sd && sd + 8 <= hdr && hdr <= len,
            "the PE headers are inconsistent (checksum at {cs:#x}, certificate directory at {sd:#x}, {hdr:#x} bytes of headers, {len} bytes in all)"
        );
        let mut hashed = vec![0..cs, cs + 4..sd, sd + 8..hdr];
        let mut sections: Vec<Range<u64>> = l
            .sections
            .iter()
            .filter(|s| s.raw_size > 0)
            .map(|s| u64::from(s.raw_offset)..u64::from(s.raw_offset) + u64::from(s.raw_size))
            .collect();
        sections.sort_by_key(|r| r.start);
        // what follows the sections, as the Authenticode specification counts it:
        // from the headers plus every section's size up to the certificate table
        let sum = hdr + sections.iter().map(|r| r.end - r.start).sum::<u64>();
        hashed.extend(sections);
        let table = match l.certificate_table {
            (_, 0) => len..len,
            (at, size) => u64::from(at)..u64::from(at) + u64::from(size),
        };
        ensure!(
            table.end == len,
            "the certificate table (bytes {:#x}..{:#x}) is not at the end of the image ({len} bytes)",
            table.start,
            table.end
        );
        ensure!(table.end - table.start <= MAX_TABLE, "the certificate table is larger than {MAX_TABLE} bytes");
        ensure!(sum <= table.start, "the sections run into the certificate table");
        hashed.push(sum..table.start);
        hashed.retain(|r| !r.is_empty());
        for w in hashed.windows(2) {
            ensure!(
                w[0].end <= w[1].start,
                "the sections do not follow one another after the headers (bytes {:#x}..{:#x} and {:#x}..{:#x}): the Authenticode digest would be ambiguous",
                w[0].start,
                w[0].end,
                w[1].start,
                w[1].end
            );
        }
        ensure!(hashed.last().is_none_or(|r| r.end <= len), "a section lies past the end of the image");
        Ok(Self { hashed, table, len })
    }

    /// Whether the image has a certificate table.
    pub fn signed(&self) -> bool {
        !self.table.is_empty()
    }

    /// Where the certificate table lies (empty when unsigned).
    pub fn table_range(&self) -> Range<usize> {
        self.table.start as usize..self.table.end as usize
    }
}

/// A writer the image is copied into, front to back: it hashes what
/// [`DigestPlan`] says and keeps the certificate table.
pub struct DigestStream {
    plan: DigestPlan,
    at: u64,
    hash: Sha256,
    table: Vec<u8>,
}

impl DigestStream {
    pub fn new(plan: DigestPlan) -> Self {
        Self { plan, at: 0, hash: Sha256::new(), table: Vec::new() }
    }

    /// The Authenticode digest and the certificate table, once the whole image
    /// went through.
    pub fn finish(self) -> Result<([u8; 32], Vec<u8>)> {
        ensure!(self.at == self.plan.len, "the image was {} bytes, not {}", self.at, self.plan.len);
        Ok((self.hash.finalize().into(), self.table))
    }
}

impl Write for DigestStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let here = self.at..self.at + buf.len() as u64;
        let part = |r: &Range<u64>| {
            let (s, e) = (r.start.max(here.start), r.end.min(here.end));
            (s < e).then(|| &buf[(s - here.start) as usize..(e - here.start) as usize])
        };
        for r in &self.plan.hashed {
            if let Some(b) = part(r) {
                self.hash.update(b);
            }
        }
        if let Some(b) = part(&self.plan.table) {
            self.table.extend_from_slice(b);
        }
        self.at = here.end;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A signature that counted: who signed and which `db` certificate vouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The signer certificate's subject.
    pub signer: String,
    /// The `db` certificate's place in the list and its subject.
    pub db_index: usize,
    pub db_subject: String,
}

/// The entries of a certificate table (`WIN_CERTIFICATE`s, 8-byte aligned): each
/// one's PKCS #7 bytes, or why it is not one.
pub fn entries(table: &[u8]) -> Vec<Result<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = table;
    while rest.len() >= 8 {
        let length = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let revision = u16::from_le_bytes([rest[4], rest[5]]);
        let kind = u16::from_le_bytes([rest[6], rest[7]]);
        if length < 8 || length > rest.len() {
            out.push(Err(anyhow!("its length {length} does not fit the certificate table")));
            break;
        }
        out.push(if revision != WIN_CERT_REVISION_2_0 || kind != WIN_CERT_TYPE_PKCS_SIGNED_DATA {
            Err(anyhow!("not a PKCS #7 signature (revision {revision:#x}, type {kind:#x})"))
        } else {
            Ok(&rest[8..length])
        });
        rest = rest.get(length.div_ceil(8) * 8..).unwrap_or_default();
    }
    out
}

/// An Authenticode signature, decoded: the SignedData and the signed
/// `SpcIndirectDataContent`.
pub struct Signed {
    sd: SignedData,
    indirect: ::authenticode::SpcIndirectDataContent,
}

impl Signed {
    /// Decodes the PKCS #7 bytes of a certificate table entry (padding after the
    /// DER is allowed).
    pub fn decode(entry: &[u8]) -> Result<Self> {
        let mut reader = SliceReader::new(entry).map_err(|e| anyhow!("not PKCS #7: {e}"))?;
        let info = ContentInfo::decode(&mut reader).map_err(|e| anyhow!("not PKCS #7: {e}"))?;
        let used = usize::try_from(reader.position()).unwrap_or(entry.len());
        ensure!(entry[used.min(entry.len())..].iter().all(|&b| b == 0), "bytes after the PKCS #7 data");
        ensure!(info.content_type == ID_SIGNED_DATA, "not a PKCS #7 SignedData ({})", info.content_type);
        let sd = SignedData::from_der(&info.content.to_der()?).map_err(|e| anyhow!("not a PKCS #7 SignedData: {e}"))?;
        ensure!(
            sd.encap_content_info.econtent_type == SPC_INDIRECT_DATA_OBJID,
            "not an Authenticode signature (content {})",
            sd.encap_content_info.econtent_type
        );
        let content = sd.encap_content_info.econtent.as_ref().context("the signature has no signed content")?;
        let indirect = ::authenticode::SpcIndirectDataContent::from_der(&content.to_der()?)
            .map_err(|e| anyhow!("the signed content is not an SpcIndirectDataContent: {e}"))?;
        Ok(Self { sd, indirect })
    }

    /// The SHA-256 Authenticode digest it signs.
    pub fn digest(&self) -> Result<[u8; 32]> {
        let d = &self.indirect.message_digest;
        ensure!(d.digest_algorithm.oid == ID_SHA256, "the image digest is not SHA-256 ({})", d.digest_algorithm.oid);
        d.digest.as_bytes().try_into().context("the image digest is not 32 bytes")
    }

    /// The certificates it carries, DER.
    pub fn certificates(&self) -> Vec<Vec<u8>> {
        self.sd
            .certificates
            .iter()
            .flat_map(|set| set.0.iter())
            .filter_map(|c| match c {
                CertificateChoices::Certificate(c) => c.to_der().ok(),
                _ => None,
            })
            .collect()
    }
}

/// Checks the certificate table of an image whose Authenticode digest is `digest`
/// against the `db` certificates (DER). The error says, for each signature, why it
/// did not count.
pub fn check_table(table: &[u8], digest: &[u8; 32], db: &[Vec<u8>]) -> Result<Accepted> {
    let db: Vec<X509Certificate> = db
        .iter()
        .enumerate()
        .map(|(i, d)| X509Certificate::from_der(d).map(|(_, c)| c).map_err(|e| anyhow!("db certificate #{i}: {e}")))
        .collect::<Result<_>>()?;
    let entries = entries(table);
    ensure!(!entries.is_empty(), "the certificate table holds no signature");
    let mut why = Vec::new();
    for (n, entry) in entries.into_iter().enumerate() {
        match entry.and_then(|e| check_one(e, digest, &db)) {
            Ok(a) => return Ok(a),
            Err(e) => why.push(format!("signature {}: {e:#}", n + 1)),
        }
    }
    bail!("{}", why.join("; "))
}

fn check_one(entry: &[u8], digest: &[u8; 32], db: &[X509Certificate]) -> Result<Accepted> {
    let signed = Signed::decode(entry)?;
    let image_digest = signed.digest()?;
    ensure!(
        &image_digest == digest,
        "it signs another image (Authenticode digest {}, this image's is {}): the UKI was changed after signing",
        crate::digest::hex(&image_digest),
        crate::digest::hex(digest)
    );
    let sd = &signed.sd;
    let content = sd.encap_content_info.econtent.as_ref().context("the signature has no signed content")?;
    let signers = sd.signer_infos.0.as_slice();
    ensure!(signers.len() == 1, "{} signers; Authenticode has exactly one", signers.len());
    let si = &signers[0];
    ensure!(si.digest_alg.oid == ID_SHA256, "the signer's digest is not SHA-256 ({})", si.digest_alg.oid);
    let attrs = si.signed_attrs.as_ref().context("the signature has no signed attributes")?;
    let attr = |oid: ObjectIdentifier| -> Result<&der::asn1::Any> {
        let mut found = attrs.iter().filter(|a| a.oid == oid);
        let a = found.next().with_context(|| format!("signed attribute {oid} is missing"))?;
        ensure!(found.next().is_none() && a.values.len() == 1, "signed attribute {oid} is not single-valued");
        a.values.get(0).context("empty attribute")
    };
    let content_type =
        attr(ID_CONTENT_TYPE)?.decode_as::<ObjectIdentifier>().map_err(|e| anyhow!("content type: {e}"))?;
    ensure!(content_type == SPC_INDIRECT_DATA_OBJID, "the signed content type is {content_type}");
    let md =
        attr(ID_MESSAGE_DIGEST)?.decode_as::<der::asn1::OctetString>().map_err(|e| anyhow!("message digest: {e}"))?;
    ensure!(
        md.as_bytes() == Sha256::digest(content.value()).as_slice(),
        "the signed attributes' message digest is not that of the signed content"
    );
    ensure!(
        [RSA_ENCRYPTION, SHA256_WITH_RSA].contains(&si.signature_algorithm.oid),
        "the signature is not RSA ({}); Secure Boot signatures are RSA PKCS #1 v1.5 with SHA-256",
        si.signature_algorithm.oid
    );
    let SignerIdentifier::IssuerAndSerialNumber(sid) = &si.sid else {
        bail!("the signer is named by key identifier; expected issuer and serial number");
    };
    let carried_der = signed.certificates();
    let carried: Vec<X509Certificate> =
        carried_der.iter().filter_map(|d| X509Certificate::from_der(d).ok().map(|(_, c)| c)).collect();
    let (issuer, serial) = (sid.issuer.to_der()?, sid.serial_number.as_bytes());
    let is_signer = |c: &&X509Certificate| c.tbs_certificate.issuer.as_raw() == issuer && c.raw_serial() == serial;
    let signer = carried
        .iter()
        .chain(db.iter())
        .find(is_signer)
        .context("the signer's certificate is neither in the signature nor in ospkg_uki_db.pem")?;
    let signed_attrs = attrs.to_der()?;
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        signer.public_key().subject_public_key.data.as_ref(),
    );
    key.verify(&signed_attrs, si.signature.as_bytes())
        .map_err(|_| anyhow!("the RSA signature does not verify with the key of {:?}", signer.subject().to_string()))?;
    let db_index = chain_to_db(signer, &carried, db, 0).with_context(|| {
        format!(
            "signed by {:?} (issued by {:?}), which is not in ospkg_uki_db.pem nor issued by a certificate there",
            signer.subject().to_string(),
            signer.issuer().to_string()
        )
    })?;
    Ok(Accepted { signer: signer.subject().to_string(), db_index, db_subject: db[db_index].subject().to_string() })
}

/// The `db` certificate that `cert` is, or that issued it (through at most
/// [`MAX_DEPTH`] of the `carried` certificates).
fn chain_to_db(
    cert: &X509Certificate,
    carried: &[X509Certificate],
    db: &[X509Certificate],
    depth: usize,
) -> Option<usize> {
    if let Some(i) = db.iter().position(|d| d.as_raw() == cert.as_raw()) {
        return Some(i);
    }
    let issued_by = |by: &X509Certificate| {
        cert.issuer().as_raw() == by.subject().as_raw() && cert.verify_signature(Some(by.public_key())).is_ok()
    };
    if let Some(i) = db.iter().position(issued_by) {
        return Some(i);
    }
    if depth >= MAX_DEPTH {
        return None;
    }
    carried
        .iter()
        .filter(|c| c.as_raw() != cert.as_raw() && issued_by(c))
        .find_map(|c| chain_to_db(c, carried, db, depth + 1))
}

/// Reads an image of `len` bytes through `copy` (which writes it, whole and in
/// order, into the writer it is given), after `head` (its first bytes, holding
/// the headers), and checks its Secure Boot signature against `db`.
pub fn check_image(
    head: &[u8],
    len: u64,
    copy: impl FnOnce(&mut dyn Write) -> Result<()>,
    db: &[Vec<u8>],
) -> Result<Accepted> {
    let plan = DigestPlan::new(head, len)?;
    ensure!(plan.signed(), "it has no Secure Boot (Authenticode) signature");
    let mut stream = DigestStream::new(plan);
    copy(&mut stream)?;
    let (digest, table) = stream.finish()?;
    check_table(&table, &digest, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(sections: &[(&str, &[u8])]) -> Vec<u8> {
        crate::uki::append_sections(&crate::uki::tests::tiny_pe(), sections).unwrap()
    }

    /// Through the stream in pieces of `chunk` bytes.
    fn streamed(img: &[u8], chunk: usize) -> Result<([u8; 32], Vec<u8>)> {
        let mut s = DigestStream::new(DigestPlan::new(img, img.len() as u64)?);
        for c in img.chunks(chunk) {
            s.write_all(c)?;
        }
        s.finish()
    }

    #[test]
    fn the_streamed_digest_is_the_authenticode_digest() {
        let mut img = image(&[(".linux", &[7u8; 5000]), (".initrd", b"INITRD"), (".cmdline", b"x")]);
        for chunk in [1, 7, 512, 1 << 20] {
            let (d, table) = streamed(&img, chunk).unwrap();
            assert_eq!(d, super::super::digest(&img).unwrap(), "chunk {chunk}");
            assert!(table.is_empty());
        }
        // a certificate table at the end is left out of the digest and kept
        img.resize(img.len().div_ceil(8) * 8, 0);
        let at = img.len();
        let entry = [16u32.to_le_bytes().as_slice(), &[0, 2, 2, 0], b"PKCS#7!!"].concat();
        img.extend_from_slice(&entry);
        crate::uki::set_certificate_table(&mut img, at as u32, entry.len() as u32).unwrap();
        let (d, table) = streamed(&img, 333).unwrap();
        assert_eq!(d, super::super::digest(&img).unwrap());
        assert_eq!(table, entry);
        // it is not a signature, and says so
        let e = check_table(&table, &d, &[]).unwrap_err().to_string();
        assert!(e.contains("signature 1: not PKCS #7"), "{e}");
    }

    /// The fuzz seed: a small UKI signed by sbsigntool's sbsign (a throwaway key):
    /// it verifies against the certificate it carries and against nothing else, and
    /// a changed byte anywhere the digest covers breaks it.
    #[test]
    fn an_sbsign_signature_verifies_against_its_certificate_only() {
        let img = include_bytes!("../../fuzz/corpus/authenticode/signed.efi");
        let cert = super::super::signatures(img).unwrap().remove(0).certificates.remove(0);
        let check = |img: &[u8], db: &[Vec<u8>]| check_image(img, img.len() as u64, |w| Ok(w.write_all(img)?), db);
        let a = check(img, std::slice::from_ref(&cert)).unwrap();
        assert_eq!((a.signer.as_str(), a.db_index), ("CN=stboot-rs fuzz seed", 0));
        let e = check(img, &[]).unwrap_err().to_string();
        assert!(e.contains("not in ospkg_uki_db.pem nor issued by a certificate there"), "{e}");
        let linux = crate::ospkg::uki::parse_bytes(img).unwrap().range(".linux").unwrap();
        for at in [0x50, linux.start as usize + 3] {
            let mut changed = img.to_vec();
            changed[at] ^= 1;
            let e = check(&changed, std::slice::from_ref(&cert)).unwrap_err().to_string();
            assert!(e.contains("it signs another image"), "byte {at:#x}: {e}");
        }
        // the checksum is not covered: firmware and sbverify ignore it too
        let pe = crate::uki::pe_layout(img).unwrap();
        let mut changed = img.to_vec();
        changed[pe.checksum_field] ^= 1;
        assert!(check(&changed, &[cert]).is_ok());
    }

    #[test]
    fn ambiguous_layouts_and_broken_tables_are_refused() {
        let mut img = image(&[(".linux", &[7u8; 5000])]);
        img.extend_from_slice(&[0u8; 16]);
        let len = img.len() as u32;
        // a certificate table that is not at the end
        crate::uki::set_certificate_table(&mut img, len - 16, 8).unwrap();
        let e = DigestPlan::new(&img, img.len() as u64).unwrap_err().to_string();
        assert!(e.contains("is not at the end"), "{e}");
        // an unsigned image
        let img = image(&[(".linux", &[7u8; 5000])]);
        let e = check_image(&img, img.len() as u64, |w| Ok(w.write_all(&img)?), &[]).unwrap_err();
        assert!(e.to_string().contains("no Secure Boot (Authenticode) signature"), "{e}");
        // a short copy
        let e = check_image(&img, img.len() as u64 + 8, |w| Ok(w.write_all(&img)?), &[]);
        assert!(e.is_err());
        // tables that are cut, too long or empty never panic
        for t in [
            &b""[..],
            &[1, 0, 0, 0, 0, 2, 2, 0],
            &[255, 255, 255, 255, 0, 2, 2, 0, 1],
            &[16, 0, 0, 0, 0, 2, 2, 0, 0x30, 0x80, 0, 0, 0, 0, 0, 0],
        ] {
            assert!(check_table(t, &[0; 32], &[]).is_err());
        }
    }
}
