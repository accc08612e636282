//! The backend side of the seed: a session issuer with real signed, expiring tokens, and the
//! demo [`Responder`] that the stream and WebSocket endpoints answer chat messages with.
//!
//! The seed's FastAPI and Express templates answer `POST /api/sessions` with a random UUID and a
//! hard-coded expiry. [`SessionIssuer`] answers with a session id that is a signed token
//! ([`SessionKeys`](crate::token::SessionKeys), key rotation included) carrying the user and a
//! real expiry, so whoever receives it later can verify it without a database.
//!
//! Use it two ways:
//! - as an HTTP service, [`IssuerService`], mounted at `POST /api/sessions` behind a backend key —
//!   a drop-in for the seed's templates;
//! - as a direct [`SessionUpstream`](crate::session::SessionUpstream) of the session endpoint,
//!   with no HTTP hop (what the example server does when no `CUSTOM_BACKEND_URL` is set).
//!
//! ```
//! use chatkit_tower::backend::{IssuerService, SessionIssuer};
//! use chatkit_tower::token::SessionKeys;
//! use http::Request;
//! use http_body_util::BodyExt;
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let issuer = SessionIssuer::new(SessionKeys::new(["backend-signing-key-of-at-least-32-bytes"]).unwrap());
//! let svc = IssuerService::new(issuer.clone(), "backend-key").unwrap();
//!
//! let req = Request::post("/api/sessions?user_id=user_1")
//!     .header("authorization", "Bearer backend-key")
//!     .body(String::new())
//!     .unwrap();
//! let res = svc.oneshot(req).await.unwrap();
//! assert_eq!(res.status(), 200);
//! let body: serde_json::Value =
//!     serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
//! let claims = issuer.verify(body["session_id"].as_str().unwrap()).unwrap();
//! assert_eq!(claims.user_id, "user_1");
//! # });
//! ```

mod issuer;
mod responder;
mod service;

pub use issuer::{IssuedSession, SessionIssuer};
pub use responder::{ChatFrame, DemoResponder, ReplyContext, Responder};
pub use service::IssuerService;
