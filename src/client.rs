//! The upstream HTTP client: a tower [`Service`] over hyper-util's pooled client with rustls.
//!
//! [`HttpClient`] takes `http::Request<Full<Bytes>>` and answers `http::Response<Body>`, so the
//! retry and fallback layers wrap it like any other service, and tests hand the upstreams a client
//! pointed at a wiremock server. It speaks HTTPS (webpki roots, the `ring` provider chosen
//! explicitly so a second rustls provider elsewhere in the build cannot make it panic) and plain
//! HTTP, keeps connections pooled (with a timer, so idle ones really close), bounds the time to
//! connect and the time until the answer's headers, and strips hop-by-hop headers both ways.
//!
//! Failures are [`Error`]s: `BACKEND_UNREACHABLE` (connect refused, reset, TLS) and
//! `BACKEND_TIMEOUT`; [`Error::is_connect`] tells whether the request never left.
//!
//! ```
//! use chatkit_tower::client::HttpClient;
//! use std::time::Duration;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let client = HttpClient::builder()
//!     .connect_timeout(Duration::from_secs(2))
//!     .response_timeout(Duration::from_secs(10))
//!     .build();
//! # });
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName};
use http::{Request, Response};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::body::Body;
use crate::error::{Error, ErrorCode};

/// Default time allowed to open a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time allowed until the upstream's answer headers arrive.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(15);

/// A pooled HTTP/1.1 + HTTP/2 client over rustls; cheap to clone (clones share the pool).
#[derive(Clone)]
pub struct HttpClient {
    /// Shared: hyper-util's client is a dozen fields to clone, and layers such as retry clone
    /// their inner service for every request.
    client: Arc<Client<HttpsConnector<HttpConnector>, Full<Bytes>>>,
    response_timeout: Option<Duration>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("response_timeout", &self.response_timeout)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client with the default timeouts (connect 5 s, answer 15 s). Must be called inside a
    /// tokio runtime (the pool's timer is tokio's).
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Settings for a client.
    pub fn builder() -> HttpClientBuilder {
        HttpClientBuilder {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: Some(DEFAULT_RESPONSE_TIMEOUT),
            pool_idle_timeout: Duration::from_secs(90),
            https_only: false,
        }
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

/// Settings for an [`HttpClient`].
#[derive(Debug, Clone)]
#[must_use]
pub struct HttpClientBuilder {
    connect_timeout: Duration,
    response_timeout: Option<Duration>,
    pool_idle_timeout: Duration,
    https_only: bool,
}

impl HttpClientBuilder {
    /// Time allowed to open a connection (TCP and TLS). Default 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed from sending the request until the answer's headers arrive. Default 15 s.
    /// The body is not covered: a stream may run as long as it keeps sending.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = Some(timeout);
        self
    }

    /// No answer timeout of the client's own: for callers that bound the whole exchange
    /// themselves (the session upstreams do), which saves a timer per request.
    pub fn no_response_timeout(mut self) -> Self {
        self.response_timeout = None;
        self
    }

    /// How long an idle pooled connection is kept. Default 90 s.
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// Refuse plain `http://` upstreams. Off by default (local backends and tests use HTTP).
    pub fn https_only(mut self, https_only: bool) -> Self {
        self.https_only = https_only;
        self
    }

    /// Build the client. Must be called inside a tokio runtime.
    pub fn build(self) -> HttpClient {
        let connector = https_connector(self.connect_timeout, self.https_only, true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(self.pool_idle_timeout)
            .build(connector);
        HttpClient {
            client: Arc::new(client),
            response_timeout: self.response_timeout,
        }
    }
}

impl Service<Request<Full<Bytes>>> for HttpClient {
    type Response = Response<Body>;
    type Error = Error;
    type Future = ResponseFuture;

    #[inline]
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Full<Bytes>>) -> ResponseFuture {
        strip_hop_by_hop(req.headers_mut());
        ResponseFuture {
            inner: self.client.request(req),
            deadline: self.response_timeout.map(tokio::time::sleep),
            timeout: self.response_timeout.unwrap_or_default(),
        }
    }
}

pin_project! {
    /// The response future of [`HttpClient`].
    pub struct ResponseFuture {
        #[pin]
        inner: hyper_util::client::legacy::ResponseFuture,
        #[pin]
        deadline: Option<tokio::time::Sleep>,
        timeout: Duration,
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<Body>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = match this.inner.poll(cx) {
            Poll::Ready(result) => result,
            Poll::Pending => {
                if let Some(deadline) = this.deadline.as_pin_mut() {
                    ready!(deadline.poll(cx));
                    return Poll::Ready(Err(Error::new(
                        ErrorCode::BackendTimeout,
                        format!(
                            "the backend did not answer within {} ms",
                            this.timeout.as_millis()
                        ),
                    )));
                }
                return Poll::Pending;
            }
        };
        Poll::Ready(match result {
            Err(err) => Err(transport_error(err)),
            Ok(mut res) => {
                strip_hop_by_hop(res.headers_mut());
                Ok(res.map(Body::new))
            }
        })
    }
}

/// The TLS-or-plain connector both upstream clients use: webpki roots, the `ring` provider
/// chosen explicitly (so a second rustls provider elsewhere in the build cannot make it panic),
/// `TCP_NODELAY`, a connect timeout; HTTP/2 offered through ALPN when `http2`.
pub(crate) fn https_connector(
    connect_timeout: Duration,
    https_only: bool,
    http2: bool,
) -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .unwrap_or_else(|_| {
            // The ring provider supports the default protocol versions; this branch only
            // exists because the builder's signature is fallible.
            hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots()
        });
    let builder = if https_only {
        builder.https_only()
    } else {
        builder.https_or_http()
    };
    if http2 {
        builder.enable_http1().enable_http2().wrap_connector(http)
    } else {
        builder.enable_http1().wrap_connector(http)
    }
}

