//! Claims: the ready task runs a runner takes, each with a lease and a new
//! attempt row, in two statements whatever the batch's size.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::executions::opt_object;
use super::{bulk, query_err};
use crate::store::pins::pins;
use crate::store::{Claim, StoreError};

const CLAIMING: &str = "claiming task runs";

/// Adds the statements of a claim to `query`; they return one row per task
/// run claimed (read them with [`claims_from`]), and no other.
///
/// The first claims the batch and returns what each claim needs (its
/// workflow version too); the second records an attempt for each run it
/// claimed, keyed by `(execution, step, attempt number)`: the runs this
/// runner holds whose attempt number has no attempt row yet. Only a claim
/// of this transaction can leave such a run: a claim numbers its attempt
/// one past the last recorded one and records it in the same transaction.
pub(super) fn push_claim(
    query: &mut bulk::Statements<'_>,
    runner_id: &str,
    max: u32,
    lease_until_ms: i64,
    now_ms: i64,
) {
    query.push_iter(
        "WITH p(runner, lease_until, now, max) AS (",
        [(runner_id.to_owned(), lease_until_ms, now_ms, i64::from(max))],
        ") UPDATE task_runs
             SET status = 'running', claimed_by = (SELECT runner FROM p),
                 lease_until = (SELECT lease_until FROM p), attempts = attempts + 1,
                 updated_at = (SELECT now FROM p),
                 attempt_number = (SELECT COALESCE(MAX(a.number), 0) + 1 FROM attempts a
                                   WHERE a.execution_id = task_runs.execution_id
                                     AND a.step_id = task_runs.step_id)
           WHERE rowid IN (SELECT rowid FROM task_runs
                           WHERE status = 'ready' AND not_before <= (SELECT now FROM p)
                           ORDER BY not_before, execution_id, step_id
                           LIMIT (SELECT max FROM p))
           RETURNING execution_id, step_id, attempts, input, attempt_number,
                     (SELECT workflow FROM executions e
                      WHERE e.id = task_runs.execution_id) AS workflow,
                     (SELECT workflow_version FROM executions e
                      WHERE e.id = task_runs.execution_id) AS workflow_version,
                     (SELECT plugins FROM executions e
                      WHERE e.id = task_runs.execution_id) AS plugins",
        |mut row, (runner, lease_until, now, max)| {
            row.push_bind(runner)
                .push_bind(lease_until)
                .push_bind(now)
                .push_bind(max);
        },
    );
    query.push_iter(
        "WITH p(runner, now) AS (",
        [(runner_id.to_owned(), now_ms)],
        ") INSERT INTO attempts (execution_id, step_id, number, runner_id, started_at)
           SELECT t.execution_id, t.step_id, t.attempt_number, p.runner, p.now
           FROM p JOIN task_runs t
             ON t.status = 'running' AND t.claimed_by = p.runner
           WHERE NOT EXISTS (SELECT 1 FROM attempts a
                             WHERE a.execution_id = t.execution_id
                               AND a.step_id = t.step_id AND a.number = t.attempt_number)",
        |mut row, (runner, now)| {
            row.push_bind(runner).push_bind(now);
        },
    );
}

/// The claims in the rows the statements of [`push_claim`] returned.
pub(super) fn claims_from(rows: &[SqliteRow]) -> Result<Vec<Claim>, StoreError> {
    let doing = CLAIMING;
    let mut claims = Vec::with_capacity(rows.len());
    for row in rows {
        let get = |name: &str| row.try_get::<String, _>(name).map_err(query_err(doing));
        let attempts: i64 = row.try_get("attempts").map_err(query_err(doing))?;
        let number: i64 = row.try_get("attempt_number").map_err(query_err(doing))?;
        let input: Option<String> = row.try_get("input").map_err(query_err(doing))?;
        claims.push(Claim {
            execution_id: get("execution_id")?,
            step_id: get("step_id")?,
            workflow: get("workflow")?,
            workflow_version: get("workflow_version")?,
            input: opt_object(input, "task run input")?.unwrap_or_default(),
            attempts: u32::try_from(attempts).unwrap_or_default(),
            number: u32::try_from(number).unwrap_or_default(),
            plugins: pins(row.try_get("plugins").map_err(query_err(doing))?)?,
        });
    }
    Ok(claims)
}
