//! ChatKit's own custom-backend protocol, served natively: the Rust counterpart of the Python
//! SDK's `ChatKitServer` (openai-chatkit 1.6.5), wire-identical to it.
//!
//! In custom-backend mode, ChatKit's front end (`useChatKit({ api: { url, domainKey, fetch } })`)
//! sends every request as a `POST` of `{"type", "params", "metadata"}` to one URL.
//! [`ChatKitService`] answers them all:
//!
//! | requests | answer |
//! |---|---|
//! | `threads.create`, `threads.add_user_message`, `threads.add_client_tool_output`, `threads.add_structured_input`, `threads.retry_after_item`, `threads.custom_action` | `200 text/event-stream`: one `data: <json>\n\n` per [`ThreadStreamEvent`](crate::protocol::ThreadStreamEvent) |
//! | `threads.get_by_id`, `threads.list`, `items.list`, `threads.update`, `attachments.create`, `input.transcribe`, `threads.sync_custom_action` | `200 application/json` |
//! | `items.feedback`, `threads.delete`, `attachments.delete` | `200 {}` |
//!
//! The pieces:
//!
//! - [`Assistant`]: your application — [`respond`](Assistant::respond) to a message with a
//!   stream of events; optionally handle actions, sync actions, dictation, feedback, and a
//!   stopped answer. [`EchoAssistant`] is a complete demo.
//! - [`Store`]: threads, items and attachment records, scoped by user, paged by an opaque
//!   cursor; [`InMemoryStore`] keeps them in memory, `SqliteStore` in one file (feature
//!   `sqlite`, on by default), `PostgresStore` in a database shared by many instances (feature
//!   `postgres`); [`StoreUrl`] picks one from `CHATKIT_STORE_URL` — see [`sql`].
//! - [`AttachmentStore`]: attachment bytes for the two-phase and direct upload strategies;
//!   [`InMemoryAttachmentStore`].
//! - [`RequestContext`]: the user (from the [`Principal`](crate::Principal) that
//!   [`AuthLayer`](crate::auth::AuthLayer) found), `Accept-Language`,
//!   `chatkit-frame-instance-id`, the request metadata.
//!
//! Around the assistant's events the service does what the SDK does: `thread.created` and the
//! user message's `thread.item.done` first, then `stream_options`, then the assistant's events —
//! each `thread.item.done` / `replaced` / `removed` saved before it is sent, hidden-context items
//! saved and not sent — and `thread.updated` whenever the assistant changed the thread. A failed
//! answer ends with an `error` event; a client that goes away mid-answer (the response body is
//! dropped) makes the service run [`Assistant::handle_stream_cancelled`], which by default saves
//! the text streamed so far.
//!
//! Failures before an answer starts are the kit's JSON errors: a body that is not a request
//! (unknown `type`, missing or mistyped params — named, with their path) is `400 BAD_REQUEST`,
//! a thread, item or attachment the user does not have is `404 NOT_FOUND` (another user's
//! included), a bad page cursor `400`, a body over the limit `413`, no authenticated user `401`,
//! a store that cannot be reached `503 STORE_UNAVAILABLE`. Where the SDK answers `200` with an
//! empty or broken stream (a retry after an item that does not exist, an item of the wrong
//! kind), the service answers `404` or `400` before streaming.
//!
//! # Serve ChatKit natively
//!
//! ```no_run
//! use chatkit_tower::auth::{AuthLayer, StaticTokens};
//! use chatkit_tower::chatkit::{ChatKitService, EchoAssistant, InMemoryStore};
//! use hyper_util::rt::{TokioExecutor, TokioIo};
//! use hyper_util::service::TowerToHyperService;
//! use tower::Layer;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Your assistant (here: echo the user's words back) and where threads are kept.
//! let chatkit = ChatKitService::builder(EchoAssistant::default(), InMemoryStore::new()).build()?;
//! // Who is asking: every thread belongs to the authenticated user.
//! let endpoint = AuthLayer::new(StaticTokens::parse("test-token=demo-user")?).layer(chatkit);
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     let svc = TowerToHyperService::new(endpoint.clone());
//!     tokio::spawn(async move {
//!         let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
//!             .serve_connection(TokioIo::new(tcp), svc)
//!             .await;
//!     });
//! }
//! # }
//! ```
//!
//! On the page: `useChatKit({ api: { url: "http://127.0.0.1:3000/", domainKey: "domain_pk_localhost_dev",
//! fetch: (url, init) => fetch(url, { ...init, headers: { ...init?.headers, Authorization: "Bearer test-token" } }) } })`.
//! In axum, mount it with `Router::new().route_service("/chatkit", endpoint)`.
//!
//! # One request, in process
//!
//! ```
//! use chatkit_tower::chatkit::{ChatKitService, EchoAssistant, InMemoryStore};
//! use chatkit_tower::Principal;
//! use http_body_util::BodyExt;
//! use std::time::Duration;
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let chatkit = ChatKitService::builder(EchoAssistant::new(Duration::ZERO), InMemoryStore::new())
//!     .build()
//!     .unwrap();
//! let mut req = http::Request::post("/chatkit")
//!     .body(r#"{"type":"threads.list","params":{}}"#.to_owned())
//!     .unwrap();
//! req.extensions_mut().insert(Principal::new("alice")); // what AuthLayer does
//! let res = chatkit.oneshot(req).await.unwrap();
//! assert_eq!(res.headers()["content-type"], "application/json");
//! let body = res.into_body().collect().await.unwrap().to_bytes();
//! assert_eq!(body, r#"{"data":[],"has_more":false}"#);
//! # });
//! ```

mod assistant;
mod attachments;
mod context;
mod echo;
mod memory;
mod pipeline;
mod service;
pub mod sql;
mod store;
mod upload;

pub use assistant::{
    error_stream, save_cancelled_answer, Assistant, EventStream, StreamError, ThreadHandle,
    CANCELLED_CONTEXT,
};
pub use attachments::{AttachmentStore, InMemoryAttachmentStore};
pub use context::{RequestContext, FRAME_INSTANCE_ID};
pub use echo::EchoAssistant;
pub use memory::InMemoryStore;
pub use service::{
    ChatKitService, ChatKitServiceBuilder, DEFAULT_BODY_LIMIT, DEFAULT_CANCEL_TIMEOUT,
    DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE,
};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use sql::PostgresStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sql::SqliteStore;
pub use sql::StoreUrl;
pub use store::{generate_id, IdKind, PageQuery, Store, StoreError, StoreErrorKind, StoreFuture};
pub use upload::{AttachmentUploadService, DEFAULT_UPLOAD_LIMIT};
