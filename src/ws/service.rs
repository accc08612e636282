//! [`WsService`]: `GET /api/ws/chat/{secret}` — the handshake, the session and `Origin` checks,
//! then a [`WsHandler`] on the socket.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::ORIGIN;
use http::{Request, Response, StatusCode};
use tower_service::Service;

use super::chat::ChatHandler;
use super::handler::{WsContext, WsHandler};
use super::shutdown::Shutdown;
use super::upgrade::{WsUpgrade, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_WRITE_BUFFER};
use crate::auth::Principal;
use crate::backend::Responder;
use crate::body::Body;
use crate::cors::AllowedOrigins;
use crate::error::{ConfigError, Error, ErrorCode};
use crate::future::ResponseFuture;
use crate::token::SessionKeys;

/// The subprotocol the kit speaks, sent back when the client offers it.
pub const CHATKIT_PROTOCOL: &str = "chatkit";

/// Every sealed client secret starts with this.
const SECRET_PREFIX: &str = "ck1.";

/// Smallest accepted [`WsServiceBuilder::max_write_buffer`].
const MIN_WRITE_BUFFER: usize = 1024;

/// The WebSocket endpoint: checks the handshake, the `Origin` and the sealed client secret
/// before upgrading, then runs a [`WsHandler`] (by default the built-in [`ChatHandler`]) on the
/// socket in a spawned task. See the [module docs](super) for the contract and for mounting.
///
/// A tower `Service` for any request body (the body is not read), answering
/// `Response<`[`Body`]`>`; always ready, never fails at the tower level, cheap to clone.
#[derive(Clone)]
pub struct WsService {
    inner: Arc<Inner>,
}

struct Inner {
    keys: SessionKeys,
    handler: Arc<dyn WsHandler>,
    origins: AllowedOrigins,
    shutdown: Shutdown,
    max_message_size: usize,
    max_write_buffer: usize,
}

impl WsService {
    /// Settings for an endpoint that verifies client secrets with `keys` and runs `handler` on
    /// each socket.
    pub fn builder(keys: SessionKeys, handler: impl WsHandler) -> WsServiceBuilder {
        WsServiceBuilder {
            keys,
            handler: Arc::new(handler),
            origins: None,
            shutdown: None,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_write_buffer: DEFAULT_MAX_WRITE_BUFFER,
        }
    }

    /// Settings for the chat endpoint: the built-in [`ChatHandler`] answering from
    /// `responder`, with its default ping interval and idle timeout.
    pub fn chat(keys: SessionKeys, responder: impl Responder) -> WsServiceBuilder {
        Self::builder(keys, ChatHandler::new(responder))
    }

    /// The shutdown signal of this endpoint's sockets (the one given to
    /// [`WsServiceBuilder::shutdown`], or the endpoint's own).
    pub fn shutdown(&self) -> Shutdown {
        self.inner.shutdown.clone()
    }

