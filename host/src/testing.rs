//! The engine's write algorithm with caller-supplied planners, for the
//! store test suite (`tests/store.rs`), which checks every database against
//! it. Not a stable API: the runtime's own planners are the workflow's
//! rules, and embedders drive executions through [`Runner`](crate::Runner).

use std::sync::Arc;

use crate::runtime::commit::{self, Batch, ClaimRequest, EndToRecord, PlanBy};
use crate::store::{AttemptEnd, Claim, Engine, NewExecution, Plan, Snapshot, StoreError};

/// Decides step changes from an execution's snapshot.
pub type Planner<'a> = &'a (dyn Fn(&Snapshot) -> Plan + Send + Sync);

/// An attempt end to record at a time, with the planner that runs after it.
pub type Finish<'a> = (&'a AttemptEnd, i64, Planner<'a>);

/// The result of each part of [`write`].
#[derive(Debug)]
pub struct Written {
    /// Per execution created.
    pub created: Vec<Result<(), StoreError>>,
    /// Per end: its execution after the batch, `None` if not recorded.
    pub finished: Vec<Result<Option<Arc<Snapshot>>, StoreError>>,
    /// The task runs claimed.
    pub claimed: Result<Vec<Claim>, StoreError>,
}

fn to_record<'a>(ends: &[Finish<'a>]) -> Vec<EndToRecord<'a>> {
    ends.iter()
        .map(|&(end, now_ms, planner)| EndToRecord {
            end,
            now_ms,
            plan_by: PlanBy::Custom(planner),
        })
        .collect()
}

/// Records attempt ends and re-plans their executions in one transaction.
pub async fn finish_attempts(
    engine: &dyn Engine,
    ends: &[Finish<'_>],
) -> Result<Vec<Option<Arc<Snapshot>>>, StoreError> {
    let ends = to_record(ends);
    let batch = Batch {
        ends: &ends,
        ..Batch::default()
    };
    Ok(commit::commit(engine, &batch).await?.finished)
}

/// [`finish_attempts`] for one end.
pub async fn finish_attempt(
    engine: &dyn Engine,
    end: &AttemptEnd,
    now_ms: i64,
    planner: Planner<'_>,
) -> Result<Option<Snapshot>, StoreError> {
    let mut after = finish_attempts(engine, &[(end, now_ms, planner)]).await?;
    Ok(after.pop().flatten().map(Arc::unwrap_or_clone))
}

/// Creates executions, records ends, then claims `(runner, max,
/// lease_until_ms, now_ms)`, in one transaction, or item by item if that
/// fails.
pub async fn write(
    engine: &dyn Engine,
    creates: &[NewExecution],
    now_ms: i64,
    ends: &[Finish<'_>],
    claim: Option<(&str, u32, i64, i64)>,
) -> Written {
    let ends = to_record(ends);
    let claim = claim.map(|(runner, max, lease, now)| ClaimRequest::new(runner, max, lease, now));
    let batch = Batch {
        creates,
        now_ms,
        ends: &ends,
        claim: claim.as_ref(),
    };
    let outcome = commit::commit_or_each(engine, &batch).await;
    Written {
        created: outcome.created,
        finished: outcome.finished,
        claimed: outcome.claimed,
    }
}

/// Returns expired task runs to the queue and re-plans their executions.
pub async fn reap_expired(
    engine: &dyn Engine,
    now_ms: i64,
    except_runner: &str,
    planner: Planner<'_>,
) -> Result<u64, StoreError> {
    commit::reap(engine, now_ms, except_runner, planner).await
}

/// Asks for an execution to be cancelled and re-plans it.
pub async fn cancel_execution(
    engine: &dyn Engine,
    id: &str,
    now_ms: i64,
    planner: Planner<'_>,
) -> Result<Option<Snapshot>, StoreError> {
    commit::cancel(engine, id, now_ms, planner).await
}
