//! Statements over many rows at once: a multi-row `VALUES` list, bound
//! parameter by parameter, inside one statement per chunk of rows; and
//! several such statements sent as one query.
//!
//! Each query is one round trip to the connection's worker thread (which
//! costs more than the statement itself on a small machine), so a batch of
//! attempt ends, claims or new executions costs a few round trips, not a
//! few per row, and statements with no reading in between go together.

use sqlx::query_builder::Separated;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::query_err;
use crate::store::StoreError;

/// Rows per statement: with at most 32 parameters a row, a statement stays
/// under SQLite's bound-parameter limit (32,766, per statement).
const ROWS_PER_STATEMENT: usize = 1_000;

/// Runs `head VALUES (…), (…) tail` over `rows`, `bind` pushing one row's
/// parameters (at most 32); returns every row the statements return.
///
/// For an `INSERT`, `head` names the table and columns and `tail` is empty;
/// for an `UPDATE` or `SELECT` over the rows, `head` opens a common table
/// expression (`WITH v(a, b) AS (`) and `tail` closes it and reads `v`.
pub(super) async fn rows<'a, T>(
    conn: &mut SqliteConnection,
    doing: &'static str,
    head: &str,
    rows: &'a [T],
    tail: &str,
    bind: impl FnMut(Separated<'_, 'a, Sqlite, &'static str>, &'a T),
) -> Result<Vec<SqliteRow>, StoreError> {
    let mut query = Statements::default();
    query.push(head, rows, tail, bind);
    query.run(conn, doing).await
}

/// Statements over rows (see [`rows`]), sent to SQLite as one query: sqlx
/// 0.8 runs a query of several statements one after the other, binding
/// parameters in order, and returns the rows of all of them, in order.
#[derive(Default)]
pub(super) struct Statements<'a> {
    query: Option<QueryBuilder<'a, Sqlite>>,
}

impl<'a> Statements<'a> {
    /// Adds `head VALUES (…), (…) tail` over `rows`: one statement per
    /// chunk of [`ROWS_PER_STATEMENT`], none for no rows.
    pub(super) fn push<T>(
        &mut self,
        head: &str,
        rows: &'a [T],
        tail: &str,
        mut bind: impl FnMut(Separated<'_, 'a, Sqlite, &'static str>, &'a T),
    ) {
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let query = match &mut self.query {
                Some(query) => {
                    query.push(";\n");
                    query
                }
                None => self.query.insert(QueryBuilder::new("")),
            };
            query.push(head);
            query.push_values(chunk, &mut bind);
            query.push(tail);
        }
    }

    /// Runs the statements in one round trip (none if there are none) and
    /// returns the rows they return.
    pub(super) async fn run(
        self,
        conn: &mut SqliteConnection,
        doing: &'static str,
    ) -> Result<Vec<SqliteRow>, StoreError> {
        let Some(mut query) = self.query else {
            return Ok(Vec::new());
        };
        query
            .build()
            .fetch_all(conn)
            .await
            .map_err(query_err(doing))
    }
}
