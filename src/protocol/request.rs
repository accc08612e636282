//! Requests: `{"type", "params", "metadata"}`, one of sixteen types.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::item::{InferenceOptions, UserMessageContent};
use super::Metadata;

/// A page order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Oldest first.
    Asc,
    /// Newest first (the default).
    #[default]
    Desc,
}

/// Thumbs up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedbackKind {
    /// Thumbs up.
    Positive,
    /// Thumbs down.
    Negative,
}

/// What the user sent: the composer's content, attachment ids, quoted text, model and tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserMessageInput {
    /// The message parts.
    pub content: Vec<UserMessageContent>,
    /// Ids of attachments created before (`attachments.create` or a direct upload).
    #[serde(default)]
    pub attachments: Vec<String>,
    /// Text the user quoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoted_text: Option<String>,
    /// The model and tool picked.
    #[serde(default)]
    pub inference_options: InferenceOptions,
}

/// A widget or client action: `{"type", "payload"?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// The action type, as the widget declares it.
    #[serde(rename = "type")]
    pub kind: String,
    /// The action's payload.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub payload: Value,
}

/// Answers to a pending structured input item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StructuredInputSubmission {
    /// `answered` (the default) or `skipped`.
    #[serde(default)]
    pub status: SubmissionStatus,
    /// Answers by input id.
    #[serde(default)]
    pub answers: std::collections::BTreeMap<String, super::item::StructuredInputAnswer>,
}

/// Whether a structured input was answered or skipped as a whole.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubmissionStatus {
    /// Answered.
    #[default]
    Answered,
    /// Skipped.
    Skipped,
}

