use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, Request, Response, StatusCode};
use tower::retry::backoff::{Backoff, ExponentialBackoff, ExponentialBackoffMaker, MakeBackoff};
use tower::retry::budget::{Budget, TpsBudget};
use tower::retry::Policy;
use tower::util::rng::HasherRng;

use crate::error::{ConfigError, Error};

/// A retry budget: retries may add at most `retry_percent` of the requests seen over `ttl`, plus
/// `min_per_sec` retries per second for quiet clients.
///
/// ```
/// use chatkit_tower::retry::RetryBudget;
/// use std::time::Duration;
/// let budget = RetryBudget { ttl: Duration::from_secs(10), min_per_sec: 10, retry_percent: 0.2 };
/// assert_eq!(budget, RetryBudget::default());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudget {
    /// How long a deposit counts (1 to 60 seconds).
    pub ttl: Duration,
    /// Retries always allowed per second, whatever the traffic.
    pub min_per_sec: u32,
    /// Retries allowed per request seen (0.2 = one retry per five requests; 0 to 1000).
    pub retry_percent: f32,
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(10),
            min_per_sec: 10,
            retry_percent: 0.2,
        }
    }
}

/// When and how long to wait before sending a request again; see the [module docs](super).
///
/// Cheap to clone: the settings and the budget are shared, the per-request state (attempts,
/// backoff) is not — `tower::retry` clones the policy for every request.
#[derive(Clone)]
pub struct RetryPolicy {
    shared: Arc<Shared>,
    attempts: u32,
    backoff: ExponentialBackoff<HasherRng>,
}

struct Shared {
    max_attempts: u32,
    statuses: Vec<StatusCode>,
    max_retry_after: Duration,
    budget: Option<TpsBudget>,
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_attempts", &self.shared.max_attempts)
            .field("statuses", &self.shared.statuses)
            .field("max_retry_after", &self.shared.max_retry_after)
            .field("budget", &self.shared.budget.is_some())
            .field("attempts", &self.attempts)
            .finish()
    }
}

impl RetryPolicy {
    /// Settings, starting from the interactive defaults: 3 attempts, backoff 100 ms doubling up
    /// to 1 s with 50% jitter, `Retry-After` honoured up to 5 s, the default budget.
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            max_attempts: 3,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            jitter: 0.5,
            statuses: DEFAULT_STATUSES.to_vec(),
            max_retry_after: Duration::from_secs(5),
            budget: Some(RetryBudget::default()),
        }
    }

    /// The defaults of [`builder`](Self::builder): suited to a person waiting for a chat to open.
    pub fn interactive() -> Self {
        Self::from_valid(Self::builder())
    }

    /// The seed's "Retry Logic": 3 attempts, waiting 1 s then 2 s (`1 s × 2^n`, no jitter),
    /// `Retry-After` honoured up to 10 s, with the default budget.
    pub fn seed() -> Self {
        Self::from_valid(
            Self::builder()
                .backoff(Duration::from_secs(1), Duration::from_secs(4))
                .jitter(0.0)
                .max_retry_after(Duration::from_secs(10)),
        )
    }

    /// Presets are built from constants that pass validation; should that ever change, the
    /// fallback is a policy that does not retry rather than a panic.
    fn from_valid(builder: RetryPolicyBuilder) -> Self {
        builder.build().unwrap_or_else(|_| Self::never())
    }

    /// A policy that never retries.
    pub fn never() -> Self {
        Self {
            shared: Arc::new(Shared {
                max_attempts: 1,
                statuses: Vec::new(),
                max_retry_after: Duration::ZERO,
                budget: None,
            }),
            attempts: 0,
            backoff: plain_backoff(),
        }
    }

    /// Whether `result` is worth another attempt, and the server's requested delay if it said.
    fn classify<B, E>(result: &Result<Response<B>, E>, statuses: &[StatusCode]) -> Verdict
    where
        E: std::error::Error + 'static,
    {
        match result {
            Ok(res) if statuses.contains(&res.status()) => {
                Verdict::Retry(retry_after(res.headers()))
            }
            Ok(_) => Verdict::Done,
            Err(err) if never_reached_upstream(err) => Verdict::Retry(None),
            Err(_) => Verdict::Done,
        }
    }
}

