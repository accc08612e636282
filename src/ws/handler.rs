//! [`WsHandler`]: what runs on a socket once the handshake succeeded, and [`WsContext`], what it
//! knows about the session.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::shutdown::ShutdownListener;
use super::socket::WebSocket;
use crate::auth::Principal;
use crate::backend::ReplyContext;
use crate::token::SessionClaims;
use crate::BoxFuture;

/// Serves one WebSocket whose session was verified: the built-in [`ChatHandler`], or your own.
///
/// The handler owns the socket until its future ends; dropping the socket closes the
/// connection. A handler should end soon after [`WsContext::shutdown`] resolves, ideally after
/// sending close `1001` ("going away").
///
/// Implement it for your own type, or wrap an async closure with [`handler_fn`].
///
/// ```
/// use chatkit_tower::ws::{Message, WebSocket, WsContext, WsHandler};
/// use chatkit_tower::BoxFuture;
///
/// /// Says hello to the user, then closes.
/// struct Hello;
///
/// impl WsHandler for Hello {
///     fn serve(&self, mut socket: WebSocket, ctx: WsContext) -> BoxFuture<'static, ()> {
///         Box::pin(async move {
///             let hello = format!("hello {}", ctx.principal().id());
///             let _ = socket.send(Message::text(hello)).await;
///             let _ = socket.close(1000, "bye").await;
///         })
///     }
/// }
/// ```
///
/// [`ChatHandler`]: crate::ws::ChatHandler
pub trait WsHandler: Send + Sync + 'static {
    /// Serve `socket` until it closes.
    fn serve(&self, socket: WebSocket, ctx: WsContext) -> BoxFuture<'static, ()>;
}

impl<H: WsHandler + ?Sized> WsHandler for Arc<H> {
    fn serve(&self, socket: WebSocket, ctx: WsContext) -> BoxFuture<'static, ()> {
        (**self).serve(socket, ctx)
    }
}

/// A [`WsHandler`] made from an async closure; see [`handler_fn`].
#[derive(Clone)]
pub struct HandlerFn<F> {
    f: F,
}

impl<F> fmt::Debug for HandlerFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerFn").finish_non_exhaustive()
    }
}

/// Make a [`WsHandler`] from an async closure taking the socket and its context.
///
/// ```
/// use chatkit_tower::ws::{handler_fn, Message, WebSocket, WsContext};
///
/// // Echo every text message back.
/// let echo = handler_fn(|mut socket: WebSocket, _ctx: WsContext| async move {
///     while let Some(Ok(msg)) = socket.recv().await {
///         if let Message::Text(text) = msg {
///             if socket.send(Message::Text(text)).await.is_err() {
///                 break;
///             }
///         }
///     }
/// });
/// # let _ = echo;
/// ```
pub fn handler_fn<F, Fut>(f: F) -> HandlerFn<F>
where
    F: Fn(WebSocket, WsContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    HandlerFn { f }
}

impl<F, Fut> WsHandler for HandlerFn<F>
where
    F: Fn(WebSocket, WsContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn serve(&self, socket: WebSocket, ctx: WsContext) -> BoxFuture<'static, ()> {
        Box::pin((self.f)(socket, ctx))
    }
}

/// What a [`WsHandler`] knows about its socket: the user and session from the verified client
/// secret, the subprotocol agreed on, and the server's shutdown signal.
///
/// Its `Debug` output shows the user, never the backend session id.
pub struct WsContext {
    principal: Principal,
    claims: SessionClaims,
    protocol: Option<&'static str>,
    shutdown: ShutdownListener,
}

impl WsContext {
    pub(crate) fn new(
        claims: SessionClaims,
        protocol: Option<&'static str>,
        shutdown: ShutdownListener,
    ) -> Self {
        Self {
            principal: Principal::new(claims.user_id.clone()),
            claims,
            protocol,
            shutdown,
        }
    }

    /// The user the session was issued to.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The verified claims of the client secret: backend session id, user id, expiry.
    pub fn claims(&self) -> &SessionClaims {
        &self.claims
    }

    /// The session and user, as a [`Responder`](crate::backend::Responder) wants them.
    pub fn reply_context(&self) -> ReplyContext {
        ReplyContext::new(self.claims.session_id.clone(), self.claims.user_id.clone())
    }

    /// The subprotocol sent back to the client (`chatkit` when the client offered it).
    pub fn protocol(&self) -> Option<&str> {
        self.protocol
    }

    /// Resolves when the server starts shutting down (at once if it already has). Cancel-safe,
    /// so it can sit in a `tokio::select!` loop.
    pub async fn shutdown(&mut self) {
        self.shutdown.triggered().await;
    }

    /// Whether the server has started shutting down.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_triggered()
    }
}

impl fmt::Debug for WsContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsContext")
            .field("user", &self.principal.id())
            .field("expires_at", &self.claims.expires_at)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}
