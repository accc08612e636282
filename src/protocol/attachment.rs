//! Attachments: files and images a user adds to a message.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::tagged::{literal_type, tagged_union};
use super::Metadata;

/// Where and how the client uploads the bytes of a two-phase attachment (since SDK 1.5.0).
///
/// ```
/// use chatkit_tower::protocol::{UploadDescriptor, UploadMethod};
/// let d = UploadDescriptor::new("https://example.com/upload/atc_1", UploadMethod::Put);
/// assert_eq!(
///     serde_json::to_string(&d).unwrap(),
///     r#"{"url":"https://example.com/upload/atc_1","method":"PUT","headers":{}}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadDescriptor {
    /// The URL to upload to.
    pub url: String,
    /// The HTTP method of the upload.
    pub method: UploadMethod,
    /// Headers to send with the upload.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl UploadDescriptor {
    /// Upload to `url` with `method` and no extra headers.
    pub fn new(url: impl Into<String>, method: UploadMethod) -> Self {
        Self {
            url: url.into(),
            method,
            headers: BTreeMap::new(),
        }
    }
}

/// The method of a two-phase upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UploadMethod {
    /// `POST` (multipart with a `file` field).
    #[serde(rename = "POST")]
    Post,
    /// `PUT` (the raw bytes, as S3 presigned URLs take them).
    #[serde(rename = "PUT")]
    Put,
}

/// A file attachment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct FileAttachment {
    /// The attachment id (`atc_…`).
    pub id: String,
    /// The file name.
    pub name: String,
    /// The MIME type.
    pub mime_type: String,
    /// Two-phase upload instructions; `None` once uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_descriptor: Option<UploadDescriptor>,
    /// The thread of the message the attachment was sent with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// Integration-only data: stored, never sent to the client.
    #[serde(default, skip_serializing_if = "super::skip_integration_metadata")]
    pub metadata: Option<Metadata>,
}
literal_type!(FileAttachment, "file", after = Some("metadata"));

/// An image attachment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct ImageAttachment {
    /// The attachment id (`atc_…`).
    pub id: String,
    /// The file name.
    pub name: String,
    /// The MIME type.
    pub mime_type: String,
    /// Two-phase upload instructions; `None` once uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_descriptor: Option<UploadDescriptor>,
    /// The thread of the message the attachment was sent with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// Integration-only data: stored, never sent to the client.
    #[serde(default, skip_serializing_if = "super::skip_integration_metadata")]
    pub metadata: Option<Metadata>,
    /// A URL the client shows the image from (a data URL avoids mixed-content problems).
    pub preview_url: String,
}
literal_type!(ImageAttachment, "image", after = Some("metadata"));

impl FileAttachment {
    /// A file attachment with no upload descriptor, thread or metadata.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        mime_type: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            mime_type: mime_type.into(),
            upload_descriptor: None,
            thread_id: None,
            metadata: None,
        }
    }
}

impl ImageAttachment {
    /// An image attachment with no upload descriptor, thread or metadata.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        mime_type: impl Into<String>,
        preview_url: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            mime_type: mime_type.into(),
            upload_descriptor: None,
            thread_id: None,
            metadata: None,
            preview_url: preview_url.into(),
        }
    }
}

tagged_union! {
    /// An attachment (`"type": "file"` or `"image"`).
    ///
    /// Its `metadata` is kept by stores but never sent: [`to_wire_json`](super::to_wire_json)
    /// leaves it out, as the SDK's responses do.
    ///
    /// ```
    /// use chatkit_tower::protocol::{Attachment, FileAttachment};
    /// let json = r#"{"id":"atc_1","name":"a.pdf","mime_type":"application/pdf","upload_descriptor":{"url":"https://example.com/upload/atc_1","method":"PUT","headers":{"x-ms-blob-type":"BlockBlob"}},"type":"file"}"#;
    /// let attachment: Attachment = serde_json::from_str(json).unwrap();
    /// assert_eq!(attachment.id(), "atc_1");
    /// assert_eq!(serde_json::to_string(&attachment).unwrap(), json);
    /// ```
    #[derive(Debug, Clone, PartialEq)]
    #[non_exhaustive]
    pub enum Attachment {
        /// A file.
        File(FileAttachment),
        /// An image.
        Image(ImageAttachment),
    }
}

macro_rules! both {
    ($self:ident, $a:ident => $e:expr) => {
        match $self {
            Attachment::File($a) => $e,
            Attachment::Image($a) => $e,
        }
    };
}

impl Attachment {
    /// The attachment id.
    pub fn id(&self) -> &str {
        both!(self, a => &a.id)
    }

    /// The file name.
    pub fn name(&self) -> &str {
        both!(self, a => &a.name)
    }

    /// The MIME type.
    pub fn mime_type(&self) -> &str {
        both!(self, a => &a.mime_type)
    }

    /// The thread the attachment was sent in, once it was.
    pub fn thread_id(&self) -> Option<&str> {
        both!(self, a => a.thread_id.as_deref())
    }

    /// Set the thread the attachment was sent in.
    pub fn set_thread_id(&mut self, thread_id: impl Into<String>) {
        let thread_id = Some(thread_id.into());
        both!(self, a => a.thread_id = thread_id)
    }

    /// The upload instructions, while the bytes are not uploaded yet.
    pub fn upload_descriptor(&self) -> Option<&UploadDescriptor> {
        both!(self, a => a.upload_descriptor.as_ref())
    }

    /// Set or clear the upload instructions.
    pub fn set_upload_descriptor(&mut self, descriptor: Option<UploadDescriptor>) {
        both!(self, a => a.upload_descriptor = descriptor)
    }

    /// Integration-only data (never sent to the client).
    pub fn metadata(&self) -> Option<&Metadata> {
        both!(self, a => a.metadata.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_round_trips_byte_for_byte() {
        let json = r#"{"id":"atc_2","name":"a.png","mime_type":"image/png","type":"image","preview_url":"https://x/y.png"}"#;
        let a: Attachment = serde_json::from_str(json).unwrap();
        assert!(matches!(a, Attachment::Image(_)));
        assert_eq!(serde_json::to_string(&a).unwrap(), json);
    }

    #[test]
    fn metadata_is_stored_but_not_sent() {
        let mut file = FileAttachment::new("atc_1", "a.txt", "text/plain");
        file.metadata = Some(serde_json::from_str(r#"{"bucket":"b"}"#).unwrap());
        let a = Attachment::from(file);
        let stored = serde_json::to_string(&a).unwrap();
        assert!(stored.contains("bucket"));
        let sent = String::from_utf8(crate::protocol::to_wire_json(&a).unwrap()).unwrap();
        assert_eq!(
            sent,
            r#"{"id":"atc_1","name":"a.txt","mime_type":"text/plain","type":"file"}"#
        );
        let back: Attachment = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn unknown_attachment_type_is_an_error() {
        let err = serde_json::from_str::<Attachment>(r#"{"type":"video","id":"x"}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown Attachment type \"video\""),
            "{err}"
        );
    }
}
