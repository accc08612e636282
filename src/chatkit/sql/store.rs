//! [`SqlStore`]: the [`Store`] calls, written once for both databases.
//!
//! Each call is one `async` block whose statements run through [`on_pool!`], which repeats the
//! block for the pool of each compiled-in database: the Rust is written once, and sqlx sees
//! concrete types in each arm. Every call runs under the store's timeout, so a database that
//! stops answering (a frozen server keeps a query in flight forever) is `Unavailable`, never a
//! hang.

use std::future::Future;
use std::time::Duration;

use serde::Deserialize;
#[cfg(feature = "sqlite")]
use sqlx::Connection as _;

use crate::chatkit::store::{PageQuery, Store, StoreError, StoreFuture};
use crate::chatkit::RequestContext;
use crate::protocol::{Attachment, Order, Page, ThreadItem, ThreadMetadata, Timestamp};

use super::statements as sql;

/// A pool of one of the compiled-in databases.
#[derive(Clone)]
pub(super) enum Pool {
    #[cfg(feature = "sqlite")]
    Sqlite(std::sync::Arc<super::connections::SqliteConnections>),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

/// Run `$body` (a `Result<_, sqlx::Error>`) with `$p` bound to a concrete executor: a SQLite
/// connection held for the body (the writer for [`Access::Write`], a reader for
/// [`Access::Read`]), or the PostgreSQL pool.
macro_rules! on_pool {
    ($pool:expr, $access:expr, |$p:ident| $body:expr) => {
        match $pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => match pool.acquire($access).await {
                Ok(mut held) => {
                    let $p = held.conn();
                    let result = $body;
                    held.finish(&result);
                    result
                }
                Err(err) => Err(err),
            },
            #[cfg(feature = "postgres")]
            Pool::Postgres($p) => {
                let _: Access = $access;
                $body
            }
        }
    };
}

/// Whether a call only reads or also writes: SQLite runs writes on its one writer connection.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    Read,
    Write,
}

/// `id, created_at, title, status, allowed_image_domains, metadata`.
type ThreadRow = (String, i64, Option<String>, String, Option<String>, String);

/// The shared half of [`SqliteStore`](super::SqliteStore) and
/// [`PostgresStore`](super::PostgresStore).
#[derive(Clone)]
pub(super) struct SqlStore {
    pool: Pool,
    timeout: Duration,
    name: &'static str,
}

impl SqlStore {
    pub(super) fn new(pool: Pool, timeout: Duration, name: &'static str) -> Self {
        Self {
            pool,
            timeout,
            name,
        }
    }

    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(super) fn pool_size(&self) -> u32 {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => pool.size(),
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => pool.size(),
        }
    }

    /// `fut` under the store's timeout.
    fn run<'a, T: Send + 'a>(
        &'a self,
        fut: impl Future<Output = Result<T, StoreError>> + Send + 'a,
    ) -> StoreFuture<'a, T> {
        Box::pin(async move {
            match tokio::time::timeout(self.timeout, fut).await {
                Ok(result) => result,
                Err(_) => Err(StoreError::unavailable(format!(
                    "the {} store did not answer within {} ms",
                    self.name,
                    self.timeout.as_millis()
                ))),
            }
        })
    }

    fn error(&self, err: sqlx::Error) -> StoreError {
        database_error(self.name, err)
    }

    async fn thread_exists(&self, thread_id: &str, owner: &str) -> Result<bool, StoreError> {
        let row: Option<(i32,)> = on_pool!(&self.pool, Access::Read, |p| sqlx::query_as(
            sql::THREAD_EXISTS
        )
        .bind(thread_id)
        .bind(owner)
        .fetch_optional(p)
        .await)
        .map_err(|e| self.error(e))?;
        Ok(row.is_some())
    }

    /// The query plan of each paging statement for `owner`'s threads and the items of
    /// `thread_id`, as the database explains it.
    pub(super) async fn explain_paging(
        &self,
        thread_id: &str,
        owner: &str,
    ) -> Result<String, StoreError> {
        let mut out = String::new();
        for (name, statement) in sql::PAGING {
            let is_items = statement.contains("chatkit_items");
            let lines: Vec<String> = on_pool!(&self.pool, Access::Read, |p| {
                let explain = sqlx::AssertSqlSafe(format!("{} {statement}", explain_prefix(p)));
                let mut query = sqlx::query(explain);
                // The first page, as the store asks for it.
                let (at, seq) = start(if statement.contains("DESC") {
                    Order::Desc
                } else {
                    Order::Asc
                });
                query = if is_items {
                    query.bind(thread_id).bind(owner).bind(at).bind(seq)
                } else {
                    query.bind(owner).bind(at).bind(seq)
                };
                query
                    .bind(21_i64)
                    .fetch_all(p)
                    .await
                    .map(|rows| rows.iter().map(PlanLine::plan_line).collect())
            })
            .map_err(|e| self.error(e))?;
            out.push_str(&format!("{name}:\n"));
            for line in lines {
                out.push_str(&format!("  {line}\n"));
            }
        }
        Ok(out)
    }
}

