//! [`App`]: every endpoint of the kit assembled from a [`Config`], routed, and served — the
//! example server in library form.
//!
//! Routes (DESIGN §3):
//!
//! | path | method | what |
//! |---|---|---|
//! | `/healthz` | GET | `{"status":"ok"}`: the process answers (liveness; needs no database) |
//! | `/readyz` | GET | `{"status":"ready"}` when the ChatKit store answers (a trivial query under the store's timeout), else `503 STORE_UNAVAILABLE` |
//! | `/api/custom/session` | POST | [`SessionService`](crate::session::SessionService) behind [`AuthLayer`](crate::auth::AuthLayer) |
//! | `/api/sessions` | POST | [`IssuerService`](crate::backend::IssuerService) (the embedded backend) |
//! | `/api/custom/stream` | POST | [`StreamService`](crate::sse::StreamService): the custom backend's stream, or the demo responder |
//! | `/api/ws/chat/{secret}` | GET (HTTP/1.1) / CONNECT (HTTP/2) | [`WsService`](crate::ws::WsService) chat with the demo responder |
//! | `/chatkit` | POST | [`ChatKitService`](crate::chatkit::ChatKitService): ChatKit's own protocol, echo assistant, behind authentication |
//! | `/chatkit/uploads/{id}` | PUT / POST | [`AttachmentUploadService`](crate::chatkit::AttachmentUploadService): two-phase attachment bytes, behind authentication |
//! | `/` | GET | the demo page |
//!
//! The CORS preset is outermost (preflights never reach authentication); every answer is logged
//! at info as one line with method, path, status and latency — never a header, a query string,
//! or the secret in a WebSocket path.
//!
//! ```no_run
//! use chatkit_tower::{App, Config};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::from_env()?;
//! let app = App::from_config(&config)?;
//! let listener = tokio::net::TcpListener::bind((config.host, config.port)).await?;
//! app.serve(listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tower::util::BoxCloneSyncService;
use tower::Layer;
use tower_service::Service;

use crate::body::{json_response, Body};
use crate::chatkit::Store;
use crate::config::Config;
use crate::error::{BoxError, ConfigError, Error, ErrorCode};
use crate::future::ResponseFuture;
use crate::kit::Kit;
use crate::ws::Shutdown;

type Route = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// All endpoints, routed, behind CORS. A tower `Service` for any request body; cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Route,
    ws_shutdown: Shutdown,
    header_read_timeout: Duration,
}

/// Default time a connection may take to send a request's headers — idle keep-alive
/// connections and slow-loris clients are closed after it.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Routes {
    session: Route,
    issuer: Route,
    stream: Route,
    ws: Route,
    chatkit: Route,
    uploads: Route,
    /// The ChatKit store, for `/readyz`.
    store: Arc<dyn Store>,
    page: Bytes,
}

const WS_PREFIX: &str = "/api/ws/chat";
const UPLOADS_PREFIX: &str = "/chatkit/uploads/";

