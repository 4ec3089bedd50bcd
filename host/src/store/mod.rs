//! Persistence: the [`Store`] trait, implemented on SQLite (the embedded
//! default) and PostgreSQL (several hosts sharing the work, tenants as
//! schemas).
//!
//! The writes that move executions forward are not store methods but
//! transactions the runtime drives through the primitives of [`engine`]
//! (lock, record ends, load, apply, claim): the store keeps rows, the
//! runtime plans, and one algorithm runs on both databases.
//!
//! Queries are checked at run time (no database is needed to compile) and
//! migrations are embedded in the binary and applied on connect.

mod cursor;
pub mod engine;
mod pins;
mod postgres;
mod records;
mod sqlite;
mod transient;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::sandbox::PluginInfo;

/// The state of a step's task run: [`StepState`](crate::workflow::StepState),
/// the one step-status enum, under the name the store's records used first.
pub use crate::workflow::StepState as TaskRunStatus;
pub use cursor::{CursorError, ExecutionCursor};
pub use engine::Engine;
pub use postgres::PostgresStore;
pub use records::{
    Applied, AttemptEnd, AttemptRecord, AttemptResult, Claim, ExecutionFilter, ExecutionRecord,
    ExecutionStatus, NewExecution, NewWorkflow, Object, Plan, PluginPin, PluginPins, ScheduleFire,
    ScheduleRecord, Snapshot, StepChange, TaskRunRecord, WorkflowOwner, WorkflowRecord,
};
pub use sqlite::SqliteStore;

/// A wake-up that another runner sent through the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wakeup {
    /// Work may have become claimable.
    Work,
    /// This execution was asked to be cancelled.
    Cancel(String),
}

/// A subscription to wake-ups: see [`Store::listen`].
#[async_trait::async_trait]
pub trait Wakeups: Send {
    /// The next wake-up; `None` once the subscription has ended (the pool
    /// was closed).
    async fn next(&mut self) -> Option<Wakeup>;
}

/// The rest of closing a pool: see [`Store::close`].
pub type ClosePool = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;

/// How long a runner may be silent before [`Store::heartbeat`] forgets it
/// (10 minutes).
pub const RUNNER_FORGOTTEN_MS: i64 = 10 * 60 * 1000;

/// The default database: a SQLite file `corral.db` in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://corral.db";

/// A database error, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no supported database.
    #[error(
        "unsupported database URL `{0}`: expected sqlite://PATH (or sqlite::memory:) or postgres://USER@HOST/DATABASE"
    )]
    UnsupportedUrl(String),
    /// A tenant name is not acceptable as a PostgreSQL schema name.
    #[error(
        "invalid tenant name `{name}`: {reason} (expected lowercase ASCII letters, digits and `_`, starting with a letter or `_`, at most 63 characters)"
    )]
    InvalidTenant {
        /// The rejected name (as given).
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Tenants were asked for on a database that has none.
    #[error(
        "tenant `{tenant}` requested, but tenants need PostgreSQL (a postgres:// database URL); SQLite has one tenant per file"
    )]
    TenantsUnsupported {
        /// The requested tenant.
        tenant: String,
    },
    /// Connecting or migrating failed.
    #[error("cannot open database {url}: {source}")]
    Connect {
        /// The URL (without credentials).
        url: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// Applying the embedded migrations failed.
    #[error("cannot migrate database {url}: {source}")]
    Migrate {
        /// The URL (without credentials).
        url: String,
        /// The migrator's error.
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("database error while {doing}: {source}")]
    Query {
        /// What the store was doing.
        doing: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A stored value could not be decoded.
    #[error("corrupt {what} in the database: {reason}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// Why it could not be decoded.
        reason: String,
    },
    /// A database that must exist (see [`ConnectOptions::create`]) does not.
    #[error(
        "no database at {}: nothing has been registered or run with it yet (check --database-url or CORRAL_DATABASE_URL)",
        path.display()
    )]
    NoDatabase {
        /// The SQLite file that was looked for.
        path: std::path::PathBuf,
    },
    /// A workflow name belongs to someone who is not the one applying it.
    #[error(
        "workflow `{name}` belongs to {owner}; {by} may not replace it (a plugin may only create new workflow names and update its own)"
    )]
    WorkflowOwned {
        /// The workflow's name.
        name: String,
        /// Who owns it.
        owner: WorkflowOwner,
        /// Who tried to apply it.
        by: WorkflowOwner,
    },
    /// A plugin version cannot be removed while executions that run it
    /// have not ended.
    #[error(
        "plugin {name}@{version} is in use by {count} execution(s) that have not ended (e.g. {example}); wait for them to end or cancel them"
    )]
    PluginInUse {
        /// Plugin name.
        name: String,
        /// Plugin version.
        version: String,
        /// How many executions that have not ended run it.
        count: u64,
        /// One of them.
        example: String,
    },
    /// `name@version` is already registered with other bytes.
    #[error(
        "plugin {name}@{version} is already registered with sha256 {existing}; plugins are immutable: bump the version"
    )]
    PluginConflict {
        /// Plugin name.
        name: String,
        /// Plugin version.
        version: String,
        /// SHA-256 of the registered bytes.
        existing: String,
    },
}

