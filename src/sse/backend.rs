//! [`StreamBackend`]: the custom backend's stream endpoint as the upstream of the stream service.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, USER_AGENT,
};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use tower::ServiceExt;
use tower_service::Service;

use super::body::set_stream_headers;
use super::client::StreamClient;
use super::proxy::{ProxyBody, ProxySettings};
use crate::body::Body;
use crate::client::DEFAULT_RESPONSE_TIMEOUT;
use crate::error::{BoxError, ConfigError, Error, ErrorCode};
use crate::token::SessionClaims;
use crate::BoxFuture;

/// The default stream path under the backend's base URL.
pub const DEFAULT_STREAM_PATH: &str = "/api/stream";
/// Most of an error answer read to quote it.
const MAX_ERROR_ANSWER: usize = 16 * 1024;

/// The backend session id, sent to the backend on every stream call.
pub const X_CHATKIT_SESSION: HeaderName = HeaderName::from_static("x-chatkit-session");
/// The user id, sent to the backend on every stream call.
pub const X_CHATKIT_USER: HeaderName = HeaderName::from_static("x-chatkit-user");
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// The seed's custom backend as the stream upstream: `POST {CUSTOM_BACKEND_URL}/api/stream`,
/// with the client's query string and body passed on unchanged (its `Content-Type`, `Accept`
/// and `Last-Event-ID` too), `Authorization: Bearer {CUSTOM_BACKEND_KEY}`,
/// [`X-ChatKit-Session`](X_CHATKIT_SESSION) (the backend session id sealed in the client
/// secret) and [`X-ChatKit-User`](X_CHATKIT_USER).
///
/// A 2xx answer streams back unchanged (status, content type and bytes). Anything else,
/// before the stream began, becomes the kit's JSON error: `UPSTREAM_ERROR` with the backend's
/// 4xx status (502 otherwise; 502 too when the backend refuses the server's own key with 401 or
/// 403), `RATE_LIMITED` for 429 with its `Retry-After`, `BACKEND_UNREACHABLE` or
/// `BACKEND_TIMEOUT` when the backend cannot be reached or its headers do not arrive within
/// the [timeout](StreamBackendBuilder::timeout).
///
/// Generic over the HTTP service `S`, like [`CustomBackend`](crate::session::CustomBackend).
/// The default, [`StreamClient`], opens a connection per stream and drives it from the
/// response body, so events that arrive together leave together; a pooled
/// [`HttpClient`](crate::client::HttpClient) works too, at several times the CPU per event.
///
/// ```
/// use chatkit_tower::sse::StreamBackend;
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let backend = StreamBackend::builder("https://api.example.com", "backend-key")
///     .path("/api/stream")
///     .timeout(Duration::from_secs(10))
///     .build()
///     .unwrap();
///
/// assert!(StreamBackend::builder("api.example.com", "key").build().is_err());
/// assert!(StreamBackend::builder("https://api.example.com", " ").build().is_err());
/// # });
/// ```
pub struct StreamBackend<S = StreamClient> {
    inner: Arc<Inner<S>>,
}

struct Inner<S> {
    endpoint: String,
    authorization: HeaderValue,
    key: String,
    client: S,
    timeout: Duration,
}

impl<S> Clone for StreamBackend<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S> fmt::Debug for StreamBackend<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamBackend")
            .field("endpoint", &self.inner.endpoint)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl StreamBackend {
    /// Settings for the backend at `base_url` (scheme and host, optionally a path prefix),
    /// called with the bearer key `key`.
    pub fn builder(base_url: impl Into<String>, key: impl Into<String>) -> StreamBackendBuilder {
        StreamBackendBuilder {
            base_url: base_url.into(),
            key: key.into(),
            path: DEFAULT_STREAM_PATH.into(),
            timeout: DEFAULT_RESPONSE_TIMEOUT,
        }
    }
}

/// Settings for a [`StreamBackend`].
#[must_use]
pub struct StreamBackendBuilder {
    base_url: String,
    key: String,
    path: String,
    timeout: Duration,
}

