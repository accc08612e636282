//! [`WsUpgrade`]: the WebSocket handshake on HTTP/1.1 (`Upgrade`) and HTTP/2 (extended
//! `CONNECT`, RFC 8441), and [`WsRejection`], one variant per way a handshake can be wrong.

use std::fmt;
use std::future::Future;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tracing::Instrument;

use super::socket::WebSocket;
use crate::body::Body;
use crate::error::{Error, ErrorCode};

/// Default largest incoming message: 64 KiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 * 1024;
/// Default largest amount of outgoing data held for a peer that does not read: 1 MiB.
pub const DEFAULT_MAX_WRITE_BUFFER: usize = 1024 * 1024;
/// Read buffer allocated per socket up front; it grows for larger frames.
const READ_BUFFER: usize = 4 * 1024;

/// A WebSocket handshake that passed every check, waiting to be answered.
///
/// [`WsUpgrade::from_request`] checks the request (method, upgrade headers, version, key, and
/// that the connection can be upgraded at all) and takes hyper's upgrade handle out of it;
/// [`WsUpgrade::on_upgrade`] makes the `101 Switching Protocols` (HTTP/1.1) or `200 OK`
/// (HTTP/2) answer and runs your callback on the socket in a spawned task.
///
/// [`WsService`](crate::ws::WsService) is built on it and adds the session and `Origin` checks;
/// use `WsUpgrade` directly for a socket endpoint of your own.
///
/// ```
/// use chatkit_tower::ws::{Message, WsRejection, WsUpgrade};
/// use chatkit_tower::Body;
/// use http::{Request, Response};
///
/// fn echo_endpoint<B>(mut req: Request<B>) -> Response<Body> {
///     let upgrade = match WsUpgrade::from_request(&mut req) {
///         Ok(upgrade) => upgrade,
///         Err(rejection) => return rejection.into_response(),
///     };
///     upgrade.max_message_size(16 * 1024).on_upgrade(|mut socket| async move {
///         while let Some(Ok(Message::Text(text))) = socket.recv().await {
///             if socket.send(Message::Text(text)).await.is_err() {
///                 break;
///             }
///         }
///     })
/// }
///
/// // Without a server there is no upgrade handle: a plain GET is refused.
/// let res = echo_endpoint(Request::get("/ws").body(()).unwrap());
/// assert_eq!(res.status(), 426);
/// ```
pub struct WsUpgrade {
    handshake: Handshake,
    on_upgrade: OnUpgrade,
    offered: Vec<String>,
    protocol: Option<&'static str>,
    max_message_size: usize,
    max_write_buffer: usize,
}

enum Handshake {
    /// HTTP/1.1: answer `101` with this `Sec-WebSocket-Accept`.
    Http1 { accept: HeaderValue },
    /// HTTP/2 extended CONNECT: answer `200`.
    Http2,
}

impl WsUpgrade {
    /// Check that `req` is a WebSocket handshake this server can complete, and take the upgrade
    /// handle out of its extensions.
    ///
    /// The checks, in order: the method (`GET` on HTTP/1.1, `CONNECT` on HTTP/2), the upgrade
    /// itself (`Connection: upgrade` + `Upgrade: websocket`, or `:protocol = websocket`),
    /// `Sec-WebSocket-Version: 13`, `Sec-WebSocket-Key` (HTTP/1.1 only), and hyper's
    /// [`OnUpgrade`] handle in the extensions.
    pub fn from_request<B>(req: &mut Request<B>) -> Result<Self, WsRejection> {
        let handshake = if req.version() == Version::HTTP_2 {
            if req.method() != Method::CONNECT {
                return Err(WsRejection::MethodNotAllowed);
            }
            let protocol = req.extensions().get::<hyper::ext::Protocol>();
            if !protocol.is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket")) {
                return Err(WsRejection::NotWebSocketConnect);
            }
            check_version(req.headers())?;
            Handshake::Http2
        } else {
            if req.method() != Method::GET {
                return Err(WsRejection::MethodNotAllowed);
            }
            let headers = req.headers();
            let upgrade_request = req.version() >= Version::HTTP_11
                && has_token(headers, &CONNECTION, "upgrade")
                && has_token(headers, &UPGRADE, "websocket");
            if !upgrade_request {
                return Err(WsRejection::NotUpgradeRequest);
            }
            check_version(headers)?;
            let key = headers
                .get(SEC_WEBSOCKET_KEY)
                .ok_or(WsRejection::KeyMissing)?;
            // RFC 6455 §4.2.1: the key is 16 random bytes, base64-encoded.
            let valid = STANDARD
                .decode(key.as_bytes())
                .is_ok_and(|bytes| bytes.len() == 16);
            if !valid {
                return Err(WsRejection::KeyInvalid);
            }
            let accept = HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
                .map_err(|_| WsRejection::KeyInvalid)?;
            Handshake::Http1 { accept }
        };
        let offered = req
            .headers()
            .get_all(SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        let on_upgrade = req
            .extensions_mut()
            .remove::<OnUpgrade>()
            .ok_or(WsRejection::UpgradeUnavailable)?;
        Ok(Self {
            handshake,
            on_upgrade,
            offered,
            protocol: None,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_write_buffer: DEFAULT_MAX_WRITE_BUFFER,
        })
    }

