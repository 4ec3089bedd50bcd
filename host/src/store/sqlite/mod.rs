//! The SQLite store: one file, WAL mode, embedded migrations.

mod bulk;
mod claim;
mod engine;
mod executions;
mod plugins;
mod schedules;
mod workflows;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::str::FromStr;

use super::{
    Added, Applied, AttemptRecord, ClosePool, ExecutionFilter, ExecutionRecord, NewWorkflow,
    PluginPin, PluginRecord, ScheduleFire, ScheduleRecord, Snapshot, Store, StoreError,
    WorkflowOwner, WorkflowRecord,
};
use crate::sandbox::PluginInfo;

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
}

pub(super) fn query_err(doing: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { doing, source }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn register_plugin(
        &self,
        info: &PluginInfo,
        sha256: &str,
        bytes: &[u8],
        workflows: &[NewWorkflow<'_>],
        now_ms: i64,
    ) -> Result<(Added, Vec<Applied>), StoreError> {
        SqliteStore::register_plugin(self, info, sha256, bytes, workflows, now_ms).await
    }

    async fn list_plugins(&self) -> Result<Vec<PluginRecord>, StoreError> {
        SqliteStore::list_plugins(self).await
    }

    async fn plugin(&self, reference: &str) -> Result<Option<(PluginRecord, Vec<u8>)>, StoreError> {
        SqliteStore::plugin(self, reference).await
    }

    async fn resolve_plugin(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<PluginPin>, StoreError> {
        SqliteStore::resolve_plugin(self, name, version).await
    }

    async fn remove_plugin(&self, name: &str, version: &str) -> Result<bool, StoreError> {
        SqliteStore::remove_plugin(self, name, version).await
    }

    async fn apply_workflow_as(
        &self,
        workflow: &NewWorkflow<'_>,
        owner: &WorkflowOwner,
        now_ms: i64,
    ) -> Result<Applied, StoreError> {
        SqliteStore::apply_workflow_as(self, workflow, owner, now_ms).await
    }

    async fn workflow(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<WorkflowRecord>, StoreError> {
        SqliteStore::workflow(self, name, version).await
    }

    async fn list_workflows(&self) -> Result<Vec<WorkflowRecord>, StoreError> {
        SqliteStore::list_workflows(self).await
    }

    async fn renew_leases(
        &self,
        runner_id: &str,
        runs: &[(String, String)],
        lease_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        SqliteStore::renew_leases(self, runner_id, runs, lease_ms).await
    }

    async fn heartbeat(
        &self,
        runner_id: &str,
        now_ms: i64,
        alive_since_ms: i64,
    ) -> Result<u64, StoreError> {
        SqliteStore::heartbeat(self, runner_id, now_ms, alive_since_ms).await
    }

    async fn put_schedule(
        &self,
        name: &str,
        workflow: &str,
        definition: &serde_json::Value,
        now_ms: i64,
    ) -> Result<Applied, StoreError> {
        SqliteStore::put_schedule(self, name, workflow, definition, now_ms).await
    }

    async fn schedule(&self, name: &str) -> Result<Option<ScheduleRecord>, StoreError> {
        SqliteStore::schedule(self, name).await
    }

    async fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        SqliteStore::list_schedules(self).await
    }

    async fn set_schedule_paused(
        &self,
        name: &str,
        paused: bool,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        SqliteStore::set_schedule_paused(self, name, paused, now_ms).await
    }

    async fn remove_schedule(&self, name: &str) -> Result<bool, StoreError> {
        SqliteStore::remove_schedule(self, name).await
    }

    async fn fire_schedule(&self, fire: &ScheduleFire, now_ms: i64) -> Result<bool, StoreError> {
        SqliteStore::fire_schedule(self, fire, now_ms).await
    }

    async fn schedule_running(&self, name: &str) -> Result<bool, StoreError> {
        SqliteStore::schedule_running(self, name).await
    }

    async fn held_claims(&self, runner_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query_as(
            "SELECT execution_id, step_id FROM task_runs
             WHERE claimed_by = ? AND status = 'running'",
        )
        .bind(runner_id)
        .fetch_all(&self.reader)
        .await
        .map_err(query_err("listing held claims"))
    }

    async fn execution(&self, id: &str) -> Result<Option<Snapshot>, StoreError> {
        SqliteStore::execution(self, id).await
    }

    async fn list_executions(
        &self,
        filter: &ExecutionFilter,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        SqliteStore::list_executions(self, filter).await
    }

    async fn attempts(
        &self,
        execution_id: &str,
        step_id: Option<&str>,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        SqliteStore::attempts(self, execution_id, step_id).await
    }

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
