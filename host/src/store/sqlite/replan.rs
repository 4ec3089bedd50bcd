//! Re-planning executions inside a write transaction: each execution read
//! once, its planners run in memory one after the other, and only the rows
//! that changed written back, with one statement per table for the whole
//! batch however many executions and steps it touches.

use std::collections::HashMap;

use sqlx::query_builder::Separated;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, SqliteConnection};

use super::bulk;
use super::executions::{Tail, execution_record, task_run_record};
use super::query_err;
use crate::store::{ExecutionStatus, Planner, Snapshot, StoreError, TaskRunStatus};

/// One re-plan: execution `id` at `now_ms`, decided by `planner`.
pub(super) struct Replan<'a> {
    pub(super) id: &'a str,
    pub(super) now_ms: i64,
    pub(super) planner: Planner<'a>,
}

/// The executions `ids` (repeats allowed) with their task runs, by id; an
/// id with no execution is missing from the map.
pub(super) async fn load_snapshots(
    conn: &mut SqliteConnection,
    ids: &[&str],
) -> Result<HashMap<String, Snapshot>, StoreError> {
    let doing = "reading executions";
    let mut distinct = ids.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    // Both tables in one round trip: rows with a `step_id` are task runs.
    let mut query = bulk::Statements::default();
    query.push(
        "WITH v(id) AS (",
        &distinct,
        ") SELECT e.* FROM executions e JOIN v ON e.id = v.id",
        bind_id,
    );
    query.push(
        "WITH v(id) AS (",
        &distinct,
        ") SELECT t.* FROM task_runs t JOIN v ON t.execution_id = v.id
           ORDER BY t.execution_id, t.step_id",
        bind_id,
    );
    let rows = query.run(conn, doing).await?;
    let (runs, executions): (Vec<_>, Vec<_>) = rows
        .iter()
        .partition(|row| row.try_column("step_id").is_ok());
    let mut snapshots = HashMap::with_capacity(executions.len());
    for row in executions {
        let execution = execution_record(row)?;
        let runs = Vec::new();
        snapshots.insert(execution.id.clone(), Snapshot { execution, runs });
    }
    for row in runs {
        let execution_id: &str = row.try_get("execution_id").map_err(query_err(doing))?;
        if let Some(snapshot) = snapshots.get_mut(execution_id) {
            snapshot.runs.push(task_run_record(row)?);
        }
    }
    Ok(snapshots)
}

fn bind_id<'a>(mut row: Separated<'_, 'a, Sqlite, &'static str>, id: &'a &str) {
    row.push_bind(*id);
}

/// Execution `id` with its task runs, `None` if there is none.
pub(super) async fn load_snapshot(
    conn: &mut SqliteConnection,
    id: &str,
) -> Result<Option<Snapshot>, StoreError> {
    Ok(load_snapshots(conn, &[id]).await?.remove(id))
}

