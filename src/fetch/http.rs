//! One HTTP(S) GET, with typed errors that say whether trying again can help and what
//! the operator can do.
//!
//! * HTTPS trusts only the pinned TLS roots.
//! * Connecting (TCP and TLS handshake) and waiting for the response headers each
//!   end after the stall timeout; so does every read of the body that brings nothing
//!   (the blocking client's per-read timeout), and a body that brings fewer than
//!   [`MIN_RATE`] bytes/s over a stall window ([`crate::io::Stall`]).
//! * Redirects: at most [`MAX_REDIRECTS`]; https -> http is refused, so credentials
//!   and the package never travel in clear text after the operator asked for TLS.
//! * Credentials in the URL are sent as HTTP Basic auth and never printed.

use std::fmt;
use std::io::Write;
use std::time::Duration;

use reqwest::{StatusCode, Url};

use crate::io::{self as sio, LimitExceeded, Stalled};

/// A body must bring at least this many bytes per second, averaged over a stall
/// window, or the attempt ends as stalled.
pub const MIN_RATE: u64 = 4096;
/// Redirects followed per request.
pub const MAX_REDIRECTS: usize = 5;
/// Progress lines on the console at most this often (a 115200-baud line carries
/// about 11 KB/s; one short line every 2 s keeps the console readable).
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);

/// Whether trying the same URL again may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Will not heal: move on to the next URL at once.
    Never,
    /// May heal (server down, 5xx, connection reset): retry with backoff.
    Transient,
    /// The server stopped sending or is far too slow: retried, but fewer times.
    Stall,
}

/// Why a GET failed.
#[derive(Debug)]
pub enum FetchError {
    /// No connection (refused, unreachable, DNS).
    Connect(String),
    /// Connecting, the TLS handshake or the response headers took longer than this.
    NoResponse(Duration),
    /// The body stopped arriving or trickled.
    Stalled(String),
    /// The server's certificate or the TLS handshake was refused.
    Tls(String),
    /// The server answered with an error status.
    Status(StatusCode),
    /// The server answered 503 or 429 and asked to come back after `retry_after`
    /// (its `Retry-After` header).
    Busy { status: StatusCode, retry_after: Duration },
    /// A redirect that is not followed (https -> http, too many, a loop).
    Redirect(String),
    /// The object is larger than it may be. `declared` is the Content-Length, if any.
    TooLarge { limit: u64, declared: Option<u64> },
    /// The connection ended before Content-Length bytes arrived; `reset`: by a
    /// reset (or abort), not by the server closing it.
    Truncated { got: u64, expected: u64, cause: String, reset: bool },
    /// The body is empty.
    Empty,
    /// Reading the body failed otherwise (reset mid-body, protocol error).
    Body { got: u64, cause: String },
    /// Writing the staged copy failed; `full`: the staging tmpfs (or the package
    /// budget) has no room for it.
    Local { message: String, full: bool },
    /// The archive was refused while it unpacked: not a zip, damaged, or ambiguous
    /// (a zip whose entries the streaming reader and the central directory would
    /// read differently).
    Archive(String),
    /// The server's answer is not HTTP this client takes (a response header larger
    /// than it reads, a malformed status line): the same server answers the same.
    Protocol(String),
    /// The server ended the body at the same byte twice, short of the Content-Length
    /// it announced: its length is wrong, and a third attempt would end the same.
    WrongLength { announced: u64, got: u64 },
}

impl FetchError {
    /// The same error, naming the URL it happened at (a redirect target).
    fn at(self, url: &str) -> Self {
        let at = |m: String| format!("{m} (at the redirect target {url})");
        match self {
            FetchError::Connect(m) => FetchError::Connect(at(m)),
            FetchError::Tls(m) => FetchError::Tls(at(m)),
            FetchError::Stalled(m) => FetchError::Stalled(at(m)),
            FetchError::Body { got, cause } => FetchError::Body { got, cause: at(cause) },
            other => other,
        }
    }

