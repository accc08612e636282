//! [`Assistant`]: the application behind the protocol — what answers messages and actions.

use std::fmt;
use std::sync::{Arc, Mutex};

use futures_util::stream::{self, BoxStream, StreamExt};

use crate::error::{BoxError, Error};
use crate::protocol::{
    Action, AudioInput, FeedbackKind, SdkHiddenContextItem, StreamOptions,
    SyncCustomActionResponse, ThreadItem, ThreadMetadata, ThreadStreamEvent, Timestamp,
    TranscriptionResult, UserMessageItem, WidgetItem, STREAM_ERROR,
};
use crate::BoxFuture;

use super::store::{IdKind, Store, StoreError};
use super::RequestContext;

/// The events an [`Assistant`] streams; an `Err` ends the answer with an `error` event.
pub type EventStream = BoxStream<'static, Result<ThreadStreamEvent, StreamError>>;

/// The text the SDK stores (hidden) when the user stops an answer.
pub const CANCELLED_CONTEXT: &str =
    "The user cancelled the stream. Stop responding to the prior request.";

/// The thread an answer is about, shared between the [`Assistant`] and the service.
///
/// Change it (a title, a status) with [`update`](Self::update) while streaming: the service
/// saves it and sends `thread.updated` after the next event (or at the end), as the SDK does.
///
/// ```
/// use chatkit_tower::chatkit::ThreadHandle;
/// use chatkit_tower::protocol::ThreadMetadata;
///
/// let thread = ThreadHandle::new(ThreadMetadata::new("thr_1"));
/// thread.update(|t| t.title = Some("Greeting".into()));
/// assert_eq!(thread.get().title.as_deref(), Some("Greeting"));
/// ```
#[derive(Clone)]
pub struct ThreadHandle(Arc<Mutex<ThreadMetadata>>);

impl ThreadHandle {
    /// A handle on `thread`.
    pub fn new(thread: ThreadMetadata) -> Self {
        Self(Arc::new(Mutex::new(thread)))
    }

    /// The thread as it is now.
    pub fn get(&self) -> ThreadMetadata {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The thread id.
    pub fn id(&self) -> String {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).id.clone()
    }

    /// Change the thread.
    pub fn update<R>(&self, change: impl FnOnce(&mut ThreadMetadata) -> R) -> R {
        change(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl fmt::Debug for ThreadHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ThreadHandle").field(&self.get()).finish()
    }
}

/// Why an answer failed, as the client will see it (an `error` event; the HTTP status stays 200).
///
/// - [`StreamError::other`] (any failure): `stream.error` with a retry offered, the SDK's
///   generic error;
/// - [`StreamError::code`]: a code the client localizes;
/// - [`StreamError::custom`]: a message the client shows as it is.
///
/// ```
/// use chatkit_tower::chatkit::StreamError;
/// let err = StreamError::custom("Out of credits", false);
/// assert_eq!(
///     serde_json::to_string(&err.to_event()).unwrap(),
///     r#"{"type":"error","code":"custom","message":"Out of credits","allow_retry":false}"#
/// );
/// ```
pub struct StreamError(Kind);

enum Kind {
    Code { code: String, allow_retry: bool },
    Custom { message: String, allow_retry: bool },
    Other(BoxError),
}

impl StreamError {
    /// An error with a code the client localizes; `allow_retry` defaults to `true` for
    /// `stream.error` and `false` for other codes, as in the SDK.
    pub fn code(code: impl Into<String>, allow_retry: Option<bool>) -> Self {
        let code = code.into();
        let allow_retry = allow_retry.unwrap_or(code == STREAM_ERROR);
        Self(Kind::Code { code, allow_retry })
    }

    /// An error whose message the client shows as it is.
    pub fn custom(message: impl Into<String>, allow_retry: bool) -> Self {
        Self(Kind::Custom {
            message: message.into(),
            allow_retry,
        })
    }

    /// Any other failure: logged, and sent as `stream.error` with a retry offered.
    pub fn other(err: impl Into<BoxError>) -> Self {
        Self(Kind::Other(err.into()))
    }

