//! [`SqliteStore`]: threads, items and attachment records in one SQLite file.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::sync::Arc;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::ConnectOptions;

use crate::chatkit::store::StoreError;
use crate::chatkit::RequestContext;

use super::connections::SqliteConnections;
use super::store::{database_error, Pool, SqlStore};
use super::{migrator, DEFAULT_TIMEOUT, OPEN_TIMEOUT};

const NAME: &str = "SQLite";

/// A durable [`Store`](crate::chatkit::Store) in one SQLite file: the example server's default
/// (`sqlite://data/chatkit.db`), for one instance. Cheap to clone; clones share the pool.
///
/// - **Durable**: WAL journal with `synchronous = NORMAL` — a committed write survives the
///   process being killed (a power cut may lose the last commits).
/// - **Concurrent**: a small pool of its own (4 connections by default, each with its own
///   thread, so SQLite's blocking work stays off the async workers): one connection writes and
///   this process's writes queue for it in order, the others read and never wait for the writer
///   (WAL). Writers in other processes are waited out with SQLite's busy timeout. Unlike
///   sqlx's pool, a connection handed back is not pinged: that round trip doubled the cost of
///   every call.
/// - **Bounded**: every call answers within [`timeout`](SqliteStoreBuilder::timeout) (5 s by
///   default) or fails as [`Unavailable`](crate::chatkit::StoreErrorKind::Unavailable) —
///   `503 STORE_UNAVAILABLE`. Another process's write lock is given up on at ¾ of the timeout,
///   so such a refused write did not happen.
/// - **Safe to open twice**: opening creates the folder and the file if needed and runs the
///   embedded migrations while holding an OS lock on `<file>-lock`, so two instances starting
///   at once on a new file both succeed (SQLite's own locking does not cover that: switching a
///   new file to WAL and creating the tables race).
///
/// Same semantics as [`InMemoryStore`](crate::chatkit::InMemoryStore), checked by one
/// conformance suite: lists ordered by `created_at`, equal times in insertion order, the
/// `after` cursor the last id of the previous page, every statement scoped by the user.
///
/// ```
/// use chatkit_tower::chatkit::{PageQuery, RequestContext, SqliteStore, Store};
/// use chatkit_tower::protocol::{Order, ThreadMetadata};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let dir = std::env::temp_dir().join(format!("chatkit-doc-{}", std::process::id()));
/// let store = SqliteStore::open(dir.join("chatkit.db")).await.unwrap();
/// let alice = RequestContext::new("alice");
/// store.save_thread(&ThreadMetadata::new("thr_1"), &alice).await.unwrap();
///
/// let page = store.load_threads(PageQuery::first(20, Order::Desc), &alice).await.unwrap();
/// assert_eq!(page.data[0].id, "thr_1");
/// // Bob sees nothing of Alice's.
/// assert!(store.load_thread("thr_1", &RequestContext::new("bob")).await.is_err());
/// # drop(store);
/// # let _ = std::fs::remove_dir_all(&dir);
/// # });
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    inner: SqlStore,
    path: PathBuf,
}

impl SqliteStore {
    /// Open (or create) the store in the file at `path`, with the default settings.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        Self::builder(path).open().await
    }

    /// Settings for a store in the file at `path`.
    ///
    /// ```
    /// use chatkit_tower::chatkit::SqliteStore;
    /// use std::time::Duration;
    ///
    /// let builder = SqliteStore::builder("data/chatkit.db")
    ///     .timeout(Duration::from_secs(2))
    ///     .max_connections(2);
    /// // builder.open().await?
    /// ```
    pub fn builder(path: impl Into<PathBuf>) -> SqliteStoreBuilder {
        SqliteStoreBuilder {
            path: path.into(),
            timeout: DEFAULT_TIMEOUT,
            max_connections: 4,
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SQLite's `EXPLAIN QUERY PLAN` of each paging statement's first page, for the user's
    /// threads and the items of `thread_id`: each is one `SEARCH … USING INDEX` range over
    /// `chatkit_threads_page (owner, created_at, seq)` or `chatkit_items_page (thread_id,
    /// created_at, seq)`, never a scan or a sort. (SQLite seeks by `created_at` and skips the
    /// ties before the cursor by `seq`, a rowid that its row-value ranges do not use.)
    ///
    /// ```
    /// use chatkit_tower::chatkit::{RequestContext, SqliteStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = std::env::temp_dir().join(format!("chatkit-doc-plan-{}", std::process::id()));
    /// let store = SqliteStore::open(dir.join("chatkit.db")).await.unwrap();
    /// let plans = store.explain_paging("thr_1", &RequestContext::new("alice")).await.unwrap();
    /// assert!(plans.contains("SEARCH chatkit_threads USING INDEX chatkit_threads_page (owner=? AND created_at>?)"));
    /// assert!(plans.contains("SEARCH chatkit_items USING INDEX chatkit_items_page (thread_id=? AND created_at<?)"));
    /// assert!(!plans.contains("SCAN") && !plans.contains("TEMP B-TREE"));
    /// # drop(store);
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # });
    /// ```
    pub async fn explain_paging(
        &self,
        thread_id: &str,
        ctx: &RequestContext,
    ) -> Result<String, StoreError> {
        self.inner.explain_paging(thread_id, ctx.user_id()).await
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("timeout", &self.inner.timeout())
            .field("connections", &self.inner.pool_size())
            .finish()
    }
}

super::delegate_store!(SqliteStore);

/// Settings of a [`SqliteStore`], from [`SqliteStore::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SqliteStoreBuilder {
    path: PathBuf,
    timeout: Duration,
    max_connections: u32,
}

