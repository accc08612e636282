//! [`AttachmentStore`]: where attachment bytes go, for the two-phase and direct upload
//! strategies.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::protocol::{
    Attachment, AttachmentCreateParams, FileAttachment, ImageAttachment, UploadDescriptor,
    UploadMethod,
};

use super::store::{generate_id, IdKind, StoreError, StoreFuture};
use super::RequestContext;

/// Where attachment bytes go — the Rust counterpart of the SDK's `AttachmentStore`.
///
/// With ChatKit's **two-phase** upload strategy (`uploadStrategy: {type: "two_phase"}`), the
/// client first sends `attachments.create`; [`create_attachment`](Self::create_attachment)
/// answers with an [`Attachment`] carrying an [`UploadDescriptor`] (where and how to upload),
/// and the service saves that record in the [`Store`](super::Store). With the **direct**
/// strategy the client posts the file to your own upload URL; create the record there (e.g.
/// [`InMemoryAttachmentStore::direct_upload`]) and save it with
/// [`Store::save_attachment`](super::Store::save_attachment).
///
/// `attachments.delete` calls [`delete_attachment`](Self::delete_attachment), then deletes
/// the record from the store. Access control is yours: the service only passes attachments the
/// [`Store`](super::Store) finds for the user.
pub trait AttachmentStore: Send + Sync + 'static {
    /// A new attachment id (default: `atc_` + 8 hex digits).
    fn generate_attachment_id(&self, mime_type: &str, ctx: &RequestContext) -> String {
        let _ = (mime_type, ctx);
        generate_id(IdKind::Attachment)
    }

    /// Two-phase upload, step 1: the attachment record with its upload descriptor.
    fn create_attachment<'a>(
        &'a self,
        params: &'a AttachmentCreateParams,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, Attachment>;

    /// Delete the attachment's bytes.
    fn delete_attachment<'a>(
        &'a self,
        attachment_id: &'a str,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ()>;
}

impl<A: AttachmentStore + ?Sized> AttachmentStore for Arc<A> {
    fn generate_attachment_id(&self, mime_type: &str, ctx: &RequestContext) -> String {
        (**self).generate_attachment_id(mime_type, ctx)
    }

    fn create_attachment<'a>(
        &'a self,
        params: &'a AttachmentCreateParams,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, Attachment> {
        (**self).create_attachment(params, ctx)
    }

    fn delete_attachment<'a>(
        &'a self,
        attachment_id: &'a str,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ()> {
        (**self).delete_attachment(attachment_id, ctx)
    }
}

/// Attachment bytes in process memory, for demos and tests. Cheap to clone; clones share data.
///
/// Two-phase uploads go to `{upload_base}/{attachment_id}` with `PUT` (serve that URL and hand
/// the bytes to [`put_bytes`](Self::put_bytes)); image previews point at the same URL. Direct
/// uploads call [`direct_upload`](Self::direct_upload).
///
/// ```
/// use chatkit_tower::chatkit::{AttachmentStore, InMemoryAttachmentStore, RequestContext};
/// use chatkit_tower::protocol::AttachmentCreateParams;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let files = InMemoryAttachmentStore::new("https://example.com/uploads");
/// let ctx = RequestContext::new("alice");
/// let params = AttachmentCreateParams { name: "a.pdf".into(), size: 3, mime_type: "application/pdf".into() };
/// let attachment = files.create_attachment(&params, &ctx).await.unwrap();
/// let url = &attachment.upload_descriptor().unwrap().url;
/// assert_eq!(url, &format!("https://example.com/uploads/{}", attachment.id()));
///
/// files.put_bytes(attachment.id(), "pdf".into(), &ctx).unwrap();
/// assert_eq!(files.bytes(attachment.id(), &ctx).unwrap(), "pdf");
/// # });
/// ```
#[derive(Clone)]
pub struct InMemoryAttachmentStore {
    upload_base: Arc<str>,
    files: Arc<Mutex<HashMap<String, File>>>,
}

struct File {
    owner: String,
    bytes: Option<Bytes>,
}

impl InMemoryAttachmentStore {
    /// A store whose upload URLs start with `upload_base` (no trailing slash needed).
    pub fn new(upload_base: impl Into<String>) -> Self {
        let base: String = upload_base.into();
        Self {
            upload_base: base.trim_end_matches('/').into(),
            files: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, File>> {
        self.files
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn url(&self, id: &str) -> String {
        format!("{}/{id}", self.upload_base)
    }

    fn record(&self, id: String, name: String, mime_type: String) -> Attachment {
        if mime_type.starts_with("image/") {
            let url = self.url(&id);
            ImageAttachment::new(id, name, mime_type, url).into()
        } else {
            FileAttachment::new(id, name, mime_type).into()
        }
    }

    /// Two-phase upload, step 2: the bytes for an attachment created for this user.
    pub fn put_bytes(
        &self,
        attachment_id: &str,
        bytes: Bytes,
        ctx: &RequestContext,
    ) -> Result<(), StoreError> {
        let mut files = self.lock();
        match files.get_mut(attachment_id) {
            Some(file) if file.owner == ctx.user_id() => {
                file.bytes = Some(bytes);
                Ok(())
            }
            _ => Err(StoreError::not_found(format!(
                "attachment {attachment_id:?} not found"
            ))),
        }
    }

    /// Direct upload: keep the bytes and return the attachment record (no upload descriptor)
    /// for the caller to save in the [`Store`](super::Store) and answer with.
    pub fn direct_upload(
        &self,
        name: &str,
        mime_type: &str,
        bytes: Bytes,
        ctx: &RequestContext,
    ) -> Attachment {
        let id = self.generate_attachment_id(mime_type, ctx);
        self.lock().insert(
            id.clone(),
            File {
                owner: ctx.user_id().to_owned(),
                bytes: Some(bytes),
            },
        );
        self.record(id, name.to_owned(), mime_type.to_owned())
    }

    /// The bytes of the user's attachment, once uploaded.
    pub fn bytes(&self, attachment_id: &str, ctx: &RequestContext) -> Option<Bytes> {
        self.lock()
            .get(attachment_id)
            .filter(|f| f.owner == ctx.user_id())
            .and_then(|f| f.bytes.clone())
    }
}

impl fmt::Debug for InMemoryAttachmentStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryAttachmentStore")
            .field("upload_base", &self.upload_base)
            .field("files", &self.lock().len())
            .finish()
    }
}

impl AttachmentStore for InMemoryAttachmentStore {
    fn create_attachment<'a>(
        &'a self,
        params: &'a AttachmentCreateParams,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, Attachment> {
        let id = self.generate_attachment_id(&params.mime_type, ctx);
        self.lock().insert(
            id.clone(),
            File {
                owner: ctx.user_id().to_owned(),
                bytes: None,
            },
        );
        let url = self.url(&id);
        let mut attachment = self.record(id, params.name.clone(), params.mime_type.clone());
        attachment.set_upload_descriptor(Some(UploadDescriptor::new(url, UploadMethod::Put)));
        Box::pin(std::future::ready(Ok(attachment)))
    }

    fn delete_attachment<'a>(
        &'a self,
        attachment_id: &'a str,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ()> {
        let mut files = self.lock();
        if files
            .get(attachment_id)
            .is_some_and(|f| f.owner == ctx.user_id())
        {
            files.remove(attachment_id);
        }
        Box::pin(std::future::ready(Ok(())))
    }
}
