//! [`ChatHandler`]: the built-in chat over a socket, answering from a
//! [`Responder`](crate::backend::Responder).

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{ready, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::sink::{Sink, SinkExt};
use futures_util::stream::{BoxStream, StreamExt};
use tokio::time::{Instant, MissedTickBehavior};

use super::handler::{WsContext, WsHandler};
use super::socket::{close_code, CloseFrame, Message, WebSocket};
use crate::backend::{ChatFrame, Responder};
use crate::error::{ConfigError, ErrorCode};
use crate::BoxFuture;

/// Default interval between the server's pings.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(20);
/// Default time without any frame from the client (pongs count) before the socket is closed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server waits for the client's answer to its close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Chat messages accepted while an earlier one is still being answered; past that the socket
/// is not read until a reply finished (the client's own sends then wait).
const MAX_QUEUED_MESSAGES: usize = 8;
/// Frames waiting to be written (error frames, pings); past that the socket is not read.
const MAX_OUTBOX: usize = 8;

/// The built-in chat: each text frame `{"type":"message","text":"…"}` is answered by the
/// [`Responder`] as `{"type":"delta","text":"…"}` … `{"type":"done"}` frames (or a final
/// `{"type":"error",…}`), one message after the other.
///
/// - A text frame that is not such a message gets an `{"type":"error","code":"BAD_REQUEST",
///   "error":"…"}` frame, and the socket stays open.
/// - A binary frame closes the socket with `1003` (unsupported data); a message over the size
///   limit with `1009`; text that is not UTF-8 with `1007`.
/// - The server pings every [`ping_interval`](ChatHandlerBuilder::ping_interval) so proxies keep
///   the connection, and closes it with `1000` after
///   [`idle_timeout`](ChatHandlerBuilder::idle_timeout) without any frame from the client.
///   Browsers answer pings on their own, so an open tab stays connected and a vanished one is
///   closed.
/// - When the [`Shutdown`](crate::ws::Shutdown) signal fires, the socket is closed with `1001`
///   ("going away").
/// - **Backpressure:** the next frame is taken from the responder only once the previous one
///   was written to the connection. A client that stops reading fills the TCP (or HTTP/2)
///   window, writing stops, and so does the responder: nothing piles up in memory.
///
/// ```
/// use chatkit_tower::backend::DemoResponder;
/// use chatkit_tower::ws::ChatHandler;
/// use std::time::Duration;
///
/// let chat = ChatHandler::builder(DemoResponder::default())
///     .ping_interval(Duration::from_secs(15))
///     .idle_timeout(Duration::from_secs(45))
///     .build()
///     .unwrap();
/// # let _ = chat;
/// assert!(ChatHandler::builder(DemoResponder::default())
///     .idle_timeout(Duration::ZERO)
///     .build()
///     .is_err());
/// ```
#[derive(Clone)]
pub struct ChatHandler {
    inner: Arc<Settings>,
}

struct Settings {
    responder: Arc<dyn Responder>,
    ping_interval: Duration,
    idle_timeout: Duration,
}

impl ChatHandler {
    /// A chat answering from `responder`, with the default ping interval (20 s) and idle
    /// timeout (60 s).
    pub fn new(responder: impl Responder) -> Self {
        Self {
            inner: Arc::new(Settings {
                responder: Arc::new(responder),
                ping_interval: DEFAULT_PING_INTERVAL,
                idle_timeout: DEFAULT_IDLE_TIMEOUT,
            }),
        }
    }

    /// Settings for a chat answering from `responder`.
    pub fn builder(responder: impl Responder) -> ChatHandlerBuilder {
        ChatHandlerBuilder {
            responder: Arc::new(responder),
            ping_interval: DEFAULT_PING_INTERVAL,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

impl fmt::Debug for ChatHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatHandler")
            .field("ping_interval", &self.inner.ping_interval)
            .field("idle_timeout", &self.inner.idle_timeout)
            .finish_non_exhaustive()
    }
}

/// Settings for a [`ChatHandler`].
#[must_use]
pub struct ChatHandlerBuilder {
    responder: Arc<dyn Responder>,
    ping_interval: Duration,
    idle_timeout: Duration,
}

impl fmt::Debug for ChatHandlerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatHandlerBuilder")
            .field("ping_interval", &self.ping_interval)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl ChatHandlerBuilder {
    /// How often the server pings. Default 20 s.
    pub fn ping_interval(mut self, every: Duration) -> Self {
        self.ping_interval = every;
        self
    }

    /// Close the socket (code `1000`) after this long without any frame from the client,
    /// pongs included. Default 60 s. Shorter than the ping interval, it also closes clients
    /// that are connected but silent.
    pub fn idle_timeout(mut self, after: Duration) -> Self {
        self.idle_timeout = after;
        self
    }

    /// Build the handler, or say why the settings cannot work.
    pub fn build(self) -> Result<ChatHandler, ConfigError> {
        if self.ping_interval.is_zero() {
            return Err(ConfigError::new(
                "the WebSocket ping interval must be above zero",
            ));
        }
        if self.idle_timeout.is_zero() {
            return Err(ConfigError::new(
                "the WebSocket idle timeout must be above zero",
            ));
        }
        Ok(ChatHandler {
            inner: Arc::new(Settings {
                responder: self.responder,
                ping_interval: self.ping_interval,
                idle_timeout: self.idle_timeout,
            }),
        })
    }
}

impl WsHandler for ChatHandler {
    fn serve(&self, socket: WebSocket, ctx: WsContext) -> BoxFuture<'static, ()> {
        Box::pin(chat(self.inner.clone(), socket, ctx))
    }
}

/// How a chat socket ended, from the server's side.
enum Ending {
    /// Send this close frame, then wait (briefly) for the client's answer.
    Close(CloseFrame),
    /// The client closed, or the connection is gone: nothing more to send.
    Gone,
}

async fn chat(settings: Arc<Settings>, socket: WebSocket, mut ctx: WsContext) {
    let (mut sink, mut stream) = socket.split();
    let reply_ctx = ctx.reply_context();
    let mut outbox = Outbox::default();
    let mut queued: VecDeque<String> = VecDeque::new();
    let mut reply: Option<BoxStream<'static, ChatFrame>> = None;
    let idle = tokio::time::sleep(settings.idle_timeout);
    tokio::pin!(idle);
    let mut ping = tokio::time::interval_at(
        Instant::now() + settings.ping_interval,
        settings.ping_interval,
    );
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);

    let ending = loop {
        if reply.is_none() {
            if let Some(text) = queued.pop_front() {
                reply = Some(settings.responder.respond(reply_ctx.clone(), text));
            }
        }
        let can_read = queued.len() < MAX_QUEUED_MESSAGES && outbox.len() < MAX_OUTBOX;
        // One frame in flight at most: the responder is polled only once the last frame was
        // written out.
        let can_produce = reply.is_some() && outbox.is_idle();

        tokio::select! {
            biased;
            () = ctx.shutdown() => {
                let frame = CloseFrame::new(close_code::GOING_AWAY, "server shutting down");
                break Ending::Close(frame);
            }
            () = &mut idle => {
                break Ending::Close(CloseFrame::new(close_code::NORMAL, "idle timeout"));
            }
            incoming = stream.next(), if can_read => {
                let msg = match incoming {
                    None => break Ending::Gone,
                    Some(Err(err)) => match err.close_code() {
                        Some(code) => {
                            tracing::debug!(error = %err, "closing the socket");
                            break Ending::Close(CloseFrame::new(code, close_reason(code)));
                        }
                        None => break Ending::Gone,
                    },
                    Some(Ok(msg)) => msg,
                };
                idle.as_mut().reset(Instant::now() + settings.idle_timeout);
                match msg {
                    Message::Text(text) => match parse_message(&text) {
                        Ok(text) => queued.push_back(text),
                        Err(why) => outbox.push(error_frame(ErrorCode::BadRequest, why)),
                    },
                    Message::Binary(_) => {
                        break Ending::Close(CloseFrame::new(
                            close_code::UNSUPPORTED_DATA,
                            "binary frames are not supported; send JSON text frames",
                        ));
                    }
                    Message::Close(_) => {
                        // The close answer is queued by the protocol layer; stop producing and
                        // let the next read flush it and end the stream.
                        reply = None;
                        queued.clear();
                    }
                    Message::Ping(_) | Message::Pong(_) => {}
                }
            }
            // Before writing and producing, which may be ready all the time during a long reply.
            _ = ping.tick() => {
                // One ping waiting is enough for a client that is slow to read.
                if outbox.len() == 0 {
                    outbox.push(Message::Ping(Bytes::new()));
                }
            }
            written = outbox.flush(&mut sink), if !outbox.is_idle() => {
                if written.is_err() {
                    break Ending::Gone;
                }
            }
            frame = next_frame(&mut reply), if can_produce => match frame {
                Some(frame) => outbox.push(Message::Text(frame.to_json())),
                None => reply = None,
            },
        }
    };
    drop(reply);

    if let Ending::Close(frame) = ending {
        tracing::debug!(code = frame.code, reason = %frame.reason, "closing the socket");
        // Best effort and bounded: a client that does not read never gets the close frame.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            if sink.send(Message::Close(Some(frame))).await.is_ok() {
                // The client's answer ends the stream; anything before it is dropped.
                while let Some(Ok(_)) = stream.next().await {}
            }
        })
        .await;
    } else {
        tracing::debug!("the client closed the socket");
    }
}

