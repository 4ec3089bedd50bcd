//! Executions, task runs, attempts: row decoding, leases, heartbeats,
//! reads and wake-ups. The engine's writes are in [`super::engine`].
//!
//! Lock order (see the module above): execution rows by id, then task runs
//! by `(execution_id, step_id)`, then attempts.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::engine::load_snapshots;
use super::{PostgresStore, query_err};
use crate::store::RUNNER_FORGOTTEN_MS;
use crate::store::pins::pins;
use crate::store::records::stored_step_state;
use crate::store::{
    AttemptRecord, ExecutionFilter, ExecutionRecord, ExecutionStatus, Object, Snapshot, StoreError,
    TaskRunRecord,
};

fn corrupt(what: &'static str) -> impl FnOnce(serde_json::Error) -> StoreError {
    move |e| StoreError::Corrupt {
        what,
        reason: e.to_string(),
    }
}

fn object(text: &str, what: &'static str) -> Result<Object, StoreError> {
    serde_json::from_str(text).map_err(corrupt(what))
}

pub(super) fn opt_object(
    text: Option<String>,
    what: &'static str,
) -> Result<Option<Object>, StoreError> {
    text.map(|t| object(&t, what)).transpose()
}

pub(super) fn count(value: i32) -> u32 {
    u32::try_from(value).unwrap_or_default()
}

pub(super) fn execution_record(row: &PgRow) -> Result<ExecutionRecord, StoreError> {
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

pub(super) fn task_run_record(row: &PgRow) -> Result<TaskRunRecord, StoreError> {
    let e = || query_err("reading a task run");
    let status: String = row.try_get("status").map_err(e())?;
    Ok(TaskRunRecord {
        step_id: row.try_get("step_id").map_err(e())?,
        status: stored_step_state(&status)?,
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

impl PostgresStore {
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

    pub(super) async fn execution(&self, id: &str) -> Result<Option<Snapshot>, StoreError> {
        let doing = "reading an execution";
        // One snapshot for the execution and its task runs.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(query_err(doing))?;
        let snapshot = load_snapshots(&mut tx, &[id]).await?.remove(id);
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
               AND ($5::bigint IS NULL OR (created_at, id) < ($5, $6::text))
             ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(filter.workflow.as_deref())
        .bind(filter.status.map(ExecutionStatus::as_str))
        .bind(i64::from(filter.limit.unwrap_or(100)))
        .bind(filter.schedule.as_deref())
        .bind(filter.before.as_ref().map(|c| c.created_at_ms))
        .bind(filter.before.as_ref().map(|c| c.id.as_str()))
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
pub(super) async fn notify(conn: &mut PgConnection, payload: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify('corral_' || left(current_schema(), 56), $1)")
        .bind(payload)
        .execute(conn)
        .await
        .map_err(query_err("sending a wake-up"))?;
    Ok(())
}
