//! One conformance suite, run unchanged against the three stores: `memory::*` (the reference,
//! `InMemoryStore`), `sqlite::*` (`SqliteStore`, a new file per test) and `postgres::*`
//! (`PostgresStore` on `CHATKIT_TEST_POSTGRES_URL`, or a throwaway cluster; each test keeps to
//! users and ids of its own). Then what only SQLite has: its query plans, two instances opening
//! one new file at once, and the example server keeping its threads across a restart.

mod cluster;
mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use chatkit_tower::chatkit::{
    generate_id, IdKind, InMemoryStore, PageQuery, PostgresStore, RequestContext, SqliteStore,
    Store, StoreErrorKind, StoreFuture,
};
use chatkit_tower::protocol::{
    Attachment, FileAttachment, ImageAttachment, Order, ThreadItem, ThreadMetadata, ThreadStatus,
    Timestamp, UploadDescriptor, UploadMethod,
};
use common::within;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// The stores under test

/// A store, and a namespace keeping this test's users and ids apart from other tests that share
/// the database.
struct Subject {
    store: Arc<dyn Store>,
    ns: String,
    _dir: Option<TempDir>,
}

impl Subject {
    fn user(&self, name: &str) -> RequestContext {
        RequestContext::new(format!("{}-{name}", self.ns))
    }

    fn id(&self, kind: &str, n: impl std::fmt::Display) -> String {
        format!("{kind}_{}_{n}", self.ns)
    }
}

/// A folder removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "chatkit-store-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn namespace() -> String {
    generate_id(IdKind::Thread).replace("thr_", "t")
}

async fn memory() -> Subject {
    Subject {
        store: Arc::new(InMemoryStore::new()),
        ns: namespace(),
        _dir: None,
    }
}

async fn sqlite() -> Subject {
    let dir = TempDir::new("conformance");
    let store = within(SqliteStore::open(dir.file("chatkit.db")))
        .await
        .unwrap();
    Subject {
        store: Arc::new(store),
        ns: namespace(),
        _dir: Some(dir),
    }
}

async fn postgres() -> Option<Subject> {
    let url = cluster::shared_url().await?;
    let store = within(PostgresStore::connect(&url)).await.unwrap();
    Some(Subject {
        store: Arc::new(store),
        ns: namespace(),
        _dir: None,
    })
}

/// Each check becomes `memory::check`, `sqlite::check` and `postgres::check`.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                super::$check(super::memory().await).await
            })*
        }
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                super::$check(super::sqlite().await).await
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                if let Some(subject) = super::postgres().await {
                    super::$check(subject).await
                }
            })*
        }
    };
}

conformance!(
    pages_follow_created_at_in_both_orders_with_limit_one_and_after,
    equal_times_keep_insertion_order_across_pages,
    an_unknown_cursor_is_a_bad_cursor,
    users_are_isolated_in_every_call,
    save_item_inserts_or_replaces_in_place,
    delete_thread_takes_its_items,
    delete_thread_takes_its_attachments_only,
    attachments_keep_their_metadata_and_owner,
    threads_keep_every_field,
    unicode_large_and_unknown_items_round_trip_byte_for_byte,
    concurrent_writers_on_one_thread_all_land,
);

// ---------------------------------------------------------------------------------------------
// Helpers

async fn ok<T>(call: StoreFuture<'_, T>) -> T {
    within(call)
        .await
        .unwrap_or_else(|e| panic!("store call failed: {e:?}"))
}

async fn fails<T>(call: StoreFuture<'_, T>) -> StoreErrorKind {
    match within(call).await {
        Ok(_) => panic!("the store call succeeded"),
        Err(e) => e.kind(),
    }
}

/// 2025-01-01T00:00:00 plus `secs` seconds and `micros` microseconds.
fn at(secs: i64, micros: i64) -> Timestamp {
    Timestamp::from_unix_micros(1_735_689_600_000_000 + secs * 1_000_000 + micros).unwrap()
}

fn thread(id: &str, created_at: Timestamp) -> ThreadMetadata {
    let mut thread = ThreadMetadata::new(id);
    thread.created_at = created_at;
    thread
}

fn item(id: &str, thread_id: &str, created_at: Timestamp, text: &str) -> ThreadItem {
    serde_json::from_value(json!({
        "id": id,
        "thread_id": thread_id,
        "created_at": created_at.to_string(),
        "type": "user_message",
        "content": [{"type": "input_text", "text": text}],
        "attachments": [],
        "inference_options": {},
    }))
    .unwrap()
}

fn text_of(item: &ThreadItem) -> String {
    let json = serde_json::to_value(item).unwrap();
    json["content"][0]["text"].as_str().unwrap_or("").to_owned()
}

/// Every page of threads, `limit` at a time: the ids of each page.
async fn thread_pages(
    s: &Subject,
    ctx: &RequestContext,
    limit: usize,
    order: Order,
) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut query = PageQuery::first(limit, order);
    loop {
        let page = ok(s.store.load_threads(query.clone(), ctx)).await;
        pages.push(page.data.iter().map(|t| t.id.clone()).collect::<Vec<_>>());
        assert_eq!(
            page.has_more,
            page.after.is_some(),
            "a cursor iff more follow"
        );
        match page.after {
            Some(after) => query.after = Some(after),
            None => return pages,
        }
        assert!(pages.len() < 100, "paging does not end");
    }
}

