use std::fmt;
use std::time::Duration;

use futures_util::stream::{self, BoxStream, StreamExt};

/// One frame of the small chat format the demo responder, the SSE demo and the WebSocket chat
/// speak: `{"type":"delta","text":"…"}` … `{"type":"done"}`, or `{"type":"error","code","error"}`.
///
/// ```
/// use chatkit_tower::backend::ChatFrame;
/// let frame = ChatFrame::Delta { text: "Hi ".into() };
/// assert_eq!(serde_json::to_string(&frame).unwrap(), r#"{"type":"delta","text":"Hi "}"#);
/// assert_eq!(serde_json::to_string(&ChatFrame::Done).unwrap(), r#"{"type":"done"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum ChatFrame {
    /// The next piece of the reply.
    Delta {
        /// Text to append.
        text: String,
    },
    /// The reply is complete.
    Done,
    /// The reply failed; no more frames follow.
    Error {
        /// Machine-readable code (as in the JSON error body).
        code: String,
        /// Words for a person.
        error: String,
    },
}

impl ChatFrame {
    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        // A tagged enum of strings always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Who is being answered: taken from the verified client secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplyContext {
    /// The backend session id sealed in the client secret.
    pub session_id: String,
    /// The user the session belongs to.
    pub user_id: String,
}

impl ReplyContext {
    /// A context for `session_id` and `user_id`.
    pub fn new(session_id: impl Into<String>, user_id: impl Into<String>) -> Self {
        Self {
            session_id: session_id.into(),
            user_id: user_id.into(),
        }
    }
}

/// Produces a reply to a chat message, as a stream of [`ChatFrame`]s ending with `Done` or
/// `Error`. The SSE and WebSocket endpoints serve any `Responder`; a stream that is dropped
/// early (the client went away) must stop its work.
pub trait Responder: Send + Sync + 'static {
    /// Answer `message` from the user in `ctx`.
    fn respond(&self, ctx: ReplyContext, message: String) -> BoxStream<'static, ChatFrame>;
}

impl<R: Responder + ?Sized> Responder for std::sync::Arc<R> {
    fn respond(&self, ctx: ReplyContext, message: String) -> BoxStream<'static, ChatFrame> {
        (**self).respond(ctx, message)
    }
}

/// The demo responder: echoes the message back word by word, pausing between words so that
/// streaming is visible in a browser (`CHATKIT_DEMO_PACE_MS`, default 40 ms; zero sends the
/// words back to back).
///
/// ```
/// use chatkit_tower::backend::{ChatFrame, DemoResponder, ReplyContext, Responder};
/// use futures_util::StreamExt;
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let demo = DemoResponder::new(Duration::ZERO);
/// let frames: Vec<_> = demo.respond(ReplyContext::new("s", "u"), "hello world".into()).collect().await;
/// assert_eq!(frames, [
///     ChatFrame::Delta { text: "hello ".into() },
///     ChatFrame::Delta { text: "world".into() },
///     ChatFrame::Done,
/// ]);
/// # });
/// ```
#[derive(Clone)]
pub struct DemoResponder {
    pace: Duration,
}

impl DemoResponder {
    /// The default pause between words.
    pub const DEFAULT_PACE: Duration = Duration::from_millis(40);

    /// A demo responder pausing `pace` between words.
    pub fn new(pace: Duration) -> Self {
        Self { pace }
    }
}

impl Default for DemoResponder {
    fn default() -> Self {
        Self::new(Self::DEFAULT_PACE)
    }
}

impl fmt::Debug for DemoResponder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoResponder")
            .field("pace", &self.pace)
            .finish()
    }
}

impl Responder for DemoResponder {
    fn respond(&self, _ctx: ReplyContext, message: String) -> BoxStream<'static, ChatFrame> {
        let words: Vec<String> = message
            .split_inclusive(char::is_whitespace)
            .map(str::to_owned)
            .collect();
        let pace = self.pace;
        let deltas =
            stream::iter(words.into_iter().enumerate()).then(move |(i, text)| async move {
                if i > 0 && !pace.is_zero() {
                    tokio::time::sleep(pace).await;
                }
                ChatFrame::Delta { text }
            });
        deltas
            .chain(stream::once(async { ChatFrame::Done }))
            .boxed()
    }
}