impl fmt::Debug for StreamBackendBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamBackendBuilder")
            .field("base_url", &self.base_url)
            .field("path", &self.path)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl StreamBackendBuilder {
    /// The stream path under the base URL. Default `/api/stream`.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Time allowed until the answer's headers arrive. Default 15 s. The stream itself has no
    /// total limit; the stream service's idle timeout ends it when the backend goes quiet.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Build with a default [`StreamClient`] whose answer timeout is this backend's timeout.
    pub fn build(self) -> Result<StreamBackend<StreamClient>, ConfigError> {
        self.check()?;
        let client = StreamClient::builder()
            .response_timeout(self.timeout)
            .build();
        self.build_with_client(client)
    }

    /// Build sending requests through `client`: a [`StreamClient`] with other settings, a
    /// pooled [`HttpClient`](crate::client::HttpClient), or any service of
    /// `http::Request<Full<Bytes>>`. Do not wrap it in a retry layer that retries after the
    /// answer began: a stream is never retried once bytes went to the client.
    pub fn build_with_client<S>(self, client: S) -> Result<StreamBackend<S>, ConfigError>
    where
        S: Service<Request<Full<Bytes>>> + Clone + Send + Sync + 'static,
    {
        let (endpoint, authorization) = self.parts()?;
        if self.timeout.is_zero() {
            return Err(ConfigError::new(
                "stream backend: the timeout must be above 0",
            ));
        }
        Ok(StreamBackend {
            inner: Arc::new(Inner {
                endpoint,
                authorization,
                key: self.key.trim().to_owned(),
                client,
                timeout: self.timeout,
            }),
        })
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.parts().map(|_| ())
    }

    fn parts(&self) -> Result<(String, HeaderValue), ConfigError> {
        let endpoint = crate::session::join_url(&self.base_url, &self.path, "CUSTOM_BACKEND_URL")?;
        Ok((
            endpoint,
            crate::session::bearer_header(&self.key, "CUSTOM_BACKEND_KEY")?,
        ))
    }
}

/// One stream request on its way to the upstream.
pub(crate) struct StreamCall {
    pub(crate) claims: SessionClaims,
    pub(crate) parts: http::request::Parts,
    pub(crate) body: Bytes,
    pub(crate) settings: ProxySettings,
}

/// A stream upstream with its types erased, so [`StreamService`](super::StreamService) stays
/// one concrete type.
pub(crate) trait OpenStream: Send + Sync + 'static {
    /// Send the call; answer the streaming response or the error to answer with.
    fn open(&self, call: StreamCall) -> BoxFuture<'static, Result<Response<Body>, Error>>;
}

impl<S, B> OpenStream for StreamBackend<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    fn open(&self, call: StreamCall) -> BoxFuture<'static, Result<Response<Body>, Error>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let request = inner.request(&call)?;
            let timeout = inner.timeout;
            let answer =
                async {
                    let res =
                        inner.client.clone().oneshot(request).await.map_err(|e| {
                            Error::from_boxed(e.into(), ErrorCode::BackendUnreachable)
                        })?;
                    if res.status().is_success() {
                        return Ok(Ok(res));
                    }
                    // Read a little of an error answer to say why, under the same deadline.
                    let (parts, body) = res.into_parts();
                    let body = Limited::new(body, MAX_ERROR_ANSWER)
                        .collect()
                        .await
                        .map(|c| c.to_bytes())
                        .unwrap_or_default();
                    Ok(Err(inner.refusal(&parts, &body)))
                };
            let res = match tokio::time::timeout(timeout, answer).await {
                Ok(Ok(Ok(res))) => res,
                Ok(Ok(Err(refusal))) | Ok(Err(refusal)) => {
                    tracing::debug!(error = %refusal, "the stream upstream refused");
                    return Err(refusal);
                }
                Err(_) => {
                    return Err(Error::new(
                        ErrorCode::BackendTimeout,
                        format!(
                            "the backend did not answer within {} ms",
                            timeout.as_millis()
                        ),
                    ))
                }
            };
            let (parts, body) = res.into_parts();
            let content_type = parts.headers.get(CONTENT_TYPE).cloned();
            let event_stream = content_type.as_ref().is_none_or(is_event_stream);
            let body = ProxyBody::new(body, &call.settings, event_stream);
            let mut out = Response::new(Body::new(body));
            *out.status_mut() = parts.status;
            set_stream_headers(out.headers_mut(), content_type);
            Ok(out)
        })
    }
}

fn is_event_stream(content_type: &HeaderValue) -> bool {
    content_type
        .as_bytes()
        .get(..17)
        .is_some_and(|t| t.eq_ignore_ascii_case(b"text/event-stream"))
}