/// Every page of a thread's items, `limit` at a time.
async fn item_pages(
    s: &Subject,
    ctx: &RequestContext,
    thread_id: &str,
    limit: usize,
    order: Order,
) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut query = PageQuery::first(limit, order);
    loop {
        let page = ok(s.store.load_thread_items(thread_id, query.clone(), ctx)).await;
        pages.push(
            page.data
                .iter()
                .map(|i| i.id().to_owned())
                .collect::<Vec<_>>(),
        );
        assert_eq!(
            page.has_more,
            page.after.is_some(),
            "a cursor iff more follow"
        );
        match page.after {
            Some(after) => query.after = Some(after),
            None => return pages,
        }
        assert!(pages.len() < 1000, "paging does not end");
    }
}

async fn all_items(s: &Subject, ctx: &RequestContext, thread_id: &str) -> Vec<ThreadItem> {
    let page = ok(s
        .store
        .load_thread_items(thread_id, PageQuery::first(10_000, Order::Asc), ctx))
    .await;
    assert!(!page.has_more);
    page.data
}

fn flat(pages: &[Vec<String>]) -> Vec<String> {
    pages.concat()
}

// ---------------------------------------------------------------------------------------------
// The checks

async fn pages_follow_created_at_in_both_orders_with_limit_one_and_after(s: Subject) {
    let alice = s.user("alice");
    // Saved out of time order: lists follow created_at, not insertion.
    let order = [3, 0, 4, 1, 2];
    let ids: Vec<String> = (0..5).map(|i| s.id("thr", i)).collect();
    for &i in &order {
        ok(s.store
            .save_thread(&thread(&ids[i], at(i as i64, 7)), &alice))
        .await;
    }
    let oldest_first = ids.clone();
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();

    let pages = thread_pages(&s, &alice, 1, Order::Asc).await;
    assert_eq!(pages.len(), 5);
    assert!(pages.iter().all(|p| p.len() == 1));
    assert_eq!(flat(&pages), oldest_first);
    assert_eq!(
        flat(&thread_pages(&s, &alice, 1, Order::Desc).await),
        newest_first
    );
    let pages = thread_pages(&s, &alice, 2, Order::Desc).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    assert_eq!(flat(&pages), newest_first);
    // A page exactly at the end says so.
    let first = ok(s
        .store
        .load_threads(PageQuery::first(5, Order::Asc), &alice))
    .await;
    assert_eq!(
        (first.data.len(), first.has_more, first.after),
        (5, false, None)
    );

    // Items likewise.
    let t = &ids[0];
    let item_ids: Vec<String> = (0..5).map(|i| s.id("msg", i)).collect();
    for &i in &order {
        let it = item(&item_ids[i], t, at(10, i as i64), "x");
        ok(s.store.add_thread_item(t, &it, &alice)).await;
    }
    let pages = item_pages(&s, &alice, t, 1, Order::Asc).await;
    assert_eq!(pages.len(), 5);
    assert_eq!(flat(&pages), item_ids);
    let mut reversed = item_ids.clone();
    reversed.reverse();
    assert_eq!(
        flat(&item_pages(&s, &alice, t, 1, Order::Desc).await),
        reversed
    );
    assert_eq!(
        flat(&item_pages(&s, &alice, t, 3, Order::Desc).await),
        reversed
    );
}

async fn equal_times_keep_insertion_order_across_pages(s: Subject) {
    let alice = s.user("alice");
    let same = at(100, 0);
    let ids: Vec<String> = (0..7).map(|i| s.id("thr", format!("eq{i}"))).collect();
    for id in &ids {
        ok(s.store.save_thread(&thread(id, same), &alice)).await;
    }
    let mut reversed = ids.clone();
    reversed.reverse();
    assert_eq!(flat(&thread_pages(&s, &alice, 3, Order::Asc).await), ids);
    assert_eq!(
        flat(&thread_pages(&s, &alice, 3, Order::Desc).await),
        reversed
    );
    // Saving a thread again keeps its place.
    ok(s.store.save_thread(&thread(&ids[0], same), &alice)).await;
    assert_eq!(flat(&thread_pages(&s, &alice, 2, Order::Asc).await), ids);

    let t = &ids[0];
    // Ids that sort the other way round, all at one time; then one earlier item, added last.
    let item_ids: Vec<String> = (0..7).map(|i| s.id("msg", 9 - i)).collect();
    for id in &item_ids {
        ok(s.store.add_thread_item(t, &item(id, t, same, "x"), &alice)).await;
    }
    let early = s.id("msg", "early");
    ok(s.store
        .add_thread_item(t, &item(&early, t, at(99, 999_999), "x"), &alice))
    .await;
    let mut expected = vec![early];
    expected.extend(item_ids.iter().cloned());
    for limit in [1, 3, 8] {
        assert_eq!(
            flat(&item_pages(&s, &alice, t, limit, Order::Asc).await),
            expected
        );
        let mut reversed = expected.clone();
        reversed.reverse();
        assert_eq!(
            flat(&item_pages(&s, &alice, t, limit, Order::Desc).await),
            reversed
        );
    }
}

