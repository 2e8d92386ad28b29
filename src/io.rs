//! `Read` adapters that a download is stacked from: each does one job and reports its
//! verdict as a typed `io::Error` payload the caller can act on (see [`cause`]).
//!
//! ```text
//! response -> Stall (no bytes / too few bytes per window) -> Limit (size cap)
//!          -> Hash (SHA-256 of what passed) -> Progress (console line every 2 s)
//! ```

use std::fmt;
use std::io::{self, Read};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The payload of an error a [`Limit`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitExceeded {
    pub limit: u64,
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "more than the limit of {} bytes", self.limit)
    }
}
impl std::error::Error for LimitExceeded {}

/// The payload of an error a [`Stall`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stalled {
    /// Bytes that arrived during the window.
    pub got: u64,
    pub window: Duration,
    /// The rate the window had to reach, bytes per second.
    pub min_rate: u64,
}

impl fmt::Display for Stalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stalled: {} bytes in the last {} s, less than the minimum of {} bytes/s",
            self.got,
            self.window.as_secs(),
            self.min_rate
        )
    }
}
impl std::error::Error for Stalled {}

/// The typed payload of an adapter's error, if `e` is one.
pub fn cause<T: std::error::Error + 'static>(e: &io::Error) -> Option<&T> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<T>())
}

/// Fails with [`LimitExceeded`] as soon as more than `limit` bytes have been read
/// (it reads one byte past the limit to tell "exactly the limit" from "more").
pub struct Limit<R> {
    inner: R,
    limit: u64,
    seen: u64,
}

impl<R: Read> Limit<R> {
    pub fn new(inner: R, limit: u64) -> Self {
        Self { inner, limit, seen: 0 }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.seen
    }
}

impl<R: Read> Read for Limit<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = (self.limit - self.seen.min(self.limit)).saturating_add(1);
        let max = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.seen += n as u64;
        if self.seen > self.limit {
            return Err(io::Error::other(LimitExceeded { limit: self.limit }));
        }
        Ok(n)
    }
}

/// Fails with [`Stalled`] when fewer than `min_rate * window` bytes arrived during a
/// window of `window`. The inner reader must not block for longer than `window`
/// (the HTTP client's per-read timeout), so a stall is detected within two windows.
pub struct Stall<R> {
    inner: R,
    window: Duration,
    min_rate: u64,
    window_start: Instant,
    in_window: u64,
}

impl<R: Read> Stall<R> {
    pub fn new(inner: R, window: Duration, min_rate: u64) -> Self {
        Self { inner, window, min_rate, window_start: Instant::now(), in_window: 0 }
    }
}

impl<R: Read> Read for Stall<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.in_window += n as u64;
        let elapsed = self.window_start.elapsed();
        if n > 0 && elapsed >= self.window {
            let needed = self.min_rate.saturating_mul(self.window.as_secs().max(1));
            if self.in_window < needed {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    Stalled { got: self.in_window, window: self.window, min_rate: self.min_rate },
                ));
            }
            self.window_start = Instant::now();
            self.in_window = 0;
        }
        Ok(n)
    }
}

/// CRC-32 (IEEE, as zip uses) of every byte read through it.
pub struct Crc32<R> {
    inner: R,
    hasher: crc32fast::Hasher,
    len: u64,
}

impl<R: Read> Crc32<R> {
    pub fn new(inner: R) -> Self {
        Self { inner, hasher: crc32fast::Hasher::new(), len: 0 }
    }
    /// The CRC-32 and the number of bytes of everything read so far.
    pub fn value(&self) -> (u32, u64) {
        (self.hasher.clone().finalize(), self.len)
    }
}

impl<R: Read> Read for Crc32<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

/// Which side of a [`copy`] failed.
#[derive(Debug)]
pub enum CopyError {
    /// Reading (the network, a zip entry).
    Read(io::Error),
    /// Writing (the staging tmpfs).
    Write(io::Error),
}

/// `std::io::copy` that tells read errors from write errors.
pub fn copy(r: &mut dyn Read, w: &mut dyn io::Write) -> Result<(), CopyError> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return w.flush().map_err(CopyError::Write),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        w.write_all(&buf[..n]).map_err(CopyError::Write)?;
    }
}

/// SHA-256 of every byte read through it.
pub struct Hash<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
}

