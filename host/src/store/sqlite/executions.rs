//! Executions, task runs, attempts: row decoding, inserting new
//! executions, leases, heartbeats and reads. The engine's writes are in
//! [`super::engine`].
//!
//! Every write transaction starts with `BEGIN IMMEDIATE`: a deferred
//! transaction that reads first and writes later can fail with
//! `SQLITE_BUSY` instead of waiting when another writer got in between.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::engine::load_snapshots;
use super::{SqliteStore, bulk, query_err};
use crate::store::RUNNER_FORGOTTEN_MS;
use crate::store::pins::{pins, pins_text};
use crate::store::records::stored_step_state;
use crate::store::{
    AttemptRecord, ExecutionFilter, ExecutionRecord, ExecutionStatus, NewExecution, Object,
    Snapshot, StoreError, TaskRunRecord,
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

pub(super) fn execution_record(row: &SqliteRow) -> Result<ExecutionRecord, StoreError> {
    let err = query_err("reading an execution");
    let get = |name: &str| row.try_get::<String, _>(name);
    let input: String = row
        .try_get("input")
        .map_err(query_err("reading an execution"))?;
    let status: String = get("status").map_err(query_err("reading an execution"))?;
    Ok(ExecutionRecord {
        id: get("id").map_err(query_err("reading an execution"))?,
        workflow: get("workflow").map_err(query_err("reading an execution"))?,
        workflow_version: get("workflow_version").map_err(query_err("reading an execution"))?,
        status: status.parse()?,
        input: object(&input, "execution input")?,
        error: row
            .try_get("error")
            .map_err(query_err("reading an execution"))?,
        cancel_requested: row
            .try_get("cancel_requested")
            .map_err(query_err("reading an execution"))?,
        created_at_ms: row
            .try_get("created_at")
            .map_err(query_err("reading an execution"))?,
        finished_at_ms: row.try_get("finished_at").map_err(err)?,
        schedule: row
            .try_get("schedule")
            .map_err(query_err("reading an execution"))?,
        fire_time_ms: row
            .try_get("fire_time")
            .map_err(query_err("reading an execution"))?,
        plugins: pins(
            row.try_get("plugins")
                .map_err(query_err("reading an execution"))?,
        )?,
    })
}

pub(super) fn task_run_record(row: &SqliteRow) -> Result<TaskRunRecord, StoreError> {
    let e = || query_err("reading a task run");
    let status: String = row.try_get("status").map_err(e())?;
    let attempts: i64 = row.try_get("attempts").map_err(e())?;
    Ok(TaskRunRecord {
        step_id: row.try_get("step_id").map_err(e())?,
        status: stored_step_state(&status)?,
        attempts: u32::try_from(attempts).unwrap_or_default(),
        not_before_ms: row.try_get("not_before").map_err(e())?,
        input: opt_object(row.try_get("input").map_err(e())?, "task run input")?,
        output: opt_object(row.try_get("output").map_err(e())?, "task run output")?,
        error: row.try_get("error").map_err(e())?,
        claimed_by: row.try_get("claimed_by").map_err(e())?,
        lease_until_ms: row.try_get("lease_until").map_err(e())?,
    })
}

fn attempt_record(row: &SqliteRow) -> Result<AttemptRecord, StoreError> {
    let e = || query_err("reading an attempt");
    let number: i64 = row.try_get("number").map_err(e())?;
    let logs: Option<String> = row.try_get("logs").map_err(e())?;
    Ok(AttemptRecord {
        step_id: row.try_get("step_id").map_err(e())?,
        number: u32::try_from(number).unwrap_or_default(),
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

/// Inserts executions and their task runs in their first planned states,
/// inside the caller's transaction: a few multi-row statements for the
/// whole batch, not one per execution and step.
pub(super) async fn insert_executions(
    conn: &mut SqliteConnection,
    batch: &[NewExecution],
    now_ms: i64,
) -> Result<(), StoreError> {
    let mut query = bulk::Statements::default();
    push_inserts(&mut query, batch, now_ms);
    query.run(conn, "creating executions").await?;
    Ok(())
}

/// Adds the statements of [`insert_executions`] to `query`. Every value
/// is bound owned, so the statements may wait in a transaction's deferred
/// writes (see `engine.rs`) after `batch` is gone.
pub(super) fn push_inserts(query: &mut bulk::Statements<'_>, batch: &[NewExecution], now_ms: i64) {
    let executions = batch.iter().map(|new| {
        // An execution whose first plan already ends it is stored ended.
        let (status, error) = match &new.finish {
            Some((status, error)) => (status.as_str(), error.clone()),
            None => (ExecutionStatus::Running.as_str(), None),
        };
        (
            [
                new.id.clone(),
                new.workflow.clone(),
                new.workflow_version.clone(),
            ],
            serde_json::Value::Object(new.input.clone()).to_string(),
            status,
            error,
            new.finish.as_ref().map(|_| now_ms),
            pins_text(&new.plugins),
        )
    });
    query.push_iter(
        "INSERT INTO executions
           (id, workflow, workflow_version, input, status, error, created_at, finished_at,
            plugins) ",
        executions,
        "",
        |mut row, ([id, workflow, version], input, status, error, finished_at, plugins)| {
            row.push_bind(id)
                .push_bind(workflow)
                .push_bind(version)
                .push_bind(input)
                .push_bind(status)
                .push_bind(error)
                .push_bind(now_ms)
                .push_bind(finished_at)
                .push_bind(plugins);
        },
    );
    let runs = batch.iter().flat_map(|new| {
        new.steps.iter().map(move |step| {
            let (status, input, not_before) = step.first_row();
            let keys = [new.id.clone(), step.step_id().to_owned()];
            (keys, status.as_str(), input, not_before)
        })
    });
    query.push_iter(
        "INSERT INTO task_runs (execution_id, step_id, status, input, not_before, updated_at) ",
        runs,
        "",
        |mut row, ([execution_id, step_id], status, input, not_before)| {
            row.push_bind(execution_id)
                .push_bind(step_id)
                .push_bind(status)
                .push_bind(input)
                .push_bind(not_before)
                .push_bind(now_ms);
        },
    );
}

impl SqliteStore {
    pub(super) async fn renew_leases(
        &self,
        runner_id: &str,
        runs: &[(String, String)],
        lease_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let doing = "renewing leases";
        let keys = serde_json::to_string(runs).map_err(|e| StoreError::Corrupt {
            what: "task run keys",
            reason: e.to_string(),
        })?;
        sqlx::query(
            "UPDATE task_runs
             SET lease_until = CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) + ?
             WHERE claimed_by = ? AND status = 'running'
               AND (execution_id, step_id) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?))",
        )
        .bind(lease_ms)
        .bind(runner_id)
        .bind(keys)
        .execute(&self.pool)
        .await
        .map_err(query_err(doing))?;
        sqlx::query_scalar(
            "SELECT DISTINCT e.id FROM executions e JOIN task_runs t ON t.execution_id = e.id
             WHERE t.claimed_by = ? AND t.status = 'running' AND e.cancel_requested = 1",
        )
        .bind(runner_id)
        .fetch_all(&self.reader)
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
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(query_err(doing))?;
        sqlx::query(
            "INSERT INTO runners (id, heartbeat_at) VALUES (?1, ?2)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        )
        .bind(runner_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(query_err(doing))?;
        // Runners silent for long are gone (killed): forget them.
        sqlx::query("DELETE FROM runners WHERE heartbeat_at < ?")
            .bind(now_ms.saturating_sub(RUNNER_FORGOTTEN_MS))
            .execute(&mut *tx)
            .await
            .map_err(query_err(doing))?;
        let others: i64 =
            sqlx::query_scalar("SELECT count(*) FROM runners WHERE id <> ? AND heartbeat_at >= ?")
                .bind(runner_id)
                .bind(alive_since_ms)
                .fetch_one(&mut *tx)
                .await
                .map_err(query_err(doing))?;
        tx.commit().await.map_err(query_err(doing))?;
        Ok(u64::try_from(others).unwrap_or_default())
    }

    pub(super) async fn execution(&self, id: &str) -> Result<Option<Snapshot>, StoreError> {
        let mut conn = self
            .reader
            .acquire()
            .await
            .map_err(query_err("reading an execution"))?;
        Ok(load_snapshots(&mut conn, &[id]).await?.remove(id))
    }

    pub(super) async fn list_executions(
        &self,
        filter: &ExecutionFilter,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM executions
             WHERE (?1 IS NULL OR workflow = ?1) AND (?2 IS NULL OR status = ?2)
               AND (?4 IS NULL OR schedule = ?4)
               AND (?5 IS NULL OR created_at < ?5 OR (created_at = ?5 AND id < ?6))
             ORDER BY created_at DESC, id DESC LIMIT ?3",
        )
        .bind(filter.workflow.as_deref())
        .bind(filter.status.map(ExecutionStatus::as_str))
        .bind(i64::from(filter.limit.unwrap_or(100)))
        .bind(filter.schedule.as_deref())
        .bind(filter.before.as_ref().map(|c| c.created_at_ms))
        .bind(filter.before.as_ref().map(|c| c.id.as_str()))
        .fetch_all(&self.reader)
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
            "SELECT * FROM attempts WHERE execution_id = ?1 AND (?2 IS NULL OR step_id = ?2)
             ORDER BY started_at, step_id, number",
        )
        .bind(execution_id)
        .bind(step_id)
        .fetch_all(&self.reader)
        .await
        .map_err(query_err("listing attempts"))?;
        rows.iter().map(attempt_record).collect()
    }
}
