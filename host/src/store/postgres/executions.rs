//! Executions, task runs, attempts: creation, claims with leases, recording
//! attempt ends, cancellation and the lease reaper.
//!
//! Lock order (see the module above): execution rows by id, then task runs
//! by `(execution_id, step_id)`, then attempts. Every re-plan holds the
//! locks of its execution and all of its task runs, so the planner's
//! snapshot cannot change under it.

use std::collections::BTreeSet;
use std::sync::Arc;

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::{PostgresStore, query_err, text};
use crate::store::RUNNER_FORGOTTEN_MS;
use crate::store::pins::{pins, pins_text};
use crate::store::{
    AttemptEnd, AttemptRecord, AttemptResult, Claim, ClaimRequest, ExecutionFilter,
    ExecutionRecord, ExecutionStatus, Finish, NewExecution, Object, Plan, Planner, Snapshot,
    StepChange, StoreError, TaskRunRecord, WriteBatch, Written,
};

/// The error recorded on attempts whose lease ran out.
const LEASE_EXPIRED: &str = "lease expired: its runner stopped renewing it";

fn corrupt(what: &'static str) -> impl FnOnce(serde_json::Error) -> StoreError {
    move |e| StoreError::Corrupt {
        what,
        reason: e.to_string(),
    }
}

fn object(text: &str, what: &'static str) -> Result<Object, StoreError> {
    serde_json::from_str(text).map_err(corrupt(what))
}

fn opt_object(text: Option<String>, what: &'static str) -> Result<Option<Object>, StoreError> {
    text.map(|t| object(&t, what)).transpose()
}

fn count(value: i32) -> u32 {
    u32::try_from(value).unwrap_or_default()
}

fn execution_record(row: &PgRow) -> Result<ExecutionRecord, StoreError> {
    let e = || query_err("reading an execution");
    let input: String = row.try_get("input").map_err(e())?;
    let status: String = row.try_get("status").map_err(e())?;
    Ok(ExecutionRecord {
        id: row.try_get("id").map_err(e())?,
        workflow: row.try_get("workflow").map_err(e())?,
        workflow_version: row.try_get("workflow_version").map_err(e())?,
        status: status.parse()?,
        input: object(&input, "execution input")?,
        error: row.try_get("error").map_err(e())?,
        cancel_requested: row.try_get("cancel_requested").map_err(e())?,
        created_at_ms: row.try_get("created_at").map_err(e())?,
        finished_at_ms: row.try_get("finished_at").map_err(e())?,
        schedule: row.try_get("schedule").map_err(e())?,
        fire_time_ms: row.try_get("fire_time").map_err(e())?,
        plugins: pins(row.try_get("plugins").map_err(e())?)?,
    })
}

fn task_run_record(row: &PgRow) -> Result<TaskRunRecord, StoreError> {
    let e = || query_err("reading a task run");
    let status: String = row.try_get("status").map_err(e())?;
    Ok(TaskRunRecord {
        step_id: row.try_get("step_id").map_err(e())?,
        status: status.parse()?,
        attempts: count(row.try_get("attempts").map_err(e())?),
        not_before_ms: row.try_get("not_before").map_err(e())?,
        input: opt_object(row.try_get("input").map_err(e())?, "task run input")?,
        output: opt_object(row.try_get("output").map_err(e())?, "task run output")?,
        error: row.try_get("error").map_err(e())?,
        claimed_by: row.try_get("claimed_by").map_err(e())?,
        lease_until_ms: row.try_get("lease_until").map_err(e())?,
    })
}

fn attempt_record(row: &PgRow) -> Result<AttemptRecord, StoreError> {
    let e = || query_err("reading an attempt");
    let logs: Option<String> = row.try_get("logs").map_err(e())?;
    Ok(AttemptRecord {
        step_id: row.try_get("step_id").map_err(e())?,
        number: count(row.try_get("number").map_err(e())?),
        runner_id: row.try_get("runner_id").map_err(e())?,
        started_at_ms: row.try_get("started_at").map_err(e())?,
        finished_at_ms: row.try_get("finished_at").map_err(e())?,
        outcome: row.try_get("outcome").map_err(e())?,
        error: row.try_get("error").map_err(e())?,
        logs: logs
            .map(|l| serde_json::from_str(&l))
            .transpose()
            .map_err(corrupt("attempt logs"))?,
        stdout: row.try_get("stdout").map_err(e())?,
        stderr: row.try_get("stderr").map_err(e())?,
    })
}

