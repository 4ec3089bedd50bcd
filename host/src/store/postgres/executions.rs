//! Executions, task runs, attempts: row decoding, leases, heartbeats,
//! reads and wake-ups. The engine's writes are in [`super::engine`].
//!
//! Lock order (see the module above): execution rows by id, then task runs
//! by `(execution_id, step_id)`, then attempts.

use super::engine::load_snapshots;
use super::{PostgresStore, query_err};
use crate::store::rows::{attempt_record, execution_record};
use crate::store::{
    AttemptRecord, ExecutionFilter, ExecutionRecord, ExecutionStatus, Reads, Snapshot, StoreError,
};

#[async_trait::async_trait]
impl Reads for PostgresStore {
    async fn execution(&self, id: &str) -> Result<Option<Snapshot>, StoreError> {
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

    async fn list_executions(
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

    async fn attempts(
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