impl SqliteStoreBuilder {
    /// The longest a store call may take, waiting for a connection and for other writers
    /// included (default 5 s). Past it the call fails as
    /// [`Unavailable`](crate::chatkit::StoreErrorKind::Unavailable).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// At most this many connections, each with its own thread (default 4): one writer, the
    /// rest readers (with 1, the writer reads too).
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max;
        self
    }

    /// Create the folder and the file if needed, switch the file to WAL, and run the embedded
    /// migrations, all under a lock on `<file>-lock` that other instances opening the same file
    /// wait for (at most 30 s).
    ///
    /// Fails when the settings are wrong (a zero timeout or pool), when the folder or the file
    /// cannot be created or written, or when the file is not a ChatKit store of a known version.
    pub async fn open(self) -> Result<SqliteStore, StoreError> {
        if self.timeout.is_zero() || self.max_connections == 0 {
            return Err(StoreError::other(
                "a SQLite store needs a timeout above zero and at least one connection",
            ));
        }
        let path = self.path.clone();
        if path.as_os_str().is_empty() {
            return Err(StoreError::other("a SQLite store needs a file path"));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::other(format!("cannot create the folder {}: {e}", dir.display()))
                    .with_source(e)
            })?;
        }
        let _lock = lock(&lock_path(&path)).await?;

        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // SQLite gives up on another process's write lock before the store's own timeout
            // cuts the call off, so a write refused that way is known not to have happened (one
            // cut off by the timeout may still land, as with any database).
            .busy_timeout(self.timeout * 3 / 4);
        let mut first = options.connect().await.map_err(|e| open_error(&path, e))?;
        migrator([
            ("chatkit store", include_str!("migrations/sqlite.sql")),
            (
                "attachment threads",
                include_str!("migrations/sqlite_2_attachment_threads.sql"),
            ),
        ])
        .run_direct(None, &mut first, false)
        .await
        .map_err(|e| {
            StoreError::other(format!(
                "cannot set up the ChatKit tables in {}: {e}",
                path.display()
            ))
            .with_source(e)
        })?;
        let pool = SqliteConnections::new(options, self.max_connections, first);
        Ok(SqliteStore {
            inner: SqlStore::new(Pool::Sqlite(Arc::new(pool)), self.timeout, NAME),
            path,
        })
    }
}

fn open_error(path: &Path, err: sqlx::Error) -> StoreError {
    let reason = match &err {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    };
    let mapped = database_error(NAME, err);
    StoreError::new(
        mapped.kind(),
        format!("cannot open {}: {reason}", path.display()),
    )
    .with_source(mapped)
}

/// `chatkit.db` → `chatkit.db-lock`, beside SQLite's own `-wal` and `-shm` files.
fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-lock");
    PathBuf::from(name)
}

/// An exclusive OS lock on `path`, held until the file is dropped. Polled, so no thread blocks.
async fn lock(path: &Path) -> Result<File, StoreError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| {
            StoreError::other(format!("cannot create {}: {e}", path.display())).with_source(e)
        })?;
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) if started.elapsed() < OPEN_TIMEOUT => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::unavailable(format!(
                    "another process held {} for {} s",
                    path.display(),
                    OPEN_TIMEOUT.as_secs()
                )))
            }
            Err(TryLockError::Error(e)) => {
                return Err(
                    StoreError::other(format!("cannot lock {}: {e}", path.display()))
                        .with_source(e),
                )
            }
        }
    }
}