    /// The `error` event the client receives.
    pub fn to_event(&self) -> ThreadStreamEvent {
        match &self.0 {
            Kind::Code { code, allow_retry } => ThreadStreamEvent::Error {
                code: code.clone(),
                message: None,
                allow_retry: *allow_retry,
            },
            Kind::Custom {
                message,
                allow_retry,
            } => ThreadStreamEvent::custom_error(message.clone(), *allow_retry),
            Kind::Other(_) => ThreadStreamEvent::stream_error(true),
        }
    }
}

impl fmt::Debug for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Code { code, allow_retry } => f
                .debug_struct("StreamError")
                .field("code", code)
                .field("allow_retry", allow_retry)
                .finish(),
            Kind::Custom {
                message,
                allow_retry,
            } => f
                .debug_struct("StreamError")
                .field("message", message)
                .field("allow_retry", allow_retry)
                .finish(),
            Kind::Other(err) => f.debug_tuple("StreamError").field(err).finish(),
        }
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Code { code, .. } => write!(f, "stream error {code}"),
            Kind::Custom { message, .. } => f.write_str(message),
            Kind::Other(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            Kind::Other(err) => Some(err.as_ref()),
            _ => None,
        }
    }
}

impl From<StoreError> for StreamError {
    fn from(err: StoreError) -> Self {
        Self::other(err)
    }
}

impl From<Error> for StreamError {
    fn from(err: Error) -> Self {
        Self::other(err)
    }
}

/// A stream of one error: what the default [`Assistant::action`] answers.
pub fn error_stream(err: StreamError) -> EventStream {
    stream::once(async move { Err(err) }).boxed()
}

/// The application behind a [`ChatKitService`](super::ChatKitService) — the Rust counterpart
/// of the SDK's `ChatKitServer`: it answers a user message with a stream of events, and
/// optionally handles actions, dictation and feedback.
///
/// Only [`respond`](Self::respond) is required. The service does the bookkeeping around it:
/// it persists items on `thread.item.done` / `replaced` / `removed`, never sends hidden-context
/// items, sends `thread.updated` when the [`ThreadHandle`] changed, turns an `Err` into an
/// `error` event, and, when the client goes away mid-answer, runs
/// [`handle_stream_cancelled`](Self::handle_stream_cancelled).
///
/// See [`EchoAssistant`](super::EchoAssistant) for a complete implementation.
pub trait Assistant: Send + Sync + 'static {
    /// Answer `input` (the new user message; `None` after a client tool output or a structured
    /// input) in `thread`.
    fn respond(
        &self,
        thread: ThreadHandle,
        input: Option<UserMessageItem>,
        ctx: RequestContext,
    ) -> EventStream;

    /// Answer a widget or client action (`threads.custom_action`); `sender` is the widget item
    /// that sent it, if any. Default: an `error` event (`stream.error`), as the SDK's default
    /// does.
    fn action(
        &self,
        thread: ThreadHandle,
        action: Action,
        sender: Option<WidgetItem>,
        ctx: RequestContext,
    ) -> EventStream {
        let _ = (thread, sender, ctx);
        error_stream(StreamError::other(format!(
            "this assistant does not handle actions (got {:?})",
            action.kind
        )))
    }

    /// Handle a non-streaming action (`threads.sync_custom_action`). Default: `400 BAD_REQUEST`.
    fn sync_action(
        &self,
        thread: ThreadMetadata,
        action: Action,
        sender: Option<WidgetItem>,
        ctx: RequestContext,
    ) -> BoxFuture<'static, Result<SyncCustomActionResponse, Error>> {
        let _ = (thread, action, sender, ctx);
        Box::pin(async {
            Err(Error::bad_request(
                "this assistant does not handle threads.sync_custom_action",
            ))
        })
    }

    /// Transcribe dictated audio (`input.transcribe`). Default: `400 BAD_REQUEST`.
    fn transcribe(
        &self,
        audio: AudioInput,
        ctx: RequestContext,
    ) -> BoxFuture<'static, Result<TranscriptionResult, Error>> {
        let _ = (audio, ctx);
        Box::pin(async {
            Err(Error::bad_request(
                "this assistant does not handle input.transcribe",
            ))
        })
    }

    /// Record thumbs up or down on items of a thread the user owns. Default: nothing.
    fn add_feedback(
        &self,
        thread_id: String,
        item_ids: Vec<String>,
        kind: FeedbackKind,
        ctx: RequestContext,
    ) -> BoxFuture<'static, Result<(), Error>> {
        let _ = (thread_id, item_ids, kind, ctx);
        Box::pin(async { Ok(()) })
    }

    /// The options sent first in every stream. Default: `{"allow_cancel": true}`.
    fn stream_options(&self, thread: &ThreadMetadata, ctx: &RequestContext) -> StreamOptions {
        let _ = (thread, ctx);
        StreamOptions::default()
    }

    /// The client went away mid-answer; `pending` are the items added but not done, as far as
    /// they got. Runs in a task of its own, bounded by the service's
    /// [cancel timeout](super::ChatKitServiceBuilder::cancel_timeout). Default:
    /// [`save_cancelled_answer`] (the SDK's behaviour).
    fn handle_stream_cancelled(
        &self,
        store: Arc<dyn Store>,
        thread: ThreadMetadata,
        pending: Vec<ThreadItem>,
        ctx: RequestContext,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        Box::pin(save_cancelled_answer(store, thread, pending, ctx))
    }
}