    pub fn retry(&self) -> Retry {
        match self {
            FetchError::Connect(_)
            | FetchError::Truncated { .. }
            | FetchError::Body { .. }
            | FetchError::Busy { .. } => Retry::Transient,
            FetchError::Status(s) => {
                if s.is_server_error() || *s == StatusCode::REQUEST_TIMEOUT || *s == StatusCode::TOO_MANY_REQUESTS {
                    Retry::Transient
                } else {
                    Retry::Never
                }
            }
            FetchError::NoResponse(_) | FetchError::Stalled(_) => Retry::Stall,
            FetchError::Tls(_)
            | FetchError::Redirect(_)
            | FetchError::TooLarge { .. }
            | FetchError::Empty
            | FetchError::Local { .. }
            | FetchError::Archive(_)
            | FetchError::Protocol(_)
            | FetchError::WrongLength { .. } => Retry::Never,
        }
    }

    /// The kind, for the boot report.
    pub fn code(&self) -> &'static str {
        match self {
            FetchError::Connect(_) => "connect",
            FetchError::NoResponse(_) => "no_response",
            FetchError::Stalled(_) => "stalled",
            FetchError::Tls(_) => "tls",
            FetchError::Status(_) | FetchError::Busy { .. } => "status",
            FetchError::Redirect(_) => "redirect",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::Truncated { .. } => "truncated",
            FetchError::Empty => "empty",
            FetchError::Body { .. } => "body",
            FetchError::Local { full: true, .. } => "tmpfs_full",
            FetchError::Local { full: false, .. } => "local_write",
            FetchError::Archive(_) => "archive",
            FetchError::Protocol(_) => "protocol",
            FetchError::WrongLength { .. } => "wrong_length",
        }
    }

    /// What the operator can do about it.
    pub fn remedy(&self) -> &'static str {
        match self {
            FetchError::Connect(_) => "check that the server is up and reachable from this network (address, port, firewall, routes)",
            FetchError::NoResponse(_) | FetchError::Stalled(_) => "the server or the path to it is overloaded or broken; check it, or raise stboot.stall_timeout for very slow links",
            FetchError::Tls(_) => "the server's certificate must chain to a root in /etc/trust_policy/tls_roots.pem and name the host of the URL; check both and the server's date",
            FetchError::Status(s) if s.is_client_error() => "check the URL and the credentials in ospkg_pointer, and that the file exists on the server",
            FetchError::Status(_) => "the server failed; check its logs",
            FetchError::Busy { .. } => "the server is overloaded and asked stboot to come back later: stboot waits as asked when that fits the URL's retry budget (25 s), else it tries the next URL; add mirrors to ospkg_pointer, or a caching tier in front of the server",
            FetchError::Redirect(_) => "point ospkg_pointer (or os_pkg_url) at the final https URL",
            FetchError::TooLarge { .. } => "give the machine more memory, or make the package smaller",
            FetchError::Truncated { .. } | FetchError::Body { .. } => "the connection broke; check the server and the network",
            FetchError::Empty => "the server sent an empty file: upload the package again",
            FetchError::Local { full: true, .. } => "the package does not fit in the staging tmpfs (the console's package size line says how much does): give the machine more memory, or make the package smaller",
            FetchError::Local { full: false, .. } => "writing to the staging tmpfs failed: check the machine's memory and the kernel's messages",
            FetchError::Archive(_) => "the archive is damaged or not one stboot can unpack as it arrives: create it again with stmgr ospkg create, check it with stmgr ospkg verify (which says why it would be refused) and upload it again",
            FetchError::Protocol(_) => "the server (or a proxy or load balancer in front of it) sends answers that are not plain HTTP/1.1 with small headers; check its configuration",
            FetchError::WrongLength { .. } => "the server announces more bytes than its file has: publish the file again, or fix what sets the server's Content-Length (a file replaced while it is served, a proxy's cache)",
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Connect(m) => write!(f, "cannot connect: {m}"),
            FetchError::NoResponse(d) => {
                write!(f, "no response within {} s (connect, TLS handshake and headers)", d.as_secs())
            }
            FetchError::Stalled(m) => f.write_str(m),
            FetchError::Tls(m) => write!(f, "TLS: {m}"),
            FetchError::Status(s) => write!(f, "server answered {s}"),
            FetchError::Busy { status, retry_after } => {
                write!(f, "server answered {status} and asks to retry after {} s", retry_after.as_secs())
            }
            FetchError::Redirect(m) => write!(f, "redirect refused: {m}"),
            FetchError::TooLarge { limit, declared: Some(d) } => {
                write!(f, "the server announces {d} bytes, more than the limit of {limit} bytes")
            }
            FetchError::TooLarge { limit, declared: None } => {
                write!(f, "the body is larger than the limit of {limit} bytes")
            }
            FetchError::Truncated { got, expected, cause, .. } => {
                write!(f, "the connection ended after {got} of {expected} bytes ({cause})")
            }
            FetchError::Empty => f.write_str("the server sent an empty body"),
            FetchError::Body { got, cause } => write!(f, "reading the body failed after {got} bytes: {cause}"),
            FetchError::Local { message, .. } => f.write_str(message),
            FetchError::Archive(m) => write!(f, "the archive was refused while it unpacked: {m}"),
            FetchError::Protocol(m) => write!(f, "not an HTTP answer this client takes: {m}"),
            FetchError::WrongLength { announced, got } => {
                write!(f, "the server announces {announced} bytes but sends {got}, twice at the same byte")
            }
        }
    }
}

