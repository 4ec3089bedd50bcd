//! What hosts sharing a database tell each other: leases on the task
//! runs they work on, heartbeats, and wake-ups.

use super::StoreError;

/// A wake-up that another runner sent through the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wakeup {
    /// Work may have become claimable.
    Work,
    /// This execution was asked to be cancelled.
    Cancel(String),
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

/// Liveness of the hosts that share the work. Every method commits before
/// it returns.
#[async_trait::async_trait]
pub trait Hosts: Send + Sync {
    /// Extends the lease of the task runs `runs` (`(execution id, step
    /// id)`) that `runner_id` holds to `lease_ms` past the moment the update
    /// runs (the database's clock, so time spent waiting for a lock does
    /// not eat the lease); returns the ids of the executions of any task run
    /// it holds where a cancel was requested. Only the runs listed are
    /// renewed: a run the runner holds but no longer works on (its end could
    /// not be recorded) must expire, so that another runner takes it.
    async fn renew_leases(
        &self,
        runner_id: &str,
        runs: &[(String, String)],
        lease_ms: i64,
    ) -> Result<Vec<String>, StoreError>;

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

    /// The task runs `runner_id` holds claims on: `(execution id, step id)`.
    /// A runner compares them with the attempts it runs to find claims it
    /// lost (its lease expired and another runner took the step).
    async fn held_claims(&self, runner_id: &str) -> Result<Vec<(String, String)>, StoreError>;

    /// Subscribes to the wake-ups other runners send when they make work
    /// claimable or cancel an execution, where the database can deliver them
    /// (PostgreSQL's `LISTEN/NOTIFY`). `None` where it cannot (SQLite): then
    /// runners poll.
    async fn listen(&self) -> Result<Option<Box<dyn Wakeups>>, StoreError> {
        Ok(None)
    }
}
