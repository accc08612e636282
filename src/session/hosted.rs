use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{Request, Response};
use http_body_util::Full;
use serde_json::{json, Map, Value};
use tower_service::Service;

use super::custom_backend::{bearer_header, join_url, USER_AGENT_VALUE};
use super::exchange::{exchange, failure, json_object, with_request_id};
use super::{BoxFuture, SessionRequest, UpstreamSession};
use crate::client::{HttpClient, DEFAULT_RESPONSE_TIMEOUT};
use crate::error::{BoxError, ConfigError, Error, ErrorCode};

/// OpenAI's public API origin (without `/v1`).
pub const DEFAULT_API_BASE: &str = "https://api.openai.com";
/// The beta header every ChatKit call needs.
const OPENAI_BETA: &str = "chatkit_beta=v1";
/// What `expires_after.seconds` accepts.
const MAX_EXPIRES_AFTER: u64 = 600;

/// OpenAI's hosted ChatKit sessions as a session upstream:
/// `POST {CHATKIT_API_BASE}/v1/chatkit/sessions` with `OpenAI-Beta: chatkit_beta=v1`, for an
/// Agent Builder workflow. The client secret it answers is handed to the browser as it is (the
/// ChatKit front end gives it to OpenAI, not to us), with its expiry converted to RFC 3339.
///
/// The user is always the authenticated [`Principal`](crate::auth::Principal). OpenAI's error
/// bodies (`{"error": {"message", …}}`) become the kit's error body with the upstream's status,
/// and OpenAI's `x-request-id` is logged and passed on to the browser.
///
/// ```
/// use chatkit_tower::session::HostedSessions;
/// use std::time::Duration;
///
/// let hosted = HostedSessions::builder("sk-…", "wf_123")
///     .workflow_version("3")
///     .state_variable("plan", "pro")
///     .expires_after(Duration::from_secs(600))
///     .build()
///     .unwrap();
///
/// // "latest" creates sessions whose first message fails silently (chatkit-js#41): refused.
/// assert!(HostedSessions::builder("sk-…", "wf_123").workflow_version("latest").build().is_err());
/// ```
pub struct HostedSessions<S = HttpClient> {
    inner: Arc<Inner<S>>,
}

struct Inner<S> {
    base: String,
    endpoint: String,
    authorization: HeaderValue,
    key: String,
    client: S,
    timeout: Duration,
    workflow: Value,
    expires_after: Option<u64>,
    chatkit_configuration: Option<Value>,
    rate_limit: Option<u32>,
    cancel_previous: bool,
}

impl<S> Clone for HostedSessions<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S> fmt::Debug for HostedSessions<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostedSessions")
            .field("endpoint", &self.inner.endpoint)
            .field("workflow", &self.inner.workflow)
            .finish_non_exhaustive()
    }
}

impl HostedSessions {
    /// Settings for sessions of the workflow `workflow_id`, created with the API key `api_key`.
    pub fn builder(
        api_key: impl Into<String>,
        workflow_id: impl Into<String>,
    ) -> HostedSessionsBuilder {
        HostedSessionsBuilder {
            api_key: api_key.into(),
            workflow_id: workflow_id.into(),
            version: None,
            state_variables: Map::new(),
            base_url: DEFAULT_API_BASE.into(),
            expires_after: None,
            chatkit_configuration: None,
            rate_limit: None,
            cancel_previous: false,
            timeout: DEFAULT_RESPONSE_TIMEOUT,
        }
    }
}

/// Settings for [`HostedSessions`].
#[must_use]
pub struct HostedSessionsBuilder {
    api_key: String,
    workflow_id: String,
    version: Option<String>,
    state_variables: Map<String, Value>,
    base_url: String,
    expires_after: Option<Duration>,
    chatkit_configuration: Option<Value>,
    rate_limit: Option<u32>,
    cancel_previous: bool,
    timeout: Duration,
}

