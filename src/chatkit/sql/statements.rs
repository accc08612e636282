//! Every statement of the SQL stores: one text for SQLite and PostgreSQL (`$N` placeholders,
//! row values, `ON CONFLICT … DO UPDATE … WHERE`, which both accept), each scoped by `owner`.
//!
//! Every write is one statement, so it is atomic on its own and waits out SQLite's busy timeout
//! like any autocommit write (a deferred read-then-write transaction would not: SQLite answers
//! `SQLITE_BUSY` at once when it must upgrade). The one exception, deleting a thread with its
//! attachment records, is a write transaction from its start (`BEGIN IMMEDIATE` on SQLite),
//! which waits the same way. Pages are keyset pages over `(created_at, seq)`:
//! the first page starts from a sentinel key, so one text per order serves every page.

/// Columns of a thread, in the order [`super::store::ThreadRow`] reads them.
macro_rules! thread_columns {
    () => {
        "id, created_at, title, status, allowed_image_domains, metadata"
    };
}

pub(super) const LOAD_THREAD: &str = concat!(
    "SELECT ",
    thread_columns!(),
    " FROM chatkit_threads WHERE id = $1 AND owner = $2"
);

/// Insert, or update the caller's own thread; another user's thread id changes nothing
/// (0 rows), which the store reports as not found.
pub(super) const SAVE_THREAD: &str = "INSERT INTO chatkit_threads \
     (id, owner, created_at, title, status, allowed_image_domains, metadata) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (id) DO UPDATE SET created_at = excluded.created_at, title = excluded.title, \
     status = excluded.status, allowed_image_domains = excluded.allowed_image_domains, \
     metadata = excluded.metadata \
     WHERE chatkit_threads.owner = excluded.owner";

/// Items go with their thread (`ON DELETE CASCADE`); its attachment records go with
/// [`DELETE_THREAD_ATTACHMENTS`], in the same transaction.
pub(super) const DELETE_THREAD: &str = "DELETE FROM chatkit_threads WHERE id = $1 AND owner = $2";

/// The caller's attachment records bound to a thread (`chatkit_attachments_thread`).
pub(super) const DELETE_THREAD_ATTACHMENTS: &str =
    "DELETE FROM chatkit_attachments WHERE owner = $2 AND thread_id = $1";

pub(super) const THREAD_CURSOR: &str =
    "SELECT created_at, seq FROM chatkit_threads WHERE id = $1 AND owner = $2";

pub(super) const THREADS_ASC: &str = concat!(
    "SELECT ",
    thread_columns!(),
    " FROM chatkit_threads WHERE owner = $1 AND (created_at, seq) > ($2, $3) \
     ORDER BY created_at, seq LIMIT $4"
);

pub(super) const THREADS_DESC: &str = concat!(
    "SELECT ",
    thread_columns!(),
    " FROM chatkit_threads WHERE owner = $1 AND (created_at, seq) < ($2, $3) \
     ORDER BY created_at DESC, seq DESC LIMIT $4"
);

/// One row when the thread is the caller's; the cursor item's key when `$3` names one of its
/// items (NULLs otherwise).
pub(super) const ITEM_CURSOR: &str = "SELECT i.created_at, i.seq FROM chatkit_threads t \
     LEFT JOIN chatkit_items i ON i.thread_id = t.id AND i.owner = t.owner AND i.id = $3 \
     WHERE t.id = $1 AND t.owner = $2";

pub(super) const ITEMS_ASC: &str = "SELECT body FROM chatkit_items \
     WHERE thread_id = $1 AND owner = $2 AND (created_at, seq) > ($3, $4) \
     ORDER BY created_at, seq LIMIT $5";

pub(super) const ITEMS_DESC: &str = "SELECT body FROM chatkit_items \
     WHERE thread_id = $1 AND owner = $2 AND (created_at, seq) < ($3, $4) \
     ORDER BY created_at DESC, seq DESC LIMIT $5";

pub(super) const THREAD_EXISTS: &str = "SELECT 1 FROM chatkit_threads WHERE id = $1 AND owner = $2";

/// Insert or replace in place (the row keeps its `seq`, so its position among equal times),
/// only into a thread of the caller: 0 rows means the thread is not theirs.
pub(super) const SAVE_ITEM: &str = "INSERT INTO chatkit_items \
     (thread_id, owner, id, created_at, type, body) \
     SELECT $1, $2, $3, $4, $5, $6 \
     WHERE EXISTS (SELECT 1 FROM chatkit_threads WHERE id = $1 AND owner = $2) \
     ON CONFLICT (thread_id, id) DO UPDATE SET created_at = excluded.created_at, \
     type = excluded.type, body = excluded.body";

pub(super) const LOAD_ITEM: &str =
    "SELECT body FROM chatkit_items WHERE thread_id = $1 AND owner = $2 AND id = $3";

pub(super) const DELETE_ITEM: &str =
    "DELETE FROM chatkit_items WHERE thread_id = $1 AND owner = $2 AND id = $3";

/// Insert, or update the caller's own attachment; another user's id changes nothing (0 rows).
/// `thread_id` is the attachment's own, kept in a column so [`DELETE_THREAD_ATTACHMENTS`]
/// finds a thread's records by index.
pub(super) const SAVE_ATTACHMENT: &str = "INSERT INTO chatkit_attachments \
     (id, owner, thread_id, body) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (id) DO UPDATE SET thread_id = excluded.thread_id, body = excluded.body \
     WHERE chatkit_attachments.owner = excluded.owner";

pub(super) const LOAD_ATTACHMENT: &str =
    "SELECT body FROM chatkit_attachments WHERE id = $1 AND owner = $2";

pub(super) const DELETE_ATTACHMENT: &str =
    "DELETE FROM chatkit_attachments WHERE id = $1 AND owner = $2";

/// The paging statements, by name, for [`explain`](super::store::SqlStore::explain_paging).
pub(super) const PAGING: [(&str, &str); 4] = [
    ("threads, oldest first", THREADS_ASC),
    ("threads, newest first", THREADS_DESC),
    ("items, oldest first", ITEMS_ASC),
    ("items, newest first", ITEMS_DESC),
];
