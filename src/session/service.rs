use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value};
use tower_service::Service;

use super::{SessionRequest, SessionUpstream};
use crate::auth::Principal;
use crate::body::{check_declared_length, json_bytes_response, read_body, Body};
use crate::error::{BoxError, ConfigError, Error, ErrorCode};
use crate::future::ResponseFuture;
use crate::token::{unix_now, SessionClaims, SessionKeys};

/// Default lifetime of a sealed client secret.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
const DEFAULT_BODY_LIMIT: usize = 16 * 1024;
const DEFAULT_METADATA_LIMIT: usize = 4 * 1024;
const MAX_MODEL_LEN: usize = 128;

/// `POST /api/custom/session`: the authenticated user → an upstream session → `200
/// {"client_secret", "expires_at", "model"?}`; see the [module docs](super).
///
/// Always ready, never fails at the tower level (every failure is a JSON response), cheap to
/// clone.
#[derive(Clone)]
pub struct SessionService {
    inner: Arc<Inner>,
}

struct Inner {
    upstream: Arc<dyn SessionUpstream>,
    sealing: Sealing,
    ttl: Duration,
    models: Vec<String>,
    body_limit: usize,
    metadata_limit: usize,
}

enum Sealing {
    Keys(SessionKeys),
    Passthrough,
}

impl fmt::Debug for SessionService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("ttl", &self.inner.ttl)
            .field("models", &self.inner.models)
            .field("sealed", &matches!(self.inner.sealing, Sealing::Keys(_)))
            .finish_non_exhaustive()
    }
}

impl SessionService {
    /// Settings for a session service answering from `upstream`.
    pub fn builder(upstream: impl SessionUpstream) -> SessionServiceBuilder {
        SessionServiceBuilder {
            upstream: Arc::new(upstream),
            keys: None,
            passthrough: false,
            ttl: DEFAULT_TTL,
            models: Vec::new(),
            body_limit: DEFAULT_BODY_LIMIT,
            metadata_limit: DEFAULT_METADATA_LIMIT,
        }
    }
}

/// Settings for a [`SessionService`].
#[must_use]
pub struct SessionServiceBuilder {
    upstream: Arc<dyn SessionUpstream>,
    keys: Option<SessionKeys>,
    passthrough: bool,
    ttl: Duration,
    models: Vec<String>,
    body_limit: usize,
    metadata_limit: usize,
}

impl fmt::Debug for SessionServiceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionServiceBuilder")
            .field("ttl", &self.ttl)
            .field("models", &self.models)
            .finish_non_exhaustive()
    }
}

impl SessionServiceBuilder {
    /// Seal backend session ids into client secrets signed with `keys` (required unless
    /// [`passthrough`](Self::passthrough)). The stream and WebSocket endpoints verify them with
    /// the same keys.
    pub fn keys(mut self, keys: SessionKeys) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Hand the backend's `session_id` to the browser unsealed, as the seed does, for backends
    /// that verify their own tokens.
    pub fn passthrough(mut self) -> Self {
        self.passthrough = true;
        self
    }

    /// Longest life of a client secret; a backend expiry that is later is cut to it. Default 1 h.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The models a client may ask for. Empty (the default) lets any model through to the
    /// upstream, which then decides.
    pub fn models<I, M>(mut self, models: I) -> Self
    where
        I: IntoIterator<Item = M>,
        M: Into<String>,
    {
        self.models = models.into_iter().map(Into::into).collect();
        self
    }

    /// Largest request body. Default 16 KiB.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Largest `metadata` object, as JSON. Default 4 KiB.
    pub fn metadata_limit(mut self, bytes: usize) -> Self {
        self.metadata_limit = bytes;
        self
    }

    /// Build the service, or say why the settings cannot work.
    pub fn build(self) -> Result<SessionService, ConfigError> {
        let sealing = match (self.keys, self.passthrough) {
            (Some(_), true) => {
                return Err(ConfigError::new(
                    "session service: choose either sealing keys or passthrough, not both",
                ))
            }
            (Some(keys), false) => Sealing::Keys(keys),
            (None, true) => Sealing::Passthrough,
            (None, false) => {
                return Err(ConfigError::new(
                    "session service: set sealing keys (SessionKeys) or choose passthrough",
                ))
            }
        };
        if self.ttl < Duration::from_secs(1) || self.ttl > Duration::from_secs(30 * 24 * 3600) {
            return Err(ConfigError::variable(
                "CHATKIT_SESSION_TTL",
                "the session lifetime must be between 1 second and 30 days",
            ));
        }
        if let Some(bad) = self
            .models
            .iter()
            .find(|m| m.is_empty() || m.len() > MAX_MODEL_LEN)
        {
            return Err(ConfigError::variable(
                "CHATKIT_MODELS",
                format!("model name {bad:?} is empty or longer than {MAX_MODEL_LEN} bytes"),
            ));
        }
        if self.body_limit == 0 {
            return Err(ConfigError::new(
                "session service: the body limit must be above 0",
            ));
        }
        Ok(SessionService {
            inner: Arc::new(Inner {
                upstream: self.upstream,
                sealing,
                ttl: self.ttl,
                models: self.models,
                body_limit: self.body_limit,
                metadata_limit: self.metadata_limit,
            }),
        })
    }
}

