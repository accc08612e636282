//! Fall back to a second service when the first one fails.
//!
//! [`FallbackLayer`] calls the primary service; when it errors, or its answer is one the
//! [`FallbackPolicy`] rejects, the same request is replayed to the secondary (made ready first).
//! The request type must be `Clone` so it can be replayed: an `http::Request` with a buffered
//! body, or a [`SessionRequest`](crate::session::SessionRequest) — which is how the seed's
//! "Fallback Pattern" (custom backend first, OpenAI's hosted sessions second) runs on the server:
//!
//! ```
//! use chatkit_tower::fallback::{Answered, FallbackLayer};
//! use chatkit_tower::session::{CustomBackend, HostedSessions, SessionService};
//! use chatkit_tower::token::SessionKeys;
//! use tower::Layer;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let custom = CustomBackend::builder("https://backend.example.com", "backend-key").build().unwrap();
//! let hosted = HostedSessions::builder("sk-…", "wf_123").build().unwrap();
//! let upstream = FallbackLayer::new(hosted).layer(custom);
//! let session = SessionService::builder(upstream)
//!     .keys(SessionKeys::random().unwrap())
//!     .build()
//!     .unwrap();
//! # });
//! ```
//!
//! The default policy ([`DefaultPolicy`]) falls back on a transport error, a timeout, or a 5xx —
//! not on a 4xx, where the secondary would be asked the same bad question (add statuses with
//! [`DefaultPolicy::also_on`], or pass any closure). Which side answered is recorded as an
//! [`Answered`] extension on the response (for `http::Response` and
//! [`UpstreamSession`](crate::session::UpstreamSession)) and in tracing; it is never sent to the
//! browser.

mod layer;
mod policy;
mod service;

pub use layer::FallbackLayer;
pub use policy::{DefaultPolicy, FallbackPolicy};
pub use service::{Answered, Fallback, RecordAnswered};
