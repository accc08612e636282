//! [`InMemoryStore`]: threads, items and attachment records in process memory.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::protocol::{Attachment, Order, Page, ThreadItem, ThreadMetadata, Timestamp};

use super::store::{PageQuery, Store, StoreError, StoreFuture};
use super::RequestContext;

/// A [`Store`] in process memory: for demos, tests and single-instance prototypes (everything is
/// lost on restart). Cheap to clone; clones share the data.
///
/// Lists are ordered by `created_at`, equal times in insertion order; the `after` cursor is the
/// id of the last result of the previous page, as the SDK's sample stores do, and is checked:
/// an id that is not in the list is `BadCursor`.
///
/// ```
/// use chatkit_tower::chatkit::{InMemoryStore, PageQuery, RequestContext, Store};
/// use chatkit_tower::protocol::{Order, ThreadMetadata};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = InMemoryStore::new();
/// let alice = RequestContext::new("alice");
/// store.save_thread(&ThreadMetadata::new("thr_1"), &alice).await.unwrap();
/// store.save_thread(&ThreadMetadata::new("thr_2"), &alice).await.unwrap();
///
/// let page = store.load_threads(PageQuery::first(1, Order::Asc), &alice).await.unwrap();
/// assert_eq!(page.data[0].id, "thr_1");
/// assert_eq!(page.after.as_deref(), Some("thr_1"));
///
/// // Bob sees nothing of Alice's.
/// let bob = RequestContext::new("bob");
/// assert!(store.load_thread("thr_1", &bob).await.is_err());
/// # });
/// ```
#[derive(Clone, Default)]
pub struct InMemoryStore {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    next_seq: u64,
    threads: HashMap<String, ThreadRecord>,
    attachments: HashMap<String, (String, Attachment)>,
}

struct ThreadRecord {
    owner: String,
    seq: u64,
    thread: ThreadMetadata,
    items: Vec<ItemRecord>,
}

struct ItemRecord {
    seq: u64,
    item: ThreadItem,
}

impl State {
    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn thread(&self, id: &str, ctx: &RequestContext) -> Result<&ThreadRecord, StoreError> {
        self.threads
            .get(id)
            .filter(|t| t.owner == ctx.user_id())
            .ok_or_else(|| thread_not_found(id))
    }

    fn thread_mut(
        &mut self,
        id: &str,
        ctx: &RequestContext,
    ) -> Result<&mut ThreadRecord, StoreError> {
        self.threads
            .get_mut(id)
            .filter(|t| t.owner == ctx.user_id())
            .ok_or_else(|| thread_not_found(id))
    }
}

fn thread_not_found(id: &str) -> StoreError {
    StoreError::not_found(format!("thread {:?} not found", short(id)))
}

fn short(id: &str) -> String {
    id.chars().take(64).collect()
}

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every change is one step).
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl fmt::Debug for InMemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("InMemoryStore")
            .field("threads", &state.threads.len())
            .field("attachments", &state.attachments.len())
            .finish()
    }
}

/// One page of `records`, ordered by `(created_at, seq)`.
fn page<T: Clone>(
    mut records: Vec<(Option<Timestamp>, u64, &str, &T)>,
    query: &PageQuery,
) -> Result<Page<T>, StoreError> {
    records.sort_by_key(|(at, seq, _, _)| (*at, *seq));
    if query.order == Order::Desc {
        records.reverse();
    }
    let start = match &query.after {
        None => 0,
        Some(cursor) => {
            records
                .iter()
                .position(|(_, _, id, _)| id == cursor)
                .ok_or_else(|| StoreError::bad_cursor(cursor))?
                + 1
        }
    };
    let rest = &records[start..];
    let has_more = rest.len() > query.limit;
    let taken = &rest[..rest.len().min(query.limit)];
    Ok(Page {
        data: taken.iter().map(|(_, _, _, t)| (*t).clone()).collect(),
        has_more,
        after: if has_more {
            taken.last().map(|(_, _, id, _)| (*id).to_owned())
        } else {
            None
        },
    })
}