macro_rules! params {
    ($( $(#[$meta:meta])* pub struct $name:ident { $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )* } )*) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
            pub struct $name {
                $( $(#[$fmeta])* pub $field: $ty, )*
            }
        )*
    };
}

params! {
    /// `threads.create`
    pub struct ThreadCreateParams {
        /// The first message.
        pub input: UserMessageInput,
    }
    /// `threads.add_user_message`
    pub struct ThreadAddUserMessageParams {
        /// The message.
        pub input: UserMessageInput,
        /// The thread.
        pub thread_id: String,
    }
    /// `threads.add_client_tool_output`
    pub struct ThreadAddClientToolOutputParams {
        /// The thread.
        pub thread_id: String,
        /// The tool's output (any JSON).
        pub result: Value,
    }
    /// `threads.add_structured_input`
    pub struct ThreadAddStructuredInputParams {
        /// The thread.
        pub thread_id: String,
        /// The structured input item answered.
        pub item_id: String,
        /// The answers.
        pub input: StructuredInputSubmission,
    }
    /// `threads.retry_after_item`
    pub struct ThreadRetryAfterItemParams {
        /// The thread.
        pub thread_id: String,
        /// The user message to answer again.
        pub item_id: String,
    }
    /// `threads.custom_action` and `threads.sync_custom_action`
    pub struct ThreadCustomActionParams {
        /// The thread.
        pub thread_id: String,
        /// The widget item that sent the action, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub item_id: Option<String>,
        /// The action.
        pub action: Action,
    }
    /// `threads.get_by_id`
    pub struct ThreadGetByIdParams {
        /// The thread.
        pub thread_id: String,
    }
    /// `threads.list`
    pub struct ThreadListParams {
        /// Page size (default 20).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub limit: Option<i64>,
        /// Order (default newest first).
        #[serde(default)]
        pub order: Order,
        /// The cursor of the previous page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub after: Option<String>,
    }
    /// `items.list`
    pub struct ItemsListParams {
        /// The thread.
        pub thread_id: String,
        /// Page size (default 20).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub limit: Option<i64>,
        /// Order (default newest first).
        #[serde(default)]
        pub order: Order,
        /// The cursor of the previous page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub after: Option<String>,
    }
    /// `items.feedback`
    pub struct ItemFeedbackParams {
        /// The thread.
        pub thread_id: String,
        /// The items rated.
        pub item_ids: Vec<String>,
        /// The rating.
        pub kind: FeedbackKind,
    }
    /// `threads.update`
    pub struct ThreadUpdateParams {
        /// The thread.
        pub thread_id: String,
        /// The new title.
        pub title: String,
    }
    /// `threads.delete`
    pub struct ThreadDeleteParams {
        /// The thread.
        pub thread_id: String,
    }
    /// `attachments.create` (two-phase upload, step 1)
    pub struct AttachmentCreateParams {
        /// The file name.
        pub name: String,
        /// The size in bytes.
        pub size: i64,
        /// The MIME type.
        pub mime_type: String,
    }
    /// `attachments.delete`
    pub struct AttachmentDeleteParams {
        /// The attachment.
        pub attachment_id: String,
    }
    /// `input.transcribe` (dictation)
    pub struct InputTranscribeParams {
        /// The audio, base64.
        pub audio_base64: String,
        /// Its MIME type, e.g. `audio/webm;codecs=opus`.
        pub mime_type: String,
    }
}

macro_rules! requests {
    ($( $(#[$meta:meta])* $variant:ident = $tag:literal, $params:ty, streaming = $streaming:literal; )*) => {
        /// A ChatKit request: `{"type", "params", "metadata"}`.
        ///
        /// Parse one with [`ChatKitRequest::from_json`], which names what is wrong (an unknown
        /// type, a missing or mistyped field with its path) and never panics. Unknown fields are
        /// ignored, as the SDK ignores them.
        ///
        /// ```
        /// use chatkit_tower::protocol::ChatKitRequest;
        ///
        /// let json = br#"{"metadata":{},"type":"threads.list","params":{"limit":20,"order":"desc"}}"#;
        /// let req = ChatKitRequest::from_json(json).unwrap();
        /// assert_eq!(req.type_name(), "threads.list");
        /// assert!(!req.is_streaming());
        /// assert_eq!(serde_json::to_vec(&req).unwrap(), json);
        ///
        /// let err = ChatKitRequest::from_json(br#"{"type":"threads.explode","params":{}}"#).unwrap_err();
        /// assert!(err.to_string().starts_with("unknown request type \"threads.explode\""));
        /// let err = ChatKitRequest::from_json(br#"{"type":"threads.get_by_id","params":{"thread_id":7}}"#).unwrap_err();
        /// assert!(err.to_string().starts_with("threads.get_by_id: params.thread_id: invalid type"));
        /// ```
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum ChatKitRequest {
            $(
                $(#[$meta])*
                $variant {
                    /// The request's parameters.
                    params: $params,
                    /// Integration metadata sent by the client (default `{}`).
                    metadata: Metadata,
                },
            )*
        }

        impl ChatKitRequest {
            /// Every request type this version knows.
            pub const TYPES: &'static [&'static str] = &[$($tag),*];

            /// The request's `type`.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $( Self::$variant { .. } => $tag, )*
                }
            }

            /// Whether the answer is an SSE stream (else JSON).
            pub fn is_streaming(&self) -> bool {
                match self {
                    $( Self::$variant { .. } => $streaming, )*
                }
            }

            /// The request's metadata.
            pub fn metadata(&self) -> &Metadata {
                match self {
                    $( Self::$variant { metadata, .. } => metadata, )*
                }
            }

            fn from_parts(tag: &str, params: Value, metadata: Metadata) -> Result<Self, RequestError> {
                match tag {
                    $( $tag => Ok(Self::$variant { params: parse_params(tag, params)?, metadata }), )*
                    other => Err(RequestError(format!(
                        "unknown request type {:?}; expected one of: {}",
                        truncate(other),
                        Self::TYPES.join(", ")
                    ))),
                }
            }
        }

        impl Serialize for ChatKitRequest {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $( Self::$variant { params, metadata } => write_request(serializer, metadata, $tag, params), )*
                }
            }
        }
    };
}

requests! {
    /// `threads.create` (streams)
    ThreadsCreate = "threads.create", ThreadCreateParams, streaming = true;
    /// `threads.add_user_message` (streams)
    ThreadsAddUserMessage = "threads.add_user_message", ThreadAddUserMessageParams, streaming = true;
    /// `threads.add_client_tool_output` (streams)
    ThreadsAddClientToolOutput = "threads.add_client_tool_output", ThreadAddClientToolOutputParams, streaming = true;
    /// `threads.add_structured_input` (streams)
    ThreadsAddStructuredInput = "threads.add_structured_input", ThreadAddStructuredInputParams, streaming = true;
    /// `threads.retry_after_item` (streams)
    ThreadsRetryAfterItem = "threads.retry_after_item", ThreadRetryAfterItemParams, streaming = true;
    /// `threads.custom_action` (streams)
    ThreadsCustomAction = "threads.custom_action", ThreadCustomActionParams, streaming = true;
    /// `threads.get_by_id`
    ThreadsGetById = "threads.get_by_id", ThreadGetByIdParams, streaming = false;
    /// `threads.list`
    ThreadsList = "threads.list", ThreadListParams, streaming = false;
    /// `items.list`
    ItemsList = "items.list", ItemsListParams, streaming = false;
    /// `items.feedback`
    ItemsFeedback = "items.feedback", ItemFeedbackParams, streaming = false;
    /// `attachments.create`
    AttachmentsCreate = "attachments.create", AttachmentCreateParams, streaming = false;
    /// `attachments.delete`
    AttachmentsDelete = "attachments.delete", AttachmentDeleteParams, streaming = false;
    /// `threads.update`
    ThreadsUpdate = "threads.update", ThreadUpdateParams, streaming = false;
    /// `threads.delete`
    ThreadsDelete = "threads.delete", ThreadDeleteParams, streaming = false;
    /// `input.transcribe`
    InputTranscribe = "input.transcribe", InputTranscribeParams, streaming = false;
    /// `threads.sync_custom_action`
    ThreadsSyncCustomAction = "threads.sync_custom_action", ThreadCustomActionParams, streaming = false;
}

impl ChatKitRequest {
    /// Parse a request body.
    pub fn from_json(body: &[u8]) -> Result<Self, RequestError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| RequestError(format!("the body is not valid JSON: {e}")))?;
        Self::from_value(value)
    }

    /// Parse a request already read as JSON.
    pub fn from_value(value: Value) -> Result<Self, RequestError> {
        let Value::Object(mut map) = value else {
            return Err(RequestError(
                "the body must be a JSON object {\"type\", \"params\", \"metadata\"}".into(),
            ));
        };
        let tag = match map.remove("type") {
            Some(Value::String(tag)) => tag,
            Some(_) => return Err(RequestError("`type` must be a string".into())),
            None => return Err(RequestError("missing field `type`".into())),
        };
        let params = match map.remove("params") {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(params) => params,
        };
        let metadata = match map.remove("metadata") {
            None | Some(Value::Null) => Metadata::new(),
            Some(Value::Object(metadata)) => metadata,
            Some(_) => return Err(RequestError("`metadata` must be an object".into())),
        };
        Self::from_parts(&tag, params, metadata)
    }

    /// The thread the request is about, for requests about one thread.
    pub fn thread_id(&self) -> Option<&str> {
        match self {
            Self::ThreadsAddUserMessage { params, .. } => Some(&params.thread_id),
            Self::ThreadsAddClientToolOutput { params, .. } => Some(&params.thread_id),
            Self::ThreadsAddStructuredInput { params, .. } => Some(&params.thread_id),
            Self::ThreadsRetryAfterItem { params, .. } => Some(&params.thread_id),
            Self::ThreadsCustomAction { params, .. }
            | Self::ThreadsSyncCustomAction { params, .. } => Some(&params.thread_id),
            Self::ThreadsGetById { params, .. } => Some(&params.thread_id),
            Self::ItemsList { params, .. } => Some(&params.thread_id),
            Self::ItemsFeedback { params, .. } => Some(&params.thread_id),
            Self::ThreadsUpdate { params, .. } => Some(&params.thread_id),
            Self::ThreadsDelete { params, .. } => Some(&params.thread_id),
            Self::ThreadsCreate { .. }
            | Self::ThreadsList { .. }
            | Self::AttachmentsCreate { .. }
            | Self::AttachmentsDelete { .. }
            | Self::InputTranscribe { .. } => None,
        }
    }
}

