//! [`StreamService`]: the `POST /api/custom/stream` endpoint.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response};
use http_body_util::Full;
use tower_service::Service;

use super::backend::{OpenStream, StreamBackend, StreamCall};
use super::body::SseBody;
use super::event::KeepAlive;
use super::handler::{ResponderHandler, StreamHandler};
use super::proxy::ProxySettings;
use crate::auth::bearer_token;
use crate::backend::Responder;
use crate::body::{read_limited, Body};
use crate::error::{BoxError, ConfigError, Error};
use crate::future::ResponseFuture;
use crate::token::{SessionClaims, SessionKeys};

/// Default largest request body.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
/// Default idle timeout of a proxied stream: no bytes from the backend for this long ends it.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// `POST /api/custom/stream`: verify the sealed client secret, then stream Server-Sent Events
/// from the backend ([`proxy`](StreamServiceBuilder::proxy)) or from Rust
/// ([`responder`](StreamServiceBuilder::responder), [`handler`](StreamServiceBuilder::handler));
/// see the [module docs](super).
///
/// Always ready, never fails at the tower level (every failure is a JSON response, or an
/// `event: error` once the stream began), cheap to clone.
#[derive(Clone)]
pub struct StreamService {
    inner: Arc<Inner>,
}

struct Inner {
    keys: SessionKeys,
    source: Source,
    body_limit: usize,
    settings: ProxySettings,
}

#[derive(Clone)]
enum Source {
    Proxy(Arc<dyn OpenStream>),
    Handler(Arc<dyn StreamHandler>),
}

impl Source {
    fn kind(&self) -> &'static str {
        match self {
            Self::Proxy(_) => "proxy",
            Self::Handler(_) => "handler",
        }
    }
}

impl fmt::Debug for StreamService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamService")
            .field("source", &self.inner.source.kind())
            .field("body_limit", &self.inner.body_limit)
            .field("idle_timeout", &self.inner.settings.idle_timeout)
            .field("keep_alive", &self.inner.settings.keep_alive)
            .finish_non_exhaustive()
    }
}

impl StreamService {
    /// Settings for a stream service accepting client secrets sealed with `keys` (the same
    /// keys as the [`SessionService`](crate::session::SessionService)'s).
    pub fn builder(keys: SessionKeys) -> StreamServiceBuilder {
        StreamServiceBuilder {
            keys,
            source: None,
            sources_set: 0,
            body_limit: DEFAULT_BODY_LIMIT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            keep_alive: Some(KeepAlive::new()),
        }
    }
}

/// Settings for a [`StreamService`]. Choose exactly one source: [`proxy`](Self::proxy),
/// [`responder`](Self::responder) or [`handler`](Self::handler).
///
/// ```
/// use chatkit_tower::backend::DemoResponder;
/// use chatkit_tower::sse::{KeepAlive, StreamService};
/// use chatkit_tower::token::SessionKeys;
/// use std::time::Duration;
///
/// let keys = SessionKeys::random().unwrap();
/// let svc = StreamService::builder(keys.clone())
///     .responder(DemoResponder::default())
///     .keep_alive(KeepAlive::new().interval(Duration::from_secs(20)))
///     .body_limit(16 * 1024)
///     .build()
///     .unwrap();
///
/// // No source, or two, is a configuration error, not a panic.
/// assert!(StreamService::builder(keys.clone()).build().is_err());
/// assert!(StreamService::builder(keys)
///     .responder(DemoResponder::default())
///     .responder(DemoResponder::default())
///     .build()
///     .is_err());
/// ```
#[must_use]
pub struct StreamServiceBuilder {
    keys: SessionKeys,
    source: Option<Source>,
    sources_set: usize,
    body_limit: usize,
    idle_timeout: Duration,
    keep_alive: Option<KeepAlive>,
}

impl fmt::Debug for StreamServiceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamServiceBuilder")
            .field("source", &self.source.as_ref().map(Source::kind))
            .field("body_limit", &self.body_limit)
            .field("idle_timeout", &self.idle_timeout)
            .field("keep_alive", &self.keep_alive)
            .finish_non_exhaustive()
    }
}

