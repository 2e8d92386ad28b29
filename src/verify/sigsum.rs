//! Sigsum proofs as OS package signatures (System Transparency 1.3).
//!
//! A `signatures[i]` entry that is the text of a Sigsum proof (it starts with
//! `version=`) instead of a 64-byte Ed25519 signature says: the key of certificate
//! *i* signed SHA-256(archive), and a Sigsum log, cosigned by witnesses, has
//! published that signature. It counts like a plain signature of that key when the
//! proof verifies under the Sigsum policy of the trust policy directory
//! (`ospkg_trust_policy`): the leaf is signed by the certificate's key, the log is
//! one the policy names and signed the tree head, the witnesses' valid cosignatures
//! meet the policy's quorum, and the inclusion proof leads from the leaf to the
//! signed root. Without a policy a proof never counts.
//!
//! The checks themselves are the `sigsum` crate's (mullvad/sigsum-rs); this module
//! accepts version 1 proofs too (sigsum-go does; the crate reads version 2 only) and
//! turns the crate's terse errors into what an operator can act on.

use sha2::{Digest, Sha256};

use crate::digest::hex;

pub use ::sigsum::Policy;

/// What a proof said, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofSummary {
    pub version: u32,
    /// The log's key hash (hex), and its URL when the policy has one.
    pub log: String,
    /// Cosignature lines in the proof.
    pub cosignatures: usize,
    /// Of those, the ones by witnesses the policy names.
    pub by_policy_witnesses: usize,
    /// Of those, the ones whose signature did not verify (not counted).
    pub failed: usize,
    /// Where the leaf is in the log (`leaf_index`), and the size of the tree the
    /// proof is for (`size`): what a reader needs to find the entry in the log.
    pub leaf_index: Option<u64>,
    pub tree_size: Option<u64>,
}

impl std::fmt::Display for ProofSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "log {}, {} of {} cosignatures by policy witnesses",
            self.log, self.by_policy_witnesses, self.cosignatures
        )?;
        if self.failed > 0 {
            write!(f, ", {} of them did not verify", self.failed)?;
        }
        Ok(())
    }
}

pub use crate::config::trust_policy::parse_sigsum_policy as parse_policy;

/// Whether a signature entry is a Sigsum proof rather than a raw signature.
pub fn is_proof(entry: &[u8]) -> bool {
    entry.starts_with(b"version=")
}

/// The value of the first `key=` line.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// A version 1 proof rewritten as version 2: the leaf line drops its short checksum
/// (the first two bytes of SHA-256(message), checked here).
fn as_version_2(text: &str, checksum: &[u8; 32]) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "version=1" {
            out.push_str("version=2\n");
        } else if let Some(rest) = line.strip_prefix("leaf=") {
            let mut parts = rest.trim_end().splitn(2, ' ');
            let short = parts.next().unwrap_or("");
            let others = parts.next().unwrap_or("");
            if short.len() != 4 {
                return Err(format!("version 1 leaf line: short checksum {short:?} is not 4 hex digits"));
            }
            if short != hex(&checksum[..2]) {
                return Err(format!(
                    "version 1 leaf line: short checksum {short} is not this archive's ({}): a proof for another archive",
                    hex(&checksum[..2])
                ));
            }
            out.push_str("leaf=");
            out.push_str(others);
            out.push('\n');
        } else {
            out.push_str(line);
        }
    }
    Ok(out)
}

/// A decimal number as sigsum-go reads it: digits only, no leading zero, below 2^63.
fn number(s: &str, what: &str) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {s:?} is not a decimal number"));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(format!("{what} {s:?} has a leading zero"));
    }
    match s.parse::<u64>() {
        Ok(n) if n < 1 << 63 => Ok(n),
        _ => Err(format!("{what} {s} is not below 2^63")),
    }
}

/// `n` bytes in hex (either case, as Go's hex decoder takes them).
fn hex_bytes(s: &str, n: usize, what: &str) -> Result<(), String> {
    if s.len() == 2 * n && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!("{what} is not {n} bytes of hex"))
    }
}

/// The lines of a proof, read in order; errors name the line.
struct Lines<'a> {
    lines: std::iter::Enumerate<std::str::Split<'a, char>>,
}

impl<'a> Lines<'a> {
    /// The next line, with its 1-based number.
    fn next(&mut self) -> Option<(usize, &'a str)> {
        self.lines.next().map(|(i, l)| (i + 1, l))
    }

    /// The value of the next line, which must be `key=...`.
    fn value(&mut self, key: &str) -> Result<(usize, &'a str), String> {
        let Some((l, line)) = self.next() else {
            return Err(format!("it ends where a {key}= line should be"));
        };
        match line.split_once('=') {
            Some((k, v)) if k == key => Ok((l, v)),
            _ if line.is_empty() => Err(format!("line {l}: an empty line where a {key}= line should be")),
            _ => Err(format!("line {l}: expected a {key}= line")),
        }
    }

    /// The next line's `n` values, separated by single spaces.
    fn values(&mut self, key: &str, n: usize) -> Result<(usize, Vec<&'a str>), String> {
        let (l, v) = self.value(key)?;
        split(l, v, key, n).map(|p| (l, p))
    }

