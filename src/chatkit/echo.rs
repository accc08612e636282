//! [`EchoAssistant`]: streams the user's words back.

use std::time::Duration;

use futures_util::stream::{self, StreamExt};

use crate::error::Error;
use crate::protocol::{
    Action, AssistantMessageContent, AssistantMessageItem, AudioInput, SyncCustomActionResponse,
    ThreadItem, ThreadItemUpdate, ThreadStreamEvent, Timestamp, TranscriptionResult,
    UserMessageItem, WidgetItem,
};
use crate::BoxFuture;

use super::assistant::{Assistant, EventStream, ThreadHandle};
use super::store::{generate_id, IdKind};
use super::RequestContext;

/// The longest thread title the echo assistant sets, in characters.
const TITLE_CHARS: usize = 40;

/// A demo [`Assistant`] that streams the user's words back as an assistant message, pausing
/// between words so that streaming shows in a browser (`CHATKIT_DEMO_PACE_MS`, default 40 ms,
/// as the [demo responder](crate::backend::DemoResponder); zero for tests and benchmarks).
///
/// For each answer it sends `thread.item.added` (an empty assistant message),
/// `assistant_message.content_part.added`, one `text_delta` per word,
/// `assistant_message.content_part.done` and `thread.item.done` with the whole text. The first
/// message also gives the thread a title (its first 40 characters), so the stream ends with
/// `thread.updated`. An action (`threads.custom_action`) is answered with a message naming it;
/// a sync action returns `{}`, or the sending widget with `copy_text` set to the action type;
/// dictation returns a description of the audio.
///
/// ```
/// use chatkit_tower::chatkit::{Assistant, EchoAssistant, RequestContext, ThreadHandle};
/// use chatkit_tower::protocol::{ThreadMetadata, ThreadStreamEvent, Timestamp, UserMessageContent, UserMessageItem};
/// use futures_util::StreamExt;
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let echo = EchoAssistant::new(Duration::ZERO);
/// let thread = ThreadHandle::new(ThreadMetadata::new("thr_1"));
/// let message = UserMessageItem {
///     id: "msg_1".into(),
///     thread_id: "thr_1".into(),
///     created_at: Timestamp::now(),
///     content: vec![UserMessageContent::text("hello world")],
///     attachments: vec![],
///     quoted_text: None,
///     inference_options: Default::default(),
/// };
/// let events: Vec<_> = echo.respond(thread.clone(), Some(message), RequestContext::new("u")).collect().await;
/// assert_eq!(events.len(), 6); // added, part added, 2 deltas, part done, done
/// assert!(matches!(events[5], Ok(ThreadStreamEvent::ItemDone { .. })));
/// assert_eq!(thread.get().title.as_deref(), Some("hello world"));
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct EchoAssistant {
    pace: Duration,
}

impl EchoAssistant {
    /// The default pause between words.
    pub const DEFAULT_PACE: Duration = Duration::from_millis(40);

    /// An echo assistant pausing `pace` between words.
    pub fn new(pace: Duration) -> Self {
        Self { pace }
    }

    /// Stream `text` as an assistant message; then, if `title` is set and the thread has no
    /// title yet, give it one.
    fn say(&self, thread: ThreadHandle, text: String, title: Option<String>) -> EventStream {
        let thread_id = thread.id();
        let message = AssistantMessageItem {
            id: generate_id(IdKind::Message),
            thread_id,
            created_at: Timestamp::now(),
            content: Vec::new(),
        };
        let id = message.id.clone();
        let update = |update| ThreadStreamEvent::ItemUpdated {
            item_id: id.clone(),
            update,
        };
        let head = vec![
            ThreadStreamEvent::ItemAdded {
                item: ThreadItem::AssistantMessage(message.clone()),
            },
            update(ThreadItemUpdate::ContentPartAdded {
                content_index: 0,
                content: AssistantMessageContent::new(""),
            }),
        ];
        let words: Vec<ThreadStreamEvent> = text
            .split_inclusive(char::is_whitespace)
            .map(|word| {
                update(ThreadItemUpdate::TextDelta {
                    content_index: 0,
                    delta: word.to_owned(),
                })
            })
            .collect();
        let mut done = message;
        done.content = vec![AssistantMessageContent::new(text.clone())];
        let tail = vec![
            update(ThreadItemUpdate::ContentPartDone {
                content_index: 0,
                content: AssistantMessageContent::new(text),
            }),
            ThreadStreamEvent::ItemDone {
                item: ThreadItem::AssistantMessage(done),
            },
        ];
        let pace = self.pace;
        let paced =
            stream::iter(words.into_iter().enumerate()).then(move |(i, event)| async move {
                if i > 0 && !pace.is_zero() {
                    tokio::time::sleep(pace).await;
                }
                event
            });
        let titled = stream::once(async move {
            if let Some(title) = title.filter(|t| !t.is_empty()) {
                thread.update(|t| {
                    if t.title.is_none() {
                        t.title = Some(title);
                    }
                });
            }
        })
        .filter_map(|()| async { None });
        stream::iter(head)
            .chain(paced)
            .chain(stream::iter(tail))
            .chain(titled)
            .map(Ok)
            .boxed()
    }
}

impl Default for EchoAssistant {
    fn default() -> Self {
        Self::new(Self::DEFAULT_PACE)
    }
}

/// The first words of `text`, whitespace collapsed, at most [`TITLE_CHARS`] characters.
fn title_of(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(TITLE_CHARS)
        .collect()
}

impl Assistant for EchoAssistant {
    fn respond(
        &self,
        thread: ThreadHandle,
        input: Option<UserMessageItem>,
        _ctx: RequestContext,
    ) -> EventStream {
        match input {
            Some(message) => {
                let text = message.text();
                let title = title_of(&text);
                self.say(thread, text, Some(title))
            }
            None => self.say(thread, "Thanks, got it.".to_owned(), None),
        }
    }

    fn action(
        &self,
        thread: ThreadHandle,
        action: Action,
        _sender: Option<WidgetItem>,
        _ctx: RequestContext,
    ) -> EventStream {
        self.say(
            thread,
            format!("You sent the action {}.", action.kind),
            None,
        )
    }

    fn sync_action(
        &self,
        _thread: crate::protocol::ThreadMetadata,
        action: Action,
        sender: Option<WidgetItem>,
        _ctx: RequestContext,
    ) -> BoxFuture<'static, Result<SyncCustomActionResponse, Error>> {
        let updated_item = sender.map(|mut widget| {
            widget.copy_text = Some(action.kind);
            ThreadItem::Widget(widget)
        });
        Box::pin(async move { Ok(SyncCustomActionResponse { updated_item }) })
    }

    fn transcribe(
        &self,
        audio: AudioInput,
        _ctx: RequestContext,
    ) -> BoxFuture<'static, Result<TranscriptionResult, Error>> {
        let text = format!("{} bytes of {}", audio.data.len(), audio.media_type());
        Box::pin(async move { Ok(TranscriptionResult { text }) })
    }
}
