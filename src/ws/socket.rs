//! [`WebSocket`]: an upgraded connection speaking the WebSocket protocol, with the kit's own
//! [`Message`] type so that no tungstenite type crosses the public API.

use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::sink::{Sink, SinkExt};
use futures_util::stream::{FusedStream, Stream, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as TError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as TCloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame as TCloseFrame, Message as TMessage};
use tokio_tungstenite::WebSocketStream;

/// Close codes (RFC 6455 §7.4.1) the kit sends, as plain `u16`s.
///
/// ```
/// use chatkit_tower::ws::close_code;
/// assert_eq!(close_code::MESSAGE_TOO_BIG, 1009);
/// ```
pub mod close_code {
    /// 1000: the purpose of the connection is fulfilled (the kit also uses it for the idle
    /// timeout).
    pub const NORMAL: u16 = 1000;
    /// 1001: the server is going down (graceful shutdown) or the browser left the page.
    pub const GOING_AWAY: u16 = 1001;
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// 1003: a kind of data the endpoint does not accept (the chat refuses binary frames).
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// 1007: a text message that is not valid UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// 1008: a message that violates the endpoint's policy.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// 1009: a message over the size limit.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: u16 = 1011;
}

/// One WebSocket message, sent or received.
///
/// Pings are answered with pongs automatically; receiving [`Message::Ping`] is for information.
///
/// ```
/// use chatkit_tower::ws::Message;
/// let msg = Message::text(r#"{"type":"done"}"#);
/// assert_eq!(msg.as_text(), Some(r#"{"type":"done"}"#));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A UTF-8 text message.
    Text(String),
    /// A binary message.
    Binary(Bytes),
    /// A ping (at most 125 bytes of payload).
    Ping(Bytes),
    /// A pong (at most 125 bytes of payload).
    Pong(Bytes),
    /// A close frame, with its code and reason when the peer sent them.
    Close(Option<CloseFrame>),
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    /// A close message with `code` (see [`close_code`](crate::ws::close_code)) and `reason`.
    ///
    /// ```
    /// use chatkit_tower::ws::{close_code, Message};
    /// let msg = Message::close(close_code::GOING_AWAY, "server shutting down");
    /// assert!(matches!(msg, Message::Close(Some(ref f)) if f.code == 1001));
    /// ```
    pub fn close(code: u16, reason: impl Into<String>) -> Self {
        Self::Close(Some(CloseFrame::new(code, reason)))
    }

    /// The text of a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            _ => None,
        }
    }

    fn into_tungstenite(self) -> TMessage {
        match self {
            Self::Text(text) => TMessage::Text(text.into()),
            Self::Binary(bytes) => TMessage::Binary(bytes),
            Self::Ping(bytes) => TMessage::Ping(bytes),
            Self::Pong(bytes) => TMessage::Pong(bytes),
            Self::Close(frame) => TMessage::Close(frame.map(|f| TCloseFrame {
                code: TCloseCode::from(f.code),
                reason: f.reason.into(),
            })),
        }
    }

    /// `None` for raw frames, which tungstenite never yields when reading.
    fn from_tungstenite(msg: TMessage) -> Option<Self> {
        Some(match msg {
            TMessage::Text(text) => Self::Text(text.as_str().to_owned()),
            TMessage::Binary(bytes) => Self::Binary(bytes),
            TMessage::Ping(bytes) => Self::Ping(bytes),
            TMessage::Pong(bytes) => Self::Pong(bytes),
            TMessage::Close(frame) => Self::Close(frame.map(|f| CloseFrame {
                code: u16::from(f.code),
                reason: f.reason.as_str().to_owned(),
            })),
            TMessage::Frame(_) => return None,
        })
    }
}

/// The code and reason of a close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The close code (see [`close_code`](crate::ws::close_code)).
    pub code: u16,
    /// Words for a person; at most 123 bytes go on the wire.
    pub reason: String,
}

impl CloseFrame {
    /// A close frame with `code` and `reason` (cut on a character boundary to the 123 bytes a
    /// close frame has room for).
    ///
    /// ```
    /// use chatkit_tower::ws::CloseFrame;
    /// let frame = CloseFrame::new(1000, "é".repeat(100));
    /// assert!(frame.reason.len() <= 123);
    /// ```
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        const MAX_REASON: usize = 123;
        let mut reason = reason.into();
        if reason.len() > MAX_REASON {
            let mut cut = MAX_REASON;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
        }
        Self { code, reason }
    }
}

/// Why reading from or writing to a [`WebSocket`] failed.
///
/// [`WsError::close_code`] says which close code answers the failure, where one does (a message
/// over the size limit is answered with `1009`, say).
pub struct WsError {
    inner: Box<TError>,
}

impl WsError {
    fn new(inner: TError) -> Self {
        Self {
            inner: Box::new(inner),
        }
    }

