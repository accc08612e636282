//! Server-Sent Events: the stream endpoint (`POST /api/custom/stream`), and an encoder for
//! events generated in Rust.
//!
//! [`StreamService`] is what the browser's stream reader calls (the seed's `streamResponse`,
//! with `Authorization: Bearer <client_secret>`). It verifies the sealed client secret
//! ([`SessionKeys`](crate::token::SessionKeys)) before anything else — a missing, forged or
//! expired one is `401` with no upstream call — then streams from one source:
//!
//! - [`StreamBackend`]: the custom backend's `POST /api/stream`, proxied. The backend's bytes
//!   reach the client unchanged and as soon as they arrive; chunks that are already waiting are
//!   written together, so a burst of events costs one write, not one per event (the default
//!   [`StreamClient`] drives each upstream connection from the response body, which is what
//!   makes arrived chunks visible together; see its docs). A refusal
//!   before the stream began is the kit's JSON error (`UPSTREAM_ERROR`, …); a failure after
//!   it began, or a backend quiet for the [idle timeout](StreamServiceBuilder::idle_timeout),
//!   ends the stream with one `event: error` and a clean end.
//! - a [`Responder`](crate::backend::Responder) (the demo one echoes the message word by word),
//!   or any [`StreamHandler`]: events made in Rust, encoded by [`SseBody`].
//!
//! Answers carry `Content-Type: text/event-stream`, `Cache-Control: no-cache` and
//! `X-Accel-Buffering: no`, and keep-alive comments while quiet ([`KeepAlive`]). A client that
//! disconnects drops the body, and with it the upstream request and its connection: nothing is
//! spawned that could outlive it.
//!
//! Do not put a compression layer in front of the stream with a predicate that lets
//! `text/event-stream` through: compressors buffer. tower-http's default predicate already
//! excludes it.
//!
//! ## Streaming the demo responder
//!
//! ```
//! use chatkit_tower::backend::DemoResponder;
//! use chatkit_tower::sse::StreamService;
//! use chatkit_tower::token::{SessionClaims, SessionKeys};
//! use http::Request;
//! use http_body_util::BodyExt;
//! use std::time::Duration;
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let keys = SessionKeys::random().unwrap();
//! let stream = StreamService::builder(keys.clone())
//!     .responder(DemoResponder::new(Duration::ZERO))
//!     .build()
//!     .unwrap();
//!
//! // The client secret the session endpoint handed out.
//! let secret = keys.seal(&SessionClaims::new("sess_1", "user_1", u64::MAX / 2));
//! let req = Request::post("/api/custom/stream")
//!     .header("authorization", format!("Bearer {secret}"))
//!     .body(r#"{"message": "hello world"}"#.to_owned())
//!     .unwrap();
//! let res = stream.clone().oneshot(req).await.unwrap();
//! assert_eq!(res.headers()["content-type"], "text/event-stream");
//! let bytes = res.into_body().collect().await.unwrap().to_bytes();
//! assert_eq!(
//!     bytes,
//!     "data: {\"type\":\"delta\",\"text\":\"hello \"}\n\n\
//!      data: {\"type\":\"delta\",\"text\":\"world\"}\n\n\
//!      data: {\"type\":\"done\"}\n\n"
//! );
//!
//! // No secret, no stream.
//! let res = stream.oneshot(Request::post("/").body(String::new()).unwrap()).await.unwrap();
//! assert_eq!(res.status(), 401);
//! # });
//! ```
//!
//! ## Proxying the custom backend, on bare hyper
//!
//! ```no_run
//! use chatkit_tower::sse::{StreamBackend, StreamService};
//! use chatkit_tower::token::SessionKeys;
//! use hyper_util::rt::{TokioExecutor, TokioIo};
//! use hyper_util::service::TowerToHyperService;
//! use std::time::Duration;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = SessionKeys::from_list(&std::env::var("CHATKIT_SESSION_SECRET")?)?;
//! let backend = StreamBackend::builder(
//!     std::env::var("CUSTOM_BACKEND_URL")?,
//!     std::env::var("CUSTOM_BACKEND_KEY")?,
//! )
//! .build()?;
//! let stream = StreamService::builder(keys)
//!     .proxy(backend)
//!     .idle_timeout(Duration::from_secs(30))
//!     .build()?;
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     let svc = TowerToHyperService::new(stream.clone());
//!     tokio::spawn(async move {
//!         let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
//!             .serve_connection(TokioIo::new(tcp), svc)
//!             .await;
//!     });
//! }
//! # }
//! ```
//!
//! ## Events from your own code
//!
//! [`SseBody`] turns any stream of [`Event`]s into a response body, for handlers of your own:
//!
//! ```
//! use chatkit_tower::sse::{Event, KeepAlive, SseBody};
//! use futures_util::{stream, StreamExt};
//!
//! # fn main() -> Result<(), chatkit_tower::sse::EventError> {
//! let progress = stream::iter(1..=3).map(|i| {
//!     Event::new().event("progress")?.id(i.to_string())?.json_data(&serde_json::json!({ "step": i }))
//! });
//! let response = SseBody::new(progress).keep_alive(KeepAlive::new()).into_response();
//! assert_eq!(response.headers()["cache-control"], "no-cache");
//! # Ok(()) }
//! ```

mod backend;
mod body;
mod client;
mod event;
mod handler;
mod proxy;
mod service;
mod timer;

pub use backend::{
    StreamBackend, StreamBackendBuilder, DEFAULT_STREAM_PATH, X_CHATKIT_SESSION, X_CHATKIT_USER,
};
pub use body::{SseBody, SseItem};
pub use client::{StreamClient, StreamClientBody, StreamClientBuilder, StreamClientFuture};
pub use event::{Event, EventError, KeepAlive};
pub use handler::{EventStream, StreamHandler};
pub use service::{StreamService, StreamServiceBuilder, DEFAULT_BODY_LIMIT, DEFAULT_IDLE_TIMEOUT};
