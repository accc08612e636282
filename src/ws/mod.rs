//! WebSocket chat: `GET /api/ws/chat/{secret}`, over HTTP/1.1 `Upgrade` and HTTP/2 extended
//! `CONNECT` (RFC 8441).
//!
//! [`WsService`] is a tower service that checks a WebSocket handshake, verifies the sealed
//! client secret and the `Origin` **before** upgrading, then runs a [`WsHandler`] on the socket
//! in a spawned task — by default the built-in [`ChatHandler`], which answers chat messages
//! from a [`Responder`](crate::backend::Responder):
//!
//! ```text
//! client → {"type":"message","text":"hello world"}
//! server ← {"type":"delta","text":"hello "}
//! server ← {"type":"delta","text":"world"}
//! server ← {"type":"done"}
//! ```
//!
//! No tungstenite type is part of this API: sockets are [`WebSocket`]s of [`Message`]s.
//!
//! # The handshake
//!
//! | request | answer |
//! |---|---|
//! | good handshake, valid secret, allowed or no `Origin` | `101 Switching Protocols` (HTTP/1.1) or `200` (HTTP/2), `Sec-WebSocket-Protocol: chatkit` if offered |
//! | not `GET` (HTTP/1.1) / not `CONNECT` (HTTP/2) | `405 METHOD_NOT_ALLOWED`, `Allow: GET, CONNECT` |
//! | no `Connection: upgrade` + `Upgrade: websocket` | `426`, `Upgrade: websocket` |
//! | HTTP/2 `CONNECT` without `:protocol = websocket` | `400 BAD_REQUEST` |
//! | `Sec-WebSocket-Version` missing or not `13` | `426`, `Sec-WebSocket-Version: 13` |
//! | `Sec-WebSocket-Key` missing / not 16 bytes in base64 | `400 BAD_REQUEST` |
//! | the connection cannot be upgraded (see below) | `500 INTERNAL` |
//! | `Origin` not among the allowed origins | `403 FORBIDDEN` |
//! | secret missing, forged, altered or expired | `401 UNAUTHORIZED` |
//! | the server is shutting down | `503` |
//!
//! Every refusal is the kit's JSON error body (`{"error","code","details"}`), and no socket is
//! opened. The protocol refusals are [`WsRejection`]s, usable on their own with [`WsUpgrade`].
//!
//! # The client secret
//!
//! The sealed client secret (`ck1.…`, from the session endpoint) is looked for in this order:
//!
//! 1. the **last path segment**: `ws://host/api/ws/chat/ck1.…` (the seed's
//!    `/api/ws/chat/{sessionId}`);
//! 2. the **`Sec-WebSocket-Protocol`** header, for clients that keep secrets out of URLs (and
//!    out of proxy logs): offer two subprotocols, `chatkit` and the secret itself —
//!    `new WebSocket(url, ["chatkit", secret])`. The answer names `chatkit`, never the secret;
//!    offering the secret without `chatkit` is refused with `400`, since browsers would fail the
//!    handshake anyway;
//! 3. a **`?token=`** query parameter, taken as it is (sealed secrets need no URL encoding).
//!
//! The path and the subprotocols count only values shaped like a sealed secret. If an
//! [`AuthLayer`](crate::auth::AuthLayer) runs in front and put a
//! [`Principal`](crate::Principal) in the request, the secret must belong to the same user.
//! Nothing here logs the secret, the path that carries it, or the backend session id.
//!
//! # `Origin`
//!
//! Browsers send cookies with cross-site WebSocket handshakes and apply no CORS to them, so
//! without a check any page could open a socket in its visitor's name (cross-site WebSocket
//! hijacking). A handshake whose `Origin` is not among
//! [`WsServiceBuilder::origins`] is refused with `403`. A handshake **without** `Origin` is let
//! through: only non-browser clients omit it, and they still need the secret. The default list
//! is empty, i.e. no browser origin is allowed until you name yours.
//!
//! # Servers must serve connections with upgrades enabled
//!
//! The service answers the handshake; hyper then hands over the connection, **only if the
//! server serves it with upgrades enabled**:
//!
//! - HTTP/1.1: `hyper_util::server::conn::auto::Builder::serve_connection_with_upgrades` (or
//!   `hyper::server::conn::http1::Builder::serve_connection(..).with_upgrades()`). axum's and
//!   warp's `serve` do this.
//! - HTTP/2: also `builder.http2().enable_connect_protocol()`, so clients may send the extended
//!   `CONNECT` (axum's `serve` does it with its `http2` feature).
//!
//! What a user sees otherwise: on HTTP/1.1 served **without** upgrades the browser gets the
//! `101` and then a closed connection (the socket's `onclose` fires at once, code 1006); the
//! server logs a warning that names `serve_connection_with_upgrades`. When the request
//! carries no upgrade handle at all (the service called outside a hyper server, or a server
//! that strips extensions) the answer is `500` with the same advice. On HTTP/2 without
//! `enable_connect_protocol` browsers do not try a WebSocket over that connection at all and
//! use HTTP/1.1.
//!
//! # Bare hyper
//!
//! ```no_run
//! use chatkit_tower::backend::DemoResponder;
//! use chatkit_tower::cors::AllowedOrigins;
//! use chatkit_tower::token::SessionKeys;
//! use chatkit_tower::ws::{Shutdown, WsService};
//! use hyper_util::rt::{TokioExecutor, TokioIo};
//! use hyper_util::server::conn::auto;
//! use hyper_util::service::TowerToHyperService;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = SessionKeys::from_list(&std::env::var("CHATKIT_SESSION_SECRET")?)?;
//! let shutdown = Shutdown::new();
//! let chat = WsService::chat(keys, DemoResponder::default())
//!     .origins(AllowedOrigins::list(["https://app.example.com"])?)
//!     .shutdown(shutdown.clone())
//!     .build()?;
//!
//! let mut builder = auto::Builder::new(TokioExecutor::new());
//! builder.http2().enable_connect_protocol();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! loop {
//!     tokio::select! {
//!         accepted = listener.accept() => {
//!             let (tcp, _) = accepted?;
//!             let svc = TowerToHyperService::new(chat.clone());
//!             let conn = builder
//!                 .serve_connection_with_upgrades(TokioIo::new(tcp), svc)
//!                 .into_owned();
//!             tokio::spawn(conn);
//!         }
//!         _ = tokio::signal::ctrl_c() => break,
//!     }
//! }
//! // Close every socket with 1001 "going away", and give them a moment to finish.
//! shutdown.trigger();
//! let _ = tokio::time::timeout(std::time::Duration::from_secs(5), shutdown.closed()).await;
//! # Ok(()) }
//! ```
//!
//! # axum and warp
//!
//! In axum 0.8, mount it with `route_service` (any method reaches it, so HTTP/2's `CONNECT`
//! does too — a `get(..)` route would answer `405` to HTTP/2 WebSockets):
//!
//! ```text
//! let app = axum::Router::new().route_service("/api/ws/chat/{secret}", ws_service);
//! // or, routing every method explicitly: .route("/api/ws/chat/{secret}", any_service(ws_service))
//! ```
//!
//! `axum::serve` keeps hyper's upgrade handle in the request extensions, so the upgrade works as
//! on bare hyper; enable axum's `http2` feature for HTTP/2 WebSockets. With warp, dispatch to the
//! service at the hyper level (next to `warp::service(filter)`), or bridge it into a filter and
//! pass the handle on with `warp::ext::optional::<hyper::upgrade::OnUpgrade>()`.
//!
//! # Your own handler
//!
//! ```
//! use chatkit_tower::token::SessionKeys;
//! use chatkit_tower::ws::{handler_fn, Message, WebSocket, WsContext, WsService};
//!
//! let keys = SessionKeys::new(["a-long-random-secret-of-32-bytes-or-more"]).unwrap();
//! let greeter = handler_fn(|mut socket: WebSocket, mut ctx: WsContext| async move {
//!     let hello = format!("hello {}", ctx.principal().id());
//!     if socket.send(Message::text(hello)).await.is_err() {
//!         return;
//!     }
//!     tokio::select! {
//!         () = ctx.shutdown() => { let _ = socket.close(1001, "server shutting down").await; }
//!         _ = async { while let Some(Ok(_)) = socket.recv().await {} } => {}
//!     }
//! });
//! let endpoint = WsService::builder(keys, greeter).build().unwrap();
//! # let _ = endpoint;
//! ```

mod chat;
mod handler;
mod service;
mod shutdown;
mod socket;
mod upgrade;

pub use chat::{ChatHandler, ChatHandlerBuilder, DEFAULT_IDLE_TIMEOUT, DEFAULT_PING_INTERVAL};
pub use handler::{handler_fn, HandlerFn, WsContext, WsHandler};
pub use service::{WsService, WsServiceBuilder, CHATKIT_PROTOCOL};
pub use shutdown::Shutdown;
pub use socket::{close_code, CloseFrame, Message, WebSocket, WsError};
pub use upgrade::{WsRejection, WsUpgrade, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_WRITE_BUFFER};
