//! How the engine's writes are committed: one algorithm over the store's
//! transactional primitives ([`EngineTx`]), the same on every database.
//!
//! A batch — executions to create, attempt ends to record, a claim — is
//! one transaction:
//!
//! 1. lock the executions the ends belong to (in id order), record the
//!    ends, and load those executions;
//! 2. plan each execution once, in memory (its workflow's rules once per
//!    batch, however many of its steps ended; other planners once per end),
//!    and write only what changed;
//! 3. create the new executions (independent of the ends);
//! 4. claim, so the claim can take the steps the batch just made ready;
//! 5. commit.
//!
//! A transaction the database aborted as a deadlock victim or a
//! serialization failure is tried again from its start. If a batch fails
//! otherwise, [`commit_or_each`] writes its items one by one, each in a
//! transaction of its own, so one bad item cannot fail the others.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::planner;
use crate::store::engine::{Changes, EndWrite, Engine, EngineTx, FinishWrite, StepWrite};
use crate::store::{
    AttemptEnd, Claim, ExecutionId, ExecutionStatus, NewExecution, Plan, Snapshot, StoreError,
};
use crate::workflow::StepState;
use crate::workflow::Workflow;

/// A planner given by reference: decides step changes from a snapshot.
pub(crate) type PlanFn<'a> = &'a (dyn Fn(&Snapshot) -> Plan + Send + Sync);

/// What decides an execution's next steps after one of its attempts ended.
#[derive(Clone, Copy)]
pub(crate) enum PlanBy<'a> {
    /// The workflow's own rules ([`planner::plan`]): run once per execution
    /// in a batch, at the time of the latest of its ends.
    Workflow(&'a Workflow),
    /// Anything else, run for its own end.
    Custom(PlanFn<'a>),
}

/// An attempt end to record, with what plans after it.
#[derive(Clone, Copy)]
pub(crate) struct EndToRecord<'a> {
    pub(crate) end: &'a AttemptEnd,
    /// When it is recorded (ms since the Unix epoch).
    pub(crate) now_ms: i64,
    pub(crate) plan_by: PlanBy<'a>,
}

/// A claim to make: up to `max` ready task runs for `runner_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClaimRequest {
    pub(crate) runner_id: String,
    pub(crate) max: u32,
    /// The lease of each claim runs until then (ms since the Unix epoch).
    pub(crate) lease_until_ms: i64,
    /// Task runs whose backoff ends later are not claimable yet.
    pub(crate) now_ms: i64,
}

/// One transaction's writes, in the order they are written.
#[derive(Clone, Copy, Default)]
pub(crate) struct Batch<'a> {
    pub(crate) creates: &'a [NewExecution],
    /// When the executions are created (ms since the Unix epoch).
    pub(crate) now_ms: i64,
    pub(crate) ends: &'a [EndToRecord<'a>],
    pub(crate) claim: Option<&'a ClaimRequest>,
}

impl ClaimRequest {
    /// A claim of up to `max` task runs for `runner_id`.
    pub(crate) fn new(runner_id: &str, max: u32, lease_until_ms: i64, now_ms: i64) -> Self {
        Self {
            runner_id: runner_id.to_owned(),
            max,
            lease_until_ms,
            now_ms,
        }
    }
}

impl Batch<'_> {
    fn items(&self) -> usize {
        self.creates.len() + self.ends.len() + usize::from(self.claim.is_some())
    }
}

/// What a committed batch did.
pub(crate) struct Committed {
    /// Per end, in order: its execution after the batch (ends of one
    /// execution share one snapshot), `None` if the end was not recorded
    /// because the runner no longer held its claim.
    pub(crate) finished: Vec<Option<Arc<Snapshot>>>,
    /// The task runs claimed.
    pub(crate) claimed: Vec<Claim>,
}

/// How often a transaction aborted for a conflict is tried in all.
const TRIES: u32 = 3;

/// Runs `attempt` again, from its start, while the database aborts it for
/// a conflict with another transaction (see [`StoreError::is_conflict`]).
async fn retrying_conflicts<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(error) if error.is_conflict() && tries < TRIES => {
                tries += 1;
                tracing::debug!(%error, tries, "transaction conflict; trying again");
                tokio::time::sleep(Duration::from_millis(5 * u64::from(tries))).await;
            }
            result => return result,
        }
    }
}

/// Writes `batch` in one transaction (see the module docs).
pub(crate) async fn commit(
    engine: &dyn Engine,
    batch: &Batch<'_>,
) -> Result<Committed, StoreError> {
    retrying_conflicts(|| commit_once(engine, batch)).await
}

