//! Retry an HTTP service on failures that are safe and worth retrying, built on
//! [`tower::retry`].
//!
//! [`RetryLayer`] wraps any service of `http::Request<B>` whose body `B` is `Clone` — a buffered
//! body such as `Full<Bytes>`, which is what the kit's upstream calls send — so the request can
//! be replayed. A streaming body is not `Clone`, so such a service cannot be wrapped at all: a
//! stream is never retried. The decision is made when the answer's headers arrive, so nothing is
//! retried once a response has started.
//!
//! [`RetryPolicy`] retries:
//! - transport failures where the request never reached the upstream (connection refused, connect
//!   timeout) — never a failure after the request was sent, since creating a session is not
//!   idempotent;
//! - `429`, `502`, `503`, `504` (configurable) — never another 4xx;
//!
//! with capped exponential backoff and jitter, honouring `Retry-After` (seconds or an HTTP date)
//! up to a cap, and drawing on a retry budget.
//!
//! ## Why a budget and not only a maximum number of attempts?
//!
//! With "3 attempts" alone, a backend that is down receives three times the traffic exactly when
//! it can least take it. A [`RetryBudget`] lets retries add at most a fraction of the recent
//! request rate (20% by default, plus a small floor for quiet clients), so a dead backend sees
//! about 1.2× the traffic, not 3×, while an occasional failure is still retried.
//!
//! ```
//! use chatkit_tower::client::HttpClient;
//! use chatkit_tower::retry::{RetryLayer, RetryPolicy};
//! use chatkit_tower::session::CustomBackend;
//! use std::time::Duration;
//! use tower::Layer;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let policy = RetryPolicy::builder()
//!     .max_attempts(3)
//!     .backoff(Duration::from_millis(100), Duration::from_secs(1))
//!     .build()
//!     .unwrap();
//! let client = RetryLayer::new(policy).layer(HttpClient::new());
//! let backend = CustomBackend::builder("https://api.example.com", "backend-key")
//!     .build_with_client(client)
//!     .unwrap();
//!
//! // Bad settings are an error value, not a panic.
//! assert!(RetryPolicy::builder().backoff(Duration::from_secs(2), Duration::from_secs(1)).build().is_err());
//! # });
//! ```

mod layer;
mod policy;

pub use layer::{Retry, RetryLayer};
pub use policy::{RetryBudget, RetryPolicy, RetryPolicyBuilder};
