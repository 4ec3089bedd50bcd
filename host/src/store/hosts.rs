//! What hosts sharing a database tell each other: leases on the task
//! runs they work on, heartbeats, and wake-ups.

use super::{ExecutionId, RunKey, StoreError};

/// A wake-up that another runner sent through the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wakeup {
    /// Work may have become claimable.
    Work,
    /// This execution was asked to be cancelled.
    Cancel(ExecutionId),
}

/// A subscription to wake-ups: see [`Hosts::listen`].
#[async_trait::async_trait]
pub trait Wakeups: Send {
    /// The next wake-up; `None` once the subscription has ended (the pool
    /// was closed).
    async fn next(&mut self) -> Option<Wakeup>;
}

/// How long a runner may be silent before [`Hosts::heartbeat`] forgets it
/// (10 minutes).
pub const RUNNER_FORGOTTEN_MS: i64 = 10 * 60 * 1000;

/// The task runs runner `$1` holds claims on (the same text on both
/// databases).
pub(crate) const HELD_CLAIMS: &str =
    "SELECT execution_id, step_id FROM task_runs WHERE claimed_by = $1 AND status = 'running'";

/// Liveness of the hosts that share the work. Every method commits before
/// it returns.
#[async_trait::async_trait]
pub trait Hosts: Send + Sync {
    /// Extends the lease of the task runs `runs` (see [`RunKey`]) that `runner_id` holds to `lease_ms` past the moment the update
    /// runs (the database's clock, so time spent waiting for a lock does
    /// not eat the lease); returns the ids of the executions of any task run
    /// it holds where a cancel was requested. Only the runs listed are
    /// renewed: a run the runner holds but no longer works on (its end could
    /// not be recorded) must expire, so that another runner takes it.
    async fn renew_leases(
        &self,
        runner_id: &str,
        runs: &[RunKey],
        lease_ms: i64,
    ) -> Result<Vec<ExecutionId>, StoreError>;

    /// Records that `runner_id` (a runner that executes work) is alive at
    /// `now_ms`, forgets runners silent for [`RUNNER_FORGOTTEN_MS`], and
    /// returns how many other runners were alive at or after
    /// `alive_since_ms`.
    async fn heartbeat(
        &self,
        runner_id: &str,
        now_ms: i64,
        alive_since_ms: i64,
    ) -> Result<u64, StoreError>;

    /// The task runs `runner_id` holds claims on.
    /// A runner compares them with the attempts it runs to find claims it
    /// lost (its lease expired and another runner took the step).
    async fn held_claims(&self, runner_id: &str) -> Result<Vec<RunKey>, StoreError>;

    /// Subscribes to the wake-ups other runners send when they make work
    /// claimable or cancel an execution, where the database can deliver them
    /// (PostgreSQL's `LISTEN/NOTIFY`). `None` where it cannot (SQLite): then
    /// runners poll.
    async fn listen(&self) -> Result<Option<Box<dyn Wakeups>>, StoreError> {
        Ok(None)
    }
}
