//! The engine's primitives on SQLite (see [`crate::store::engine`]): each a
//! handful of multi-row statements sent as one query, whatever the batch's
//! size.
//!
//! Every transaction starts with `BEGIN IMMEDIATE`, taking SQLite's one
//! write lock at once: nothing else writes until it commits, so
//! [`EngineTx::lock`] has nothing to do, and a transaction that reads
//! before it writes cannot fail with `SQLITE_BUSY` half-way.

use std::collections::{HashMap, HashSet};

use sqlx::query_builder::Separated;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use super::claim::{claims_from, push_claim};
use super::executions::push_inserts;
use super::{SqliteStore, bulk, query_err};
use crate::store::engine::{Changes, EndWrite, Engine, EngineTx, LEASE_EXPIRED};
use crate::store::records::RunAfterEnd;
use crate::store::rows::{execution_record, task_run_record};
use crate::store::{Claim, ExecutionId, NewExecution, Snapshot, StoreError};

/// An open `BEGIN IMMEDIATE` transaction on the write connection.
struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
    /// Writes not sent yet (planned changes, new executions): they read
    /// nothing, so they ride in the round trip of the transaction's next
    /// statements (a claim) or of its commit, bound to owned values. Each
    /// round trip to the connection's worker thread costs more than these
    /// statements themselves.
    deferred: bulk::Statements<'static>,
}

/// What a failure of the deferred writes was doing.
const WRITING_DEFERRED: &str = "writing planned changes and new executions";

impl SqliteTx {
    /// Sends the deferred changes now, in a round trip of their own (when
    /// there are any): before a statement that reads what they change.
    async fn flush(&mut self) -> Result<(), StoreError> {
        std::mem::take(&mut self.deferred)
            .run(&mut self.tx, WRITING_DEFERRED)
            .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Engine for SqliteStore {
    async fn begin(&self) -> Result<Box<dyn EngineTx>, StoreError> {
        let tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(query_err("starting a transaction"))?;
        Ok(Box::new(SqliteTx {
            tx,
            deferred: bulk::Statements::default(),
        }))
    }

    async fn expired(&self, now_ms: i64, except_runner: &str) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT DISTINCT execution_id FROM task_runs
             WHERE status = 'running' AND lease_until < ? AND claimed_by <> ?
             ORDER BY execution_id",
        )
        .bind(now_ms)
        .bind(except_runner)
        .fetch_all(&self.reader)
        .await
        .map_err(query_err("looking for expired leases"))
    }

    fn commits_writes_together(&self) -> bool {
        true
    }
}

#[async_trait::async_trait]
impl EngineTx for SqliteTx {
    async fn create(&mut self, executions: &[NewExecution], now_ms: i64) -> Result<(), StoreError> {
        push_inserts(&mut self.deferred, executions, now_ms);
        Ok(())
    }

    async fn lock(&mut self, _ids: &[&str]) -> Result<(), StoreError> {
        Ok(())
    }