/// Runs every re-plan of `batch` (in order; those of one execution each
/// see the changes of the ones before) on the executions as stored, writes
/// what changed, and returns the executions after, by id. An execution
/// already over is left as it is; one that does not exist is missing from
/// the map. A planner that has just run on an execution is not run on it
/// again: nothing but its own plan changed the execution since, and a
/// planner decides nothing new from the state its own plan made.
///
/// `tail` goes in the round trip of those writes, after them; its rows are
/// returned beside the executions.
pub(super) async fn replan(
    conn: &mut SqliteConnection,
    batch: &[Replan<'_>],
    tail: Tail<'_>,
) -> Result<(HashMap<String, Snapshot>, Vec<SqliteRow>), StoreError> {
    let ids: Vec<&str> = batch.iter().map(|r| r.id).collect();
    let mut snapshots = load_snapshots(conn, &ids).await?;
    let before: HashMap<String, (ExecutionStatus, Vec<TaskRunStatus>)> = snapshots
        .iter()
        .map(|(id, s)| {
            let runs = s.runs.iter().map(|r| r.status).collect();
            (id.clone(), (s.execution.status, runs))
        })
        .collect();
    let mut changed_at: HashMap<&str, i64> = HashMap::new();
    let mut last_run: HashMap<&str, Planner<'_>> = HashMap::new();
    for request in batch {
        let Some(snapshot) = snapshots.get_mut(request.id) else {
            continue;
        };
        if snapshot.execution.status.is_final() {
            continue;
        }
        let planner = request.planner;
        if let Some(last) = last_run.insert(request.id, planner)
            && std::ptr::addr_eq(last, planner)
        {
            continue;
        }
        let plan = planner(snapshot);
        snapshot.apply(&plan, request.now_ms);
        changed_at.insert(request.id, request.now_ms);
    }
    let mut steps = Vec::new();
    let mut finishes = Vec::new();
    for (&id, &now_ms) in &changed_at {
        let (Some(after), Some((status, runs))) = (snapshots.get(id), before.get(id)) else {
            continue;
        };
        for (run, was) in after.runs.iter().zip(runs) {
            if run.status != *was {
                steps.push(StepRow {
                    execution_id: id,
                    step_id: &run.step_id,
                    status: run.status.as_str(),
                    input: run
                        .input
                        .clone()
                        .map(|input| serde_json::Value::Object(input).to_string()),
                    not_before_ms: run.not_before_ms,
                    now_ms,
                });
            }
        }
        if after.execution.status != *status {
            finishes.push(FinishRow {
                id,
                status: after.execution.status,
                error: after.execution.error.as_deref(),
                finished_at_ms: after.execution.finished_at_ms.unwrap_or(now_ms),
            });
        }
    }
    let mut query = bulk::Statements::default();
    push_steps(&mut query, &steps);
    push_finishes(&mut query, &finishes);
    tail.push(&mut query);
    let tail_rows = query.run(conn, "applying a plan").await?;
    Ok((snapshots, tail_rows))
}

/// A task run's new state.
struct StepRow<'a> {
    execution_id: &'a str,
    step_id: &'a str,
    status: &'static str,
    /// Its input as planned (merged when it became ready).
    input: Option<String>,
    not_before_ms: i64,
    now_ms: i64,
}

/// Adds the writes of step changes, exactly as [`Snapshot::apply`] made
/// them in memory. Each update is guarded by the states a plan may move a
/// step from, so a stale plan can never move a step backwards.
fn push_steps<'a>(query: &mut bulk::Statements<'a>, steps: &'a [StepRow<'_>]) {
    query.push(
        "WITH v(e, s, status, input, not_before, now) AS (",
        steps,
        ") UPDATE task_runs
           SET status = v.status, input = v.input, not_before = v.not_before,
               updated_at = v.now
           FROM v
           WHERE task_runs.execution_id = v.e AND task_runs.step_id = v.s
             AND (task_runs.status = 'pending'
                  OR (task_runs.status = 'ready' AND v.status = 'cancelled'))",
        |mut row, step| {
            row.push_bind(step.execution_id)
                .push_bind(step.step_id)
                .push_bind(step.status)
                .push_bind(step.input.as_deref())
                .push_bind(step.not_before_ms)
                .push_bind(step.now_ms);
        },
    );
}

/// An execution's final state.
pub(super) struct FinishRow<'a> {
    pub(super) id: &'a str,
    pub(super) status: ExecutionStatus,
    pub(super) error: Option<&'a str>,
    pub(super) finished_at_ms: i64,
}

/// Adds the writes that end running executions (one already over is left
/// as it is).
pub(super) fn push_finishes<'a>(query: &mut bulk::Statements<'a>, finishes: &'a [FinishRow<'_>]) {
    query.push(
        "WITH v(id, status, error, finished_at) AS (",
        finishes,
        ") UPDATE executions
           SET status = v.status, error = v.error, finished_at = v.finished_at
           FROM v WHERE executions.id = v.id AND executions.status = 'running'",
        |mut row, finish| {
            row.push_bind(finish.id)
                .push_bind(finish.status.as_str())
                .push_bind(finish.error)
                .push_bind(finish.finished_at_ms);
        },
    );
}
