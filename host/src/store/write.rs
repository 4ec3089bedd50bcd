//! Writes of several kinds committed together: see [`Store::write`](super::Store::write).

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
    pub finished: Result<Vec<Option<Snapshot>>, StoreError>,
    /// The task runs claimed.
    pub claimed: Result<Vec<Claim>, StoreError>,
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
