//! Workflow version queries.

use sqlx::Row;
use sqlx::postgres::PgRow;

use super::{PostgresStore, query_err};
use crate::store::{Applied, StoreError, WorkflowRecord};

fn workflow_record(row: &PgRow) -> Result<WorkflowRecord, StoreError> {
    let e = || query_err("reading a workflow");
    let definition: String = row.try_get("definition").map_err(e())?;
    Ok(WorkflowRecord {
        name: row.try_get("name").map_err(e())?,
        version: row.try_get("version").map_err(e())?,
        definition: serde_json::from_str(&definition).map_err(|e| StoreError::Corrupt {
            what: "workflow definition",
            reason: e.to_string(),
        })?,
        applied_at_ms: row.try_get("applied_at").map_err(e())?,
    })
}

impl PostgresStore {
    pub(super) async fn apply_workflow(
        &self,
        name: &str,
        version: &str,
        definition: &serde_json::Value,
        now_ms: i64,
    ) -> Result<Applied, StoreError> {
        let doing = "applying a workflow";
        let mut tx = self.pool.begin().await.map_err(query_err(doing))?;
        // Two hosts applying the same name serialize here, as SQLite's
        // writer lock makes them: the second sees the first's version. The
        // key includes the schema so tenants do not wait on each other.
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended('corral.workflow:' || current_schema() || ':' || $1, 0))",
        )
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(query_err(doing))?;
        let latest: Option<String> = sqlx::query_scalar(
            "SELECT version FROM workflows WHERE name = $1
             ORDER BY applied_at DESC, seq DESC LIMIT 1",
        )
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(query_err(doing))?;
        let applied = match latest {
            Some(latest) if latest == version => return Ok(Applied::Unchanged),
            Some(previous) => Applied::Updated { previous },
            None => Applied::Created,
        };
        // Re-applying an older definition makes that version the latest again.
        sqlx::query(
            "INSERT INTO workflows (name, version, definition, applied_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name, version) DO UPDATE SET applied_at = excluded.applied_at",
        )
        .bind(name)
        .bind(version)
        .bind(definition.to_string())
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(query_err(doing))?;
        tx.commit().await.map_err(query_err(doing))?;
        Ok(applied)
    }

    pub(super) async fn workflow(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<WorkflowRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT name, version, definition, applied_at FROM workflows
             WHERE name = $1 AND ($2::text IS NULL OR version = $2)
             ORDER BY applied_at DESC, seq DESC LIMIT 1",
        )
        .bind(name)
        .bind(version)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("looking up a workflow"))?;
        row.as_ref().map(workflow_record).transpose()
    }

    pub(super) async fn list_workflows(&self) -> Result<Vec<WorkflowRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT ON (name) name, version, definition, applied_at FROM workflows
             ORDER BY name, applied_at DESC, seq DESC",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing workflows"))?;
        rows.iter().map(workflow_record).collect()
    }
}