    fn blank(&mut self) -> Result<(), String> {
        match self.next() {
            Some((_, "")) => Ok(()),
            Some((l, _)) => Err(format!("line {l}: expected an empty line between blocks")),
            None => Err("it ends where an empty line should be".into()),
        }
    }
}

fn split<'a>(l: usize, v: &'a str, key: &str, n: usize) -> Result<Vec<&'a str>, String> {
    let parts: Vec<&str> = v.split(' ').collect();
    if parts.len() != n {
        return Err(format!("line {l}: {key}= has {} values separated by single spaces, expected {n}", parts.len()));
    }
    Ok(parts)
}

/// The proof's grammar exactly as sigsum-go v0.11.2 (the version upstream stmgr v0.6.6
/// and stboot link) reads it, so that stboot-rs and upstream accept the same proofs:
/// every line ends with a newline; `key=value` lines in a fixed order; values split
/// on single spaces; numbers without leading zeros and below 2^63; one cosignature per
/// witness key hash; a tree of one leaf has no inclusion block, a larger one has one
/// with 1 to 63 node hashes. The `sigsum` crate is more lenient in each of these, so
/// this runs before it is asked. Returns the proof's version (1 or 2).
fn grammar(text: &str) -> Result<u32, String> {
    let Some(body) = text.strip_suffix('\n') else {
        return Err("its last line does not end with a newline".into());
    };
    let at = |l: usize| move |e: String| format!("line {l}: {e}");
    let mut p = Lines { lines: body.split('\n').enumerate() };
    let (l, v) = p.value("version")?;
    let version = match number(v, "version").map_err(at(l))? {
        v @ (1 | 2) => v as u32,
        v => return Err(format!("proof version {v} is not supported (1 and 2 are)")),
    };
    let (l, v) = p.value("log")?;
    hex_bytes(v, 32, "the log key hash").map_err(at(l))?;
    let (l, leaf) = p.values("leaf", if version == 1 { 3 } else { 2 })?;
    if version == 1 {
        hex_bytes(leaf[0], 2, "the short checksum").map_err(at(l))?;
    }
    let n = leaf.len();
    hex_bytes(leaf[n - 2], 32, "the submitter key hash").map_err(at(l))?;
    hex_bytes(leaf[n - 1], 64, "the leaf signature").map_err(at(l))?;
    p.blank()?;
    let (l, v) = p.value("size")?;
    let size = number(v, "size").map_err(at(l))?;
    if size == 0 {
        return Err(format!("line {l}: the tree is empty (size=0)"));
    }
    let (l, v) = p.value("root_hash")?;
    hex_bytes(v, 32, "the root hash").map_err(at(l))?;
    let (l, v) = p.value("signature")?;
    hex_bytes(v, 64, "the log's signature").map_err(at(l))?;
    let mut witnesses = std::collections::BTreeSet::new();
    let mut inclusion = false;
    while let Some((l, line)) = p.next() {
        if line.is_empty() {
            inclusion = true;
            break;
        }
        let v = line
            .strip_prefix("cosignature=")
            .ok_or_else(|| at(l)("expected a cosignature= line or an empty line".into()))?;
        let c = split(l, v, "cosignature", 3)?;
        hex_bytes(c[0], 32, "the witness key hash").map_err(at(l))?;
        number(c[1], "the cosignature's timestamp").map_err(at(l))?;
        hex_bytes(c[2], 64, "the cosignature").map_err(at(l))?;
        if !witnesses.insert(c[0].to_ascii_lowercase()) {
            return Err(format!("line {l}: a second cosignature by witness key hash {}", c[0]));
        }
    }
    match (size, inclusion) {
        (1, false) => return Ok(version),
        (1, true) => return Err("a tree of size 1 has no inclusion proof, but the proof carries one".into()),
        (_, false) => return Err(format!("a tree of size {size} needs an inclusion proof, and the proof has none")),
        (_, true) => {}
    }
    let (l, v) = p.value("leaf_index")?;
    number(v, "leaf_index").map_err(at(l))?;
    let mut nodes = 0;
    while let Some((l, line)) = p.next() {
        let v = line.strip_prefix("node_hash=").ok_or_else(|| at(l)("expected a node_hash= line".into()))?;
        hex_bytes(v, 32, "the node hash").map_err(at(l))?;
        nodes += 1;
        if nodes > 63 {
            return Err(format!("line {l}: more than 63 node hashes"));
        }
    }
    if nodes == 0 {
        return Err("the inclusion proof has no node_hash= line".into());
    }
    Ok(version)
}