async fn an_unknown_cursor_is_a_bad_cursor(s: Subject) {
    let (alice, bob) = (s.user("alice"), s.user("bob"));
    let (ta, tb) = (s.id("thr", "a"), s.id("thr", "b"));
    ok(s.store.save_thread(&thread(&ta, at(0, 0)), &alice)).await;
    ok(s.store.save_thread(&thread(&tb, at(1, 0)), &bob)).await;
    let after = |cursor: &str, order| PageQuery {
        after: Some(cursor.to_owned()),
        limit: 5,
        order,
    };
    for order in [Order::Asc, Order::Desc] {
        for cursor in [
            "thr_nope".to_owned(),
            tb.clone(),
            String::new(),
            "a\0b".into(),
        ] {
            assert_eq!(
                fails(s.store.load_threads(after(&cursor, order), &alice)).await,
                StoreErrorKind::BadCursor,
                "threads after {cursor:?}"
            );
        }
    }
    // A thread's own id is a good cursor: nothing after the only one.
    let page = ok(s.store.load_threads(after(&ta, Order::Asc), &alice)).await;
    assert!(page.data.is_empty() && !page.has_more);

    let (ia, ib) = (s.id("msg", "a"), s.id("msg", "b"));
    ok(s.store
        .add_thread_item(&ta, &item(&ia, &ta, at(2, 0), "a"), &alice))
    .await;
    ok(s.store
        .add_thread_item(&tb, &item(&ib, &tb, at(2, 0), "b"), &bob))
    .await;
    let gone = s.id("msg", "gone");
    ok(s.store
        .add_thread_item(&ta, &item(&gone, &ta, at(3, 0), "g"), &alice))
    .await;
    ok(s.store.delete_thread_item(&ta, &gone, &alice)).await;
    for cursor in [ib.as_str(), gone.as_str(), "msg_nope", "", "a\0b"] {
        assert_eq!(
            fails(
                s.store
                    .load_thread_items(&ta, after(cursor, Order::Desc), &alice)
            )
            .await,
            StoreErrorKind::BadCursor,
            "items after {cursor:?}"
        );
    }
    // An unknown thread is not found before its cursor is looked at.
    assert_eq!(
        fails(
            s.store
                .load_thread_items("thr_nope", after(&ia, Order::Asc), &alice)
        )
        .await,
        StoreErrorKind::NotFound
    );
}

async fn users_are_isolated_in_every_call(s: Subject) {
    let (alice, bob) = (s.user("alice"), s.user("bob"));
    let t = s.id("thr", "alice");
    let mut theirs = thread(&t, at(0, 0));
    theirs.title = Some("Alice's".into());
    ok(s.store.save_thread(&theirs, &alice)).await;
    let i = s.id("msg", "alice");
    ok(s.store
        .add_thread_item(&t, &item(&i, &t, at(1, 0), "private"), &alice))
    .await;
    let a = s.id("atc", "alice");
    let attachment = Attachment::File(FileAttachment::new(&a, "a.pdf", "application/pdf"));
    ok(s.store.save_attachment(&attachment, &alice)).await;

    let not_found = StoreErrorKind::NotFound;
    assert_eq!(fails(s.store.load_thread(&t, &bob)).await, not_found);
    let mut hijack = thread(&t, at(5, 0));
    hijack.title = Some("Bob's now".into());
    assert_eq!(fails(s.store.save_thread(&hijack, &bob)).await, not_found);
    let bobs = ok(s
        .store
        .load_threads(PageQuery::first(50, Order::Desc), &bob))
    .await;
    assert!(bobs.data.is_empty() && !bobs.has_more);
    assert_eq!(fails(s.store.delete_thread(&t, &bob)).await, not_found);
    let page = PageQuery::first(50, Order::Asc);
    assert_eq!(
        fails(s.store.load_thread_items(&t, page, &bob)).await,
        not_found
    );
    let other = item(&s.id("msg", "bob"), &t, at(2, 0), "injected");
    assert_eq!(
        fails(s.store.add_thread_item(&t, &other, &bob)).await,
        not_found
    );
    assert_eq!(fails(s.store.save_item(&t, &other, &bob)).await, not_found);
    let overwrite = item(&i, &t, at(1, 0), "overwritten");
    assert_eq!(
        fails(s.store.save_item(&t, &overwrite, &bob)).await,
        not_found
    );
    assert_eq!(fails(s.store.load_item(&t, &i, &bob)).await, not_found);
    assert_eq!(
        fails(s.store.delete_thread_item(&t, &i, &bob)).await,
        not_found
    );
    let mut stolen = attachment.clone();
    stolen.set_thread_id("thr_bob");
    assert_eq!(
        fails(s.store.save_attachment(&stolen, &bob)).await,
        not_found
    );
    assert_eq!(fails(s.store.load_attachment(&a, &bob)).await, not_found);
    ok(s.store.delete_attachment(&a, &bob)).await; // not an error, and a no-op

    // Alice's data is untouched.
    assert_eq!(ok(s.store.load_thread(&t, &alice)).await, theirs);
    let items = all_items(&s, &alice, &t).await;
    assert_eq!(items.len(), 1);
    assert_eq!(text_of(&items[0]), "private");
    assert_eq!(ok(s.store.load_attachment(&a, &alice)).await, attachment);
    let listed = ok(s
        .store
        .load_threads(PageQuery::first(50, Order::Desc), &alice))
    .await;
    assert_eq!(listed.data, vec![theirs]);
}

