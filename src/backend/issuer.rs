use std::task::{Context, Poll};
use std::time::Duration;

use tower_service::Service;

use serde_json::Value;

use crate::error::Error;
use crate::session::{rfc3339, SessionRequest, UpstreamSession, DEFAULT_TTL};
use crate::token::{unix_now, SessionClaims, SessionKeys, TokenError};

/// Issues signed, expiring backend sessions; see the [module docs](super). Cheap to clone.
#[derive(Debug, Clone)]
pub struct SessionIssuer {
    keys: SessionKeys,
    ttl: Duration,
}

/// A session the issuer made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuedSession {
    /// The signed session token (`ck1.…`), carrying a random session id, the user and the expiry.
    pub session_id: String,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
}

impl SessionIssuer {
    /// An issuer signing with `keys`, sessions lasting one hour.
    pub fn new(keys: SessionKeys) -> Self {
        Self {
            keys,
            ttl: DEFAULT_TTL,
        }
    }

    /// Sessions last `ttl` (at least one second).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// Issue a session for `user_id`.
    ///
    /// ```
    /// use chatkit_tower::backend::SessionIssuer;
    /// use chatkit_tower::token::SessionKeys;
    ///
    /// let issuer = SessionIssuer::new(SessionKeys::random().unwrap());
    /// let session = issuer.issue("user_1").unwrap();
    /// assert_eq!(issuer.verify(&session.session_id).unwrap().user_id, "user_1");
    /// ```
    pub fn issue(&self, user_id: &str) -> Result<IssuedSession, Error> {
        let expires_at = self.expiry();
        let claims = SessionClaims::new(new_session_id()?, user_id, expires_at);
        Ok(IssuedSession {
            session_id: self.keys.seal(&claims),
            expires_at,
        })
    }

    fn expiry(&self) -> u64 {
        unix_now().saturating_add(self.ttl.as_secs())
    }

    /// Check a session token this issuer (or one sharing its keys) made.
    pub fn verify(&self, session_id: &str) -> Result<SessionClaims, TokenError> {
        self.keys.verify(session_id)
    }
}

/// A random session id, `sess_` and 32 hex digits.
fn new_session_id() -> Result<String, Error> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id)
        .map_err(|e| Error::internal("no randomness for a session id").with_source(e))?;
    Ok(id.iter().fold(String::from("sess_"), |mut s, b| {
        s.push_str(&format!("{b:02x}"));
        s
    }))
}

/// As a direct upstream the issuer hands over a plain random session id: the session service
/// seals it into the client secret, so signing it here too would only double the token's size.
impl Service<SessionRequest> for SessionIssuer {
    type Response = UpstreamSession;
    type Error = Error;
    type Future = std::future::Ready<Result<UpstreamSession, Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: SessionRequest) -> Self::Future {
        let result = new_session_id().and_then(|session_id| {
            let mut session = UpstreamSession::backend(session_id)
                .with_expires_at(Value::String(rfc3339(self.expiry())?));
            if let Some(model) = req.model {
                session = session.with_model(model);
            }
            Ok(session)
        });
        std::future::ready(result)
    }
}
