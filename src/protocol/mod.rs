//! The ChatKit custom-backend protocol as serde types, written exactly as the Python SDK
//! (openai-chatkit 1.6.5) writes them.
//!
//! - [`ChatKitRequest`]: the sixteen request types (`{"type", "params", "metadata"}`);
//! - [`ThreadStreamEvent`]: the twelve events of a streamed answer, with [`ThreadItemUpdate`];
//! - [`ThreadItem`]: the eleven item kinds, their content parts, annotations and sources;
//! - [`Thread`], [`ThreadMetadata`], [`ThreadStatus`], [`Page`]; [`Attachment`]; [`Task`] and
//!   [`Workflow`]; structured input.
//!
//! The rules the SDK follows, and these types too:
//!
//! - field names, tags and key order are the SDK's (pydantic writes fields in declaration order,
//!   so an item's `"type"` comes after `id`, `thread_id` and `created_at`);
//! - absent values (`None`) are left out; empty lists and objects, and defaults such as
//!   `"interactive": false` or `"status_indicator": "none"`, are written;
//! - unknown fields are accepted on input (and dropped);
//! - an item, event, update, task, source or content part of a type this version does not know is
//!   kept as raw JSON (`Unknown`), so data stored by a newer protocol still round-trips;
//! - times are [`Timestamp`]s: UTC, microseconds, written without an offset like the SDK's
//!   naive `datetime.now()`.
//!
//! Answers are written with [`to_wire_json`], which also leaves out the integration-only
//! `metadata` of attachments (stores keep it: plain `serde_json` writes it).
//!
//! ```
//! use chatkit_tower::protocol::{ChatKitRequest, ThreadStreamEvent, StreamOptions};
//!
//! let req = ChatKitRequest::from_json(br#"{"type":"threads.create","params":{"input":{"content":[{"type":"input_text","text":"hi"}],"attachments":[],"inference_options":{}}}}"#).unwrap();
//! assert!(req.is_streaming());
//!
//! let event = ThreadStreamEvent::StreamOptions { stream_options: StreamOptions { allow_cancel: true } };
//! assert_eq!(
//!     chatkit_tower::protocol::to_wire_json(&event).unwrap(),
//!     br#"{"type":"stream_options","stream_options":{"allow_cancel":true}}"#
//! );
//! ```

use std::cell::Cell;

use serde::{Deserialize, Serialize};

mod attachment;
mod event;
mod item;
mod request;
pub(crate) mod tagged;
mod task;
mod thread;
mod timestamp;

pub use attachment::{Attachment, FileAttachment, ImageAttachment, UploadDescriptor, UploadMethod};
pub use event::{NoticeLevel, StreamOptions, ThreadItemUpdate, ThreadStreamEvent, STREAM_ERROR};
pub use item::{
    Annotation, AssistantMessageContent, AssistantMessageItem, ClientToolCallItem, EndOfTurnItem,
    EntitySource, FileSource, FreeformInput, GeneratedImage, GeneratedImageItem, HiddenContextItem,
    InferenceOptions, MultipleChoiceInput, SdkHiddenContextItem, Source, StructuredInput,
    StructuredInputAnswer, StructuredInputItem, StructuredInputOption, StructuredInputStatus,
    TaskItem, ThreadItem, ToolCallStatus, ToolChoice, UrlSource, UserMessageContent,
    UserMessageItem, WidgetItem, WorkflowItem,
};
pub use request::{
    Action, AttachmentCreateParams, AttachmentDeleteParams, ChatKitRequest, FeedbackKind,
    InputTranscribeParams, ItemFeedbackParams, ItemsListParams, Order, RequestError,
    StructuredInputSubmission, SubmissionStatus, ThreadAddClientToolOutputParams,
    ThreadAddStructuredInputParams, ThreadAddUserMessageParams, ThreadCreateParams,
    ThreadCustomActionParams, ThreadDeleteParams, ThreadGetByIdParams, ThreadListParams,
    ThreadRetryAfterItemParams, ThreadUpdateParams, UserMessageInput,
};
pub use task::{
    CustomTask, FileTask, ImageTask, SearchTask, StatusIndicator, Task, ThoughtTask, Workflow,
    WorkflowSummary, WorkflowType,
};
pub use thread::{Page, Thread, ThreadMetadata, ThreadStatus};
pub use timestamp::{Timestamp, TimestampError};

/// Free-form JSON object (`dict[str, Any]`): metadata, tool arguments, effect data.
pub type Metadata = serde_json::Map<String, serde_json::Value>;

/// The answer to `input.transcribe`: `{"text"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptionResult {
    /// What goes in the composer.
    pub text: String,
}

/// The answer to `threads.sync_custom_action`: `{"updated_item"?}`.
///
/// ```
/// use chatkit_tower::protocol::SyncCustomActionResponse;
/// assert_eq!(serde_json::to_string(&SyncCustomActionResponse::default()).unwrap(), "{}");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncCustomActionResponse {
    /// The item to show in place of the sender, if it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_item: Option<ThreadItem>,
}

/// Audio to transcribe (the decoded `input.transcribe`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioInput {
    /// The audio bytes.
    pub data: Vec<u8>,
    /// The raw MIME type, e.g. `audio/webm;codecs=opus`.
    pub mime_type: String,
}

impl AudioInput {
    /// The media type without parameters, e.g. `audio/webm`.
    ///
    /// ```
    /// use chatkit_tower::protocol::AudioInput;
    /// let audio = AudioInput { data: vec![], mime_type: "audio/webm;codecs=opus".into() };
    /// assert_eq!(audio.media_type(), "audio/webm");
    /// ```
    pub fn media_type(&self) -> &str {
        self.mime_type.split(';').next().unwrap_or("").trim()
    }
}

thread_local! {
    static WIRE: Cell<bool> = const { Cell::new(false) };
}

/// `value` as the compact JSON the SDK sends: like `serde_json::to_vec`, but without the
/// integration-only `metadata` of attachments (the SDK's `exclude_metadata` context).
pub fn to_wire_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            WIRE.with(|w| w.set(self.0));
        }
    }
    let _restore = Restore(WIRE.with(|w| w.replace(true)));
    serde_json::to_vec(value)
}

/// Leave attachment metadata out when it is absent or when writing for the wire.
pub(crate) fn skip_integration_metadata(metadata: &Option<Metadata>) -> bool {
    metadata.is_none() || WIRE.with(Cell::get)
}