async fn save_item_inserts_or_replaces_in_place(s: Subject) {
    let alice = s.user("alice");
    let t = s.id("thr", 1);
    ok(s.store.save_thread(&thread(&t, at(0, 0)), &alice)).await;
    let same = at(1, 0);
    let ids: Vec<String> = (1..=3).map(|i| s.id("msg", i)).collect();
    for id in &ids {
        ok(s.store
            .add_thread_item(&t, &item(id, &t, same, "first"), &alice))
        .await;
    }
    // Replaced in place: same position, new body.
    ok(s.store
        .save_item(&t, &item(&ids[1], &t, same, "second"), &alice))
    .await;
    // add_thread_item with an id that is there replaces too.
    ok(s.store
        .add_thread_item(&t, &item(&ids[0], &t, same, "third"), &alice))
    .await;
    let items = all_items(&s, &alice, &t).await;
    let seen: Vec<(String, String)> = items
        .iter()
        .map(|i| (i.id().to_owned(), text_of(i)))
        .collect();
    assert_eq!(
        seen,
        [
            (ids[0].clone(), "third".to_owned()),
            (ids[1].clone(), "second".to_owned()),
            (ids[2].clone(), "first".to_owned()),
        ]
    );
    assert_eq!(
        text_of(&ok(s.store.load_item(&t, &ids[1], &alice)).await),
        "second"
    );
    // A new id is appended; a new time moves an item to its place in time.
    let new = s.id("msg", 4);
    ok(s.store.save_item(&t, &item(&new, &t, same, "new"), &alice)).await;
    ok(s.store
        .save_item(&t, &item(&ids[0], &t, at(2, 0), "later"), &alice))
    .await;
    let order: Vec<String> = all_items(&s, &alice, &t)
        .await
        .iter()
        .map(|i| i.id().to_owned())
        .collect();
    assert_eq!(order, [ids[1].clone(), ids[2].clone(), new, ids[0].clone()]);
    // Items are per thread: the same id in another thread is another item.
    let t2 = s.id("thr", 2);
    ok(s.store.save_thread(&thread(&t2, at(0, 0)), &alice)).await;
    ok(s.store
        .save_item(&t2, &item(&ids[1], &t2, same, "elsewhere"), &alice))
    .await;
    assert_eq!(
        text_of(&ok(s.store.load_item(&t, &ids[1], &alice)).await),
        "second"
    );
    assert_eq!(
        text_of(&ok(s.store.load_item(&t2, &ids[1], &alice)).await),
        "elsewhere"
    );
    // Missing things.
    assert_eq!(
        fails(s.store.load_item(&t, "msg_nope", &alice)).await,
        StoreErrorKind::NotFound
    );
    let orphan = item(&s.id("msg", 5), "thr_nope", same, "x");
    assert_eq!(
        fails(s.store.save_item("thr_nope", &orphan, &alice)).await,
        StoreErrorKind::NotFound
    );
}

async fn delete_thread_takes_its_items(s: Subject) {
    let alice = s.user("alice");
    let (t, keep) = (s.id("thr", "gone"), s.id("thr", "kept"));
    ok(s.store.save_thread(&thread(&t, at(0, 0)), &alice)).await;
    ok(s.store.save_thread(&thread(&keep, at(1, 0)), &alice)).await;
    for n in 0..3 {
        let id = s.id("msg", n);
        ok(s.store
            .add_thread_item(&t, &item(&id, &t, at(2, n), "x"), &alice))
        .await;
        ok(s.store
            .add_thread_item(&keep, &item(&id, &keep, at(2, n), "y"), &alice))
        .await;
    }

    // Deleting an item: a missing one is fine, a missing thread is not.
    ok(s.store.delete_thread_item(&t, &s.id("msg", 0), &alice)).await;
    ok(s.store.delete_thread_item(&t, "msg_nope", &alice)).await;
    assert_eq!(all_items(&s, &alice, &t).await.len(), 2);
    assert_eq!(
        fails(s.store.delete_thread_item("thr_nope", "msg_nope", &alice)).await,
        StoreErrorKind::NotFound
    );

    ok(s.store.delete_thread(&t, &alice)).await;
    let not_found = StoreErrorKind::NotFound;
    assert_eq!(fails(s.store.load_thread(&t, &alice)).await, not_found);
    let page = PageQuery::first(10, Order::Asc);
    assert_eq!(
        fails(s.store.load_thread_items(&t, page, &alice)).await,
        not_found
    );
    assert_eq!(
        fails(s.store.load_item(&t, &s.id("msg", 1), &alice)).await,
        not_found
    );
    assert_eq!(fails(s.store.delete_thread(&t, &alice)).await, not_found);
    // Its items went with it: a new thread of the same id starts empty.
    ok(s.store.save_thread(&thread(&t, at(3, 0)), &alice)).await;
    assert!(all_items(&s, &alice, &t).await.is_empty());
    // Other threads keep theirs.
    assert_eq!(all_items(&s, &alice, &keep).await.len(), 3);
}

