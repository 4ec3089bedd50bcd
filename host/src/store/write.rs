//! Writes of several kinds committed together: see [`Store::write`](super::Store::write).

use std::sync::Arc;

use super::{Claim, Finish, NewExecution, Snapshot, Store, StoreError};

/// A claim to make: see [`Store::claim`](super::Store::claim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    /// The claiming runner.
    pub runner_id: String,
    /// At most this many task runs.
    pub max: u32,
    /// The lease of each claim runs until then (ms since the Unix epoch).
    pub lease_until_ms: i64,
    /// Now (ms since the Unix epoch): task runs whose backoff ends later
    /// are not claimable yet.
    pub now_ms: i64,
}

/// What [`Store::write`](super::Store::write) writes, in this order: new
/// executions (created at `now_ms`), attempt ends, then a claim, which can
/// so take the steps the ends just made ready.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteBatch<'a> {
    /// Executions to create: see [`Store::create_executions`](super::Store::create_executions).
    pub creates: &'a [NewExecution],
    /// When the executions are created (ms since the Unix epoch).
    pub now_ms: i64,
    /// Attempt ends to record: see [`Store::finish_attempts`](super::Store::finish_attempts).
    pub finishes: &'a [Finish<'a>],
    /// A claim to make after them.
    pub claim: Option<&'a ClaimRequest>,
}

/// The result of each part of a [`WriteBatch`]; a part that was empty is
/// `Ok` and empty.
#[derive(Debug)]
pub struct Written {
    /// Whether the executions were created (all or none).
    pub created: Result<(), StoreError>,
    /// One result per attempt end, in order (all or none recorded).
    pub finished: Result<Vec<Option<Arc<Snapshot>>>, StoreError>,
    /// The task runs claimed.
    pub claimed: Result<Vec<Claim>, StoreError>,
}

impl ClaimRequest {
    /// A claim of up to `max` task runs for `runner_id`: see
    /// [`Store::claim`](super::Store::claim).
    pub fn new(runner_id: &str, max: u32, lease_until_ms: i64, now_ms: i64) -> Self {
        Self {
            runner_id: runner_id.to_owned(),
            max,
            lease_until_ms,
            now_ms,
        }
    }
}

impl Written {
    /// Every part written in one transaction.
    pub(crate) fn together(finished: Vec<Option<Arc<Snapshot>>>, claimed: Vec<Claim>) -> Self {
        Self {
            created: Ok(()),
            finished: Ok(finished),
            claimed: Ok(claimed),
        }
    }
}

/// `together`, the outcome of writing `batch` in one transaction; if that
/// failed, each part written on its own, so one bad part cannot fail the
/// others.
pub(crate) async fn or_separately<S: Store + ?Sized>(
    store: &S,
    batch: WriteBatch<'_>,
    together: Result<Written, StoreError>,
) -> Written {
    match together {
        Ok(written) => written,
        Err(error) => {
            tracing::warn!(%error, "a combined write failed; writing its parts one by one");
            separately(store, batch).await
        }
    }
}

/// Writes each part of `batch` in a transaction of its own, in order.
pub(crate) async fn separately<S: Store + ?Sized>(store: &S, batch: WriteBatch<'_>) -> Written {
    let created = if batch.creates.is_empty() {
        Ok(())
    } else {
        store.create_executions(batch.creates, batch.now_ms).await
    };
    let finished = if batch.finishes.is_empty() {
        Ok(Vec::new())
    } else {
        store.finish_attempts(batch.finishes).await
    };
    let claimed = match batch.claim {
        None => Ok(Vec::new()),
        Some(claim) => {
            store
                .claim(
                    &claim.runner_id,
                    claim.max,
                    claim.lease_until_ms,
                    claim.now_ms,
                )
                .await
        }
    };
    Written {
        created,
        finished,
        claimed,
    }
}
