//! New executions: their rows and their task runs' first states, as
//! multi-row statements that can wait in a transaction's deferred writes
//! (see `engine.rs`). Reads are shared with PostgreSQL
//! (`store/registry_sql.rs`).

use sqlx::SqliteConnection;

use super::bulk;
use crate::store::pins::pins_text;
use crate::store::{ExecutionStatus, NewExecution, StoreError};

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
