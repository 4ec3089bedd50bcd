//! Workflow version queries.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{SqliteStore, query_err};
use crate::store::{Applied, StoreError, WorkflowRecord};

fn workflow_record(row: &SqliteRow) -> Result<WorkflowRecord, StoreError> {
    let definition: String = row
        .try_get("definition")
        .map_err(query_err("reading a workflow"))?;
    Ok(WorkflowRecord {
        name: row
            .try_get("name")
            .map_err(query_err("reading a workflow"))?,
        version: row
            .try_get("version")
            .map_err(query_err("reading a workflow"))?,
        definition: serde_json::from_str(&definition).map_err(|e| StoreError::Corrupt {
            what: "workflow definition",
            reason: e.to_string(),
        })?,
        applied_at_ms: row
            .try_get("applied_at")
            .map_err(query_err("reading a workflow"))?,
    })
}

impl SqliteStore {
    pub(super) async fn apply_workflow(
        &self,
        name: &str,
        version: &str,
        definition: &serde_json::Value,
        now_ms: i64,
    ) -> Result<Applied, StoreError> {
        let doing = "applying a workflow";
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(query_err(doing))?;
        let latest: Option<String> = sqlx::query_scalar(
            "SELECT version FROM workflows WHERE name = ? ORDER BY applied_at DESC, rowid DESC LIMIT 1",
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
            "INSERT INTO workflows (name, version, definition, applied_at) VALUES (?, ?, ?, ?)
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
             WHERE name = ?1 AND (?2 IS NULL OR version = ?2)
             ORDER BY applied_at DESC, rowid DESC LIMIT 1",
        )
        .bind(name)
        .bind(version)
        .fetch_optional(&self.reader)
        .await
        .map_err(query_err("looking up a workflow"))?;
        row.as_ref().map(workflow_record).transpose()
    }

    pub(super) async fn list_workflows(&self) -> Result<Vec<WorkflowRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, version, definition, applied_at FROM workflows w
             WHERE rowid = (SELECT rowid FROM workflows x WHERE x.name = w.name
                            ORDER BY applied_at DESC, rowid DESC LIMIT 1)
             ORDER BY name",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(query_err("listing workflows"))?;
        rows.iter().map(workflow_record).collect()
    }
}
