//! Statements over many rows at once: a multi-row `VALUES` list, bound
//! parameter by parameter, inside one statement per chunk of rows.
//!
//! Each query is one round trip to the connection's worker thread (which
//! costs more than the statement itself on a small machine), so a batch of
//! attempt ends, claims or new executions costs a few round trips, not a
//! few per row, and statements over the same rows go together.

use sqlx::query_builder::Separated;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::query_err;
use crate::store::StoreError;

/// Rows per statement: with at most 32 parameters a row, a statement stays
/// under SQLite's bound-parameter limit (32,766, per statement).
const ROWS_PER_STATEMENT: usize = 1_000;

/// Runs `head VALUES (…), (…) tail` over `rows`, one statement per chunk of
/// [`ROWS_PER_STATEMENT`], `bind` pushing one row's parameters (at most
/// 32); returns every row the statements return.
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
    statements(conn, doing, &[(head, tail)], rows, bind).await
}

/// [`rows`] for several statements over the same rows, sent together: each
/// `(head, tail)` of `parts` makes one statement, in order, and the
/// statements of a chunk go to SQLite in one round trip (sqlx 0.8 runs a
/// query of several statements one after the other, binding parameters in
/// order). Returns the rows of all of them, in order.
pub(super) async fn statements<'a, T>(
    conn: &mut SqliteConnection,
    doing: &'static str,
    parts: &[(&str, &str)],
    rows: &'a [T],
    mut bind: impl FnMut(Separated<'_, 'a, Sqlite, &'static str>, &'a T),
) -> Result<Vec<SqliteRow>, StoreError> {
    let mut returned = Vec::new();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut query = QueryBuilder::<Sqlite>::new("");
        for (i, (head, tail)) in parts.iter().enumerate() {
            if i > 0 {
                query.push(";\n");
            }
            query.push(*head);
            query.push_values(chunk, &mut bind);
            query.push(*tail);
        }
        returned.extend(
            query
                .build()
                .fetch_all(&mut *conn)
                .await
                .map_err(query_err(doing))?,
        );
    }
    Ok(returned)
}
