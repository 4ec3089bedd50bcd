//! The engine's primitives on PostgreSQL (see [`crate::store::engine`]):
//! each one or two statements over arrays (`UNNEST`), whatever the batch's
//! size, in the lock order of the module above.
//!
//! Wake-ups for claimable work are sent once per transaction, just before
//! it commits (`pg_notify` is delivered at commit, dropped on a rollback).

use std::collections::{HashMap, HashSet};

use sqlx::{Postgres, Row, Transaction};

use super::hosts::{CANCEL, WORK, notify};
use super::{PostgresStore, query_err, text};
use crate::store::engine::{Changes, EndWrite, Engine, EngineTx, LEASE_EXPIRED};
use crate::store::pins::pins_text;
use crate::store::rows::{claim_record, execution_record, task_run_record};
use crate::store::{
    AttemptResult, Claim, ExecutionId, ExecutionStatus, NewExecution, Snapshot, StoreError,
};
use crate::workflow::StepState;

/// An open transaction at `READ COMMITTED`.
struct PgTx {
    tx: Transaction<'static, Postgres>,
    /// Whether this transaction made work claimable: other hosts are told
    /// when it commits.
    made_work: bool,
}

#[async_trait::async_trait]
impl Engine for PostgresStore {
    async fn begin(&self) -> Result<Box<dyn EngineTx>, StoreError> {
        let tx = self
            .pool
            .begin()
            .await
            .map_err(query_err("starting a transaction"))?;
        Ok(Box::new(PgTx {
            tx,
            made_work: false,
        }))
    }

    async fn expired(&self, now_ms: i64, except_runner: &str) -> Result<Vec<String>, StoreError> {
        // Every host looks every few hundred milliseconds: without locks,
        // on the partial index of running task runs.
        sqlx::query_scalar(
            "SELECT DISTINCT execution_id FROM task_runs
             WHERE status = 'running' AND lease_until < $1 AND claimed_by <> $2
             ORDER BY execution_id",
        )
        .bind(now_ms)
        .bind(except_runner)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("looking for expired leases"))
    }
}

#[async_trait::async_trait]
impl EngineTx for PgTx {
    async fn create(&mut self, executions: &[NewExecution], now_ms: i64) -> Result<(), StoreError> {
        self.made_work |= insert_executions(&mut self.tx, executions, now_ms).await?;
        Ok(())
    }

    async fn lock(&mut self, ids: &[&str]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let doing = "locking executions";
        sqlx::query("SELECT 1 FROM executions WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(ids)
            .execute(&mut *self.tx)
            .await
            .map_err(query_err(doing))?;
        sqlx::query(
            "SELECT 1 FROM task_runs WHERE execution_id = ANY($1)
             ORDER BY execution_id, step_id FOR UPDATE",
        )
        .bind(ids)
        .execute(&mut *self.tx)
        .await
        .map_err(query_err(doing))?;
        Ok(())
    }

    async fn record_ends(&mut self, ends: &[EndWrite<'_>]) -> Result<Vec<bool>, StoreError> {
        if ends.is_empty() {
            return Ok(Vec::new());
        }
        let recorded = record_ends(&mut self.tx, ends).await?;
        self.made_work |= ends.iter().zip(&recorded).any(|(write, recorded)| {
            *recorded
                && matches!(
                    write.end.result,
                    AttemptResult::Retry { .. }
                        | AttemptResult::Interrupted
                        | AttemptResult::Deferred { .. }
                )
        });
        Ok(recorded)
    }

    async fn load(&mut self, ids: &[&str]) -> Result<HashMap<ExecutionId, Snapshot>, StoreError> {
        load_snapshots(&mut self.tx, ids).await
    }

    async fn apply(&mut self, changes: &Changes<'_>) -> Result<(), StoreError> {
        apply(&mut self.tx, changes).await?;
        self.made_work |= changes.steps.iter().any(|s| s.status == StepState::Ready);
        Ok(())
    }

    async fn request_cancel(&mut self, id: &str) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE executions SET cancel_requested = TRUE WHERE id = $1 AND status = 'running'",
        )
        .bind(id)
        .execute(&mut *self.tx)
        .await
        .map_err(query_err("cancelling an execution"))?;
        // The hosts running its steps hear of it at once, not at their next
        // lease renewal.
        notify(&mut self.tx, &format!("{CANCEL}{id}")).await?;
        Ok(updated.rows_affected() > 0)
    }

