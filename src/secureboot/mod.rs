//! Secure Boot signing of an EFI program (the UKI): an Authenticode signature, the
//! PKCS #7 SignedData that UEFI firmware checks against its `db` before it runs a
//! program, as `sbsign` and upstream `stmgr uki create -signkey -signcert` make it.
//!
//! The Authenticode digest (SHA-256 over the headers without the checksum and the
//! certificate directory, then the sections, then any trailing data) comes from the
//! `authenticode` crate; the SignedData is assembled from the `cms` crate's types and
//! signed RSA PKCS #1 v1.5 with SHA-256 by `ring` (constant-time; Secure Boot has no
//! Ed25519). The signature goes into the certificate table at the end of the file,
//! 8-byte aligned, and the PE checksum is recomputed.
//!
//! Signing is deterministic: no signing time is added, so the same image, key and
//! certificate give the same bytes.

use ::authenticode::{
    authenticode_digest, DigestInfo, PeOffsetError, PeOffsets, PeTrait, SpcAttributeTypeAndOptionalValue,
    SpcIndirectDataContent, SPC_INDIRECT_DATA_OBJID,
};
use anyhow::{anyhow, bail, ensure, Context, Result};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedAttributes, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{Any, ObjectIdentifier, OctetString, SetOfVec};
use der::{Decode, Encode, Tag};
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;
use x509_cert::Certificate;

use crate::uki;

pub mod check;

const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
/// SPC_PE_IMAGE_DATAOBJ: the signed data is a PE image.
const SPC_PE_IMAGE_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.15");
/// SPC_SP_OPUS_INFO_OBJID (program name and URL, empty here), which signtool and
/// sbsign add and some verifiers expect.
const SPC_SP_OPUS_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.12");
/// SpcPeImageData { flags: empty BIT STRING, file: [0] SpcLink [2] SpcString
/// [0] BMPString "<<<Obsolete>>>" }: the fixed value every Authenticode signer writes.
const SPC_PE_IMAGE_DATA_VALUE: &[u8] = b"\x03\x01\x00\xa0\x20\xa2\x1e\x80\x1c\
\x00<\x00<\x00<\x00O\x00b\x00s\x00o\x00l\x00e\x00t\x00e\x00>\x00>\x00>";

const WIN_CERT_REVISION_2_0: u16 = 0x0200;
const WIN_CERT_TYPE_PKCS_SIGNED_DATA: u16 = 0x0002;

/// A PE32+ image seen through the `authenticode` crate's trait, with the offsets
/// from [`uki::pe_layout`].
struct Pe<'a> {
    data: &'a [u8],
    layout: uki::PeLayout,
}

impl PeTrait for Pe<'_> {
    fn data(&self) -> &[u8] {
        self.data
    }

    fn num_sections(&self) -> usize {
        self.layout.sections.len()
    }

    fn section_data_range(&self, index: usize) -> Result<std::ops::Range<usize>, PeOffsetError> {
        let s = self.layout.sections.get(index.wrapping_sub(1)).ok_or(PeOffsetError)?;
        let start = s.raw_offset as usize;
        Ok(start..start.checked_add(s.raw_size as usize).ok_or(PeOffsetError)?)
    }

    fn certificate_table_range(&self) -> Result<Option<std::ops::Range<usize>>, PeOffsetError> {
        match self.layout.certificate_table {
            (_, 0) => Ok(None),
            (at, len) => Ok(Some(at as usize..(at as usize).checked_add(len as usize).ok_or(PeOffsetError)?)),
        }
    }

    fn offsets(&self) -> Result<PeOffsets, PeOffsetError> {
        let l = &self.layout;
        Ok(PeOffsets {
            check_sum: l.checksum_field,
            after_check_sum: l.checksum_field + 4,
            security_data_dir: l.security_directory,
            after_security_data_dir: l.security_directory + 8,
            after_header: l.size_of_headers,
        })
    }
}

