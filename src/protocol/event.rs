//! The events of a streamed answer, and the updates an item can receive.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::item::{Annotation, AssistantMessageContent, GeneratedImage, ThreadItem};
use super::tagged::open_enum;
use super::task::Task;
use super::thread::Thread;
use super::Metadata;

/// The SDK's generic error code: the client shows a localized "something went wrong".
pub const STREAM_ERROR: &str = "stream.error";

/// Settings the client applies to the stream it is reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamOptions {
    /// Whether the client shows a stop button.
    pub allow_cancel: bool,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self { allow_cancel: true }
    }
}

/// How prominent a notice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoticeLevel {
    /// Informational.
    Info,
    /// A warning.
    Warning,
    /// Something went badly.
    Danger,
}

/// One event of a streamed answer, written as one `data: <json>\n\n` SSE event.
///
/// An event of a type this version does not know round-trips as raw JSON.
///
/// ```
/// use chatkit_tower::protocol::{ThreadItemUpdate, ThreadStreamEvent};
/// let event = ThreadStreamEvent::ItemUpdated {
///     item_id: "msg_asst".into(),
///     update: ThreadItemUpdate::TextDelta { content_index: 0, delta: "Hel".into() },
/// };
/// assert_eq!(
///     serde_json::to_string(&event).unwrap(),
///     r#"{"type":"thread.item.updated","item_id":"msg_asst","update":{"type":"assistant_message.content_part.text_delta","content_index":0,"delta":"Hel"}}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", tag = "type")]
#[non_exhaustive]
pub enum ThreadStreamEvent {
    /// `thread.created`
    #[serde(rename = "thread.created")]
    ThreadCreated {
        /// The new thread.
        thread: Thread,
    },
    /// `thread.updated`
    #[serde(rename = "thread.updated")]
    ThreadUpdated {
        /// The thread as it is now.
        thread: Thread,
    },
    /// `thread.item.added`: an item starts streaming.
    #[serde(rename = "thread.item.added")]
    ItemAdded {
        /// The item so far.
        item: ThreadItem,
    },
    /// `thread.item.updated`: a piece of a streaming item.
    #[serde(rename = "thread.item.updated")]
    ItemUpdated {
        /// The item updated.
        item_id: String,
        /// The update.
        update: ThreadItemUpdate,
    },
    /// `thread.item.done`: an item is complete (and is stored).
    #[serde(rename = "thread.item.done")]
    ItemDone {
        /// The complete item.
        item: ThreadItem,
    },
    /// `thread.item.removed` (the item is deleted from the store).
    #[serde(rename = "thread.item.removed")]
    ItemRemoved {
        /// The item removed.
        item_id: String,
    },
    /// `thread.item.replaced` (the item is saved over the stored one).
    #[serde(rename = "thread.item.replaced")]
    ItemReplaced {
        /// The new item.
        item: ThreadItem,
    },
    /// `stream_options`: sent first in every stream.
    #[serde(rename = "stream_options")]
    StreamOptions {
        /// The options.
        stream_options: StreamOptions,
    },
    /// `progress_update`: what the assistant is doing.
    #[serde(rename = "progress_update")]
    ProgressUpdate {
        /// An icon name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        icon: Option<String>,
        /// The text.
        text: String,
    },
    /// `client_effect`: ask the client to run an effect (`onEffect`).
    #[serde(rename = "client_effect")]
    ClientEffect {
        /// The effect name.
        name: String,
        /// Its data.
        #[serde(default)]
        data: Metadata,
    },
    /// `error`: the answer failed.
    #[serde(rename = "error")]
    Error {
        /// [`STREAM_ERROR`] (a localized message on the client) or `"custom"` (shows `message`).
        #[serde(default = "custom_code")]
        code: String,
        /// The message for `"custom"`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// Whether the client offers a retry.
        #[serde(default)]
        allow_retry: bool,
    },
    /// `notice`: a message for the user (markdown).
    #[serde(rename = "notice")]
    Notice {
        /// How prominent.
        level: NoticeLevel,
        /// The message (markdown).
        message: String,
        /// A title.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
    },
    /// An event of a type this version does not know, kept as it came.
    #[serde(skip)]
    Unknown(Value),
}
open_enum!(
    ThreadStreamEvent,
    [
        "thread.created",
        "thread.updated",
        "thread.item.added",
        "thread.item.updated",
        "thread.item.done",
        "thread.item.removed",
        "thread.item.replaced",
        "stream_options",
        "progress_update",
        "client_effect",
        "error",
        "notice",
    ]
);