    async fn requeue_expired(
        &mut self,
        ids: &[&str],
        now_ms: i64,
        except_runner: &str,
    ) -> Result<Vec<String>, StoreError> {
        let doing = "reaping expired leases";
        // One statement: the task runs back to the queue, then their
        // attempts recorded as interrupted.
        let requeued = sqlx::query(
            "WITH requeued AS (
                 UPDATE task_runs SET status = 'ready', attempts = attempts - 1,
                        claimed_by = NULL, lease_until = NULL, not_before = $1, updated_at = $1
                 WHERE execution_id = ANY($2) AND status = 'running' AND lease_until < $1
                   AND claimed_by <> $3
                 RETURNING execution_id, step_id
             ), interrupted AS (
                 UPDATE attempts a SET finished_at = $1, outcome = 'interrupted', error = $4
                 FROM requeued r
                 WHERE a.execution_id = r.execution_id AND a.step_id = r.step_id
                   AND a.finished_at IS NULL
             )
             SELECT execution_id FROM requeued",
        )
        .bind(now_ms)
        .bind(ids)
        .bind(except_runner)
        .bind(LEASE_EXPIRED)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(query_err(doing))?;
        let ids = requeued
            .iter()
            .map(|row| row.try_get("execution_id").map_err(query_err(doing)))
            .collect::<Result<Vec<String>, _>>()?;
        self.made_work |= !ids.is_empty();
        Ok(ids)
    }

    async fn claim(
        &mut self,
        runner_id: &str,
        max: u32,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<Claim>, StoreError> {
        claim(&mut self.tx, runner_id, max, lease_until_ms, now_ms).await
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        if self.made_work {
            notify(&mut self.tx, WORK).await?;
        }
        self.tx
            .commit()
            .await
            .map_err(query_err("committing a transaction"))
    }
}

/// Inserts executions (see [`insert_executions`]) and, when any has a
/// ready step, wakes every host at commit, not only this one's claim loop.
pub(super) async fn create_and_wake(
    conn: &mut sqlx::PgConnection,
    batch: &[NewExecution],
    now_ms: i64,
) -> Result<(), StoreError> {
    if insert_executions(conn, batch, now_ms).await? {
        notify(conn, WORK).await?;
    }
    Ok(())
}