/// What differs between the databases, keyed by the executor each runs statements on (a held
/// SQLite connection, the PostgreSQL pool).
trait Dialect {
    /// What goes before a statement to get its plan.
    const EXPLAIN: &'static str;
    /// How a transaction that writes starts: SQLite takes the write lock at once (`IMMEDIATE`),
    /// waiting out its busy timeout like an autocommit write; PostgreSQL locks rows as it goes.
    const BEGIN: &'static str;
}

#[cfg(feature = "sqlite")]
impl Dialect for sqlx::SqliteConnection {
    const EXPLAIN: &'static str = "EXPLAIN QUERY PLAN";
    const BEGIN: &'static str = "BEGIN IMMEDIATE";
}

#[cfg(feature = "postgres")]
impl Dialect for sqlx::PgPool {
    const EXPLAIN: &'static str = "EXPLAIN";
    const BEGIN: &'static str = "BEGIN";
}

fn begin_write<P: Dialect>(_: &P) -> &'static str {
    P::BEGIN
}

fn explain_prefix<P: Dialect>(_: &P) -> &'static str {
    P::EXPLAIN
}

/// One line of a plan, from a row of each database's `EXPLAIN`.
trait PlanLine {
    fn plan_line(&self) -> String;
}

#[cfg(feature = "sqlite")]
impl PlanLine for sqlx::sqlite::SqliteRow {
    fn plan_line(&self) -> String {
        use sqlx::Row;
        // (id, parent, notused, detail)
        self.try_get::<String, _>(3).unwrap_or_default()
    }
}

#[cfg(feature = "postgres")]
impl PlanLine for sqlx::postgres::PgRow {
    fn plan_line(&self) -> String {
        use sqlx::Row;
        self.try_get::<String, _>(0).unwrap_or_default()
    }
}

/// A sqlx error as a [`StoreError`]: a database that cannot be reached, is shutting down, or is
/// busy is [`Unavailable`](crate::chatkit::StoreErrorKind::Unavailable) (503, try again); the
/// rest is `Other` (500). The message names no value; the error itself is kept as the source.
pub(super) fn database_error(name: &str, err: sqlx::Error) -> StoreError {
    let unavailable = match &err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| unavailable_code(&code)),
        _ => false,
    };
    if unavailable {
        StoreError::unavailable(format!(
            "the {name} store cannot be reached or is busy: {}",
            short_reason(&err)
        ))
        .with_source(err)
    } else {
        StoreError::other(format!("the {name} store failed (see the server log)")).with_source(err)
    }
}