fn close_reason(code: u16) -> &'static str {
    match code {
        close_code::MESSAGE_TOO_BIG => "message too big",
        close_code::INVALID_PAYLOAD => "text frames must be UTF-8",
        _ => "protocol error",
    }
}

/// The next frame of the reply in progress; `None` when it ended.
async fn next_frame(reply: &mut Option<BoxStream<'static, ChatFrame>>) -> Option<ChatFrame> {
    match reply {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

/// A chat message from the client: `{"type":"message","text":"…"}`.
fn parse_message(text: &str) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Incoming {
        #[serde(rename = "type")]
        kind: String,
        text: Option<serde_json::Value>,
    }
    let incoming: Incoming = serde_json::from_str(text)
        .map_err(|err| format!("expected {{\"type\":\"message\",\"text\":\"…\"}}: {err}"))?;
    if incoming.kind != "message" {
        return Err(format!(
            "unknown frame type {:?}; expected \"message\"",
            truncate(&incoming.kind, 40)
        ));
    }
    match incoming.text {
        Some(serde_json::Value::String(text)) => Ok(text),
        Some(_) => Err("\"text\" must be a string".to_owned()),
        None => Err("the \"text\" field is missing".to_owned()),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    let mut cut = s.len().min(max);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

fn error_frame(code: ErrorCode, error: String) -> Message {
    let frame = ChatFrame::Error {
        code: code.as_str().to_owned(),
        error,
    };
    Message::Text(frame.to_json())
}

/// Messages waiting to be written, written one after the other. All state lives here, so the
/// `flush` future can be dropped by `select!` and called again without losing anything.
#[derive(Default)]
struct Outbox {
    queue: VecDeque<Message>,
    /// A message was handed to the sink but not yet flushed to the connection.
    unflushed: bool,
}

impl Outbox {
    fn push(&mut self, msg: Message) {
        self.queue.push_back(msg);
    }

    fn len(&self) -> usize {
        self.queue.len()
    }

    /// Nothing queued and nothing waiting in the sink.
    fn is_idle(&self) -> bool {
        self.queue.is_empty() && !self.unflushed
    }

    /// Write every queued message and flush; pending while the peer does not read.
    async fn flush<S>(&mut self, sink: &mut S) -> Result<(), S::Error>
    where
        S: Sink<Message> + Unpin,
    {
        poll_fn(|cx| {
            while !self.queue.is_empty() {
                ready!(sink.poll_ready_unpin(cx))?;
                if let Some(msg) = self.queue.pop_front() {
                    sink.start_send_unpin(msg)?;
                    self.unflushed = true;
                }
            }
            ready!(sink.poll_flush_unpin(cx))?;
            self.unflushed = false;
            Poll::Ready(Ok(()))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chat_messages_and_explains_the_rest() {
        assert_eq!(
            parse_message(r#"{"type":"message","text":"hi"}"#),
            Ok("hi".to_owned())
        );
        assert!(parse_message("not json").unwrap_err().contains("expected"));
        assert!(parse_message(r#"{"type":"typing"}"#)
            .unwrap_err()
            .contains("unknown frame type"));
        assert!(parse_message(r#"{"type":"message","text":5}"#)
            .unwrap_err()
            .contains("string"));
        assert!(parse_message(r#"{"type":"message"}"#)
            .unwrap_err()
            .contains("missing"));
    }

    #[test]
    fn error_frames_have_the_chat_shape() {
        let msg = error_frame(ErrorCode::BadRequest, "nope".into());
        let json: serde_json::Value = serde_json::from_str(msg.as_text().unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "error", "code": "BAD_REQUEST", "error": "nope"})
        );
    }

    #[test]
    fn zero_ping_interval_is_refused() {
        let built = ChatHandler::builder(crate::backend::DemoResponder::default())
            .ping_interval(Duration::ZERO)
            .build();
        assert!(built.is_err());
    }
}