/// A registered plugin, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRecord {
    /// What the plugin said about itself.
    pub info: PluginInfo,
    /// Hex SHA-256 of the component.
    pub sha256: String,
    /// Size of the component in bytes.
    pub size: u64,
    /// When it was registered (RFC 3339, UTC).
    pub added_at: String,
}

/// Whether [`Store::add_plugin`] changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// A new `name@version` was stored.
    New,
    /// The very same bytes were already registered; nothing changed.
    Unchanged,
}

/// Everything Corral keeps. Every method commits before it returns; the
/// engine's writes, which move executions forward, are transactions the
/// runtime drives (see [`Engine`]).
#[async_trait::async_trait]
pub trait Store: Engine + Send + Sync + 'static {
    /// Registers a plugin's bytes under `info.name@info.version`.
    async fn add_plugin(
        &self,
        info: &PluginInfo,
        sha256: &str,
        bytes: &[u8],
    ) -> Result<Added, StoreError> {
        self.register_plugin(info, sha256, bytes, &[], now_ms())
            .await
            .map(|(added, _)| added)
    }

    /// Registers a plugin's bytes under `info.name@info.version` and stores
    /// the workflows it ships, owned by the plugin, all in one transaction:
    /// if any part fails (another plugin's bytes under that version, a
    /// workflow name owned by someone else), nothing is stored.
    async fn register_plugin(
        &self,
        info: &PluginInfo,
        sha256: &str,
        bytes: &[u8],
        workflows: &[NewWorkflow<'_>],
        now_ms: i64,
    ) -> Result<(Added, Vec<Applied>), StoreError>;

    /// All registered plugins, by name then registration time.
    async fn list_plugins(&self) -> Result<Vec<PluginRecord>, StoreError>;

    /// The plugin `name` (its newest registration) or `name@version`, with
    /// its bytes; `None` if there is no such plugin.
    async fn plugin(&self, reference: &str) -> Result<Option<(PluginRecord, Vec<u8>)>, StoreError>;

    /// The registration a new execution of plugin `name` runs: with no
    /// `version`, the newest registered one; with one, the registration of
    /// exactly that version, else the newest whose version continues it
    /// after a `.` (`0.2` picks the newest of `0.2.0`, `0.2.7`, ...).
    /// `None` when nothing matches.
    async fn resolve_plugin(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<PluginPin>, StoreError>;

    /// Removes the registration `name@version`; `false` if there was none.
    /// Fails with [`StoreError::PluginInUse`], removing nothing, while an
    /// execution that has not ended runs it.
    async fn remove_plugin(&self, name: &str, version: &str) -> Result<bool, StoreError>;

    /// Stores a workflow version as the operator's (see
    /// [`apply_workflow_as`](Store::apply_workflow_as)).
    async fn apply_workflow(
        &self,
        name: &str,
        version: &str,
        definition: &Value,
        now_ms: i64,
    ) -> Result<Applied, StoreError> {
        let workflow = NewWorkflow {
            name,
            version,
            definition,
        };
        self.apply_workflow_as(&workflow, &WorkflowOwner::Operator, now_ms)
            .await
    }

    /// Stores a workflow version owned by `owner`; a no-op when its version
    /// is already the latest of its name and `owner` owns it. Fails with
    /// [`StoreError::WorkflowOwned`], storing nothing, when `owner` may not
    /// update the name (see [`WorkflowOwner`]).
    async fn apply_workflow_as(
        &self,
        workflow: &NewWorkflow<'_>,
        owner: &WorkflowOwner,
        now_ms: i64,
    ) -> Result<Applied, StoreError>;

    /// The workflow `name` at `version`, or its latest version.
    async fn workflow(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<WorkflowRecord>, StoreError>;

    /// The latest version of every workflow, by name.
    async fn list_workflows(&self) -> Result<Vec<WorkflowRecord>, StoreError>;

    /// Extends the lease of the task runs `runs` (`(execution id, step
    /// id)`) that `runner_id` holds to `lease_ms` past the moment the update
    /// runs (the database's clock, so time spent waiting for a lock does
    /// not eat the lease); returns the ids of the executions of any task run
    /// it holds where a cancel was requested. Only the runs listed are
    /// renewed: a run the runner holds but no longer works on (its end could
    /// not be recorded) must expire, so that another runner takes it.
    async fn renew_leases(
        &self,
        runner_id: &str,
        runs: &[(String, String)],
        lease_ms: i64,
    ) -> Result<Vec<String>, StoreError>;

    /// Records that `runner_id` (a runner that executes work) is alive at
    /// `now_ms`, forgets runners silent for [`RUNNER_FORGOTTEN_MS`], and
    /// returns how many other runners were alive at or after
    /// `alive_since_ms`.
    async fn heartbeat(
        &self,
        runner_id: &str,
        now_ms: i64,
        alive_since_ms: i64,
    ) -> Result<u64, StoreError>;

    /// The task runs `runner_id` holds claims on: `(execution id, step id)`.
    /// A runner compares them with the attempts it runs to find claims it
    /// lost (its lease expired and another runner took the step).
    async fn held_claims(&self, runner_id: &str) -> Result<Vec<(String, String)>, StoreError>;

    /// An execution with its task runs.
    async fn execution(&self, id: &str) -> Result<Option<Snapshot>, StoreError>;

    /// Executions, newest first.
    async fn list_executions(
        &self,
        filter: &ExecutionFilter,
    ) -> Result<Vec<ExecutionRecord>, StoreError>;

    /// The attempts of an execution (of one step if given), in order.
    async fn attempts(
        &self,
        execution_id: &str,
        step_id: Option<&str>,
    ) -> Result<Vec<AttemptRecord>, StoreError>;

    /// Stores a schedule by name (replacing one of the same name, keeping
    /// its anchor and paused state); `Unchanged` if the definition is the same.
    async fn put_schedule(
        &self,
        name: &str,
        workflow: &str,
        definition: &Value,
        now_ms: i64,
    ) -> Result<Applied, StoreError>;

    /// The schedule `name`.
    async fn schedule(&self, name: &str) -> Result<Option<ScheduleRecord>, StoreError>;

    /// Every schedule, by name.
    async fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError>;

    /// Pauses or resumes a schedule; `false` if there is no such schedule.
    /// Resuming moves its anchor to `now_ms`: fire times that passed while
    /// it was paused are not due (pausing is deliberate, not an outage).
    async fn set_schedule_paused(
        &self,
        name: &str,
        paused: bool,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Removes a schedule (its executions stay); `false` if there was none.
    async fn remove_schedule(&self, name: &str) -> Result<bool, StoreError>;

    /// Records one fire of a schedule and starts its execution, in one
    /// transaction, unless that fire time was recorded already (by another
    /// host, or before a restart): then nothing changes and it returns
    /// `false`. Advances the schedule's anchor to the fire time.
    async fn fire_schedule(&self, fire: &ScheduleFire, now_ms: i64) -> Result<bool, StoreError>;

    /// Whether an execution started by the schedule is still running.
    async fn schedule_running(&self, name: &str) -> Result<bool, StoreError>;

    /// Subscribes to the wake-ups other runners send when they make work
    /// claimable or cancel an execution, where the database can deliver them
    /// (PostgreSQL's `LISTEN/NOTIFY`). `None` where it cannot (SQLite): then
    /// runners poll.
    async fn listen(&self) -> Result<Option<Box<dyn Wakeups>>, StoreError> {
        Ok(None)
    }

    /// Whether the pool is closed.
    fn is_closed(&self) -> bool;

    /// Marks the pool closed at once (new queries fail) and returns a
    /// future that finishes closing its connections.
    fn close(&self) -> ClosePool;
}

/// How to open a database, beyond its URL: see [`connect_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// The tenant: a PostgreSQL schema that holds everything (created if
    /// missing). `None` is the schema `public`. SQLite has no tenants.
    pub tenant: Option<String>,
    /// What the connections call themselves (PostgreSQL's
    /// `application_name`, visible in `pg_stat_activity`). Default `corral`.
    pub application_name: String,
    /// Whether a SQLite file that does not exist is created (default
    /// true). When false, a missing file is [`StoreError::NoDatabase`]:
    /// for callers that only read, which must not leave an empty database
    /// behind.
    pub create: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            tenant: None,
            application_name: "corral".to_owned(),
            create: true,
        }
    }
}

/// Opens the database at `url`, creating and migrating it as needed, with
/// the default [`ConnectOptions`].
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    connect_with(url, &ConnectOptions::default()).await
}

/// Opens the database at `url` (`sqlite:...`, `postgres://...` or
/// `postgresql://...`), creating and migrating it (in the tenant's schema
/// on PostgreSQL) as needed.
pub async fn connect_with(
    url: &str,
    options: &ConnectOptions,
) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        if let Some(tenant) = &options.tenant {
            return Err(StoreError::TenantsUnsupported {
                tenant: tenant.clone(),
            });
        }
        Ok(Arc::new(SqliteStore::open(url, options.create).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            PostgresStore::connect(url, options.tenant.as_deref(), &options.application_name)
                .await?,
        ))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// Now, as RFC 3339 UTC with milliseconds.
pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(duration_ms)
        .unwrap_or_default()
}

/// `duration` in whole milliseconds, saturating.
pub(crate) fn duration_ms(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
