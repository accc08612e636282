//! [`Body`], the concrete response body of every service in the kit, and the one place request
//! bodies are read (always under a size limit).

use std::any::Any;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, LengthLimitError, Limited};

use crate::error::{BoxError, Error, ErrorCode};

/// The response body of every kit service: a boxed [`http_body::Body`] of [`Bytes`] whose error
/// is the concrete [`Error`].
///
/// A concrete error type (not `Box<dyn Error>`) keeps the body usable inside `tokio::spawn`ed
/// hyper connections and axum routers without higher-ranked lifetime errors.
///
/// ```
/// use chatkit_tower::Body;
/// use http_body_util::BodyExt;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let body = Body::from("hello");
/// let bytes = body.collect().await.unwrap().to_bytes();
/// assert_eq!(bytes, "hello");
/// # });
/// ```
pub struct Body(UnsyncBoxBody<Bytes, Error>);

impl Body {
    /// Wrap any body whose chunks are [`Bytes`]. A `Body` passed in is returned as it is, not
    /// boxed twice.
    pub fn new<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let mut slot = Some(body);
        if let Some(already) = (&mut slot as &mut dyn Any).downcast_mut::<Option<Body>>() {
            if let Some(body) = already.take() {
                return body;
            }
        }
        match slot {
            Some(body) => Self(
                body.map_err(|e| Error::from_boxed(e.into(), ErrorCode::BackendUnreachable))
                    .boxed_unsync(),
            ),
            None => Self::empty(),
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self(Empty::new().map_err(|never| match never {}).boxed_unsync())
    }
}

impl Default for Body {
    fn default() -> Self {
        Self::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body").finish_non_exhaustive()
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Self(
            Full::new(bytes)
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Self::from(Bytes::from(s))
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Self::from(Bytes::from_static(s.as_bytes()))
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        Self::from(Bytes::from(v))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Error;

    #[inline]
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

/// Longest time a request body may take to arrive whole: a client dribbling bytes (slow loris)
/// is answered `408 REQUEST_TIMEOUT` instead of holding the request open.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Read a request body whole, refusing it with `413 PAYLOAD_TOO_LARGE` as soon as it passes
/// `limit` bytes (a declared `Content-Length` over the limit is refused before reading anything),
/// and with `408 REQUEST_TIMEOUT` if it takes longer than [`BODY_READ_TIMEOUT`].
pub(crate) async fn read_limited<B>(
    headers: &http::HeaderMap,
    body: B,
    limit: usize,
) -> Result<Bytes, Error>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    check_declared_length(headers, limit)?;
    read_body(body, limit).await
}

/// A declared `Content-Length` over `limit` is `413 PAYLOAD_TOO_LARGE`, before reading anything.
pub(crate) fn check_declared_length(headers: &http::HeaderMap, limit: usize) -> Result<(), Error> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large(limit));
    }
    Ok(())
}

fn too_large(limit: usize) -> Error {
    Error::new(
        ErrorCode::PayloadTooLarge,
        format!("the request body is over the {limit}-byte limit"),
    )
}

/// The body part of [`read_limited`], for a caller that has checked the headers already.
pub(crate) async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, Error>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let body = Limited::new(body, limit);
    // An empty body is complete already: no deadline (and no timer) needed.
    if http_body::Body::is_end_stream(&body) {
        return Ok(Bytes::new());
    }
    let collected = tokio::time::timeout(BODY_READ_TIMEOUT, body.collect())
        .await
        .map_err(|_| {
            Error::new(
                ErrorCode::RequestTimeout,
                format!(
                    "the request body did not arrive within {} s",
                    BODY_READ_TIMEOUT.as_secs()
                ),
            )
        })?;
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<LengthLimitError>() => Err(too_large(limit)),
        Err(err) => Err(Error::bad_request("the request body could not be read").with_source(err)),
    }
}

/// A JSON response with `Cache-Control: no-store` (answers here carry secrets).
pub(crate) fn json_response<T: serde::Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => json_bytes_response(status, bytes),
        Err(err) => Error::internal("the answer could not be encoded as JSON")
            .with_source(err)
            .into_response(),
    }
}

/// [`json_response`] for JSON already written.
pub(crate) fn json_bytes_response(status: StatusCode, json: Vec<u8>) -> Response<Body> {
    let mut res = Response::new(Body::from(json));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::channel::Channel;

    #[tokio::test]
    async fn body_is_not_boxed_twice() {
        let inner = Body::from("x");
        let outer = Body::new(inner);
        assert_eq!(outer.collect().await.unwrap().to_bytes(), "x");
    }

    #[tokio::test]
    async fn declared_length_over_limit_is_refused_without_reading() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_LENGTH,
            HeaderValue::from_static("100"),
        );
        let err = read_limited(&headers, Full::new(Bytes::from_static(b"short")), 10)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::PayloadTooLarge);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dribbling_body_is_cut_off_with_408() {
        let (mut tx, body) = Channel::<Bytes>::new(1);
        let feeder = tokio::spawn(async move {
            loop {
                if tx.send_data(Bytes::from_static(b" ")).await.is_err() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
        let err = read_limited(&http::HeaderMap::new(), body, 1024)
            .await
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::REQUEST_TIMEOUT);
        feeder.abort();
    }

    #[tokio::test]
    async fn undeclared_body_over_limit_is_413() {
        let body = Full::new(Bytes::from(vec![b'a'; 11]));
        let err = read_limited(&http::HeaderMap::new(), body, 10)
            .await
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let ok = read_limited(
            &http::HeaderMap::new(),
            Full::new(Bytes::from("1234567890")),
            10,
        )
        .await
        .unwrap();
        assert_eq!(ok.len(), 10);
    }
}