/// SQLite: busy or locked (any extended code). PostgreSQL: connection exceptions (class 08),
/// shutdown and recovery (57P01–57P03), too many connections (53300), a cancelled statement
/// (57014: `statement_timeout`), serialization failures and deadlocks (40001, 40P01).
fn unavailable_code(code: &str) -> bool {
    // A SQLSTATE is five characters; SQLite's result codes are numbers below 10 000.
    if code.len() == 5 {
        return code.starts_with("08")
            || matches!(
                code,
                "57P01" | "57P02" | "57P03" | "53300" | "57014" | "40001" | "40P01"
            );
    }
    code.parse::<i32>()
        .is_ok_and(|sqlite| matches!(sqlite & 0xff, 5 | 6))
}

/// Words for the JSON `details` that carry no value from the database.
fn short_reason(err: &sqlx::Error) -> &'static str {
    match err {
        sqlx::Error::PoolTimedOut => "no connection within the timeout",
        sqlx::Error::PoolClosed => "the pool is closed",
        sqlx::Error::Io(_) => "the connection failed",
        sqlx::Error::Tls(_) => "TLS failed",
        sqlx::Error::Protocol(_) => "the server answered nonsense",
        sqlx::Error::WorkerCrashed => "the database worker stopped",
        _ => "the database refused the statement for now",
    }
}

fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

fn thread_not_found(id: &str) -> StoreError {
    StoreError::not_found(format!("thread {:?} not found", short(id)))
}

fn item_not_found(thread_id: &str, item_id: &str) -> StoreError {
    StoreError::not_found(format!(
        "item {:?} not found in thread {:?}",
        short(item_id),
        short(thread_id)
    ))
}

fn attachment_not_found(id: &str) -> StoreError {
    StoreError::not_found(format!("attachment {:?} not found", short(id)))
}

fn short(id: &str) -> String {
    id.chars().take(64).collect()
}

/// PostgreSQL text cannot hold NUL: such an id was never stored, by either database (writes
/// refuse it), so a lookup of one finds nothing.
fn has_nul(text: &str) -> bool {
    text.contains('\0')
}

fn refuse_nul(what: &str, text: &str) -> Result<(), StoreError> {
    if has_nul(text) {
        return Err(StoreError::other(format!(
            "{what} {:?} contains a NUL character, which SQL stores do not keep",
            short(text)
        )));
    }
    Ok(())
}

fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::other("a value could not be written as JSON").with_source(e))
}

fn from_json<'a, T: Deserialize<'a>>(what: &str, text: &'a str) -> Result<T, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::other(format!("a stored {what} is not valid JSON")).with_source(e))
}

fn thread_from_row(row: ThreadRow) -> Result<ThreadMetadata, StoreError> {
    let (id, created_at, title, status, allowed_image_domains, metadata) = row;
    Ok(ThreadMetadata {
        title: title
            .as_deref()
            .map(|t| from_json("thread title", t))
            .transpose()?,
        created_at: Timestamp::from_unix_micros(created_at)
            .ok_or_else(|| StoreError::other("a stored thread time is out of range"))?,
        status: from_json("thread status", &status)?,
        allowed_image_domains: allowed_image_domains
            .as_deref()
            .map(|d| from_json("thread image domains", d))
            .transpose()?,
        metadata: from_json("thread metadata", &metadata)?,
        id,
    })
}

/// An item without a readable time sorts first, as in the in-memory store.
fn item_time(item: &ThreadItem) -> i64 {
    item.created_at().map_or(i64::MIN, |t| t.unix_micros())
}

/// The key the first page starts after.
fn start(order: Order) -> (i64, i64) {
    match order {
        Order::Asc => (i64::MIN, i64::MIN),
        Order::Desc => (i64::MAX, i64::MAX),
    }
}

/// One more row than asked, to tell whether more follow.
fn fetch_limit(limit: usize) -> i64 {
    i64::try_from(limit)
        .unwrap_or(i64::MAX - 1)
        .saturating_add(1)
}

fn page<T>(mut data: Vec<T>, limit: usize, id: impl Fn(&T) -> &str) -> Page<T> {
    let has_more = data.len() > limit;
    data.truncate(limit);
    let after = if has_more {
        data.last().map(|t| id(t).to_owned())
    } else {
        None
    };
    Page {
        data,
        has_more,
        after,
    }
}