impl<A: Assistant + ?Sized> Assistant for Arc<A> {
    fn respond(
        &self,
        thread: ThreadHandle,
        input: Option<UserMessageItem>,
        ctx: RequestContext,
    ) -> EventStream {
        (**self).respond(thread, input, ctx)
    }

    fn action(
        &self,
        thread: ThreadHandle,
        action: Action,
        sender: Option<WidgetItem>,
        ctx: RequestContext,
    ) -> EventStream {
        (**self).action(thread, action, sender, ctx)
    }

    fn sync_action(
        &self,
        thread: ThreadMetadata,
        action: Action,
        sender: Option<WidgetItem>,
        ctx: RequestContext,
    ) -> BoxFuture<'static, Result<SyncCustomActionResponse, Error>> {
        (**self).sync_action(thread, action, sender, ctx)
    }

    fn transcribe(
        &self,
        audio: AudioInput,
        ctx: RequestContext,
    ) -> BoxFuture<'static, Result<TranscriptionResult, Error>> {
        (**self).transcribe(audio, ctx)
    }

    fn add_feedback(
        &self,
        thread_id: String,
        item_ids: Vec<String>,
        kind: FeedbackKind,
        ctx: RequestContext,
    ) -> BoxFuture<'static, Result<(), Error>> {
        (**self).add_feedback(thread_id, item_ids, kind, ctx)
    }

    fn stream_options(&self, thread: &ThreadMetadata, ctx: &RequestContext) -> StreamOptions {
        (**self).stream_options(thread, ctx)
    }

    fn handle_stream_cancelled(
        &self,
        store: Arc<dyn Store>,
        thread: ThreadMetadata,
        pending: Vec<ThreadItem>,
        ctx: RequestContext,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        (**self).handle_stream_cancelled(store, thread, pending, ctx)
    }
}

/// What the SDK does when the user stops an answer: save each pending assistant message that
/// has text, then a hidden [`SdkHiddenContextItem`] ([`CANCELLED_CONTEXT`]) so the next answer
/// does not carry on with the stopped one.
pub async fn save_cancelled_answer(
    store: Arc<dyn Store>,
    thread: ThreadMetadata,
    pending: Vec<ThreadItem>,
    ctx: RequestContext,
) -> Result<(), StoreError> {
    for item in &pending {
        if let ThreadItem::AssistantMessage(message) = item {
            if message
                .content
                .iter()
                .any(|part| !part.text.trim().is_empty())
            {
                store.add_thread_item(&thread.id, item, &ctx).await?;
            }
        }
    }
    let hidden = ThreadItem::SdkHiddenContext(SdkHiddenContextItem {
        id: store.generate_item_id(IdKind::SdkHiddenContext, &thread, &ctx),
        thread_id: thread.id.clone(),
        created_at: Timestamp::now(),
        content: CANCELLED_CONTEXT.to_owned(),
    });
    store.add_thread_item(&thread.id, &hidden, &ctx).await
}