/// Inserts executions and their task runs in their first planned states:
/// two statements for the whole batch. Returns whether any step is ready
/// (the caller then wakes the other hosts: see `notify`).
pub(super) async fn insert_executions(
    conn: &mut sqlx::PgConnection,
    batch: &[NewExecution],
    now_ms: i64,
) -> Result<bool, StoreError> {
    if batch.is_empty() {
        return Ok(false);
    }
    let doing = "creating executions";
    let mut ids = Vec::with_capacity(batch.len());
    let mut workflows = Vec::with_capacity(batch.len());
    let mut versions = Vec::with_capacity(batch.len());
    let mut inputs = Vec::with_capacity(batch.len());
    let mut statuses = Vec::with_capacity(batch.len());
    let mut errors = Vec::with_capacity(batch.len());
    let mut finished = Vec::with_capacity(batch.len());
    let mut plugins = Vec::with_capacity(batch.len());
    for new in batch {
        // An execution whose first plan already ends it is stored ended.
        let (status, error) = match &new.finish {
            Some((status, error)) => (*status, error.as_deref().map(|e| text(e).into_owned())),
            None => (ExecutionStatus::Running, None),
        };
        ids.push(new.id.as_str());
        workflows.push(new.workflow.as_str());
        versions.push(new.workflow_version.as_str());
        inputs.push(serde_json::Value::Object(new.input.clone()).to_string());
        statuses.push(status.as_str());
        errors.push(error);
        finished.push(new.finish.as_ref().map(|_| now_ms));
        plugins.push(pins_text(&new.plugins));
    }
    sqlx::query(
        "INSERT INTO executions
             (id, workflow, workflow_version, input, status, error, created_at, finished_at,
              plugins)
         SELECT id, workflow, version, input, status, error, $9, finished_at, plugins
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::bigint[], $8::text[])
              AS v (id, workflow, version, input, status, error, finished_at, plugins)",
    )
    .bind(&ids)
    .bind(&workflows)
    .bind(&versions)
    .bind(&inputs)
    .bind(&statuses)
    .bind(&errors)
    .bind(&finished)
    .bind(&plugins)
    .bind(now_ms)
    .execute(&mut *conn)
    .await
    .map_err(query_err(doing))?;
    let runs = batch
        .iter()
        .flat_map(|new| new.steps.iter().map(move |step| (new.id.as_str(), step)));
    let (mut executions, mut steps, mut statuses, mut inputs, mut not_before) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (execution_id, step) in runs {
        let (status, input, at) = step.first_row();
        executions.push(execution_id);
        steps.push(step.step_id());
        statuses.push(status.as_str());
        inputs.push(input);
        not_before.push(at);
    }
    sqlx::query(
        "INSERT INTO task_runs (execution_id, step_id, status, input, not_before, updated_at)
         SELECT e, s, status, input, not_before, $6
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
              AS v (e, s, status, input, not_before)",
    )
    .bind(&executions)
    .bind(&steps)
    .bind(&statuses)
    .bind(&inputs)
    .bind(&not_before)
    .bind(now_ms)
    .execute(&mut *conn)
    .await
    .map_err(query_err(doing))?;
    Ok(statuses.contains(&StepState::Ready.as_str()))
}

/// See [`EngineTx::record_ends`]: one statement, the task runs' update
/// guarded by the claim and the attempts' update joined to the task runs it
/// changed, returning the claim keys of the ends recorded.
async fn record_ends(
    conn: &mut sqlx::PgConnection,
    ends: &[EndWrite<'_>],
) -> Result<Vec<bool>, StoreError> {
    let doing = "recording attempts";
    let n = ends.len();
    let (mut executions, mut steps, mut numbers, mut runners) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut statuses, mut outputs, mut run_errors, mut not_before, mut uncounted, mut now) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut outcomes, mut errors, mut logs, mut stdouts, mut stderrs) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for write in ends {
        let end = write.end;
        let run = end.run_after(write.now_ms);
        executions.push(end.claim.execution_id.as_str());
        steps.push(end.claim.step_id.as_str());
        numbers.push(i32::try_from(end.claim.number).unwrap_or(i32::MAX));
        runners.push(end.runner_id.as_str());
        statuses.push(run.status.as_str());
        outputs.push(run.output);
        run_errors.push(run.error.map(|e| text(e).into_owned()));
        not_before.push(run.not_before_ms);
        uncounted.push(i32::from(run.uncounted));
        now.push(write.now_ms);
        outcomes.push(text(&end.outcome).into_owned());
        errors.push(end.attempt_error().map(|e| text(e).into_owned()));
        logs.push(end.logs.to_string());
        stdouts.push(text(&end.stdout).into_owned());
        stderrs.push(text(&end.stderr).into_owned());
    }
    let rows = sqlx::query(
        "WITH v AS (
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::int[], $4::text[], $5::text[],
                                  $6::text[], $7::text[], $8::bigint[], $9::int[], $10::bigint[],
                                  $11::text[], $12::text[], $13::text[], $14::text[], $15::text[])
                 AS v (e, s, n, runner, status, output, run_error, not_before, uncount, now,
                       outcome, error, logs, stdout, stderr)
         ), ended AS (
             UPDATE task_runs t
             SET status = v.status, output = v.output, error = COALESCE(v.run_error, t.error),
                 not_before = v.not_before, attempts = t.attempts - v.uncount,
                 claimed_by = NULL, lease_until = NULL, updated_at = v.now
             FROM v
             WHERE t.execution_id = v.e AND t.step_id = v.s AND t.status = 'running'
               AND t.claimed_by = v.runner AND t.attempt_number = v.n
             RETURNING t.execution_id, t.step_id, t.attempt_number
         ), finished AS (
             UPDATE attempts a
             SET finished_at = v.now, outcome = v.outcome, error = v.error, logs = v.logs,
                 stdout = v.stdout, stderr = v.stderr
             FROM v JOIN ended d ON d.execution_id = v.e AND d.step_id = v.s
                                AND d.attempt_number = v.n
             WHERE a.execution_id = v.e AND a.step_id = v.s AND a.number = v.n
         )
         SELECT execution_id, step_id, attempt_number FROM ended",
    )
    .bind(&executions)
    .bind(&steps)
    .bind(&numbers)
    .bind(&runners)
    .bind(&statuses)
    .bind(&outputs)
    .bind(&run_errors)
    .bind(&not_before)
    .bind(&uncounted)
    .bind(&now)
    .bind(&outcomes)
    .bind(&errors)
    .bind(&logs)
    .bind(&stdouts)
    .bind(&stderrs)
    .fetch_all(&mut *conn)
    .await
    .map_err(query_err(doing))?;
    let mut keys = HashSet::with_capacity(rows.len());
    for row in &rows {
        let execution_id: &str = row.try_get("execution_id").map_err(query_err(doing))?;
        let step_id: &str = row.try_get("step_id").map_err(query_err(doing))?;
        let number: i32 = row.try_get("attempt_number").map_err(query_err(doing))?;
        keys.insert((execution_id, step_id, number));
    }
    Ok(executions
        .iter()
        .zip(&steps)
        .zip(&numbers)
        .map(|((e, s), n)| keys.contains(&(*e, *s, *n)))
        .collect())
}

