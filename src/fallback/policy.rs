use std::sync::Arc;

use http::{Response, StatusCode};

use crate::error::{Error, ErrorCode};
use crate::session::UpstreamSession;

/// Decides whether a primary's result should be replayed to the secondary.
///
/// Implemented by [`DefaultPolicy`] and by every `Fn(&Result<Res, E>) -> bool`.
pub trait FallbackPolicy<Res, E>: Clone + Send + Sync + 'static {
    /// `true` to try the secondary.
    fn should_fall_back(&self, result: &Result<Res, E>) -> bool;
}

impl<F, Res, E> FallbackPolicy<Res, E> for F
where
    F: Fn(&Result<Res, E>) -> bool + Clone + Send + Sync + 'static,
{
    fn should_fall_back(&self, result: &Result<Res, E>) -> bool {
        self(result)
    }
}

/// Fall back on a transport error, a timeout or a 5xx (and on the statuses added with
/// [`also_on`](Self::also_on)); never on another 4xx.
///
/// ```
/// use chatkit_tower::fallback::DefaultPolicy;
/// use http::StatusCode;
/// // Also fall back when the primary refuses our credentials.
/// let policy = DefaultPolicy::default().also_on(StatusCode::UNAUTHORIZED);
/// ```
#[derive(Debug, Clone, Default)]
pub struct DefaultPolicy {
    also: Arc<[StatusCode]>,
}

impl DefaultPolicy {
    /// Also fall back when the primary answers `status`.
    #[must_use]
    pub fn also_on(self, status: StatusCode) -> Self {
        let mut also = self.also.to_vec();
        also.push(status);
        Self { also: also.into() }
    }

    fn status_fails(&self, status: StatusCode) -> bool {
        status.is_server_error() || self.also.contains(&status)
    }
}

/// A kit error that means "the upstream did not give a real answer".
fn transport_failure(err: &Error) -> bool {
    matches!(
        err.code(),
        ErrorCode::BackendUnreachable | ErrorCode::BackendTimeout
    )
}

impl<B, E> FallbackPolicy<Response<B>, E> for DefaultPolicy
where
    E: std::error::Error + 'static,
{
    fn should_fall_back(&self, result: &Result<Response<B>, E>) -> bool {
        match result {
            Ok(res) => self.status_fails(res.status()),
            // A kit error says what it was; any other service error is a transport failure.
            Err(err) => match (err as &(dyn std::error::Error + 'static)).downcast_ref::<Error>() {
                Some(kit) => {
                    transport_failure(kit)
                        || kit.upstream_status().is_some_and(|s| self.status_fails(s))
                }
                None => true,
            },
        }
    }
}

impl FallbackPolicy<UpstreamSession, Error> for DefaultPolicy {
    fn should_fall_back(&self, result: &Result<UpstreamSession, Error>) -> bool {
        match result {
            Ok(_) => false,
            Err(err) => {
                transport_failure(err)
                    || err.upstream_status().is_some_and(|s| self.status_fails(s))
            }
        }
    }
}
