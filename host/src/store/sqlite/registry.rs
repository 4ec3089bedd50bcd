//! Plugins, workflows and schedules on SQLite: the shared implementation
//! (`store/registry_sql.rs`) over SQLite's statements (`dialect.rs`).

use super::SqliteStore;

crate::store::registry_sql::registry_sql!(
    store: SqliteStore,
    conn: sqlx::SqliteConnection,
    dialect: super::dialect,
    create: super::executions::insert_executions,
);
