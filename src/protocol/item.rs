//! Thread items and what they are made of: message content, annotations, sources, structured
//! input.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::attachment::Attachment;
use super::tagged::{literal_type, open_enum, tagged_union};
use super::task::{Task, Workflow};
use super::{Metadata, Timestamp};

/// One part of a user message.
///
/// ```
/// use chatkit_tower::protocol::UserMessageContent;
/// let json = r#"{"type":"input_tag","id":"t1","text":"@docs","data":{},"interactive":false}"#;
/// let part: UserMessageContent = serde_json::from_str(json).unwrap();
/// assert_eq!(serde_json::to_string(&part).unwrap(), json);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", tag = "type")]
#[non_exhaustive]
pub enum UserMessageContent {
    /// Plain text.
    #[serde(rename = "input_text")]
    InputText {
        /// The text.
        text: String,
    },
    /// An interactive tag (a mention, an entity).
    #[serde(rename = "input_tag")]
    InputTag {
        /// The tag id.
        id: String,
        /// The text shown.
        text: String,
        /// Data for the integration.
        #[serde(default)]
        data: Metadata,
        /// A group the tag belongs to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<String>,
        /// Whether the tag is interactive.
        #[serde(default)]
        interactive: bool,
    },
    /// A part of a type this version does not know, kept as it came.
    #[serde(skip)]
    Unknown(Value),
}
open_enum!(UserMessageContent, ["input_text", "input_tag"]);

impl UserMessageContent {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        Self::InputText { text: text.into() }
    }
}

/// The model and tool the user picked for a message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InferenceOptions {
    /// The tool the assistant should use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// The model the user picked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// An explicit tool choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolChoice {
    /// The tool id.
    pub id: String,
}

/// One part of an assistant message: text with annotations (`"type": "output_text"`, written
/// last, as the SDK does).
///
/// ```
/// use chatkit_tower::protocol::AssistantMessageContent;
/// let part = AssistantMessageContent::new("Hello");
/// assert_eq!(
///     serde_json::to_string(&part).unwrap(),
///     r#"{"annotations":[],"text":"Hello","type":"output_text"}"#
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct AssistantMessageContent {
    /// Sources cited by the text.
    #[serde(default)]
    pub annotations: Vec<Annotation>,
    /// The text (markdown).
    pub text: String,
}
literal_type!(AssistantMessageContent, "output_text", after = Some("text"));

impl AssistantMessageContent {
    /// Text without annotations.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            annotations: Vec::new(),
            text: text.into(),
        }
    }
}

/// A source cited by assistant text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct Annotation {
    /// The source.
    pub source: Source,
    /// Where in the text the citation goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<i64>,
}
literal_type!(Annotation, "annotation", after = None);

/// A web page cited or searched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct UrlSource {
    /// The title shown.
    pub title: String,
    /// A description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A timestamp, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// A group the source belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The URL.
    pub url: String,
    /// Who to credit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<String>,
}
literal_type!(UrlSource, "url", after = Some("group"));

/// A file cited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct FileSource {
    /// The title shown.
    pub title: String,
    /// A description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A timestamp, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// A group the source belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The file name.
    pub filename: String,
}
literal_type!(FileSource, "file", after = Some("group"));

/// An entity of the integration cited (a customer, an order…).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct EntitySource {
    /// The title shown.
    pub title: String,
    /// A description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A timestamp, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// A group the source belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The entity id.
    pub id: String,
    /// An icon name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// A label shown with the icon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// A label for the inline view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline_label: Option<String>,
    /// Whether client callbacks apply to it.
    #[serde(default)]
    pub interactive: bool,
    /// Data passed to client entity callbacks.
    #[serde(default)]
    pub data: Metadata,
    /// Deprecated and ignored by clients; kept so stored data round-trips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
}
literal_type!(EntitySource, "entity", after = Some("group"));

tagged_union! {
    /// A cited source (`"type": "url" | "file" | "entity"`).
    #[derive(Debug, Clone, PartialEq)]
    #[non_exhaustive]
    pub enum Source {
        /// A web page.
        Url(UrlSource),
        /// A file.
        File(FileSource),
        /// An entity.
        Entity(EntitySource),
    }
    unknown:
        /// A source of a type this version does not know, kept as it came.
        Unknown,
}

/// An image generated by the assistant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratedImage {
    /// The image id.
    pub id: String,
    /// Where the image is.
    pub url: String,
}

/// A recorded answer to a structured input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StructuredInputAnswer {
    /// The values given.
    #[serde(default)]
    pub values: Vec<String>,
    /// Whether the question was skipped.
    #[serde(default)]
    pub skipped: bool,
}

/// An option of a multiple-choice input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StructuredInputOption {
    /// The value submitted when it is picked.
    pub value: String,
}