    async fn record_ends(&mut self, ends: &[EndWrite<'_>]) -> Result<Vec<bool>, StoreError> {
        self.flush().await?;
        record_ends(&mut self.tx, ends).await
    }

    async fn load(&mut self, ids: &[&str]) -> Result<HashMap<ExecutionId, Snapshot>, StoreError> {
        self.flush().await?;
        load_snapshots(&mut self.tx, ids).await
    }

    async fn apply(&mut self, changes: &Changes<'_>) -> Result<(), StoreError> {
        push_changes(&mut self.deferred, changes);
        Ok(())
    }

    async fn request_cancel(&mut self, id: &str) -> Result<bool, StoreError> {
        self.flush().await?;
        let updated = sqlx::query(
            "UPDATE executions SET cancel_requested = 1 WHERE id = ? AND status = 'running'",
        )
        .bind(id)
        .execute(&mut *self.tx)
        .await
        .map_err(query_err("cancelling an execution"))?;
        Ok(updated.rows_affected() > 0)
    }

    async fn requeue_expired(
        &mut self,
        ids: &[&str],
        now_ms: i64,
        except_runner: &str,
    ) -> Result<Vec<String>, StoreError> {
        self.flush().await?;
        let mut query = bulk::Statements::default();
        // The attempts first, while their task runs still show the expired
        // claim; one round trip for both.
        let rows = ids.iter().map(|id| (*id, now_ms, except_runner));
        let expired = "task_runs.execution_id = v.e AND task_runs.status = 'running'
                       AND task_runs.lease_until < v.now AND task_runs.claimed_by <> v.spared";
        query.push_iter(
            "WITH v(e, now, spared) AS (",
            rows.clone(),
            &format!(
                ") UPDATE attempts SET finished_at = v.now, outcome = 'interrupted',
                     error = '{LEASE_EXPIRED}'
                   FROM v JOIN task_runs ON {expired}
                   WHERE attempts.execution_id = task_runs.execution_id
                     AND attempts.step_id = task_runs.step_id AND attempts.finished_at IS NULL"
            ),
            bind_expired,
        );
        query.push_iter(
            "WITH v(e, now, spared) AS (",
            rows,
            &format!(
                ") UPDATE task_runs SET status = 'ready', attempts = attempts - 1,
                     claimed_by = NULL, lease_until = NULL, not_before = v.now,
                     updated_at = v.now
                   FROM v WHERE {expired}
                   RETURNING task_runs.execution_id"
            ),
            bind_expired,
        );
        let doing = "reaping expired leases";
        let requeued = query.run(&mut self.tx, doing).await?;
        requeued
            .iter()
            .map(|row| row.try_get("execution_id").map_err(query_err(doing)))
            .collect()
    }

    async fn claim(
        &mut self,
        runner_id: &str,
        max: u32,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<Claim>, StoreError> {
        let mut query = std::mem::take(&mut self.deferred);
        let doing = if query.is_empty() {
            "claiming task runs"
        } else {
            "writing planned changes, new executions and a claim"
        };
        push_claim(&mut query, runner_id, max, lease_until_ms, now_ms);
        claims_from(&query.run(&mut self.tx, doing).await?)
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        self.flush().await?;
        self.tx
            .commit()
            .await
            .map_err(query_err("committing a transaction"))
    }
}

fn bind_expired<'a>(
    mut row: Separated<'_, 'a, Sqlite, &'static str>,
    (id, now_ms, except): (&'a str, i64, &'a str),
) {
    row.push_bind(id).push_bind(now_ms).push_bind(except);
}

/// An attempt end with its task run's row after it.
struct EndRow<'a> {
    write: &'a EndWrite<'a>,
    run: RunAfterEnd<'a>,
    logs: String,
}

impl<'a> EndRow<'a> {
    /// Identifies the claim the end belongs to.
    fn key(&self) -> (&'a str, &'a str, i64) {
        let claim = &self.write.end.claim;
        (
            claim.execution_id.as_str(),
            claim.step_id.as_str(),
            i64::from(claim.number),
        )
    }
}

/// See [`EngineTx::record_ends`]: both updates in one round trip, the
/// task runs' returning the claim keys of the ends they recorded.
async fn record_ends(
    conn: &mut sqlx::SqliteConnection,
    ends: &[EndWrite<'_>],
) -> Result<Vec<bool>, StoreError> {
    let doing = "recording attempts";
    let rows: Vec<EndRow<'_>> = ends
        .iter()
        .map(|write| EndRow {
            write,
            run: write.end.run_after(write.now_ms),
            logs: write.end.logs.to_string(),
        })
        .collect();
    // Both guarded by the claim (the attempt first, while its task run is
    // still as claimed): a runner whose lease expired and whose task run
    // went to another runner changes nothing.
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
        &rows,
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
        &rows,
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
    let returned = query.run(conn, doing).await?;
    // Keys borrowed from the rows: no copy per end to look one up.
    let mut keys = HashSet::with_capacity(returned.len());
    for row in &returned {
        let execution_id: &str = row.try_get("execution_id").map_err(query_err(doing))?;
        let step_id: &str = row.try_get("step_id").map_err(query_err(doing))?;
        let number: i64 = row.try_get("attempt_number").map_err(query_err(doing))?;
        keys.insert((execution_id, step_id, number));
    }
    Ok(rows.iter().map(|end| keys.contains(&end.key())).collect())
}

/// Binds an end's claim key and runner: the first columns of both updates.
fn bind_claim<'a>(row: &mut Separated<'_, 'a, Sqlite, &'static str>, end: &'a EndRow<'_>) {
    let (execution_id, step_id, number) = end.key();
    row.push_bind(execution_id)
        .push_bind(step_id)
        .push_bind(number)
        .push_bind(end.write.end.runner_id.as_str());
}

