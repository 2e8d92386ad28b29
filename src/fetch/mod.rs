//! Fetching the OS package over the network: for one provisioning URL, the descriptor,
//! then the archive it points to, streamed into the staging tmpfs while it is hashed.
//! The archive never sits in the heap. HTTPS trusts only the pinned TLS roots.
//!
//! * [`http`]: one GET with typed errors ([`FetchError`]) and the stall timeout;
//! * [`retry`]: how often one URL is tried again, by failure class;
//! * this module: one URL from descriptor to an [`Unverified`] package.
//!
//! No server can hold the boot: every wait is bounded by the stall timeout, and a URL
//! is given up after a bounded number of attempts (see [`retry`]), so the caller moves
//! on to the next URL. docs/design.md has the numbers.

pub mod http;
pub mod retry;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use reqwest::Url;
use tracing::{info, warn};

pub use http::{Client, FetchError, Retry};
pub use retry::{RetryPolicy, UrlBudget};

use crate::decrypt;
use crate::ospkg::descriptor::MAX_DESCRIPTOR_BYTES;
use crate::ospkg::package::{ArchiveFile, Origin, Unverified};
use crate::ospkg::Descriptor;

/// Timeouts and bounds of the fetch step.
#[derive(Debug, Clone)]
pub struct Settings {
    /// No response, or fewer than [`http::MIN_RATE`] bytes/s, for this long ends an attempt.
    pub stall_timeout: Duration,
    pub retry: RetryPolicy,
    /// Nothing new starts after this instant.
    pub deadline: Instant,
    /// The archive may not be larger than this ([`archive_budget`]).
    pub max_archive: u64,
    /// Where `max_archive` comes from, for the error that refuses a larger archive.
    pub max_archive_why: String,
}

/// Downloads packages into `stage_dir`, and decrypts them with `identities` if they
/// are age files.
pub struct Fetcher {
    client: Client,
    settings: Settings,
    stage_dir: PathBuf,
    identities: Option<Arc<decrypt::Identities>>,
}

impl Fetcher {
    /// `tls_roots` (DER) are the only roots trusted for HTTPS.
    pub fn new(tls_roots: &[Vec<u8>], settings: Settings, stage_dir: &Path) -> Result<Self> {
        let client = Client::new(tls_roots, settings.stall_timeout)?;
        Ok(Self { client, settings, stage_dir: stage_dir.to_path_buf(), identities: None })
    }

    /// Decrypt age-encrypted descriptors and archives with these identities.
    pub fn with_identities(mut self, identities: Option<Arc<decrypt::Identities>>) -> Self {
        self.identities = identities;
        self
    }

    pub fn deadline_passed(&self) -> bool {
        Instant::now() >= self.settings.deadline
    }

    /// Descriptor and archive from `url` (the `index`th URL, for the staging file's
    /// name). Retries as [`retry`] says; the error says which object failed and why.
    pub fn fetch(&self, url: &Url, index: usize) -> Result<Unverified> {
        if url.scheme() == "http" {
            warn!("{} is plain http: only the signatures protect this download", redact(url));
        }
        let mut budget = UrlBudget::new(self.settings.retry, self.settings.deadline);
        let (descriptor, descriptor_bytes, descriptor_at) = self.descriptor(url, &mut budget)?;
        let archive_url = archive_url(&descriptor, &descriptor_at)?;
        let path = self.stage_dir.join(format!("ospkg-{index}.zip"));
        let archive = self.archive(&archive_url, &path, &mut budget)?;
        let origin = Origin::Network { descriptor: redact(&descriptor_at), archive: redact(&archive_url) };
        Ok(Unverified { origin, descriptor, descriptor_bytes, archive })
    }

    fn descriptor(&self, url: &Url, budget: &mut UrlBudget) -> Result<(Descriptor, Vec<u8>, Url)> {
        info!("Downloading {}", redact(url));
        let (bytes, dl) = budget
            .run(
                || {
                    let mut buf = Vec::new();
                    let dl = self.client.download(url, MAX_DESCRIPTOR_BYTES as u64, &mut buf, &mut |_, _, _| {})?;
                    Ok((buf, dl))
                },
                |e, n, wait| retry_line("descriptor", url, e, n, wait),
            )
            .map_err(|e| failed("descriptor", url, e))?;
        if dl.url != *url {
            info!("descriptor redirected to {}", redact(&dl.url));
        }
        let what = format!("descriptor {}", redact(&dl.url));
        let ids = self.identities.as_deref();
        let (bytes, encrypted) = decrypt::descriptor(bytes, ids, &what, MAX_DESCRIPTOR_BYTES as u64)?;
        if encrypted {
            info!("{what}: decrypted ({} bytes)", bytes.len());
        } else if ids.is_some() {
            warn!("{what} is not encrypted, although decryption identities are configured");
        }
        let d = Descriptor::parse(&bytes).with_context(|| format!("descriptor from {}", redact(&dl.url)))?;
        Ok((d, bytes, dl.url))
    }

