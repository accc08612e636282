//! Durable stores — [`SqliteStore`] (cargo feature `sqlite`, on by default) and
//! [`PostgresStore`] (feature `postgres`) — and [`StoreUrl`], the `CHATKIT_STORE_URL` that picks
//! a store.
//!
//! | store | for | URL |
//! |---|---|---|
//! | [`SqliteStore`] | one instance; the example server's default | `sqlite://data/chatkit.db` (relative to the working folder), `sqlite:///var/lib/chatkit.db` |
//! | [`PostgresStore`] | many instances behind a load balancer | `postgres://user:password@host:5432/database?sslmode=require` |
//! | [`InMemoryStore`] | tests and demos: lost on restart | `memory:` |
//!
//! Both SQL stores keep the semantics of the in-memory store, checked by one conformance suite
//! (`tests/store.rs`): every statement is scoped by the user, lists are ordered by `created_at`
//! with equal times in insertion order, `after` is the last id of the previous page and an
//! unknown one is `400`, `delete_thread` takes the thread's items and attachment records with
//! it. A call that cannot
//! reach the database answers `503 STORE_UNAVAILABLE` within its timeout (5 s by default).
//!
//! # One schema
//!
//! The migrations are embedded in the crate and run when a store opens (recorded in
//! `_chatkit_migrations`). The tables are the same in both databases; times are microseconds
//! since the unix epoch, every other column but the keys holds JSON text exactly as the
//! protocol types serialize it (`TEXT`, not `jsonb`, which would reorder keys):
//!
//! | table | columns | indexes |
//! |---|---|---|
//! | `chatkit_threads` | `seq` (insertion order), `id` (unique), `owner`, `created_at`, `title`, `status`, `allowed_image_domains`, `metadata` | `chatkit_threads_page (owner, created_at, seq)` |
//! | `chatkit_items` | `seq`, `thread_id` → `chatkit_threads (id) ON DELETE CASCADE`, `owner`, `id`, `created_at`, `type`, `body` | `chatkit_items_page (thread_id, created_at, seq)`, unique `(thread_id, id)` |
//! | `chatkit_attachments` | `id`, `owner`, `thread_id` (the attachment's, once sent; version 2), `body` | primary key `id`, `chatkit_attachments_thread (owner, thread_id)` |
//!
//! A page is one index range scan: `WHERE owner = $1 AND (created_at, seq) > ($2, $3) ORDER BY
//! created_at, seq LIMIT $4` (`<` and `DESC` for newest first), the cursor's key looked up by
//! its id first; the first page starts from a sentinel key. SQLite's plans (from
//! [`SqliteStore::explain_paging`]) seek by `created_at` and skip the ties before the cursor by
//! `seq` (a rowid, which SQLite's row-value ranges do not use):
//!
//! ```text
//! threads, oldest first:
//!   SEARCH chatkit_threads USING INDEX chatkit_threads_page (owner=? AND created_at>?)
//! items, newest first:
//!   SEARCH chatkit_items USING INDEX chatkit_items_page (thread_id=? AND created_at<?)
//! ```
//!
//! PostgreSQL's (from [`PostgresStore::explain_paging`]: a user with 1000 threads, a thread
//! of 500 items, statistics current):
//!
//! ```text
//! threads, newest first:
//!   Limit  (cost=0.28..2.64 rows=21 width=110)
//!     ->  Index Scan Backward using chatkit_threads_page on chatkit_threads  (cost=0.28..112.73 rows=1001 width=110)
//!           Index Cond: ((owner = 'owner0'::text) AND (ROW(created_at, seq) < ROW('9223372036854775807'::bigint, '9223372036854775807'::bigint)))
//! items, oldest first:
//!   Limit  (cost=0.27..2.92 rows=21 width=118)
//!     ->  Index Scan using chatkit_items_page on chatkit_items  (cost=0.27..63.27 rows=500 width=118)
//!           Index Cond: ((thread_id = 'thr_long'::text) AND (ROW(created_at, seq) > ROW('-9223372036854775808'::bigint, '-9223372036854775808'::bigint)))
//!           Filter: (owner = 'owner0'::text)
//! ```
//!
//! # Your own store
//!
//! Any other database is one [`Store`] implementation away: twelve async calls,
//! each given the [`RequestContext`](super::RequestContext) whose
//! [`user_id`](super::RequestContext::user_id) scopes it. Run it through the same conformance
//! suite (copy `tests/store.rs`'s checks), and wrap each call of a networked store in a
//! timeout that answers [`StoreError::unavailable`](super::StoreError::unavailable).