async fn commit_once(engine: &dyn Engine, batch: &Batch<'_>) -> Result<Committed, StoreError> {
    let mut tx = engine.begin().await?;
    let finished = record_and_replan(&mut *tx, batch.ends).await?;
    // New executions are independent of the ends; after them, a store may
    // send the re-plan's writes with the inserts.
    if !batch.creates.is_empty() {
        tx.create(batch.creates, batch.now_ms).await?;
    }
    let claimed = match batch.claim {
        Some(c) => {
            tx.claim(&c.runner_id, c.max, c.lease_until_ms, c.now_ms)
                .await?
        }
        None => Vec::new(),
    };
    tx.commit().await?;
    Ok(Committed { finished, claimed })
}

/// Steps 1 and 2 of the module docs.
async fn record_and_replan(
    tx: &mut dyn EngineTx,
    ends: &[EndToRecord<'_>],
) -> Result<Vec<Option<Arc<Snapshot>>>, StoreError> {
    if ends.is_empty() {
        return Ok(Vec::new());
    }
    let ids = distinct(ends.iter().map(|e| e.end.claim.execution_id.as_str()));
    tx.lock(&ids).await?;
    let writes: Vec<EndWrite<'_>> = ends
        .iter()
        .map(|e| EndWrite {
            end: e.end,
            now_ms: e.now_ms,
        })
        .collect();
    let recorded = tx.record_ends(&writes).await?;
    let recorded_ends: Vec<&EndToRecord<'_>> = ends
        .iter()
        .zip(&recorded)
        .filter_map(|(end, recorded)| recorded.then_some(end))
        .collect();
    let ids = distinct(
        recorded_ends
            .iter()
            .map(|e| e.end.claim.execution_id.as_str()),
    );
    let mut snapshots = tx.load(&ids).await?;
    let requests = plan_requests(&recorded_ends);
    let planned = plan(&mut snapshots, &requests);
    tx.apply(&planned.changes(&snapshots)).await?;
    let after: HashMap<ExecutionId, Arc<Snapshot>> = snapshots
        .into_iter()
        .map(|(id, snapshot)| (id, Arc::new(snapshot)))
        .collect();
    Ok(ends
        .iter()
        .zip(recorded)
        .map(|(end, recorded)| {
            recorded
                .then(|| after.get(&end.end.claim.execution_id).cloned())
                .flatten()
        })
        .collect())
}

/// The sorted, distinct ids among `ids`: the lock order.
fn distinct<'a>(ids: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut ids: Vec<&str> = ids.collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// One planner to run on one execution at a time.
struct PlanRequest<'a> {
    id: &'a str,
    plan_by: PlanBy<'a>,
    now_ms: i64,
}

/// The planners to run after `ends`, in the order of the ends: an
/// execution's workflow rules once, at its first end, timed at the latest
/// of its ends; other planners once per end.
fn plan_requests<'a>(ends: &[&EndToRecord<'a>]) -> Vec<PlanRequest<'a>> {
    let mut latest: HashMap<&str, i64> = HashMap::new();
    for end in ends {
        if let PlanBy::Workflow(_) = end.plan_by {
            let at = latest
                .entry(&end.end.claim.execution_id)
                .or_insert(end.now_ms);
            *at = (*at).max(end.now_ms);
        }
    }
    let mut requests = Vec::with_capacity(ends.len());
    for end in ends {
        let id = end.end.claim.execution_id.as_str();
        match end.plan_by {
            PlanBy::Workflow(_) => {
                // Only the first of an execution's workflow ends is left.
                if let Some(now_ms) = latest.remove(id) {
                    requests.push(PlanRequest {
                        id,
                        plan_by: end.plan_by,
                        now_ms,
                    });
                }
            }
            PlanBy::Custom(_) => requests.push(PlanRequest {
                id,
                plan_by: end.plan_by,
                now_ms: end.now_ms,
            }),
        }
    }
    requests
}

/// The executions a batch planned, with their states before.
struct Planned {
    /// Per execution planned: its status and its runs' statuses before,
    /// and when it was last planned.
    before: HashMap<ExecutionId, (ExecutionStatus, Vec<StepState>, i64)>,
}

