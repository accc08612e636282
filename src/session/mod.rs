//! The session endpoint (`POST /api/custom/session`): what the browser's `getClientSecret()`
//! calls.
//!
//! [`SessionService`] reads the authenticated [`Principal`](crate::auth::Principal) (put there by
//! [`AuthLayer`](crate::auth::AuthLayer)), the optional JSON body `{model?, metadata?}` (an empty
//! body, as the seed's front end sends, is fine), checks the model against the allow-list, asks a
//! [`SessionUpstream`] for a session, and answers
//!
//! ```json
//! {"client_secret": "ck1.…", "expires_at": "2026-11-26T02:05:21Z", "model": "gpt-4.1"}
//! ```
//!
//! The backend's session id is **sealed** into a client secret the kit signs
//! ([`SessionKeys`](crate::token::SessionKeys)), so the stream and WebSocket endpoints can verify
//! it without calling anyone. The secret expires at the earlier of the backend's `expires_at` and
//! the configured TTL.
//!
//! Upstreams: [`CustomBackend`] (the seed's `CUSTOM_BACKEND_URL` over HTTP),
//! [`SessionIssuer`](crate::backend::SessionIssuer) (embedded, no HTTP hop), or your own
//! [`SessionUpstream`].
//!
//! ```
//! use chatkit_tower::auth::{AuthLayer, StaticTokens};
//! use chatkit_tower::backend::SessionIssuer;
//! use chatkit_tower::session::SessionService;
//! use chatkit_tower::token::SessionKeys;
//! use http::Request;
//! use tower::{Layer, ServiceExt};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let keys = SessionKeys::random().unwrap();
//! let issuer = SessionIssuer::new(SessionKeys::random().unwrap());
//! let session = SessionService::builder(issuer).keys(keys.clone()).build().unwrap();
//! let endpoint = AuthLayer::new(StaticTokens::parse("test-token=demo-user").unwrap()).layer(session);
//!
//! let req = Request::post("/api/custom/session")
//!     .header("authorization", "Bearer test-token")
//!     .body(String::new())
//!     .unwrap();
//! let res = endpoint.oneshot(req).await.unwrap();
//! assert_eq!(res.status(), 200);
//! # });
//! ```

mod custom_backend;
mod exchange;
mod hosted;
mod service;
mod upstream;

pub(crate) use custom_backend::{bearer_header, join_url};
pub use custom_backend::{CustomBackend, CustomBackendBuilder};
pub(crate) use exchange::quote_upstream;
pub use hosted::{HostedSessions, HostedSessionsBuilder, DEFAULT_API_BASE};
pub(crate) use service::rfc3339;
pub use service::{SessionService, SessionServiceBuilder, DEFAULT_TTL};
pub use upstream::{BoxFuture, SessionRequest, SessionUpstream, UpstreamSession};
