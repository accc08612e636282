use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use super::{Auth, Authenticate};

/// Authenticates every request before the inner service sees it; see the [module docs](super).
///
/// Cheap to clone: the authenticator is shared.
#[derive(Clone)]
#[must_use]
pub struct AuthLayer {
    pub(super) authenticator: Arc<dyn Authenticate>,
    pub(super) cookie: Option<Arc<str>>,
}

impl AuthLayer {
    /// Authenticate with `authenticator`.
    pub fn new(authenticator: impl Authenticate) -> Self {
        Self {
            authenticator: Arc::new(authenticator),
            cookie: None,
        }
    }

    /// Also accept the credential from the cookie `name` (after the two headers).
    ///
    /// ```
    /// use chatkit_tower::auth::{AuthLayer, StaticTokens};
    /// let layer = AuthLayer::new(StaticTokens::new()).cookie("session");
    /// ```
    pub fn cookie(mut self, name: impl Into<Arc<str>>) -> Self {
        self.cookie = Some(name.into());
        self
    }
}

impl fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer")
            .field("cookie", &self.cookie)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            layer: self.clone(),
        }
    }
}
