//! [`StreamClient`]: the stream upstream's HTTP client, one connection per stream, driven by the
//! response body itself.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, HOST};
use http::{Request, Response, Uri};
use http_body::{Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tower::ServiceExt;
use tower_service::Service;

use crate::client::{
    https_connector, strip_hop_by_hop, DEFAULT_CONNECT_TIMEOUT, DEFAULT_RESPONSE_TIMEOUT,
};
use crate::error::{BoxError, Error, ErrorCode};
use crate::BoxFuture;

type Io = MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;
type Connection = http1::Connection<Io, Full<Bytes>>;

/// The HTTP client [`StreamBackend`](super::StreamBackend) uses by default: each request gets
/// its own HTTP/1.1 connection (plain or TLS), and the connection is driven by the response
/// body, inside the task that writes to the browser.
///
/// Why not the pooled [`HttpClient`](crate::client::HttpClient)? A pooled client runs each
/// connection in a task of its own, which hands the body over one chunk at a time: one task
/// switch, one wake-up and one write to the browser per event, however many events have
/// already arrived. Driven from the body, every chunk that has arrived is decoded within one
/// poll, so a burst of events leaves in one write (see `BENCHMARKS.md`, "Stream": about a tenth
/// of the CPU per event). The price is a new connection (and TLS handshake) per stream; pass an
/// `HttpClient` to [`StreamBackendBuilder::build_with_client`](super::StreamBackendBuilder::build_with_client)
/// to pool connections instead.
///
/// Dropping the response body closes the connection at once; nothing is spawned.
///
/// ```
/// use chatkit_tower::sse::StreamClient;
/// use std::time::Duration;
///
/// let client = StreamClient::builder()
///     .connect_timeout(Duration::from_secs(2))
///     .response_timeout(Duration::from_secs(10))
///     .build();
/// ```
#[derive(Clone)]
pub struct StreamClient {
    connector: HttpsConnector<HttpConnector>,
    response_timeout: Duration,
}

impl fmt::Debug for StreamClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamClient")
            .field("response_timeout", &self.response_timeout)
            .finish_non_exhaustive()
    }
}

impl StreamClient {
    /// A client with the default timeouts (connect 5 s, answer headers 15 s).
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Settings for a client.
    pub fn builder() -> StreamClientBuilder {
        StreamClientBuilder {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            https_only: false,
        }
    }
}

impl Default for StreamClient {
    fn default() -> Self {
        Self::new()
    }
}

/// Settings for a [`StreamClient`].
#[derive(Debug, Clone)]
#[must_use]
pub struct StreamClientBuilder {
    connect_timeout: Duration,
    response_timeout: Duration,
    https_only: bool,
}

impl StreamClientBuilder {
    /// Time allowed to open a connection (TCP). Default 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed from the start of the request until the answer's headers arrive (connect
    /// and TLS included). Default 15 s. The body is not covered.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Refuse plain `http://` upstreams. Off by default.
    pub fn https_only(mut self, https_only: bool) -> Self {
        self.https_only = https_only;
        self
    }

    /// Build the client.
    pub fn build(self) -> StreamClient {
        // HTTP/1.1 only: that is the connection this client knows how to drive.
        let connector = https_connector(self.connect_timeout, self.https_only, false);
        StreamClient {
            connector,
            response_timeout: self.response_timeout,
        }
    }
}

impl Service<Request<Full<Bytes>>> for StreamClient {
    type Response = Response<StreamClientBody>;
    type Error = Error;
    type Future = StreamClientFuture;

    #[inline]
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Full<Bytes>>) -> StreamClientFuture {
        let connector = self.connector.clone();
        let timeout = self.response_timeout;
        StreamClientFuture {
            inner: Box::pin(async move {
                match tokio::time::timeout(timeout, exchange(connector, req)).await {
                    Ok(result) => result,
                    Err(_) => Err(Error::new(
                        ErrorCode::BackendTimeout,
                        format!(
                            "the backend did not answer within {} ms",
                            timeout.as_millis()
                        ),
                    )),
                }
            }),
        }
    }
}