    fn handshake<B>(&self, req: &mut Request<B>) -> Result<Response<Body>, Error> {
        let upgrade = match WsUpgrade::from_request(req) {
            Ok(upgrade) => upgrade,
            Err(rejection) => return Ok(rejection.into_response()),
        };
        // Browsers send Origin on every WebSocket handshake and apply no CORS to it; clients
        // that are not browsers send none and are let through (the secret is still required).
        if let Some(origin) = req.headers().get(ORIGIN) {
            if !self.inner.origins.allows(origin) {
                let shown = origin.to_str().unwrap_or("(not text)");
                return Err(Error::new(
                    ErrorCode::Forbidden,
                    format!("the origin {shown} may not open this WebSocket"),
                ));
            }
        }

        let (secret, source) = find_secret(req, &upgrade).ok_or_else(|| {
            Error::unauthorized(
                "no session token: put the client secret in the last path segment, in \
                 Sec-WebSocket-Protocol next to \"chatkit\", or in ?token=",
            )
        })?;
        let claims = self
            .inner
            .keys
            .verify(secret)
            .map_err(|err| Error::unauthorized(err.to_string()))?;
        if let Some(principal) = req.extensions().get::<Principal>() {
            if principal.id() != claims.user_id {
                return Err(Error::unauthorized(
                    "the session token was issued to another user",
                ));
            }
        }
        let upgrade = upgrade
            .protocol(CHATKIT_PROTOCOL)
            .max_message_size(self.inner.max_message_size)
            .max_write_buffer(self.inner.max_write_buffer);
        if source == Source::Protocol && upgrade.selected_protocol().is_none() {
            // Browsers fail a handshake whose answer names none of the offered subprotocols, and
            // the secret itself is never echoed.
            return Err(Error::bad_request(
                "offer the \"chatkit\" subprotocol next to the client secret",
            ));
        }
        if self.inner.shutdown.is_triggered() {
            return Err(
                Error::new(ErrorCode::Internal, "the server is shutting down")
                    .with_status(StatusCode::SERVICE_UNAVAILABLE)
                    .with_message("Service unavailable"),
            );
        }

        let ctx = WsContext::new(
            claims,
            upgrade.selected_protocol(),
            self.inner.shutdown.listen(),
        );
        // The span names the user, never the secret, the path or the backend session id.
        let span = tracing::info_span!(
            "websocket",
            user = %ctx.principal().id(),
            http = ?req.version(),
        );
        let handler = self.inner.handler.clone();
        Ok(span.in_scope(|| {
            upgrade.on_upgrade(move |socket| async move {
                tracing::debug!("socket open");
                handler.serve(socket, ctx).await;
                tracing::debug!("socket ended");
            })
        }))
    }
}

impl fmt::Debug for WsService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsService")
            .field("origins_any", &self.inner.origins.is_any())
            .field("max_message_size", &self.inner.max_message_size)
            .field("max_write_buffer", &self.inner.max_write_buffer)
            .field("shutdown", &self.inner.shutdown)
            .finish_non_exhaustive()
    }
}

impl<B> Service<Request<B>> for WsService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<B>) -> ResponseFuture {
        // The handshake needs no I/O: answer at once.
        let res = self
            .handshake(&mut req)
            .unwrap_or_else(Error::into_response);
        ResponseFuture::ready(res)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Path,
    Protocol,
    Query,
}

/// The client secret, looked for in the last path segment, then among the offered
/// subprotocols, then in `?token=`. In the path and among the subprotocols only values shaped
/// like a sealed secret (`ck1.…`) count, so the endpoint's own path is never taken for one.
fn find_secret<'a, B>(req: &'a Request<B>, upgrade: &'a WsUpgrade) -> Option<(&'a str, Source)> {
    let sealed = |s: &str| s.starts_with(SECRET_PREFIX);
    if let Some(last) = req.uri().path().rsplit('/').next().filter(|s| sealed(s)) {
        return Some((last, Source::Path));
    }
    if let Some(offered) = upgrade.offered_protocols().find(|p| sealed(p)) {
        return Some((offered, Source::Protocol));
    }
    // An explicit `token=` is taken as it is (sealed secrets are URL-safe, so no decoding).
    let raw = req
        .uri()
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))?;
    Some((raw, Source::Query))
}

/// Settings for a [`WsService`].
#[must_use]
pub struct WsServiceBuilder {
    keys: SessionKeys,
    handler: Arc<dyn WsHandler>,
    origins: Option<AllowedOrigins>,
    shutdown: Option<Shutdown>,
    max_message_size: usize,
    max_write_buffer: usize,
}

impl fmt::Debug for WsServiceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsServiceBuilder")
            .field("max_message_size", &self.max_message_size)
            .field("max_write_buffer", &self.max_write_buffer)
            .finish_non_exhaustive()
    }
}

impl WsServiceBuilder {
    /// The browser origins allowed to open a socket; a handshake with any other `Origin` is
    /// refused with `403 FORBIDDEN`. Default: none, so only clients that send no `Origin` (not
    /// browsers) get through. Browsers apply no CORS to WebSockets and send cookies along, so
    /// this check is what stops other sites from opening one (CSWSH).
    pub fn origins(mut self, origins: AllowedOrigins) -> Self {
        self.origins = Some(origins);
        self
    }

