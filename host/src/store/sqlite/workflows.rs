//! Workflow version queries.

use sqlx::SqliteConnection;

use super::{SqliteStore, query_err};
use crate::store::rows::workflow_record;
use crate::store::{Applied, NewWorkflow, StoreError, WorkflowOwner, WorkflowRecord, Workflows};

#[async_trait::async_trait]
impl Workflows for SqliteStore {
    async fn apply_workflow_as(
        &self,
        workflow: &NewWorkflow<'_>,
        owner: &WorkflowOwner,
        now_ms: i64,
    ) -> Result<Applied, StoreError> {
        let doing = "applying a workflow";
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(query_err(doing))?;
        let applied = apply_workflow_in(&mut tx, workflow, owner, now_ms).await?;
        tx.commit().await.map_err(query_err(doing))?;
        Ok(applied)
    }

    async fn workflow(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<WorkflowRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT name, version, definition, applied_at, owner FROM workflows
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

    async fn list_workflows(&self) -> Result<Vec<WorkflowRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, version, definition, applied_at, owner FROM workflows w
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

/// Stores a workflow version in `conn`'s transaction, if `owner` may (see
/// `Store::apply_workflow_as`).
pub(super) async fn apply_workflow_in(
    conn: &mut SqliteConnection,
    workflow: &NewWorkflow<'_>,
    owner: &WorkflowOwner,
    now_ms: i64,
) -> Result<Applied, StoreError> {
    let doing = "applying a workflow";
    let latest: Option<(String, String)> = sqlx::query_as(
        "SELECT version, owner FROM workflows WHERE name = ?
         ORDER BY applied_at DESC, rowid DESC LIMIT 1",
    )
    .bind(workflow.name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(query_err(doing))?;
    let Some(applied) = owner.applying(workflow, latest)? else {
        return Ok(Applied::Unchanged);
    };
    // Re-applying an older definition makes that version the latest again;
    // the operator applying a plugin's workflow takes the name over.
    sqlx::query(
        "INSERT INTO workflows (name, version, definition, applied_at, owner) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (name, version) DO UPDATE SET applied_at = excluded.applied_at, owner = excluded.owner",
    )
    .bind(workflow.name)
    .bind(workflow.version)
    .bind(workflow.definition.to_string())
    .bind(now_ms)
    .bind(owner.as_stored())
    .execute(&mut *conn)
    .await
    .map_err(query_err(doing))?;
    Ok(applied)
}