impl fmt::Debug for HostedSessionsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostedSessionsBuilder")
            .field("workflow_id", &self.workflow_id)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl HostedSessionsBuilder {
    /// The API origin, without `/v1` (`CHATKIT_API_BASE`). Default `https://api.openai.com`.
    pub fn base_url(mut self, base: impl Into<String>) -> Self {
        self.base_url = base.into();
        self
    }

    /// Pin a workflow version (omit it for the latest deployed one; `"latest"` is refused).
    pub fn workflow_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// A workflow state variable (key up to 64 characters; a string, number or boolean value).
    pub fn state_variable(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.state_variables.insert(key.into(), value.into());
        self
    }

    /// Session lifetime, clamped to what the API accepts (1 to 600 seconds).
    pub fn expires_after(mut self, after: Duration) -> Self {
        self.expires_after = Some(after);
        self
    }

    /// `chatkit_configuration` passed on as it is (file uploads, history, thread titling).
    pub fn chatkit_configuration(mut self, configuration: Value) -> Self {
        self.chatkit_configuration = Some(configuration);
        self
    }

    /// `rate_limits.max_requests_per_1_minute` for the session.
    pub fn rate_limit_per_minute(mut self, requests: u32) -> Self {
        self.rate_limit = Some(requests);
        self
    }

    /// On a refresh (`previous_session_id` in the client's body), cancel the session being
    /// replaced once the new one exists. Off by default.
    pub fn cancel_previous(mut self, cancel: bool) -> Self {
        self.cancel_previous = cancel;
        self
    }

    /// Time allowed for the whole exchange. Default 15 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Check the settings without building.
    pub(crate) fn check(self) -> Result<(), ConfigError> {
        self.build_with_client(()).map(|_| ())
    }

    /// Build with a default [`HttpClient`].
    pub fn build(self) -> Result<HostedSessions<HttpClient>, ConfigError> {
        let client = HttpClient::builder().no_response_timeout().build();
        self.build_with_client(client)
    }

    /// Build sending requests through `client` (retry or fallback layers, a test client).
    pub fn build_with_client<S>(self, client: S) -> Result<HostedSessions<S>, ConfigError> {
        let key = self.api_key.trim().to_owned();
        let authorization = bearer_header(&key, "OPENAI_API_KEY")?;
        let workflow_id = self.workflow_id.trim();
        if workflow_id.is_empty() {
            return Err(ConfigError::variable(
                "CHATKIT_WORKFLOW_ID",
                "the workflow id is empty",
            ));
        }
        let mut workflow = json!({ "id": workflow_id });
        if let Some(version) = self.version.as_deref().map(str::trim) {
            if version.eq_ignore_ascii_case("latest") || version.is_empty() {
                return Err(ConfigError::variable(
                    "CHATKIT_WORKFLOW_VERSION",
                    "\"latest\" creates sessions whose first message fails (chatkit-js#41); \
                     leave the version unset for the latest deployed version, or pin a number",
                ));
            }
            workflow["version"] = Value::String(version.to_owned());
        }
        for (k, v) in &self.state_variables {
            if k.is_empty() || k.chars().count() > 64 {
                return Err(ConfigError::new(format!(
                    "workflow state variable {k:?}: keys are 1 to 64 characters"
                )));
            }
            if !(v.is_string() || v.is_number() || v.is_boolean()) {
                return Err(ConfigError::new(format!(
                    "workflow state variable {k:?}: values are strings, numbers or booleans"
                )));
            }
        }
        if !self.state_variables.is_empty() {
            workflow["state_variables"] = Value::Object(self.state_variables);
        }
        let expires_after = self.expires_after.map(|after| {
            let secs = after.as_secs().clamp(1, MAX_EXPIRES_AFTER);
            if secs != after.as_secs() {
                tracing::warn!(
                    requested = after.as_secs(),
                    used = secs,
                    "hosted session lifetime clamped to what the API accepts"
                );
            }
            secs
        });
        let base = self.base_url.trim().trim_end_matches('/').to_owned();
        let endpoint = join_url(&base, "/v1/chatkit/sessions", "CHATKIT_API_BASE")?;
        Ok(HostedSessions {
            inner: Arc::new(Inner {
                base,
                endpoint,
                authorization,
                key,
                client,
                timeout: self.timeout,
                workflow,
                expires_after,
                chatkit_configuration: self.chatkit_configuration,
                rate_limit: self.rate_limit,
                cancel_previous: self.cancel_previous,
            }),
        })
    }
}