    fn archive(&self, url: &Url, path: &Path, budget: &mut UrlBudget) -> Result<ArchiveFile> {
        info!("Downloading {}", redact(url));
        let dl = budget
            .run(
                || {
                    let mut f = create_private(path)?;
                    let dl = self.client.download(url, self.settings.max_archive, &mut f, &mut |n, total, t| {
                        info!("{}", progress(n, total, t))
                    });
                    match dl {
                        Ok(dl) => Ok((f, dl)),
                        Err(e) => {
                            let _ = std::fs::remove_file(path);
                            Err(e)
                        }
                    }
                },
                |e, n, wait| retry_line("archive", url, e, n, wait),
            )
            .map_err(|e| {
                let too_large = matches!(e, FetchError::TooLarge { .. });
                let e = failed("archive", url, e);
                if too_large {
                    e.context(format!("the archive does not fit: {}", self.settings.max_archive_why))
                } else {
                    e
                }
            })?;
        let (file, dl) = dl;
        if dl.url != *url {
            info!("archive redirected to {}", redact(&dl.url));
        }
        info!("archive: {} bytes", dl.len);
        let what = format!("archive {}", redact(&dl.url));
        let ids = self.identities.as_deref();
        let plain_path = path.with_extension("plain.zip");
        let remove_download = |e| {
            let _ = std::fs::remove_file(path);
            e
        };
        match decrypt::archive(file, ids, &what, &plain_path, self.settings.max_archive).map_err(remove_download)? {
            decrypt::Archive::Plain(file) => {
                if ids.is_some() {
                    warn!("{what} is not encrypted, although decryption identities are configured");
                }
                Ok(ArchiveFile::downloaded(file, dl.sha256, dl.len, path.to_path_buf()))
            }
            decrypt::Archive::Decrypted { file, sha256, len } => {
                // the ciphertext goes as soon as the plaintext is complete
                let _ = std::fs::remove_file(path);
                info!("{what}: decrypted to {len} bytes");
                Ok(ArchiveFile::downloaded(file, sha256, len, plain_path))
            }
        }
    }
}

/// The archive URL the descriptor names, resolved against the URL the descriptor
/// came from. Credentials of the descriptor's URL are kept for the same scheme, host
/// and port only, and never carried from https to plain http.
pub fn archive_url(d: &Descriptor, descriptor_url: &Url) -> Result<Url> {
    let mut u = d.archive_url(descriptor_url)?;
    let same_origin = u.scheme() == descriptor_url.scheme()
        && u.host_str() == descriptor_url.host_str()
        && u.port_or_known_default() == descriptor_url.port_or_known_default();
    if descriptor_url.scheme() == "https" && u.scheme() == "http" {
        warn!(
            "the https descriptor points at a plain http archive {}: only the signatures protect it{}",
            redact(&u),
            if u.password().is_some() || !u.username().is_empty() { "; its credentials are not sent" } else { "" }
        );
    }
    if !same_origin || (descriptor_url.scheme() == "https" && u.scheme() == "http") {
        let _ = u.set_username("");
        let _ = u.set_password(None);
    }
    Ok(u)
}

fn create_private(path: &Path) -> Result<File, FetchError> {
    crate::files::create_private(path).map_err(|e| FetchError::Local(format!("creating {}: {e}", path.display())))
}

fn retry_line(what: &str, url: &Url, e: &FetchError, attempt: u32, wait: Duration) {
    warn!("{what} {}: {e} (attempt {attempt}, retrying in {} s)", redact(url), wait.as_secs());
}

fn failed(what: &str, url: &Url, e: FetchError) -> anyhow::Error {
    anyhow::Error::new(e).context(format!("{what} {}", redact(url)))
}

/// Split and parse the (substituted) pointer; bad entries are reported and skipped
/// (upstream drops every URL after the first bad one).
pub fn pointer_urls(pointer: &str) -> (Vec<Url>, Vec<String>) {
    let mut urls = Vec::new();
    let mut bad = Vec::new();
    for (i, s) in pointer.split(',').enumerate() {
        match Url::parse(s.trim()) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => urls.push(u),
            Ok(u) => bad.push(format!("URL {}: scheme {:?} is not http or https", i + 1, u.scheme())),
            // the text may hold credentials: never echo it
            Err(e) => bad.push(format!("URL {}: not a URL ({e})", i + 1)),
        }
    }
    (urls, bad)
}

