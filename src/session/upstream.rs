use http::HeaderValue;
use serde_json::{Map, Value};
use tower::ServiceExt;
use tower_service::Service;

use crate::auth::Principal;
use crate::error::Error;
pub use crate::BoxFuture;

/// What the session endpoint asks an upstream for: a session for this user.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionRequest {
    /// The authenticated user (from [`AuthLayer`](crate::auth::AuthLayer), never from the body).
    pub user: Principal,
    /// The model the client asked for, already checked against the allow-list.
    pub model: Option<String>,
    /// Client metadata, already size-checked.
    pub metadata: Option<Map<String, Value>>,
    /// On a refresh, the session the client is replacing (`previous_session_id` in the body),
    /// for upstreams that cancel it.
    pub previous_session_id: Option<String>,
}

impl SessionRequest {
    /// A request for `user` with no model and no metadata.
    pub fn new(user: Principal) -> Self {
        Self {
            user,
            model: None,
            metadata: None,
            previous_session_id: None,
        }
    }

    /// With a model.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// With metadata.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Map<String, Value>) -> Self {
        self.metadata = Some(metadata);
        self
    }
}

/// What an upstream answered.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UpstreamSession {
    /// The backend's session id (sealed into the client secret), or a finished client secret
    /// when [`UpstreamSession::seal`] is `false`.
    pub session_id: String,
    /// The upstream's expiry as it sent it: an RFC 3339 string or Unix seconds. Missing,
    /// unparsable or past values are logged and replaced by the configured TTL.
    pub expires_at: Option<Value>,
    /// The model the upstream says it will use.
    pub model: Option<String>,
    /// Whether the kit seals `session_id` into its own signed client secret (`true` for custom
    /// backends; `false` for secrets that go to someone else, such as OpenAI's hosted API).
    pub seal: bool,
    /// An id the client may send back as `previous_session_id` on refresh (hosted sessions:
    /// the `cksess_…` id); returned as `session_id` in the answer.
    pub public_session_id: Option<String>,
    /// The upstream's `x-request-id`, passed on to the browser.
    pub request_id: Option<HeaderValue>,
    /// Anything layers want to tell the caller's code, such as
    /// [`Answered`](crate::fallback::Answered); never sent to the browser.
    pub extensions: http::Extensions,
}

impl UpstreamSession {
    /// A backend session id, to be sealed.
    pub fn backend(session_id: impl Into<String>) -> Self {
        Self {
            session_id: session_id.into(),
            expires_at: None,
            model: None,
            seal: true,
            public_session_id: None,
            request_id: None,
            extensions: http::Extensions::new(),
        }
    }

    /// A client secret to hand to the browser as it is (not sealed).
    pub fn client_secret(secret: impl Into<String>) -> Self {
        Self {
            seal: false,
            ..Self::backend(secret)
        }
    }

    /// With the upstream's expiry (RFC 3339 string or Unix seconds).
    #[must_use]
    pub fn with_expires_at(mut self, expires_at: Value) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// With the upstream's model.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }
}

/// Where sessions come from: any tower [`Service`] of [`SessionRequest`] answering
/// [`UpstreamSession`] with the kit's [`Error`] — [`CustomBackend`] (the seed's
/// `CUSTOM_BACKEND_URL` over HTTP), [`HostedSessions`] (OpenAI's hosted ChatKit sessions),
/// [`SessionIssuer`] (embedded, no HTTP hop), a [`Fallback`] of two of them, or your own
/// (`tower::service_fn` is enough).
///
/// Failures are [`Error`]s with the code the browser should see (`SESSION_ERROR`,
/// `BACKEND_UNREACHABLE`, `BACKEND_TIMEOUT`, `RATE_LIMITED`).
///
/// [`CustomBackend`]: super::CustomBackend
/// [`HostedSessions`]: super::HostedSessions
/// [`SessionIssuer`]: crate::backend::SessionIssuer
/// [`Fallback`]: crate::fallback::Fallback
///
/// ```
/// use chatkit_tower::session::{SessionRequest, SessionService, UpstreamSession};
/// use chatkit_tower::token::SessionKeys;
/// use chatkit_tower::Error;
///
/// let fixed = tower::service_fn(|req: SessionRequest| async move {
///     Ok::<_, Error>(UpstreamSession::backend(format!("sess-for-{}", req.user.id())))
/// });
/// let service = SessionService::builder(fixed).keys(SessionKeys::random().unwrap()).build();
/// assert!(service.is_ok());
/// ```
pub trait SessionUpstream: Send + Sync + 'static {
    /// Create a session for `req.user`.
    fn create(&self, req: SessionRequest) -> BoxFuture<'static, Result<UpstreamSession, Error>>;
}

impl<S> SessionUpstream for S
where
    S: Service<SessionRequest, Response = UpstreamSession, Error = Error>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    fn create(&self, req: SessionRequest) -> BoxFuture<'static, Result<UpstreamSession, Error>> {
        Box::pin(self.clone().oneshot(req))
    }
}
