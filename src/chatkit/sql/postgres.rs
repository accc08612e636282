//! [`PostgresStore`]: threads, items and attachment records in PostgreSQL, shared by every
//! instance of the service.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::chatkit::store::StoreError;
use crate::chatkit::RequestContext;

use super::store::{database_error, Pool, SqlStore};
use super::{migrator, DEFAULT_TIMEOUT, OPEN_TIMEOUT};

const NAME: &str = "PostgreSQL";

/// A [`Store`](crate::chatkit::Store) in PostgreSQL: one database shared by any number of
/// instances behind a load balancer (with one `CHATKIT_SESSION_SECRET`, the kit keeps no state
/// of its own). Cheap to clone; clones share the pool.
///
/// - **Bounded**: a call waits for a connection at most [`timeout`](PostgresStoreBuilder::timeout)
///   (5 s by default), and the whole call runs under the same timeout — a server that stops
///   answering mid-query (frozen, or a dead peer) would otherwise keep it waiting forever.
///   Past it the call fails as [`Unavailable`](crate::chatkit::StoreErrorKind::Unavailable):
///   `503 STORE_UNAVAILABLE`. The server's `statement_timeout` is set to the same value, so
///   it stops work nobody waits for.
/// - **Self-healing**: connections are checked before use and replaced when the server has
///   restarted; the first call after the server is back succeeds, no restart of the service.
/// - **Safe to start many at once**: the embedded migrations run under PostgreSQL's advisory
///   lock, on a connection of their own that is closed afterwards — a failed migration cannot
///   leave the lock held by a pooled connection (sqlx 0.9 returns without unlocking).
///   Migrations are recorded in `_chatkit_migrations`, apart from an application's own
///   `_sqlx_migrations`.
///
/// Same semantics as [`InMemoryStore`](crate::chatkit::InMemoryStore), checked by one
/// conformance suite. TLS (`sslmode=require`, …) goes through rustls with the `ring` provider
/// and Mozilla's roots.
///
/// ```no_run
/// use chatkit_tower::chatkit::{ChatKitService, EchoAssistant, PostgresStore};
/// use std::time::Duration;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PostgresStore::builder("postgres://chatkit:secret@db.internal/chatkit")
///     .timeout(Duration::from_secs(3))
///     .connect()
///     .await?;
/// let chatkit = ChatKitService::builder(EchoAssistant::default(), store).build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    inner: SqlStore,
}

impl PostgresStore {
    /// Connect to the database at `url` (`postgres://user:password@host:port/database`, with
    /// the usual query parameters such as `sslmode`) with the default settings, and migrate it.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// Settings for a store in the database at `url`.
    ///
    /// ```
    /// use chatkit_tower::chatkit::PostgresStore;
    /// use std::time::Duration;
    ///
    /// let builder = PostgresStore::builder("postgres://chatkit@localhost/chatkit")
    ///     .timeout(Duration::from_secs(2))
    ///     .max_connections(20);
    /// // builder.connect().await?
    /// ```
    pub fn builder(url: impl Into<String>) -> PostgresStoreBuilder {
        PostgresStoreBuilder {
            url: url.into(),
            timeout: DEFAULT_TIMEOUT,
            max_connections: 10,
        }
    }

    /// PostgreSQL's `EXPLAIN` of each paging statement's first page, for the user's threads
    /// and the items of `thread_id`. Plans follow the data and its statistics: for a busy user
    /// or a long thread, each is one `Index Scan` (`Backward` for newest first) on
    /// `chatkit_threads_page` or `chatkit_items_page` whose `Index Cond` holds the row
    /// comparison `ROW(created_at, seq) > ROW(…)`, stopped by the `LIMIT`; for a user with a
    /// few dozen threads PostgreSQL may prefer a bitmap scan of the same index range and sort
    /// those few rows. Never a scan of the table.
    pub async fn explain_paging(
        &self,
        thread_id: &str,
        ctx: &RequestContext,
    ) -> Result<String, StoreError> {
        self.inner.explain_paging(thread_id, ctx.user_id()).await
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("timeout", &self.inner.timeout())
            .field("connections", &self.inner.pool_size())
            .finish_non_exhaustive()
    }
}

super::delegate_store!(PostgresStore);

/// Settings of a [`PostgresStore`], from [`PostgresStore::builder`]. `Debug` hides the URL.
#[derive(Clone)]
#[must_use]
pub struct PostgresStoreBuilder {
    url: String,
    timeout: Duration,
    max_connections: u32,
}

impl fmt::Debug for PostgresStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStoreBuilder")
            .field("timeout", &self.timeout)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl PostgresStoreBuilder {
    /// The longest a store call may take, the wait for a connection included (default 5 s).
    /// Past it the call fails as [`Unavailable`](crate::chatkit::StoreErrorKind::Unavailable).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// At most this many connections per instance (default 10).
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max;
        self
    }

    /// Connect, run the embedded migrations (waiting at most 30 s for another instance that
    /// migrates at the same time), and open the pool.
    ///
    /// Fails when the URL is not a PostgreSQL URL, when the server cannot be reached within
    /// the timeout ([`Unavailable`](crate::chatkit::StoreErrorKind::Unavailable)), refuses the
    /// credentials, or has no such database.
    pub async fn connect(self) -> Result<PostgresStore, StoreError> {
        if self.timeout.is_zero() || self.max_connections == 0 {
            return Err(StoreError::other(
                "a PostgreSQL store needs a timeout above zero and at least one connection",
            ));
        }
        let options = PgConnectOptions::from_str(&self.url)
            .map_err(|e| StoreError::other("not a PostgreSQL URL").with_source(e))?
            .application_name("chatkit-tower");

        // Migrate on a pool of one connection, closed right after: the advisory lock ends with
        // its session (sqlx 0.9 returns without unlocking when a migration fails).
        let migration = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(self.timeout)
            .connect_with(options.clone())
            .await
            .map_err(connect_error)?;
        let migrated = tokio::time::timeout(
            OPEN_TIMEOUT,
            migrator([
                ("chatkit store", include_str!("migrations/postgres.sql")),
                (
                    "attachment threads",
                    include_str!("migrations/postgres_2_attachment_threads.sql"),
                ),
            ])
            .run(&migration),
        )
        .await;
        let _ = tokio::time::timeout(self.timeout, migration.close()).await;
        match migrated {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(
                    StoreError::other(format!("cannot set up the ChatKit tables: {e}"))
                        .with_source(e),
                )
            }
            Err(_) => {
                return Err(StoreError::unavailable(format!(
                    "the ChatKit tables were not set up within {} s (another instance holds \
                     the migration lock?)",
                    OPEN_TIMEOUT.as_secs()
                )))
            }
        }

        let statement_timeout = format!("{}ms", self.timeout.as_millis());
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .min_connections(0)
            .acquire_timeout(self.timeout)
            .test_before_acquire(true)
            .connect_with(options.options([("statement_timeout", statement_timeout)]))
            .await
            .map_err(connect_error)?;
        Ok(PostgresStore {
            inner: SqlStore::new(Pool::Postgres(pool), self.timeout, NAME),
        })
    }
}

/// A connection error in words a person can act on (the server's own message, never the URL).
fn connect_error(err: sqlx::Error) -> StoreError {
    let reason = match &err {
        sqlx::Error::PoolTimedOut => "the server did not accept a connection in time".to_owned(),
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    };
    let mapped = database_error(NAME, err);
    StoreError::new(
        mapped.kind(),
        format!("cannot connect to PostgreSQL: {reason}"),
    )
    .with_source(mapped)
}