impl std::error::Error for FetchError {}

/// A `Retry-After` value (RFC 9110): seconds, or an HTTP date, which is taken
/// relative to the response's `Date` (the machine's clock may be anything before
/// the OS sets it), else to the machine's clock. `None` when it is neither.
pub fn retry_after(value: &str, date: Option<&str>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX).min(u64::from(u32::MAX))));
    }
    let parse = |s: &str| time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc2822).ok();
    let at = parse(value)?;
    let now = date.and_then(parse).unwrap_or_else(time::OffsetDateTime::now_utc);
    Some(Duration::try_from(at - now).unwrap_or(Duration::ZERO))
}

/// An HTTP client that trusts only the pinned roots. One request at a time (the
/// redirect target of a failed request is remembered for its error message).
pub struct Client {
    inner: reqwest::blocking::Client,
    stall: Duration,
    last_redirect: std::sync::Arc<std::sync::Mutex<Option<Url>>>,
}

impl Client {
    /// `tls_roots` (DER) are the only roots trusted for HTTPS; `stall` bounds
    /// connecting, waiting for headers and every silent read; `user_agent` goes with
    /// every request ([`super::user_agent`]).
    pub fn new(
        tls_roots: &[Vec<u8>],
        stall: Duration,
        user_agent: &str,
        proxies: &crate::config::host_config::Proxies,
    ) -> anyhow::Result<Self> {
        use anyhow::Context;
        let last_redirect = std::sync::Arc::new(std::sync::Mutex::new(None));
        let followed = last_redirect.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if let Ok(mut l) = followed.lock() {
                *l = Some(attempt.url().clone());
            }
            let from_https = attempt.previous().last().is_some_and(|u| u.scheme() == "https");
            if !matches!(attempt.url().scheme(), "http" | "https") {
                let to = super::redact(attempt.url());
                attempt.error(RedirectRefused(format!("to {to}: stboot follows redirects to http and https only")))
            } else if from_https && attempt.url().scheme() != "https" {
                let to = super::redact(attempt.url());
                attempt.error(RedirectRefused(format!("https -> {to} would leave TLS")))
            } else if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error(RedirectRefused(format!("more than {MAX_REDIRECTS} redirects")))
            } else if attempt.previous().contains(attempt.url()) {
                attempt.error(RedirectRefused("redirect loop".into()))
            } else {
                attempt.follow()
            }
        });
        let mut b = reqwest::blocking::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .https_only(false)
            .redirect(redirects)
            .connect_timeout(stall)
            // the blocking client applies this to the wait for the headers and to
            // every single read of the body: a per-read stall timeout
            .timeout(stall)
            .user_agent(user_agent)
            // only the host configuration's proxies, never the environment's
            .no_proxy();
        let no_proxy = proxies.no_proxy.as_deref().and_then(reqwest::NoProxy::from_string);
        let proxy = |url: &str, make: fn(&str) -> reqwest::Result<reqwest::Proxy>, key: &str| {
            make(url)
                .map(|p| p.no_proxy(no_proxy.clone()))
                .with_context(|| format!("{key} {}", crate::config::host_config::redact_userinfo(url)))
        };
        if let Some(u) = &proxies.http_proxy {
            b = b.proxy(proxy(u, |u| reqwest::Proxy::http(u), "http_proxy")?);
        }
        if let Some(u) = &proxies.https_proxy {
            b = b.proxy(proxy(u, |u| reqwest::Proxy::https(u), "https_proxy")?);
        }
        for (i, der) in tls_roots.iter().enumerate() {
            let c = reqwest::Certificate::from_der(der).with_context(|| format!("TLS root #{i}"))?;
            b = b.add_root_certificate(c);
        }
        let inner = b.build().context("building the HTTP client")?;
        Ok(Self { inner, stall, last_redirect })
    }

    /// GET `url`; credentials in it become Basic auth. Returns the response and the
    /// URL that answered (after redirects).
    pub fn get(&self, url: &Url) -> Result<(reqwest::blocking::Response, Url), FetchError> {
        self.get_with(url, None)
    }

    /// [`Self::get`], asking for the bytes from `from` on (`Range`) if they are still
    /// those of `validator` (`If-Range`); the answer may be 206 or the whole object.
    fn get_with(
        &self,
        url: &Url,
        range: Option<(u64, &str)>,
    ) -> Result<(reqwest::blocking::Response, Url), FetchError> {
        let user = percent_decode(url.username());
        let pass = url.password().map(percent_decode);
        let mut req = self.inner.get(url_without_credentials(url));
        if let Some((from, validator)) = range {
            req = req
                .header(reqwest::header::RANGE, format!("bytes={from}-"))
                .header(reqwest::header::IF_RANGE, validator);
        }
        if !user.is_empty() || pass.is_some() {
            req = req.basic_auth(user, pass);
        }
        if let Ok(mut l) = self.last_redirect.lock() {
            *l = None;
        }
        let resp = req.send().map_err(|e| {
            let err = classify(&e, self.stall);
            // a failure at a redirect target is that target's, not the URL's
            let target = self.last_redirect.lock().ok().and_then(|l| l.clone());
            match target {
                Some(at) if !matches!(err, FetchError::Redirect(_)) => err.at(&super::redact(&at)),
                _ => err,
            }
        })?;
        let status = resp.status();
        if status.is_redirection() {
            // a redirect the client did not follow (no usable Location)
            let to = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned());
            return Err(FetchError::Redirect(match to {
                Some(to) => match Url::parse(&to) {
                    Ok(u) => {
                        format!("{status} to {}: stboot follows redirects to http and https only", super::redact(&u))
                    }
                    Err(_) => format!("{status} to {to:?}, which is not a URL"),
                },
                None => format!("{status} without a Location"),
            }));
        }
        if !status.is_success() || (status == StatusCode::PARTIAL_CONTENT && range.is_none()) {
            let busy = status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS;
            let header = |name| resp.headers().get(name).and_then(|v| v.to_str().ok());
            return Err(match header(reqwest::header::RETRY_AFTER).filter(|_| busy) {
                Some(after) => match retry_after(after, header(reqwest::header::DATE)) {
                    Some(retry_after) => FetchError::Busy { status, retry_after },
                    None => FetchError::Status(status),
                },
                None => FetchError::Status(status),
            });
        }
        // the URL that answered, with the credentials back when it is still the
        // origin they were given for (reqwest sends them there on redirects too)
        let mut at = resp.url().clone();
        if at.origin() == url.origin() {
            let _ = at.set_username(url.username());
            let _ = at.set_password(url.password());
        }
        Ok((resp, at))
    }

    /// GET `url` and copy its body to `out` through the stall, limit and progress
    /// adapters. Returns the length of what was written.
    pub fn download(
        &self,
        url: &Url,
        limit: u64,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64, Option<u64>, Duration),
    ) -> Result<Downloaded, FetchError> {
        let (resp, at) = self.get(url)?;
        let total = resp.content_length();
        self.body(resp, at, 0, total, limit, out, progress, &mut 0)
    }

    /// [`Self::download`] that continues where the attempts before it stopped, with
    /// a range request, when the server named the object with a validator
    /// ([`Resume`]): a 206 that continues at that byte goes on into `out`; a whole
    /// object (the server takes no ranges, or the object changed and `If-Range`
    /// failed) restarts `out` from byte 0. Counts and the length check are over the
    /// whole object.
    pub fn download_resuming(
        &self,
        url: &Url,
        limit: u64,
        out: &mut dyn Restart,
        progress: &mut dyn FnMut(u64, Option<u64>, Duration),
        resume: &mut Resume,
    ) -> Result<Downloaded, FetchError> {
        let from = resume.from();
        let validator = resume.validator.clone().unwrap_or_default();
        let (resp, at) = self.get_with(url, (from > 0).then_some((from, validator.as_str())))?;
        let (start, total) = if resp.status() == StatusCode::PARTIAL_CONTENT {
            match content_range(resp.headers()) {
                Some((s, e, t)) if s == from && e + 1 == t && Some(t) == resume.total => (from, Some(t)),
                other => {
                    *resume = Resume::default();
                    let what = other
                        .map(|(s, e, t)| format!("bytes {s}-{e}/{t}"))
                        .unwrap_or_else(|| "no usable Content-Range".into());
                    return Err(FetchError::Body {
                        got: from,
                        cause: format!("asked for the bytes from {from} on, the server answered {what}; starting again from byte 0"),
                    });
                }
            }
        } else {
            if resume.at > 0 {
                if from > 0 {
                    tracing::info!(
                        "the server sent the whole object again (it changed, or takes no ranges): from byte 0"
                    );
                }
                out.restart().map_err(|e| FetchError::Local {
                    message: format!("starting the staged copy again: {e}"),
                    full: false,
                })?;
            }
            let total = resp.content_length();
            *resume = Resume { at: 0, total, validator: validator_of(resp.headers()), resumed: resume.resumed };
            (0, total)
        };
        if start > 0 {
            resume.resumed += 1;
            tracing::info!("resuming at byte {start} of {} (Range, If-Range {})", total.unwrap_or(0), validator);
        }
        self.body(resp, at, start, total, limit, out, progress, &mut resume.at)
    }

    /// Copies the body of `resp` (the object from byte `start` on, `total` bytes in
    /// all when known) to `out`; `at` follows how many bytes of the object are there.
    #[allow(clippy::too_many_arguments)]
    fn body(
        &self,
        resp: reqwest::blocking::Response,
        url: Url,
        start: u64,
        total: Option<u64>,
        limit: u64,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64, Option<u64>, Duration),
        at: &mut u64,
    ) -> Result<Downloaded, FetchError> {
        if let Some(len) = total.filter(|&l| l > limit) {
            return Err(FetchError::TooLarge { limit, declared: Some(len) });
        }
        let stalled = sio::Stall::new(resp, self.stall, MIN_RATE);
        let mut limited = sio::Limit::new(stalled, limit - start);
        let (copied, len) = {
            let mut reader = sio::Progress::new(&mut limited, PROGRESS_INTERVAL, |n, t| progress(start + n, total, t));
            let copied = sio::copy(&mut reader, out);
            (copied, start + reader.count())
        };
        *at = len;
        if let Err(e) = copied {
            return Err(match e {
                sio::CopyError::Write(e) => FetchError::Local {
                    message: format!("writing the staged copy: {e}"),
                    full: e.kind() == std::io::ErrorKind::StorageFull,
                },
                sio::CopyError::Read(e) => read_error(&e, len, total, limit, self.stall),
            });
        }
        if let Some(t) = total.filter(|&t| t != len) {
            return Err(FetchError::Truncated { got: len, expected: t, cause: "end of stream".into(), reset: false });
        }
        if len == 0 {
            return Err(FetchError::Empty);
        }
        Ok(Downloaded { len, url })
    }
}