impl<R: Read> Hash<R> {
    pub fn new(inner: R) -> Self {
        Self { inner, hasher: Sha256::new(), len: 0 }
    }
    /// Bytes read so far.
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The digest and the number of bytes of everything read so far.
    pub fn finish(self) -> (crate::digest::Sha256Digest, u64) {
        (crate::digest::Sha256Digest::from_bytes(self.hasher.finalize().into()), self.len)
    }
}

impl<R: Read> Read for Hash<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

/// Calls `report(bytes so far, time since start)` at most once per `interval`, and
/// only when bytes arrived since the last report (a stall prints nothing: the
/// [`Stall`] adapter speaks for it).
pub struct Progress<R, F> {
    inner: R,
    report: F,
    interval: Duration,
    start: Instant,
    last: Instant,
    n: u64,
    reported: u64,
}

impl<R: Read, F: FnMut(u64, Duration)> Progress<R, F> {
    pub fn new(inner: R, interval: Duration, report: F) -> Self {
        let now = Instant::now();
        Self { inner, report, interval, start: now, last: now, n: 0, reported: 0 }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.n
    }
}

impl<R: Read, F: FnMut(u64, Duration)> Read for Progress<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        if self.n > self.reported && self.last.elapsed() >= self.interval {
            self.last = Instant::now();
            self.reported = self.n;
            (self.report)(self.n, self.start.elapsed());
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields `chunks` one read at a time, sleeping `pause` before each.
    struct Slow {
        chunks: Vec<Vec<u8>>,
        pause: Duration,
    }
    impl Read for Slow {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            std::thread::sleep(self.pause);
            if self.chunks.is_empty() {
                return Ok(0);
            }
            let n = self.chunks[0].len().min(buf.len());
            buf[..n].copy_from_slice(&self.chunks[0][..n]);
            self.chunks[0].drain(..n);
            if self.chunks[0].is_empty() {
                self.chunks.remove(0);
            }
            Ok(n)
        }
    }

    #[test]
    fn limit_allows_exactly_the_limit_and_refuses_one_more() {
        let mut out = Vec::new();
        assert_eq!(Limit::new(&[7u8; 100][..], 100).read_to_end(&mut out).unwrap(), 100);
        let e = Limit::new(&[7u8; 101][..], 100).read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(cause::<LimitExceeded>(&e), Some(&LimitExceeded { limit: 100 }));
    }

    #[test]
    fn stall_trips_on_a_trickle_and_not_on_a_steady_stream() {
        let trickle = Slow { chunks: vec![vec![1]; 10], pause: Duration::from_millis(40) };
        let e = Stall::new(trickle, Duration::from_millis(100), 100).read_to_end(&mut Vec::new()).unwrap_err();
        let s = cause::<Stalled>(&e).expect("a Stalled payload");
        assert!(s.got <= 3, "{s:?}");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);

        // read with an 8 KiB buffer, so that each read takes a whole 1000-byte chunk
        // (read_to_end starts with 32-byte probes, which a loaded machine can make
        // look like a trickle): however slowly the reads come, each window has 1000
        let steady = Slow { chunks: vec![vec![1; 1000]; 10], pause: Duration::from_millis(40) };
        let mut out = Vec::new();
        std::io::copy(&mut Stall::new(steady, Duration::from_millis(100), 100), &mut out).unwrap();
        assert_eq!(out.len(), 10_000);
    }

    #[test]
    fn hash_matches_sha256_of_the_bytes() {
        let data = b"the archive bytes".repeat(1000);
        let mut h = Hash::new(&data[..]);
        std::io::copy(&mut h, &mut std::io::sink()).unwrap();
        let (d, n) = h.finish();
        assert_eq!(n, data.len() as u64);
        assert_eq!(d, crate::digest::Sha256Digest::of(&data));
    }

    #[test]
    fn progress_reports_only_when_bytes_arrived() {
        let mut calls = Vec::new();
        let src = Slow { chunks: vec![vec![0; 10]], pause: Duration::from_millis(30) };
        let mut p = Progress::new(src, Duration::from_millis(20), |n, _| calls.push(n));
        let mut buf = [0u8; 64];
        assert_eq!(p.read(&mut buf).unwrap(), 10);
        assert_eq!(p.read(&mut buf).unwrap(), 0, "end of stream, after the interval");
        assert_eq!(calls, vec![10], "one report for the bytes, none for the empty read");
    }
}