fn plain_backoff() -> ExponentialBackoff<HasherRng> {
    let maker = ExponentialBackoffMaker::new(
        Duration::from_millis(100),
        Duration::from_secs(1),
        0.0,
        HasherRng::default(),
    );
    match maker {
        Ok(mut maker) => maker.make_backoff(),
        Err(_) => ExponentialBackoffMaker::default().make_backoff(),
    }
}

enum Verdict {
    Done,
    Retry(Option<RetryAfter>),
}

enum RetryAfter {
    After(Duration),
    Unparsable,
}

const DEFAULT_STATUSES: [StatusCode; 4] = [
    StatusCode::TOO_MANY_REQUESTS,
    StatusCode::BAD_GATEWAY,
    StatusCode::SERVICE_UNAVAILABLE,
    StatusCode::GATEWAY_TIMEOUT,
];

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<RetryAfter> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .to_owned();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(RetryAfter::After(Duration::from_secs(secs)));
    }
    match httpdate::parse_http_date(&value) {
        Ok(at) => Some(RetryAfter::After(
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
        )),
        Err(_) => Some(RetryAfter::Unparsable),
    }
}

/// A transport failure where the request never left: the kit's own connect failures, or
/// hyper-util's connect errors, anywhere in the error's chain.
fn never_reached_upstream(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(kit) = e.downcast_ref::<Error>() {
            return kit.is_connect();
        }
        if let Some(client) = e.downcast_ref::<hyper_util::client::legacy::Error>() {
            return client.is_connect();
        }
        next = e.source();
    }
    false
}

impl<B, ResB, E> Policy<Request<B>, Response<ResB>, E> for RetryPolicy
where
    B: Clone,
    E: std::error::Error + 'static,
{
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _req: &mut Request<B>,
        result: &mut Result<Response<ResB>, E>,
    ) -> Option<Self::Future> {
        // Borrowed, not cloned: this runs for every answer, and the count of a shared `Arc` is
        // a cache line the worker threads would pass back and forth.
        let shared = &*self.shared;
        if self.attempts == 0 {
            if let Some(budget) = &shared.budget {
                budget.deposit();
            }
        }
        let hint = match Self::classify(result, &shared.statuses) {
            Verdict::Done => return None,
            Verdict::Retry(hint) => hint,
        };
        self.attempts += 1;
        if self.attempts >= shared.max_attempts {
            tracing::debug!(attempts = self.attempts, "giving up: no attempts left");
            return None;
        }
        let sleep = match hint {
            Some(RetryAfter::After(wait)) if wait > shared.max_retry_after => {
                // Waiting less than the upstream asked would only earn another refusal: pass
                // its answer (and its Retry-After) on instead.
                tracing::debug!(?wait, "giving up: Retry-After is longer than the cap");
                return None;
            }
            Some(RetryAfter::After(wait)) => tokio::time::sleep(wait),
            Some(RetryAfter::Unparsable) | None => self.backoff.next_backoff(),
        };
        if let Some(budget) = &shared.budget {
            if !budget.withdraw() {
                tracing::warn!("retry budget exhausted: not retrying");
                return None;
            }
        }
        let delay = sleep
            .deadline()
            .saturating_duration_since(tokio::time::Instant::now());
        tracing::debug!(
            attempt = self.attempts + 1,
            ?delay,
            "retrying upstream request"
        );
        Some(sleep)
    }

    fn clone_request(&mut self, req: &Request<B>) -> Option<Request<B>> {
        Some(req.clone())
    }
}

/// Settings for a [`RetryPolicy`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RetryPolicyBuilder {
    max_attempts: u32,
    min_backoff: Duration,
    max_backoff: Duration,
    jitter: f64,
    statuses: Vec<StatusCode>,
    max_retry_after: Duration,
    budget: Option<RetryBudget>,
}

