//! The bookkeeping around an assistant's events, as the SDK's `_process_events` does it:
//! persist, hide, track pending items, notice thread changes, turn failures into `error`
//! events, and run the cancel hook when the client goes away.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, Stream, StreamExt};

use crate::protocol::{
    to_wire_json, AssistantMessageContent, Page, Thread, ThreadItem, ThreadItemUpdate,
    ThreadMetadata, ThreadStreamEvent,
};
use crate::sse::Event;

use super::assistant::{Assistant, EventStream, StreamError, ThreadHandle};
use super::store::{Store, StoreError};
use super::RequestContext;

/// Everything an answer's stream needs.
pub(crate) struct Answer {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) assistant: Arc<dyn Assistant>,
    pub(crate) thread: ThreadHandle,
    pub(crate) ctx: RequestContext,
    pub(crate) cancel_timeout: Duration,
}

/// The SSE events of an answer: `prelude` as it is, then (with a `source`) `stream_options` and
/// the source's events with the SDK's bookkeeping.
pub(crate) fn sse_events(
    answer: Answer,
    prelude: Vec<ThreadStreamEvent>,
    source: Option<EventStream>,
) -> impl Stream<Item = Event> + Send + 'static {
    let mut out: VecDeque<ThreadStreamEvent> = prelude.into();
    let last_thread = answer.thread.get();
    if source.is_some() {
        let options = answer.assistant.stream_options(&last_thread, &answer.ctx);
        out.push_back(ThreadStreamEvent::StreamOptions {
            stream_options: options,
        });
    }
    let state = State {
        out,
        source,
        last_thread,
        guard: CancelGuard {
            answer,
            pending: Vec::new(),
            armed: false,
            runtime: tokio::runtime::Handle::try_current().ok(),
        },
    };
    stream::unfold(state, |mut state| async move {
        let event = state.next().await?;
        Some((encode(&event), state))
    })
}