impl Store for SqlStore {
    fn load_thread<'a>(
        &'a self,
        thread_id: &'a str,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ThreadMetadata> {
        self.run(async move {
            if has_nul(thread_id) {
                return Err(thread_not_found(thread_id));
            }
            let row: Option<ThreadRow> = on_pool!(&self.pool, Access::Read, |p| sqlx::query_as(
                sql::LOAD_THREAD
            )
            .bind(thread_id)
            .bind(ctx.user_id())
            .fetch_optional(p)
            .await)
            .map_err(|e| self.error(e))?;
            match row {
                Some(row) => thread_from_row(row),
                None => Err(thread_not_found(thread_id)),
            }
        })
    }

    fn save_thread<'a>(
        &'a self,
        thread: &'a ThreadMetadata,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ()> {
        self.run(async move {
            refuse_nul("thread id", &thread.id)?;
            refuse_nul("user id", ctx.user_id())?;
            let title = thread.title.as_deref().map(to_json).transpose()?;
            let status = to_json(&thread.status)?;
            let domains = thread
                .allowed_image_domains
                .as_deref()
                .map(to_json)
                .transpose()?;
            let metadata = to_json(&thread.metadata)?;
            let done = on_pool!(&self.pool, Access::Write, |p| sqlx::query(sql::SAVE_THREAD)
                .bind(&thread.id)
                .bind(ctx.user_id())
                .bind(thread.created_at.unix_micros())
                .bind(title.as_deref())
                .bind(&status)
                .bind(domains.as_deref())
                .bind(&metadata)
                .execute(p)
                .await
                .map(|r| r.rows_affected()))
            .map_err(|e| self.error(e))?;
            if done == 0 {
                return Err(thread_not_found(&thread.id));
            }
            Ok(())
        })
    }

    fn load_threads<'a>(
        &'a self,
        query: PageQuery,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, Page<ThreadMetadata>> {
        self.run(async move {
            let owner = ctx.user_id();
            let (at, seq) = match &query.after {
                None => start(query.order),
                Some(cursor) if has_nul(cursor) => return Err(StoreError::bad_cursor(cursor)),
                Some(cursor) => {
                    let key: Option<(i64, i64)> =
                        on_pool!(&self.pool, Access::Read, |p| sqlx::query_as(
                            sql::THREAD_CURSOR
                        )
                        .bind(cursor)
                        .bind(owner)
                        .fetch_optional(p)
                        .await)
                        .map_err(|e| self.error(e))?;
                    key.ok_or_else(|| StoreError::bad_cursor(cursor))?
                }
            };
            let statement = match query.order {
                Order::Asc => sql::THREADS_ASC,
                Order::Desc => sql::THREADS_DESC,
            };
            let rows: Vec<ThreadRow> =
                on_pool!(&self.pool, Access::Read, |p| sqlx::query_as(statement)
                    .bind(owner)
                    .bind(at)
                    .bind(seq)
                    .bind(fetch_limit(query.limit))
                    .fetch_all(p)
                    .await)
                .map_err(|e| self.error(e))?;
            let threads = rows
                .into_iter()
                .map(thread_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(page(threads, query.limit, |t| &t.id))
        })
    }

    fn delete_thread<'a>(
        &'a self,
        thread_id: &'a str,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ()> {
        self.run(async move {
            if has_nul(thread_id) {
                return Err(thread_not_found(thread_id));
            }
            let owner = ctx.user_id();
            // One transaction: the thread (its items by cascade), then its attachment records.
            let done = on_pool!(&self.pool, Access::Write, |p| async {
                let begin = begin_write(p);
                let mut tx = p.begin_with(begin).await?;
                let done = sqlx::query(sql::DELETE_THREAD)
                    .bind(thread_id)
                    .bind(owner)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if done == 0 {
                    // Not the caller's: nothing to delete (the rollback is the drop).
                    return Ok(0);
                }
                sqlx::query(sql::DELETE_THREAD_ATTACHMENTS)
                    .bind(thread_id)
                    .bind(owner)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(done)
            }
            .await)
            .map_err(|e| self.error(e))?;
            if done == 0 {
                return Err(thread_not_found(thread_id));
            }
            Ok(())
        })
    }

    fn load_thread_items<'a>(
        &'a self,
        thread_id: &'a str,
        query: PageQuery,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, Page<ThreadItem>> {
        self.run(async move {
            let owner = ctx.user_id();
            if has_nul(thread_id) {
                return Err(thread_not_found(thread_id));
            }
            let cursor = query.after.as_deref().filter(|c| !has_nul(c));
            let found: Option<(Option<i64>, Option<i64>)> =
                on_pool!(&self.pool, Access::Read, |p| sqlx::query_as(
                    sql::ITEM_CURSOR
                )
                .bind(thread_id)
                .bind(owner)
                .bind(cursor)
                .fetch_optional(p)
                .await)
                .map_err(|e| self.error(e))?;
            let Some(key) = found else {
                return Err(thread_not_found(thread_id));
            };
            let (at, seq) = match (&query.after, key) {
                (None, _) => start(query.order),
                (Some(_), (Some(at), Some(seq))) => (at, seq),
                (Some(cursor), _) => return Err(StoreError::bad_cursor(cursor)),
            };
            let statement = match query.order {
                Order::Asc => sql::ITEMS_ASC,
                Order::Desc => sql::ITEMS_DESC,
            };
            let rows: Vec<(String,)> =
                on_pool!(&self.pool, Access::Read, |p| sqlx::query_as(statement)
                    .bind(thread_id)
                    .bind(owner)
                    .bind(at)
                    .bind(seq)
                    .bind(fetch_limit(query.limit))
                    .fetch_all(p)
                    .await)
                .map_err(|e| self.error(e))?;
            let items = rows
                .iter()
                .map(|(body,)| from_json::<ThreadItem>("item", body))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(page(items, query.limit, ThreadItem::id))
        })
    }

    fn save_item<'a>(
        &'a self,
        thread_id: &'a str,
        item: &'a ThreadItem,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ()> {
        self.run(async move {
            if has_nul(thread_id) {
                return Err(thread_not_found(thread_id));
            }
            refuse_nul("item id", item.id())?;
            let body = to_json(item)?;
            let kind = item.item_type();
            let done = on_pool!(&self.pool, Access::Write, |p| sqlx::query(sql::SAVE_ITEM)
                .bind(thread_id)
                .bind(ctx.user_id())
                .bind(item.id())
                .bind(item_time(item))
                .bind(kind)
                .bind(&body)
                .execute(p)
                .await
                .map(|r| r.rows_affected()));
            match done {
                Ok(0) => Err(thread_not_found(thread_id)),
                Ok(_) => Ok(()),
                // The thread was deleted between the check and the insert.
                Err(e) if is_foreign_key_violation(&e) => Err(thread_not_found(thread_id)),
                Err(e) => Err(self.error(e)),
            }
        })
    }

    fn load_item<'a>(
        &'a self,
        thread_id: &'a str,
        item_id: &'a str,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ThreadItem> {
        self.run(async move {
            let owner = ctx.user_id();
            if has_nul(thread_id) {
                return Err(thread_not_found(thread_id));
            }
            let row: Option<(String,)> = if has_nul(item_id) {
                None
            } else {
                on_pool!(&self.pool, Access::Read, |p| sqlx::query_as(sql::LOAD_ITEM)
                    .bind(thread_id)
                    .bind(owner)
                    .bind(item_id)
                    .fetch_optional(p)
                    .await)
                .map_err(|e| self.error(e))?
            };
            match row {
                Some((body,)) => from_json("item", &body),
                None if self.thread_exists(thread_id, owner).await? => {
                    Err(item_not_found(thread_id, item_id))
                }
                None => Err(thread_not_found(thread_id)),
            }
        })
    }

    fn delete_thread_item<'a>(
        &'a self,
        thread_id: &'a str,
        item_id: &'a str,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ()> {
        self.run(async move {
            let owner = ctx.user_id();
            if has_nul(thread_id) {
                return Err(thread_not_found(thread_id));
            }
            let done = if has_nul(item_id) {
                0
            } else {
                on_pool!(&self.pool, Access::Write, |p| sqlx::query(sql::DELETE_ITEM)
                    .bind(thread_id)
                    .bind(owner)
                    .bind(item_id)
                    .execute(p)
                    .await
                    .map(|r| r.rows_affected()))
                .map_err(|e| self.error(e))?
            };
            // Nothing deleted: fine for a missing item, not for a thread that is not theirs.
            if done == 0 && !self.thread_exists(thread_id, owner).await? {
                return Err(thread_not_found(thread_id));
            }
            Ok(())
        })
    }

    fn save_attachment<'a>(
        &'a self,
        attachment: &'a Attachment,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ()> {
        self.run(async move {
            refuse_nul("attachment id", attachment.id())?;
            refuse_nul("user id", ctx.user_id())?;
            let body = to_json(attachment)?;
            let done = on_pool!(&self.pool, Access::Write, |p| sqlx::query(
                sql::SAVE_ATTACHMENT
            )
            .bind(attachment.id())
            .bind(ctx.user_id())
            .bind(attachment.thread_id().filter(|t| !has_nul(t)))
            .bind(&body)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
            .map_err(|e| self.error(e))?;
            if done == 0 {
                return Err(attachment_not_found(attachment.id()));
            }
            Ok(())
        })
    }

    fn load_attachment<'a>(
        &'a self,
        attachment_id: &'a str,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, Attachment> {
        self.run(async move {
            if has_nul(attachment_id) {
                return Err(attachment_not_found(attachment_id));
            }
            let row: Option<(String,)> = on_pool!(&self.pool, Access::Read, |p| sqlx::query_as(
                sql::LOAD_ATTACHMENT
            )
            .bind(attachment_id)
            .bind(ctx.user_id())
            .fetch_optional(p)
            .await)
            .map_err(|e| self.error(e))?;
            match row {
                Some((body,)) => from_json("attachment", &body),
                None => Err(attachment_not_found(attachment_id)),
            }
        })
    }

    fn delete_attachment<'a>(
        &'a self,
        attachment_id: &'a str,
        ctx: &'a RequestContext,
    ) -> StoreFuture<'a, ()> {
        self.run(async move {
            if has_nul(attachment_id) {
                return Ok(());
            }
            on_pool!(&self.pool, Access::Write, |p| sqlx::query(
                sql::DELETE_ATTACHMENT
            )
            .bind(attachment_id)
            .bind(ctx.user_id())
            .execute(p)
            .await
            .map(|_| ()))
            .map_err(|e| self.error(e))
        })
    }

    fn ready(&self) -> StoreFuture<'_, ()> {
        self.run(async move {
            on_pool!(&self.pool, Access::Read, |p| sqlx::query("SELECT 1")
                .execute(p)
                .await
                .map(|_| ()))
            .map_err(|e| self.error(e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_and_unreachable_codes_are_unavailable() {
        for code in ["5", "517", "6", "262", "08006", "57P01", "53300", "57014"] {
            assert!(unavailable_code(code), "{code}");
        }
        for code in ["19", "2067", "23505", "42P01", "22021", "23503"] {
            assert!(!unavailable_code(code), "{code}");
        }
    }

    #[test]
    fn a_page_asks_one_more_row_and_keeps_the_last_id_as_cursor() {
        assert_eq!(fetch_limit(20), 21);
        assert_eq!(fetch_limit(usize::MAX), i64::MAX);
        let p = page(vec!["a", "b", "c"], 2, |s| s);
        assert_eq!(
            (p.data, p.has_more, p.after),
            (vec!["a", "b"], true, Some("b".into()))
        );
        let p = page(vec!["a"], 2, |s| s);
        assert_eq!((p.has_more, p.after), (false, None));
    }
}