fn ready<'a, T: Send + 'a>(result: Result<T, StoreError>) -> StoreFuture<'a, T> {
    Box::pin(std::future::ready(result))
}

impl Store for InMemoryStore {
    fn load_thread<'a>(
        &'a self,
        thread_id: &'a str,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ThreadMetadata> {
        ready(self.lock().thread(thread_id, ctx).map(|t| t.thread.clone()))
    }

    fn save_thread<'a>(
        &'a self,
        thread: &'a ThreadMetadata,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ()> {
        let mut state = self.lock();
        let result = match state.threads.get_mut(&thread.id) {
            Some(record) if record.owner == ctx.user_id() => {
                record.thread = thread.clone();
                Ok(())
            }
            Some(_) => Err(thread_not_found(&thread.id)),
            None => {
                let seq = state.seq();
                state.threads.insert(
                    thread.id.clone(),
                    ThreadRecord {
                        owner: ctx.user_id().to_owned(),
                        seq,
                        thread: thread.clone(),
                        items: Vec::new(),
                    },
                );
                Ok(())
            }
        };
        ready(result)
    }

    fn load_threads<'a>(
        &'a self,
        query: PageQuery,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, Page<ThreadMetadata>> {
        let state = self.lock();
        let records = state
            .threads
            .values()
            .filter(|t| t.owner == ctx.user_id())
            .map(|t| {
                (
                    Some(t.thread.created_at),
                    t.seq,
                    t.thread.id.as_str(),
                    &t.thread,
                )
            })
            .collect();
        ready(page(records, &query))
    }

    fn delete_thread<'a>(
        &'a self,
        thread_id: &'a str,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ()> {
        let mut state = self.lock();
        let result = state.thread(thread_id, ctx).map(|_| ());
        if result.is_ok() {
            state.threads.remove(thread_id);
            // The user's attachment records sent in the thread go with it.
            state.attachments.retain(|_, (owner, attachment)| {
                owner != ctx.user_id() || attachment.thread_id() != Some(thread_id)
            });
        }
        ready(result)
    }

    fn load_thread_items<'a>(
        &'a self,
        thread_id: &'a str,
        query: PageQuery,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, Page<ThreadItem>> {
        let state = self.lock();
        let result = state.thread(thread_id, ctx).and_then(|t| {
            let records = t
                .items
                .iter()
                .map(|r| (r.item.created_at(), r.seq, r.item.id(), &r.item))
                .collect();
            page(records, &query)
        });
        ready(result)
    }

    fn save_item<'a>(
        &'a self,
        thread_id: &'a str,
        item: &'a ThreadItem,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ()> {
        let mut state = self.lock();
        let seq = state.seq();
        let result = state.thread_mut(thread_id, ctx).map(|t| {
            match t.items.iter_mut().find(|r| r.item.id() == item.id()) {
                Some(record) => record.item = item.clone(),
                None => t.items.push(ItemRecord {
                    seq,
                    item: item.clone(),
                }),
            }
        });
        ready(result)
    }

    fn load_item<'a>(
        &'a self,
        thread_id: &'a str,
        item_id: &'a str,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ThreadItem> {
        let state = self.lock();
        let result = state.thread(thread_id, ctx).and_then(|t| {
            t.items
                .iter()
                .find(|r| r.item.id() == item_id)
                .map(|r| r.item.clone())
                .ok_or_else(|| {
                    StoreError::not_found(format!(
                        "item {:?} not found in thread {:?}",
                        short(item_id),
                        short(thread_id)
                    ))
                })
        });
        ready(result)
    }

    fn delete_thread_item<'a>(
        &'a self,
        thread_id: &'a str,
        item_id: &'a str,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ()> {
        let mut state = self.lock();
        let result = state
            .thread_mut(thread_id, ctx)
            .map(|t| t.items.retain(|r| r.item.id() != item_id));
        ready(result)
    }

    fn save_attachment<'a>(
        &'a self,
        attachment: &'a Attachment,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ()> {
        let mut state = self.lock();
        let result = match state.attachments.get(attachment.id()) {
            Some((owner, _)) if owner != ctx.user_id() => Err(StoreError::not_found(format!(
                "attachment {:?} not found",
                short(attachment.id())
            ))),
            _ => {
                state.attachments.insert(
                    attachment.id().to_owned(),
                    (ctx.user_id().to_owned(), attachment.clone()),
                );
                Ok(())
            }
        };
        ready(result)
    }

    fn load_attachment<'a>(
        &'a self,
        attachment_id: &'a str,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, Attachment> {
        let state = self.lock();
        let result = state
            .attachments
            .get(attachment_id)
            .filter(|(owner, _)| owner == ctx.user_id())
            .map(|(_, a)| a.clone())
            .ok_or_else(|| {
                StoreError::not_found(format!("attachment {:?} not found", short(attachment_id)))
            });
        ready(result)
    }

    fn delete_attachment<'a>(
        &'a self,
        attachment_id: &'a str,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ()> {
        let mut state = self.lock();
        if state
            .attachments
            .get(attachment_id)
            .is_some_and(|(owner, _)| owner == ctx.user_id())
        {
            state.attachments.remove(attachment_id);
        }
        ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chatkit::StoreErrorKind;
    use crate::protocol::{EndOfTurnItem, ThreadItem};

    fn item(id: &str, at: &str) -> ThreadItem {
        ThreadItem::EndOfTurn(EndOfTurnItem {
            id: id.into(),
            thread_id: "thr_1".into(),
            created_at: at.parse().unwrap(),
        })
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn equal_times_keep_insertion_order_across_pages() {
        block_on(async {
            let store = InMemoryStore::new();
            let ctx = RequestContext::new("u");
            store
                .save_thread(&ThreadMetadata::new("thr_1"), &ctx)
                .await
                .unwrap();
            let at = "2025-01-01T00:00:00";
            for i in 0..7 {
                store
                    .add_thread_item("thr_1", &item(&format!("i{i}"), at), &ctx)
                    .await
                    .unwrap();
            }
            for order in [Order::Asc, Order::Desc] {
                let mut seen = Vec::new();
                let mut query = PageQuery::first(3, order);
                loop {
                    let page = store
                        .load_thread_items("thr_1", query.clone(), &ctx)
                        .await
                        .unwrap();
                    seen.extend(page.data.iter().map(|i| i.id().to_owned()));
                    if !page.has_more {
                        break;
                    }
                    query.after = page.after;
                }
                let mut expected: Vec<String> = (0..7).map(|i| format!("i{i}")).collect();
                if order == Order::Desc {
                    expected.reverse();
                }
                assert_eq!(seen, expected);
            }
        });
    }

    #[test]
    fn unknown_cursor_is_a_bad_cursor_and_other_users_see_nothing() {
        block_on(async {
            let store = InMemoryStore::new();
            let alice = RequestContext::new("alice");
            let bob = RequestContext::new("bob");
            store
                .save_thread(&ThreadMetadata::new("thr_1"), &alice)
                .await
                .unwrap();
            let err = store
                .load_threads(
                    PageQuery {
                        after: Some("nope".into()),
                        limit: 5,
                        order: Order::Desc,
                    },
                    &alice,
                )
                .await
                .unwrap_err();
            assert_eq!(err.kind(), StoreErrorKind::BadCursor);
            assert_eq!(
                store.load_thread("thr_1", &bob).await.unwrap_err().kind(),
                StoreErrorKind::NotFound
            );
            assert_eq!(
                store
                    .save_thread(&ThreadMetadata::new("thr_1"), &bob)
                    .await
                    .unwrap_err()
                    .kind(),
                StoreErrorKind::NotFound
            );
            assert_eq!(
                store.delete_thread("thr_1", &bob).await.unwrap_err().kind(),
                StoreErrorKind::NotFound
            );
            assert!(store
                .load_threads(PageQuery::first(5, Order::Asc), &bob)
                .await
                .unwrap()
                .data
                .is_empty());
            assert!(store.load_thread("thr_1", &alice).await.is_ok());
        });
    }
}