/// Runs `requests` in order on `snapshots` (those of one execution each
/// see the changes of the ones before), skipping executions already over
/// or not found.
fn plan(snapshots: &mut HashMap<ExecutionId, Snapshot>, requests: &[PlanRequest<'_>]) -> Planned {
    let mut before: HashMap<ExecutionId, (ExecutionStatus, Vec<StepState>, i64)> = HashMap::new();
    for request in requests {
        let Some(snapshot) = snapshots.get_mut(request.id) else {
            continue;
        };
        if snapshot.execution.status.is_final() {
            continue;
        }
        let plan = match request.plan_by {
            PlanBy::Workflow(workflow) => planner::plan(workflow, snapshot, request.now_ms),
            PlanBy::Custom(planner) => planner(snapshot),
        };
        let entry = before.entry(request.id.into()).or_insert_with(|| {
            let runs = snapshot.runs.iter().map(|r| r.status).collect();
            (snapshot.execution.status, runs, request.now_ms)
        });
        entry.2 = request.now_ms;
        snapshot.apply(&plan, request.now_ms);
    }
    Planned { before }
}

impl Planned {
    /// What changed between the states before and `after`: the rows to
    /// write.
    fn changes<'a>(&'a self, after: &'a HashMap<ExecutionId, Snapshot>) -> Changes<'a> {
        let mut changes = Changes::default();
        for (id, (status, runs, now_ms)) in &self.before {
            let Some(snapshot) = after.get(id) else {
                continue;
            };
            for (run, was) in snapshot.runs.iter().zip(runs) {
                if run.status != *was {
                    changes.steps.push(StepWrite {
                        execution_id: id,
                        step_id: &run.step_id,
                        status: run.status,
                        input: run.input.as_ref(),
                        not_before_ms: run.not_before_ms,
                        now_ms: *now_ms,
                    });
                }
            }
            if snapshot.execution.status != *status {
                changes.finishes.push(FinishWrite {
                    execution_id: id,
                    status: snapshot.execution.status,
                    error: snapshot.execution.error.as_deref(),
                    finished_at_ms: snapshot.execution.finished_at_ms.unwrap_or(*now_ms),
                });
            }
        }
        changes
    }
}

/// Per item of a batch, what became of it: see [`commit_or_each`].
pub(crate) struct Outcome {
    /// Whether the batch was written in one transaction.
    pub(crate) together: bool,
    pub(crate) created: Vec<Result<(), StoreError>>,
    pub(crate) finished: Vec<Result<Option<Arc<Snapshot>>, StoreError>>,
    /// `Ok` and empty when the batch asked for no claim.
    pub(crate) claimed: Result<Vec<Claim>, StoreError>,
}

/// Writes `batch` in one transaction; if that fails, writes each of its
/// items in a transaction of its own, so one bad item cannot fail the
/// others. The one fallback.
pub(crate) async fn commit_or_each(engine: &dyn Engine, batch: &Batch<'_>) -> Outcome {
    let error = match commit(engine, batch).await {
        Ok(committed) => {
            return Outcome {
                together: true,
                created: batch.creates.iter().map(|_| Ok(())).collect(),
                finished: committed.finished.into_iter().map(Ok).collect(),
                claimed: Ok(committed.claimed),
            };
        }
        Err(error) => error,
    };
    let mut outcome = Outcome {
        together: false,
        created: Vec::with_capacity(batch.creates.len()),
        finished: Vec::with_capacity(batch.ends.len()),
        claimed: Ok(Vec::new()),
    };
    if batch.items() == 1 {
        // Nothing to separate: the error is the one item's.
        if !batch.creates.is_empty() {
            outcome.created.push(Err(error));
        } else if !batch.ends.is_empty() {
            outcome.finished.push(Err(error));
        } else {
            outcome.claimed = Err(error);
        }
        return outcome;
    }
    tracing::warn!(
        %error,
        creates = batch.creates.len(),
        ends = batch.ends.len(),
        "writing a batch failed; writing its items one by one"
    );
    for new in batch.creates.chunks(1) {
        let alone = Batch {
            creates: new,
            now_ms: batch.now_ms,
            ..Batch::default()
        };
        outcome
            .created
            .push(commit(engine, &alone).await.map(|_| ()));
    }
    for end in batch.ends.chunks(1) {
        let alone = Batch {
            ends: end,
            ..Batch::default()
        };
        let after = commit(engine, &alone).await;
        outcome
            .finished
            .push(after.map(|mut c| c.finished.pop().flatten()));
    }
    if let Some(claim) = batch.claim {
        let alone = Batch {
            claim: Some(claim),
            ..Batch::default()
        };
        outcome.claimed = commit(engine, &alone).await.map(|c| c.claimed);
    }
    outcome
}

/// Returns task runs whose lease expired to the queue (their attempts
/// interrupted), except those of `except_runner`, and plans their
/// executions with `plan` (a cancelled execution must not run its reaped
/// steps again). Returns how many.
pub(crate) async fn reap(
    engine: &dyn Engine,
    now_ms: i64,
    except_runner: &str,
    plan_by: PlanFn<'_>,
) -> Result<u64, StoreError> {
    // Every host reaps every few hundred milliseconds: look without a
    // transaction first, and take locks only when there is something.
    let expired = engine.expired(now_ms, except_runner).await?;
    if expired.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&str> = expired.iter().map(String::as_str).collect();
    retrying_conflicts(|| async {
        let mut tx = engine.begin().await?;
        tx.lock(&ids).await?;
        // Under the locks, again: another host may have reaped them, or
        // their runner renewed or finished them in between.
        let requeued = tx.requeue_expired(&ids, now_ms, except_runner).await?;
        let touched = distinct(requeued.iter().map(String::as_str));
        if !touched.is_empty() {
            replan_all(&mut *tx, &touched, now_ms, plan_by).await?;
        }
        tx.commit().await?;
        Ok(requeued.len() as u64)
    })
    .await
}

/// Asks for execution `id` to be cancelled and plans it with `plan`:
/// steps not yet running are cancelled at once; running ones end when
/// their runner stops them. Returns the execution after, `None` if there
/// is no such id.
pub(crate) async fn cancel(
    engine: &dyn Engine,
    id: &str,
    now_ms: i64,
    plan_by: PlanFn<'_>,
) -> Result<Option<Snapshot>, StoreError> {
    retrying_conflicts(|| async {
        let mut tx = engine.begin().await?;
        tx.lock(&[id]).await?;
        let asked = tx.request_cancel(id).await?;
        let mut after = if asked {
            replan_all(&mut *tx, &[id], now_ms, plan_by).await?
        } else {
            tx.load(&[id]).await?
        };
        let Some(snapshot) = after.remove(id) else {
            return Ok(None);
        };
        tx.commit().await?;
        Ok(Some(snapshot))
    })
    .await
}

/// Loads the executions `ids`, plans each with `plan_by` and writes what
/// changed; returns them after.
async fn replan_all(
    tx: &mut dyn EngineTx,
    ids: &[&str],
    now_ms: i64,
    plan_by: PlanFn<'_>,
) -> Result<HashMap<ExecutionId, Snapshot>, StoreError> {
    let mut snapshots = tx.load(ids).await?;
    let requests: Vec<PlanRequest<'_>> = ids
        .iter()
        .map(|id| PlanRequest {
            id,
            plan_by: PlanBy::Custom(plan_by),
            now_ms,
        })
        .collect();
    let planned = plan(&mut snapshots, &requests);
    let changes = planned.changes(&snapshots);
    if !changes.is_empty() {
        tx.apply(&changes).await?;
    }
    Ok(snapshots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AttemptResult, Object};
    use crate::workflow::Step;

    fn end(execution_id: &str, step_id: &str) -> AttemptEnd {
        AttemptEnd {
            claim: Claim {
                execution_id: execution_id.into(),
                workflow: "w".into(),
                workflow_version: "v1".into(),
                step_id: step_id.into(),
                attempts: 1,
                number: 1,
                input: Object::new(),
                plugins: Default::default(),
            },
            runner_id: "r".into(),
            outcome: "succeeded".into(),
            result: AttemptResult::Succeeded(Object::new()),
            logs: serde_json::json!([]),
            stdout: String::new(),
            stderr: String::new(),
        }
    }

    /// An execution's workflow rules run once per batch, at its first end
    /// and timed at its latest; other planners run once per end, in order.
    #[test]
    fn workflow_rules_run_once_per_execution() -> anyhow::Result<()> {
        let workflow = Workflow::builder("w")
            .step(Step::new("a", "p/t"))
            .step(Step::new("b", "p/t"))
            .build()?;
        let other = |_: &Snapshot| Plan::default();
        let ends = [
            end("e1", "a"),
            end("e2", "a"),
            end("e1", "b"),
            end("e1", "c"),
        ];
        let by = [
            PlanBy::Workflow(&workflow),
            PlanBy::Workflow(&workflow),
            PlanBy::Custom(&other),
            PlanBy::Workflow(&workflow),
        ];
        let to_record: Vec<EndToRecord<'_>> = ends
            .iter()
            .zip(by)
            .enumerate()
            .map(|(i, (end, plan_by))| EndToRecord {
                end,
                now_ms: 10 + i as i64,
                plan_by,
            })
            .collect();
        let refs: Vec<&EndToRecord<'_>> = to_record.iter().collect();
        let requests: Vec<(&str, bool, i64)> = plan_requests(&refs)
            .iter()
            .map(|r| (r.id, matches!(r.plan_by, PlanBy::Workflow(_)), r.now_ms))
            .collect();
        assert_eq!(
            requests,
            [("e1", true, 13), ("e2", true, 11), ("e1", false, 12)]
        );
        Ok(())
    }
}