// The docs name both stores; a build with one of them still documents cleanly.
#![cfg_attr(
    not(all(feature = "sqlite", feature = "postgres")),
    allow(rustdoc::broken_intra_doc_links)
)]

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::ConfigError;

use super::store::{Store, StoreError};
use super::InMemoryStore;

#[cfg(feature = "sqlite")]
mod connections;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod statements;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod store;

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{PostgresStore, PostgresStoreBuilder};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::{SqliteStore, SqliteStoreBuilder};

/// How long a store call may take, by default (the wait for a connection included).
const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long opening a store waits for another instance that opens it at the same time.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
const OPEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The embedded migrations, one database's DDL for each version from 1 on (a released
/// version's text never changes: its checksum is recorded; a change is a new version).
///
/// Recorded in their own table, so an application's own sqlx migrations in the same database
/// are not confused with them; a newer release's migrations that an older instance does not
/// know are ignored, so instances of two releases can run side by side during a deploy.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn migrator(versions: [(&'static str, &'static str); 2]) -> sqlx::migrate::Migrator {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    use sqlx::SqlSafeStr;

    let migrations = (1..)
        .zip(versions)
        .map(|(version, (description, ddl))| {
            Migration::new(
                version,
                description.into(),
                MigrationType::Simple,
                ddl.into_sql_str(),
                false,
            )
        })
        .collect();
    let mut migrator = Migrator::with_migrations(migrations);
    migrator.dangerous_set_table_name("_chatkit_migrations");
    migrator.set_ignore_missing(true);
    migrator
}

/// `impl Store for $ty` by calling `self.inner`.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
macro_rules! delegate_store {
    ($ty:ty) => {
        impl $crate::chatkit::Store for $ty {
            fn load_thread<'a>(
                &'a self,
                thread_id: &'a str,
                ctx: &'a $crate::chatkit::RequestContext,
            ) -> $crate::chatkit::StoreFuture<'a, $crate::protocol::ThreadMetadata> {
                self.inner.load_thread(thread_id, ctx)
            }
            fn save_thread<'a>(
                &'a self,
                thread: &'a $crate::protocol::ThreadMetadata,
                ctx: &'a $crate::chatkit::RequestContext,
            ) -> $crate::chatkit::StoreFuture<'a, ()> {
                self.inner.save_thread(thread, ctx)
            }
            fn load_threads<'a>(
                &'a self,
                query: $crate::chatkit::PageQuery,
                ctx: &'a $crate::chatkit::RequestContext,
            ) -> $crate::chatkit::StoreFuture<
                'a,
                $crate::protocol::Page<$crate::protocol::ThreadMetadata>,
            > {
                self.inner.load_threads(query, ctx)
            }
            fn delete_thread<'a>(
                &'a self,
                thread_id: &'a str,
                ctx: &'a $crate::chatkit::RequestContext,
            ) -> $crate::chatkit::StoreFuture<'a, ()> {
                self.inner.delete_thread(thread_id, ctx)
            }
            fn load_thread_items<'a>(
                &'a self,
                thread_id: &'a str,
                query: $crate::chatkit::PageQuery,
                ctx: &'a $crate::chatkit::RequestContext,
            ) -> $crate::chatkit::StoreFuture<
                'a,
                $crate::protocol::Page<$crate::protocol::ThreadItem>,
            > {
                self.inner.load_thread_items(thread_id, query, ctx)
            }
            fn add_thread_item<'a>(
                &'a self,
                thread_id: &'a str,
                item: &'a $crate::protocol::ThreadItem,
                ctx: &'a $crate::chatkit::RequestContext,
            ) -> $crate::chatkit::StoreFuture<'a, ()> {
                self.inner.add_thread_item(thread_id, item, ctx)
            }
            fn save_item<'a>(
                &'a self,
                thread_id: &'a str,
                item: &'a $crate::protocol::ThreadItem,
                ctx: &'a $crate::chatkit::RequestContext,
            ) -> $crate::chatkit::StoreFuture<'a, ()> {
                self.inner.save_item(thread_id, item, ctx)
            }
            fn load_item<'a>(
                &'a self,
                thread_id: &'a str,
                item_id: &'a str,
                ctx: &'a $crate::chatkit::RequestContext,
            ) -> $crate::chatkit::StoreFuture<'a, $crate::protocol::ThreadItem> {
                self.inner.load_item(thread_id, item_id, ctx)
            }
            fn delete_thread_item<'a>(
                &'a self,
                thread_id: &'a str,
                item_id: &'a str,
                ctx: &'a $crate::chatkit::RequestContext,
            ) -> $crate::chatkit::StoreFuture<'a, ()> {
                self.inner.delete_thread_item(thread_id, item_id, ctx)
            }
            fn save_attachment<'a>(
                &'a self,
                attachment: &'a $crate::protocol::Attachment,
                ctx: &'a $crate::chatkit::RequestContext,
            ) -> $crate::chatkit::StoreFuture<'a, ()> {
                self.inner.save_attachment(attachment, ctx)
            }
            fn load_attachment<'a>(
                &'a self,
                attachment_id: &'a str,
                ctx: &'a $crate::chatkit::RequestContext,
            ) -> $crate::chatkit::StoreFuture<'a, $crate::protocol::Attachment> {
                self.inner.load_attachment(attachment_id, ctx)
            }
            fn delete_attachment<'a>(
                &'a self,
                attachment_id: &'a str,
                ctx: &'a $crate::chatkit::RequestContext,
            ) -> $crate::chatkit::StoreFuture<'a, ()> {
                self.inner.delete_attachment(attachment_id, ctx)
            }
            fn ready(&self) -> $crate::chatkit::StoreFuture<'_, ()> {
                self.inner.ready()
            }
        }
    };
}
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use delegate_store;

