//! Recording a batch of attempt ends and re-planning their executions, in
//! a handful of statements whatever the batch's size: the task runs, the
//! attempts, then one re-plan of each execution touched.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sqlx::query_builder::Separated;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, SqliteConnection};

use super::executions::Tail;
use super::replan::{self, Replan};
use super::{bulk, query_err};
use crate::store::records::RunAfterEnd;
use crate::store::{Finish, Snapshot, StoreError};

/// An attempt end with its task run's row after it.
struct EndRow<'a> {
    finish: &'a Finish<'a>,
    run: RunAfterEnd<'a>,
}

impl<'a> EndRow<'a> {
    fn new(finish: &'a Finish<'a>) -> Self {
        Self {
            finish,
            run: finish.end.run_after(finish.now_ms),
        }
    }

    /// Identifies the claim the end belongs to.
    fn key(&self) -> (&'a str, &'a str, i64) {
        let claim = &self.finish.end.claim;
        (
            claim.execution_id.as_str(),
            claim.step_id.as_str(),
            i64::from(claim.number),
        )
    }
}

/// Records `batch` inside the caller's transaction (see
/// [`Store::finish_attempts`](crate::store::Store::finish_attempts)), then
/// writes `tail` in the round trip of the re-plan's writes; returns the
/// executions after and the rows `tail` returned.
pub(super) async fn finish_attempts(
    conn: &mut SqliteConnection,
    batch: &[Finish<'_>],
    tail: Tail<'_>,
) -> Result<(Vec<Option<Arc<Snapshot>>>, Vec<SqliteRow>), StoreError> {
    let doing = "recording attempts";
    let ends: Vec<EndRow<'_>> = batch.iter().map(EndRow::new).collect();
    let logs: Vec<String> = ends
        .iter()
        .map(|end| end.finish.end.logs.to_string())
        .collect();
    let attempts: Vec<(&EndRow<'_>, &String)> = ends.iter().zip(&logs).collect();
    // Both guarded by the claim (the attempt first, while its task run is
    // still as claimed): a runner whose lease expired and whose task run
    // went to another runner changes nothing. One round trip for both.
    macro_rules! claim_held {
        () => {
            "task_runs.execution_id = v.e AND task_runs.step_id = v.s
             AND task_runs.status = 'running' AND task_runs.claimed_by = v.runner
             AND task_runs.attempt_number = v.n"
        };
    }
    let mut query = bulk::Statements::default();
    query.push(
        "WITH v(e, s, n, runner, now, outcome, error, logs, stdout, stderr) AS (",
        &attempts,
        concat!(
            ") UPDATE attempts
               SET finished_at = v.now, outcome = v.outcome, error = v.error, logs = v.logs,
                   stdout = v.stdout, stderr = v.stderr
               FROM v
               WHERE attempts.execution_id = v.e AND attempts.step_id = v.s
                 AND attempts.number = v.n
                 AND EXISTS (SELECT 1 FROM task_runs WHERE ",
            claim_held!(),
            ")"
        ),
        bind_attempt,
    );
    query.push(
        "WITH v(e, s, n, runner, status, output, error, not_before, uncount, now) AS (",
        &ends,
        concat!(
            ") UPDATE task_runs
               SET status = v.status, output = v.output,
                   error = COALESCE(v.error, task_runs.error), not_before = v.not_before,
                   attempts = task_runs.attempts - v.uncount,
                   claimed_by = NULL, lease_until = NULL, updated_at = v.now
               FROM v
               WHERE ",
            claim_held!(),
            " RETURNING task_runs.execution_id, task_runs.step_id, task_runs.attempt_number"
        ),
        bind_run,
    );
    let rows = query.run(conn, doing).await?;
    // Keys borrowed from the rows: no copy per end to look one up.
    let mut keys = HashSet::with_capacity(rows.len());
    for row in &rows {
        let execution_id: &str = row.try_get("execution_id").map_err(query_err(doing))?;
        let step_id: &str = row.try_get("step_id").map_err(query_err(doing))?;
        let number: i64 = row.try_get("attempt_number").map_err(query_err(doing))?;
        keys.insert((execution_id, step_id, number));
    }
    let is_recorded: Vec<bool> = ends.iter().map(|end| keys.contains(&end.key())).collect();
    let replans: Vec<Replan<'_>> = ends
        .iter()
        .zip(&is_recorded)
        .filter(|(_, recorded)| **recorded)
        .map(|(end, _)| Replan {
            id: &end.finish.end.claim.execution_id,
            now_ms: end.finish.now_ms,
            planner: end.finish.planner,
        })
        .collect();
    // One snapshot per execution, shared by its ends: a wide execution's
    // ends (a shutdown interrupting hundreds of its steps) are not each
    // handed a copy of every step.
    let (after, tail_rows) = replan::replan(conn, &replans, tail).await?;
    let after: HashMap<String, Arc<Snapshot>> = after
        .into_iter()
        .map(|(id, snapshot)| (id, Arc::new(snapshot)))
        .collect();
    let finished = ends
        .iter()
        .zip(is_recorded)
        .map(|(end, recorded)| recorded.then(|| after.get(end.key().0).cloned()).flatten())
        .collect();
    Ok((finished, tail_rows))
}

/// Binds an end's claim key and runner: the first columns of both updates.
fn bind_claim<'a>(row: &mut Separated<'_, 'a, Sqlite, &'static str>, end: &'a EndRow<'_>) {
    let (execution_id, step_id, number) = end.key();
    row.push_bind(execution_id)
        .push_bind(step_id)
        .push_bind(number)
        .push_bind(end.finish.end.runner_id.as_str());
}

/// Binds one row of the attempts update.
fn bind_attempt<'a>(
    mut row: Separated<'_, 'a, Sqlite, &'static str>,
    (end, logs): &'a (&EndRow<'_>, &String),
) {
    bind_claim(&mut row, end);
    let attempt = end.finish.end;
    row.push_bind(end.finish.now_ms)
        .push_bind(attempt.outcome.as_str())
        .push_bind(attempt.attempt_error())
        .push_bind(logs.as_str())
        .push_bind(attempt.stdout.as_str())
        .push_bind(attempt.stderr.as_str());
}

/// Binds one row of the task runs update.
fn bind_run<'a>(mut row: Separated<'_, 'a, Sqlite, &'static str>, end: &'a EndRow<'_>) {
    bind_claim(&mut row, end);
    row.push_bind(end.run.status.as_str())
        .push_bind(end.run.output.as_deref())
        .push_bind(end.run.error)
        .push_bind(end.run.not_before_ms)
        .push_bind(i64::from(end.run.uncounted))
        .push_bind(end.finish.now_ms);
}
