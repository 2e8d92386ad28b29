//! Fetching the OS package: for each provisioning URL in order, the descriptor, then
//! the archive it points to, streamed into the staging tmpfs while it is hashed. Never
//! holds the archive in the heap. HTTPS trusts only the pinned TLS roots.
//!
//! Connect errors, timeouts and 5xx answers are retried with backoff; 4xx answers,
//! untrusted TLS certificates and bad descriptors move on to the next URL at once.
//! The caller's check (signature verification) runs per URL, and its failure moves on
//! to the next URL too.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use reqwest::Url;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::ospkg::descriptor::MAX_DESCRIPTOR_BYTES;
use crate::ospkg::Descriptor;

/// How long one connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per object before giving up on a URL.
pub const ATTEMPTS: u32 = 5;
/// Progress lines on the console at most this often (a 115200-baud line carries
/// about 11 KB/s; one short line every 2 s keeps the console readable).
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);

/// A downloaded package, staged.
#[derive(Debug)]
pub struct Fetched {
    pub descriptor_url: Url,
    pub descriptor: Descriptor,
    pub descriptor_bytes: Vec<u8>,
    pub archive_url: Url,
    pub archive_path: PathBuf,
    pub archive_sha256: [u8; 32],
    pub archive_len: u64,
}

pub struct Fetcher {
    client: reqwest::blocking::Client,
    deadline: Instant,
    stage_dir: PathBuf,
    max_archive: u64,
}

/// Why a download failed, and whether trying again may help.
#[derive(Debug)]
struct Failure {
    msg: String,
    retry: bool,
}