/// A URL for logs: user name and password replaced.
pub fn redact(u: &Url) -> String {
    let mut c = u.clone();
    if !c.username().is_empty() || c.password().is_some() {
        let _ = c.set_username("***");
        let _ = c.set_password(None);
    }
    c.to_string()
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

fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

fn tmpfs_free(stage_dir: &Path) -> Option<u64> {
    nix::sys::statvfs::statvfs(stage_dir).ok().map(|s| s.blocks_available().saturating_mul(s.fragment_size()))
}

/// Bytes one package's archive may take, and why, before anything is downloaded.
/// The archive and the kernel and initramfs extracted from it are on the staging
/// tmpfs at the same time, and extracted entries are at least as large as the
/// archive's share of them: so at most half of the tmpfs's free space, and at most
/// half of MemAvailable (tmpfs pages are memory).
pub fn archive_budget(stage_dir: &Path) -> (u64, String) {
    budget_from(mem_available(), tmpfs_free(stage_dir), stage_dir)
}

fn budget_from(mem: Option<u64>, free: Option<u64>, stage_dir: &Path) -> (u64, String) {
    const MIB: u64 = 1 << 20;
    let mem = mem.unwrap_or(1 << 30);
    let bytes = match free {
        Some(f) => (mem / 2).min(f / 2),
        None => mem / 2,
    };
    let free = free.map(|f| format!("{} MiB free on the staging tmpfs {}", f / MIB, stage_dir.display()));
    let why = format!(
        "at most {} MiB: half of the less of {} and MemAvailable {} MiB, because the archive and the kernel and initramfs extracted from it are there at the same time",
        bytes / MIB,
        free.unwrap_or_else(|| "(the staging tmpfs's size is unknown)".into()),
        mem / MIB,
    );
    (bytes, why)
}

/// Bytes one extracted entry may take: no more than the staging tmpfs has free now,
/// and half of MemAvailable.
pub fn staging_budget(stage_dir: &Path) -> u64 {
    let mem = mem_available().map(|m| m / 2).unwrap_or(512 << 20);
    mem.min(tmpfs_free(stage_dir).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_parsing_skips_bad_entries_without_echoing_them() {
        let (u, bad) =
            pointer_urls("https://a.example/x.json,ftp://b/x.json,not a url:s3cret,http://10.0.2.2:8080/y.json");
        assert_eq!(u.len(), 2);
        assert_eq!(u[1].as_str(), "http://10.0.2.2:8080/y.json");
        assert_eq!(bad.len(), 2);
        assert!(!bad.join(" ").contains("s3cret"), "{bad:?}");
    }

    #[test]
    fn redaction() {
        let u = Url::parse("https://user:p%40ss@h.example/x.json").unwrap();
        assert_eq!(redact(&u), "https://***@h.example/x.json");
    }

    #[test]
    fn archive_url_keeps_credentials_only_for_the_same_origin() {
        let d = |u: &str| Descriptor::new(u).unwrap();
        let base = Url::parse("https://stboot:s3cret@h.example:8443/os/pkg.json").unwrap();
        let same = archive_url(&d("pkg.zip"), &base).unwrap();
        assert_eq!(same.password(), Some("s3cret"));
        assert!(!redact(&same).contains("s3cret"));
        let other = archive_url(&d("https://mirror.example/pkg.zip"), &base).unwrap();
        assert_eq!(other.password(), None);
        let clear = archive_url(&d("http://h.example:8443/os/pkg.zip"), &base).unwrap();
        assert_eq!((clear.username(), clear.password()), ("", None));
    }

    #[test]
    fn the_archive_budget_leaves_room_for_extraction() {
        const MIB: u64 = 1 << 20;
        // 640 MiB guest: tmpfs of 320 MiB, ~560 MiB available; a 150 MB package must
        // be refused before its download, not fail on a full tmpfs after it
        let (bytes, why) = budget_from(Some(560 * MIB), Some(320 * MIB), Path::new("/tmp/stboot"));
        assert_eq!(bytes, 160 * MIB);
        assert!(bytes < 150_000_000 * 2);
        assert!(why.starts_with("at most 160 MiB: half of the less of 320 MiB free on the staging tmpfs /tmp/stboot and MemAvailable 560 MiB"), "{why}");
        assert_eq!(budget_from(Some(100 * MIB), Some(320 * MIB), Path::new("/x")).0, 50 * MIB);
        assert_eq!(budget_from(None, None, Path::new("/x")).0, 512 * MIB);
    }

    #[test]
    fn progress_line() {
        assert_eq!(progress(5 << 20, Some(10 << 20), Duration::from_secs(1)), "5.0 MiB / 10.0 MiB (50%) at 5.0 MiB/s");
    }
}