    /// The close code that tells the peer about this failure, when the connection is still
    /// usable for sending one: `1009` for a message over the limit, `1007` for text that is not
    /// UTF-8, `1002` for a protocol violation; `None` for I/O failures and a closed connection.
    pub fn close_code(&self) -> Option<u16> {
        match &*self.inner {
            TError::Capacity(CapacityError::MessageTooLong { .. }) => {
                Some(close_code::MESSAGE_TOO_BIG)
            }
            TError::Capacity(_) => Some(close_code::POLICY_VIOLATION),
            TError::Utf8(_) => Some(close_code::INVALID_PAYLOAD),
            TError::Protocol(_) | TError::AttackAttempt => Some(close_code::PROTOCOL_ERROR),
            _ => None,
        }
    }

    /// Whether the peer sent a message over the configured maximum size.
    pub fn is_message_too_big(&self) -> bool {
        matches!(
            &*self.inner,
            TError::Capacity(CapacityError::MessageTooLong { .. })
        )
    }

    /// Whether the connection is already closed (or was reset by the peer).
    pub fn is_closed(&self) -> bool {
        match &*self.inner {
            TError::ConnectionClosed | TError::AlreadyClosed => true,
            TError::Io(err) => matches!(
                err.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }
}

impl fmt::Debug for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Tungstenite's `Debug` of a full write buffer would print the whole message.
        f.debug_tuple("WsError").field(&self.to_string()).finish()
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.inner {
            TError::WriteBufferFull(_) => f.write_str("the WebSocket write buffer is full"),
            other => fmt::Display::fmt(other, f),
        }
    }
}

impl std::error::Error for WsError {}

/// An upgraded WebSocket connection: a [`Stream`] of received [`Message`]s and a [`Sink`] of
/// messages to send (split it with [`StreamExt::split`] to read and write from two tasks).
///
/// Handed to a [`WsHandler`](crate::ws::WsHandler) once the handshake succeeded. Pings from the
/// peer are answered automatically while the socket is being read; the close handshake too.
pub struct WebSocket {
    inner: WebSocketStream<TokioIo<Upgraded>>,
}

impl WebSocket {
    pub(crate) fn new(inner: WebSocketStream<TokioIo<Upgraded>>) -> Self {
        Self { inner }
    }

    /// The next message; `None` once the connection is closed.
    pub async fn recv(&mut self) -> Option<Result<Message, WsError>> {
        self.next().await
    }

    /// Send `msg` and flush it to the connection, waiting while the peer does not read.
    pub async fn send(&mut self, msg: Message) -> Result<(), WsError> {
        SinkExt::send(self, msg).await
    }

    /// Send a close frame with `code` and `reason` and flush it. Keep reading until `None` to
    /// complete the close handshake, or drop the socket.
    pub async fn close(&mut self, code: u16, reason: impl Into<String>) -> Result<(), WsError> {
        self.send(Message::close(code, reason)).await
    }
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket").finish_non_exhaustive()
    }
}

impl Stream for WebSocket {
    type Item = Result<Message, WsError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            return match ready!(self.inner.poll_next_unpin(cx)) {
                Some(Ok(msg)) => match Message::from_tungstenite(msg) {
                    Some(msg) => Poll::Ready(Some(Ok(msg))),
                    None => continue,
                },
                Some(Err(err)) => Poll::Ready(Some(Err(WsError::new(err)))),
                None => Poll::Ready(None),
            };
        }
    }
}

impl FusedStream for WebSocket {
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }
}

impl Sink<Message> for WebSocket {
    type Error = WsError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.inner.poll_ready_unpin(cx).map_err(WsError::new)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), WsError> {
        self.inner
            .start_send_unpin(item.into_tungstenite())
            .map_err(WsError::new)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.inner.poll_flush_unpin(cx).map_err(WsError::new)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.inner.poll_close_unpin(cx).map_err(WsError::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_tungstenite() {
        let cases = [
            Message::text("hi"),
            Message::Binary(Bytes::from_static(b"\x00\x01")),
            Message::Ping(Bytes::from_static(b"p")),
            Message::Pong(Bytes::new()),
            Message::Close(None),
            Message::close(close_code::MESSAGE_TOO_BIG, "too big"),
        ];
        for msg in cases {
            let back = Message::from_tungstenite(msg.clone().into_tungstenite());
            assert_eq!(back, Some(msg));
        }
    }

    #[test]
    fn errors_map_to_close_codes() {
        let too_long = WsError::new(TError::Capacity(CapacityError::MessageTooLong {
            size: 10,
            max_size: 5,
        }));
        assert_eq!(too_long.close_code(), Some(1009));
        assert!(too_long.is_message_too_big());
        let closed = WsError::new(TError::ConnectionClosed);
        assert_eq!(closed.close_code(), None);
        assert!(closed.is_closed());
        let utf8 = WsError::new(TError::Utf8("bad".into()));
        assert_eq!(utf8.close_code(), Some(1007));
    }

    #[test]
    fn full_write_buffer_is_not_printed() {
        let err = WsError::new(TError::WriteBufferFull(Box::new(TMessage::text(
            "secret payload",
        ))));
        assert!(!format!("{err:?} {err}").contains("secret payload"));
    }
}
