//! How often, and for how long, one URL is tried again.
//!
//! | failure class | attempts per URL | |
//! |---|---|---|
//! | [`Retry::Never`] (4xx, untrusted TLS, too large, refused redirect, empty, not HTTP this client takes) | 1 | next URL at once |
//! | a body cut at the same byte twice, short of its Content-Length ([`FetchError::WrongLength`]) | 2 | a wrong length, not a cut connection |
//! | [`Retry::Stall`] (no response, stalled or trickling body) | [`RetryPolicy::stall_attempts`] | |
//! | [`Retry::Transient`] (refused connection, 5xx, 408, 429, reset) | [`RetryPolicy::attempts`] | |
//!
//! Retry `n` waits a random time up to 1, 2, 4, 8 s for n = 1, 2, 3, 4 and later
//! ("full jitter": machines that failed together do not come back together). A 503
//! or 429 with `Retry-After` waits what the server asks, plus that jitter. No retry
//! starts once the URL has cost [`RetryPolicy::window`], or when the wait would pass
//! the window or the deadline: a server that asks for longer than that is left for
//! the next URL at once. The descriptor and the archive of one URL share the budget.

use std::time::{Duration, Instant};

use super::http::{FetchError, Retry};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all for transient failures.
    pub attempts: u32,
    /// Attempts in all that may end by stalling.
    pub stall_attempts: u32,
    /// No retry starts after the URL has cost this long.
    pub window: Duration,
    pub first_backoff: Duration,
    /// Whether a wait is a random time up to the backoff (full jitter) or the
    /// backoff itself (for comparing the two in the boot-storm benchmark).
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            stall_attempts: 2,
            window: Duration::from_secs(25),
            first_backoff: Duration::from_secs(1),
            jitter: true,
        }
    }
}

/// A random part of `max`, uniform from 0 to `max`, from the 64 random bits `r`.
pub fn jitter(max: Duration, r: u64) -> Duration {
    max.mul_f64((r >> 11) as f64 / (1u64 << 53) as f64)
}