/// Connect, send the request, and drive the connection until the answer's headers arrive.
async fn exchange(
    connector: HttpsConnector<HttpConnector>,
    mut req: Request<Full<Bytes>>,
) -> Result<Response<StreamClientBody>, Error> {
    let uri = req.uri().clone();
    let io = connector
        .oneshot(uri.clone())
        .await
        .map_err(connect_error)?;
    let (mut sender, conn) = http1::handshake(io).await.map_err(broken)?;

    // HTTP/1.1 on a connection of our own: origin-form target and a Host header.
    strip_hop_by_hop(req.headers_mut());
    if let Some(authority) = uri.authority() {
        if !req.headers().contains_key(HOST) {
            let host = HeaderValue::from_str(authority.as_str())
                .map_err(|_| Error::internal("the backend's host is not a valid header"))?;
            req.headers_mut().insert(HOST, host);
        }
    }
    *req.uri_mut() = uri
        .path_and_query()
        .map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone()));

    let mut conn = Some(conn);
    let mut answer = std::pin::pin!(sender.send_request(req));
    let res = std::future::poll_fn(|cx| {
        drive(&mut conn, cx);
        answer.as_mut().poll(cx)
    })
    .await
    .map_err(broken)?;
    let (mut parts, body) = res.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, StreamClientBody { conn, body }))
}

/// Let the connection read, decode and write what it can; forget it once it is finished (its
/// errors reach the body).
fn drive(conn: &mut Option<Connection>, cx: &mut Context<'_>) {
    if let Some(c) = conn {
        if Pin::new(c).poll(cx).is_ready() {
            *conn = None;
        }
    }
}

fn connect_error(err: BoxError) -> Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&*err);
    let mut kind = None;
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            kind = Some(io.kind());
        }
        source = e.source();
    }
    let error = match kind {
        Some(std::io::ErrorKind::TimedOut) => Error::new(
            ErrorCode::BackendTimeout,
            "connecting to the backend timed out",
        ),
        Some(std::io::ErrorKind::ConnectionRefused) => Error::new(
            ErrorCode::BackendUnreachable,
            "could not connect to the backend (connection refused)",
        ),
        Some(kind) => Error::new(
            ErrorCode::BackendUnreachable,
            format!("could not connect to the backend ({kind})"),
        ),
        None => Error::new(
            ErrorCode::BackendUnreachable,
            "could not connect to the backend",
        ),
    };
    error.connect_failure().with_source(err)
}

fn broken(err: hyper::Error) -> Error {
    Error::new(
        ErrorCode::BackendUnreachable,
        "the connection to the backend failed before it answered",
    )
    .with_source(err)
}

/// The response future of [`StreamClient`].
pub struct StreamClientFuture {
    inner: BoxFuture<'static, Result<Response<StreamClientBody>, Error>>,
}

impl fmt::Debug for StreamClientFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamClientFuture").finish_non_exhaustive()
    }
}

impl Future for StreamClientFuture {
    type Output = Result<Response<StreamClientBody>, Error>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

/// The answer body of [`StreamClient`]: it owns the connection and drives it whenever the
/// body has nothing ready, so every chunk that has arrived can be taken in one poll. Dropping
/// it closes the connection.
pub struct StreamClientBody {
    conn: Option<Connection>,
    body: Incoming,
}

impl fmt::Debug for StreamClientBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamClientBody")
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl http_body::Body for StreamClientBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(broke_off)));
        }
        if this.conn.is_none() {
            return Poll::Pending;
        }
        drive(&mut this.conn, cx);
        Pin::new(&mut this.body)
            .poll_frame(cx)
            .map(|frame| frame.map(|r| r.map_err(broke_off)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

fn broke_off(err: hyper::Error) -> Error {
    Error::new(
        ErrorCode::BackendUnreachable,
        "the backend's stream broke off before it was complete",
    )
    .with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn refused_connections_are_connect_failures() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let req = Request::post(format!("http://127.0.0.1:{port}/api/stream"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let err = StreamClient::new().oneshot(req).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::BackendUnreachable);
        assert!(err.is_connect());
    }

    #[tokio::test]
    async fn origin_form_target_and_host_header_are_sent() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = tcp.read(&mut buf).await.unwrap();
                head.extend_from_slice(&buf[..n]);
            }
            tcp.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8(head).unwrap()
        });
        let req = Request::post(format!("http://{addr}/api/stream?a=1"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let res = tokio::time::timeout(Duration::from_secs(10), StreamClient::new().oneshot(req))
            .await
            .unwrap()
            .unwrap();
        assert!(res.headers().get("transfer-encoding").is_none());
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "hello");
        let head = server.await.unwrap();
        assert!(
            head.starts_with("POST /api/stream?a=1 HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(
            head.to_ascii_lowercase().contains(&format!("host: {addr}")),
            "{head}"
        );
    }
}
