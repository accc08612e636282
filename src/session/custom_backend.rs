use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::FutureExt;
use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{Request, Response};
use http_body_util::Full;
use serde_json::{Map, Value};
use tower_service::Service;

use super::exchange::{exchange, failure, json_object};
use super::{BoxFuture, SessionRequest, UpstreamSession};
use crate::client::{HttpClient, DEFAULT_RESPONSE_TIMEOUT};
use crate::error::{BoxError, ConfigError, Error, ErrorCode};

/// The seed's custom backend as a session upstream:
/// `POST {CUSTOM_BACKEND_URL}/api/sessions?user_id=…` with `Authorization: Bearer
/// {CUSTOM_BACKEND_KEY}` and the JSON body `{user_id, model?, metadata?}`; it answers
/// `{session_id, expires_at?, model?}`.
///
/// The user id goes both in the body and in the query string, so backends written like the
/// seed's FastAPI template (query) and its Express template (body) both work. It is always the
/// authenticated user's.
///
/// Generic over the HTTP service `S` (an [`HttpClient`] by default), so retry and fallback layers
/// wrap it and tests point it at a mock server.
///
/// ```
/// use chatkit_tower::session::CustomBackend;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let backend = CustomBackend::builder("https://api.example.com", "backend-key")
///     .build()
///     .unwrap();
///
/// assert!(CustomBackend::builder("not a url", "key").build().is_err());
/// # });
/// ```
pub struct CustomBackend<S = HttpClient> {
    inner: Arc<Inner<S>>,
}

struct Inner<S> {
    endpoint: String,
    authorization: HeaderValue,
    key: String,
    client: S,
    timeout: Duration,
}

impl<S> Clone for CustomBackend<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S> fmt::Debug for CustomBackend<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomBackend")
            .field("endpoint", &self.inner.endpoint)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl CustomBackend {
    /// Settings for the backend at `base_url` (scheme and host, optionally a path prefix),
    /// called with the bearer key `key`.
    pub fn builder(base_url: impl Into<String>, key: impl Into<String>) -> CustomBackendBuilder {
        CustomBackendBuilder {
            base_url: base_url.into(),
            key: key.into(),
            path: "/api/sessions".into(),
            timeout: DEFAULT_RESPONSE_TIMEOUT,
        }
    }
}

/// Settings for a [`CustomBackend`].
#[must_use]
pub struct CustomBackendBuilder {
    base_url: String,
    key: String,
    path: String,
    timeout: Duration,
}

impl fmt::Debug for CustomBackendBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomBackendBuilder")
            .field("base_url", &self.base_url)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl CustomBackendBuilder {
    /// The session path under the base URL. Default `/api/sessions`.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Time allowed for the whole upstream exchange, answer body included. Default 15 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Build with a default [`HttpClient`] (the backend's timeout bounds the whole exchange).
    pub fn build(self) -> Result<CustomBackend<HttpClient>, ConfigError> {
        let client = HttpClient::builder().no_response_timeout().build();
        self.build_with_client(client)
    }

    /// Build sending requests through `client`: an [`HttpClient`] with other settings, one
    /// wrapped in retry / fallback layers, or any service of `http::Request<Full<Bytes>>`.
    pub fn build_with_client<S>(self, client: S) -> Result<CustomBackend<S>, ConfigError>
    where
        S: Service<Request<Full<Bytes>>> + Clone + Send + Sync + 'static,
    {
        let (endpoint, authorization) = self.parts()?;
        Ok(CustomBackend {
            inner: Arc::new(Inner {
                endpoint,
                authorization,
                key: self.key.trim().to_owned(),
                client,
                timeout: self.timeout,
            }),
        })
    }

    /// Check the settings without building.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        self.parts().map(|_| ())
    }

    fn parts(&self) -> Result<(String, HeaderValue), ConfigError> {
        let endpoint = join_url(&self.base_url, &self.path, "CUSTOM_BACKEND_URL")?;
        Ok((endpoint, bearer_header(&self.key, "CUSTOM_BACKEND_KEY")?))
    }
}

