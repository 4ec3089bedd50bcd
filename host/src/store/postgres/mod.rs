//! The PostgreSQL store: several hosts share one database, each tenant in
//! its own schema, embedded migrations applied in that schema on connect.
//!
//! # Concurrency
//!
//! Transactions run at `READ COMMITTED`. What SQLite gets from its single
//! writer, this store gets from row locks taken in one global order, so
//! that two transactions never wait on each other in a cycle:
//!
//! 1. `executions` rows, by `id`;
//! 2. `task_runs` rows, by `(execution_id, step_id)`;
//! 3. `attempts` rows.
//!
//! Every engine transaction that re-plans executions (attempt ends, a
//! cancel, the reaper; see [`super::engine`]) first locks the execution
//! rows, then all their task runs, and only then reads the snapshots the
//! runtime plans on: two runners finishing sibling steps serialize, and a
//! claim cannot slip in between the snapshot and the plan. A claim takes
//! ready task runs with `FOR UPDATE SKIP LOCKED`, so it never waits and two
//! claimers never get the same run. `renew_leases` locks its runs in key
//! order. A transaction aborted as a deadlock victim or a serialization
//! failure is [`StoreError::is_conflict`]: the runtime tries it again.
//!
//! Guest-produced text (stdout, stderr, error messages) is stored with NUL
//! characters replaced by U+FFFD: PostgreSQL `TEXT` cannot hold NUL.
//!
//! # Wake-ups
//!
//! Hosts wake each other with `LISTEN/NOTIFY` on one channel per schema: a
//! `pg_notify` inside the transaction that made work claimable (or asked for
//! a cancel) is delivered when it commits. Runners still poll slowly, in
//! case a notification is lost with a connection.

mod dialect;
mod engine;
mod hosts;
mod registry;

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use super::{ClosePool, Snapshot, Store, StoreError};

/// Most connections one store opens.
const MAX_CONNECTIONS: u32 = 8;

/// The schema used without a tenant.
const DEFAULT_SCHEMA: &str = "public";

/// How long closing waits for connections still in use to come back.
const CLOSE_STRAGGLERS: Duration = Duration::from_secs(5);

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Creates the schema `quoted` unless it exists.
async fn create_schema(conn: &mut PgConnection, quoted: &str) -> Result<(), sqlx::Error> {
    match sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {quoted}"))
        .execute(&mut *conn)
        .await
    {
        // Two hosts creating the schema at once: one of them loses the race
        // on the catalog's unique index, and the schema exists.
        Err(source) if !has_sql_state(&source, &["23505"]) => Err(source),
        _ => Ok(()),
    }
}

/// A [`Store`] on a PostgreSQL database, in one schema (the tenant's).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    schema: String,
}

impl PostgresStore {
    /// The pool reads go to (the one pool).
    fn reads(&self) -> &PgPool {
        &self.pool
    }

    /// The pool single-statement writes go to (the one pool).
    fn writes(&self) -> &PgPool {
        &self.pool
    }

    /// An execution with its task runs, read in one snapshot (a
    /// `REPEATABLE READ` read-only transaction).
    async fn read_execution(&self, id: &str) -> Result<Option<Snapshot>, StoreError> {
        let doing = "reading an execution";
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(query_err(doing))?;
        let snapshot = engine::load_snapshots(&mut tx, &[id]).await?.remove(id);
        tx.commit().await.map_err(query_err(doing))?;
        Ok(snapshot)
    }

    /// A transaction at the server's default isolation (`READ COMMITTED`).
    async fn begin_write(
        &self,
        doing: &'static str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        self.pool.begin().await.map_err(query_err(doing))
    }
}

