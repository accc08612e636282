use tower_layer::Layer;

use super::{DefaultPolicy, Fallback};

/// Wraps a primary service so that failures are replayed to `secondary`; see the
/// [module docs](super).
#[derive(Debug, Clone)]
#[must_use]
pub struct FallbackLayer<S, P = DefaultPolicy> {
    secondary: S,
    policy: P,
}

impl<S> FallbackLayer<S> {
    /// Fall back to `secondary` with the [`DefaultPolicy`].
    pub fn new(secondary: S) -> Self {
        Self {
            secondary,
            policy: DefaultPolicy::default(),
        }
    }
}

impl<S, P> FallbackLayer<S, P> {
    /// Decide with `policy` instead: a [`DefaultPolicy`] with other statuses, or any
    /// `Fn(&Result<Response, Error>) -> bool`.
    ///
    /// ```
    /// use chatkit_tower::fallback::FallbackLayer;
    /// use chatkit_tower::session::UpstreamSession;
    /// use chatkit_tower::Error;
    ///
    /// let secondary = tower::service_fn(|_req: chatkit_tower::session::SessionRequest| async {
    ///     Ok::<_, Error>(UpstreamSession::backend("spare"))
    /// });
    /// // Fall back on every failure, whatever it was.
    /// let layer = FallbackLayer::new(secondary)
    ///     .policy(|result: &Result<UpstreamSession, Error>| result.is_err());
    /// ```
    pub fn policy<Q>(self, policy: Q) -> FallbackLayer<S, Q> {
        FallbackLayer {
            secondary: self.secondary,
            policy,
        }
    }
}

impl<P0, S: Clone, P: Clone> Layer<P0> for FallbackLayer<S, P> {
    type Service = Fallback<P0, S, P>;

    fn layer(&self, primary: P0) -> Self::Service {
        Fallback::new(primary, self.secondary.clone(), self.policy.clone())
    }
}
