//! [`ChatKitService`]: the one `POST` endpoint of the protocol.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, Request, Response};
use tower_service::Service;

use crate::auth::Principal;
use crate::body::{read_limited, Body};
use crate::error::{BoxError, ConfigError, Error};
use crate::future::ResponseFuture;
use crate::protocol::{
    to_wire_json, Attachment, AudioInput, ChatKitRequest, Order, Page, StructuredInputAnswer,
    StructuredInputItem, StructuredInputStatus, StructuredInputSubmission, SubmissionStatus,
    Thread, ThreadItem, ThreadMetadata, ThreadStatus, ThreadStreamEvent, Timestamp, ToolCallStatus,
    UserMessageInput, UserMessageItem, WidgetItem,
};
use crate::protocol::{Metadata, StructuredInput};
use crate::sse::{KeepAlive, SseBody};

use super::assistant::{Assistant, EventStream};
use super::attachments::AttachmentStore;
use super::pipeline::{sse_events, Answer};
use super::store::{IdKind, PageQuery, Store};
use super::{RequestContext, ThreadHandle};

/// Starts the assistant's stream once the thread handle exists.
type StartAnswer = Box<dyn FnOnce(ThreadHandle) -> EventStream + Send>;

/// The default request body limit: 1 MiB (`input.transcribe` carries base64 audio).
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
/// The default page size, as the SDK's.
pub const DEFAULT_PAGE_SIZE: usize = 20;
/// The largest page a client may ask for; larger limits are cut to it.
pub const MAX_PAGE_SIZE: usize = 1000;
/// How long the cancel hook may run after a client went away, by default.
pub const DEFAULT_CANCEL_TIMEOUT: Duration = Duration::from_secs(10);

/// The ChatKit custom-backend endpoint: every request is a `POST` of
/// `{"type", "params", "metadata"}`, answered with JSON or with an SSE stream of thread events,
/// byte for byte as the Python SDK (openai-chatkit 1.6.5) answers.
///
/// Put an [`AuthLayer`](crate::auth::AuthLayer) in front of it: requests without a
/// [`Principal`] are `401`. Every thread, item and attachment is the authenticated user's; another
/// user's ids are `404`, whatever the request. See the [module docs](super) for the whole
/// contract and an example.
///
/// A tower `Service` for any request body, `Error = Infallible`, always ready, cheap to clone.
#[derive(Clone)]
pub struct ChatKitService {
    inner: Arc<Inner>,
}

struct Inner {
    assistant: Arc<dyn Assistant>,
    store: Arc<dyn Store>,
    attachments: Option<Arc<dyn AttachmentStore>>,
    body_limit: usize,
    cancel_timeout: Duration,
    keep_alive: Option<KeepAlive>,
}

impl fmt::Debug for ChatKitService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatKitService")
            .field("attachments", &self.inner.attachments.is_some())
            .field("body_limit", &self.inner.body_limit)
            .field("cancel_timeout", &self.inner.cancel_timeout)
            .finish_non_exhaustive()
    }
}

impl ChatKitService {
    /// Start building a service for `assistant`, keeping threads in `store`.
    pub fn builder(assistant: impl Assistant, store: impl Store) -> ChatKitServiceBuilder {
        ChatKitServiceBuilder {
            assistant: Arc::new(assistant),
            store: Arc::new(store),
            attachments: None,
            body_limit: DEFAULT_BODY_LIMIT,
            cancel_timeout: DEFAULT_CANCEL_TIMEOUT,
            keep_alive: None,
        }
    }

    /// The store the service keeps threads in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }
}

/// Builds a [`ChatKitService`]; [`build`](Self::build) checks the settings.
#[must_use]
pub struct ChatKitServiceBuilder {
    assistant: Arc<dyn Assistant>,
    store: Arc<dyn Store>,
    attachments: Option<Arc<dyn AttachmentStore>>,
    body_limit: usize,
    cancel_timeout: Duration,
    keep_alive: Option<KeepAlive>,
}

