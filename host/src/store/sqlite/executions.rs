//! Executions, task runs, attempts: row decoding, inserting new
//! executions, leases, heartbeats and reads. The engine's writes are in
//! [`super::engine`].
//!
//! Every write transaction starts with `BEGIN IMMEDIATE`: a deferred
//! transaction that reads first and writes later can fail with
//! `SQLITE_BUSY` instead of waiting when another writer got in between.

use sqlx::SqliteConnection;

use super::engine::load_snapshots;
use super::{SqliteStore, bulk, query_err};
use crate::store::pins::pins_text;
use crate::store::rows::{attempt_record, execution_record};
use crate::store::{
    AttemptRecord, ExecutionFilter, ExecutionRecord, ExecutionStatus, NewExecution, Reads,
    Snapshot, StoreError,
};

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
                new.id.to_string(),
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
            let keys = [new.id.to_string(), step.step_id().to_owned()];
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

#[async_trait::async_trait]
impl Reads for SqliteStore {
    async fn execution(&self, id: &str) -> Result<Option<Snapshot>, StoreError> {
        let mut conn = self
            .reader
            .acquire()
            .await
            .map_err(query_err("reading an execution"))?;
        Ok(load_snapshots(&mut conn, &[id]).await?.remove(id))
    }

    async fn list_executions(
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

    async fn attempts(
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
