//! Plugins, workflows and schedules on PostgreSQL: the shared
//! implementation (`store/registry_sql.rs`) over PostgreSQL's statements
//! (`dialect.rs`).

use super::PostgresStore;

crate::store::registry_sql::registry_sql!(
    store: PostgresStore,
    conn: sqlx::PgConnection,
    dialect: super::dialect,
    create: super::engine::create_and_wake,
);