impl RetryPolicyBuilder {
    /// Attempts in all, the first included (1 to 10). Default 3.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Wait `min` before the first retry, doubling each time up to `max`.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min;
        self.max_backoff = max;
        self
    }

    /// Add up to this fraction of the wait at random (0.0 to 1.0), so clients that failed
    /// together do not retry together. Default 0.5.
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// The statuses worth retrying. Default 429, 502, 503, 504; other 4xx are refused here.
    pub fn retry_on<I: IntoIterator<Item = StatusCode>>(mut self, statuses: I) -> Self {
        self.statuses = statuses.into_iter().collect();
        self
    }

    /// The longest `Retry-After` honoured; a longer one ends the retries. Default 5 s.
    pub fn max_retry_after(mut self, cap: Duration) -> Self {
        self.max_retry_after = cap;
        self
    }

    /// The retry budget. Default [`RetryBudget::default`].
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// No budget: only the attempt limit bounds retries.
    pub fn no_budget(mut self) -> Self {
        self.budget = None;
        self
    }

    /// Check the settings and build the policy.
    pub fn build(self) -> Result<RetryPolicy, ConfigError> {
        if !(1..=10).contains(&self.max_attempts) {
            return Err(ConfigError::new(
                "retry: max_attempts must be between 1 and 10",
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(ConfigError::new(
                "retry: jitter must be between 0.0 and 1.0",
            ));
        }
        if self.max_backoff > Duration::from_secs(60) {
            return Err(ConfigError::new("retry: the longest backoff is 60 s"));
        }
        if let Some(bad) = self.statuses.iter().find(|s| {
            s.is_client_error()
                && **s != StatusCode::TOO_MANY_REQUESTS
                && **s != StatusCode::REQUEST_TIMEOUT
        }) {
            return Err(ConfigError::new(format!(
                "retry: {bad} will fail again the same way; only 408, 429 and 5xx are retried"
            )));
        }
        let maker = ExponentialBackoffMaker::new(
            self.min_backoff,
            self.max_backoff,
            self.jitter,
            HasherRng::default(),
        )
        .map_err(|e| ConfigError::new(format!("retry: {e}")))?;
        let budget = match self.budget {
            None => None,
            Some(b) => {
                if b.ttl < Duration::from_secs(1) || b.ttl > Duration::from_secs(60) {
                    return Err(ConfigError::new(
                        "retry budget: ttl must be 1 to 60 seconds",
                    ));
                }
                if !(0.0..=1000.0).contains(&b.retry_percent) {
                    return Err(ConfigError::new(
                        "retry budget: retry_percent must be between 0 and 1000",
                    ));
                }
                if b.min_per_sec >= i32::MAX as u32 {
                    return Err(ConfigError::new("retry budget: min_per_sec is too large"));
                }
                Some(TpsBudget::new(b.ttl, b.min_per_sec, b.retry_percent))
            }
        };
        let mut maker = maker;
        Ok(RetryPolicy {
            shared: Arc::new(Shared {
                max_attempts: self.max_attempts,
                statuses: self.statuses,
                max_retry_after: self.max_retry_after,
                budget,
            }),
            attempts: 0,
            backoff: maker.make_backoff(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_errors_not_panics() {
        let b = RetryPolicy::builder;
        assert!(b().max_attempts(0).build().is_err());
        assert!(b().max_attempts(11).build().is_err());
        assert!(b().jitter(1.5).build().is_err());
        assert!(b().jitter(f64::NAN).build().is_err());
        assert!(b()
            .backoff(Duration::from_secs(2), Duration::from_secs(1))
            .build()
            .is_err());
        assert!(b().backoff(Duration::ZERO, Duration::ZERO).build().is_err());
        assert!(b().retry_on([StatusCode::BAD_REQUEST]).build().is_err());
        let ttl0 = RetryBudget {
            ttl: Duration::ZERO,
            ..RetryBudget::default()
        };
        assert!(b().budget(ttl0).build().is_err());
        let nan = RetryBudget {
            retry_percent: f32::NAN,
            ..RetryBudget::default()
        };
        assert!(b().budget(nan).build().is_err());
        assert!(b().build().is_ok());
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert!(
            matches!(retry_after(&h), Some(RetryAfter::After(d)) if d == Duration::from_secs(3))
        );
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        h.insert("retry-after", later.parse().unwrap());
        assert!(
            matches!(retry_after(&h), Some(RetryAfter::After(d)) if d > Duration::from_secs(25))
        );
        h.insert("retry-after", "soon".parse().unwrap());
        assert!(matches!(retry_after(&h), Some(RetryAfter::Unparsable)));
    }
}