/// The executions `ids` (repeats allowed) with their task runs, by id.
pub(super) async fn load_snapshots(
    conn: &mut sqlx::PgConnection,
    ids: &[&str],
) -> Result<HashMap<ExecutionId, Snapshot>, StoreError> {
    let doing = "reading executions";
    let rows = sqlx::query("SELECT * FROM executions WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(query_err(doing))?;
    let mut snapshots = HashMap::with_capacity(rows.len());
    for row in &rows {
        let execution = execution_record(row)?;
        let runs = Vec::new();
        snapshots.insert(execution.id.clone(), Snapshot { execution, runs });
    }
    let rows = sqlx::query(
        "SELECT * FROM task_runs WHERE execution_id = ANY($1) ORDER BY execution_id, step_id",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(query_err(doing))?;
    for row in &rows {
        let execution_id: &str = row.try_get("execution_id").map_err(query_err(doing))?;
        if let Some(snapshot) = snapshots.get_mut(execution_id) {
            snapshot.runs.push(task_run_record(row)?);
        }
    }
    Ok(snapshots)
}

/// See [`EngineTx::apply`]: one statement per table.
async fn apply(conn: &mut sqlx::PgConnection, changes: &Changes<'_>) -> Result<(), StoreError> {
    let doing = "applying a plan";
    if !changes.steps.is_empty() {
        let steps = &changes.steps;
        let executions: Vec<&str> = steps.iter().map(|s| s.execution_id).collect();
        let step_ids: Vec<&str> = steps.iter().map(|s| s.step_id).collect();
        let statuses: Vec<&str> = steps.iter().map(|s| s.status.as_str()).collect();
        let inputs: Vec<Option<String>> = steps
            .iter()
            .map(|s| {
                s.input
                    .map(|input| serde_json::Value::Object(input.clone()).to_string())
            })
            .collect();
        let not_before: Vec<i64> = steps.iter().map(|s| s.not_before_ms).collect();
        let now: Vec<i64> = steps.iter().map(|s| s.now_ms).collect();
        sqlx::query(
            "UPDATE task_runs t
             SET status = v.status, input = v.input, not_before = v.not_before,
                 updated_at = v.now
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                         $6::bigint[]) AS v (e, s, status, input, not_before, now)
             WHERE t.execution_id = v.e AND t.step_id = v.s
               AND (t.status = 'pending' OR (t.status = 'ready' AND v.status = 'cancelled'))",
        )
        .bind(&executions)
        .bind(&step_ids)
        .bind(&statuses)
        .bind(&inputs)
        .bind(&not_before)
        .bind(&now)
        .execute(&mut *conn)
        .await
        .map_err(query_err(doing))?;
    }
    if !changes.finishes.is_empty() {
        let finishes = &changes.finishes;
        let ids: Vec<&str> = finishes.iter().map(|f| f.execution_id).collect();
        let statuses: Vec<&str> = finishes.iter().map(|f| f.status.as_str()).collect();
        let errors: Vec<Option<String>> = finishes
            .iter()
            .map(|f| f.error.map(|e| text(e).into_owned()))
            .collect();
        let at: Vec<i64> = finishes.iter().map(|f| f.finished_at_ms).collect();
        sqlx::query(
            "UPDATE executions e
             SET status = v.status, error = v.error, finished_at = v.finished_at
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[])
                  AS v (id, status, error, finished_at)
             WHERE e.id = v.id AND e.status = 'running'",
        )
        .bind(&ids)
        .bind(&statuses)
        .bind(&errors)
        .bind(&at)
        .execute(&mut *conn)
        .await
        .map_err(query_err(doing))?;
    }
    Ok(())
}

