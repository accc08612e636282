//! [`Shutdown`]: tell every open socket that the server is going away, and wait for them.

use std::fmt;
use std::sync::Arc;

use tokio::sync::watch;

/// A graceful-shutdown signal for WebSocket connections, shared by a [`WsService`] and the code
/// that stops the server. Cheap to clone.
///
/// hyper's graceful shutdown does not track upgraded connections: once a socket is upgraded,
/// the HTTP connection is done as far as hyper is concerned. So the server calls
/// [`Shutdown::trigger`] when it starts shutting down: every open socket of the built-in chat
/// sends close `1001` ("going away") and ends, new handshakes are refused with `503`, and
/// [`Shutdown::closed`] resolves once the last socket is gone.
///
/// ```
/// use chatkit_tower::ws::Shutdown;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let shutdown = Shutdown::new();
/// assert!(!shutdown.is_triggered());
/// shutdown.trigger();
/// assert!(shutdown.is_triggered());
/// assert_eq!(shutdown.open_sockets(), 0);
/// shutdown.closed().await; // no socket is open: resolves at once
/// # });
/// ```
///
/// [`WsService`]: crate::ws::WsService
#[derive(Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Shutdown {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Tell every open socket, and every socket opened from now on, that the server is going
    /// away.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether [`trigger`](Self::trigger) was called.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// How many sockets are open (or being upgraded) right now.
    pub fn open_sockets(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Resolves once no socket is open. Put a timeout around it: a handler that ignores the
    /// signal keeps its socket open.
    pub async fn closed(&self) {
        self.tx.closed().await;
    }

    /// A listener held by one socket for as long as it is open.
    pub(crate) fn listen(&self) -> ShutdownListener {
        ShutdownListener {
            rx: self.tx.subscribe(),
        }
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .field("open_sockets", &self.open_sockets())
            .finish()
    }
}

/// One socket's view of the [`Shutdown`] signal.
pub(crate) struct ShutdownListener {
    rx: watch::Receiver<bool>,
}

impl ShutdownListener {
    /// Resolves when the server starts shutting down (at once if it already has); never if the
    /// signal is dropped untriggered. Cancel-safe.
    pub(crate) async fn triggered(&mut self) {
        if self.rx.wait_for(|going| *going).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    pub(crate) fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }
}