async fn delete_thread_takes_its_attachments_only(s: Subject) {
    let (alice, bob) = (s.user("alice"), s.user("bob"));
    let (t, keep) = (s.id("thr", "gone"), s.id("thr", "kept"));
    ok(s.store.save_thread(&thread(&t, at(0, 0)), &alice)).await;
    ok(s.store.save_thread(&thread(&keep, at(1, 0)), &alice)).await;
    let attachment = |n: u32, thread_id: Option<&str>| {
        let mut a = Attachment::File(FileAttachment::new(s.id("atc", n), "a.txt", "text/plain"));
        if let Some(thread_id) = thread_id {
            a.set_thread_id(thread_id);
        }
        a
    };
    // Two sent in the doomed thread (one saved unbound first, then bound, as the service does),
    // one in another thread, one never sent.
    let sent = [attachment(1, Some(&t)), attachment(2, Some(&t))];
    ok(s.store.save_attachment(&attachment(1, None), &alice)).await;
    for a in &sent {
        ok(s.store.save_attachment(a, &alice)).await;
    }
    let elsewhere = attachment(3, Some(&keep));
    let unsent = attachment(4, None);
    ok(s.store.save_attachment(&elsewhere, &alice)).await;
    ok(s.store.save_attachment(&unsent, &alice)).await;
    // Bob's record naming Alice's thread id is Bob's: her delete does not reach it.
    let bobs = attachment(5, Some(&t));
    ok(s.store.save_attachment(&bobs, &bob)).await;

    // Bob cannot delete Alice's thread, nor her attachments through it.
    assert_eq!(
        fails(s.store.delete_thread(&t, &bob)).await,
        StoreErrorKind::NotFound
    );
    assert_eq!(
        ok(s.store.load_attachment(sent[0].id(), &alice)).await,
        sent[0]
    );

    ok(s.store.delete_thread(&t, &alice)).await;
    let not_found = StoreErrorKind::NotFound;
    for a in &sent {
        assert_eq!(
            fails(s.store.load_attachment(a.id(), &alice)).await,
            not_found
        );
    }
    assert_eq!(
        ok(s.store.load_attachment(elsewhere.id(), &alice)).await,
        elsewhere
    );
    assert_eq!(
        ok(s.store.load_attachment(unsent.id(), &alice)).await,
        unsent
    );
    assert_eq!(ok(s.store.load_attachment(bobs.id(), &bob)).await, bobs);

    // An attachment moved to another thread goes with that one, not the first.
    let mut moved = attachment(6, Some(&keep));
    ok(s.store.save_attachment(&moved, &alice)).await;
    let other = s.id("thr", "other");
    ok(s.store.save_thread(&thread(&other, at(2, 0)), &alice)).await;
    moved.set_thread_id(&other);
    ok(s.store.save_attachment(&moved, &alice)).await;
    ok(s.store.delete_thread(&keep, &alice)).await;
    assert_eq!(ok(s.store.load_attachment(moved.id(), &alice)).await, moved);
    assert_eq!(
        fails(s.store.load_attachment(elsewhere.id(), &alice)).await,
        not_found
    );
    ok(s.store.delete_thread(&other, &alice)).await;
    assert_eq!(
        fails(s.store.load_attachment(moved.id(), &alice)).await,
        not_found
    );
    assert_eq!(
        ok(s.store.load_attachment(unsent.id(), &alice)).await,
        unsent
    );
}

async fn attachments_keep_their_metadata_and_owner(s: Subject) {
    let alice = s.user("alice");
    let mut file = FileAttachment::new(s.id("atc", "f"), "report.pdf", "application/pdf");
    let mut upload = UploadDescriptor::new("https://up.example/atc", UploadMethod::Put);
    upload
        .headers
        .insert("x-ms-blob-type".into(), "BlockBlob".into());
    file.upload_descriptor = Some(upload);
    let mut meta = serde_json::Map::new();
    meta.insert("bucket".into(), json!({"name": "b", "keys": [1, 2]}));
    file.metadata = Some(meta);
    let file = Attachment::File(file);
    let image = Attachment::Image(ImageAttachment::new(
        s.id("atc", "i"),
        "cat.png",
        "image/png",
        "data:image/png;base64,iVBORw0KGgo=",
    ));
    for attachment in [&file, &image] {
        ok(s.store.save_attachment(attachment, &alice)).await;
        assert_eq!(
            &ok(s.store.load_attachment(attachment.id(), &alice)).await,
            attachment
        );
    }
    // Updated in place: bound to a thread, upload done.
    let mut sent = file.clone();
    sent.set_thread_id("thr_1");
    ok(s.store.save_attachment(&sent, &alice)).await;
    let loaded = ok(s.store.load_attachment(file.id(), &alice)).await;
    assert_eq!(loaded.thread_id(), Some("thr_1"));
    assert_eq!(
        serde_json::to_string(&loaded).unwrap(),
        serde_json::to_string(&sent).unwrap()
    );
    ok(s.store.delete_attachment(file.id(), &alice)).await;
    assert_eq!(
        fails(s.store.load_attachment(file.id(), &alice)).await,
        StoreErrorKind::NotFound
    );
    ok(s.store.delete_attachment(file.id(), &alice)).await;
    assert_eq!(
        &ok(s.store.load_attachment(image.id(), &alice)).await,
        &image
    );
}

