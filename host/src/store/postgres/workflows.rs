//! Workflow version queries.

use sqlx::PgConnection;

use super::{PostgresStore, query_err};
use crate::store::rows::workflow_record;
use crate::store::{Applied, NewWorkflow, StoreError, WorkflowOwner, WorkflowRecord, Workflows};

#[async_trait::async_trait]
impl Workflows for PostgresStore {
    async fn apply_workflow_as(
        &self,
        workflow: &NewWorkflow<'_>,
        owner: &WorkflowOwner,
        now_ms: i64,
    ) -> Result<Applied, StoreError> {
        let doing = "applying a workflow";
        let mut tx = self.pool.begin().await.map_err(query_err(doing))?;
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

    async fn list_workflows(&self) -> Result<Vec<WorkflowRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT ON (name) name, version, definition, applied_at, owner FROM workflows
             ORDER BY name, applied_at DESC, seq DESC",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing workflows"))?;
        rows.iter().map(workflow_record).collect()
    }
}

/// Stores a workflow version in `conn`'s transaction, if `owner` may (see
/// `Store::apply_workflow_as`).
pub(super) async fn apply_workflow_in(
    conn: &mut PgConnection,
    workflow: &NewWorkflow<'_>,
    owner: &WorkflowOwner,
    now_ms: i64,
) -> Result<Applied, StoreError> {
    let doing = "applying a workflow";
    // Two hosts applying the same name serialize here, as SQLite's writer
    // lock makes them: the second sees the first's version. The key
    // includes the schema so tenants do not wait on each other.
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended('corral.workflow:' || current_schema() || ':' || $1, 0))",
    )
    .bind(workflow.name)
    .execute(&mut *conn)
    .await
    .map_err(query_err(doing))?;
    let latest: Option<(String, String)> = sqlx::query_as(
        "SELECT version, owner FROM workflows WHERE name = $1
         ORDER BY applied_at DESC, seq DESC LIMIT 1",
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
        "INSERT INTO workflows (name, version, definition, applied_at, owner) VALUES ($1, $2, $3, $4, $5)
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