impl fmt::Debug for ChatKitServiceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatKitServiceBuilder")
            .field("body_limit", &self.body_limit)
            .field("cancel_timeout", &self.cancel_timeout)
            .finish_non_exhaustive()
    }
}

impl ChatKitServiceBuilder {
    /// Enable attachments (`attachments.create` / `attachments.delete`) with this store for
    /// their bytes. Without one, those requests are `400`.
    pub fn attachment_store(mut self, attachments: impl AttachmentStore) -> Self {
        self.attachments = Some(Arc::new(attachments));
        self
    }

    /// Refuse request bodies over `bytes` with `413` (default [`DEFAULT_BODY_LIMIT`]).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// How long the cancel hook may run after a client went away mid-answer (default
    /// [`DEFAULT_CANCEL_TIMEOUT`]).
    pub fn cancel_timeout(mut self, timeout: Duration) -> Self {
        self.cancel_timeout = timeout;
        self
    }

    /// Send an SSE comment while an answer is quiet (e.g. a long tool call behind a proxy with an
    /// idle timeout). Off by default, as the SDK sends none; standard SSE parsers skip comments,
    /// but check chatkit.js against your deployment before turning it on.
    pub fn keep_alive(mut self, keep_alive: KeepAlive) -> Self {
        self.keep_alive = Some(keep_alive);
        self
    }

    /// The service, or why the settings cannot work.
    ///
    /// ```
    /// use chatkit_tower::chatkit::{ChatKitService, EchoAssistant, InMemoryStore};
    /// let err = ChatKitService::builder(EchoAssistant::default(), InMemoryStore::new())
    ///     .body_limit(0)
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("body limit"));
    /// ```
    pub fn build(self) -> Result<ChatKitService, ConfigError> {
        if self.body_limit == 0 {
            return Err(ConfigError::new(
                "the ChatKit body limit must be at least one byte",
            ));
        }
        if self.cancel_timeout.is_zero() {
            return Err(ConfigError::new(
                "the ChatKit cancel timeout must be longer than zero",
            ));
        }
        Ok(ChatKitService {
            inner: Arc::new(Inner {
                assistant: self.assistant,
                store: self.store,
                attachments: self.attachments,
                body_limit: self.body_limit,
                cancel_timeout: self.cancel_timeout,
                keep_alive: self.keep_alive,
            }),
        })
    }
}

impl<B> Service<Request<B>> for ChatKitService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        ResponseFuture::new(Inner::handle(self.inner.clone(), req))
    }
}

fn json(bytes: Vec<u8>) -> Response<Body> {
    let mut res = Response::new(Body::from(bytes));
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn wire<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    to_wire_json(value)
        .map_err(|e| Error::internal("the answer could not be encoded as JSON").with_source(e))
}

fn page_size(limit: Option<i64>) -> Result<usize, Error> {
    match limit {
        None | Some(0) => Ok(DEFAULT_PAGE_SIZE),
        Some(n) if n < 0 => Err(Error::bad_request("params.limit must not be negative")),
        Some(n) => Ok(usize::try_from(n)
            .unwrap_or(MAX_PAGE_SIZE)
            .min(MAX_PAGE_SIZE)),
    }
}

fn short(id: &str) -> String {
    id.chars().take(64).collect()
}