/// A question answered by picking options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct MultipleChoiceInput {
    /// The input id.
    pub id: String,
    /// The question.
    pub question: String,
    /// The answer, once given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<StructuredInputAnswer>,
    /// The choices.
    pub options: Vec<StructuredInputOption>,
    /// Whether several may be picked.
    #[serde(default)]
    pub multiple: bool,
}
literal_type!(
    MultipleChoiceInput,
    "multiple_choice",
    after = Some("answer")
);

/// A question answered with free text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct FreeformInput {
    /// The input id.
    pub id: String,
    /// The question.
    pub question: String,
    /// The answer, once given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<StructuredInputAnswer>,
    /// Supporting text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}
literal_type!(FreeformInput, "freeform", after = Some("answer"));

tagged_union! {
    /// One question of a structured input item.
    #[derive(Debug, Clone, PartialEq)]
    #[non_exhaustive]
    pub enum StructuredInput {
        /// Pick from options.
        MultipleChoice(MultipleChoiceInput),
        /// Free text.
        Freeform(FreeformInput),
    }
}

impl StructuredInput {
    /// The input id.
    pub fn id(&self) -> &str {
        match self {
            Self::MultipleChoice(i) => &i.id,
            Self::Freeform(i) => &i.id,
        }
    }
}

/// The status of a client tool call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolCallStatus {
    /// Waiting for the client's output.
    #[default]
    Pending,
    /// The client sent its output.
    Completed,
}

/// The status of a structured input item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StructuredInputStatus {
    /// Waiting for answers.
    #[default]
    Pending,
    /// Answered.
    Answered,
    /// Skipped.
    Skipped,
}