    /// Largest incoming message, in bytes; a larger one closes the socket with `1009`.
    /// Default 64 KiB.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Most outgoing bytes held for a client that does not read, which also caps one outgoing
    /// message. Default 1 MiB, at least 1 KiB.
    pub fn max_write_buffer(mut self, bytes: usize) -> Self {
        self.max_write_buffer = bytes;
        self
    }

    /// The graceful-shutdown signal: trigger it when the server stops, and every socket is
    /// closed with `1001` ("going away"). Default: the endpoint's own, reachable through
    /// [`WsService::shutdown`].
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = Some(shutdown);
        self
    }

    /// Build the service, or say why the settings cannot work.
    pub fn build(self) -> Result<WsService, ConfigError> {
        if self.max_message_size == 0 {
            return Err(ConfigError::new(
                "the WebSocket max message size must be above zero",
            ));
        }
        if self.max_write_buffer < MIN_WRITE_BUFFER {
            return Err(ConfigError::new(format!(
                "the WebSocket write buffer must be at least {MIN_WRITE_BUFFER} bytes"
            )));
        }
        let origins = match self.origins {
            Some(origins) => origins,
            None => AllowedOrigins::list(Vec::<String>::new())?,
        };
        Ok(WsService {
            inner: Arc::new(Inner {
                keys: self.keys,
                handler: self.handler,
                origins,
                shutdown: self.shutdown.unwrap_or_default(),
                max_message_size: self.max_message_size,
                max_write_buffer: self.max_write_buffer,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::DemoResponder;
    use crate::token::SessionClaims;

    const KEY: &str = "ws-test-key-0123456789abcdef0123456789";

    fn service(origins: AllowedOrigins) -> WsService {
        let keys = SessionKeys::new([KEY]).unwrap();
        WsService::chat(keys, DemoResponder::default())
            .origins(origins)
            .build()
            .unwrap()
    }

    fn handshake(uri: &str) -> http::request::Builder {
        Request::get(uri)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    }

    #[test]
    fn settings_that_cannot_work_are_refused() {
        let keys = SessionKeys::new([KEY]).unwrap();
        let chat = || WsService::chat(keys.clone(), DemoResponder::default());
        assert!(chat().max_message_size(0).build().is_err());
        assert!(chat().max_write_buffer(10).build().is_err());
        assert!(chat().build().is_ok());
    }

    #[test]
    fn the_secret_is_found_in_path_then_protocol_then_query() {
        let keys = SessionKeys::new([KEY]).unwrap();
        let secret = keys.seal(&SessionClaims::new("s", "u", u64::MAX / 2));
        let find = |req: http::request::Builder| {
            let mut req = req.body(()).unwrap();
            // No server: take the upgrade handle's absence out of the picture.
            req.extensions_mut()
                .insert(hyper::upgrade::on(Request::new(())));
            let upgrade = WsUpgrade::from_request(&mut req).unwrap();
            find_secret(&req, &upgrade).map(|(s, source)| (s.to_owned(), source))
        };
        let path = handshake(&format!("/api/ws/chat/{secret}"));
        assert_eq!(find(path), Some((secret.clone(), Source::Path)));
        let protocol = handshake("/api/ws/chat")
            .header("sec-websocket-protocol", format!("chatkit, {secret}"));
        assert_eq!(find(protocol), Some((secret.clone(), Source::Protocol)));
        let query = handshake(&format!("/api/ws/chat?x=1&token={secret}"));
        assert_eq!(find(query), Some((secret.clone(), Source::Query)));
        assert_eq!(find(handshake("/api/ws/chat/")), None);
        let forged = handshake("/api/ws/chat?token=forged");
        assert_eq!(find(forged), Some(("forged".to_owned(), Source::Query)));
    }

    #[tokio::test]
    async fn foreign_origin_is_forbidden_before_the_session_is_looked_at() {
        let svc = service(AllowedOrigins::list(["https://app.example"]).unwrap());
        let mut req = handshake("/api/ws/chat/ck1.x.y")
            .header("origin", "https://evil.example")
            .body(())
            .unwrap();
        req.extensions_mut()
            .insert(hyper::upgrade::on(Request::new(())));
        let res = svc.handshake(&mut req).unwrap_err();
        assert_eq!(res.code(), ErrorCode::Forbidden);
    }
}