impl StreamServiceBuilder {
    /// Proxy every stream to `backend`, passing its bytes on unchanged.
    pub fn proxy<S, B>(self, backend: StreamBackend<S>) -> Self
    where
        S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
        S::Future: Send,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        self.source(Source::Proxy(Arc::new(backend)))
    }

    /// Answer `{"message": "…"}` with `responder`'s reply, each
    /// [`ChatFrame`](crate::backend::ChatFrame) as one `data: <json>` event (the demo
    /// responder streams the message back word by word).
    pub fn responder(self, responder: impl Responder) -> Self {
        self.source(Source::Handler(Arc::new(ResponderHandler(responder))))
    }

    /// Generate each stream with `handler`.
    pub fn handler(self, handler: impl StreamHandler) -> Self {
        self.source(Source::Handler(Arc::new(handler)))
    }

    fn source(mut self, source: Source) -> Self {
        self.source = Some(source);
        self.sources_set += 1;
        self
    }

    /// Largest request body; over it is `413 PAYLOAD_TOO_LARGE`. Default 64 KiB.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// A proxied stream whose backend sends nothing for this long ends with an `event: error`
    /// (`BACKEND_TIMEOUT`). Default 30 s. Separate from the keep-alive toward the client:
    /// keep-alive comments do not count as backend activity.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Comments toward the client while the stream is quiet. Default: `:` every 15 s. A proxied
    /// stream gets them only between events and only when its content type is
    /// `text/event-stream`.
    pub fn keep_alive(mut self, keep_alive: KeepAlive) -> Self {
        self.keep_alive = Some(keep_alive);
        self
    }

    /// Send no keep-alive comments.
    pub fn no_keep_alive(mut self) -> Self {
        self.keep_alive = None;
        self
    }

    /// Build the service, or say why the settings cannot work.
    pub fn build(self) -> Result<StreamService, ConfigError> {
        let source = match (self.source, self.sources_set) {
            (Some(source), 1) => source,
            (None, _) => {
                return Err(ConfigError::new(
                    "stream service: choose a source: proxy(StreamBackend), responder(..) or handler(..)",
                ))
            }
            (Some(_), _) => {
                return Err(ConfigError::new(
                    "stream service: choose one source only (proxy, responder or handler)",
                ))
            }
        };
        if self.body_limit == 0 {
            return Err(ConfigError::new(
                "stream service: the body limit must be above 0",
            ));
        }
        if self.idle_timeout.is_zero() {
            return Err(ConfigError::new(
                "stream service: the idle timeout must be above 0",
            ));
        }
        Ok(StreamService {
            inner: Arc::new(Inner {
                keys: self.keys,
                source,
                body_limit: self.body_limit,
                settings: ProxySettings {
                    idle_timeout: self.idle_timeout,
                    keep_alive: self.keep_alive,
                },
            }),
        })
    }
}

impl<B> Service<Request<B>> for StreamService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = ResponseFuture;

    #[inline]
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        // The secret first: a forged or expired one costs no upstream call and no body read.
        let claims = match self.inner.verify(req.headers()) {
            Ok(claims) => claims,
            Err(err) => return ResponseFuture::ready(err.into_response()),
        };
        if req.method() != Method::POST {
            return ResponseFuture::ready(
                Error::method_not_allowed(&[Method::POST]).into_response(),
            );
        }
        ResponseFuture::new(Inner::handle(self.inner.clone(), claims, req))
    }
}

impl Inner {
    fn verify(&self, headers: &HeaderMap) -> Result<SessionClaims, Error> {
        let token = bearer_token(headers).ok_or_else(|| {
            Error::unauthorized("send the client secret as Authorization: Bearer <client_secret>")
        })?;
        self.keys.verify(token).map_err(|e| {
            tracing::debug!(reason = %e, "stream request refused");
            Error::unauthorized(e.to_string())
        })
    }

    async fn handle<B>(
        self: Arc<Self>,
        claims: SessionClaims,
        req: Request<B>,
    ) -> Result<Response<Body>, Error>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = req.into_parts();
        let body = read_limited(&parts.headers, body, self.body_limit).await?;
        match &self.source {
            Source::Proxy(upstream) => {
                let call = StreamCall {
                    claims,
                    parts,
                    body,
                    settings: self.settings.clone(),
                };
                upstream.open(call).await
            }
            Source::Handler(handler) => {
                let events = handler.handle(claims, Request::from_parts(parts, body))?;
                let mut body = SseBody::new(events);
                if let Some(keep_alive) = &self.settings.keep_alive {
                    body = body.keep_alive(keep_alive.clone());
                }
                Ok(body.into_response())
            }
        }
    }
}
