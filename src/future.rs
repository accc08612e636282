//! [`ResponseFuture`], the one future type of the kit's endpoint services.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;

use crate::body::Body;
use crate::error::Error;
use crate::BoxFuture;

/// The response future of the kit's endpoint services ([`SessionService`], [`IssuerService`],
/// [`App`]): never fails, since every [`Error`] is already turned into its JSON response.
///
/// [`SessionService`]: crate::session::SessionService
/// [`IssuerService`]: crate::backend::IssuerService
/// [`App`]: crate::App
pub struct ResponseFuture {
    inner: BoxFuture<'static, Result<Response<Body>, Infallible>>,
}

impl ResponseFuture {
    /// Run `handler`; an `Err` becomes its JSON error response.
    pub(crate) fn new<F>(handler: F) -> Self
    where
        F: Future<Output = Result<Response<Body>, Error>> + Send + 'static,
    {
        // A named future rather than an `async` block: a block would keep `handler` twice (as
        // its capture and as the future it awaits), doubling the allocation.
        Self {
            inner: Box::pin(Answered { handler }),
        }
    }

    /// A future that already never fails (a boxed route), kept as it is.
    pub(crate) fn from_infallible(
        inner: BoxFuture<'static, Result<Response<Body>, Infallible>>,
    ) -> Self {
        Self { inner }
    }

    /// An answer that is already known.
    pub(crate) fn ready(res: Response<Body>) -> Self {
        Self {
            inner: Box::pin(std::future::ready(Ok(res))),
        }
    }
}

pin_project_lite::pin_project! {
    /// A handler's result, its error turned into the JSON error response.
    struct Answered<F> {
        #[pin]
        handler: F,
    }
}

impl<F> Future for Answered<F>
where
    F: Future<Output = Result<Response<Body>, Error>>,
{
    type Output = Result<Response<Body>, Infallible>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().handler.poll(cx) {
            Poll::Ready(result) => Poll::Ready(Ok(result.unwrap_or_else(Error::into_response))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<Body>, Infallible>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}
