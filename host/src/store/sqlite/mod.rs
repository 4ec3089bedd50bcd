//! The SQLite store: one file, WAL mode, embedded migrations.

mod bulk;
mod claim;
mod dialect;
mod engine;
mod executions;
mod hosts;
mod registry;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::str::FromStr;

use super::{ClosePool, Snapshot, Store, StoreError};

/// A [`Store`] on a SQLite file.
///
/// Writes go through one connection: SQLite admits one writer at a time,
/// and writers queued in tokio wait their turn in order, where writers
/// racing on several connections would meet `SQLITE_BUSY` and back off in
/// SQLite's busy handler (sleeps of 1 ms and more). Reads use a pool of
/// their own, which WAL mode lets run beside the writer.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The one write connection (transactions, updates).
    pool: SqlitePool,
    /// Connections for reads outside transactions; the same pool as `pool`
    /// for an in-memory database, whose connections share a cache and lock
    /// tables instead of using WAL.
    reader: SqlitePool,
}

/// Read connections beside the writer.
const READERS: u32 = 4;

impl SqliteStore {
    /// Opens (creating if missing) the SQLite database at `url`
    /// (`sqlite://PATH` or `sqlite::memory:`) and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::open(url, true).await
    }

    /// Opens the SQLite database at `url`; creates the file if it is
    /// missing only when `create` (else [`StoreError::NoDatabase`]).
    pub async fn open(url: &str, create: bool) -> Result<Self, StoreError> {
        let connect_err = |source| StoreError::Connect {
            url: url.to_owned(),
            source,
        };
        let options = SqliteConnectOptions::from_str(url).map_err(connect_err)?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !create && !in_memory && !options.get_filename().exists() {
            return Err(StoreError::NoDatabase {
                path: options.get_filename().to_owned(),
            });
        }
        let options = options
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(10));
        // No ping before each acquire: the connections are in-process, and a
        // ping is one more round trip to the connection's worker thread.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(connect_err)?;
        sqlx::migrate!("migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                url: url.to_owned(),
                source,
            })?;
        let reader = if in_memory {
            pool.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(READERS)
                .test_before_acquire(false)
                .connect_with(options)
                .await
                .map_err(connect_err)?
        };
        Ok(Self { pool, reader })
    }

    /// The write connection's pool (for tests and diagnostics).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Whether both pools are closed.
    fn pools_closed(&self) -> bool {
        self.pool.is_closed() && self.reader.is_closed()
    }

    /// The pool reads outside transactions go to.
    fn reads(&self) -> &SqlitePool {
        &self.reader
    }

    /// The one write connection, for writes of a single statement.
    fn writes(&self) -> &SqlitePool {
        &self.pool
    }

    /// An execution with its task runs, from a read connection (WAL gives
    /// each statement a consistent view; the writer commits a batch's
    /// rows together).
    async fn read_execution(&self, id: &str) -> Result<Option<Snapshot>, StoreError> {
        let mut conn = self
            .reader
            .acquire()
            .await
            .map_err(query_err("reading an execution"))?;
        Ok(engine::load_snapshots(&mut conn, &[id]).await?.remove(id))
    }

    /// A write transaction that holds the write lock from its start: a
    /// deferred one that reads first and writes later can fail with
    /// `SQLITE_BUSY` instead of waiting when another writer got in between.
    async fn begin_write(
        &self,
        doing: &'static str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(query_err(doing))
    }
}

use super::query_err;

impl Store for SqliteStore {
    fn is_closed(&self) -> bool {
        self.pools_closed()
    }

    fn close(&self) -> ClosePool {
        // Calling `Pool::close` marks the pool closed at once; nothing is
        // polled here, so this is safe to call anywhere (see PostgreSQL's).
        drop(self.pool.close());
        drop(self.reader.close());
        let (pool, reader) = (self.pool.clone(), self.reader.clone());
        Box::pin(async move {
            tokio::join!(pool.close(), reader.close());
        })
    }
}
