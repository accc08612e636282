//! The [`Store`] trait: where threads, items and attachment records live.

use std::fmt;
use std::sync::Arc;

use crate::error::{BoxError, Error, ErrorCode};
use crate::protocol::{Attachment, Order, Page, ThreadItem, ThreadMetadata};
use crate::BoxFuture;

use super::RequestContext;

/// What an id is for; each kind has the SDK's prefix (`thr_`, `msg_`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdKind {
    /// `thr_`
    Thread,
    /// `msg_` (user and assistant messages, widgets)
    Message,
    /// `tc_`
    ToolCall,
    /// `tsk_`
    Task,
    /// `wf_`
    Workflow,
    /// `atc_`
    Attachment,
    /// `shcx_`
    SdkHiddenContext,
}

impl IdKind {
    /// The id prefix, without the underscore.
    pub const fn prefix(self) -> &'static str {
        match self {
            Self::Thread => "thr",
            Self::Message => "msg",
            Self::ToolCall => "tc",
            Self::Task => "tsk",
            Self::Workflow => "wf",
            Self::Attachment => "atc",
            Self::SdkHiddenContext => "shcx",
        }
    }
}

/// A new id as the SDK makes them: the kind's prefix, `_`, and 8 random hex digits.
///
/// ```
/// use chatkit_tower::chatkit::{generate_id, IdKind};
/// let id = generate_id(IdKind::Thread);
/// assert!(id.starts_with("thr_") && id.len() == 12);
/// ```
pub fn generate_id(kind: IdKind) -> String {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to the clock, which is unique enough for ids.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
            .unwrap_or_default();
        bytes = nanos.to_be_bytes();
    }
    format!(
        "{}_{:02x}{:02x}{:02x}{:02x}",
        kind.prefix(),
        bytes[0],
        bytes[1],
        bytes[2],
        bytes[3]
    )
}

/// Which page of a list to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    /// The cursor of the previous page ([`Page::after`]); `None` for the first page.
    pub after: Option<String>,
    /// At most this many results.
    pub limit: usize,
    /// Oldest or newest first.
    pub order: Order,
}

impl PageQuery {
    /// The first page of `limit` results in `order`.
    pub fn first(limit: usize, order: Order) -> Self {
        Self {
            after: None,
            limit,
            order,
        }
    }
}

/// Why a store call failed. The kind decides the answer: [`NotFound`](StoreErrorKind::NotFound)
/// is `404 NOT_FOUND`, [`BadCursor`](StoreErrorKind::BadCursor) `400 BAD_REQUEST`,
/// [`Unavailable`](StoreErrorKind::Unavailable) `503 STORE_UNAVAILABLE`, anything else
/// `500 INTERNAL`.
///
/// ```
/// use chatkit_tower::chatkit::{StoreError, StoreErrorKind};
/// let err = StoreError::not_found("thread thr_1 not found");
/// assert_eq!(err.kind(), StoreErrorKind::NotFound);
/// let res = chatkit_tower::Error::from(err).into_response();
/// assert_eq!(res.status(), 404);
/// ```
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
    source: Option<BoxError>,
}

/// The kind of a [`StoreError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// No such thread, item or attachment for this user (another user's counts as missing).
    NotFound,
    /// The `after` cursor is not one this store handed out (or its item is gone).
    BadCursor,
    /// The store cannot be reached or did not answer in time.
    Unavailable,
    /// Anything else.
    Other,
}

impl StoreError {
    /// An error of `kind`, with words for a person.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// [`StoreErrorKind::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::NotFound, message)
    }

    /// [`StoreErrorKind::BadCursor`] for `cursor`.
    pub fn bad_cursor(cursor: &str) -> Self {
        let shown: String = cursor.chars().take(64).collect();
        Self::new(
            StoreErrorKind::BadCursor,
            format!("`after` {shown:?} is not a cursor of this list (start again without `after`)"),
        )
    }

    /// [`StoreErrorKind::Unavailable`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Unavailable, message)
    }

    /// [`StoreErrorKind::Other`].
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Other, message)
    }

    /// Attach the cause (kept for logs, never sent).
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The kind.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// The words for a person.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        let code = match err.kind {
            StoreErrorKind::NotFound => ErrorCode::NotFound,
            StoreErrorKind::BadCursor => ErrorCode::BadRequest,
            StoreErrorKind::Unavailable => ErrorCode::StoreUnavailable,
            StoreErrorKind::Other => ErrorCode::Internal,
        };
        let details = err.message.clone();
        Error::new(code, details).with_source(err)
    }
}

