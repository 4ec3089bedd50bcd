//! The writes of a runner and how a batch of them is written: every
//! execution submitted, attempt end and claim queued while the last
//! transaction committed go to [`commit`] together. On a store with
//! one writer (SQLite) all three kinds share one queue, so one transaction
//! carries a whole pipeline's writes; elsewhere each kind has a queue of
//! its own (see `Shared::write`).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::commit::{self, Batch, ClaimRequest, EndToRecord, PlanBy};
use crate::store::{AttemptEnd, Claim, NewExecution, Plan, Snapshot, Store, StoreError, now_ms};
use crate::workflow::Workflow;

/// Decides step changes from an execution's snapshot (owned: it may run in
/// another attempt's task).
pub(crate) type OwnedPlanner = Arc<dyn Fn(&Snapshot) -> Plan + Send + Sync>;

/// What decides the steps that follow an attempt end.
#[derive(Clone)]
pub(crate) enum EndPlanner {
    /// The workflow's own rules: run once per execution in a batch,
    /// however many of its ends it holds (see [`commit`]).
    Workflow(Arc<Workflow>),
    /// Anything else, run for this end alone.
    Custom(OwnedPlanner),
}

/// An attempt end waiting to be recorded.
#[derive(Clone)]
pub(crate) struct QueuedEnd {
    /// Shared, so that a retry after a transient error re-queues it
    /// without copying its output and captured text.
    pub(crate) end: Arc<AttemptEnd>,
    pub(crate) now_ms: i64,
    pub(crate) planner: EndPlanner,
}

/// A write waiting for the next transaction.
pub(crate) enum Write {
    /// A submitted execution.
    Create(NewExecution),
    /// An attempt that ended.
    End(QueuedEnd),
    /// The claim loop asking for work.
    Claim(ClaimRequest),
}

/// What became of a [`Write`], of the same kind.
pub(crate) enum WriteResult {
    Created(Result<(), StoreError>, Ready),
    /// See [`commit::Committed`]: ends of one execution in a batch share
    /// its snapshot.
    Recorded(Result<Option<Arc<Snapshot>>, StoreError>, Ready),
    Claimed(Result<Vec<Claim>, StoreError>),
}

/// Whether the steps a write made ready may still wait for the claim loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ready {
    /// A claim ran after the write, in its transaction, and took fewer task
    /// runs than it asked for: every ready step this runner could take, it
    /// took. No need to wake the claim loop.
    Taken,
    /// No such claim ran (or it took all it asked for): wake the claim loop
    /// if the write made steps ready.
    MaybeLeft,
}

