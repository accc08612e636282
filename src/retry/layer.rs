use tower_layer::Layer;

use super::RetryPolicy;

/// The service [`RetryLayer`] makes: [`tower::retry::Retry`] with a [`RetryPolicy`].
pub type Retry<S> = tower::retry::Retry<RetryPolicy, S>;

/// Retries the inner HTTP service according to a [`RetryPolicy`]; see the
/// [module docs](super).
#[derive(Debug, Clone)]
#[must_use]
pub struct RetryLayer {
    policy: RetryPolicy,
}

impl RetryLayer {
    /// Retry with `policy`.
    ///
    /// ```
    /// use chatkit_tower::retry::{RetryLayer, RetryPolicy};
    /// let layer = RetryLayer::new(RetryPolicy::interactive());
    /// ```
    pub fn new(policy: RetryPolicy) -> Self {
        Self { policy }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        tower::retry::Retry::new(self.policy.clone(), inner)
    }
}
