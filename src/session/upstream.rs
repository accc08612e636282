use std::sync::Arc;

use serde_json::{Map, Value};

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
}

impl SessionRequest {
    /// A request for `user` with no model and no metadata.
    pub fn new(user: Principal) -> Self {
        Self {
            user,
            model: None,
            metadata: None,
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
#[derive(Debug, Clone, PartialEq)]
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
}

impl UpstreamSession {
    /// A backend session id, to be sealed.
    pub fn backend(session_id: impl Into<String>) -> Self {
        Self {
            session_id: session_id.into(),
            expires_at: None,
            model: None,
            seal: true,
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

/// Where sessions come from: the custom backend over HTTP ([`CustomBackend`]), the embedded
/// issuer with no HTTP hop ([`SessionIssuer`]), or your own.
///
/// Failures are [`Error`]s with the code the browser should see (`SESSION_ERROR`,
/// `BACKEND_UNREACHABLE`, `BACKEND_TIMEOUT`, `RATE_LIMITED`).
///
/// [`CustomBackend`]: super::CustomBackend
/// [`SessionIssuer`]: crate::backend::SessionIssuer
///
/// ```
/// use chatkit_tower::session::{BoxFuture, SessionRequest, SessionUpstream, UpstreamSession};
/// use chatkit_tower::Error;
///
/// struct Fixed;
///
/// impl SessionUpstream for Fixed {
///     fn create(&self, req: SessionRequest) -> BoxFuture<'_, Result<UpstreamSession, Error>> {
///         Box::pin(async move { Ok(UpstreamSession::backend(format!("sess-for-{}", req.user.id()))) })
///     }
/// }
/// ```
pub trait SessionUpstream: Send + Sync + 'static {
    /// Create a session for `req.user`.
    fn create(&self, req: SessionRequest) -> BoxFuture<'_, Result<UpstreamSession, Error>>;
}

impl<U: SessionUpstream + ?Sized> SessionUpstream for Arc<U> {
    fn create(&self, req: SessionRequest) -> BoxFuture<'_, Result<UpstreamSession, Error>> {
        (**self).create(req)
    }
}