async fn threads_keep_every_field(s: Subject) {
    let alice = s.user("alice");
    let mut t = thread(&s.id("thr", 1), at(5, 123_456));
    t.title = Some("Ünïcødé 🧵 \"title\" \0 end".into());
    t.status = ThreadStatus::Locked {
        reason: Some("limit".into()),
    };
    t.allowed_image_domains = Some(vec!["img.example".into(), "cdn.example".into()]);
    t.metadata.insert(
        "nested".into(),
        json!({"z": 1, "a": [true, null, 1.5], "text": "\u{0}"}),
    );
    ok(s.store.save_thread(&t, &alice)).await;
    let loaded = ok(s.store.load_thread(&t.id, &alice)).await;
    assert_eq!(loaded, t);
    assert_eq!(loaded.created_at.to_string(), "2025-01-01T00:00:05.123456");
    assert_eq!(
        serde_json::to_string(&loaded).unwrap(),
        serde_json::to_string(&t).unwrap(),
        "byte for byte, key order included"
    );
    // Updated: every field, and nothing is left of the old values.
    t.title = None;
    t.status = ThreadStatus::Closed { reason: None };
    t.allowed_image_domains = None;
    t.metadata.clear();
    ok(s.store.save_thread(&t, &alice)).await;
    assert_eq!(ok(s.store.load_thread(&t.id, &alice)).await, t);
    let listed = ok(s
        .store
        .load_threads(PageQuery::first(10, Order::Asc), &alice))
    .await;
    assert_eq!(listed.data, vec![t]);
}

async fn unicode_large_and_unknown_items_round_trip_byte_for_byte(s: Subject) {
    let alice = s.user("alice");
    let t = s.id("thr", 1);
    ok(s.store.save_thread(&thread(&t, at(0, 0)), &alice)).await;
    let unicode = "héllo 🌍 שלום 你好 \"quoted\" \\ \n\t \u{0} \u{FEFF} end";
    let large: String = "0123456789abcdef".repeat(64 * 1024); // 1 MiB
    let items = vec![
        item(&s.id("msg", "u"), &t, at(1, 1), unicode),
        item(&s.id("msg", "l"), &t, at(1, 2), &large),
        serde_json::from_value::<ThreadItem>(json!({
            "id": s.id("msg", "a"), "thread_id": t, "created_at": at(1, 3).to_string(),
            "type": "assistant_message",
            "content": [{"annotations": [{"type": "annotation", "source":
                {"title": "Docs", "type": "url", "url": "https://x.example"}, "index": 3}],
                "text": unicode, "type": "output_text"}],
        }))
        .unwrap(),
        // A kind this version does not know, with keys in no sorted order.
        serde_json::from_value::<ThreadItem>(json!({
            "id": s.id("x", "future"), "thread_id": t, "created_at": at(1, 4).to_string(),
            "type": "future_kind", "zeta": {"b": 1, "a": 2}, "alpha": [unicode],
        }))
        .unwrap(),
    ];
    // One with no readable time comes first, as in the in-memory store.
    let timeless: ThreadItem = serde_json::from_value(json!({
        "id": s.id("x", "timeless"), "thread_id": t, "type": "future_kind", "when": "later",
    }))
    .unwrap();
    for it in &items {
        ok(s.store.add_thread_item(&t, it, &alice)).await;
    }
    ok(s.store.add_thread_item(&t, &timeless, &alice)).await;
    let mut expected: Vec<String> = vec![serde_json::to_string(&timeless).unwrap()];
    expected.extend(items.iter().map(|i| serde_json::to_string(i).unwrap()));
    let stored: Vec<String> = all_items(&s, &alice, &t)
        .await
        .iter()
        .map(|i| serde_json::to_string(i).unwrap())
        .collect();
    assert_eq!(stored.len(), expected.len());
    for (stored, expected) in stored.iter().zip(&expected) {
        assert!(
            stored == expected,
            "an item changed on its way through the store"
        );
    }
    let loaded = ok(s.store.load_item(&t, &s.id("msg", "l"), &alice)).await;
    assert_eq!(text_of(&loaded).len(), large.len());
    // Unicode ids and users work too.
    let (bidi, user) = (s.id("thr", "שלום🌍"), s.user("ユーザー"));
    ok(s.store.save_thread(&thread(&bidi, at(0, 0)), &user)).await;
    assert_eq!(ok(s.store.load_thread(&bidi, &user)).await.id, bidi);
}