/// Check a proof for `message` (the archive's SHA-256, the message that was logged)
/// by the Ed25519 `key` of its certificate. The error says which check failed.
pub fn check(
    proof: &[u8],
    message: &[u8; 32],
    key: &[u8; 32],
    policy: Option<&Policy>,
) -> Result<ProofSummary, String> {
    let text = std::str::from_utf8(proof).map_err(|_| "the proof is not text".to_string())?;
    let version = grammar(text).map_err(|e| format!("not a valid Sigsum proof: {e}"))?;
    let checksum: [u8; 32] = Sha256::digest(message).into();
    let text = match version {
        2 => text.to_string(),
        1 => as_version_2(text, &checksum)?,
        v => return Err(format!("proof version {v} is not supported (1 and 2 are)")),
    };
    // A proof from a tree of one leaf has no inclusion block (sigsum-go writes none:
    // the leaf hash is the root); the crate wants one, so give it the empty path.
    let text = if text.split("\n\n").count() == 2 && field(&text, "size").map(str::trim) == Some("1") {
        format!("{}\n\nleaf_index=0\n", text.trim_end_matches('\n'))
    } else {
        text
    };
    let parse =
        |text: &str| ::sigsum::SigsumSignature::from_ascii(text).map_err(|e| format!("not a valid Sigsum proof: {e}"));
    let mut parsed = parse(&text)?;
    let log_hash = field(&text, "log").unwrap_or("").trim().to_string();
    let cosigners: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("cosignature="))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect();
    let Some(policy) = policy else {
        return Err(format!(
            "a Sigsum proof (log {log_hash}), but the trust policy has no Sigsum policy (ospkg_trust_policy): without one a proof cannot count"
        ));
    };
    let log = policy.logs().find(|l| hex(::sigsum::Hash::new(&l.pubkey).as_ref()) == log_hash);
    let by_policy_witnesses = cosigners
        .iter()
        .filter(|h| {
            let Some(bytes) = decode_hex32(h) else { return false };
            policy.get_witness_by_keyhash(&::sigsum::Hash::from(bytes)).is_some()
        })
        .count();
    let mut summary = ProofSummary {
        version,
        log: match log.as_ref().and_then(|l| l.url.clone()) {
            Some(url) => format!("{log_hash} ({url})"),
            None => log_hash.clone(),
        },
        cosignatures: cosigners.len(),
        by_policy_witnesses,
        failed: 0,
        leaf_index: field(&text, "leaf_index").and_then(|v| v.trim().parse().ok()),
        tree_size: field(&text, "size").and_then(|v| v.trim().parse().ok()),
    };
    let signer = ::sigsum::PublicKey::from(*key);
    let mut text = text;
    loop {
        let e = match ::sigsum::verify(&::sigsum::Hash::from(*message), &parsed, std::slice::from_ref(&signer), policy)
        {
            Ok(()) => return Ok(summary),
            Err(e) => e.to_string(),
        };
        let e = e.strip_prefix("verify error: ").unwrap_or(&e);
        // A policy witness's cosignature that does not verify is not counted, and
        // the others may still meet the quorum, as sigsum-go decides; the crate
        // refuses the whole proof, so drop that cosignature and ask again.
        if let Some(witness) = e.strip_prefix("bad witness cosignature from ") {
            if let Some(key) = decode_hex32(witness.trim()) {
                let keyhash = hex(::sigsum::Hash::new(key).as_ref());
                let prefix = format!("cosignature={keyhash} ");
                if text.contains(&prefix) && summary.failed < cosigners.len() {
                    text = text.lines().filter(|l| !l.starts_with(&prefix)).map(|l| format!("{l}\n")).collect();
                    parsed = parse(&text)?;
                    summary.failed += 1;
                    continue;
                }
            }
        }
        return Err(match e {
            "unknown leaf keyhash" => "the proof's leaf was signed by another key than the certificate's".to_string(),
            "bad leaf signature" => {
                "the leaf signature does not verify for this archive under the certificate's key (a proof for another archive?)"
                    .to_string()
            }
            "unknown log keyhash" => format!("log {log_hash} is not a log of the Sigsum policy"),
            "bad log signature" => format!("the tree head is not signed by log {log_hash}"),
            "not enough valid cosignatures" => format!(
                "the policy's witness quorum is not met: {} of {} cosignatures are by policy witnesses{}",
                by_policy_witnesses,
                cosigners.len(),
                if summary.failed > 0 { format!(", {} of them did not verify", summary.failed) } else { String::new() }
            ),
            "bad inclusion proof" => "the inclusion proof does not lead from this leaf to the signed root hash".to_string(),
            other => other.to_string(),
        });
    }
}

/// Check only the proof's leaf: that it is `message` signed by `key` (what
/// `stmgr ospkg sigsum` checks before it attaches a proof; the log and witnesses are
/// judged at verification, under the trust policy). Done by the crate's own
/// verification under an empty policy: its leaf checks come first, so failing only
/// at the log means the leaf is right.
pub fn check_leaf(proof: &[u8], message: &[u8; 32], key: &[u8; 32]) -> Result<(), String> {
    let empty = ::sigsum::PolicyBuilder::new().build();
    match check(proof, message, key, Some(&empty)) {
        Ok(_) => Ok(()),
        Err(e) if e.contains("is not a log of the Sigsum policy") => Ok(()),
        Err(e) => Err(e),
    }
}

fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    crate::digest::unhex(s)?.try_into().ok()
}