impl Fetcher {
    /// `tls_roots` (DER) are the only roots trusted for HTTPS.
    pub fn new(tls_roots: &[Vec<u8>], deadline: Instant, stage_dir: &Path, max_archive: u64) -> Result<Self> {
        let mut b = reqwest::blocking::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .https_only(false)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(None)
            .user_agent(concat!("stboot-rs/", env!("CARGO_PKG_VERSION")));
        for (i, der) in tls_roots.iter().enumerate() {
            let c = reqwest::Certificate::from_der(der).with_context(|| format!("TLS root #{i}"))?;
            b = b.add_root_certificate(c);
        }
        let client = b.build().context("building the HTTP client")?;
        Ok(Self { client, deadline, stage_dir: stage_dir.to_path_buf(), max_archive })
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn get(&self, url: &Url) -> std::result::Result<reqwest::blocking::Response, Failure> {
        let mut clean = url.clone();
        let user = percent_decode(url.username());
        let pass = url.password().map(percent_decode);
        let _ = clean.set_username("");
        let _ = clean.set_password(None);
        let mut req = self.client.get(clean).timeout(self.remaining().max(Duration::from_secs(1)));
        if !user.is_empty() || pass.is_some() {
            req = req.basic_auth(user, pass);
        }
        let resp = req.send().map_err(classify)?;
        let status = resp.status();
        if status.is_success() {
            Ok(resp)
        } else {
            Err(Failure { msg: format!("server answered {status}"), retry: status.is_server_error() })
        }
    }

    /// Run `op` with retries and backoff (1, 2, 4, 8 s) while it fails in a way that may heal.
    fn retrying<T>(&self, what: &str, url: &Url, mut op: impl FnMut() -> std::result::Result<T, Failure>) -> Result<T> {
        let mut wait = Duration::from_secs(1);
        for attempt in 1..=ATTEMPTS {
            match op() {
                Ok(v) => return Ok(v),
                Err(f) if f.retry && attempt < ATTEMPTS && self.remaining() > wait => {
                    warn!(
                        "{what} {}: {} (attempt {attempt}/{ATTEMPTS}, retrying in {} s)",
                        redact(url),
                        f.msg,
                        wait.as_secs()
                    );
                    std::thread::sleep(wait);
                    wait *= 2;
                }
                Err(f) => {
                    let why = if f.retry && attempt < ATTEMPTS { ", deadline reached" } else { "" };
                    bail!("{what} {}: {}{why}", redact(url), f.msg)
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Download and parse the descriptor at `url`.
    pub fn descriptor(&self, url: &Url) -> Result<(Descriptor, Vec<u8>)> {
        info!("Downloading {}", redact(url));
        let bytes = self.retrying("descriptor", url, || {
            let resp = self.get(url)?;
            let mut buf = Vec::new();
            resp.take(MAX_DESCRIPTOR_BYTES as u64 + 1).read_to_end(&mut buf).map_err(io_failure)?;
            Ok(buf)
        })?;
        let d = Descriptor::parse(&bytes).with_context(|| format!("descriptor from {}", redact(url)))?;
        Ok((d, bytes))
    }

    /// Stream the archive at `url` into `dest`, hashing it on the way.
    pub fn archive(&self, url: &Url, dest: &Path) -> Result<([u8; 32], u64)> {
        info!("Downloading {}", redact(url));
        self.retrying("archive", url, || {
            let resp = self.get(url)?;
            if let Some(len) = resp.content_length() {
                if len > self.max_archive {
                    return Err(Failure {
                        msg: format!(
                            "the package is {len} bytes; only {} bytes of memory are available for staging it",
                            self.max_archive
                        ),
                        retry: false,
                    });
                }
            }
            self.stream(resp, dest).map_err(|e| Failure { msg: format!("{e:#}"), retry: true })
        })
    }

    fn stream(&self, mut resp: reqwest::blocking::Response, dest: &Path) -> Result<([u8; 32], u64)> {
        let total = resp.content_length();
        let mut out = std::fs::File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let (start, mut last) = (Instant::now(), Instant::now());
        let mut n: u64 = 0;
        loop {
            let k = resp.read(&mut buf).context("reading the archive")?;
            if k == 0 {
                break;
            }
            n += k as u64;
            if n > self.max_archive {
                bail!("the package exceeds the {} bytes of memory available for staging it", self.max_archive);
            }
            hasher.update(&buf[..k]);
            out.write_all(&buf[..k]).with_context(|| format!("writing {}", dest.display()))?;
            if last.elapsed() >= PROGRESS_INTERVAL {
                last = Instant::now();
                info!("{}", progress(n, total, start.elapsed()));
            }
        }
        if let Some(t) = total {
            if n != t {
                bail!("connection closed after {n} of {t} bytes");
            }
        }
        if n == 0 {
            bail!("the archive is empty");
        }
        out.sync_all().ok();
        info!("{}", progress(n, total, start.elapsed()));
        Ok((hasher.finalize().into(), n))
    }

    /// Try each URL in order: descriptor, archive, then `check`; the first URL for which
    /// all succeed wins. Every failure is logged with its URL.
    pub fn first_good<T>(&self, urls: &[Url], mut check: impl FnMut(&Fetched) -> Result<T>) -> Result<(Fetched, T)> {
        let mut errors = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            if self.remaining().is_zero() {
                errors.push(format!("{}: not tried, deadline reached", redact(url)));
                continue;
            }
            let r = self.one(url, i).and_then(|f| check(&f).map(|t| (f, t)));
            match r {
                Ok(v) => return Ok(v),
                Err(e) => {
                    warn!("URL {} of {} failed: {e:#}", i + 1, urls.len());
                    errors.push(format!("{}: {e:#}", redact(url)));
                }
            }
        }
        bail!("no provisioning URL gave a valid OS package:\n  {}", errors.join("\n  "))
    }

    fn one(&self, url: &Url, i: usize) -> Result<Fetched> {
        if url.scheme() == "http" {
            warn!("{} is plain http: only the signatures protect this download", redact(url));
        }
        let (descriptor, descriptor_bytes) = self.descriptor(url)?;
        let archive_url = descriptor.archive_url(url)?;
        let archive_path = self.stage_dir.join(format!("ospkg-{i}.zip"));
        let (archive_sha256, archive_len) = self.archive(&archive_url, &archive_path).inspect_err(|_| {
            let _ = std::fs::remove_file(&archive_path);
        })?;
        Ok(Fetched {
            descriptor_url: url.clone(),
            descriptor,
            descriptor_bytes,
            archive_url,
            archive_path,
            archive_sha256,
            archive_len,
        })
    }
}

/// Split and parse the (substituted) pointer; bad entries are reported and skipped
/// (upstream drops every URL after the first bad one).
pub fn pointer_urls(pointer: &str) -> (Vec<Url>, Vec<String>) {
    let mut urls = Vec::new();
    let mut bad = Vec::new();
    for (i, s) in pointer.split(',').enumerate() {
        match Url::parse(s.trim()) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => urls.push(u),
            Ok(u) => bad.push(format!("URL {} ({s:?}): scheme {:?} is not http or https", i + 1, u.scheme())),
            Err(e) => bad.push(format!("URL {} ({s:?}): {e}", i + 1)),
        }
    }
    (urls, bad)
}

/// A URL for logs: credentials replaced.
pub fn redact(u: &Url) -> String {
    let mut c = u.clone();
    if !c.username().is_empty() || c.password().is_some() {
        let _ = c.set_username("***");
        let _ = c.set_password(None);
    }
    c.to_string()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn classify(e: reqwest::Error) -> Failure {
    let chain = format!("{e:?}");
    if chain.contains("InvalidCertificate") || chain.contains("UnknownIssuer") || chain.contains("certificate") {
        let detail = if chain.contains("UnknownIssuer") {
            "issued by a CA that is not pinned in tls_roots.pem"
        } else {
            "certificate rejected"
        };
        return Failure { msg: format!("TLS: the server's certificate is not trusted ({detail})"), retry: false };
    }
    // reqwest's chain repeats the URL at every level; the innermost cause is what helps
    let mut inner = e.to_string();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(s) = src {
        inner = s.to_string();
        src = s.source();
    }
    let msg = if e.is_timeout() {
        format!("timed out ({inner})")
    } else if e.is_connect() {
        format!("cannot connect: {inner}")
    } else {
        inner
    };
    Failure { msg, retry: e.is_connect() || e.is_timeout() || e.is_request() }
}

fn io_failure(e: std::io::Error) -> Failure {
    Failure { msg: e.to_string(), retry: true }
}

/// `12.3 MiB / 45.6 MiB (27%) at 8.1 MiB/s`
pub fn progress(n: u64, total: Option<u64>, elapsed: Duration) -> String {
    const M: f64 = 1024.0 * 1024.0;
    let rate = n as f64 / elapsed.as_secs_f64().max(0.001) / M;
    match total {
        Some(t) if t > 0 => {
            format!("{:.1} MiB / {:.1} MiB ({}%) at {rate:.1} MiB/s", n as f64 / M, t as f64 / M, n * 100 / t)
        }
        _ => format!("{:.1} MiB at {rate:.1} MiB/s", n as f64 / M),
    }
}

/// Bytes of memory available for staging: half of MemAvailable (the archive, then the
/// extracted kernel and initramfs, live in tmpfs at the same time).
pub fn staging_budget() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024 / 2)
        .unwrap_or(512 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_parsing_skips_bad_entries() {
        let (u, bad) = pointer_urls("https://a.example/x.json,ftp://b/x.json,not a url,http://10.0.2.2:8080/y.json");
        assert_eq!(u.len(), 2);
        assert_eq!(u[1].as_str(), "http://10.0.2.2:8080/y.json");
        assert_eq!(bad.len(), 2);
    }

    #[test]
    fn redaction_and_decoding() {
        let u = Url::parse("https://user:p%40ss@h.example/x.json").unwrap();
        assert_eq!(redact(&u), "https://***@h.example/x.json");
        assert_eq!(percent_decode(u.password().unwrap()), "p@ss");
        assert_eq!(percent_decode("a%2"), "a%2");
    }

    #[test]
    fn progress_line() {
        assert_eq!(progress(5 << 20, Some(10 << 20), Duration::from_secs(1)), "5.0 MiB / 10.0 MiB (50%) at 5.0 MiB/s");
    }
}