impl PostgresStore {
    /// Connects to the PostgreSQL database at `url`
    /// (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`), in the schema
    /// `schema` (the tenant; created if missing) or `public`, and applies
    /// the migrations there. Every connection sets `search_path` to that
    /// schema alone and calls itself `application_name`.
    ///
    /// The schema name is validated before anything is sent to the server:
    /// see [`Self::validate_tenant`].
    pub async fn connect(
        url: &str,
        schema: Option<&str>,
        application_name: &str,
    ) -> Result<Self, StoreError> {
        let schema = match schema {
            Some(name) => {
                Self::validate_tenant(name)?;
                name
            }
            None => DEFAULT_SCHEMA,
        };
        let shown = redact(url);
        let connect_err = |source| StoreError::Connect {
            url: shown.clone(),
            source,
        };
        let quoted = quote_ident(schema);
        let options = PgConnectOptions::from_str(url)
            .map_err(connect_err)?
            .application_name(application_name)
            .options([("search_path", quoted.as_str())]);
        // Set up on one connection of its own: a server that cannot be
        // reached fails here at once, with the driver's reason.
        let mut setup = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .unwrap_or_else(|_| {
                Err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {CONNECT_TIMEOUT:?}"),
                )))
            })
            .map_err(connect_err)?;
        let created = if schema == DEFAULT_SCHEMA {
            Ok(())
        } else {
            create_schema(&mut setup, &quoted).await
        };
        // Closing is a courtesy to the server; the connection is gone anyway.
        let _ = setup.close().await;
        created.map_err(connect_err)?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_lazy_with(options);
        if let Err(source) = sqlx::migrate!("migrations/postgres").run(&pool).await {
            pool.close().await;
            return Err(StoreError::Migrate { url: shown, source });
        }
        Ok(Self {
            pool,
            schema: schema.to_owned(),
        })
    }

    /// Checks that `name` is acceptable as a tenant, i.e. as a PostgreSQL
    /// schema name: `^[a-z_][a-z0-9_]{0,62}$`, and not one that PostgreSQL
    /// reserves (`pg_*`, `information_schema`).
    pub fn validate_tenant(name: &str) -> Result<(), StoreError> {
        let invalid = |reason| {
            Err(StoreError::InvalidTenant {
                name: name.to_owned(),
                reason,
            })
        };
        let mut chars = name.chars();
        match chars.next() {
            None => return invalid("it is empty"),
            Some(c) if c.is_ascii_lowercase() || c == '_' => {}
            Some(_) => return invalid("it must start with a lowercase letter or `_`"),
        }
        if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return invalid("it may only hold lowercase ASCII letters, digits and `_`");
        }
        if name.len() > 63 {
            return invalid("it is longer than 63 characters");
        }
        if name.starts_with("pg_") || name == "information_schema" {
            return invalid("PostgreSQL reserves it");
        }
        Ok(())
    }

    /// The connection pool (for tests and diagnostics).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The schema everything lives in: the tenant, or `public`.
    pub fn schema(&self) -> &str {
        &self.schema
    }
}

/// `name` as a quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `url` without its password.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Whether `error` is a database error with one of these SQLSTATEs.
fn has_sql_state(error: &sqlx::Error, states: &[&str]) -> bool {
    match error {
        sqlx::Error::Database(e) => e.code().is_some_and(|code| states.contains(&&*code)),
        _ => false,
    }
}

/// Guest-produced text, made storable: `TEXT` cannot hold NUL.
fn text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

use super::query_err;

impl Store for PostgresStore {
    fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    fn close(&self) -> ClosePool {
        // Calling `Pool::close` marks the pool closed at once; the future it
        // returns only closes connections. Nothing is polled here, so this
        // is safe to call anywhere: in a `Drop`, outside any runtime, on a
        // runtime that is shutting down (a timer there would panic).
        drop(self.pool.close());
        let pool = self.pool.clone();
        Box::pin(async move {
            pool.close().await;
            // sqlx 0.8's `close` can finish while a connection is still on
            // its way back to the pool (pinging it before it goes idle):
            // that one would stay open, idle, as long as the pool lives.
            // Close again until no connection is left.
            let deadline = tokio::time::Instant::now() + CLOSE_STRAGGLERS;
            while pool.size() > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
                pool.close().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names() {
        for good in ["a", "_", "tenant_1", "acme", &"a".repeat(63)] {
            assert!(PostgresStore::validate_tenant(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "Acme",
            "a-b",
            "a b",
            "public; DROP TABLE x",
            "a\"b",
            "é",
            "pg_catalog",
            "information_schema",
            &"a".repeat(64),
        ] {
            assert!(
                matches!(
                    PostgresStore::validate_tenant(bad),
                    Err(StoreError::InvalidTenant { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("acme"), "\"acme\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn nul_is_replaced() {
        assert_eq!(text("a\0b"), "a\u{FFFD}b");
        assert!(matches!(text("ab"), Cow::Borrowed("ab")));
    }
}
