//! # chatkit-tower
//!
//! Host the endpoints a [ChatKit](https://platform.openai.com/docs/guides/chatkit) front end and
//! its custom backend need — session creation today; streaming and WebSocket chat next — as plain
//! [Tower](https://docs.rs/tower) layers and services that mount in axum, warp or bare hyper.
//!
//! | piece | kind | job |
//! |---|---|---|
//! | [`auth`] | layer | credential (`Authorization: Bearer`, `X-Auth-Token`, cookie) → [`Principal`] in request extensions, or `401` JSON |
//! | [`cors`] | layer preset | a validated CORS layer with ChatKit's headers: tower-http's `Cors` for preflights, precomputed headers for the rest |
//! | [`session`] | service | `POST /api/custom/session`: authenticated user → upstream session → `{client_secret, expires_at, model?}` |
//! | [`retry`] | layer | retry connect failures and 429/502/503/504 with backoff, `Retry-After` and a budget |
//! | [`fallback`] | layer | replay to a second service when the first fails (custom backend → OpenAI hosted sessions) |
//! | [`backend`] | service | the seed's `POST /api/sessions`: signed, expiring backend sessions |
//! | [`token`] | type | the sealed client secret (HMAC-SHA256, key rotation) |
//! | [`client`] | service | the upstream HTTP client (hyper-util + rustls, timeouts) |
//! | [`App`] | service | all of the above routed from a [`Config`]: the example server |
//!
//! Every service is a `tower::Service<http::Request<B>>` for any body `B`, answers
//! `http::Response<`[`Body`]`>`, never fails at the tower level (`Error = Infallible`: every
//! failure is already a JSON response `{"error", "code", "details"}`, see [`ErrorCode`]), is
//! always ready, and is cheap to clone.
//!
//! ## The session endpoint on bare hyper
//!
//! ```no_run
//! use chatkit_tower::auth::{AuthLayer, StaticTokens};
//! use chatkit_tower::backend::SessionIssuer;
//! use chatkit_tower::session::SessionService;
//! use chatkit_tower::token::SessionKeys;
//! use hyper_util::rt::{TokioExecutor, TokioIo};
//! use hyper_util::service::TowerToHyperService;
//! use tower::Layer;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = SessionKeys::from_list(&std::env::var("CHATKIT_SESSION_SECRET")?)?;
//! let session = SessionService::builder(SessionIssuer::new(keys.clone())).keys(keys).build()?;
//! let endpoint = AuthLayer::new(StaticTokens::parse("test-token=demo-user")?).layer(session);
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     let svc = TowerToHyperService::new(endpoint.clone());
//!     tokio::spawn(async move {
//!         let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
//!             .serve_connection_with_upgrades(TokioIo::new(tcp), svc)
//!             .await;
//!     });
//! }
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod app;
pub mod auth;
pub mod backend;
mod body;
pub mod chatkit;
pub mod client;
pub mod config;
pub mod cors;
mod error;
pub mod fallback;
mod future;
pub mod kit;
pub mod protocol;
pub mod retry;
pub mod session;
pub mod sse;
pub mod token;
pub mod ws;

pub use app::App;
pub use auth::Principal;
pub use body::{Body, BODY_READ_TIMEOUT};
pub use config::Config;
pub use error::{BoxError, ConfigError, Error, ErrorCode};
pub use future::ResponseFuture;
pub use kit::Kit;

/// A boxed, `Send` future, as the kit's object-safe traits return.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The README's code blocks, compiled and run as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