/// Which store keeps the threads: the value of `CHATKIT_STORE_URL`.
///
/// | form | store |
/// |---|---|
/// | `sqlite://PATH` (or `sqlite:PATH`) | [`SqliteStore`] in the file `PATH`, relative to the working folder unless it starts with `/` (`sqlite:///var/lib/chatkit.db`); its folder is created |
/// | `postgres://…` or `postgresql://…` | [`PostgresStore`]; query parameters such as `sslmode` are PostgreSQL's |
/// | `memory:` | [`InMemoryStore`]: lost on restart, one instance only |
///
/// A form whose cargo feature is off (`sqlite`, `postgres`) is refused with a message that
/// names the feature. `Display` hides a password.
///
/// ```
/// use chatkit_tower::chatkit::StoreUrl;
/// use std::path::PathBuf;
///
/// let url: StoreUrl = StoreUrl::DEFAULT.parse().unwrap();
/// assert_eq!(url, StoreUrl::Sqlite(PathBuf::from("data/chatkit.db")));
/// assert_eq!("memory:".parse::<StoreUrl>().unwrap(), StoreUrl::Memory);
/// assert!("mysql://db/chatkit".parse::<StoreUrl>().is_err());
///
/// let pg: StoreUrl = "postgres://chatkit:s3cret@db:5432/chatkit".parse().unwrap();
/// assert_eq!(pg.to_string(), "postgres://chatkit:***@db:5432/chatkit");
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreUrl {
    /// [`InMemoryStore`].
    Memory,
    /// [`SqliteStore`] in this file.
    Sqlite(PathBuf),
    /// [`PostgresStore`] at this URL.
    Postgres(String),
}

impl StoreUrl {
    /// The example server's store when `CHATKIT_STORE_URL` is unset.
    pub const DEFAULT: &'static str = "sqlite://data/chatkit.db";

    /// How long a store call may take by default, waiting for a connection included (5 s).
    pub const DEFAULT_TIMEOUT: std::time::Duration = DEFAULT_TIMEOUT;

    /// Open the store: create the SQLite file, or connect to PostgreSQL, and migrate.
    ///
    /// ```
    /// use chatkit_tower::chatkit::{RequestContext, StoreUrl};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = StoreUrl::Memory.open().await.unwrap();
    /// assert!(store.load_thread("thr_1", &RequestContext::new("alice")).await.is_err());
    /// # });
    /// ```
    pub async fn open(&self) -> Result<Arc<dyn Store>, StoreError> {
        self.open_with_timeout(Self::DEFAULT_TIMEOUT).await
    }