/// A store call's future.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// Where threads, their items and attachment records live — the Rust counterpart of the SDK's
/// `Store`.
///
/// Every call is scoped by the owner, [`RequestContext::user_id`]: a store never reads, lists,
/// changes or deletes another user's thread or attachment, and answers
/// [`NotFound`](StoreErrorKind::NotFound) for one (not "forbidden": that would tell the caller
/// it exists). Lists are ordered by `created_at`, equal times in insertion order, and paged by
/// an opaque `after` cursor ([`Page::after`]); a cursor the store did not hand out is
/// [`BadCursor`](StoreErrorKind::BadCursor). A store that cannot be reached answers
/// [`Unavailable`](StoreErrorKind::Unavailable) — within a bounded time: wrap each call of a
/// networked store in a timeout.
///
/// Object-safe (`Arc<dyn Store>`), with boxed futures. [`InMemoryStore`](super::InMemoryStore)
/// is the reference implementation.
pub trait Store: Send + Sync + 'static {
    /// A new thread id (default: [`generate_id`]`(IdKind::Thread)`).
    fn generate_thread_id(&self, ctx: &RequestContext) -> String {
        let _ = ctx;
        generate_id(IdKind::Thread)
    }

    /// A new item id (default: [`generate_id`]`(kind)`).
    fn generate_item_id(
        &self,
        kind: IdKind,
        thread: &ThreadMetadata,
        ctx: &RequestContext,
    ) -> String {
        let _ = (thread, ctx);
        generate_id(kind)
    }

    /// The thread, if it is the user's.
    fn load_thread<'a>(
        &'a self,
        thread_id: &'a str,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ThreadMetadata>;

    /// Insert or update the thread (title, status, metadata). A thread id that belongs to
    /// another user is `NotFound`, never overwritten.
    fn save_thread<'a>(
        &'a self,
        thread: &'a ThreadMetadata,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ()>;

    /// A page of the user's threads.
    fn load_threads<'a>(
        &'a self,
        query: PageQuery,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, Page<ThreadMetadata>>;

    /// Delete the thread, its items, and the user's attachment records bound to it
    /// ([`Attachment::thread_id`]); other attachment records stay.
    fn delete_thread<'a>(
        &'a self,
        thread_id: &'a str,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ()>;

    /// A page of the thread's items (hidden-context items included).
    fn load_thread_items<'a>(
        &'a self,
        thread_id: &'a str,
        query: PageQuery,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, Page<ThreadItem>>;

    /// Append a new item to the thread (an item whose id is already there is replaced in place).
    /// By default [`save_item`](Store::save_item), which does just that; a store that can append
    /// more cheaply than it can upsert may say so here.
    fn add_thread_item<'a>(
        &'a self,
        thread_id: &'a str,
        item: &'a ThreadItem,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ()> {
        self.save_item(thread_id, item, ctx)
    }

    /// Insert or replace the item with this id.
    fn save_item<'a>(
        &'a self,
        thread_id: &'a str,
        item: &'a ThreadItem,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ()>;

    /// One item of the thread.
    fn load_item<'a>(
        &'a self,
        thread_id: &'a str,
        item_id: &'a str,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ThreadItem>;

    /// Delete one item of the thread (an item that is not there is not an error).
    fn delete_thread_item<'a>(
        &'a self,
        thread_id: &'a str,
        item_id: &'a str,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ()>;

    /// Insert or update an attachment record (its metadata included).
    fn save_attachment<'a>(
        &'a self,
        attachment: &'a Attachment,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ()>;

    /// The user's attachment record.
    fn load_attachment<'a>(
        &'a self,
        attachment_id: &'a str,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, Attachment>;

    /// Delete the user's attachment record (one that is not there is not an error).
    fn delete_attachment<'a>(
        &'a self,
        attachment_id: &'a str,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ()>;

    /// Whether the store can answer now, for a readiness probe (`GET /readyz` in
    /// [`App`](crate::App)): the SQL stores run a trivial query under their timeout, and fail
    /// [`Unavailable`](StoreErrorKind::Unavailable) when the database is away. The default (a
    /// store in this process) is always ready; a store of your own over a network should say
    /// otherwise.
    ///
    /// ```
    /// use chatkit_tower::chatkit::{InMemoryStore, Store};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// assert!(InMemoryStore::new().ready().await.is_ok());
    /// # });
    /// ```
    fn ready(&self) -> StoreFuture<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }
}