impl App {
    /// Assemble the endpoints `config` describes. Must be called inside a tokio runtime.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        Ok(Self::from_kit(&Kit::from_config(config)?, &config.models))
    }

    /// Route the services of `kit`; `models` fill the demo page's model picker.
    pub fn from_kit(kit: &Kit, models: &[String]) -> Self {
        let routes = Routes {
            session: BoxCloneSyncService::new(kit.session()),
            issuer: BoxCloneSyncService::new(kit.issuer()),
            stream: BoxCloneSyncService::new(kit.stream()),
            ws: BoxCloneSyncService::new(kit.ws()),
            chatkit: BoxCloneSyncService::new(kit.chatkit()),
            uploads: BoxCloneSyncService::new(kit.chatkit_uploads()),
            store: kit.chatkit_service().store().clone(),
            page: demo_page(models),
        };
        Self {
            inner: BoxCloneSyncService::new(kit.cors().layer(routes)),
            ws_shutdown: kit.ws_shutdown(),
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
        }
    }

    /// Close connections that take longer than `timeout` to send a request's headers (idle
    /// keep-alive connections included). Default 10 s.
    #[must_use]
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Serve connections from `listener` (HTTP/1.1 and HTTP/2, upgrades enabled) until
    /// `shutdown` completes, then let open requests finish for up to 10 seconds.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .enable_connect_protocol();
        // tokio's timer driver sleeps until its earliest timer and must be woken (a syscall and
        // a thread switch) whenever a timer is armed that is due before it. Every request arms
        // one (the header-read deadline; the upstream exchange's), and on a quiet wheel each of
        // them would be the earliest. A timer always due within a second keeps the driver's
        // wake-up early, so arming those longer ones wakes nobody: one wake-up a second instead
        // of one per request (measured: about a sixth of the session endpoint's CPU).
        let heartbeat = AbortOnDrop(tokio::spawn(async {
            let mut tick = tokio::time::interval(HEARTBEAT);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
            }
        }));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        // Out of file descriptors and the like: wait a little, keep serving.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            // Streamed answers are many small writes; Nagle's algorithm would hold each one back
            // until the client acknowledges the last (up to its delayed-ACK time, 40 ms on Linux).
            if let Err(err) = stream.set_nodelay(true) {
                tracing::debug!(%peer, error = %err, "TCP_NODELAY could not be set");
            }
            let service = PerConnection(std::sync::Mutex::new(self.clone()));
            let (builder, watcher) = (builder.clone(), graceful.watcher());
            let header_read_timeout = self.header_read_timeout;
            tokio::spawn(async move {
                // The auto builder waits for a connection's first bytes (HTTP/1 or HTTP/2?) with
                // no deadline of its own: a connection that never speaks is closed here.
                let mut first = [0u8; 1];
                if tokio::time::timeout(header_read_timeout, stream.peek(&mut first))
                    .await
                    .is_err()
                {
                    tracing::debug!(%peer, "closing a connection that sent nothing");
                    return;
                }
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                if let Err(err) = watcher.watch(conn.into_owned()).await {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
            });
        }
        drop(listener);
        // WebSockets first: hyper's graceful shutdown does not see upgraded connections, and an
        // HTTP/2 connection carrying one would otherwise hold the shutdown for the whole wait.
        self.ws_shutdown.trigger();
        let drained = async {
            tokio::join!(graceful.shutdown(), self.ws_shutdown.closed());
        };
        if tokio::time::timeout(Duration::from_secs(10), drained)
            .await
            .is_err()
        {
            tracing::warn!("some connections were still open after 10 s; closing them");
        }
        drop(heartbeat);
        Ok(())
    }
}

/// The period of [`App::serve`]'s heartbeat timer: shorter than any timer a request arms.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Aborts the task when dropped (the server future ended or was dropped).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The app as hyper calls it on one connection: one clone of the app per connection, where
/// hyper-util's `TowerToHyperService` clones the whole service stack for every request.
struct PerConnection(std::sync::Mutex<App>);

impl hyper::service::Service<Request<hyper::body::Incoming>> for PerConnection {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, req: Request<hyper::body::Incoming>) -> ResponseFuture {
        // Calls come one at a time from the connection's task, so the lock is never contended;
        // a panic elsewhere cannot leave the app half-changed (calling it only starts a future).
        let mut app = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // The app is ready at once (its router readies each route as it routes to it), so this
        // never waits; were it not, a clone of the app waits, off this connection's other
        // requests.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match Service::<Request<hyper::body::Incoming>>::poll_ready(&mut *app, &mut cx) {
            Poll::Ready(Ok(())) => app.call(req),
            Poll::Pending => {
                let app = app.clone();
                ResponseFuture::from_infallible(Box::pin(tower::ServiceExt::oneshot(app, req)))
            }
        }
    }
}