impl<B> Service<Request<B>> for SessionService
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
        // What can be decided from the head is decided here, so the future keeps only the
        // body and the user (not the whole request) while it waits.
        match self.inner.admit(req) {
            Ok((user, body)) => ResponseFuture::new(Inner::handle(self.inner.clone(), user, body)),
            Err(err) => ResponseFuture::ready(err.into_response()),
        }
    }
}

/// The browser's optional body: `{model?, metadata?}`. Anything else (a `user_id` included) is
/// ignored: the user always comes from authentication.
#[derive(Debug, serde::Deserialize, Default)]
struct ClientBody {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    #[serde(default)]
    previous_session_id: Option<String>,
}

/// The browser's answer. Written by [`Answer::to_json`]; the derive is kept for the test that
/// checks the two agree.
#[cfg_attr(test, derive(serde::Serialize))]
struct Answer {
    client_secret: String,
    expires_at: String,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    model: Option<String>,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    session_id: Option<String>,
}

impl Answer {
    /// The same bytes serde_json writes for the struct (key order, escaping), without its
    /// serializer: the answer is four short strings that almost never need escaping, and
    /// serde_json examines them a byte at a time.
    fn to_json(&self) -> Vec<u8> {
        let optional = |field: &Option<String>| field.as_ref().map_or(0, |v| v.len() + 16);
        let mut out = Vec::with_capacity(
            48 + self.client_secret.len()
                + self.expires_at.len()
                + optional(&self.model)
                + optional(&self.session_id),
        );
        out.extend_from_slice(b"{\"client_secret\":");
        json_string(&mut out, &self.client_secret);
        out.extend_from_slice(b",\"expires_at\":");
        json_string(&mut out, &self.expires_at);
        if let Some(model) = &self.model {
            out.extend_from_slice(b",\"model\":");
            json_string(&mut out, model);
        }
        if let Some(session_id) = &self.session_id {
            out.extend_from_slice(b",\"session_id\":");
            json_string(&mut out, session_id);
        }
        out.push(b'}');
        out
    }
}

/// `s` as a JSON string: copied as it is when nothing in it needs escaping (what serde_json
/// escapes: control characters, `"` and `\`), else written by serde_json.
fn json_string(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

impl Inner {
    /// The request's head checked: POST, authenticated, no declared body over the limit.
    fn admit<B>(&self, req: Request<B>) -> Result<(Principal, B), Error> {
        if req.method() != Method::POST {
            return Err(Error::method_not_allowed(&[Method::POST]));
        }
        let Some(user) = req.extensions().get::<Principal>().cloned() else {
            tracing::error!(
                "SessionService called without a Principal: put AuthLayer in front of it"
            );
            return Err(Error::internal(
                "the session endpoint has no authentication configured",
            ));
        };
        check_declared_length(req.headers(), self.body_limit)?;
        Ok((user, req.into_body()))
    }

    async fn handle<B>(self: Arc<Self>, user: Principal, body: B) -> Result<Response<Body>, Error>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        let bytes = read_body(body, self.body_limit).await?;
        let client = parse_client_body(&bytes)?;

        let model = match client.model {
            Some(model) if model.len() > MAX_MODEL_LEN => {
                return Err(Error::bad_request("the model name is too long"))
            }
            Some(model) if !self.models.is_empty() && !self.models.contains(&model) => {
                return Err(Error::new(
                    ErrorCode::ModelNotAllowed,
                    format!(
                        "model {model:?} is not allowed; allowed: {}",
                        self.models.join(", ")
                    ),
                ))
            }
            model => model,
        };
        if let Some(metadata) = &client.metadata {
            let size = serde_json::to_vec(metadata)
                .map(|v| v.len())
                .unwrap_or(usize::MAX);
            if size > self.metadata_limit {
                return Err(Error::new(
                    ErrorCode::PayloadTooLarge,
                    format!("metadata is over the {}-byte limit", self.metadata_limit),
                ));
            }
        }

        if client
            .previous_session_id
            .as_ref()
            .is_some_and(|id| id.len() > MAX_MODEL_LEN)
        {
            return Err(Error::bad_request("previous_session_id is too long"));
        }
        let request = SessionRequest {
            user: user.clone(),
            model: model.clone(),
            metadata: client.metadata,
            previous_session_id: client.previous_session_id,
        };
        let upstream = match self.upstream.create(request).await {
            Ok(upstream) => upstream,
            Err(err) => {
                tracing::info!(code = %err.code(), details = err.details(), upstream_status = ?err.upstream_status(), "session upstream failed");
                return Err(err);
            }
        };

        let now = unix_now();
        let expires_at = self.expiry(upstream.expires_at.as_ref(), now);
        let client_secret = match (&self.sealing, upstream.seal) {
            (Sealing::Keys(keys), true) => keys.seal(&SessionClaims::new(
                upstream.session_id,
                user.id(),
                expires_at,
            )),
            _ => upstream.session_id,
        };
        let answer = Answer {
            client_secret,
            expires_at: rfc3339(expires_at)?,
            model: upstream.model.or(model),
            session_id: upstream.public_session_id,
        };
        let mut res = json_bytes_response(StatusCode::OK, answer.to_json());
        if let Some(request_id) = upstream.request_id {
            res.headers_mut().insert("x-request-id", request_id);
        }
        Ok(res)
    }

    /// The earlier of the upstream's expiry and now + TTL; an upstream expiry that is missing,
    /// unparsable or already past is reported and replaced by the TTL.
    fn expiry(&self, upstream: Option<&Value>, now: u64) -> u64 {
        let cap = now.saturating_add(self.ttl.as_secs());
        match upstream.map(parse_expiry) {
            Some(Some(at)) if at > now => at.min(cap),
            Some(Some(_)) => {
                tracing::warn!(
                    "the session upstream sent an expires_at in the past; using the configured TTL"
                );
                cap
            }
            Some(None) => {
                tracing::warn!("the session upstream sent an expires_at that is not RFC 3339 or Unix seconds; using the configured TTL");
                cap
            }
            None => {
                tracing::warn!("the session upstream sent no expires_at; using the configured TTL");
                cap
            }
        }
    }
}