/// Binds one row of the attempts update.
fn bind_attempt<'a>(mut row: Separated<'_, 'a, Sqlite, &'static str>, end: &'a EndRow<'_>) {
    bind_claim(&mut row, end);
    let attempt = end.write.end;
    row.push_bind(end.write.now_ms)
        .push_bind(attempt.outcome.as_str())
        .push_bind(attempt.attempt_error())
        .push_bind(end.logs.as_str())
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
        .push_bind(end.write.now_ms);
}

/// The executions `ids` (repeats allowed) with their task runs, by id; an
/// id with no execution is missing from the map.
pub(super) async fn load_snapshots(
    conn: &mut sqlx::SqliteConnection,
    ids: &[&str],
) -> Result<HashMap<ExecutionId, Snapshot>, StoreError> {
    let doing = "reading executions";
    let mut distinct = ids.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    // Both tables in one round trip; each row says which it is.
    let mut query = bulk::Statements::default();
    query.push(
        "WITH v(id) AS (",
        &distinct,
        ") SELECT 'execution' AS row_kind, e.* FROM executions e JOIN v ON e.id = v.id",
        bind_id,
    );
    query.push(
        "WITH v(id) AS (",
        &distinct,
        ") SELECT 'task_run' AS row_kind, t.* FROM task_runs t JOIN v ON t.execution_id = v.id
           ORDER BY t.execution_id, t.step_id",
        bind_id,
    );
    let rows = query.run(conn, doing).await?;
    let kind = |row: &SqliteRow| row.try_get::<&str, _>("row_kind").map(|k| k == "task_run");
    let mut snapshots = HashMap::with_capacity(distinct.len());
    let mut runs = Vec::with_capacity(rows.len());
    for row in &rows {
        if kind(row).map_err(query_err(doing))? {
            runs.push(row);
        } else {
            let execution = execution_record(row)?;
            let runs = Vec::new();
            snapshots.insert(execution.id.clone(), Snapshot { execution, runs });
        }
    }
    for row in runs {
        let execution_id: &str = row.try_get("execution_id").map_err(query_err(doing))?;
        if let Some(snapshot) = snapshots.get_mut(execution_id) {
            snapshot.runs.push(task_run_record(row)?);
        }
    }
    Ok(snapshots)
}

fn bind_id<'a>(mut row: Separated<'_, 'a, Sqlite, &'static str>, id: &'a &str) {
    row.push_bind(*id);
}

/// Adds the writes of `changes` to `query`, bound to owned values,
/// guarded as [`EngineTx::apply`] says.
fn push_changes(query: &mut bulk::Statements<'_>, changes: &Changes<'_>) {
    let steps = changes.steps.iter().map(|step| {
        let input = step
            .input
            .map(|input| serde_json::Value::Object(input.clone()).to_string());
        let keys = [step.execution_id.to_owned(), step.step_id.to_owned()];
        (
            keys,
            step.status.as_str(),
            input,
            step.not_before_ms,
            step.now_ms,
        )
    });
    query.push_iter(
        "WITH v(e, s, status, input, not_before, now) AS (",
        steps,
        ") UPDATE task_runs
           SET status = v.status, input = v.input, not_before = v.not_before,
               updated_at = v.now
           FROM v
           WHERE task_runs.execution_id = v.e AND task_runs.step_id = v.s
             AND (task_runs.status = 'pending'
                  OR (task_runs.status = 'ready' AND v.status = 'cancelled'))",
        |mut row, ([execution_id, step_id], status, input, not_before, now)| {
            row.push_bind(execution_id)
                .push_bind(step_id)
                .push_bind(status)
                .push_bind(input)
                .push_bind(not_before)
                .push_bind(now);
        },
    );
    let finishes = changes.finishes.iter().map(|finish| {
        (
            finish.execution_id.to_owned(),
            finish.status.as_str(),
            finish.error.map(str::to_owned),
            finish.finished_at_ms,
        )
    });
    query.push_iter(
        "WITH v(id, status, error, finished_at) AS (",
        finishes,
        ") UPDATE executions
           SET status = v.status, error = v.error, finished_at = v.finished_at
           FROM v WHERE executions.id = v.id AND executions.status = 'running'",
        |mut row, (id, status, error, finished_at)| {
            row.push_bind(id)
                .push_bind(status)
                .push_bind(error)
                .push_bind(finished_at);
        },
    );
}