/// The Authenticode SHA-256 digest of a PE32+ image.
pub fn digest(image: &[u8]) -> Result<[u8; 32]> {
    let pe = Pe { data: image, layout: uki::pe_layout(image)? };
    let mut h = Sha256::new();
    authenticode_digest(&pe, &mut h).map_err(|_| anyhow!("a section or header lies outside the file"))?;
    Ok(h.finalize().into())
}

/// One Authenticode signature found in an image.
#[derive(Debug)]
pub struct Signature {
    /// The Authenticode digest it signs.
    pub digest: [u8; 32],
    /// The certificates it carries, DER.
    pub certificates: Vec<Vec<u8>>,
}

/// The Authenticode signatures in a PE image's certificate table (their structure;
/// [`check`] checks them against `db` certificates).
pub fn signatures(image: &[u8]) -> Result<Vec<Signature>> {
    let plan = check::DigestPlan::new(image, image.len() as u64)?;
    let table = image.get(plan.table_range()).context("the certificate table lies outside the file")?;
    let mut out = Vec::new();
    for (n, entry) in check::entries(table).into_iter().enumerate() {
        let signed = entry.and_then(check::Signed::decode).with_context(|| format!("signature {}", n + 1))?;
        out.push(Signature { digest: signed.digest()?, certificates: signed.certificates() });
    }
    Ok(out)
}

/// An RSA signing key and the certificate that goes with it (both PEM), checked to
/// belong together.
pub struct Signer {
    key: ring::rsa::KeyPair,
    certificate: Certificate,
}

impl Signer {
    /// `key_pem`: "PRIVATE KEY" (PKCS #8) or "RSA PRIVATE KEY" (PKCS #1), not
    /// encrypted; `cert_pem`: the X.509 certificate enrolled in `db` (or issued by
    /// one that is).
    pub fn from_pem(key_pem: &[u8], cert_pem: &[u8]) -> Result<Signer> {
        let (block, _) = crate::pem::decode(key_pem)?.context("no PEM block; expected an RSA private key in PEM")?;
        ensure!(!block.has_headers, "the key is encrypted (PEM headers); give an unencrypted key");
        let key = match block.label.as_str() {
            "PRIVATE KEY" => ring::rsa::KeyPair::from_pkcs8(&block.der),
            "RSA PRIVATE KEY" => ring::rsa::KeyPair::from_der(&block.der),
            other => bail!(
                "a {other:?} PEM block; expected an RSA private key (\"PRIVATE KEY\" or \"RSA PRIVATE KEY\"): Secure Boot needs RSA, not Ed25519"
            ),
        }
        .map_err(|e| anyhow!("not a usable RSA private key ({e}): Secure Boot needs RSA 2048 to 4096"))?;
        let (block, _) = crate::pem::decode(cert_pem)?.context("no PEM block; expected a CERTIFICATE in PEM")?;
        ensure!(block.label == "CERTIFICATE", "a {:?} PEM block; expected a CERTIFICATE", block.label);
        let certificate = Certificate::from_der(&block.der).map_err(|e| anyhow!("not an X.509 certificate: {e}"))?;
        let spki = &certificate.tbs_certificate.subject_public_key_info;
        ensure!(
            spki.algorithm.oid == RSA_ENCRYPTION,
            "the certificate's key is not RSA ({}); Secure Boot needs RSA",
            spki.algorithm.oid
        );
        use ring::signature::KeyPair as _;
        ensure!(
            spki.subject_public_key.raw_bytes() == key.public_key().as_ref(),
            "the key and the certificate do not belong together (different public keys)"
        );
        Ok(Signer { key, certificate })
    }

    /// The certificate, DER.
    pub fn certificate_der(&self) -> Result<Vec<u8>> {
        Ok(self.certificate.to_der()?)
    }