async fn load_snapshot(conn: &mut PgConnection, id: &str) -> Result<Option<Snapshot>, StoreError> {
    let doing = "reading an execution";
    let Some(row) = sqlx::query("SELECT * FROM executions WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(query_err(doing))?
    else {
        return Ok(None);
    };
    let execution = execution_record(&row)?;
    let rows = sqlx::query("SELECT * FROM task_runs WHERE execution_id = $1 ORDER BY step_id")
        .bind(id)
        .fetch_all(&mut *conn)
        .await
        .map_err(query_err(doing))?;
    let runs = rows.iter().map(task_run_record).collect::<Result<_, _>>()?;
    Ok(Some(Snapshot { execution, runs }))
}

/// Locks the execution `id`, then all its task runs in step order, until
/// the transaction ends. Returns whether the execution exists.
async fn lock_execution(conn: &mut PgConnection, id: &str) -> Result<bool, StoreError> {
    let doing = "locking an execution";
    let found = sqlx::query("SELECT id FROM executions WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(query_err(doing))?;
    if found.is_none() {
        return Ok(false);
    }
    sqlx::query(
        "SELECT step_id FROM task_runs WHERE execution_id = $1 ORDER BY step_id FOR UPDATE",
    )
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(query_err(doing))?;
    Ok(true)
}

/// Applies a plan. Each update is guarded by the state it expects, so a
/// stale plan can never move a step backwards.
async fn apply_plan(
    conn: &mut PgConnection,
    id: &str,
    plan: &Plan,
    now_ms: i64,
) -> Result<(), StoreError> {
    let doing = "applying a plan";
    for change in &plan.steps {
        let (sql, step_id, input, not_before) = match change {
            StepChange::Pending { .. } => continue,
            StepChange::Ready {
                step_id,
                input,
                not_before_ms,
            } => (
                "UPDATE task_runs SET status = 'ready', input = $1, not_before = $2, updated_at = $3
                 WHERE execution_id = $4 AND step_id = $5 AND status = 'pending'",
                step_id,
                Some(serde_json::Value::Object(input.clone()).to_string()),
                *not_before_ms,
            ),
            StepChange::Skipped { step_id } => (
                "UPDATE task_runs SET status = 'skipped', input = $1, not_before = $2, updated_at = $3
                 WHERE execution_id = $4 AND step_id = $5 AND status = 'pending'",
                step_id,
                None,
                0,
            ),
            StepChange::Cancelled { step_id } => (
                "UPDATE task_runs SET status = 'cancelled', input = COALESCE($1, input),
                        not_before = $2, updated_at = $3
                 WHERE execution_id = $4 AND step_id = $5 AND status IN ('pending', 'ready')",
                step_id,
                None,
                0,
            ),
        };
        sqlx::query(sql)
            .bind(input)
            .bind(not_before)
            .bind(now_ms)
            .bind(id)
            .bind(step_id)
            .execute(&mut *conn)
            .await
            .map_err(query_err(doing))?;
    }
    if plan
        .steps
        .iter()
        .any(|c| matches!(c, StepChange::Ready { .. }))
    {
        notify(conn, WORK).await?;
    }
    if let Some((status, error)) = &plan.finish {
        sqlx::query(
            "UPDATE executions SET status = $1, error = $2, finished_at = $3
             WHERE id = $4 AND status = 'running'",
        )
        .bind(status.as_str())
        .bind(error.as_deref().map(text))
        .bind(now_ms)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(query_err(doing))?;
    }
    Ok(())
}

/// Loads the snapshot, asks the planner, applies its plan, and returns the
/// snapshot after the change. The caller holds the execution's locks.
async fn replan(
    conn: &mut PgConnection,
    id: &str,
    now_ms: i64,
    planner: Planner<'_>,
) -> Result<Option<Snapshot>, StoreError> {
    let Some(mut snapshot) = load_snapshot(conn, id).await? else {
        return Ok(None);
    };
    if snapshot.execution.status.is_final() {
        return Ok(Some(snapshot));
    }
    let plan = planner(&snapshot);
    apply_plan(conn, id, &plan, now_ms).await?;
    snapshot.apply(&plan, now_ms);
    Ok(Some(snapshot))
}

/// Inserts an execution, its task runs and its first plan, inside the
/// caller's transaction.
pub(super) async fn insert_execution(
    conn: &mut PgConnection,
    new: &NewExecution,
    now_ms: i64,
) -> Result<(), StoreError> {
    let doing = "creating an execution";
    sqlx::query(
        "INSERT INTO executions
             (id, workflow, workflow_version, input, status, created_at, plugins)
             VALUES ($1, $2, $3, $4, 'running', $5, $6)",
    )
    .bind(&new.id)
    .bind(&new.workflow)
    .bind(&new.workflow_version)
    .bind(serde_json::Value::Object(new.input.clone()).to_string())
    .bind(now_ms)
    .bind(pins_text(&new.plugins))
    .execute(&mut *conn)
    .await
    .map_err(query_err(doing))?;
    let step_ids: Vec<&str> = new.steps.iter().map(StepChange::step_id).collect();
    sqlx::query(
        "INSERT INTO task_runs (execution_id, step_id, status, updated_at)
             SELECT $1, step_id, 'pending', $3 FROM UNNEST($2::text[]) AS s (step_id)",
    )
    .bind(&new.id)
    .bind(&step_ids)
    .bind(now_ms)
    .execute(&mut *conn)
    .await
    .map_err(query_err(doing))?;
    let plan = Plan {
        steps: new.steps.clone(),
        finish: new.finish.clone(),
    };
    apply_plan(conn, &new.id, &plan, now_ms).await?;
    Ok(())
}

/// Claims ready task runs (one statement: its own transaction, or part of
/// the caller's).
async fn claim(conn: &mut PgConnection, request: &ClaimRequest) -> Result<Vec<Claim>, StoreError> {
    let ClaimRequest {
        runner_id,
        max,
        lease_until_ms,
        now_ms,
    } = request;
    let doing = "claiming task runs";
    // One statement, so one transaction: pick ready runs, skipping those
    // another transaction has locked (being claimed or re-planned), take
    // them, and record the start of an attempt for each. `picked` is
    // materialized so it runs once; the update re-checks `status`.
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
    .bind(i64::from(*max))
    .fetch_all(&mut *conn)
    .await
    .map_err(query_err(doing))?;
    let e = || query_err(doing);
    rows.iter()
        .map(|row| {
            Ok(Claim {
                execution_id: row.try_get("execution_id").map_err(e())?,
                workflow: row.try_get("workflow").map_err(e())?,
                workflow_version: row.try_get("workflow_version").map_err(e())?,
                step_id: row.try_get("step_id").map_err(e())?,
                attempts: count(row.try_get("attempts").map_err(e())?),
                number: count(row.try_get("number").map_err(e())?),
                input: opt_object(row.try_get("input").map_err(e())?, "task run input")?
                    .unwrap_or_default(),
                plugins: pins(row.try_get("plugins").map_err(e())?)?,
            })
        })
        .collect()
}

impl PostgresStore {
    pub(super) async fn create_executions(
        &self,
        batch: &[NewExecution],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let doing = "creating executions";
        let mut tx = self.pool.begin().await.map_err(query_err(doing))?;
        for new in batch {
            insert_execution(&mut tx, new, now_ms).await?;
        }
        tx.commit().await.map_err(query_err(doing))
    }

    pub(super) async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Claim>, StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(query_err("claiming task runs"))?;
        claim(&mut conn, request).await
    }

    /// [`Store::write`](crate::store::Store::write) in one transaction
    /// (retried as a whole on a deadlock or serialization failure).
    pub(super) async fn write_together(
        &self,
        batch: WriteBatch<'_>,
    ) -> Result<Written, StoreError> {
        self.retrying(|| self.write_once(batch)).await
    }

    async fn write_once(&self, batch: WriteBatch<'_>) -> Result<Written, StoreError> {
        let doing = "writing a batch";
        let mut tx = self.pool.begin().await.map_err(query_err(doing))?;
        for new in batch.creates {
            insert_execution(&mut tx, new, batch.now_ms).await?;
        }
        let finished = finish_in_order(&mut tx, batch.finishes).await?;
        let claimed = match batch.claim {
            Some(request) => claim(&mut tx, request).await?,
            None => Vec::new(),
        };
        tx.commit().await.map_err(query_err(doing))?;
        Ok(Written::together(finished, claimed))
    }

    pub(super) async fn renew_leases(
        &self,
        runner_id: &str,
        runs: &[(String, String)],
        lease_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let doing = "renewing leases";
        let (executions, steps): (Vec<&str>, Vec<&str>) = runs
            .iter()
            .map(|(execution, step)| (execution.as_str(), step.as_str()))
            .unzip();
        // Locks in key order (see the lock order above). The new lease runs
        // from when each row is updated, by the database's clock, so time
        // spent waiting for a lock does not eat it.
        sqlx::query(
            "WITH mine AS MATERIALIZED (
                 SELECT t.execution_id, t.step_id
                 FROM task_runs t
                 JOIN unnest($3::text[], $4::text[]) AS k(execution_id, step_id)
                   ON t.execution_id = k.execution_id AND t.step_id = k.step_id
                 WHERE t.claimed_by = $2 AND t.status = 'running'
                 ORDER BY t.execution_id, t.step_id
                 FOR UPDATE OF t
             )
             UPDATE task_runs t
             SET lease_until = (extract(epoch FROM clock_timestamp()) * 1000)::bigint + $1
             FROM mine m
             WHERE t.execution_id = m.execution_id AND t.step_id = m.step_id
               AND t.claimed_by = $2 AND t.status = 'running'",
        )
        .bind(lease_ms)
        .bind(runner_id)
        .bind(&executions)
        .bind(&steps)
        .execute(&self.pool)
        .await
        .map_err(query_err(doing))?;
        sqlx::query_scalar(
            "SELECT DISTINCT e.id FROM executions e JOIN task_runs t ON t.execution_id = e.id
             WHERE t.claimed_by = $1 AND t.status = 'running' AND e.cancel_requested
             ORDER BY e.id",
        )
        .bind(runner_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err(doing))
    }

    pub(super) async fn heartbeat(
        &self,
        runner_id: &str,
        now_ms: i64,
        alive_since_ms: i64,
    ) -> Result<u64, StoreError> {
        let doing = "recording a heartbeat";
        let mut tx = self.pool.begin().await.map_err(query_err(doing))?;
        sqlx::query(
            "INSERT INTO runners (id, heartbeat_at) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        )
        .bind(runner_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(query_err(doing))?;
        // Runners silent for long are gone (killed): forget them.
        sqlx::query("DELETE FROM runners WHERE heartbeat_at < $1")
            .bind(now_ms.saturating_sub(RUNNER_FORGOTTEN_MS))
            .execute(&mut *tx)
            .await
            .map_err(query_err(doing))?;
        let others: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM runners WHERE id <> $1 AND heartbeat_at >= $2",
        )
        .bind(runner_id)
        .bind(alive_since_ms)
        .fetch_one(&mut *tx)
        .await
        .map_err(query_err(doing))?;
        tx.commit().await.map_err(query_err(doing))?;
        Ok(u64::try_from(others).unwrap_or_default())
    }

    pub(super) async fn finish_attempts(
        &self,
        batch: &[Finish<'_>],
    ) -> Result<Vec<Option<Arc<Snapshot>>>, StoreError> {
        self.retrying(|| self.finish_attempts_once(batch)).await
    }

    async fn finish_attempts_once(
        &self,
        batch: &[Finish<'_>],
    ) -> Result<Vec<Option<Arc<Snapshot>>>, StoreError> {
        let doing = "recording attempts";
        let mut tx = self.pool.begin().await.map_err(query_err(doing))?;
        let after = finish_in_order(&mut tx, batch).await?;
        tx.commit().await.map_err(query_err(doing))?;
        Ok(after)
    }
}

/// Records `batch` inside the caller's transaction, one end after the
/// other. Executions are locked in id order, as every batch does, so two
/// hosts' batches cannot deadlock on each other.
async fn finish_in_order(
    conn: &mut PgConnection,
    batch: &[Finish<'_>],
) -> Result<Vec<Option<Arc<Snapshot>>>, StoreError> {
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |i: usize| {
            (
                &batch[i].end.claim.execution_id,
                &batch[i].end.claim.step_id,
            )
        };
        key(a).cmp(&key(b))
    });
    let mut after = vec![None; batch.len()];
    for i in order {
        let Finish {
            end,
            now_ms,
            planner,
        } = batch[i];
        after[i] = finish_attempt(&mut *conn, end, now_ms, planner)
            .await?
            .map(Arc::new);
    }
    Ok(after)
}

async fn finish_attempt(
    conn: &mut PgConnection,
    end: &AttemptEnd,
    now_ms: i64,
    planner: Planner<'_>,
) -> Result<Option<Snapshot>, StoreError> {
    let doing = "recording an attempt";
    let claim = &end.claim;
    if !lock_execution(&mut *conn, &claim.execution_id).await? {
        return Ok(None);
    }
    let after = end.run_after(now_ms);
    // Guarded by the claim: a runner whose lease expired and whose task
    // run went to another runner changes nothing.
    let updated = sqlx::query(
        "UPDATE task_runs SET status = $1, output = $2, error = COALESCE($3, error),
                    not_before = $4, attempts = attempts - $5, claimed_by = NULL,
                    lease_until = NULL, updated_at = $6
             WHERE execution_id = $7 AND step_id = $8 AND status = 'running'
               AND claimed_by = $9 AND attempt_number = $10",
    )
    .bind(after.status.as_str())
    .bind(after.output)
    .bind(after.error.map(text))
    .bind(after.not_before_ms)
    .bind(i32::from(after.uncounted))
    .bind(now_ms)
    .bind(&claim.execution_id)
    .bind(&claim.step_id)
    .bind(&end.runner_id)
    .bind(i64::from(claim.number))
    .execute(&mut *conn)
    .await
    .map_err(query_err(doing))?;
    if updated.rows_affected() == 0 {
        return Ok(None);
    }
    let attempt_error = end.attempt_error().map(text);
    sqlx::query(
        "UPDATE attempts SET finished_at = $1, outcome = $2, error = $3, logs = $4,
                    stdout = $5, stderr = $6
             WHERE execution_id = $7 AND step_id = $8 AND number = $9",
    )
    .bind(now_ms)
    .bind(text(&end.outcome))
    .bind(attempt_error)
    .bind(end.logs.to_string())
    .bind(text(&end.stdout))
    .bind(text(&end.stderr))
    .bind(&claim.execution_id)
    .bind(&claim.step_id)
    .bind(i64::from(claim.number))
    .execute(&mut *conn)
    .await
    .map_err(query_err(doing))?;
    if matches!(
        end.result,
        AttemptResult::Retry { .. } | AttemptResult::Interrupted | AttemptResult::Deferred { .. }
    ) {
        notify(&mut *conn, WORK).await?;
    }
    replan(&mut *conn, &claim.execution_id, now_ms, planner).await
}

impl PostgresStore {
    pub(super) async fn reap_expired(
        &self,
        now_ms: i64,
        except_runner: &str,
        planner: Planner<'_>,
    ) -> Result<u64, StoreError> {
        // Every host reaps every few hundred milliseconds: look without
        // locking first, and lock only when there is something to reap.
        let candidates: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT execution_id FROM task_runs
             WHERE status = 'running' AND lease_until < $1 AND claimed_by <> $2
             ORDER BY execution_id",
        )
        .bind(now_ms)
        .bind(except_runner)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reaping expired leases"))?;
        if candidates.is_empty() {
            return Ok(0);
        }
        self.retrying(|| self.reap_once(&candidates, now_ms, except_runner, planner))
            .await
    }

    async fn reap_once(
        &self,
        candidates: &[String],
        now_ms: i64,
        except_runner: &str,
        planner: Planner<'_>,
    ) -> Result<u64, StoreError> {
        let doing = "reaping expired leases";
        let mut tx = self.pool.begin().await.map_err(query_err(doing))?;
        sqlx::query("SELECT id FROM executions WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(candidates)
            .execute(&mut *tx)
            .await
            .map_err(query_err(doing))?;
        sqlx::query(
            "SELECT step_id FROM task_runs WHERE execution_id = ANY($1)
             ORDER BY execution_id, step_id FOR UPDATE",
        )
        .bind(candidates)
        .execute(&mut *tx)
        .await
        .map_err(query_err(doing))?;
        // Under the locks, check again: another host may have reaped them,
        // or their runner renewed or finished them in between.
        let rows = sqlx::query(
            "UPDATE task_runs SET status = 'ready', attempts = attempts - 1, claimed_by = NULL,
                    lease_until = NULL, not_before = $1, updated_at = $1
             WHERE execution_id = ANY($2) AND status = 'running' AND lease_until < $1
               AND claimed_by <> $3
             RETURNING execution_id, step_id",
        )
        .bind(now_ms)
        .bind(candidates)
        .bind(except_runner)
        .fetch_all(&mut *tx)
        .await
        .map_err(query_err(doing))?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut execution_ids = Vec::with_capacity(rows.len());
        let mut step_ids = Vec::with_capacity(rows.len());
        for row in &rows {
            execution_ids.push(
                row.try_get::<String, _>("execution_id")
                    .map_err(query_err(doing))?,
            );
            step_ids.push(
                row.try_get::<String, _>("step_id")
                    .map_err(query_err(doing))?,
            );
        }
        sqlx::query(
            "UPDATE attempts a SET finished_at = $1, outcome = 'interrupted', error = $2
             FROM UNNEST($3::text[], $4::text[]) AS r (execution_id, step_id)
             WHERE a.execution_id = r.execution_id AND a.step_id = r.step_id
               AND a.finished_at IS NULL",
        )
        .bind(now_ms)
        .bind(LEASE_EXPIRED)
        .bind(&execution_ids)
        .bind(&step_ids)
        .execute(&mut *tx)
        .await
        .map_err(query_err(doing))?;
        // A cancelled execution must not run its reaped steps again.
        let executions: BTreeSet<&String> = execution_ids.iter().collect();
        for id in executions {
            replan(&mut tx, id, now_ms, planner).await?;
        }
        notify(&mut tx, WORK).await?;
        tx.commit().await.map_err(query_err(doing))?;
        Ok(rows.len() as u64)
    }

    pub(super) async fn cancel_execution(
        &self,
        id: &str,
        now_ms: i64,
        planner: Planner<'_>,
    ) -> Result<Option<Snapshot>, StoreError> {
        self.retrying(|| self.cancel_once(id, now_ms, planner))
            .await
    }

    async fn cancel_once(
        &self,
        id: &str,
        now_ms: i64,
        planner: Planner<'_>,
    ) -> Result<Option<Snapshot>, StoreError> {
        let doing = "cancelling an execution";
        let mut tx = self.pool.begin().await.map_err(query_err(doing))?;
        if !lock_execution(&mut tx, id).await? {
            return Ok(None);
        }
        let updated = sqlx::query(
            "UPDATE executions SET cancel_requested = TRUE WHERE id = $1 AND status = 'running'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(query_err(doing))?;
        let after = if updated.rows_affected() == 0 {
            load_snapshot(&mut tx, id).await?
        } else {
            replan(&mut tx, id, now_ms, planner).await?
        };
        // The hosts running this execution's steps hear of the cancel at
        // once, not at their next lease renewal.
        notify(&mut tx, &format!("{CANCEL}{id}")).await?;
        tx.commit().await.map_err(query_err(doing))?;
        Ok(after)
    }

    pub(super) async fn execution(&self, id: &str) -> Result<Option<Snapshot>, StoreError> {
        let doing = "reading an execution";
        // One snapshot for the execution and its task runs.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(query_err(doing))?;
        let snapshot = load_snapshot(&mut tx, id).await?;
        tx.commit().await.map_err(query_err(doing))?;
        Ok(snapshot)
    }

    pub(super) async fn list_executions(
        &self,
        filter: &ExecutionFilter,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM executions
             WHERE ($1::text IS NULL OR workflow = $1) AND ($2::text IS NULL OR status = $2)
               AND ($4::text IS NULL OR schedule = $4)
             ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(filter.workflow.as_deref())
        .bind(filter.status.map(ExecutionStatus::as_str))
        .bind(i64::from(filter.limit.unwrap_or(100)))
        .bind(filter.schedule.as_deref())
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing executions"))?;
        rows.iter().map(execution_record).collect()
    }

    pub(super) async fn attempts(
        &self,
        execution_id: &str,
        step_id: Option<&str>,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM attempts WHERE execution_id = $1 AND ($2::text IS NULL OR step_id = $2)
             ORDER BY started_at, step_id, number",
        )
        .bind(execution_id)
        .bind(step_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing attempts"))?;
        rows.iter().map(attempt_record).collect()
    }
}

/// Payload of a wake-up for claimable work.
pub(super) const WORK: &str = "work";
/// Prefix of a cancel wake-up's payload; the execution id follows.
pub(super) const CANCEL: &str = "cancel:";

/// The channel of a schema: one per tenant, so tenants do not wake each
/// other. PostgreSQL truncates identifiers at 63 bytes; schema names are
/// ASCII, so this is the same on both sides.
pub(super) fn channel(schema: &str) -> String {
    format!("corral_{}", &schema[..schema.len().min(56)])
}

/// Sends a wake-up to the runners of this schema; delivered when the
/// transaction commits, dropped if it rolls back.
async fn notify(conn: &mut PgConnection, payload: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify('corral_' || left(current_schema(), 56), $1)")
        .bind(payload)
        .execute(conn)
        .await
        .map_err(query_err("sending a wake-up"))?;
    Ok(())
}