impl Inner {
    async fn handle<B>(self: Arc<Self>, req: Request<B>) -> Result<Response<Body>, Error>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        if req.method() != Method::POST {
            return Err(Error::method_not_allowed(&[Method::POST]));
        }
        let Some(principal) = req.extensions().get::<Principal>().cloned() else {
            return Err(Error::unauthorized(
                "no authenticated user: the ChatKit endpoint needs an AuthLayer in front of it",
            ));
        };
        let (parts, body) = req.into_parts();
        let bytes = read_limited(&parts.headers, body, self.body_limit).await?;
        let request =
            ChatKitRequest::from_json(&bytes).map_err(|e| Error::bad_request(e.to_string()))?;
        let ctx = RequestContext::from_request(principal, parts, request.metadata().clone());
        tracing::debug!(
            op = request.type_name(),
            user = ctx.user_id(),
            "ChatKit request"
        );
        if request.is_streaming() {
            self.stream(request, ctx).await
        } else {
            self.answer(request, ctx).await.map(json)
        }
    }

    /// A JSON answer.
    async fn answer(&self, request: ChatKitRequest, ctx: RequestContext) -> Result<Vec<u8>, Error> {
        let store = &self.store;
        match request {
            ChatKitRequest::ThreadsGetById { params, .. } => {
                let thread = store.load_thread(&params.thread_id, &ctx).await?;
                let items = store
                    .load_thread_items(
                        &params.thread_id,
                        PageQuery::first(DEFAULT_PAGE_SIZE, Order::Asc),
                        &ctx,
                    )
                    .await?;
                wire(&Thread::response(&thread, items))
            }
            ChatKitRequest::ThreadsList { params, .. } => {
                let query = PageQuery {
                    after: params.after,
                    limit: page_size(params.limit)?,
                    order: params.order,
                };
                let threads = store.load_threads(query, &ctx).await?;
                wire(&Page {
                    data: threads
                        .data
                        .iter()
                        .map(|t| Thread::response(t, Page::default()))
                        .collect(),
                    has_more: threads.has_more,
                    after: threads.after,
                })
            }
            ChatKitRequest::ItemsList { params, .. } => {
                store.load_thread(&params.thread_id, &ctx).await?;
                let query = PageQuery {
                    after: params.after,
                    limit: page_size(params.limit)?,
                    order: params.order,
                };
                let mut items = store
                    .load_thread_items(&params.thread_id, query, &ctx)
                    .await?;
                items.data.retain(|item| !item.is_hidden());
                wire(&items)
            }
            ChatKitRequest::ItemsFeedback { params, .. } => {
                store.load_thread(&params.thread_id, &ctx).await?;
                self.assistant
                    .add_feedback(params.thread_id, params.item_ids, params.kind, ctx)
                    .await?;
                Ok(b"{}".to_vec())
            }
            ChatKitRequest::AttachmentsCreate { params, .. } => {
                let attachments = self.attachments()?;
                let attachment = attachments.create_attachment(&params, &ctx).await?;
                store.save_attachment(&attachment, &ctx).await?;
                wire(&attachment)
            }
            ChatKitRequest::AttachmentsDelete { params, .. } => {
                let attachments = self.attachments()?;
                store.load_attachment(&params.attachment_id, &ctx).await?;
                attachments
                    .delete_attachment(&params.attachment_id, &ctx)
                    .await?;
                store.delete_attachment(&params.attachment_id, &ctx).await?;
                Ok(b"{}".to_vec())
            }
            ChatKitRequest::ThreadsUpdate { params, .. } => {
                let mut thread = store.load_thread(&params.thread_id, &ctx).await?;
                thread.title = Some(params.title);
                store.save_thread(&thread, &ctx).await?;
                wire(&Thread::response(&thread, Page::default()))
            }
            ChatKitRequest::ThreadsDelete { params, .. } => {
                store.delete_thread(&params.thread_id, &ctx).await?;
                Ok(b"{}".to_vec())
            }
            ChatKitRequest::InputTranscribe { params, .. } => {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(params.audio_base64.trim())
                    .map_err(|e| {
                        Error::bad_request(format!(
                            "input.transcribe: params.audio_base64 is not base64: {e}"
                        ))
                    })?;
                let audio = AudioInput {
                    data,
                    mime_type: params.mime_type,
                };
                wire(&self.assistant.transcribe(audio, ctx).await?)
            }
            ChatKitRequest::ThreadsSyncCustomAction { params, .. } => {
                let thread = store.load_thread(&params.thread_id, &ctx).await?;
                let sender = self
                    .sender(&params.thread_id, params.item_id.as_deref(), &ctx)
                    .await?
                    .map_err(|kind| {
                        Error::bad_request(format!(
                            "threads.sync_custom_action: item {:?} is a {kind}, not a widget",
                            short(params.item_id.as_deref().unwrap_or_default())
                        ))
                    })?;
                wire(
                    &self
                        .assistant
                        .sync_action(thread, params.action, sender, ctx)
                        .await?,
                )
            }
            other => Err(Error::internal(format!(
                "{} is not a JSON request",
                other.type_name()
            ))),
        }
    }

    fn attachments(&self) -> Result<&Arc<dyn AttachmentStore>, Error> {
        self.attachments
            .as_ref()
            .ok_or_else(|| Error::bad_request("attachments are not enabled on this ChatKit server"))
    }

    /// The widget that sent an action: `Ok(None)` without an item id, `Err(type)` when the item
    /// is not a widget.
    async fn sender(
        &self,
        thread_id: &str,
        item_id: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<Result<Option<WidgetItem>, String>, Error> {
        let Some(item_id) = item_id.filter(|id| !id.is_empty()) else {
            return Ok(Ok(None));
        };
        match self.store.load_item(thread_id, item_id, ctx).await? {
            ThreadItem::Widget(widget) => Ok(Ok(Some(widget))),
            other => Ok(Err(other.type_name().to_owned())),
        }
    }

    /// The user message built from `input`: attachments loaded (the user's only) and bound to
    /// the thread.
    async fn user_message(
        &self,
        input: UserMessageInput,
        attachments: Vec<Attachment>,
        thread: &ThreadMetadata,
        ctx: &RequestContext,
    ) -> Result<UserMessageItem, Error> {
        let attachments = attachments
            .into_iter()
            .map(|mut a| {
                a.set_thread_id(thread.id.clone());
                a
            })
            .collect();
        Ok(UserMessageItem {
            id: self.store.generate_item_id(IdKind::Message, thread, ctx),
            thread_id: thread.id.clone(),
            created_at: Timestamp::now(),
            content: input.content,
            attachments,
            quoted_text: input.quoted_text,
            inference_options: input.inference_options,
        })
    }

    async fn load_attachments(
        &self,
        ids: &[String],
        ctx: &RequestContext,
    ) -> Result<Vec<Attachment>, Error> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.store.load_attachment(id, ctx).await?);
        }
        Ok(out)
    }

    /// Store the user message (and its attachments, now bound to the thread).
    async fn save_user_message(
        &self,
        item: &UserMessageItem,
        ctx: &RequestContext,
    ) -> Result<ThreadItem, Error> {
        for attachment in &item.attachments {
            self.store.save_attachment(attachment, ctx).await?;
        }
        let item = ThreadItem::UserMessage(item.clone());
        self.store
            .add_thread_item(item.thread_id(), &item, ctx)
            .await?;
        Ok(item)
    }

    /// The user's message saved and announced (`thread.item.done` in `prelude`), and the
    /// assistant's answer to it, ready to start.
    async fn user_turn(
        &self,
        input: UserMessageInput,
        attachments: Vec<Attachment>,
        thread: &ThreadMetadata,
        ctx: &RequestContext,
        prelude: &mut Vec<ThreadStreamEvent>,
    ) -> Result<StartAnswer, Error> {
        let message = self.user_message(input, attachments, thread, ctx).await?;
        prelude.push(ThreadStreamEvent::ItemDone {
            item: self.save_user_message(&message, ctx).await?,
        });
        let (assistant, ctx) = (self.assistant.clone(), ctx.clone());
        Ok(Box::new(move |handle| {
            assistant.respond(handle, Some(message), ctx)
        }))
    }

    /// A streamed answer. Everything that can fail with a status (a missing thread, a bad item)
    /// is checked before the stream starts.
    async fn stream(
        &self,
        request: ChatKitRequest,
        ctx: RequestContext,
    ) -> Result<Response<Body>, Error> {
        let store = &self.store;
        let mut prelude = Vec::new();
        let (thread, source): (ThreadMetadata, Option<StartAnswer>);
        match request {
            ChatKitRequest::ThreadsCreate { params, .. } => {
                let attachments = self
                    .load_attachments(&params.input.attachments, &ctx)
                    .await?;
                let created = ThreadMetadata {
                    title: None,
                    id: store.generate_thread_id(&ctx),
                    created_at: Timestamp::now(),
                    status: ThreadStatus::Active,
                    allowed_image_domains: None,
                    metadata: Metadata::new(),
                };
                store.save_thread(&created, &ctx).await?;
                prelude.push(ThreadStreamEvent::ThreadCreated {
                    thread: Thread::response(&created, Page::default()),
                });
                source = Some(
                    self.user_turn(params.input, attachments, &created, &ctx, &mut prelude)
                        .await?,
                );
                thread = created;
            }
            ChatKitRequest::ThreadsAddUserMessage { params, .. } => {
                let loaded = store.load_thread(&params.thread_id, &ctx).await?;
                let attachments = self
                    .load_attachments(&params.input.attachments, &ctx)
                    .await?;
                source = Some(
                    self.user_turn(params.input, attachments, &loaded, &ctx, &mut prelude)
                        .await?,
                );
                thread = loaded;
            }
            ChatKitRequest::ThreadsAddClientToolOutput { params, .. } => {
                let loaded = store.load_thread(&params.thread_id, &ctx).await?;
                let last = store
                    .load_thread_items(&loaded.id, PageQuery::first(1, Order::Desc), &ctx)
                    .await?;
                let Some(ThreadItem::ClientToolCall(mut call)) = last
                    .data
                    .into_iter()
                    .find(|i| matches!(i, ThreadItem::ClientToolCall(c) if c.status == ToolCallStatus::Pending))
                else {
                    return Err(Error::bad_request(format!(
                        "threads.add_client_tool_output: the last item of thread {:?} is not a pending client tool call",
                        short(&loaded.id)
                    )));
                };
                call.output = Some(params.result).filter(|v| !v.is_null());
                call.status = ToolCallStatus::Completed;
                store
                    .save_item(&loaded.id, &ThreadItem::ClientToolCall(call), &ctx)
                    .await?;
                // Drop any other call still pending, which should not exist.
                let recent = store
                    .load_thread_items(
                        &loaded.id,
                        PageQuery::first(DEFAULT_PAGE_SIZE, Order::Desc),
                        &ctx,
                    )
                    .await?;
                for item in recent.data {
                    if let ThreadItem::ClientToolCall(c) = &item {
                        if c.status == ToolCallStatus::Pending {
                            tracing::warn!(call = %c.call_id, "a client tool call was never completed; removing it");
                            store.delete_thread_item(&loaded.id, &c.id, &ctx).await?;
                        }
                    }
                }
                let (assistant, ctx) = (self.assistant.clone(), ctx.clone());
                thread = loaded;
                source = Some(Box::new(move |handle| assistant.respond(handle, None, ctx)));
            }
            ChatKitRequest::ThreadsAddStructuredInput { params, .. } => {
                let loaded = store.load_thread(&params.thread_id, &ctx).await?;
                let item = store.load_item(&loaded.id, &params.item_id, &ctx).await?;
                let ThreadItem::StructuredInput(item) = item else {
                    return Err(Error::bad_request(format!(
                        "threads.add_structured_input: item {:?} is a {}, not a structured input",
                        short(&params.item_id),
                        item.type_name()
                    )));
                };
                let updated = apply_submission(item, params.input)?;
                let (assistant, ctx) = (self.assistant.clone(), ctx.clone());
                thread = loaded;
                source = Some(Box::new(move |handle| {
                    let replaced = ThreadStreamEvent::ItemReplaced {
                        item: ThreadItem::StructuredInput(updated),
                    };
                    stream::once(async move { Ok(replaced) })
                        .chain(assistant.respond(handle, None, ctx))
                        .boxed()
                }));
            }
            ChatKitRequest::ThreadsRetryAfterItem { params, .. } => {
                let loaded = store.load_thread(&params.thread_id, &ctx).await?;
                let mut later = Vec::new();
                let mut query = PageQuery::first(DEFAULT_PAGE_SIZE, Order::Desc);
                let message = 'search: loop {
                    let page = store
                        .load_thread_items(&loaded.id, query.clone(), &ctx)
                        .await?;
                    for item in page.data {
                        if item.id() == params.item_id {
                            match item {
                                ThreadItem::UserMessage(message) => break 'search message,
                                other => {
                                    return Err(Error::bad_request(format!(
                                        "threads.retry_after_item: item {:?} is a {}, not a user message",
                                        short(&params.item_id),
                                        other.type_name()
                                    )))
                                }
                            }
                        }
                        later.push(item.id().to_owned());
                    }
                    if !page.has_more {
                        return Err(Error::new(
                            crate::ErrorCode::NotFound,
                            format!(
                                "item {:?} not found in thread {:?}",
                                short(&params.item_id),
                                short(&loaded.id)
                            ),
                        ));
                    }
                    query.after = page.after;
                };
                for id in later {
                    store.delete_thread_item(&loaded.id, &id, &ctx).await?;
                }
                let (assistant, ctx) = (self.assistant.clone(), ctx.clone());
                thread = loaded;
                source = Some(Box::new(move |handle| {
                    assistant.respond(handle, Some(message), ctx)
                }));
            }
            ChatKitRequest::ThreadsCustomAction { params, .. } => {
                let loaded = store.load_thread(&params.thread_id, &ctx).await?;
                thread = loaded;
                match self
                    .sender(&params.thread_id, params.item_id.as_deref(), &ctx)
                    .await?
                {
                    Ok(sender) => {
                        let (assistant, ctx, action) =
                            (self.assistant.clone(), ctx.clone(), params.action);
                        source = Some(Box::new(move |handle| {
                            assistant.action(handle, action, sender, ctx)
                        }));
                    }
                    Err(kind) => {
                        // As the SDK answers an action sent by an item that is not a widget.
                        tracing::warn!(item = ?params.item_id, %kind, "an action's sender is not a widget");
                        prelude.push(ThreadStreamEvent::stream_error(false));
                        source = None;
                    }
                }
            }
            other => {
                return Err(Error::internal(format!(
                    "{} is not a streaming request",
                    other.type_name()
                )))
            }
        }
        let handle = ThreadHandle::new(thread);
        let source = source.map(|start| start(handle.clone()));
        let answer = Answer {
            store: self.store.clone(),
            assistant: self.assistant.clone(),
            thread: handle,
            ctx,
            cancel_timeout: self.cancel_timeout,
        };
        let body = SseBody::new(sse_events(answer, prelude, source));
        Ok(match self.keep_alive.clone() {
            Some(keep_alive) => body.keep_alive(keep_alive),
            None => body,
        }
        .into_response())
    }
}