fn encode(event: &ThreadStreamEvent) -> Event {
    match to_wire_json(event) {
        Ok(json) => Event::new().data(String::from_utf8_lossy(&json)),
        Err(err) => {
            tracing::error!(error = %err, "a ChatKit event could not be encoded");
            Event::new().data(r#"{"type":"error","code":"stream.error","allow_retry":true}"#)
        }
    }
}

struct State {
    out: VecDeque<ThreadStreamEvent>,
    source: Option<EventStream>,
    last_thread: ThreadMetadata,
    guard: CancelGuard,
}

impl State {
    async fn next(&mut self) -> Option<ThreadStreamEvent> {
        loop {
            if let Some(event) = self.out.pop_front() {
                return Some(event);
            }
            let source = self.source.as_mut()?;
            // From here on a client that goes away has stopped an answer.
            self.guard.armed = true;
            match source.next().await {
                Some(Ok(event)) => {
                    if let Err(err) = self.process(event).await {
                        self.fail(StreamError::other(err)).await;
                    }
                }
                Some(Err(err)) => self.fail(err).await,
                None => {
                    self.source = None;
                    if let Err(err) = self.check_thread().await {
                        self.fail(StreamError::other(err)).await;
                    }
                    self.guard.armed = false;
                }
            }
        }
    }

    async fn process(&mut self, event: ThreadStreamEvent) -> Result<(), StoreError> {
        let answer = &self.guard.answer;
        let thread_id = answer.thread.id();
        let mut hidden = false;
        match &event {
            ThreadStreamEvent::ItemAdded { item } => self.guard.track(item.clone()),
            ThreadStreamEvent::ItemDone { item } => {
                answer
                    .store
                    .add_thread_item(&thread_id, item, &answer.ctx)
                    .await?;
                self.guard.forget(item.id());
                hidden = item.is_hidden();
            }
            ThreadStreamEvent::ItemRemoved { item_id } => {
                answer
                    .store
                    .delete_thread_item(&thread_id, item_id, &answer.ctx)
                    .await?;
                self.guard.forget(item_id);
            }
            ThreadStreamEvent::ItemReplaced { item } => {
                answer
                    .store
                    .save_item(&thread_id, item, &answer.ctx)
                    .await?;
                self.guard.forget(item.id());
            }
            ThreadStreamEvent::ItemUpdated { item_id, update } => self.guard.apply(item_id, update),
            _ => {}
        }
        if !hidden {
            self.out.push_back(event);
        }
        self.check_thread().await
    }

    /// Save the thread and announce it when the assistant changed it.
    async fn check_thread(&mut self) -> Result<(), StoreError> {
        let answer = &self.guard.answer;
        let now = answer.thread.get();
        if now == self.last_thread {
            return Ok(());
        }
        self.last_thread = now.clone();
        answer.store.save_thread(&now, &answer.ctx).await?;
        self.out.push_back(ThreadStreamEvent::ThreadUpdated {
            thread: Thread::response(&now, Page::default()),
        });
        Ok(())
    }

    /// End the answer with an `error` event (and a last `thread.updated` if the thread changed).
    async fn fail(&mut self, err: StreamError) {
        tracing::warn!(error = %err, "a ChatKit answer failed");
        self.source = None;
        self.guard.armed = false;
        self.out.push_back(err.to_event());
        if let Err(err) = self.check_thread().await {
            tracing::warn!(error = %err, "the thread could not be saved after a failed answer");
        }
    }
}

/// Items added but not done, kept up to date; when dropped while armed (the client went away
/// mid-answer) it runs the assistant's cancel hook in a task bounded by the cancel timeout.
struct CancelGuard {
    answer: Answer,
    pending: Vec<ThreadItem>,
    armed: bool,
    runtime: Option<tokio::runtime::Handle>,
}

impl CancelGuard {
    fn track(&mut self, item: ThreadItem) {
        match self.pending.iter_mut().find(|p| p.id() == item.id()) {
            Some(slot) => *slot = item,
            None => self.pending.push(item),
        }
    }

    fn forget(&mut self, item_id: &str) {
        self.pending.retain(|p| p.id() != item_id);
    }

    fn apply(&mut self, item_id: &str, update: &ThreadItemUpdate) {
        let Some(item) = self.pending.iter_mut().find(|p| p.id() == item_id) else {
            return;
        };
        match item {
            ThreadItem::AssistantMessage(message) => {
                let index = match update {
                    ThreadItemUpdate::ContentPartAdded { content_index, .. }
                    | ThreadItemUpdate::TextDelta { content_index, .. }
                    | ThreadItemUpdate::AnnotationAdded { content_index, .. }
                    | ThreadItemUpdate::ContentPartDone { content_index, .. } => *content_index,
                    _ => return,
                };
                // Updates may name a part that was never added: pad, as the SDK does.
                while message.content.len() <= index {
                    message.content.push(AssistantMessageContent::default());
                }
                let part = &mut message.content[index];
                match update {
                    ThreadItemUpdate::ContentPartAdded { content, .. }
                    | ThreadItemUpdate::ContentPartDone { content, .. } => *part = content.clone(),
                    ThreadItemUpdate::TextDelta { delta, .. } => part.text.push_str(delta),
                    ThreadItemUpdate::AnnotationAdded {
                        annotation_index,
                        annotation,
                        ..
                    } => {
                        let at = (*annotation_index).min(part.annotations.len());
                        part.annotations.insert(at, annotation.clone());
                    }
                    _ => {}
                }
            }
            ThreadItem::Workflow(workflow) => match update {
                ThreadItemUpdate::TaskAdded { task, .. } => {
                    workflow.workflow.tasks.push(task.clone())
                }
                ThreadItemUpdate::TaskUpdated { task_index, task } => {
                    if let Some(slot) = workflow.workflow.tasks.get_mut(*task_index) {
                        *slot = task.clone();
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Some(runtime) = self.runtime.take() else {
            tracing::warn!(
                "a ChatKit answer was stopped outside a tokio runtime: its cancel hook did not run"
            );
            return;
        };
        let answer = &self.answer;
        let hook = answer.assistant.handle_stream_cancelled(
            answer.store.clone(),
            answer.thread.get(),
            std::mem::take(&mut self.pending),
            answer.ctx.clone(),
        );
        let timeout = answer.cancel_timeout;
        let thread_id = answer.thread.id();
        runtime.spawn(async move {
            match tokio::time::timeout(timeout, hook).await {
                Ok(Ok(())) => tracing::debug!(thread = %thread_id, "saved a stopped answer"),
                Ok(Err(err)) => tracing::warn!(thread = %thread_id, error = %err, "a stopped answer could not be saved"),
                Err(_) => tracing::warn!(thread = %thread_id, "saving a stopped answer timed out"),
            }
        });
    }
}
