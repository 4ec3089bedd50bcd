//! Persistence: the [`Store`] traits, implemented on SQLite (the embedded
//! default) and PostgreSQL (several hosts sharing the work, tenants as
//! schemas), split by what uses them: the registry ([`Plugins`],
//! [`Workflows`]), [`Schedules`], [`Reads`], [`Hosts`] and the [`Engine`].
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
mod hosts;
mod ids;
mod pins;
mod postgres;
mod reads;
mod records;
mod registry;
mod registry_sql;
mod rows;
mod schedules;
mod sqlite;
mod transient;

use std::sync::Arc;

/// The state of a step's task run: [`StepState`](crate::workflow::StepState),
/// the one step-status enum, under the name the store's records used first.
pub use crate::workflow::StepState as TaskRunStatus;
pub use cursor::{CursorError, ExecutionCursor};
pub use engine::Engine;
pub use hosts::{Hosts, RUNNER_FORGOTTEN_MS, Wakeup, Wakeups};
pub use ids::{ExecutionId, RunKey};
pub use postgres::PostgresStore;
pub use reads::Reads;
pub use records::{
    Applied, AttemptEnd, AttemptRecord, AttemptResult, Claim, ExecutionFilter, ExecutionRecord,
    ExecutionStatus, NewExecution, NewWorkflow, Object, Plan, PluginPin, PluginPins, ScheduleFire,
    ScheduleRecord, Snapshot, StepChange, TaskRunRecord, WorkflowOwner, WorkflowRecord,
};
pub use registry::{Added, PluginRecord, Plugins, Workflows};
pub use schedules::Schedules;
pub use sqlite::SqliteStore;

/// The rest of closing a pool: see [`Store::close`].
pub type ClosePool = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;

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

/// Everything Corral keeps, split by what uses it: the registry
/// ([`Plugins`], [`Workflows`]), [`Schedules`], [`Reads`] of executions,
/// [`Hosts`]' leases and wake-ups, and the [`Engine`]'s transactions that
/// move executions forward. A `dyn Store` offers every method of them; a backend implements each
/// trait in the file of its concern (`sqlite/hosts.rs`, ...; plugins,
/// workflows and schedules once for both, in `registry_sql.rs`).
pub trait Store:
    Plugins + Workflows + Schedules + Reads + Hosts + Engine + Send + Sync + 'static
{
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

/// Wraps a driver error as [`StoreError::Query`] with what was being done:
/// `.map_err(query_err("listing plugins"))`.
pub(crate) fn query_err(doing: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { doing, source }
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