    /// `image` with an Authenticode signature by this key added. Refuses an image
    /// that is already signed (upstream does too).
    pub fn sign(&self, image: &[u8]) -> Result<Vec<u8>> {
        let layout = uki::pe_layout(image)?;
        ensure!(layout.certificate_table.1 == 0, "the image is already signed (it has a certificate table)");
        // the certificate table starts 8-byte aligned; the padding is hashed
        let mut out = image.to_vec();
        out.resize(out.len().div_ceil(8) * 8, 0);
        let digest = digest(&out)?;
        let indirect = SpcIndirectDataContent {
            data: SpcAttributeTypeAndOptionalValue {
                value_type: SPC_PE_IMAGE_DATA,
                value: Any::new(Tag::Sequence, SPC_PE_IMAGE_DATA_VALUE)?,
            },
            message_digest: DigestInfo {
                digest_algorithm: sha256_algorithm(),
                digest: OctetString::new(digest.to_vec())?,
            },
        };
        let indirect = Any::from_der(&indirect.to_der()?)?;
        // Authenticode (as CMS) digests the content octets of eContent: here the
        // SpcIndirectDataContent without its SEQUENCE tag and length
        let content_digest = Sha256::digest(indirect.value());
        let attributes: SignedAttributes = SetOfVec::try_from(vec![
            attribute(ID_CONTENT_TYPE, Any::from(&SPC_INDIRECT_DATA_OBJID))?,
            attribute(SPC_SP_OPUS_INFO, Any::new(Tag::Sequence, Vec::<u8>::new())?)?,
            attribute(ID_MESSAGE_DIGEST, Any::new(Tag::OctetString, content_digest.to_vec())?)?,
        ])?;
        // the signature covers the attributes DER-encoded as a SET OF
        let to_sign = attributes.to_der()?;
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(&ring::signature::RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), &to_sign, &mut signature)
            .map_err(|_| anyhow!("RSA signing failed"))?;
        let tbs = &self.certificate.tbs_certificate;
        let signer_info = SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: tbs.issuer.clone(),
                serial_number: tbs.serial_number.clone(),
            }),
            digest_alg: sha256_algorithm(),
            signed_attrs: Some(attributes),
            signature_algorithm: AlgorithmIdentifierOwned { oid: RSA_ENCRYPTION, parameters: Some(Any::null()) },
            signature: OctetString::new(signature)?,
            unsigned_attrs: None,
        };
        let signed_data = SignedData {
            version: CmsVersion::V1,
            digest_algorithms: SetOfVec::try_from(vec![sha256_algorithm()])?,
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: SPC_INDIRECT_DATA_OBJID,
                econtent: Some(indirect),
            },
            certificates: Some(CertificateSet(SetOfVec::try_from(vec![CertificateChoices::Certificate(
                self.certificate.clone(),
            )])?)),
            crls: None,
            signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info])?),
        };
        let pkcs7 =
            ContentInfo { content_type: ID_SIGNED_DATA, content: Any::from_der(&signed_data.to_der()?)? }.to_der()?;
        // WIN_CERTIFICATE: dwLength counts header and data; the table entry is
        // padded to 8 bytes and the directory's size includes the padding
        let table_at = out.len();
        let length = 8 + pkcs7.len();
        out.extend_from_slice(&(length as u32).to_le_bytes());
        out.extend_from_slice(&WIN_CERT_REVISION_2_0.to_le_bytes());
        out.extend_from_slice(&WIN_CERT_TYPE_PKCS_SIGNED_DATA.to_le_bytes());
        out.extend_from_slice(&pkcs7);
        out.resize(out.len().div_ceil(8) * 8, 0);
        ensure!(out.len() <= u32::MAX as usize, "the signed image would be larger than 4 GiB");
        let table_len = (out.len() - table_at) as u32;
        uki::set_certificate_table(&mut out, table_at as u32, table_len)?;
        Ok(out)
    }
}

fn sha256_algorithm() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid: ID_SHA256, parameters: Some(Any::null()) }
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute> {
    Ok(Attribute { oid, values: SetOfVec::try_from(vec![value])? })
}