/// Map a hyper-util client error to `BACKEND_UNREACHABLE` / `BACKEND_TIMEOUT`, with words taken
/// from the innermost I/O error (never the URL, which may hold credentials).
fn transport_error(err: hyper_util::client::legacy::Error) -> Error {
    let io_kind = {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        let mut kind = None;
        while let Some(e) = source {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                kind = Some(io.kind());
            }
            source = e.source();
        }
        kind
    };
    if err.is_connect() {
        let error = if io_kind == Some(std::io::ErrorKind::TimedOut) {
            Error::new(
                ErrorCode::BackendTimeout,
                "connecting to the backend timed out",
            )
        } else {
            let why = match io_kind {
                Some(std::io::ErrorKind::ConnectionRefused) => "connection refused".to_owned(),
                Some(kind) => kind.to_string(),
                None => "connect failed".to_owned(),
            };
            Error::new(
                ErrorCode::BackendUnreachable,
                format!("could not connect to the backend ({why})"),
            )
        };
        return error.connect_failure().with_source(err);
    }
    let why = match io_kind {
        Some(kind) => kind.to_string(),
        None => "the connection closed".to_owned(),
    };
    Error::new(
        ErrorCode::BackendUnreachable,
        format!("the connection to the backend failed before it answered ({why})"),
    )
    .with_source(err)
}

/// Remove hop-by-hop headers (RFC 9110 §7.6.1), including any named by `Connection`.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none: one pass over the names, no hashing.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TE
        || name == header::TRAILER
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == header::PROXY_AUTHORIZATION
        || name == header::PROXY_AUTHENTICATE
        || name == "keep-alive"
        || name == "proxy-connection"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert("connection", "keep-alive, x-custom-hop".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("x-custom-hop", "1".parse().unwrap());
        h.insert("transfer-encoding", "chunked".parse().unwrap());
        h.insert("content-type", "application/json".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("content-type"));
    }
}