/// `Authorization: Bearer {key}` for an upstream, marked sensitive (kept out of HPACK tables
/// and `Debug`); an empty key or one a header cannot carry is an error naming `variable`.
pub(crate) fn bearer_header(key: &str, variable: &'static str) -> Result<HeaderValue, ConfigError> {
    let key = key.trim();
    if key.is_empty() {
        return Err(ConfigError::variable(variable, "the key is empty"));
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
        ConfigError::variable(variable, "the key holds characters a header cannot carry")
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// `base` + `path`, checked: `http(s)://host[:port][/prefix]`, no query.
pub(crate) fn join_url(
    base: &str,
    path: &str,
    variable: &'static str,
) -> Result<String, ConfigError> {
    let bad = |why: &str| ConfigError::variable(variable, format!("{base:?} {why}"));
    let uri: http::Uri = base.trim().parse().map_err(|_| bad("is not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("must start with http:// or https://")),
    }
    if uri.authority().is_none() {
        return Err(bad("has no host"));
    }
    if uri.query().is_some() {
        return Err(bad("must not have a query string"));
    }
    let joined = format!(
        "{}/{}",
        base.trim().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    match joined.parse::<http::Uri>() {
        Ok(uri) if uri.query().is_none() => Ok(joined),
        _ => Err(bad("cannot be joined with the path")),
    }
}

impl<S, B> Service<SessionRequest> for CustomBackend<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = UpstreamSession;
    type Error = Error;
    type Future = BoxFuture<'static, Result<UpstreamSession, Error>>;

    #[inline]
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: SessionRequest) -> Self::Future {
        let upstream_req = match self.inner.request(&req) {
            Ok(upstream_req) => upstream_req,
            Err(err) => return Box::pin(std::future::ready(Err(err))),
        };
        tracing::debug!(endpoint = %self.inner.endpoint, user = req.user.id(), "creating backend session");
        let inner = self.inner.clone();
        let exchange = exchange(inner.client.clone(), upstream_req, inner.timeout);
        Box::pin(exchange.map(move |result| {
            let result = result.and_then(|(parts, body)| {
                if !parts.status.is_success() {
                    return Err(failure(
                        "the backend",
                        &parts,
                        &body,
                        &inner.key,
                        "CUSTOM_BACKEND_KEY",
                    ));
                }
                session_from(&parts, &body)
            });
            if let Err(err) = &result {
                tracing::debug!(error = %err, "backend session failed");
            }
            result
        }))
    }
}

impl<S> Inner<S> {
    fn request(&self, req: &SessionRequest) -> Result<Request<Full<Bytes>>, Error> {
        let body = serde_json::to_vec(&BackendRequest {
            user_id: req.user.id(),
            model: req.model.as_deref(),
            metadata: req.metadata.as_ref(),
        })
        .map_err(|e| Error::internal("the session request could not be encoded").with_source(e))?;
        let mut uri = String::with_capacity(self.endpoint.len() + 9 + req.user.id().len());
        uri.push_str(&self.endpoint);
        uri.push('?');
        let uri = form_urlencoded::Serializer::for_suffix(uri, self.endpoint.len() + 1)
            .append_pair("user_id", req.user.id())
            .finish();
        let uri = http::Uri::try_from(uri).map_err(|e| {
            Error::internal("the session request could not be built").with_source(e)
        })?;
        let mut request = Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.reserve(4);
        headers.insert(AUTHORIZATION, self.authorization.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        Ok(request)
    }
}

/// The kit's `User-Agent` toward upstreams.
pub(crate) const USER_AGENT_VALUE: &str = concat!("chatkit-tower/", env!("CARGO_PKG_VERSION"));

/// What the kit sends the backend: `{user_id, model?, metadata?}`.
#[derive(serde::Serialize)]
struct BackendRequest<'a> {
    user_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Map<String, Value>>,
}

/// The fields the kit reads from the backend's answer; any others are ignored. A JSON `null`
/// counts as absent.
#[derive(serde::Deserialize)]
struct BackendAnswer {
    session_id: Option<Value>,
    client_secret: Option<Value>,
    expires_at: Option<Value>,
    model: Option<Value>,
}

/// `{session_id, expires_at?, model?}` → the session (a `client_secret` field is accepted in
/// place of `session_id`).
fn session_from(parts: &http::response::Parts, body: &[u8]) -> Result<UpstreamSession, Error> {
    // An object is read straight into the four fields, without building a map of every key.
    // Anything else (or an object serde refuses as a struct, such as one with a repeated key)
    // takes the general path, which also words the error.
    let is_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let answer = match is_object.then(|| serde_json::from_slice::<BackendAnswer>(body)) {
        Some(Ok(answer)) => answer,
        _ => {
            let mut map = json_object(parts, body)?;
            let mut take = |key: &str| map.remove(key).filter(|v| !v.is_null());
            BackendAnswer {
                session_id: take("session_id"),
                client_secret: take("client_secret"),
                expires_at: take("expires_at"),
                model: take("model"),
            }
        }
    };
    let session_id = match answer.session_id.or(answer.client_secret) {
        Some(Value::String(id)) if !id.is_empty() => id,
        _ => {
            return Err(Error::new(
                ErrorCode::SessionError,
                "the backend's answer has no session_id",
            ))
        }
    };
    let mut session = UpstreamSession::backend(session_id);
    if let Some(expires_at) = answer.expires_at {
        session = session.with_expires_at(expires_at);
    }
    if let Some(Value::String(model)) = answer.model {
        session = session.with_model(model);
    }
    session.request_id = parts.headers.get("x-request-id").cloned();
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: &str) -> Result<UpstreamSession, Error> {
        let (parts, ()) = Response::builder()
            .header(CONTENT_TYPE, "application/json")
            .body(())
            .unwrap()
            .into_parts();
        session_from(&parts, body.as_bytes())
    }

    #[test]
    fn backend_answers_are_read_by_field_whatever_else_they_hold() {
        let s = answer(r#" {"extra": {"deep": [1, {"x": null}]}, "session_id": "s1", "expires_at": 1700000000, "model": "m"}"#).unwrap();
        assert_eq!(s.session_id, "s1");
        assert_eq!(s.expires_at, Some(serde_json::json!(1700000000)));
        assert_eq!(s.model.as_deref(), Some("m"));
        // `client_secret` stands in for `session_id`; null fields are absent.
        let s = answer(r#"{"client_secret": "c1", "expires_at": null, "model": null}"#).unwrap();
        assert_eq!(
            (s.session_id.as_str(), s.expires_at, s.model),
            ("c1", None, None)
        );
        // A repeated key: the last one counts, as in any JSON object reader.
        assert_eq!(
            answer(r#"{"session_id": "a", "session_id": "b"}"#)
                .unwrap()
                .session_id,
            "b"
        );
        // Not an object, or no usable id: SESSION_ERROR saying which.
        for (body, says) in [
            (r#"["s1", null]"#, "not a JSON object"),
            ("not json", "not a JSON object"),
            (r#"{"session_id": 5}"#, "no session_id"),
            (r#"{"session_id": ""}"#, "no session_id"),
            (r#"{}"#, "no session_id"),
        ] {
            let err = answer(body).unwrap_err();
            assert_eq!(err.code(), ErrorCode::SessionError, "{body}");
            assert!(err.details().contains(says), "{body}: {}", err.details());
        }
    }

    #[test]
    fn urls_are_joined_and_checked() {
        assert_eq!(
            join_url(
                "https://api.example.com/",
                "/api/sessions",
                "CUSTOM_BACKEND_URL"
            )
            .unwrap(),
            "https://api.example.com/api/sessions"
        );
        assert_eq!(
            join_url(
                "http://127.0.0.1:8000/v2",
                "api/sessions",
                "CUSTOM_BACKEND_URL"
            )
            .unwrap(),
            "http://127.0.0.1:8000/v2/api/sessions"
        );
        for bad in ["", "api.example.com", "ftp://x", "https://x/?a=1"] {
            let err = join_url(bad, "/api/sessions", "CUSTOM_BACKEND_URL").unwrap_err();
            assert_eq!(err.variable_name(), Some("CUSTOM_BACKEND_URL"), "{bad}");
        }
    }
}
