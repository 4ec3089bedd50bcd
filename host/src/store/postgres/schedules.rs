//! Schedules and their fires.

use super::engine::insert_executions;
use super::hosts::{WORK, notify};
use super::{PostgresStore, query_err};
use crate::store::rows::schedule_record;
use crate::store::{Applied, ScheduleFire, ScheduleRecord, Schedules, StoreError};

#[async_trait::async_trait]
impl Schedules for PostgresStore {
    async fn put_schedule(
        &self,
        name: &str,
        workflow: &str,
        definition: &serde_json::Value,
        now_ms: i64,
    ) -> Result<Applied, StoreError> {
        let doing = "storing a schedule";
        let mut tx = self.pool.begin().await.map_err(query_err(doing))?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT definition FROM schedules WHERE name = $1 FOR UPDATE")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(query_err(doing))?;
        let text = definition.to_string();
        let applied = match existing {
            Some(old) if old == text => return Ok(Applied::Unchanged),
            Some(_) => Applied::Updated {
                previous: name.to_owned(),
            },
            None => Applied::Created,
        };
        sqlx::query(
            "INSERT INTO schedules (name, workflow, definition, anchor, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $4, $4)
             ON CONFLICT (name) DO UPDATE SET workflow = excluded.workflow,
                 definition = excluded.definition, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(workflow)
        .bind(text)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(query_err(doing))?;
        tx.commit().await.map_err(query_err(doing))?;
        Ok(applied)
    }

    async fn schedule(&self, name: &str) -> Result<Option<ScheduleRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM schedules WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading a schedule"))?;
        row.as_ref().map(schedule_record).transpose()
    }

    async fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM schedules ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("listing schedules"))?;
        rows.iter().map(schedule_record).collect()
    }

    async fn set_schedule_paused(
        &self,
        name: &str,
        paused: bool,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE schedules SET paused = $1, updated_at = $2,
                    anchor = CASE WHEN $1 THEN anchor ELSE GREATEST(anchor, $2) END
             WHERE name = $3",
        )
        .bind(paused)
        .bind(now_ms)
        .bind(name)
        .execute(&self.pool)
        .await
        .map_err(query_err("pausing or resuming a schedule"))?;
        Ok(updated.rows_affected() > 0)
    }

    async fn remove_schedule(&self, name: &str) -> Result<bool, StoreError> {
        let removed = sqlx::query("DELETE FROM schedules WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(query_err("removing a schedule"))?;
        Ok(removed.rows_affected() > 0)
    }

    async fn fire_schedule(&self, fire: &ScheduleFire, now_ms: i64) -> Result<bool, StoreError> {
        let doing = "firing a schedule";
        let mut tx = self.pool.begin().await.map_err(query_err(doing))?;
        let inserted = sqlx::query(
            "INSERT INTO schedule_fires (schedule, fire_time, execution_id, fired_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (schedule, fire_time) DO NOTHING",
        )
        .bind(&fire.schedule)
        .bind(fire.fire_time_ms)
        .bind(fire.execution.as_ref().map(|e| e.id.as_str()))
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(query_err(doing))?;
        if inserted.rows_affected() == 0 {
            return Ok(false);
        }
        if let Some(new) = &fire.execution {
            if insert_executions(&mut tx, std::slice::from_ref(new), now_ms).await? {
                // Every host hears of the new work at commit, not only this
                // one's claim loop.
                notify(&mut tx, WORK).await?;
            }
            sqlx::query("UPDATE executions SET schedule = $1, fire_time = $2 WHERE id = $3")
                .bind(&fire.schedule)
                .bind(fire.fire_time_ms)
                .bind(&new.id)
                .execute(&mut *tx)
                .await
                .map_err(query_err(doing))?;
        }
        sqlx::query("UPDATE schedules SET anchor = GREATEST(anchor, $1) WHERE name = $2")
            .bind(fire.fire_time_ms)
            .bind(&fire.schedule)
            .execute(&mut *tx)
            .await
            .map_err(query_err(doing))?;
        tx.commit().await.map_err(query_err(doing))?;
        Ok(true)
    }

    async fn schedule_running(&self, name: &str) -> Result<bool, StoreError> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM executions WHERE schedule = $1 AND status = 'running')",
        )
        .bind(name)
        .fetch_one(&self.pool)
        .await
        .map_err(query_err("checking a schedule's executions"))
    }
}