impl<S> Inner<S> {
    fn request(&self, call: &StreamCall) -> Result<Request<Full<Bytes>>, Error> {
        let uri = match call.parts.uri.query() {
            Some(query) => format!("{}?{query}", self.endpoint),
            None => self.endpoint.clone(),
        };
        let header = |value: &str, what: &str| {
            HeaderValue::from_str(value).map_err(|_| {
                Error::internal(format!("the session's {what} cannot be sent in a header"))
            })
        };
        let mut session = header(&call.claims.session_id, "id")?;
        session.set_sensitive(true);
        let user = header(&call.claims.user_id, "user id")?;
        let client = &call.parts.headers;
        let mut req = Request::post(uri)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(X_CHATKIT_SESSION, session)
            .header(X_CHATKIT_USER, user)
            .header(
                ACCEPT,
                client
                    .get(ACCEPT)
                    .cloned()
                    .unwrap_or(HeaderValue::from_static("text/event-stream")),
            )
            .header(
                USER_AGENT,
                concat!("chatkit-tower/", env!("CARGO_PKG_VERSION")),
            );
        for name in [CONTENT_TYPE, LAST_EVENT_ID] {
            if let Some(value) = client.get(&name) {
                req = req.header(name, value.clone());
            }
        }
        req.body(Full::new(call.body.clone()))
            .map_err(|e| Error::internal("the stream request could not be built").with_source(e))
    }

    /// The error for a non-2xx answer that came before any stream.
    fn refusal(&self, parts: &http::response::Parts, body: &[u8]) -> Error {
        let status = parts.status;
        let quoted = self
            .quote(body)
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        match status {
            StatusCode::TOO_MANY_REQUESTS => {
                let err = Error::new(
                    ErrorCode::RateLimited,
                    format!("the backend is rate limiting streams{quoted}"),
                );
                match parts.headers.get(RETRY_AFTER) {
                    Some(v) => err.with_retry_after(v.clone()),
                    None => err,
                }
            }
            // Our own key being refused is a server problem, not the browser's credential.
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::new(
                ErrorCode::UpstreamError,
                format!(
                    "the backend refused the server's credentials ({}); check CUSTOM_BACKEND_KEY",
                    status.as_u16()
                ),
            ),
            s => {
                let err = Error::new(
                    ErrorCode::UpstreamError,
                    format!("the backend answered {}{quoted}", s.as_u16()),
                );
                if s.is_client_error() {
                    err.with_status(s)
                } else {
                    err
                }
            }
        }
    }

    /// The backend's own words from an error answer, shortened, never holding our key.
    fn quote(&self, body: &[u8]) -> Option<String> {
        crate::session::quote_upstream(body, &self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_urls_and_keys_are_config_errors_naming_the_variable() {
        let b = |url: &str, key: &str| StreamBackend::builder(url, key).path("/api/stream");
        let (endpoint, _) = b("http://127.0.0.1:8000/v2/", "k").parts().unwrap();
        assert_eq!(endpoint, "http://127.0.0.1:8000/v2/api/stream");
        for bad in ["", "localhost:8000", "ftp://x", "https://x/?a=1"] {
            let err = b(bad, "k").parts().unwrap_err();
            assert_eq!(err.variable_name(), Some("CUSTOM_BACKEND_URL"), "{bad}");
        }
        assert!(b("https://x", "k").path("/api/stream?a=1").parts().is_err());
        for key in ["", "  ", "bad\nkey"] {
            let err = b("https://x", key).parts().unwrap_err();
            assert_eq!(err.variable_name(), Some("CUSTOM_BACKEND_KEY"), "{key:?}");
        }
    }

    #[test]
    fn content_types() {
        assert!(is_event_stream(&HeaderValue::from_static(
            "text/event-stream"
        )));
        assert!(is_event_stream(&HeaderValue::from_static(
            "Text/Event-Stream; charset=utf-8"
        )));
        assert!(!is_event_stream(&HeaderValue::from_static("text/plain")));
    }

    #[tokio::test]
    async fn refusals_keep_client_statuses_and_never_quote_the_key() {
        let backend = StreamBackend::builder("http://127.0.0.1:1", "sekrit-key")
            .build()
            .unwrap();
        let parts = |status: u16| {
            let (parts, ()) = Response::builder()
                .status(status)
                .header(RETRY_AFTER, "7")
                .body(())
                .unwrap()
                .into_parts();
            parts
        };
        let inner = &backend.inner;
        let err = inner.refusal(&parts(404), br#"{"error": "no such thing, sekrit-key"}"#);
        assert_eq!(
            (err.code(), err.status().as_u16()),
            (ErrorCode::UpstreamError, 404)
        );
        assert_eq!(
            err.details(),
            "the backend answered 404: no such thing, [redacted]"
        );
        let err = inner.refusal(&parts(500), b"<html>oops</html>");
        assert_eq!(
            (err.code(), err.status().as_u16()),
            (ErrorCode::UpstreamError, 502)
        );
        for status in [401, 403] {
            let err = inner.refusal(&parts(status), b"");
            assert_eq!(err.status().as_u16(), 502);
            assert!(err.details().contains("CUSTOM_BACKEND_KEY"));
        }
        let err = inner.refusal(&parts(429), b"{}");
        assert_eq!(err.code(), ErrorCode::RateLimited);
        assert_eq!(err.retry_after().unwrap(), "7");
    }
}
