//! Statements over many rows at once: a multi-row `VALUES` list, bound
//! parameter by parameter, inside one statement per chunk of rows.
//!
//! Each statement is one round trip to the connection's worker thread, so
//! a batch of attempt ends, claims or new executions costs a few
//! statements, not a few per row.

use sqlx::query_builder::Separated;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::query_err;
use crate::store::StoreError;

/// Rows per statement: with at most 32 parameters a row, a statement stays
/// under SQLite's bound-parameter limit (32,766).
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
    mut bind: impl FnMut(Separated<'_, 'a, Sqlite, &'static str>, &'a T),
) -> Result<Vec<SqliteRow>, StoreError> {
    let mut returned = Vec::new();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut statement = QueryBuilder::<Sqlite>::new(head);
        statement.push_values(chunk, &mut bind);
        statement.push(tail);
        returned.extend(
            statement
                .build()
                .fetch_all(&mut *conn)
                .await
                .map_err(query_err(doing))?,
        );
    }
    Ok(returned)
}
