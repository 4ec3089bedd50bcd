//! Claims: the ready task runs a runner takes, each with a lease and a new
//! attempt row, in two statements whatever the batch's size, sent in one
//! round trip.

use sqlx::sqlite::SqliteRow;

use super::bulk;
use crate::store::rows::claim_record;
use crate::store::{Claim, StoreError};

const CLAIMING: &str = "claiming task runs";

/// The ready task runs a claim takes: a deterministic choice (the order
/// has a unique tie-break), so both statements of a claim, run one after
/// the other under the transaction's write lock, pick the same runs.
macro_rules! picked {
    () => {
        "SELECT rowid FROM task_runs
         WHERE status = 'ready' AND not_before <= (SELECT now FROM p)
         ORDER BY not_before, execution_id, step_id
         LIMIT (SELECT max FROM p)"
    };
}

/// Adds the statements of a claim to `query`; they return one row per task
/// run claimed (read them with [`claims_from`]), and no other.
///
/// The first records an attempt for each run to be claimed, numbered one
/// past the step's last; the second claims those very runs (see
/// [`picked!`]), takes the number of the attempt just recorded, and
/// returns what each claim needs (its workflow version too).
pub(super) fn push_claim(
    query: &mut bulk::Statements<'_>,
    runner_id: &str,
    max: u32,
    lease_until_ms: i64,
    now_ms: i64,
) {
    let params = || [(runner_id.to_owned(), lease_until_ms, now_ms, i64::from(max))];
    let bind = |mut row: sqlx::query_builder::Separated<'_, '_, sqlx::Sqlite, &'static str>,
                (runner, lease_until, now, max): (String, i64, i64, i64)| {
        row.push_bind(runner)
            .push_bind(lease_until)
            .push_bind(now)
            .push_bind(max);
    };
    query.push_iter(
        "WITH p(runner, lease_until, now, max) AS (",
        params(),
        concat!(
            ") INSERT INTO attempts (execution_id, step_id, number, runner_id, started_at)
               SELECT t.execution_id, t.step_id,
                      (SELECT COALESCE(MAX(a.number), 0) + 1 FROM attempts a
                       WHERE a.execution_id = t.execution_id AND a.step_id = t.step_id),
                      (SELECT runner FROM p), (SELECT now FROM p)
               FROM task_runs t WHERE t.rowid IN (",
            picked!(),
            ")"
        ),
        bind,
    );
    query.push_iter(
        "WITH p(runner, lease_until, now, max) AS (",
        params(),
        concat!(
            ") UPDATE task_runs
                 SET status = 'running', claimed_by = (SELECT runner FROM p),
                     lease_until = (SELECT lease_until FROM p), attempts = attempts + 1,
                     updated_at = (SELECT now FROM p),
                     attempt_number = (SELECT MAX(a.number) FROM attempts a
                                       WHERE a.execution_id = task_runs.execution_id
                                         AND a.step_id = task_runs.step_id)
               WHERE rowid IN (",
            picked!(),
            ")
               RETURNING execution_id, step_id, attempts, input, attempt_number AS number,
                         (SELECT workflow FROM executions e
                          WHERE e.id = task_runs.execution_id) AS workflow,
                         (SELECT workflow_version FROM executions e
                          WHERE e.id = task_runs.execution_id) AS workflow_version,
                         (SELECT plugins FROM executions e
                          WHERE e.id = task_runs.execution_id) AS plugins"
        ),
        bind,
    );
}

/// The claims in the rows the statements of [`push_claim`] returned.
pub(super) fn claims_from(rows: &[SqliteRow]) -> Result<Vec<Claim>, StoreError> {
    rows.iter().map(|row| claim_record(row, CLAIMING)).collect()
}