impl<'de> Deserialize<'de> for ChatKitRequest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_value(value).map_err(serde::de::Error::custom)
    }
}

fn parse_params<T: serde::de::DeserializeOwned>(
    tag: &str,
    params: Value,
) -> Result<T, RequestError> {
    serde_path_to_error::deserialize(params).map_err(|err| {
        let path = err.path().to_string();
        let at = if path == "." {
            "params".to_owned()
        } else {
            format!("params.{path}")
        };
        RequestError(format!("{tag}: {at}: {}", err.inner()))
    })
}

fn write_request<S: serde::Serializer, P: Serialize>(
    serializer: S,
    metadata: &Metadata,
    tag: &'static str,
    params: &P,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut s = serializer.serialize_struct("ChatKitRequest", 3)?;
    s.serialize_field("metadata", metadata)?;
    s.serialize_field("type", tag)?;
    s.serialize_field("params", params)?;
    s.end()
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Why a request body is not a ChatKit request; the text names the problem (and the field's
/// path), for a `400 BAD_REQUEST` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError(String);

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RequestError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_requests_round_trip_byte_for_byte() {
        for json in [
            r#"{"metadata":{},"type":"threads.create","params":{"input":{"content":[{"type":"input_text","text":"hi"}],"attachments":["atc_1"],"inference_options":{"tool_choice":{"id":"search"},"model":"gpt-5"}}}}"#,
            r#"{"metadata":{},"type":"threads.add_client_tool_output","params":{"thread_id":"thr_1","result":{"success":true}}}"#,
            r#"{"metadata":{},"type":"threads.custom_action","params":{"thread_id":"thr_1","item_id":"msg_w","action":{"type":"save","payload":{"id":1}}}}"#,
            r#"{"metadata":{},"type":"threads.list","params":{"limit":20,"order":"desc"}}"#,
            r#"{"metadata":{},"type":"items.list","params":{"thread_id":"thr_1","limit":20,"order":"desc","after":"msg_x"}}"#,
            r#"{"metadata":{},"type":"input.transcribe","params":{"audio_base64":"AAAA","mime_type":"audio/webm;codecs=opus"}}"#,
            r#"{"metadata":{"k":1},"type":"threads.add_structured_input","params":{"thread_id":"t","item_id":"i","input":{"status":"answered","answers":{"q1":{"values":["a"],"skipped":false}}}}}"#,
        ] {
            let req = ChatKitRequest::from_json(json.as_bytes()).unwrap();
            assert_eq!(
                String::from_utf8(serde_json::to_vec(&req).unwrap()).unwrap(),
                json
            );
        }
    }

    #[test]
    fn every_type_parses_and_bad_input_is_named() {
        assert_eq!(ChatKitRequest::TYPES.len(), 16);
        let err = |json: &str| {
            ChatKitRequest::from_json(json.as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert!(err("not json").starts_with("the body is not valid JSON"));
        assert!(err("[1]").contains("must be a JSON object"));
        assert_eq!(err(r#"{"params":{}}"#), "missing field `type`");
        assert_eq!(err(r#"{"type":5}"#), "`type` must be a string");
        assert!(err(r#"{"type":"threads.create","params":{}}"#)
            .contains("params: missing field `input`"));
        assert!(err(
            r#"{"type":"threads.create","params":{"input":{"content":[{"type":"input_text"}]}}}"#
        )
        .contains("params.input.content[0]"));
        assert!(
            err(r#"{"type":"threads.list","params":{"order":"sideways"}}"#)
                .contains("params.order: unknown variant")
        );
        assert!(err(r#"{"type":"threads.list","params":{},"metadata":[]}"#)
            .contains("`metadata` must be an object"));
        let ok = ChatKitRequest::from_json(br#"{"type":"threads.list","extra":1}"#).unwrap();
        assert!(
            matches!(ok, ChatKitRequest::ThreadsList { ref params, .. } if params.order == Order::Desc && params.limit.is_none())
        );
    }
}