fn parse_client_body(bytes: &[u8]) -> Result<ClientBody, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(ClientBody::default());
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::bad_request(format!("the body is not valid JSON: {e}")))?;
    match value {
        Value::Null => Ok(ClientBody::default()),
        Value::Object(_) => serde_json::from_value(value).map_err(|e| {
            Error::bad_request(format!("the body has a field of the wrong type: {e}"))
        }),
        _ => Err(Error::bad_request(
            "the body must be a JSON object like {\"model\": \"...\"}",
        )),
    }
}

/// An expiry as RFC 3339 text or Unix seconds (a number or a numeric string).
pub(crate) fn parse_expiry(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => {
            if let Ok(secs) = s.trim().parse::<u64>() {
                return Some(secs);
            }
            let at = time::OffsetDateTime::parse(
                s.trim(),
                &time::format_description::well_known::Rfc3339,
            )
            .ok()?;
            u64::try_from(at.unix_timestamp()).ok()
        }
        _ => None,
    }
}

/// Unix seconds as RFC 3339 (`2026-11-26T01:05:21Z`).
pub(crate) fn rfc3339(unix: u64) -> Result<String, Error> {
    i64::try_from(unix)
        .ok()
        .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .ok_or_else(|| Error::internal("the expiry cannot be written as a date"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_accepts_rfc3339_and_unix_seconds() {
        assert_eq!(
            parse_expiry(&Value::from(1_712_349_876u64)),
            Some(1_712_349_876)
        );
        assert_eq!(
            parse_expiry(&Value::from("2024-12-31T23:59:59Z")),
            Some(1_735_689_599)
        );
        assert_eq!(
            parse_expiry(&Value::from("2024-12-31T23:59:59+00:00")),
            Some(1_735_689_599)
        );
        assert_eq!(parse_expiry(&Value::from("tomorrow")), None);
        assert_eq!(parse_expiry(&Value::Bool(true)), None);
    }

    #[test]
    fn answers_are_written_as_serde_json_writes_them() {
        let strings = [
            "ck_eyJzIjoic2Vzc18xIn0.c2ln",
            "2026-11-26T06:30:00Z",
            "only \"quotes\"",
            "only \\ a backslash",
            "only a control \u{1f}",
            "line\nbreak\ttab\u{1}\u{7f}",
            "ünïcödé ✓ \u{1F600}",
            "",
        ];
        for a in strings {
            for b in strings {
                for model in [None, Some(b)] {
                    for session_id in [None, Some(a)] {
                        let answer = Answer {
                            client_secret: a.to_owned(),
                            expires_at: b.to_owned(),
                            model: model.map(str::to_owned),
                            session_id: session_id.map(str::to_owned),
                        };
                        assert_eq!(
                            String::from_utf8(answer.to_json()).unwrap(),
                            serde_json::to_string(&answer).unwrap()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn rfc3339_round_trips() {
        assert_eq!(rfc3339(1_735_689_599).unwrap(), "2024-12-31T23:59:59Z");
        assert!(rfc3339(u64::MAX).is_err());
    }

    #[test]
    fn client_bodies() {
        assert!(parse_client_body(b"").unwrap().model.is_none());
        assert!(parse_client_body(b"  \n").unwrap().model.is_none());
        assert_eq!(
            parse_client_body(br#"{"model":"m","user_id":"evil"}"#)
                .unwrap()
                .model
                .as_deref(),
            Some("m")
        );
        assert_eq!(
            parse_client_body(b"{").unwrap_err().code(),
            ErrorCode::BadRequest
        );
        assert_eq!(
            parse_client_body(b"[1]").unwrap_err().code(),
            ErrorCode::BadRequest
        );
        assert_eq!(
            parse_client_body(br#"{"model":5}"#).unwrap_err().code(),
            ErrorCode::BadRequest
        );
    }
}
