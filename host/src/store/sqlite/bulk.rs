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

/// Statements over rows, sent to SQLite as one query: sqlx 0.8 runs a
/// query of several statements one after the other, binding parameters in
/// order, and returns the rows of all of them, in order.
///
/// Each statement is `head VALUES (…), (…) tail`, `bind` pushing one row's
/// parameters (at most 32). For an `INSERT`, `head` names the table and
/// columns and `tail` is empty; for an `UPDATE` or `SELECT` over the rows,
/// `head` opens a common table expression (`WITH v(a, b) AS (`) and `tail`
/// closes it and reads `v`.
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
        bind: impl FnMut(Separated<'_, 'a, Sqlite, &'static str>, &'a T),
    ) {
        self.push_iter(head, rows, tail, bind);
    }

    /// [`push`](Self::push) over rows given by value.
    pub(super) fn push_iter<T>(
        &mut self,
        head: &str,
        rows: impl IntoIterator<Item = T>,
        tail: &str,
        mut bind: impl FnMut(Separated<'_, 'a, Sqlite, &'static str>, T),
    ) {
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let query = self.next_statement();
            query.push(head);
            query.push_values(rows.by_ref().take(ROWS_PER_STATEMENT), &mut bind);
            query.push(tail);
        }
    }

    /// Whether no statement was added.
    pub(super) fn is_empty(&self) -> bool {
        self.query.is_none()
    }

    /// The builder, ready for one more statement.
    fn next_statement(&mut self) -> &mut QueryBuilder<'a, Sqlite> {
        let first = self.query.is_none();
        let query = self.query.get_or_insert_with(|| QueryBuilder::new(""));
        if !first {
            query.push(";\n");
        }
        query
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