/// A writer that can start over from byte 0 (the staging of an archive, when a
/// server sends the whole object again).
pub trait Restart: Write {
    fn restart(&mut self) -> std::io::Result<()>;
}

/// What the attempts at one object left, for resuming it: how many of its bytes
/// arrived, of how many, and the validator (a strong `ETag`, else `Last-Modified`)
/// the server named it with.
#[derive(Debug, Default, Clone)]
pub struct Resume {
    at: u64,
    total: Option<u64>,
    validator: Option<String>,
    /// How many attempts continued where one before stopped.
    pub resumed: u32,
}

impl Resume {
    /// Where the next attempt starts: the bytes that arrived, when the server gave
    /// the object's length and a validator `If-Range` can hold; else byte 0.
    pub fn from(&self) -> u64 {
        match (&self.validator, self.total) {
            (Some(_), Some(t)) if self.at < t => self.at,
            _ => 0,
        }
    }
}

/// The validator `If-Range` can hold: a strong ETag, else Last-Modified.
fn validator_of(h: &reqwest::header::HeaderMap) -> Option<String> {
    let get = |n| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    get(reqwest::header::ETAG).filter(|e| !e.starts_with("W/")).or_else(|| get(reqwest::header::LAST_MODIFIED))
}

/// `Content-Range: bytes START-END/TOTAL`.
fn content_range(h: &reqwest::header::HeaderMap) -> Option<(u64, u64, u64)> {
    let v = h.get(reqwest::header::CONTENT_RANGE)?.to_str().ok()?;
    let (range, total) = v.strip_prefix("bytes ")?.split_once('/')?;
    let (s, e) = range.split_once('-')?;
    let (s, e, t) = (s.trim().parse().ok()?, e.trim().parse().ok()?, total.trim().parse().ok()?);
    (s <= e && e < t).then_some((s, e, t))
}

