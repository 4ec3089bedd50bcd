//! Leases, heartbeats and wake-ups: what the hosts sharing this
//! database tell each other.

use std::time::Duration;

use sqlx::PgConnection;

use super::{PostgresStore, query_err};
use crate::store::hosts::HELD_CLAIMS;
use crate::store::{ExecutionId, Hosts, RUNNER_FORGOTTEN_MS, RunKey, StoreError, Wakeup, Wakeups};

#[async_trait::async_trait]
impl Hosts for PostgresStore {
    async fn renew_leases(
        &self,
        runner_id: &str,
        runs: &[RunKey],
        lease_ms: i64,
    ) -> Result<Vec<ExecutionId>, StoreError> {
        let doing = "renewing leases";
        let (executions, steps): (Vec<&str>, Vec<&str>) = runs
            .iter()
            .map(|key| (key.execution_id.as_str(), key.step_id.as_str()))
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

    async fn heartbeat(
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

    async fn held_claims(&self, runner_id: &str) -> Result<Vec<RunKey>, StoreError> {
        sqlx::query_as(HELD_CLAIMS)
            .bind(runner_id)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("listing held claims"))
    }

    async fn listen(&self) -> Result<Option<Box<dyn Wakeups>>, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool)
            .await
            .map_err(query_err("listening for wake-ups"))?;
        listener
            .listen(&channel(&self.schema))
            .await
            .map_err(query_err("listening for wake-ups"))?;
        Ok(Some(Box::new(Listener(listener))))
    }
}

/// Wake-ups from `LISTEN`.
struct Listener(sqlx::postgres::PgListener);

#[async_trait::async_trait]
impl Wakeups for Listener {
    async fn next(&mut self) -> Option<Wakeup> {
        loop {
            match self.0.recv().await {
                Ok(notification) => {
                    let payload = notification.payload();
                    return Some(match payload.strip_prefix(CANCEL) {
                        Some(id) => Wakeup::Cancel(id.into()),
                        None => Wakeup::Work,
                    });
                }
                Err(sqlx::Error::PoolClosed) => return None,
                Err(error) => {
                    // The listener reconnects on the next call; meanwhile
                    // the runner's polling covers what was missed.
                    tracing::warn!(%error, "lost the wake-up connection; reconnecting");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
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