    /// The subprotocols the client offered in `Sec-WebSocket-Protocol`, in its order.
    pub fn offered_protocols(&self) -> impl Iterator<Item = &str> {
        self.offered.iter().map(String::as_str)
    }

    /// Answer with subprotocol `name` if the client offered it (compared exactly); otherwise
    /// answer with none.
    #[must_use]
    pub fn protocol(mut self, name: &'static str) -> Self {
        self.protocol = self.offered.iter().any(|p| p == name).then_some(name);
        self
    }

    /// The subprotocol the answer will carry.
    pub fn selected_protocol(&self) -> Option<&'static str> {
        self.protocol
    }

    /// Largest incoming message (and frame), in bytes; a larger one ends reading with an error
    /// whose [`close_code`](crate::ws::WsError::close_code) is `1009`. Default 64 KiB; `0` is
    /// taken as 1.
    #[must_use]
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes.max(1);
        self
    }

    /// Most outgoing bytes held for a peer that does not read before sending fails, which also
    /// caps the size of one outgoing message. Default 1 MiB; `0` is taken as 1.
    #[must_use]
    pub fn max_write_buffer(mut self, bytes: usize) -> Self {
        self.max_write_buffer = bytes.max(1);
        self
    }

    /// Answer the handshake and, once hyper hands over the connection, run `callback` on the
    /// socket in a task spawned on the current tokio runtime (instrumented with the current
    /// tracing span). Outside a tokio runtime the answer is `500 INTERNAL`.
    ///
    /// If the server does not complete the upgrade (an HTTP/1.1 connection served without
    /// `serve_connection_with_upgrades`), the client gets the `101` and then a closed
    /// connection, and a warning is logged.
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response<Body>
    where
        F: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            // Write each message out at once; what waits for a slow peer is capped below.
            .write_buffer_size(0)
            .max_write_buffer_size(self.max_write_buffer)
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_message_size));
        let on_upgrade = self.on_upgrade;
        let task = async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(err) => {
                    tracing::warn!(
                        error = %err,
                        "the WebSocket upgrade did not complete; serve connections with \
                         upgrades enabled (hyper's serve_connection_with_upgrades)"
                    );
                    return;
                }
            };
            let stream = WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Server,
                Some(config),
            )
            .await;
            callback(WebSocket::new(stream)).await;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Error::internal("the WebSocket service must run inside a tokio runtime")
                .into_response();
        };
        runtime.spawn(task.instrument(tracing::Span::current()));

        let mut res = Response::new(Body::empty());
        match self.handshake {
            Handshake::Http1 { accept } => {
                *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                let headers = res.headers_mut();
                headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
                headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
                headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
            }
            Handshake::Http2 => *res.status_mut() = StatusCode::OK,
        }
        if let Some(protocol) = self.protocol {
            res.headers_mut()
                .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(protocol));
        }
        res
    }
}

impl fmt::Debug for WsUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let http = match self.handshake {
            Handshake::Http1 { .. } => "HTTP/1.1",
            Handshake::Http2 => "HTTP/2",
        };
        // The offered subprotocols may carry a client secret: not shown.
        f.debug_struct("WsUpgrade")
            .field("http", &http)
            .field("protocol", &self.protocol)
            .field("max_message_size", &self.max_message_size)
            .finish_non_exhaustive()
    }
}

fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn check_version(headers: &HeaderMap) -> Result<(), WsRejection> {
    match headers.get(SEC_WEBSOCKET_VERSION) {
        Some(v) if v.as_bytes().trim_ascii() == b"13" => Ok(()),
        _ => Err(WsRejection::UnsupportedVersion),
    }
}

/// Why a WebSocket handshake was refused; each answers with its own status and the kit's JSON
/// error body.
///
/// ```
/// use chatkit_tower::ws::{WsRejection, WsUpgrade};
/// use http::Request;
///
/// let mut req = Request::get("/ws")
///     .header("connection", "Upgrade")
///     .header("upgrade", "websocket")
///     .header("sec-websocket-version", "8")
///     .body(())
///     .unwrap();
/// let rejection = WsUpgrade::from_request(&mut req).unwrap_err();
/// assert_eq!(rejection, WsRejection::UnsupportedVersion);
/// let res = rejection.into_response();
/// assert_eq!(res.status(), 426);
/// assert_eq!(res.headers()["sec-websocket-version"], "13");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WsRejection {
    /// `405 METHOD_NOT_ALLOWED` (with `Allow: GET, CONNECT`): not `GET` on HTTP/1.1, not
    /// `CONNECT` on HTTP/2.
    MethodNotAllowed,
    /// `426 Upgrade Required` (with `Upgrade: websocket`): an HTTP/1.x request without
    /// `Connection: upgrade` and `Upgrade: websocket` (or on HTTP/1.0).
    NotUpgradeRequest,
    /// `400 BAD_REQUEST`: an HTTP/2 `CONNECT` without `:protocol = websocket`.
    NotWebSocketConnect,
    /// `426 Upgrade Required` (with `Sec-WebSocket-Version: 13`, as RFC 6455 §4.2.2 asks): the
    /// version header is missing or not `13`.
    UnsupportedVersion,
    /// `400 BAD_REQUEST`: no `Sec-WebSocket-Key` (HTTP/1.1).
    KeyMissing,
    /// `400 BAD_REQUEST`: a `Sec-WebSocket-Key` that is not 16 bytes in base64.
    KeyInvalid,
    /// `500 INTERNAL`: the request carries no upgrade handle, because the server does not serve
    /// connections with upgrades enabled (hyper's `serve_connection_with_upgrades`; for HTTP/2
    /// also `http2().enable_connect_protocol()`), or the service was called outside a server.
    UpgradeUnavailable,
}

impl WsRejection {
    /// The status the refusal answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotUpgradeRequest | Self::UnsupportedVersion => StatusCode::UPGRADE_REQUIRED,
            Self::NotWebSocketConnect | Self::KeyMissing | Self::KeyInvalid => {
                StatusCode::BAD_REQUEST
            }
            Self::UpgradeUnavailable => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn details(&self) -> &'static str {
        match self {
            Self::MethodNotAllowed => {
                "a WebSocket handshake is a GET (HTTP/1.1) or an extended CONNECT (HTTP/2)"
            }
            Self::NotUpgradeRequest => {
                "this endpoint only speaks WebSocket: send Connection: upgrade and \
                 Upgrade: websocket"
            }
            Self::NotWebSocketConnect => "an HTTP/2 WebSocket CONNECT needs :protocol = websocket",
            Self::UnsupportedVersion => "only WebSocket version 13 is supported",
            Self::KeyMissing => "the Sec-WebSocket-Key header is missing",
            Self::KeyInvalid => "the Sec-WebSocket-Key header is not 16 bytes in base64",
            Self::UpgradeUnavailable => {
                "this connection cannot be upgraded: the server must serve connections with \
                 upgrades enabled (hyper's serve_connection_with_upgrades; for HTTP/2 also \
                 enable_connect_protocol)"
            }
        }
    }

    /// The JSON error response, with the headers the status calls for.
    pub fn into_response(self) -> Response<Body> {
        let err = match self {
            Self::MethodNotAllowed => Error::method_not_allowed(&[Method::GET, Method::CONNECT]),
            Self::UpgradeUnavailable => Error::new(ErrorCode::Internal, self.details())
                .with_message("WebSocket upgrade unavailable"),
            Self::NotUpgradeRequest | Self::UnsupportedVersion => {
                Error::new(ErrorCode::BadRequest, self.details())
                    .with_status(self.status())
                    .with_message("Upgrade required")
            }
            _ => Error::bad_request(self.details()),
        };
        let mut res = err.into_response();
        match self {
            Self::NotUpgradeRequest => {
                let headers = res.headers_mut();
                headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
                headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
            }
            Self::UnsupportedVersion => {
                res.headers_mut()
                    .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            }
            _ => {}
        }
        res
    }
}

