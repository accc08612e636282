//! Threads, their status, and pages of results.

use serde::{Deserialize, Serialize};

use super::item::ThreadItem;
use super::{Metadata, Timestamp};

/// A page of results: `{"data": […], "has_more": bool, "after"?: cursor}`.
///
/// `after` is an opaque cursor: pass it back to get the next page.
///
/// ```
/// use chatkit_tower::protocol::Page;
/// let page: Page<u8> = Page::default();
/// assert_eq!(serde_json::to_string(&page).unwrap(), r#"{"data":[],"has_more":false}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The results.
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    /// Whether more results follow.
    #[serde(default)]
    pub has_more: bool,
    /// The cursor for the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Self {
            data: Vec::new(),
            has_more: false,
            after: None,
        }
    }
}

/// Whether a thread takes new messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum ThreadStatus {
    /// Open.
    #[default]
    Active,
    /// Locked (no new messages), with an optional reason.
    Locked {
        /// Why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Closed, with an optional reason.
    Closed {
        /// Why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// A thread without its items, as stores keep it.
///
/// `metadata` is the integration's own data: stored, never sent (answers carry `{}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadMetadata {
    /// The title, once there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The thread id (`thr_…`).
    pub id: String,
    /// When the thread was created.
    pub created_at: Timestamp,
    /// Whether it takes new messages.
    #[serde(default)]
    pub status: ThreadStatus,
    /// Domains images may be shown from (since SDK 1.6.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_image_domains: Option<Vec<String>>,
    /// Integration data, never sent to the client.
    #[serde(default)]
    pub metadata: Metadata,
}

impl ThreadMetadata {
    /// A new active thread created now, with no title.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            title: None,
            id: id.into(),
            created_at: Timestamp::now(),
            status: ThreadStatus::Active,
            allowed_image_domains: None,
            metadata: Metadata::new(),
        }
    }
}

/// A thread with a page of its items, as answers carry it.
///
/// ```
/// use chatkit_tower::protocol::Thread;
/// let json = r#"{"id":"thr_2635644e","created_at":"2026-11-24T14:20:34.348767","status":{"type":"active"},"metadata":{},"items":{"data":[],"has_more":false}}"#;
/// let thread: Thread = serde_json::from_str(json).unwrap();
/// assert_eq!(serde_json::to_string(&thread).unwrap(), json);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thread {
    /// The title, once there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The thread id.
    pub id: String,
    /// When the thread was created.
    pub created_at: Timestamp,
    /// Whether it takes new messages.
    #[serde(default)]
    pub status: ThreadStatus,
    /// Domains images may be shown from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_image_domains: Option<Vec<String>>,
    /// Integration data (always `{}` in answers).
    #[serde(default)]
    pub metadata: Metadata,
    /// A page of the thread's items.
    #[serde(default)]
    pub items: Page<ThreadItem>,
}

impl Thread {
    /// The thread as answers carry it: `metadata` emptied and hidden-context items removed,
    /// as the SDK's responses do.
    ///
    /// ```
    /// use chatkit_tower::protocol::{Page, Thread, ThreadMetadata};
    /// let mut meta = ThreadMetadata::new("thr_1");
    /// meta.metadata.insert("secret".into(), "x".into());
    /// let thread = Thread::response(&meta, Page::default());
    /// assert!(thread.metadata.is_empty());
    /// ```
    pub fn response(meta: &ThreadMetadata, mut items: Page<ThreadItem>) -> Self {
        items.data.retain(|item| !item.is_hidden());
        Self {
            title: meta.title.clone(),
            id: meta.id.clone(),
            created_at: meta.created_at,
            status: meta.status.clone(),
            allowed_image_domains: meta.allowed_image_domains.clone(),
            metadata: Metadata::new(),
            items,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_thread_with_items_round_trips() {
        let json = r#"{"title":"Greeting","id":"thr_cadc5930","created_at":"2026-11-24T14:20:41.193439","status":{"type":"active"},"metadata":{},"items":{"data":[{"id":"msg_85be3af5","thread_id":"thr_cadc5930","created_at":"2026-11-24T14:20:41.201287","type":"user_message","content":[{"type":"input_text","text":"hi"}],"attachments":[],"inference_options":{}}],"has_more":false}}"#;
        let thread: Thread = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&thread).unwrap(), json);
    }

    #[test]
    fn locked_status_keeps_its_reason() {
        let json = r#"{"type":"locked","reason":"limit"}"#;
        let status: ThreadStatus = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&status).unwrap(), json);
        assert_eq!(
            serde_json::to_string(&ThreadStatus::Active).unwrap(),
            r#"{"type":"active"}"#
        );
    }
}