/// Record the answers on a pending structured input item, as the SDK does.
fn apply_submission(
    mut item: StructuredInputItem,
    submission: StructuredInputSubmission,
) -> Result<StructuredInputItem, Error> {
    if item.status != StructuredInputStatus::Pending {
        return Err(Error::bad_request(format!(
            "threads.add_structured_input: item {:?} is not pending",
            short(&item.id)
        )));
    }
    for id in submission.answers.keys() {
        if !item.inputs.iter().any(|q| q.id() == id) {
            tracing::warn!(item = %item.id, input = %id, "an answer for an unknown structured input is ignored");
        }
    }
    for question in &mut item.inputs {
        let answer = submission.answers.get(question.id());
        let answer = match answer {
            Some(a)
                if submission.status == SubmissionStatus::Answered
                    && !a.skipped
                    && !a.values.is_empty() =>
            {
                let mut values = a.values.clone();
                if let StructuredInput::MultipleChoice(q) = question {
                    if !q.multiple {
                        values.truncate(1);
                    }
                }
                StructuredInputAnswer {
                    values,
                    skipped: false,
                }
            }
            _ => StructuredInputAnswer {
                values: Vec::new(),
                skipped: true,
            },
        };
        match question {
            StructuredInput::MultipleChoice(q) => q.answer = Some(answer),
            StructuredInput::Freeform(q) => q.answer = Some(answer),
        }
    }
    item.status = match submission.status {
        SubmissionStatus::Answered => StructuredInputStatus::Answered,
        SubmissionStatus::Skipped => StructuredInputStatus::Skipped,
    };
    Ok(item)
}