    /// [`open`](Self::open) with each store call bounded by `timeout` instead of
    /// [`DEFAULT_TIMEOUT`](Self::DEFAULT_TIMEOUT) (`CHATKIT_STORE_TIMEOUT_MS`). The memory store
    /// needs none.
    ///
    /// ```
    /// use chatkit_tower::chatkit::StoreUrl;
    /// use std::time::Duration;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = std::env::temp_dir().join(format!("chatkit-doc-timeout-{}", std::process::id()));
    /// let url: StoreUrl = format!("sqlite://{}", dir.join("chatkit.db").display()).parse().unwrap();
    /// let store = url.open_with_timeout(Duration::from_secs(2)).await.unwrap();
    /// // What `GET /readyz` asks: a trivial query, answered within those 2 s or Unavailable.
    /// store.ready().await.unwrap();
    /// # drop(store);
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # });
    /// ```
    pub async fn open_with_timeout(
        &self,
        timeout: std::time::Duration,
    ) -> Result<Arc<dyn Store>, StoreError> {
        let _ = timeout;
        match self {
            Self::Memory => Ok(Arc::new(InMemoryStore::new())),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(path) => Ok(Arc::new(
                SqliteStore::builder(path.clone())
                    .timeout(timeout)
                    .open()
                    .await?,
            )),
            #[cfg(feature = "postgres")]
            Self::Postgres(url) => Ok(Arc::new(
                PostgresStore::builder(url.clone())
                    .timeout(timeout)
                    .connect()
                    .await?,
            )),
            #[allow(unreachable_patterns)]
            other => Err(StoreError::other(missing_feature(other))),
        }
    }
}

fn missing_feature(url: &StoreUrl) -> String {
    let (name, feature) = match url {
        StoreUrl::Postgres(_) => ("PostgreSQL", "postgres"),
        _ => ("SQLite", "sqlite"),
    };
    format!(
        "this build has no {name} store: build chatkit-tower with the cargo feature `{feature}`"
    )
}

impl FromStr for StoreUrl {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "memory:" || s == "memory://" {
            return Ok(Self::Memory);
        }
        if let Some(rest) = s.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() || path.starts_with(':') || path.contains('?') {
                return Err(ConfigError::new(format!(
                    "{:?} is not a SQLite file: use sqlite://PATH (no query parameters; for a \
                     store in memory use memory:)",
                    shown(s)
                )));
            }
            let url = Self::Sqlite(PathBuf::from(path));
            if cfg!(not(feature = "sqlite")) {
                return Err(ConfigError::new(missing_feature(&url)));
            }
            return Ok(url);
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            let url = Self::Postgres(s.to_owned());
            #[cfg(feature = "postgres")]
            if let Err(e) = sqlx::postgres::PgConnectOptions::from_str(s) {
                return Err(ConfigError::new(format!(
                    "{url} is not a PostgreSQL URL: {e}"
                )));
            }
            #[cfg(not(feature = "postgres"))]
            return Err(ConfigError::new(missing_feature(&url)));
            #[cfg(feature = "postgres")]
            return Ok(url);
        }
        Err(ConfigError::new(format!(
            "{:?} is not a store URL: use sqlite://PATH, postgres://… or memory:",
            shown(s)
        )))
    }
}

/// The start of a text that may hold a secret, for an error message.
fn shown(s: &str) -> String {
    let s: String = s.chars().take(64).collect();
    redact(&s)
}

/// The URL with the password of its user info replaced by `***`.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| scheme_end + i);
    let authority = &url[scheme_end..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let user_info = &authority[..at];
    match user_info.find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &user_info[..colon],
            &url[scheme_end + at..]
        ),
        None => url.to_owned(),
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("memory:"),
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        for (url, shown) in [
            ("postgres://u:pw@h/db", "postgres://u:***@h/db"),
            ("postgres://u:p@w@h:5/db?x=1", "postgres://u:***@h:5/db?x=1"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://h/db", "postgres://h/db"),
            ("postgresql://u:pw@h", "postgresql://u:***@h"),
        ] {
            assert_eq!(redact(url), shown);
        }
        let err = "postgres://u:hunter2@h:notaport/db"
            .parse::<StoreUrl>()
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn sqlite_paths_are_relative_unless_absolute() {
        let path = |s: &str| match s.parse::<StoreUrl>().unwrap() {
            StoreUrl::Sqlite(p) => p,
            other => panic!("{other:?}"),
        };
        if cfg!(feature = "sqlite") {
            assert_eq!(path("sqlite://data/x.db"), PathBuf::from("data/x.db"));
            assert_eq!(path("sqlite:///var/x.db"), PathBuf::from("/var/x.db"));
            assert_eq!(path("sqlite:x.db"), PathBuf::from("x.db"));
        }
        for bad in [
            "sqlite://",
            "sqlite::memory:",
            "sqlite://x.db?mode=ro",
            "redis://x",
            "",
        ] {
            assert!(bad.parse::<StoreUrl>().is_err(), "{bad}");
        }
    }
}