async fn concurrent_writers_on_one_thread_all_land(s: Subject) {
    let alice = s.user("alice");
    let t = s.id("thr", 1);
    ok(s.store.save_thread(&thread(&t, at(0, 0)), &alice)).await;
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let (store, alice, t, ns) = (s.store.clone(), alice.clone(), t.clone(), s.ns.clone());
            tokio::spawn(async move {
                for n in 0..20 {
                    let id = format!("msg_{ns}_{w}_{n}");
                    let it = item(&id, &t, Timestamp::now(), "concurrent");
                    store.add_thread_item(&t, &it, &alice).await.unwrap();
                    // Replace a shared item too: last writer wins, nobody fails.
                    let shared = item(&format!("msg_{ns}_shared"), &t, at(1, 0), &id);
                    store.save_item(&t, &shared, &alice).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        within(task).await.unwrap();
    }
    let items = all_items(&s, &alice, &t).await;
    let mut ids: Vec<&str> = items.iter().map(|i| i.id()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 8 * 20 + 1);
}

// ---------------------------------------------------------------------------------------------
// The SQL stores only

/// Twenty users with fifty threads each, and a thread of 500 items: the plans to expect for
/// a busy user and a long thread. Returns that thread and its user. (PostgreSQL's plans:
/// `tests/store_postgres.rs`, on a cluster of their own, whose statistics they refresh.)
async fn fill(store: &dyn Store, ns: &str) -> (String, RequestContext) {
    let thread_id = format!("thr_{ns}_plan");
    for owner in 0..20 {
        let ctx = RequestContext::new(format!("{ns}-owner{owner}"));
        for n in 0..50 {
            let t = thread(&format!("thr_{ns}_{owner}_{n}"), at(n, 0));
            ok(store.save_thread(&t, &ctx)).await;
        }
    }
    let ctx = RequestContext::new(format!("{ns}-owner0"));
    ok(store.save_thread(&thread(&thread_id, at(0, 0)), &ctx)).await;
    for n in 0..500 {
        let it = item(&format!("msg_{n}"), &thread_id, at(n, 0), "x");
        ok(store.add_thread_item(&thread_id, &it, &ctx)).await;
    }
    (thread_id, ctx)
}

#[tokio::test]
async fn sqlite_pages_are_one_index_range_scan() {
    let dir = TempDir::new("plan");
    let store = within(SqliteStore::open(dir.file("chatkit.db")))
        .await
        .unwrap();
    let (thread_id, ctx) = fill(&store, "p").await;
    let plans = within(store.explain_paging(&thread_id, &ctx))
        .await
        .unwrap();
    println!("{plans}");
    for (table, index, key) in [
        ("chatkit_threads", "chatkit_threads_page", "owner=?"),
        ("chatkit_items", "chatkit_items_page", "thread_id=?"),
    ] {
        for op in [">", "<"] {
            // Seeks by created_at; ties before the cursor are skipped by seq (a rowid, which
            // SQLite's row-value ranges do not use).
            let search = format!("SEARCH {table} USING INDEX {index} ({key} AND created_at{op}?)");
            assert!(plans.contains(&search), "no {search:?} in\n{plans}");
        }
    }
    assert!(
        !plans.contains("SCAN") && !plans.contains("TEMP B-TREE"),
        "{plans}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_sqlite_instances_open_one_new_file_at_once() {
    for round in 0..5 {
        let dir = TempDir::new("race");
        let path = dir.file("nested/folder/chatkit.db");
        let opens: Vec<_> = (0..4)
            .map(|_| tokio::spawn(SqliteStore::open(path.clone())))
            .collect();
        let mut stores = Vec::new();
        for open in opens {
            let opened = within(open).await.unwrap();
            stores.push(opened.unwrap_or_else(|e| panic!("round {round}: {e:?}")));
        }
        // Each sees what another wrote.
        let alice = RequestContext::new("alice");
        ok(stores[0].save_thread(&thread("thr_shared", at(0, 0)), &alice)).await;
        assert_eq!(
            ok(stores[3].load_thread("thr_shared", &alice)).await.id,
            "thr_shared"
        );
    }
}

/// Calls dropped half-way (a client gone mid-request drops the service's futures) close the
/// connection they held rather than hand it on; the store keeps answering, never opens more than
/// its connections, and loses nothing that a finished call saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_calls_dropped_half_way_leave_the_store_whole() {
    let dir = TempDir::new("dropped");
    let store = Arc::new(
        within(
            SqliteStore::builder(dir.file("chatkit.db"))
                .max_connections(3)
                .open(),
        )
        .await
        .unwrap(),
    );
    let alice = RequestContext::new("alice");
    ok(store.save_thread(&thread("thr_1", at(0, 0)), &alice)).await;

    let connections = |store: &SqliteStore| -> u32 {
        let shown = format!("{store:?}");
        let n = shown.split("connections: ").nth(1).unwrap();
        n.trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .unwrap()
    };
    let mut saved = Vec::new();
    for round in 0..20u32 {
        // Writers and readers at once; some are dropped after a moment, some finish.
        let mut calls = Vec::new();
        for n in 0..8u32 {
            let (store, alice) = (store.clone(), alice.clone());
            let id = format!("msg_{round}_{n}");
            calls.push((
                id.clone(),
                tokio::spawn(async move {
                    let item = item(&id, "thr_1", at(1, i64::from(round * 8 + n)), "hello");
                    store.add_thread_item("thr_1", &item, &alice).await.unwrap();
                    store.load_thread("thr_1", &alice).await.unwrap();
                }),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_micros(u64::from(round) * 50)).await;
        for (id, call) in calls {
            if id.ends_with(['1', '4', '6']) {
                call.abort();
            }
            if within(call).await.is_ok() {
                saved.push(id);
            }
        }
        assert!(connections(&store) <= 3, "{store:?}");
    }
    println!("{} of 160 calls finished", saved.len());
    assert!(saved.len() < 160, "no call was dropped");
    // Every call that finished is there, and the store still reads and writes.
    let page =
        ok(store.load_thread_items("thr_1", PageQuery::first(1000, Order::Asc), &alice)).await;
    let ids: Vec<String> = page.data.iter().map(|i| i.id().to_owned()).collect();
    for id in &saved {
        assert!(ids.contains(id), "{id} was saved but is missing");
    }
    ok(store.save_thread(&thread("thr_2", at(2, 0)), &alice)).await;
    assert_eq!(ok(store.load_thread("thr_2", &alice)).await.id, "thr_2");
    assert!(connections(&store) <= 3, "{store:?}");
}

/// Another process holding SQLite's write lock: a write waits out the store's timeout and fails
/// as `Unavailable` (503), reads go on meanwhile (WAL), and once the lock is gone the store
/// writes again without being reopened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_sqlite_file_is_unavailable_then_recovers() {
    use sqlx::{Connection, Executor};

    let dir = TempDir::new("locked");
    let path = dir.file("chatkit.db");
    let timeout = std::time::Duration::from_millis(400);
    let store = within(SqliteStore::builder(&path).timeout(timeout).open())
        .await
        .unwrap();
    let alice = RequestContext::new("alice");
    ok(store.save_thread(&thread("thr_before", at(1, 0)), &alice)).await;

    // Another writer (a second process would be the same) takes the write lock and keeps it.
    let mut other = within(sqlx::SqliteConnection::connect(&format!(
        "sqlite://{}",
        path.display()
    )))
    .await
    .unwrap();
    within(other.execute("BEGIN IMMEDIATE")).await.unwrap();

    for n in 0..3 {
        let started = std::time::Instant::now();
        let kind = fails(store.save_thread(&thread(&format!("thr_{n}"), at(2, n)), &alice)).await;
        let took = started.elapsed();
        assert_eq!(kind, StoreErrorKind::Unavailable);
        assert!(
            took >= timeout / 2,
            "gave up after {took:?}, before the timeout"
        );
        assert!(
            took < timeout * 5,
            "took {took:?} for a {timeout:?} timeout"
        );
        // Reads do not wait for the writer, and neither does the readiness check.
        assert_eq!(
            ok(store.load_thread("thr_before", &alice)).await.id,
            "thr_before"
        );
        ok(store.ready()).await;
    }

    within(other.execute("ROLLBACK")).await.unwrap();
    within(other.close()).await.unwrap();
    ok(store.save_thread(&thread("thr_after", at(3, 0)), &alice)).await;
    let ids: Vec<String> = ok(store.load_threads(PageQuery::first(10, Order::Asc), &alice))
        .await
        .data
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, ["thr_before", "thr_after"]);
}

#[tokio::test]
async fn sqlite_open_fails_clearly_on_an_unusable_path() {
    let err = within(SqliteStore::open("/proc/chatkit/chatkit.db"))
        .await
        .unwrap_err();
    assert!(err.message().contains("/proc/chatkit"), "{err}");
    let dir = TempDir::new("notdb");
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(
        dir.file("chatkit.db"),
        "not a database, just text".repeat(100),
    )
    .unwrap();
    let err = within(SqliteStore::open(dir.file("chatkit.db")))
        .await
        .unwrap_err();
    println!("{err}");
}

/// The example server's `/chatkit` (demo user `test-token`) keeps a thread and its items
/// across a restart of the app on the same file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_server_keeps_threads_across_a_restart() {
    use chatkit_tower::{App, Config, Kit};

    let dir = TempDir::new("server");
    let url = format!("sqlite://{}", dir.file("data/chatkit.db").display());
    let start = || async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        let vars = [
            ("CHATKIT_STORE_URL", url.as_str()),
            ("CHATKIT_DEMO_PACE_MS", "0"),
            ("PORT", port.as_str()),
        ];
        let config = Config::from_lookup(|k| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        })
        .unwrap();
        let kit = within(Kit::open(&config)).await.unwrap();
        let app = App::from_kit(&kit, &config.models);
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(app.serve(listener, std::future::pending()));
        (format!("http://{addr}/chatkit"), task)
    };
    let call = |endpoint: String, body: Value| async move {
        common::post(
            &endpoint,
            &[("authorization", "Bearer test-token")],
            &body.to_string(),
        )
        .await
    };

    let (endpoint, server) = start().await;
    let created = call(
        endpoint.clone(),
        json!({"type": "threads.create", "params": {"input": {
            "content": [{"type": "input_text", "text": "remember me"}],
            "attachments": [], "inference_options": {}}}}),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.text());
    let listed = call(
        endpoint.clone(),
        json!({"type": "threads.list", "params": {}}),
    )
    .await;
    let before = listed.json();
    let thread_id = before["data"][0]["id"].as_str().unwrap().to_owned();
    let items_query = json!({"type": "items.list", "params": {"thread_id": thread_id}});
    let items_before = call(endpoint.clone(), items_query.clone()).await.json();
    assert_eq!(
        items_before["data"].as_array().unwrap().len(),
        2,
        "{items_before}"
    );
    server.abort();
    let _ = server.await;

    let (endpoint, server) = start().await;
    let after = call(
        endpoint.clone(),
        json!({"type": "threads.list", "params": {}}),
    )
    .await;
    assert_eq!(after.status, 200);
    assert_eq!(after.json(), before);
    assert_eq!(
        call(endpoint.clone(), items_query).await.json(),
        items_before
    );
    server.abort();
}
