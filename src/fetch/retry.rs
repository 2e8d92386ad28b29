//! How often, and for how long, one URL is tried again.
//!
//! | failure class | attempts per URL | |
//! |---|---|---|
//! | [`Retry::Never`] (4xx, untrusted TLS, too large, refused redirect, empty, not HTTP this client takes) | 1 | next URL at once |
//! | a body cut at the same byte twice, short of its Content-Length ([`FetchError::WrongLength`]) | 2 | a wrong length, not a cut connection |
//! | [`Retry::Stall`] (no response, stalled or trickling body) | [`RetryPolicy::stall_attempts`] | |
//! | [`Retry::Transient`] (refused connection, 5xx, reset) | [`RetryPolicy::attempts`] | |
//!
//! Retries wait 1, 2, 4, 8 s; no retry starts once the URL has cost
//! [`RetryPolicy::window`] or when the wait would pass the deadline. The descriptor
//! and the archive of one URL share the budget.

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
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { attempts: 5, stall_attempts: 2, window: Duration::from_secs(25), first_backoff: Duration::from_secs(1) }
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
}

impl UrlBudget {
    pub fn new(policy: RetryPolicy, deadline: Instant) -> Self {
        Self { policy, deadline, started: Instant::now(), attempts: 0, stalls: 0, truncated: None }
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
        let wait = self.policy.first_backoff * (1u32 << (self.attempts - 1).min(3));
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

    fn budget() -> UrlBudget {
        UrlBudget::new(RetryPolicy::default(), Instant::now() + Duration::from_secs(3600))
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
        let mut b = UrlBudget::new(RetryPolicy::default(), Instant::now() + Duration::from_millis(500));
        assert_eq!(b.after_failure(&FetchError::Connect("refused".into())), None);
    }
}