/// What [`Client::download`] wrote. (The archive's digest is taken by the reader
/// that unpacks it, [`crate::ospkg::stream::Unzip`], not here: one hash per byte.)
#[derive(Debug, Clone)]
pub struct Downloaded {
    pub len: u64,
    /// The URL that answered, after redirects.
    pub url: Url,
}

fn url_without_credentials(url: &Url) -> Url {
    let mut clean = url.clone();
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    clean
}

#[derive(Debug)]
struct RedirectRefused(String);
impl fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for RedirectRefused {}

fn read_error(e: &std::io::Error, got: u64, total: Option<u64>, limit: u64, stall: Duration) -> FetchError {
    if sio::cause::<LimitExceeded>(e).is_some() {
        return FetchError::TooLarge { limit, declared: None };
    }
    if let Some(s) = sio::cause::<Stalled>(e) {
        return FetchError::Stalled(s.to_string());
    }
    let timed_out = sio::cause::<reqwest::Error>(e).is_some_and(|r| r.is_timeout());
    if timed_out {
        return FetchError::Stalled(format!("stalled: no bytes for {} s after {got} bytes", stall.as_secs()));
    }
    use std::io::ErrorKind as K;
    let kinds: Vec<K> = chain(e).filter_map(|c| c.downcast_ref::<std::io::Error>()).map(|io| io.kind()).collect();
    // rustls words an early close with a link to its manual: say it plainly
    let cause = if kinds.contains(&K::UnexpectedEof) {
        "the server closed the connection without a TLS close_notify".to_string()
    } else {
        innermost(e)
    };
    match total {
        Some(t) if got < t => {
            let reset = kinds.iter().any(|k| matches!(k, K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe));
            FetchError::Truncated { got, expected: t, cause, reset }
        }
        _ => FetchError::Body { got, cause },
    }
}

