//! PEM decoding with the rules of Go's `encoding/pem`, which upstream's files follow:
//! text before `-----BEGIN` is skipped, the body is standard base64 with line breaks,
//! and RFC 1421 headers (`Proc-Type: ...`) are recognised so that callers can refuse them.

use anyhow::{anyhow, bail, Result};
use base64::Engine;

/// One decoded PEM block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub label: String,
    pub has_headers: bool,
    pub der: Vec<u8>,
}

/// Encode DER bytes as PEM text with 64-column lines and a trailing newline.
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

/// Decode the first PEM block in `input`, and return it with the remaining bytes.
/// `Ok(None)` when there is no `-----BEGIN` line at all.
pub fn decode(input: &[u8]) -> Result<Option<(Block, &[u8])>> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    let Some(start) = find(input, BEGIN) else {
        return Ok(None);
    };
    let rest = &input[start + BEGIN.len()..];
    let line_end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let first_line = trim_cr(&rest[..line_end]);
    let label = first_line.strip_suffix(b"-----").ok_or_else(|| anyhow!("PEM: malformed BEGIN line"))?;
    let label = String::from_utf8(label.to_vec()).map_err(|_| anyhow!("PEM: label is not text"))?;
    let body_and_more = if line_end < rest.len() { &rest[line_end + 1..] } else { &[][..] };
    let end_marker = format!("-----END {label}-----");
    let end = find(body_and_more, end_marker.as_bytes())
        .ok_or_else(|| anyhow!("PEM: no \"{end_marker}\" line after BEGIN"))?;
    let body = &body_and_more[..end];
    let mut remaining = &body_and_more[end + end_marker.len()..];
    if let Some(nl) = remaining.iter().position(|&b| b == b'\n') {
        if remaining[..nl].iter().all(|b| b.is_ascii_whitespace()) {
            remaining = &remaining[nl + 1..];
        }
    }
    let text = std::str::from_utf8(body).map_err(|_| anyhow!("PEM {label}: body is not text"))?;
    let has_headers = text.lines().take_while(|l| !l.trim().is_empty()).any(|l| l.contains(':'));
    let b64: String = text
        .lines()
        .skip_while(|l| has_headers && !l.trim().is_empty())
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|e| anyhow!("PEM {label}: invalid base64 body: {e}"))?;
    Ok(Some((Block { label, has_headers, der }, remaining)))
}

/// All CERTIFICATE blocks of a roots file, as upstream reads them: other block types
/// are skipped, decoding stops at the first text that is not PEM, and zero
/// certificates is an error.
pub fn certificates(input: &[u8], what: &str) -> Result<Vec<Vec<u8>>> {
    let mut certs = Vec::new();
    let mut rest = input;
    while let Some((block, more)) = decode(rest).map_err(|e| anyhow!("{what}: {e}"))? {
        if block.label == "CERTIFICATE" {
            if block.has_headers {
                bail!("{what}: certificate #{} has PEM headers, expected none", certs.len());
            }
            certs.push(block.der);
        }
        rest = more;
    }
    if certs.is_empty() {
        bail!("{what}: no PEM block of type CERTIFICATE found");
    }
    Ok(certs)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn trim_cr(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\r").unwrap_or(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_junk() {
        let der = (0u8..200).collect::<Vec<_>>();
        let pem = encode("CERTIFICATE", &der);
        let text = format!("junk before\n{pem}");
        let (b, rest) = decode(text.as_bytes()).unwrap().unwrap();
        assert_eq!(b.label, "CERTIFICATE");
        assert_eq!(b.der, der);
        assert!(!b.has_headers);
        assert!(rest.is_empty());
    }

    #[test]
    fn headers_are_detected() {
        let text = "-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END CERTIFICATE-----\n";
        let (b, _) = decode(text.as_bytes()).unwrap().unwrap();
        assert!(b.has_headers);
        assert_eq!(b.der, vec![0, 0, 0]);
        assert!(certificates(text.as_bytes(), "f").unwrap_err().to_string().contains("headers"));
    }

    #[test]
    fn errors() {
        assert!(decode(b"nothing here").unwrap().is_none());
        assert!(decode(b"-----BEGIN X-----\nAAAA\n").is_err());
        assert!(decode(b"-----BEGIN X-----\n!!!\n-----END X-----\n").is_err());
        let e = certificates(encode("PRIVATE KEY", b"k").as_bytes(), "roots.pem").unwrap_err();
        assert_eq!(e.to_string(), "roots.pem: no PEM block of type CERTIFICATE found");
    }

    #[test]
    fn skips_other_blocks() {
        let text = format!("{}{}", encode("PRIVATE KEY", b"k"), encode("CERTIFICATE", b"c"));
        assert_eq!(certificates(text.as_bytes(), "f").unwrap(), vec![b"c".to_vec()]);
    }
}