/// See [`EngineTx::claim`]: one statement.
async fn claim(
    conn: &mut sqlx::PgConnection,
    runner_id: &str,
    max: u32,
    lease_until_ms: i64,
    now_ms: i64,
) -> Result<Vec<Claim>, StoreError> {
    let doing = "claiming task runs";
    // Pick ready runs, skipping those another transaction has locked (being
    // claimed or re-planned), take them, and record the start of an attempt
    // for each. `picked` is materialized so it runs once; the update
    // re-checks `status`.
    let rows = sqlx::query(
        "WITH picked AS MATERIALIZED (
                 SELECT execution_id, step_id FROM task_runs
                 WHERE status = 'ready' AND not_before <= $3
                 ORDER BY not_before, execution_id, step_id
                 LIMIT $4
                 FOR UPDATE SKIP LOCKED
             ), claimed AS (
                 UPDATE task_runs t
                 SET status = 'running', claimed_by = $1, lease_until = $2,
                     attempts = t.attempts + 1, updated_at = $3,
                     attempt_number = COALESCE((SELECT MAX(a.number) FROM attempts a
                                                WHERE a.execution_id = t.execution_id
                                                  AND a.step_id = t.step_id), 0) + 1
                 FROM picked p
                 WHERE t.execution_id = p.execution_id AND t.step_id = p.step_id
                   AND t.status = 'ready'
                 RETURNING t.execution_id, t.step_id, t.attempts, t.input, t.not_before,
                           t.attempt_number
             ), started AS (
                 INSERT INTO attempts (execution_id, step_id, number, runner_id, started_at)
                 SELECT c.execution_id, c.step_id, c.attempt_number, $1, $3
                 FROM claimed c
                 RETURNING execution_id, step_id, number
             )
             SELECT c.execution_id, c.step_id, c.attempts, c.input, s.number,
                    e.workflow, e.workflow_version, e.plugins
             FROM claimed c
             JOIN started s ON s.execution_id = c.execution_id AND s.step_id = c.step_id
             JOIN executions e ON e.id = c.execution_id
             ORDER BY c.not_before, c.execution_id, c.step_id",
    )
    .bind(runner_id)
    .bind(lease_until_ms)
    .bind(now_ms)
    .bind(i64::from(max))
    .fetch_all(&mut *conn)
    .await
    .map_err(query_err(doing))?;
    rows.iter().map(|row| claim_record(row, doing)).collect()
}