/// Sort a request error into its kind by the error types in its chain (never by
/// searching its text).
fn classify(e: &reqwest::Error, stall: Duration) -> FetchError {
    if let Some(r) = chain(e).find_map(redirect_refused) {
        return FetchError::Redirect(r.0.clone());
    }
    if e.is_redirect() {
        return FetchError::Redirect(innermost(e));
    }
    if let Some(t) = chain(e).find_map(rustls_error) {
        return FetchError::Tls(explain_tls(t));
    }
    if let Some(h) = chain(e).find_map(|c| c.downcast_ref::<hyper::Error>()).filter(|h| h.is_parse()) {
        // hyper's words ("message head is too large": over about 400 KiB of headers)
        return FetchError::Protocol(h.to_string());
    }
    if e.is_timeout() {
        return FetchError::NoResponse(stall);
    }
    if e.is_connect() {
        return FetchError::Connect(innermost(e));
    }
    FetchError::Body { got: 0, cause: innermost(e) }
}

/// The error and its sources, looking inside `io::Error`s (whose `source()` skips
/// the error they wrap).
fn chain<'a>(e: &'a (dyn std::error::Error + 'static)) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    let mut next = Some(e);
    std::iter::from_fn(move || {
        let cur = next?;
        next = match cur.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => cur.source(),
        };
        Some(cur)
    })
}

fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    e.downcast_ref::<rustls::Error>()
}

fn redirect_refused<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a RedirectRefused> {
    e.downcast_ref::<RedirectRefused>()
}

/// The last message of the chain: reqwest repeats the URL at every level above it.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    chain(e).last().map(|e| e.to_string()).unwrap_or_default()
}

/// A TLS failure in words an operator can act on.
pub fn explain_tls(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => {
            let why = match c {
                C::UnknownIssuer => "it is issued by a CA that is not pinned in tls_roots.pem".to_string(),
                C::Expired | C::ExpiredContext { .. } => format!("it has expired ({c})"),
                C::NotValidYet | C::NotValidYetContext { .. } => {
                    format!("it is not valid yet ({c}); is the machine's clock right?")
                }
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    format!("it does not name the host of the URL ({c})")
                }
                C::BadSignature => "its signature does not verify".to_string(),
                C::Revoked => "it is revoked".to_string(),
                other => other.to_string(),
            };
            format!("the server's certificate is not trusted: {why}")
        }
        other => format!("handshake failed: {other}"),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date_relative_to_the_response() {
        assert_eq!(retry_after("120", None), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 0 ", None), Some(Duration::ZERO));
        assert_eq!(retry_after("99999999999999999999999", None), Some(Duration::from_secs(u64::from(u32::MAX))));
        let date = Some("Sat, 05 Dec 2026 21:00:00 GMT");
        assert_eq!(retry_after("Sat, 05 Dec 2026 21:00:30 GMT", date), Some(Duration::from_secs(30)));
        // a date in the past: at once
        assert_eq!(retry_after("Sat, 05 Dec 2026 20:00:00 GMT", date), Some(Duration::ZERO));
        for bad in ["", "-1", "1.5", "soon", "Sat, 99 Dec 2026 21:00:30 GMT"] {
            assert_eq!(retry_after(bad, date), None, "{bad:?}");
        }
    }

    #[test]
    fn percent_decoding() {
        let u = Url::parse("https://user:p%40ss@h.example/x.json").unwrap();
        assert_eq!(percent_decode(u.password().unwrap()), "p@ss");
        assert_eq!(percent_decode("a%2"), "a%2");
    }

    #[test]
    fn retry_classes() {
        assert_eq!(FetchError::Status(StatusCode::NOT_FOUND).retry(), Retry::Never);
        assert_eq!(FetchError::Status(StatusCode::SERVICE_UNAVAILABLE).retry(), Retry::Transient);
        assert_eq!(FetchError::Status(StatusCode::TOO_MANY_REQUESTS).retry(), Retry::Transient);
        let busy = FetchError::Busy { status: StatusCode::SERVICE_UNAVAILABLE, retry_after: Duration::from_secs(2) };
        assert_eq!((busy.retry(), busy.code()), (Retry::Transient, "status"));
        assert_eq!(FetchError::TooLarge { limit: 1, declared: None }.retry(), Retry::Never);
        assert_eq!(FetchError::Empty.retry(), Retry::Never);
        assert_eq!(FetchError::Stalled(String::new()).retry(), Retry::Stall);
        assert_eq!(FetchError::NoResponse(Duration::from_secs(1)).retry(), Retry::Stall);
        assert_eq!(FetchError::Tls(String::new()).retry(), Retry::Never);
    }

    #[test]
    fn tls_reasons_name_the_cause() {
        let e = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert!(explain_tls(&e).contains("not pinned in tls_roots.pem"));
        let e = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        assert!(explain_tls(&e).contains("expired"));
        let e = rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        assert!(explain_tls(&e).contains("host of the URL"));
    }

    #[test]
    fn chain_looks_inside_io_errors() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::other(tls);
        assert!(chain(&io).find_map(rustls_error).is_some());
    }
}
