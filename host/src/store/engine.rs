//! The engine's transactional primitives: what a store offers the runtime
//! for the writes that move executions forward.
//!
//! The store decides nothing here. The runtime opens an [`EngineTx`],
//! locks and loads what a batch needs, plans in memory, and hands back the
//! planned changes to write (`crate::runtime::commit` holds that one
//! algorithm, the same on every database). Each primitive is a few
//! statements whatever the batch's size; nothing is visible to others
//! until [`EngineTx::commit`].
//!
//! Lock order, the same for every transaction so that two hosts' batches
//! cannot deadlock on each other: execution rows by id, then their task
//! runs by `(execution_id, step_id)`, then attempts. [`EngineTx::lock`]
//! takes the first two; a store with one writer at a time (SQLite) needs
//! none.

use std::collections::HashMap;

use super::{
    AttemptEnd, Claim, ExecutionId, ExecutionStatus, NewExecution, Object, Snapshot, StoreError,
};
use crate::workflow::StepState;

/// The error recorded on attempts whose lease ran out (see
/// [`EngineTx::requeue_expired`]); SQLite writes it as an SQL literal, so
/// it holds no quote.
pub(crate) const LEASE_EXPIRED: &str = "lease expired: its runner stopped renewing it";

/// An attempt end to record at `now_ms`: see [`EngineTx::record_ends`].
#[derive(Debug, Clone, Copy)]
pub struct EndWrite<'a> {
    /// How the attempt ended, with the claim it ran under.
    pub end: &'a AttemptEnd,
    /// When it is recorded (ms since the Unix epoch).
    pub now_ms: i64,
}

/// A task run's new state, as planned: see [`EngineTx::apply`].
#[derive(Debug, Clone, Copy)]
pub struct StepWrite<'a> {
    /// The execution.
    pub execution_id: &'a str,
    /// The step.
    pub step_id: &'a str,
    /// Its new status: `ready`, `skipped` or `cancelled`.
    pub status: StepState,
    /// Its merged input (set when it became ready).
    pub input: Option<&'a Object>,
    /// Not claimable before this time (ms since the Unix epoch).
    pub not_before_ms: i64,
    /// When the change was planned (ms since the Unix epoch).
    pub now_ms: i64,
}

/// An execution's final state, as planned: see [`EngineTx::apply`].
#[derive(Debug, Clone, Copy)]
pub struct FinishWrite<'a> {
    /// The execution.
    pub execution_id: &'a str,
    /// Its final status.
    pub status: ExecutionStatus,
    /// Why it failed or was cancelled.
    pub error: Option<&'a str>,
    /// When it ended (ms since the Unix epoch).
    pub finished_at_ms: i64,
}

/// What a plan changed, to be written: see [`EngineTx::apply`].
#[derive(Debug, Clone, Default)]
pub struct Changes<'a> {
    /// Task runs that move on.
    pub steps: Vec<StepWrite<'a>>,
    /// Executions that end.
    pub finishes: Vec<FinishWrite<'a>>,
}

impl Changes<'_> {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.finishes.is_empty()
    }
}

/// One open write transaction of the engine. Dropping it without
/// [`commit`](EngineTx::commit) rolls everything back.
#[async_trait::async_trait]
pub trait EngineTx: Send {
    /// Inserts executions and their task runs in their first planned
    /// states (an execution whose first plan ends it is stored ended).
    async fn create(&mut self, executions: &[NewExecution], now_ms: i64) -> Result<(), StoreError>;

    /// Locks the executions `ids` (sorted, distinct) and all their task
    /// runs until the transaction ends, in the lock order of the module
    /// docs, so that what [`load`](EngineTx::load) reads cannot change
    /// under the caller's plan.
    async fn lock(&mut self, ids: &[&str]) -> Result<(), StoreError>;

    /// Records attempt ends: each attempt row finished and its task run
    /// set as [`AttemptEnd`]'s result says. An end whose claim the runner
    /// no longer holds (its lease expired and the task run went to another
    /// runner) changes nothing. Returns, per end in the order given,
    /// whether it was recorded.
    async fn record_ends(&mut self, ends: &[EndWrite<'_>]) -> Result<Vec<bool>, StoreError>;

    /// The executions `ids` (repeats allowed) with their task runs, as this
    /// transaction sees them; an id with no execution is missing from the
    /// map.
    async fn load(&mut self, ids: &[&str]) -> Result<HashMap<ExecutionId, Snapshot>, StoreError>;

    /// Writes planned changes. Each is guarded by the states a plan may
    /// move from (a step from `pending`, or from `ready` to `cancelled`;
    /// an execution from `running`), so a stale plan never moves anything
    /// backwards.
    async fn apply(&mut self, changes: &Changes<'_>) -> Result<(), StoreError>;

    /// Marks execution `id` as asked to be cancelled, and tells the hosts
    /// running its steps. Returns whether it was still running.
    async fn request_cancel(&mut self, id: &str) -> Result<bool, StoreError>;

    /// Returns to the queue the task runs of the executions `ids` whose
    /// lease expired before `now_ms`, except those of `except_runner`,
    /// recording their attempts as interrupted. Returns the execution id of
    /// each task run requeued (one per run, in no particular order).
    async fn requeue_expired(
        &mut self,
        ids: &[&str],
        now_ms: i64,
        except_runner: &str,
    ) -> Result<Vec<String>, StoreError>;

    /// Claims up to `max` ready task runs whose backoff has passed, for
    /// `runner_id`, with a lease until `lease_until_ms`, and records the
    /// start of an attempt for each (numbered one past the step's last).
    /// Task runs another transaction has locked are skipped, not waited for.
    async fn claim(
        &mut self,
        runner_id: &str,
        max: u32,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<Claim>, StoreError>;

    /// Commits everything.
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// A store's engine side: write transactions, and the one read the
/// reaper needs before it takes locks.
#[async_trait::async_trait]
pub trait Engine: Send + Sync {
    /// Opens a write transaction.
    async fn begin(&self) -> Result<Box<dyn EngineTx>, StoreError>;

    /// The executions with task runs whose lease expired before `now_ms`
    /// and that `except_runner` does not hold, by id (read without locks:
    /// the reaper checks again under them).
    async fn expired(&self, now_ms: i64, except_runner: &str) -> Result<Vec<String>, StoreError>;

    /// Whether batching writes of every kind into one transaction pays
    /// off: true for a store with one writer (SQLite), where every
    /// transaction waits for the one before; false (the default) for one
    /// whose connections commit side by side (PostgreSQL).
    fn commits_writes_together(&self) -> bool {
        false
    }

    /// Creates an execution and its task runs in a transaction of its own.
    async fn create_execution(&self, new: &NewExecution, now_ms: i64) -> Result<(), StoreError> {
        self.create_executions(std::slice::from_ref(new), now_ms)
            .await
    }

    /// Creates several executions in one transaction (one commit, so one
    /// disk sync, for all). All or nothing: on an error none is created.
    async fn create_executions(
        &self,
        batch: &[NewExecution],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.create(batch, now_ms).await?;
        tx.commit().await
    }

    /// Claims task runs (see [`EngineTx::claim`]) in a transaction of its
    /// own.
    async fn claim(
        &self,
        runner_id: &str,
        max: u32,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<Claim>, StoreError> {
        let mut tx = self.begin().await?;
        let claimed = tx.claim(runner_id, max, lease_until_ms, now_ms).await?;
        tx.commit().await?;
        Ok(claimed)
    }
}
