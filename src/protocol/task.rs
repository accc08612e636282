//! Workflows and their tasks.

use serde::{Deserialize, Serialize};

use super::item::{FileSource, UrlSource};
use super::tagged::{literal_type, tagged_union};

/// How a task shows its progress inside a workflow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusIndicator {
    /// No indicator.
    #[default]
    None,
    /// A spinner.
    Loading,
    /// A check mark.
    Complete,
}

/// A task with custom content.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct CustomTask {
    /// The progress indicator.
    #[serde(default)]
    pub status_indicator: StatusIndicator,
    /// The title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// An icon name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// The content (markdown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}
literal_type!(CustomTask, "custom", after = Some("status_indicator"));

/// A web search.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct SearchTask {
    /// The progress indicator.
    #[serde(default)]
    pub status_indicator: StatusIndicator,
    /// The title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The query shown as the title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_query: Option<String>,
    /// The queries run.
    #[serde(default)]
    pub queries: Vec<String>,
    /// The pages found.
    #[serde(default)]
    pub sources: Vec<UrlSource>,
}
literal_type!(SearchTask, "web_search", after = Some("status_indicator"));

/// The assistant's reasoning.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct ThoughtTask {
    /// The progress indicator.
    #[serde(default)]
    pub status_indicator: StatusIndicator,
    /// The title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The thought.
    pub content: String,
}
literal_type!(ThoughtTask, "thought", after = Some("status_indicator"));

/// Files consulted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct FileTask {
    /// The progress indicator.
    #[serde(default)]
    pub status_indicator: StatusIndicator,
    /// The title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The files.
    #[serde(default)]
    pub sources: Vec<FileSource>,
}
literal_type!(FileTask, "file", after = Some("status_indicator"));

/// Image content.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct ImageTask {
    /// The progress indicator.
    #[serde(default)]
    pub status_indicator: StatusIndicator,
    /// The title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}
literal_type!(ImageTask, "image", after = Some("status_indicator"));

tagged_union! {
    /// A task of a workflow (`"type"` after `status_indicator`, as the SDK writes it).
    ///
    /// ```
    /// use chatkit_tower::protocol::{Task, ThoughtTask};
    /// let task = Task::from(ThoughtTask { content: "hmm".into(), ..Default::default() });
    /// assert_eq!(
    ///     serde_json::to_string(&task).unwrap(),
    ///     r#"{"status_indicator":"none","type":"thought","content":"hmm"}"#
    /// );
    /// ```
    #[derive(Debug, Clone, PartialEq)]
    #[non_exhaustive]
    pub enum Task {
        /// `custom`
        Custom(CustomTask),
        /// `web_search`
        WebSearch(SearchTask),
        /// `thought`
        Thought(ThoughtTask),
        /// `file`
        File(FileTask),
        /// `image`
        Image(ImageTask),
    }
    unknown:
        /// A task of a type this version does not know, kept as it came.
        Unknown,
}

/// The kind of a workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowType {
    /// Custom tasks.
    Custom,
    /// The assistant's reasoning.
    Reasoning,
}

/// A workflow: tasks shown together, with an optional summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    /// The kind of workflow.
    #[serde(rename = "type")]
    pub kind: WorkflowType,
    /// The tasks.
    pub tasks: Vec<Task>,
    /// A summary shown when collapsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<WorkflowSummary>,
    /// Whether it starts expanded.
    #[serde(default)]
    pub expanded: bool,
}

/// A workflow's summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WorkflowSummary {
    /// A title and icon.
    Custom {
        /// The title.
        title: String,
        /// An icon name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        icon: Option<String>,
    },
    /// How long the workflow took.
    Duration {
        /// Seconds.
        duration: i64,
    },
}