/// Writes `batch` (see [`commit::commit_or_each`]): every execution,
/// attempt end and (first) claim queued while the last transaction
/// committed, in one transaction. Once `stop_claiming` is cancelled, claims
/// take nothing.
pub(crate) async fn write(
    store: Arc<dyn Store>,
    batch: Vec<Write>,
    stop_claiming: CancellationToken,
) -> Vec<WriteResult> {
    let mut creates = Vec::new();
    let mut ends = Vec::new();
    let mut claims = Vec::new();
    let kinds: Vec<Kind> = batch
        .into_iter()
        .map(|write| match write {
            Write::Create(new) => {
                creates.push(new);
                Kind::Create
            }
            Write::End(end) => {
                ends.push(end);
                Kind::End
            }
            Write::Claim(claim) => {
                claims.push(claim);
                Kind::Claim
            }
        })
        .collect();
    let to_record: Vec<EndToRecord<'_>> = ends
        .iter()
        .map(|q| EndToRecord {
            end: &q.end,
            now_ms: q.now_ms,
            plan_by: match &q.planner {
                EndPlanner::Workflow(workflow) => PlanBy::Workflow(workflow),
                EndPlanner::Custom(planner) => PlanBy::Custom(&**planner),
            },
        })
        .collect();
    let now = now_ms();
    // A claim may have waited in the queue for a batch to ride with: its
    // clock and lease start now.
    for claim in &mut claims {
        let lease_ms = claim.lease_until_ms - claim.now_ms;
        claim.now_ms = now;
        claim.lease_until_ms = now.saturating_add(lease_ms);
    }
    let claims_asked = claims.len();
    let claiming = !stop_claiming.is_cancelled();
    let mut claims = claims.iter().filter(|_| claiming);
    let first_claim = claims.next();
    let started = std::time::Instant::now();
    let batch = Batch {
        creates: &creates,
        now_ms: now,
        ends: &to_record,
        claim: first_claim,
    };
    let outcome = commit::commit_or_each(&*store, &batch).await;
    tracing::debug!(
        creates = creates.len(),
        ends = ends.len(),
        claims = claims_asked,
        together = outcome.together,
        micros = started.elapsed().as_micros(),
        "batch written"
    );
    // The steps the batch made ready were all taken if its claim ran in
    // the same transaction and took fewer than it asked for.
    let ready = match (&outcome.claimed, first_claim) {
        (Ok(taken), Some(asked))
            if outcome.together
                && taken.len() < usize::try_from(asked.max).unwrap_or(usize::MAX) =>
        {
            Ready::Taken
        }
        _ => Ready::MaybeLeft,
    };
    let mut created = outcome.created.into_iter();
    let mut recorded = outcome.finished.into_iter();
    let mut claimed = vec![outcome.claimed];
    // Only the claim loop claims, one claim at a time: a second one in a
    // batch is unexpected, but is served too.
    for claim in claims {
        let alone = Batch {
            claim: Some(claim),
            ..Batch::default()
        };
        claimed.push(commit::commit(&*store, &alone).await.map(|c| c.claimed));
    }
    let mut claimed = claimed.into_iter();
    kinds
        .into_iter()
        .map(|kind| match kind {
            Kind::Create => {
                WriteResult::Created(created.next().unwrap_or_else(|| Err(missing())), ready)
            }
            Kind::End => {
                WriteResult::Recorded(recorded.next().unwrap_or_else(|| Err(missing())), ready)
            }
            // A claim after the stop took nothing.
            Kind::Claim => WriteResult::Claimed(claimed.next().unwrap_or_else(|| Ok(Vec::new()))),
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Kind {
    Create,
    End,
    Claim,
}

/// The batch returned fewer results than items (a bug).
fn missing() -> StoreError {
    StoreError::Corrupt {
        what: "batch result",
        reason: "the batch returned fewer results than writes".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An execution created with one ready step, as a submit makes it.
    fn one_ready_step(id: &str) -> NewExecution {
        NewExecution {
            id: id.into(),
            workflow: "w".into(),
            workflow_version: "v1".into(),
            input: crate::store::Object::new(),
            steps: vec![crate::store::StepChange::Ready {
                step_id: "a".into(),
                input: crate::store::Object::new(),
                not_before_ms: 0,
            }],
            finish: None,
            plugins: Default::default(),
        }
    }

    /// The results of a batch of one create and one claim, both `Ok`.
    fn created_then_claimed(written: &[WriteResult]) -> anyhow::Result<(Ready, &[Claim])> {
        match written {
            [
                WriteResult::Created(Ok(()), ready),
                WriteResult::Claimed(Ok(claims)),
            ] => Ok((*ready, claims)),
            _ => anyhow::bail!("expected a create and a claim, both Ok"),
        }
    }

    /// A claim that rides with creates takes the steps they made ready in
    /// the same transaction, and says so (no wake-up needed); after the
    /// stop, a claim takes nothing and the creates ask for a wake-up.
    #[tokio::test]
    async fn a_claim_riding_with_creates_takes_their_ready_steps() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("corral.db").display());
        let store = crate::store::connect(&url).await?;
        let definition = serde_json::json!({ "name": "w", "steps": [] });
        store.apply_workflow("w", "v1", &definition, 0).await?;
        let claim = || Write::Claim(ClaimRequest::new("r", 4, now_ms() + 60_000, now_ms()));

        let written = write(
            store.clone(),
            vec![Write::Create(one_ready_step("e1")), claim()],
            CancellationToken::new(),
        )
        .await;
        let (created_ready, claims) = created_then_claimed(&written)?;
        assert_eq!(created_ready, Ready::Taken);
        let claimed: Vec<_> = claims
            .iter()
            .map(|c| (c.execution_id.as_str(), c.step_id.as_str()))
            .collect();
        assert_eq!(claimed, [("e1", "a")]);

        let stopped = CancellationToken::new();
        stopped.cancel();
        let written = write(
            store.clone(),
            vec![Write::Create(one_ready_step("e2")), claim()],
            stopped,
        )
        .await;
        let (created_ready, claims) = created_then_claimed(&written)?;
        assert_eq!(created_ready, Ready::MaybeLeft);
        assert!(claims.is_empty(), "claimed after the stop: {claims:?}");
        store.close().await;
        Ok(())
    }
}
