use std::fmt;
use std::task::{Context, Poll};

use http::Response;
use tower::ServiceExt;
use tower_service::Service;

use super::FallbackPolicy;
use crate::session::UpstreamSession;
use crate::BoxFuture;

/// Which side of a [`Fallback`] answered; found in the response's extensions.
///
/// ```
/// use chatkit_tower::fallback::Answered;
/// # let res = http::Response::new(());
/// match res.extensions().get::<Answered>() {
///     Some(Answered::Secondary) => { /* count a degraded answer */ }
///     _ => {}
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Answered {
    /// The primary service answered.
    Primary,
    /// The primary failed and the secondary answered.
    Secondary,
}

/// Answers that can carry an [`Answered`] mark for the caller's code.
pub trait RecordAnswered {
    /// Record who answered.
    fn record_answered(&mut self, answered: Answered);
}

impl<B> RecordAnswered for Response<B> {
    fn record_answered(&mut self, answered: Answered) {
        self.extensions_mut().insert(answered);
    }
}

impl RecordAnswered for UpstreamSession {
    fn record_answered(&mut self, answered: Answered) {
        self.extensions.insert(answered);
    }
}

/// The service [`FallbackLayer`](super::FallbackLayer) makes.
#[derive(Clone)]
pub struct Fallback<P, S, Pol> {
    primary: P,
    secondary: S,
    policy: Pol,
}

impl<P: fmt::Debug, S: fmt::Debug, Pol> fmt::Debug for Fallback<P, S, Pol> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback")
            .field("primary", &self.primary)
            .field("secondary", &self.secondary)
            .finish_non_exhaustive()
    }
}

impl<P, S, Pol> Fallback<P, S, Pol> {
    /// Call `primary`, replaying to `secondary` when `policy` says so.
    pub fn new(primary: P, secondary: S, policy: Pol) -> Self {
        Self {
            primary,
            secondary,
            policy,
        }
    }
}

impl<Req, P, S, Pol> Service<Req> for Fallback<P, S, Pol>
where
    Req: Clone + Send + 'static,
    P: Service<Req>,
    P::Future: Send + 'static,
    P::Response: RecordAnswered + Send + 'static,
    P::Error: fmt::Display + Send + 'static,
    S: Service<Req, Response = P::Response, Error = P::Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
    Pol: FallbackPolicy<P::Response, P::Error>,
{
    type Response = P::Response;
    type Error = P::Error;
    type Future = BoxFuture<'static, Result<P::Response, P::Error>>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.primary.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let replay = req.clone();
        let primary = self.primary.call(req);
        let secondary = self.secondary.clone();
        let policy = self.policy.clone();
        Box::pin(async move {
            let mut result = primary.await;
            if !policy.should_fall_back(&result) {
                if let Ok(res) = &mut result {
                    res.record_answered(Answered::Primary);
                }
                return result;
            }
            match &result {
                Err(err) => tracing::warn!(error = %err, "primary failed; trying the fallback"),
                Ok(_) => tracing::warn!("primary answered with a failure; trying the fallback"),
            }
            // `oneshot` makes the secondary ready before calling it.
            let mut result = secondary.oneshot(replay).await;
            match &mut result {
                Ok(res) => {
                    tracing::info!(answered = "secondary", "the fallback answered");
                    res.record_answered(Answered::Secondary);
                }
                Err(err) => tracing::warn!(error = %err, "the fallback failed too"),
            }
            result
        })
    }
}
