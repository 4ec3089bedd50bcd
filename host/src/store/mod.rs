//! Persistence: one [`Store`] trait, implemented on SQLite (the embedded
//! default) and, later, PostgreSQL.
//!
//! Queries are checked at run time (no database is needed to compile) and
//! migrations are embedded in the binary and applied on connect.

mod sqlite;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::sandbox::PluginInfo;

pub use sqlite::SqliteStore;

/// The default database: a SQLite file `corral.db` in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://corral.db";

/// A database error, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no supported database.
    #[error("unsupported database URL `{0}`: expected sqlite://PATH (or sqlite::memory:)")]
    UnsupportedUrl(String),
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

/// Everything Corral keeps. Every method commits before it returns.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Registers a plugin's bytes under `info.name@info.version`.
    async fn add_plugin(
        &self,
        info: &PluginInfo,
        sha256: &str,
        bytes: &[u8],
    ) -> Result<Added, StoreError>;

    /// All registered plugins, by name then registration time.
    async fn list_plugins(&self) -> Result<Vec<PluginRecord>, StoreError>;

    /// The plugin `name` (its newest registration) or `name@version`, with
    /// its bytes; `None` if there is no such plugin.
    async fn plugin(&self, reference: &str) -> Result<Option<(PluginRecord, Vec<u8>)>, StoreError>;

    /// Closes the connection pool; later calls fail. Idempotent.
    async fn close(&self);
}

/// Opens the database at `url`, creating and migrating it as needed.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// Now, as RFC 3339 UTC with milliseconds.
pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