macro_rules! delegate_store {
    ($($ty:ty),*) => {$(
        impl<S: Store + ?Sized> Store for $ty {
            fn generate_thread_id(&self, ctx: &RequestContext) -> String {
                (**self).generate_thread_id(ctx)
            }
            fn generate_item_id(&self, kind: IdKind, thread: &ThreadMetadata, ctx: &RequestContext) -> String {
                (**self).generate_item_id(kind, thread, ctx)
            }
            fn load_thread<'a>(&'a self, thread_id: &'a str, ctx: &'a RequestContext) -> StoreFuture<'a, ThreadMetadata> {
                (**self).load_thread(thread_id, ctx)
            }
            fn save_thread<'a>(&'a self, thread: &'a ThreadMetadata, ctx: &'a RequestContext) -> StoreFuture<'a, ()> {
                (**self).save_thread(thread, ctx)
            }
            fn load_threads<'a>(&'a self, query: PageQuery, ctx: &'a RequestContext) -> StoreFuture<'a, Page<ThreadMetadata>> {
                (**self).load_threads(query, ctx)
            }
            fn delete_thread<'a>(&'a self, thread_id: &'a str, ctx: &'a RequestContext) -> StoreFuture<'a, ()> {
                (**self).delete_thread(thread_id, ctx)
            }
            fn load_thread_items<'a>(&'a self, thread_id: &'a str, query: PageQuery, ctx: &'a RequestContext) -> StoreFuture<'a, Page<ThreadItem>> {
                (**self).load_thread_items(thread_id, query, ctx)
            }
            fn add_thread_item<'a>(&'a self, thread_id: &'a str, item: &'a ThreadItem, ctx: &'a RequestContext) -> StoreFuture<'a, ()> {
                (**self).add_thread_item(thread_id, item, ctx)
            }
            fn save_item<'a>(&'a self, thread_id: &'a str, item: &'a ThreadItem, ctx: &'a RequestContext) -> StoreFuture<'a, ()> {
                (**self).save_item(thread_id, item, ctx)
            }
            fn load_item<'a>(&'a self, thread_id: &'a str, item_id: &'a str, ctx: &'a RequestContext) -> StoreFuture<'a, ThreadItem> {
                (**self).load_item(thread_id, item_id, ctx)
            }
            fn delete_thread_item<'a>(&'a self, thread_id: &'a str, item_id: &'a str, ctx: &'a RequestContext) -> StoreFuture<'a, ()> {
                (**self).delete_thread_item(thread_id, item_id, ctx)
            }
            fn save_attachment<'a>(&'a self, attachment: &'a Attachment, ctx: &'a RequestContext) -> StoreFuture<'a, ()> {
                (**self).save_attachment(attachment, ctx)
            }
            fn load_attachment<'a>(&'a self, attachment_id: &'a str, ctx: &'a RequestContext) -> StoreFuture<'a, Attachment> {
                (**self).load_attachment(attachment_id, ctx)
            }
            fn delete_attachment<'a>(&'a self, attachment_id: &'a str, ctx: &'a RequestContext) -> StoreFuture<'a, ()> {
                (**self).delete_attachment(attachment_id, ctx)
            }
            fn ready(&self) -> StoreFuture<'_, ()> {
                (**self).ready()
            }
        }
    )*};
}
delegate_store!(Arc<S>, Box<S>);