fn custom_code() -> String {
    "custom".to_owned()
}

impl ThreadStreamEvent {
    /// The generic error the SDK sends when an answer fails: `stream.error`, retry offered.
    ///
    /// ```
    /// use chatkit_tower::protocol::ThreadStreamEvent;
    /// assert_eq!(
    ///     serde_json::to_string(&ThreadStreamEvent::stream_error(true)).unwrap(),
    ///     r#"{"type":"error","code":"stream.error","allow_retry":true}"#
    /// );
    /// ```
    pub fn stream_error(allow_retry: bool) -> Self {
        Self::Error {
            code: STREAM_ERROR.to_owned(),
            message: None,
            allow_retry,
        }
    }

    /// An error with a message the client shows as it is.
    pub fn custom_error(message: impl Into<String>, allow_retry: bool) -> Self {
        Self::Error {
            code: custom_code(),
            message: Some(message.into()),
            allow_retry,
        }
    }
}

/// An update to a streaming item (the `update` of `thread.item.updated`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", tag = "type")]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // boxing would make the variants awkward to build and match
pub enum ThreadItemUpdate {
    /// `assistant_message.content_part.added`
    #[serde(rename = "assistant_message.content_part.added")]
    ContentPartAdded {
        /// Which part.
        content_index: usize,
        /// The part.
        content: AssistantMessageContent,
    },
    /// `assistant_message.content_part.text_delta`
    #[serde(rename = "assistant_message.content_part.text_delta")]
    TextDelta {
        /// Which part.
        content_index: usize,
        /// Text to append.
        delta: String,
    },
    /// `assistant_message.content_part.annotation_added`
    #[serde(rename = "assistant_message.content_part.annotation_added")]
    AnnotationAdded {
        /// Which part.
        content_index: usize,
        /// Where in the part's annotations.
        annotation_index: usize,
        /// The annotation.
        annotation: Annotation,
    },
    /// `assistant_message.content_part.done`
    #[serde(rename = "assistant_message.content_part.done")]
    ContentPartDone {
        /// Which part.
        content_index: usize,
        /// The final part.
        content: AssistantMessageContent,
    },
    /// `widget.streaming_text.value_delta`
    #[serde(rename = "widget.streaming_text.value_delta")]
    WidgetTextDelta {
        /// The component streaming.
        component_id: String,
        /// Text to append.
        delta: String,
        /// Whether the text is complete.
        done: bool,
    },
    /// `widget.root.updated`
    #[serde(rename = "widget.root.updated")]
    WidgetRootUpdated {
        /// The new widget tree.
        widget: Value,
    },
    /// `widget.component.updated`
    #[serde(rename = "widget.component.updated")]
    WidgetComponentUpdated {
        /// The component.
        component_id: String,
        /// Its new tree.
        component: Value,
    },
    /// `workflow.task.added`
    #[serde(rename = "workflow.task.added")]
    TaskAdded {
        /// Where.
        task_index: usize,
        /// The task.
        task: Task,
    },
    /// `workflow.task.updated`
    #[serde(rename = "workflow.task.updated")]
    TaskUpdated {
        /// Which task.
        task_index: usize,
        /// The task now.
        task: Task,
    },
    /// `generated_image.updated`
    #[serde(rename = "generated_image.updated")]
    GeneratedImageUpdated {
        /// The image.
        image: GeneratedImage,
        /// Progress, 0 to 1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        progress: Option<f64>,
    },
    /// An update of a type this version does not know, kept as it came.
    #[serde(skip)]
    Unknown(Value),
}
open_enum!(
    ThreadItemUpdate,
    [
        "assistant_message.content_part.added",
        "assistant_message.content_part.text_delta",
        "assistant_message.content_part.annotation_added",
        "assistant_message.content_part.done",
        "widget.streaming_text.value_delta",
        "widget.root.updated",
        "widget.component.updated",
        "workflow.task.added",
        "workflow.task.updated",
        "generated_image.updated",
    ]
);

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(json: &str) -> ThreadStreamEvent {
        let event: ThreadStreamEvent = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&event).unwrap(), json);
        event
    }

    #[test]
    fn sdk_events_round_trip_byte_for_byte() {
        for json in [
            r#"{"type":"thread.created","thread":{"id":"thr_2635644e","created_at":"2026-11-24T14:20:34.348767","status":{"type":"active"},"metadata":{},"items":{"data":[],"has_more":false}}}"#,
            r#"{"type":"thread.updated","thread":{"id":"thr_1","created_at":"2025-01-01T00:00:00","status":{"type":"locked","reason":"limit"},"metadata":{},"items":{"data":[],"has_more":false}}}"#,
            r#"{"type":"thread.item.added","item":{"id":"msg_asst","thread_id":"thr_2635644e","created_at":"2025-10-06T12:00:00","type":"assistant_message","content":[]}}"#,
            r#"{"type":"thread.item.updated","item_id":"msg_asst","update":{"type":"assistant_message.content_part.text_delta","content_index":0,"delta":"Hel"}}"#,
            r#"{"type":"thread.item.done","item":{"id":"msg_asst","thread_id":"thr_2635644e","created_at":"2025-10-06T12:00:00","type":"assistant_message","content":[{"annotations":[],"text":"Hello","type":"output_text"}]}}"#,
            r#"{"type":"thread.item.removed","item_id":"msg_1"}"#,
            r#"{"type":"stream_options","stream_options":{"allow_cancel":true}}"#,
            r#"{"type":"progress_update","icon":"sparkle","text":"Thinking"}"#,
            r#"{"type":"client_effect","name":"confetti","data":{"n":1}}"#,
            r#"{"type":"error","code":"stream.error","allow_retry":true}"#,
            r#"{"type":"error","code":"custom","message":"nope","allow_retry":false}"#,
            r#"{"type":"notice","level":"info","message":"heads up"}"#,
            r#"{"type":"thread.item.done","item":{"id":"tc_1","thread_id":"thr_1","created_at":"2025-01-01T00:00:00","type":"client_tool_call","status":"pending","call_id":"call_1","name":"switch_theme","arguments":{"theme":"dark"}}}"#,
            r#"{"type":"thread.item.updated","item_id":"w","update":{"type":"widget.streaming_text.value_delta","component_id":"c","delta":"x","done":false}}"#,
            r#"{"type":"thread.item.updated","item_id":"w","update":{"type":"workflow.task.added","task_index":0,"task":{"status_indicator":"loading","type":"custom","title":"T"}}}"#,
            r#"{"type":"thread.item.updated","item_id":"g","update":{"type":"generated_image.updated","image":{"id":"i","url":"https://x"},"progress":0.5}}"#,
        ] {
            round_trip(json);
        }
    }

    #[test]
    fn events_and_updates_from_a_newer_protocol_are_kept() {
        let event = round_trip(r#"{"type":"thread.teleported","where":"mars"}"#);
        assert!(matches!(event, ThreadStreamEvent::Unknown(_)));
        let event = round_trip(
            r#"{"type":"thread.item.updated","item_id":"m","update":{"type":"assistant_message.sang","note":"la"}}"#,
        );
        assert!(matches!(
            event,
            ThreadStreamEvent::ItemUpdated {
                update: ThreadItemUpdate::Unknown(_),
                ..
            }
        ));
    }

    #[test]
    fn an_error_event_defaults_to_a_custom_code() {
        let event: ThreadStreamEvent = serde_json::from_str(r#"{"type":"error"}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"type":"error","code":"custom","allow_retry":false}"#
        );
    }
}