impl<S, B> Service<SessionRequest> for HostedSessions<S>
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
        let inner = self.inner.clone();
        Box::pin(async move {
            let upstream_req = inner.post(&inner.endpoint, Some(inner.body(&req)))?;
            let (parts, body) = exchange(inner.client.clone(), upstream_req, inner.timeout).await?;
            let request_id = parts.headers.get("x-request-id").cloned();
            tracing::debug!(
                status = parts.status.as_u16(),
                request_id = ?request_id,
                "OpenAI ChatKit session answer"
            );
            if !parts.status.is_success() {
                let err = failure("OpenAI", &parts, &body, &inner.key, "OPENAI_API_KEY");
                tracing::warn!(request_id = ?request_id, error = %err, "OpenAI refused the session");
                return Err(err);
            }
            let map = json_object(&parts, &body).map_err(|e| with_request_id(e, &parts))?;
            let Some(Value::String(secret)) = map.get("client_secret") else {
                return Err(with_request_id(
                    Error::new(
                        ErrorCode::SessionError,
                        "OpenAI's answer has no client_secret",
                    ),
                    &parts,
                ));
            };
            let mut session = UpstreamSession::client_secret(secret.clone());
            if let Some(expires_at) = map.get("expires_at").filter(|v| !v.is_null()) {
                session = session.with_expires_at(expires_at.clone());
            }
            session.public_session_id = map.get("id").and_then(Value::as_str).map(str::to_owned);
            session.request_id = request_id;
            if inner.cancel_previous {
                if let Some(previous) = &req.previous_session_id {
                    inner.cancel(previous, req.user.id()).await;
                }
            }
            Ok(session)
        })
    }
}

impl<S, B> Inner<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    fn body(&self, req: &SessionRequest) -> Value {
        let mut body = json!({ "workflow": self.workflow, "user": req.user.id() });
        if let Some(secs) = self.expires_after {
            body["expires_after"] = json!({ "anchor": "created_at", "seconds": secs });
        }
        if let Some(configuration) = &self.chatkit_configuration {
            body["chatkit_configuration"] = configuration.clone();
        }
        if let Some(limit) = self.rate_limit {
            body["rate_limits"] = json!({ "max_requests_per_1_minute": limit });
        }
        body
    }

    fn post(&self, url: &str, body: Option<Value>) -> Result<Request<Full<Bytes>>, Error> {
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        Request::post(url)
            .header(AUTHORIZATION, self.authorization.clone())
            .header("openai-beta", OPENAI_BETA)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, USER_AGENT_VALUE)
            .body(Full::new(bytes))
            .map_err(|e| Error::internal("the session request could not be built").with_source(e))
    }

    /// Best effort: cancel the session a refresh replaces. Failures are logged, never returned —
    /// the new session already exists.
    async fn cancel(&self, previous: &str, user: &str) {
        let well_formed = previous.starts_with("cksess_")
            && previous.len() <= 128
            && previous
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !well_formed {
            tracing::debug!("previous_session_id is not a hosted session id; nothing cancelled");
            return;
        }
        let url = format!("{}/v1/chatkit/sessions/{previous}/cancel", self.base);
        let Ok(req) = self.post(&url, None) else {
            return;
        };
        match exchange(self.client.clone(), req, self.timeout).await {
            Ok((parts, body)) if parts.status.is_success() => {
                let owner = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("user").and_then(Value::as_str).map(str::to_owned));
                if owner.as_deref().is_some_and(|owner| owner != user) {
                    tracing::warn!("a refresh cancelled a session that belonged to another user");
                } else {
                    tracing::debug!("previous hosted session cancelled");
                }
            }
            Ok((parts, _)) => {
                tracing::debug!(
                    status = parts.status.as_u16(),
                    "cancelling the previous session failed"
                )
            }
            Err(err) => tracing::debug!(error = %err, "cancelling the previous session failed"),
        }
    }
}
