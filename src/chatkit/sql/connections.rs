//! [`SqliteConnections`]: the SQLite store's own small pool, one writer and a few readers.
//!
//! Why not sqlx's `Pool`: it pings every connection it takes back (a round trip to the
//! connection's worker thread, in a spawned task), which for an embedded database doubles the
//! cost of a statement — measured here, a one-row `SELECT` costs 3× the CPU through
//! `SqlitePool` of what it costs on a held connection, an `INSERT` 4×. The ping guards against a
//! connection left mid-protocol by a cancelled call; a SQLite connection cannot be, since each
//! command reaches its worker thread whole, but this pool still closes a connection whose call
//! did not finish (cancelled, timed out, or failed other than by a database error) instead of
//! handing it out again.
//!
//! Why one writer: SQLite lets one connection write at a time, and a connection that finds the
//! file locked polls with sleeps of 1 ms and more (its busy handler). Writes of this process
//! queue for the one writer connection instead, in order, without polling; the busy timeout is
//! left for writers in other processes. Reads never wait for writes (WAL).

use std::sync::Mutex;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::ConnectOptions;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::store::Access;

/// At most `max` SQLite connections — one for writes, the rest for reads — opened when first
/// needed and kept open.
pub(super) struct SqliteConnections {
    options: SqliteConnectOptions,
    writer: Lane,
    /// `None` with a single connection: the writer reads too.
    readers: Option<Lane>,
}

/// Connections of one kind: `permits` bounds how many are open, `idle` holds those not in use.
struct Lane {
    idle: Mutex<Vec<SqliteConnection>>,
    permits: Semaphore,
    max: u32,
}

impl Lane {
    fn new(max: u32, idle: Vec<SqliteConnection>) -> Self {
        Self {
            idle: Mutex::new(idle),
            permits: Semaphore::new(max as usize),
            max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SqliteConnection>> {
        // The list is only pushed and popped: a panic elsewhere cannot leave it inconsistent.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self) -> u32 {
        let in_use = self.max - self.permits.available_permits() as u32;
        in_use + self.lock().len() as u32
    }
}

impl SqliteConnections {
    /// A pool of at most `max` connections (at least one), `first` being the writer.
    pub(super) fn new(options: SqliteConnectOptions, max: u32, first: SqliteConnection) -> Self {
        Self {
            options,
            writer: Lane::new(1, vec![first]),
            readers: (max > 1).then(|| Lane::new(max - 1, Vec::new())),
        }
    }

    /// A connection to use alone — the writer for a write, else a reader: an idle one, or a
    /// new one while the lane has fewer than its share open. Waits for one to come back
    /// otherwise (the store's timeout bounds the wait).
    pub(super) async fn acquire(&self, access: Access) -> Result<Held<'_>, sqlx::Error> {
        let lane = match &self.readers {
            Some(readers) if access == Access::Read => readers,
            _ => &self.writer,
        };
        let permit = lane
            .permits
            .acquire()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = lane.lock().pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.options.connect().await?,
        };
        Ok(Held {
            lane,
            conn,
            _permit: permit,
        })
    }

    /// Connections open now.
    pub(super) fn size(&self) -> u32 {
        self.writer.open() + self.readers.as_ref().map_or(0, Lane::open)
    }
}

/// A connection taken from [`SqliteConnections`]. Dropped without [`finish`](Self::finish) (the
/// call was cancelled or timed out), its connection is closed rather than reused.
pub(super) struct Held<'a> {
    lane: &'a Lane,
    conn: SqliteConnection,
    _permit: SemaphorePermit<'a>,
}

impl Held<'_> {
    pub(super) fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }

    /// Give the connection back after its call ended with `result`: kept unless the
    /// connection itself failed (a database error, such as a constraint or a busy file, leaves
    /// it usable).
    pub(super) fn finish<T>(self, result: &Result<T, sqlx::Error>) {
        let usable = match result {
            Ok(_) => true,
            Err(err) => !matches!(
                err,
                sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed
            ),
        };
        // The permit goes back after the connection does, so a waiter finds it idle.
        let Held {
            lane,
            conn,
            _permit,
        } = self;
        if usable {
            lane.lock().push(conn);
        }
    }
}