/// 64 random bits from the kernel (getrandom); should it fail, bits from the
/// clock, which still spread machines that failed at the same second.
pub fn os_random() -> u64 {
    use rand_core::RngCore;
    let mut b = [0u8; 8];
    match rand_core::OsRng.try_fill_bytes(&mut b) {
        Ok(()) => u64::from_le_bytes(b),
        Err(_) => {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            (t.as_nanos() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(std::process::id())
        }
    }
}

/// The retry state of one URL.
pub struct UrlBudget {
    policy: RetryPolicy,
    deadline: Instant,
    started: Instant,
    attempts: u32,
    stalls: u32,
    /// The last truncation: where the body ended, of how many bytes announced.
    truncated: Option<(u64, u64)>,
    random: fn() -> u64,
}

impl UrlBudget {
    pub fn new(policy: RetryPolicy, deadline: Instant) -> Self {
        Self::with_random(policy, deadline, os_random)
    }

    /// [`Self::new`] with the jitter's random bits from `random`.
    pub fn with_random(policy: RetryPolicy, deadline: Instant, random: fn() -> u64) -> Self {
        Self { policy, deadline, started: Instant::now(), attempts: 0, stalls: 0, truncated: None, random }
    }

    /// How long the URL has cost so far.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// A body that the server closes at the same byte twice, short of its
    /// Content-Length, is a wrong length, not a cut connection: it will not heal. (A
    /// reset stays transient: a middlebox may cut at the same place until it stops.)
    fn judge(&mut self, e: FetchError) -> FetchError {
        if let FetchError::Truncated { got, expected, reset: false, .. } = &e {
            let at = (*got, *expected);
            if self.truncated.replace(at) == Some(at) {
                return FetchError::WrongLength { announced: at.1, got: at.0 };
            }
        }
        e
    }

    /// Record a failure; the wait before the next attempt, or `None` to give up.
    pub fn after_failure(&mut self, e: &FetchError) -> Option<Duration> {
        self.attempts += 1;
        match e.retry() {
            Retry::Never => return None,
            Retry::Stall => {
                self.stalls += 1;
                if self.stalls >= self.policy.stall_attempts {
                    return None;
                }
            }
            Retry::Transient => {}
        }
        if self.attempts >= self.policy.attempts {
            return None;
        }
        let backoff = self.policy.first_backoff * (1u32 << (self.attempts - 1).min(3));
        let spread = if self.policy.jitter { jitter(backoff, (self.random)()) } else { backoff };
        let wait = match e {
            FetchError::Busy { retry_after, .. } => *retry_after + spread,
            _ => spread,
        };
        if self.started.elapsed() + wait > self.policy.window || Instant::now() + wait >= self.deadline {
            return None;
        }
        Some(wait)
    }

    /// Run `op` until it succeeds or the budget says stop; `on_retry(error, attempt,
    /// wait)` is told of every retry.
    pub fn run<T>(
        &mut self,
        mut op: impl FnMut() -> Result<T, FetchError>,
        mut on_retry: impl FnMut(&FetchError, u32, Duration),
    ) -> Result<T, FetchError> {
        loop {
            match op() {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let e = self.judge(e);
                    match self.after_failure(&e) {
                        Some(wait) => {
                            on_retry(&e, self.attempts, wait);
                            std::thread::sleep(wait);
                        }
                        None => return Err(e),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    /// Without jitter: the waits are the backoff itself.
    fn budget() -> UrlBudget {
        let plain = RetryPolicy { jitter: false, ..RetryPolicy::default() };
        UrlBudget::new(plain, Instant::now() + Duration::from_secs(3600))
    }

    #[test]
    fn permanent_failures_are_not_retried() {
        for e in [
            FetchError::Status(StatusCode::NOT_FOUND),
            FetchError::TooLarge { limit: 1, declared: Some(2) },
            FetchError::Tls("x".into()),
            FetchError::Empty,
        ] {
            assert_eq!(budget().after_failure(&e), None, "{e}");
        }
    }

    #[test]
    fn transient_failures_back_off_up_to_the_attempt_count() {
        let mut b = budget();
        let e = FetchError::Connect("refused".into());
        let waits: Vec<_> = std::iter::from_fn(|| b.after_failure(&e)).map(|d| d.as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8]);
        // with jitter, a random part of each: none at all, or all of it, as the bits say
        let far = Instant::now() + Duration::from_secs(3600);
        type Bits = fn() -> u64;
        let cases: [(Bits, [f64; 4]); 2] = [(|| 0, [0.0; 4]), (|| u64::MAX, [1.0, 2.0, 4.0, 8.0])];
        for (random, want) in cases {
            let mut b = UrlBudget::with_random(RetryPolicy::default(), far, random);
            let waits: Vec<_> = std::iter::from_fn(|| b.after_failure(&e)).map(|d| d.as_secs_f64()).collect();
            assert_eq!(waits.len(), 4);
            for (w, x) in waits.iter().zip(want) {
                assert!((w - x).abs() < 0.001, "{waits:?}");
            }
        }
    }

    #[test]
    fn jitter_spreads_waits_over_the_whole_backoff() {
        let max = Duration::from_secs(8);
        let mut r = 0x1234_5678_9abc_def0u64;
        let waits: Vec<f64> = (0..1000)
            .map(|_| {
                r ^= r << 13;
                r ^= r >> 7;
                r ^= r << 17;
                jitter(max, r).as_secs_f64()
            })
            .collect();
        assert!(waits.iter().all(|w| (0.0..=8.0).contains(w)));
        // every second of the eight holds some of them
        for s in 0..8 {
            let n = waits.iter().filter(|w| (s as f64..s as f64 + 1.0).contains(*w)).count();
            assert!((60..190).contains(&n), "{n} waits in second {s} of 1000 spread over 8");
        }
    }

    #[test]
    fn retry_after_is_waited_for_when_it_fits_the_budget() {
        let far = Instant::now() + Duration::from_secs(3600);
        let busy =
            |s| FetchError::Busy { status: StatusCode::SERVICE_UNAVAILABLE, retry_after: Duration::from_secs(s) };
        let mut b = UrlBudget::with_random(RetryPolicy::default(), far, || 0);
        assert_eq!(b.after_failure(&busy(3)), Some(Duration::from_secs(3)));
        // more than the URL's window: the next URL, at once
        let mut b = UrlBudget::with_random(RetryPolicy::default(), far, || 0);
        assert_eq!(b.after_failure(&busy(3600)), None);
        // past the deadline
        let soon = Instant::now() + Duration::from_secs(5);
        let mut b = UrlBudget::with_random(RetryPolicy::default(), soon, || 0);
        assert_eq!(b.after_failure(&busy(10)), None);
    }

    #[test]
    fn stalls_are_retried_once() {
        let mut b = budget();
        let e = FetchError::Stalled("x".into());
        assert_eq!(b.after_failure(&e), Some(Duration::from_secs(1)));
        assert_eq!(b.after_failure(&e), None);
    }

    #[test]
    fn no_retry_past_the_deadline() {
        let plain = RetryPolicy { jitter: false, ..RetryPolicy::default() };
        let mut b = UrlBudget::new(plain, Instant::now() + Duration::from_millis(500));
        assert_eq!(b.after_failure(&FetchError::Connect("refused".into())), None);
    }
}