macro_rules! item {
    (
        $(#[$meta:meta])*
        pub struct $name:ident = $tag:literal {
            $( $(#[$fmeta:meta])* pub $field:ident : $fty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(remote = "Self")]
        pub struct $name {
            /// The item id.
            pub id: String,
            /// The thread the item belongs to.
            pub thread_id: String,
            /// When the item was created.
            pub created_at: Timestamp,
            $( $(#[$fmeta])* pub $field: $fty, )*
        }
        literal_type!($name, $tag, after = Some("created_at"));
    };
}

item! {
    /// A message from the user.
    pub struct UserMessageItem = "user_message" {
        /// What the user wrote.
        pub content: Vec<UserMessageContent>,
        /// Files and images sent with the message.
        #[serde(default)]
        pub attachments: Vec<Attachment>,
        /// Text the user quoted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub quoted_text: Option<String>,
        /// The model and tool picked.
        #[serde(default)]
        pub inference_options: InferenceOptions,
    }
}

impl UserMessageItem {
    /// The message's text parts joined (tags give their text).
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|part| match part {
                UserMessageContent::InputText { text }
                | UserMessageContent::InputTag { text, .. } => Some(text.as_str()),
                UserMessageContent::Unknown(_) => None,
            })
            .collect()
    }
}

item! {
    /// A message from the assistant.
    pub struct AssistantMessageItem = "assistant_message" {
        /// The message's parts.
        #[serde(default)]
        pub content: Vec<AssistantMessageContent>,
    }
}

item! {
    /// A tool call the client runs (`onClientTool`).
    pub struct ClientToolCallItem = "client_tool_call" {
        /// Pending until the client sends its output.
        #[serde(default)]
        pub status: ToolCallStatus,
        /// The call id.
        pub call_id: String,
        /// The tool name.
        pub name: String,
        /// The arguments.
        #[serde(default)]
        pub arguments: Metadata,
        /// The client's output, once sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub output: Option<Value>,
    }
}

item! {
    /// A widget (a JSON tree such as `{"type":"Card","children":[…]}`, passed through as it is).
    pub struct WidgetItem = "widget" {
        /// The widget tree.
        pub widget: Value,
        /// Text copied when the user copies the widget.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub copy_text: Option<String>,
    }
}

item! {
    /// An image the assistant generated.
    pub struct GeneratedImageItem = "generated_image" {
        /// The image, once there is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub image: Option<GeneratedImage>,
    }
}

item! {
    /// Questions for the user (since SDK 1.6.4).
    pub struct StructuredInputItem = "structured_input" {
        /// Pending until answered or skipped.
        #[serde(default)]
        pub status: StructuredInputStatus,
        /// The questions.
        pub inputs: Vec<StructuredInput>,
    }
}

item! {
    /// A workflow of tasks (reasoning, searches…).
    pub struct WorkflowItem = "workflow" {
        /// The workflow.
        pub workflow: Workflow,
    }
}

item! {
    /// A single task.
    pub struct TaskItem = "task" {
        /// The task.
        pub task: Task,
    }
}

item! {
    /// Context for the assistant that is stored in the thread but never sent to the client.
    pub struct HiddenContextItem = "hidden_context_item" {
        /// Any JSON.
        #[serde(default, skip_serializing_if = "Value::is_null")]
        pub content: Value,
    }
}

item! {
    /// Hidden context the kit itself stores (e.g. "the user cancelled the stream"); never sent.
    pub struct SdkHiddenContextItem = "sdk_hidden_context" {
        /// The text.
        pub content: String,
    }
}

item! {
    /// Marks the end of the assistant's turn.
    pub struct EndOfTurnItem = "end_of_turn" {}
}

tagged_union! {
    /// An item of a thread. `"type"` comes after `id`, `thread_id` and `created_at`, as the SDK
    /// writes it; an item of a type this version does not know round-trips as raw JSON.
    ///
    /// ```
    /// use chatkit_tower::protocol::ThreadItem;
    /// let json = r#"{"id":"msg_asst","thread_id":"thr_1","created_at":"2025-10-06T12:00:00","type":"assistant_message","content":[{"annotations":[],"text":"Hello","type":"output_text"}]}"#;
    /// let item: ThreadItem = serde_json::from_str(json).unwrap();
    /// assert_eq!(item.id(), "msg_asst");
    /// assert_eq!(serde_json::to_string(&item).unwrap(), json);
    /// ```
    #[derive(Debug, Clone, PartialEq)]
    #[non_exhaustive]
    pub enum ThreadItem {
        /// `user_message`
        UserMessage(UserMessageItem),
        /// `assistant_message`
        AssistantMessage(AssistantMessageItem),
        /// `client_tool_call`
        ClientToolCall(ClientToolCallItem),
        /// `widget`
        Widget(WidgetItem),
        /// `generated_image`
        GeneratedImage(GeneratedImageItem),
        /// `structured_input`
        StructuredInput(StructuredInputItem),
        /// `workflow`
        Workflow(WorkflowItem),
        /// `task`
        Task(TaskItem),
        /// `hidden_context_item` (never sent)
        HiddenContext(HiddenContextItem),
        /// `sdk_hidden_context` (never sent)
        SdkHiddenContext(SdkHiddenContextItem),
        /// `end_of_turn`
        EndOfTurn(EndOfTurnItem),
    }
    unknown:
        /// An item of a type this version does not know, kept as it came.
        Unknown,
}

macro_rules! each_item {
    ($self:expr, $i:ident => $known:expr, $v:ident => $unknown:expr) => {
        match $self {
            ThreadItem::UserMessage($i) => $known,
            ThreadItem::AssistantMessage($i) => $known,
            ThreadItem::ClientToolCall($i) => $known,
            ThreadItem::Widget($i) => $known,
            ThreadItem::GeneratedImage($i) => $known,
            ThreadItem::StructuredInput($i) => $known,
            ThreadItem::Workflow($i) => $known,
            ThreadItem::Task($i) => $known,
            ThreadItem::HiddenContext($i) => $known,
            ThreadItem::SdkHiddenContext($i) => $known,
            ThreadItem::EndOfTurn($i) => $known,
            ThreadItem::Unknown($v) => $unknown,
        }
    };
}

impl ThreadItem {
    /// The item id (`""` for an unknown item without one).
    pub fn id(&self) -> &str {
        each_item!(self, i => &i.id, v => v.get("id").and_then(Value::as_str).unwrap_or(""))
    }

    /// The thread the item belongs to.
    pub fn thread_id(&self) -> &str {
        each_item!(self, i => &i.thread_id, v => v.get("thread_id").and_then(Value::as_str).unwrap_or(""))
    }

    /// When the item was created (`None` for an unknown item without a readable time).
    pub fn created_at(&self) -> Option<Timestamp> {
        each_item!(self, i => Some(i.created_at), v => v
            .get("created_at")
            .and_then(|t| Timestamp::deserialize(t).ok()))
    }

    /// The item's `"type"` on the wire (`""` for an unknown item without one).
    ///
    /// ```
    /// use chatkit_tower::protocol::ThreadItem;
    ///
    /// let item: ThreadItem = serde_json::from_str(
    ///     r#"{"id":"msg_1","thread_id":"thr_1","created_at":"2025-01-01T00:00:00","type":"end_of_turn"}"#,
    /// ).unwrap();
    /// assert_eq!(item.item_type(), "end_of_turn");
    /// ```
    pub fn item_type(&self) -> &str {
        match self {
            Self::UserMessage(_) => UserMessageItem::TYPE,
            Self::AssistantMessage(_) => AssistantMessageItem::TYPE,
            Self::ClientToolCall(_) => ClientToolCallItem::TYPE,
            Self::Widget(_) => WidgetItem::TYPE,
            Self::GeneratedImage(_) => GeneratedImageItem::TYPE,
            Self::StructuredInput(_) => StructuredInputItem::TYPE,
            Self::Workflow(_) => WorkflowItem::TYPE,
            Self::Task(_) => TaskItem::TYPE,
            Self::HiddenContext(_) => HiddenContextItem::TYPE,
            Self::SdkHiddenContext(_) => SdkHiddenContextItem::TYPE,
            Self::EndOfTurn(_) => EndOfTurnItem::TYPE,
            Self::Unknown(v) => v.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// Whether the item is hidden context, stored but never sent to the client.
    pub fn is_hidden(&self) -> bool {
        matches!(self, Self::HiddenContext(_) | Self::SdkHiddenContext(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(json: &str) -> ThreadItem {
        let item: ThreadItem = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&item).unwrap(), json);
        item
    }

    #[test]
    fn sdk_items_round_trip_byte_for_byte() {
        let user = round_trip(
            r#"{"id":"msg_85be3af5","thread_id":"thr_cadc5930","created_at":"2026-11-24T14:20:41.201287","type":"user_message","content":[{"type":"input_text","text":"hi"}],"attachments":[],"inference_options":{}}"#,
        );
        assert!(matches!(user, ThreadItem::UserMessage(_)));
        round_trip(
            r#"{"id":"tc_1","thread_id":"thr_1","created_at":"2025-01-01T00:00:00","type":"client_tool_call","status":"pending","call_id":"call_1","name":"switch_theme","arguments":{"theme":"dark"}}"#,
        );
        round_trip(
            r#"{"id":"msg_a","thread_id":"thr_1","created_at":"2025-01-01T00:00:00","type":"assistant_message","content":[{"annotations":[{"type":"annotation","source":{"title":"Docs","type":"url","url":"https://x"},"index":3},{"type":"annotation","source":{"title":"E","type":"entity","id":"e1","interactive":false,"data":{}}}],"text":"Hi","type":"output_text"}]}"#,
        );
        round_trip(
            r#"{"id":"si_1","thread_id":"thr_1","created_at":"2025-01-01T00:00:00","type":"structured_input","status":"pending","inputs":[{"id":"q1","question":"Which?","type":"multiple_choice","options":[{"value":"a"}],"multiple":false},{"id":"q2","question":"Why?","answer":{"values":["x"],"skipped":false},"type":"freeform"}]}"#,
        );
        round_trip(
            r#"{"id":"wf_1","thread_id":"thr_1","created_at":"2025-01-01T00:00:00","type":"workflow","workflow":{"type":"reasoning","tasks":[{"status_indicator":"none","type":"thought","content":"hmm"},{"status_indicator":"loading","type":"web_search","queries":[],"sources":[{"title":"T","type":"url","url":"https://x"}]}],"summary":{"duration":3},"expanded":false}}"#,
        );
        round_trip(
            r#"{"id":"shcx_1","thread_id":"thr_1","created_at":"2025-01-01T00:00:00","type":"sdk_hidden_context","content":"The user cancelled the stream. Stop responding to the prior request."}"#,
        );
        round_trip(
            r#"{"id":"e","thread_id":"t","created_at":"2025-01-01T00:00:00","type":"end_of_turn"}"#,
        );
        round_trip(
            r#"{"id":"w","thread_id":"t","created_at":"2025-01-01T00:00:00","type":"widget","widget":{"type":"Card","children":[]},"copy_text":"c"}"#,
        );
        round_trip(
            r#"{"id":"g","thread_id":"t","created_at":"2025-01-01T00:00:00","type":"generated_image","image":{"id":"i","url":"https://x/i.png"}}"#,
        );
        round_trip(
            r#"{"id":"k","thread_id":"t","created_at":"2025-01-01T00:00:00","type":"task","task":{"status_indicator":"complete","type":"custom","title":"Done"}}"#,
        );
        round_trip(
            r#"{"id":"h","thread_id":"t","created_at":"2025-01-01T00:00:00","type":"hidden_context_item","content":{"k":1}}"#,
        );
    }

    #[test]
    fn an_item_from_a_newer_protocol_is_kept() {
        let item = round_trip(
            r#"{"created_at":"2025-01-01T00:00:00","id":"x_1","thread_id":"t","type":"hologram"}"#,
        );
        assert!(matches!(item, ThreadItem::Unknown(_)));
        assert_eq!(item.type_name(), "hologram");
        assert_eq!(item.id(), "x_1");
        assert!(item.created_at().is_some());
    }

    #[test]
    fn a_malformed_known_item_is_an_error_naming_the_field() {
        let err = serde_json::from_str::<ThreadItem>(
            r#"{"id":"m","thread_id":"t","created_at":"2025-01-01T00:00:00","type":"user_message"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("missing field `content`"), "{err}");
    }
}