impl fmt::Display for WsRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.details())
    }
}

impl std::error::Error for WsRejection {}

#[cfg(test)]
mod tests {
    use super::*;

    fn h1() -> http::request::Builder {
        Request::get("/ws")
            .header("connection", "keep-alive, Upgrade")
            .header("upgrade", "WebSocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    }

    fn reject(req: http::request::Builder) -> WsRejection {
        let mut req = req.body(()).unwrap();
        WsUpgrade::from_request(&mut req).unwrap_err()
    }

    #[test]
    fn a_good_http1_handshake_only_lacks_the_server_upgrade_handle() {
        assert_eq!(reject(h1()), WsRejection::UpgradeUnavailable);
        assert_eq!(WsRejection::UpgradeUnavailable.status(), 500);
    }

    #[test]
    fn each_bad_http1_handshake_has_its_own_rejection() {
        assert_eq!(
            reject(h1().method(Method::POST)),
            WsRejection::MethodNotAllowed
        );
        assert_eq!(reject(Request::get("/ws")), WsRejection::NotUpgradeRequest);
        assert_eq!(
            reject(h1().version(Version::HTTP_10)),
            WsRejection::NotUpgradeRequest
        );
        let mut req = h1().body(()).unwrap();
        req.headers_mut().remove("sec-websocket-key");
        assert_eq!(
            WsUpgrade::from_request(&mut req).unwrap_err(),
            WsRejection::KeyMissing
        );
        let mut req = h1().body(()).unwrap();
        req.headers_mut()
            .insert("sec-websocket-key", HeaderValue::from_static("c2hvcnQ="));
        assert_eq!(
            WsUpgrade::from_request(&mut req).unwrap_err(),
            WsRejection::KeyInvalid
        );
        let mut req = h1().body(()).unwrap();
        req.headers_mut().remove("sec-websocket-version");
        assert_eq!(
            WsUpgrade::from_request(&mut req).unwrap_err(),
            WsRejection::UnsupportedVersion
        );
    }

    #[test]
    fn http2_needs_an_extended_connect() {
        let get = Request::get("/ws")
            .version(Version::HTTP_2)
            .header("sec-websocket-version", "13");
        assert_eq!(reject(get), WsRejection::MethodNotAllowed);
        let plain_connect = Request::builder()
            .method(Method::CONNECT)
            .uri("/ws")
            .version(Version::HTTP_2)
            .header("sec-websocket-version", "13");
        assert_eq!(reject(plain_connect), WsRejection::NotWebSocketConnect);
        let ws_connect = Request::builder()
            .method(Method::CONNECT)
            .uri("/ws")
            .version(Version::HTTP_2)
            .header("sec-websocket-version", "13")
            .extension(hyper::ext::Protocol::from_static("websocket"));
        assert_eq!(reject(ws_connect), WsRejection::UpgradeUnavailable);
    }

    #[test]
    fn rejections_carry_the_headers_their_status_needs() {
        let res = WsRejection::MethodNotAllowed.into_response();
        assert_eq!(res.status(), 405);
        assert_eq!(res.headers()["allow"], "GET, CONNECT");
        let res = WsRejection::NotUpgradeRequest.into_response();
        assert_eq!(res.status(), 426);
        assert_eq!(res.headers()["upgrade"], "websocket");
        let res = WsRejection::UnsupportedVersion.into_response();
        assert_eq!(res.headers()["sec-websocket-version"], "13");
        assert_eq!(res.headers()["content-type"], "application/json");
    }

    #[test]
    fn accept_key_is_the_rfc_example() {
        // RFC 6455 §1.3.
        assert_eq!(
            derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
