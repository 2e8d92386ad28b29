//! Fetching the OS package over the network: for one provisioning URL, the descriptor,
//! then the archive it points to, hashed and unpacked in one pass while it streams in
//! ([`crate::ospkg::stream`]): its entries land in private files on the staging tmpfs,
//! and neither the zip nor any entry sits in the heap. Nothing unpacked is used
//! before the signatures over the hash verify. An age-encrypted archive is kept as
//! ciphertext until it is complete, then decrypted through the same one-pass unzip.
//! HTTPS trusts only the pinned TLS roots.
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
use std::io::Write;
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
use crate::ospkg::package::{Origin, StreamedArchive, Unverified};
use crate::ospkg::stream::{self, Unzip};
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
    /// The machine's identity (the host configuration's `identity`), named in the
    /// user agent so that server logs show which machine fetched what.
    pub identity: Option<String>,
    /// The proxies of the host configuration (none: every URL directly; the
    /// environment's `*_proxy` variables are never read).
    pub proxies: crate::config::host_config::Proxies,
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
        let ua = user_agent(settings.identity.as_deref());
        let client = Client::new(tls_roots, settings.stall_timeout, &ua, &settings.proxies)?;
        Ok(Self { client, settings, stage_dir: stage_dir.to_path_buf(), identities: None })
    }

    /// The fetcher of one boot attempt: the trust policy's TLS roots and decryption
    /// identities, the host configuration's identity, the kernel command line's
    /// timeouts, and the package budget of the staging directory (said on the
    /// console).
    pub fn for_boot(
        trust: &crate::config::TrustConfig,
        host: &crate::config::HostConfig,
        opts: &crate::config::Options,
        stage_dir: &Path,
    ) -> Result<Self> {
        let budget = archive_budget(stage_dir);
        info!("package size: {}", budget.why);
        let settings = Settings {
            stall_timeout: opts.stall_timeout,
            retry: RetryPolicy::default(),
            deadline: Instant::now() + opts.deadline,
            max_archive: budget.bytes,
            max_archive_why: budget.why,
            identity: host.identity.clone(),
            proxies: host.proxies.clone(),
        };
        if settings.proxies.any() {
            info!("proxy: {}", settings.proxies.describe());
        }
        Ok(Self::new(&trust.tls_roots, settings, stage_dir)?.with_identities(trust.decryption_identities.clone()))
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
        let path = self.stage_dir.join(format!("ospkg-{index}.age"));
        let archive = self.archive(&archive_url, &path, &mut budget)?;
        let origin = Origin::Network { descriptor: redact(&descriptor_at), archive: redact(&archive_url) };
        Ok(Unverified::downloaded(origin, descriptor, descriptor_bytes, archive))
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

    /// Bounds for unpacking one archive: everything inflated may take what the
    /// archive may.
    fn unzip_limits(&self) -> stream::Limits {
        stream::Limits { total: self.settings.max_archive, ..stream::Limits::default() }
    }

    /// Download the archive, unpacking it on the way (or keeping an age file's
    /// ciphertext in `cipher_path`, then decrypting it through the unzip).
    fn archive(&self, url: &Url, cipher_path: &Path, budget: &mut UrlBudget) -> Result<StreamedArchive> {
        info!("Downloading {}", redact(url));
        // one staging across the attempts: an attempt cut short is continued by the
        // next with a range request where the server allows it (http::Resume)
        let mut sink = Sink::new(&self.stage_dir, cipher_path, self.unzip_limits());
        let mut resume = http::Resume::default();
        let dl = budget
            .run(
                || {
                    let dl = self.client.download_resuming(
                        url,
                        self.settings.max_archive,
                        &mut sink,
                        &mut |n, total, t| info!("{}", progress(n, total, t)),
                        &mut resume,
                    );
                    match dl {
                        Ok(dl) => Ok(dl),
                        // the archive refused while it unpacked: say why (not retried),
                        // as a package too large for its budget, a full tmpfs, or a
                        // broken archive
                        Err(FetchError::Local { full, .. }) if sink.refusal().is_some() => {
                            let message = sink.refusal().unwrap_or_default().to_string();
                            Err(if full || sink.over_total() {
                                FetchError::Local { message, full: true }
                            } else {
                                FetchError::Archive(message)
                            })
                        }
                        Err(e) => Err(e),
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
        if dl.url != *url {
            info!("archive redirected to {}", redact(&dl.url));
        }
        let what = format!("archive {}", redact(&dl.url));
        let ids = self.identities.as_deref();
        match sink.finish()? {
            Finished::Unpacked(unzip) => {
                let archive = unzip.finish().with_context(|| what.clone())?;
                info!("{what}: {} bytes, unpacked while downloading into {} bytes", dl.len, archive.entries().size());
                if ids.is_some() {
                    warn!("{what} is not encrypted, although decryption identities are configured");
                }
                Ok(archive)
            }
            Finished::Ciphertext(file) => {
                info!("{what}: {} bytes, age-encrypted", dl.len);
                // the ciphertext stays on the staging tmpfs until its plaintext is
                // unpacked beside it: both count toward the one budget
                let max = self.settings.max_archive;
                let limits = stream::Limits { total: max.saturating_sub(dl.len), ..self.unzip_limits() };
                let mut unzip = Unzip::new(&self.stage_dir, limits);
                let r = decrypt::archive(file, ids, &what, &mut unzip, max);
                // the ciphertext goes as soon as the plaintext is unpacked
                let _ = std::fs::remove_file(cipher_path);
                let len = match r {
                    Ok(v) => v,
                    Err(e) => match unzip.error() {
                        Some(why) if unzip.over_total() => {
                            return Err(anyhow::anyhow!(
                                "{what}: {why}: the {} bytes of ciphertext stay on the staging tmpfs until the plaintext is unpacked, so both must fit in {max} bytes ({})",
                                dl.len,
                                self.settings.max_archive_why
                            ))
                        }
                        Some(why) => return Err(anyhow::anyhow!("{what}: {why}")),
                        None => return Err(e),
                    },
                };
                let archive = unzip.finish().with_context(|| what.clone())?;
                info!("{what}: decrypted to {len} bytes, unpacked into {} bytes", archive.entries().size());
                Ok(archive)
            }
        }
    }
}

/// Where a downloading archive goes, decided by its first bytes: an age file is kept
/// as ciphertext (it can only be unpacked after decryption), anything else is
/// unpacked as it arrives.
struct Sink<'a> {
    dir: &'a Path,
    cipher_path: &'a Path,
    limits: stream::Limits,
    head: Vec<u8>,
    target: Option<Target>,
}

enum Target {
    Unzip(Box<Unzip>),
    Cipher(File),
}

enum Finished {
    Unpacked(Box<Unzip>),
    Ciphertext(File),
}

/// Bytes that tell an age file (binary or armored) from a zip.
const SNIFF: usize = 40;

impl<'a> Sink<'a> {
    fn new(dir: &'a Path, cipher_path: &'a Path, limits: stream::Limits) -> Self {
        Self { dir, cipher_path, limits, head: Vec::new(), target: None }
    }

    fn decide(&mut self) -> std::io::Result<()> {
        let target = if decrypt::is_age(&self.head) {
            Target::Cipher(crate::files::create_private(self.cipher_path)?)
        } else {
            Target::Unzip(Box::new(Unzip::new(self.dir, self.limits)))
        };
        let head = std::mem::take(&mut self.head);
        let target = self.target.insert(target);
        match target {
            Target::Unzip(u) => u.write_all(&head),
            Target::Cipher(f) => f.write_all(&head),
        }
    }

    /// Whether the unzip refused the archive because its entries outgrew the budget.
    fn over_total(&self) -> bool {
        matches!(&self.target, Some(Target::Unzip(u)) if u.over_total())
    }

    /// Why the unzip refused the archive, if it did.
    fn refusal(&self) -> Option<&str> {
        match &self.target {
            Some(Target::Unzip(u)) => u.error(),
            _ => None,
        }
    }

    fn finish(mut self) -> Result<Finished> {
        if self.target.is_none() {
            self.decide()?;
        }
        Ok(match self.target.take() {
            Some(Target::Unzip(u)) => Finished::Unpacked(u),
            Some(Target::Cipher(f)) => Finished::Ciphertext(f),
            None => unreachable!("decided above"),
        })
    }
}

impl http::Restart for Sink<'_> {
    /// Back to byte 0: what was unpacked (or the ciphertext) so far is removed.
    fn restart(&mut self) -> std::io::Result<()> {
        if let Some(Target::Cipher(_)) = self.target.take() {
            std::fs::remove_file(self.cipher_path)?;
        }
        self.head.clear();
        Ok(())
    }
}

impl std::io::Write for Sink<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.target.is_none() {
            self.head.extend_from_slice(data);
            if self.head.len() >= SNIFF {
                self.decide()?;
            }
            return Ok(data.len());
        }
        match self.target.as_mut().expect("decided") {
            Target::Unzip(u) => u.write(data),
            Target::Cipher(f) => f.write(data),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Sink<'_> {
    fn drop(&mut self) {
        if let Some(Target::Cipher(_)) = self.target {
            let _ = std::fs::remove_file(self.cipher_path);
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

/// The user agent: `stboot-rs/VERSION`, and ` (id=IDENTITY)` when the machine has
/// an identity of at most 64 characters of A-Z, a-z, 0-9, `-` and `_` (what `$ID` in
/// a URL may hold too; anything else is left out).
pub fn user_agent(identity: Option<&str>) -> String {
    let base = concat!("stboot-rs/", env!("CARGO_PKG_VERSION"));
    let ok = |id: &&str| {
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    match identity.filter(ok) {
        Some(id) => format!("{base} (id={id})"),
        None => base.to_string(),
    }
}

fn retry_line(what: &str, url: &Url, e: &FetchError, attempt: u32, wait: Duration) {
    warn!("{what} {}: {e} (attempt {attempt}, retrying in {:.1} s)", redact(url), wait.as_secs_f64());
}

fn failed(what: &str, url: &Url, e: FetchError) -> anyhow::Error {
    anyhow::Error::new(e).context(format!("{what} {}", redact(url)))
}

pub use crate::config::host_config::pointer_urls;

/// The URLs of `pointer` that stboot tries, in order; the others are named on the
/// console and skipped. None at all is a configuration error, found before the
/// network step (which would be for nothing).
pub fn usable_urls(pointer: &str) -> Result<Vec<Url>> {
    let (urls, bad) = pointer_urls(pointer);
    for b in bad {
        warn!("ospkg_pointer: {b}; skipped");
    }
    anyhow::ensure!(!urls.is_empty(), "ospkg_pointer has no usable http(s) URL");
    Ok(urls)
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
/// The archive is unpacked while it downloads and not kept, so its entries (at least
/// as large as the archive) are what the staging tmpfs must hold: at most its free
/// space. And `kexec_file_load` then reads kernel and initramfs into a buffer of its
/// own and copies that into the new kernel's segments, so the memory they need is
/// three times their size: at most a third of MemAvailable, less a reserve of
/// [`KEXEC_RESERVE`] for the kernel's allocations (measured with scripts/min-ram.sh:
/// docs/design.md). The same rule caps the kernel and initramfs extracted from an
/// archive file (the initramfs fetch method) when they are staged.
pub fn archive_budget(stage_dir: &Path) -> Budget {
    budget_from(mem_available(), tmpfs_free(stage_dir), stage_dir)
}

/// How many bytes a package may take, and why that many (for the error that
/// refuses a larger one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub bytes: u64,
    pub why: String,
}

/// What MemAvailable must keep beyond three copies of kernel and initramfs: a 150
/// MiB package failed `kexec_file_load` with ENOMEM with 35 MiB to spare and booted
/// with 67 MiB (QEMU, 544 and 576 MiB guests).
pub const KEXEC_RESERVE: u64 = 64 << 20;

fn budget_from(mem: Option<u64>, free: Option<u64>, stage_dir: &Path) -> Budget {
    const MIB: u64 = 1 << 20;
    let mem = mem.unwrap_or(1 << 30);
    let for_kexec = mem.saturating_sub(KEXEC_RESERVE) / 3;
    let bytes = match free {
        Some(f) => for_kexec.min(f),
        None => for_kexec,
    };
    let free = free.map(|f| format!("the {} MiB free on the staging tmpfs {}", f / MIB, stage_dir.display()));
    let why = format!(
        "at most {} MiB: the less of {} (the unpacked kernel and initramfs live there) and a third of MemAvailable {} MiB less {} MiB (kexec_file_load reads them into a buffer and copies that into the new kernel's memory)",
        bytes / MIB,
        free.unwrap_or_else(|| "(the staging tmpfs's size is unknown)".into()),
        mem / MIB,
        KEXEC_RESERVE / MIB,
    );
    Budget { bytes, why }
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
        // IPv6 literals in brackets, with credentials redacted as for IPv4
        let (u, bad) = pointer_urls(
            "https://[2001:db8::1]:8443/os.json,https://u:s3cret@[fe80::1%25eth0]/x.json,http://[::1/x.json",
        );
        assert_eq!(u.len(), 1, "{u:?} {bad:?}");
        assert_eq!(u[0].host_str(), Some("[2001:db8::1]"));
        assert_eq!(u[0].port(), Some(8443));
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(!bad.join(" ").contains("s3cret"), "{bad:?}");
        let (u, _) = pointer_urls("https://u:s3cret@[2001:db8::1]/x.json");
        assert_eq!(redact(&u[0]), "https://***@[2001:db8::1]/x.json");
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
    fn the_archive_budget_leaves_room_for_the_unpacked_files_and_kexec() {
        const MIB: u64 = 1 << 20;
        // the QEMU guests of scripts/min-ram.sh with a 158 MiB package: 576 MiB
        // (MemAvailable 541 MiB, tmpfs 278 MiB free) boots it, 544 MiB (509 MiB,
        // 262 MiB) fails in kexec_file_load, so it must be refused before the download
        let pkg = 165_490_530;
        let Budget { bytes, why } = budget_from(Some(541 * MIB), Some(278 * MIB), Path::new("/tmp/stboot"));
        assert!(bytes >= pkg, "{why}");
        assert!(
            why.starts_with("at most 159 MiB: the less of the 278 MiB free on the staging tmpfs /tmp/stboot"),
            "{why}"
        );
        assert!(why.contains("a third of MemAvailable 541 MiB less 64 MiB"), "{why}");
        assert!(budget_from(Some(509 * MIB), Some(262 * MIB), Path::new("/x")).bytes < pkg);
        // plenty of memory: the tmpfs decides
        assert_eq!(budget_from(Some(4000 * MIB), Some(320 * MIB), Path::new("/x")).bytes, 320 * MIB);
        assert_eq!(budget_from(Some(10 * MIB), Some(320 * MIB), Path::new("/x")).bytes, 0);
        assert_eq!(budget_from(None, None, Path::new("/x")).bytes, 320 * MIB);
    }

    #[test]
    fn progress_line() {
        assert_eq!(progress(5 << 20, Some(10 << 20), Duration::from_secs(1)), "5.0 MiB / 10.0 MiB (50%) at 5.0 MiB/s");
    }
}