impl<B> Service<Request<B>> for App
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        if !tracing::enabled!(tracing::Level::INFO) {
            return ResponseFuture::from_infallible(self.inner.call(req.map(Body::new)));
        }
        let started = Instant::now();
        let method = req.method().clone();
        // The WebSocket path carries the client secret: never log it.
        let path = match req.uri().path() {
            p if p.starts_with(WS_PREFIX) => format!("{WS_PREFIX}/…"),
            p => p.to_owned(),
        };
        let fut = self.inner.call(req.map(Body::new));
        ResponseFuture::new(async move {
            let Ok(res) = fut.await;
            tracing::info!(
                %method,
                path = %path,
                status = res.status().as_u16(),
                latency = ?started.elapsed(),
                "request"
            );
            Ok(res)
        })
    }
}

impl Service<Request<Body>> for Routes {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    /// Ready at once: a route is readied when a request is routed to it (see `call`), so a
    /// request does not wait on (or poll) the routes it does not use.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let route = match req.uri().path() {
            // The method is checked before authentication, as a router would: a GET is 405
            // whether or not it carries a credential.
            "/api/custom/session" | "/api/sessions" | "/api/custom/stream" | "/chatkit"
                if req.method() != Method::POST =>
            {
                let res = Error::method_not_allowed(&[Method::POST]).into_response();
                return ResponseFuture::ready(res);
            }
            "/api/custom/session" => &mut self.session,
            "/api/sessions" => &mut self.issuer,
            "/api/custom/stream" => &mut self.stream,
            "/chatkit" => &mut self.chatkit,
            p if p.starts_with(UPLOADS_PREFIX) => &mut self.uploads,
            // No method check here: HTTP/2 WebSockets arrive as CONNECT; the service answers 405.
            p if p == WS_PREFIX || p.starts_with("/api/ws/chat/") => &mut self.ws,
            "/" | "/index.html" => {
                let res = if req.method() == Method::GET || req.method() == Method::HEAD {
                    let mut res = Response::new(Body::from(self.page.clone()));
                    let headers = res.headers_mut();
                    headers.insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("text/html; charset=utf-8"),
                    );
                    headers.insert(
                        http::header::CACHE_CONTROL,
                        http::HeaderValue::from_static("no-cache"),
                    );
                    res
                } else {
                    Error::method_not_allowed(&[Method::GET]).into_response()
                };
                return ResponseFuture::ready(res);
            }
            "/readyz" => {
                if req.method() != Method::GET && req.method() != Method::HEAD {
                    let res = Error::method_not_allowed(&[Method::GET]).into_response();
                    return ResponseFuture::ready(res);
                }
                let store = self.store.clone();
                return ResponseFuture::new(async move {
                    Ok(match store.ready().await {
                        Ok(()) => {
                            json_response(StatusCode::OK, &serde_json::json!({"status": "ready"}))
                        }
                        Err(err) => Error::from(err).into_response(),
                    })
                });
            }
            "/healthz" => {
                let res = if req.method() == Method::GET || req.method() == Method::HEAD {
                    json_response(StatusCode::OK, &serde_json::json!({"status": "ok"}))
                } else {
                    Error::method_not_allowed(&[Method::GET]).into_response()
                };
                return ResponseFuture::ready(res);
            }
            _ => {
                let res =
                    Error::new(ErrorCode::NotFound, "no endpoint at this path").into_response();
                return ResponseFuture::ready(res);
            }
        };
        // Every route is one of the kit's services, ready at once; were one not, a clone of it
        // waits for readiness inside the response future.
        match route.poll_ready(&mut Context::from_waker(std::task::Waker::noop())) {
            Poll::Ready(Ok(())) => ResponseFuture::from_infallible(route.call(req)),
            Poll::Pending => ResponseFuture::from_infallible(Box::pin(tower::ServiceExt::oneshot(
                route.clone(),
                req,
            ))),
        }
    }
}

/// The demo page, with the model allow-list filled in (as JSON that cannot close the script).
fn demo_page(models: &[String]) -> Bytes {
    let list = serde_json::to_string(models)
        .unwrap_or_else(|_| "[]".to_owned())
        .replace('<', "\\u003c");
    Bytes::from(DEMO_PAGE.replace("/*MODELS*/[]", &list))
}

const DEMO_PAGE: &str = include_str!("../assets/demo.html");
