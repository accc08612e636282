use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use tower_service::Service;

use super::{AuthLayer, Credential};
use crate::body::Body;
use crate::error::{BoxError, Error, ErrorCode};

/// The service [`AuthLayer`] makes: authenticates, then calls the inner service with the
/// [`Principal`](super::Principal) in the request's extensions.
#[derive(Clone)]
pub struct Auth<S> {
    pub(super) inner: S,
    pub(super) layer: AuthLayer,
}

impl<S: fmt::Debug> fmt::Debug for Auth<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S> Auth<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

/// The response future of [`Auth`].
pub struct ResponseFuture<E> {
    inner: Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>,
}

impl<E> fmt::Debug for ResponseFuture<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<E> Future for ResponseFuture<E> {
    type Output = Result<Response<Body>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<S, B, ResBody> Service<Request<B>> for Auth<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    B: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // The ready service goes into the future; a fresh clone stays for the next poll_ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        let inner_fut = async move {
            let credential = match Credential::from_headers(req.headers(), layer.cookie.as_deref())
            {
                Ok(Some(credential)) => credential,
                Ok(None) => {
                    return Ok(Error::unauthorized(
                        "no credential: send Authorization: Bearer <token> or X-Auth-Token",
                    )
                    .into_response())
                }
                Err(why) => return Ok(Error::unauthorized(why).into_response()),
            };
            match layer.authenticator.authenticate(&credential).await {
                Ok(Some(principal)) => {
                    req.extensions_mut().insert(principal);
                }
                Ok(None) => {
                    return Ok(Error::unauthorized("the credential is not valid").into_response())
                }
                Err(err) => {
                    tracing::warn!(error = %err, "authenticator failed");
                    return Ok(Error::new(
                        ErrorCode::AuthUnavailable,
                        "the credential could not be checked right now; try again shortly",
                    )
                    .into_response());
                }
            }
            let res = inner.call(req).await?;
            Ok(res.map(Body::new))
        };
        ResponseFuture {
            inner: Box::pin(inner_fut),
        }
    }
}
