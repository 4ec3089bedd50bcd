//! Leases, heartbeats and wake-ups: what the hosts sharing this
//! database tell each other.

use super::{SqliteStore, query_err};
use crate::store::hosts::HELD_CLAIMS;
use crate::store::{ExecutionId, Hosts, RUNNER_FORGOTTEN_MS, RunKey, StoreError};

#[async_trait::async_trait]
impl Hosts for SqliteStore {
    async fn renew_leases(
        &self,
        runner_id: &str,
        runs: &[RunKey],
        lease_ms: i64,
    ) -> Result<Vec<ExecutionId>, StoreError> {
        let doing = "renewing leases";
        let pairs: Vec<(&str, &str)> = runs
            .iter()
            .map(|key| (key.execution_id.as_str(), key.step_id.as_str()))
            .collect();
        let keys = serde_json::to_string(&pairs).map_err(|e| StoreError::Corrupt {
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

    async fn heartbeat(
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

    async fn held_claims(&self, runner_id: &str) -> Result<Vec<RunKey>, StoreError> {
        sqlx::query_as(HELD_CLAIMS)
            .bind(runner_id)
            .fetch_all(&self.reader)
            .await
            .map_err(query_err("listing held claims"))
    }
}
