//! The engine room of a runner: claiming ready task runs, running their
//! attempts in the sandbox, recording what happened, keeping leases alive
//! and returning the work of dead runners.
//!
//! Data flows one way: the [`Runner`](crate::Runner) starts these loops;
//! they call the sandbox and the store; nothing here calls back up.

mod attempt;
pub(crate) mod batch;
mod catalog;
pub(crate) mod commit;
mod error;
mod executor;
pub(crate) mod group_commit;
mod leases;
mod lifecycle;
pub(crate) mod planner;
pub(crate) mod progress;
mod scheduler;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::{DashMap, DashSet};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::sandbox::{AttemptControl, Grants, Limits, Sandbox};
use crate::store::{RunKey, Store};
use batch::{Write, WriteResult};
use group_commit::{GroupCommit, Queued};

use catalog::Catalog;
pub(crate) use error::RuntimeError;
pub(crate) use executor::DrainReport;
use executor::run_executor;
use leases::run_lease_keeper;
pub(crate) use lifecycle::{Loops, Runtime, RuntimeLink};
use progress::Progress;
use scheduler::{fire_due, run_scheduler};

/// A write queued with [`Shared::enqueue`], waiting for its commit.
pub(crate) struct QueuedWrite {
    queue: usize,
    result: Queued<WriteResult>,
}

impl QueuedWrite {
    /// See [`Queued::answered`]: resolves once the write went out in a
    /// batch someone else committed.
    pub(crate) async fn answered(&mut self) {
        self.result.answered().await;
    }
}

/// The kinds of [`Write`], numbered as their queues when each has its own.
#[derive(Clone, Copy)]
enum WriteKind {
    Create = 0,
    End = 1,
    Claim = 2,
}

/// How long [`Shared::halt_all`] holds back the ends of halted attempts
/// for the last of them. Guests return within a few epoch ticks; an attempt
/// still compiling its plugin can take seconds, and the others' ends need
/// not wait for it.
const GATHER_ENDS_AT_MOST: Duration = Duration::from_millis(100);

/// Settings of the background work.
#[derive(Debug, Clone)]
pub(crate) struct RuntimeConfig {
    pub(crate) lease: Duration,
    pub(crate) claim_batch: u32,
    pub(crate) poll_interval: Duration,
    pub(crate) default_limits: Limits,
    pub(crate) default_grants: Grants,
    pub(crate) defer: DeferPolicy,
}

/// How long a step whose plugin this host cannot load (its `describe`
/// fails or times out here, say) is left to other hosts before it fails.
///
/// Each time, the step goes back to the queue, not claimable for
/// [`every`](Self::every); it fails for good, with the reason, once it was
/// deferred [`max_deferrals`](Self::max_deferrals) times, once its first
/// deferral is [`max_time`](Self::max_time) old, or at once when no other
/// runner that executes work is alive to take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeferPolicy {
    /// How long a deferred step waits for another host (default 10 s).
    pub every: Duration,
    /// Most deferrals before the step fails (default 18).
    pub max_deferrals: u32,
    /// Longest time since the first deferral before the step fails
    /// (default 3 minutes).
    pub max_time: Duration,
}

impl Default for DeferPolicy {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(10),
            max_deferrals: 18,
            max_time: Duration::from_secs(180),
        }
    }
}

/// What the runner and its loops share.
pub(crate) struct Shared {
    runner_id: String,
    store: Arc<dyn Store>,
    sandbox: Sandbox,
    catalog: Catalog,
    config: RuntimeConfig,
    /// Attempts in flight here, by (execution, step): to cancel them. An
    /// attempt leaves the map once its end is queued for recording.
    running: DashMap<RunKey, AttemptControl>,
    /// Rung when an attempt leaves `running`.
    left_running: Notify,
    /// Task runs this runner works on, from their claim until their end is
    /// recorded or given up: the lease keeper renews exactly these.
    claimed: DashSet<RunKey>,
    /// How many other runners that execute work were alive at the last
    /// heartbeat; `u64::MAX` before the first.
    others_alive: AtomicU64,
    /// When `shutdown` was called: attempts that ended before it are not
    /// the drain's to count.
    stop_requested: std::sync::OnceLock<std::time::Instant>,
    /// Free execution slots.
    slots: Arc<Semaphore>,
    /// Rung when work may have become ready.
    wake: Notify,
    /// Live progress of executions someone watches.
    progress: Progress,
    /// Submitted executions, attempt ends and claims, several per
    /// transaction: all in the first queue when the store commits them
    /// together, else one queue per kind (see [`Shared::write`]).
    writers: [GroupCommit<Write, WriteResult>; 3],
    /// Cancelled to stop claiming new work.
    stop_claiming: CancellationToken,
    /// Cancelled to stop the lease keeper.
    stop_background: CancellationToken,
}

impl Shared {
    /// How many other runners were alive at the last heartbeat, if one
    /// was recorded yet.
    pub(crate) fn others_alive(&self) -> Option<u64> {
        match self.others_alive.load(Ordering::Acquire) {
            u64::MAX => None,
            n => Some(n),
        }
    }

    pub(crate) fn lease_until(&self) -> i64 {
        crate::store::now_ms() + crate::store::duration_ms(self.config.lease)
    }

    /// Writes `item` in the next batch of its queue. A store with one
    /// writer (SQLite) gains most from one commit for everything queued;
    /// one with a pool of connections (PostgreSQL) from committing the
    /// kinds side by side, so a submit does not wait for a batch of ends.
    /// `None` if the batch's commit was abandoned (the runtime shut down).
    pub(crate) async fn write(&self, item: Write) -> Option<WriteResult> {
        let queued = self.enqueue(item);
        self.written(queued).await
    }

    /// Queues `item` for the next batch of its queue, without waiting (the
    /// first half of [`write`](Self::write)).
    pub(crate) fn enqueue(&self, item: Write) -> QueuedWrite {
        let queue = self.queue_of(&item);
        QueuedWrite {
            queue,
            result: self.writers[queue].enqueue(item),
        }
    }

    /// Waits for a write queued with [`enqueue`](Self::enqueue) to commit
    /// (the second half of [`write`](Self::write)).
    pub(crate) async fn written(&self, queued: QueuedWrite) -> Option<WriteResult> {
        let (store, stop) = (self.store.clone(), self.stop_claiming.clone());
        self.writers[queued.queue]
            .committed(queued.result, |batch| batch::write(store, batch, stop))
            .await
    }

    /// Halts every guest here and waits (at most [`GATHER_ENDS_AT_MOST`])
    /// until each attempt's end is queued for recording, holding back the
    /// commit meanwhile. Guests return within an epoch tick or two, a few
    /// at a time: left alone, the first ends would commit on their own and
    /// the rest wait behind them; held, they commit as one transaction.
    pub(crate) async fn halt_all(&self) {
        let _hold = self.writers[self.queue_of_kind(WriteKind::End)].hold();
        self.sandbox.halt_all();
        let _ = tokio::time::timeout(GATHER_ENDS_AT_MOST, self.all_left_running()).await;
    }

    /// Resolves once no attempt is in `running`: every end is queued.
    async fn all_left_running(&self) {
        loop {
            let left = self.left_running.notified();
            tokio::pin!(left);
            // Registered before the check, so a removal in between still
            // wakes this caller.
            left.as_mut().enable();
            if self.running.is_empty() {
                return;
            }
            left.await;
        }
    }

    fn queue_of(&self, item: &Write) -> usize {
        self.queue_of_kind(match item {
            Write::Create(_) => WriteKind::Create,
            Write::End(_) => WriteKind::End,
            Write::Claim(_) => WriteKind::Claim,
        })
    }

    fn queue_of_kind(&self, kind: WriteKind) -> usize {
        if self.store.commits_writes_together() {
            0
        } else {
            kind as usize
        }
    }

    /// A new execution of the latest version of workflow `name`, with its
    /// first plan, ready for the store.
    pub(crate) async fn new_execution(
        &self,
        name: &str,
        input: crate::store::Object,
        now_ms: i64,
    ) -> Result<crate::store::NewExecution, RuntimeError> {
        let record = self
            .store
            .workflow(name, None)
            .await?
            .ok_or_else(|| RuntimeError::UnknownWorkflow(name.to_owned()))?;
        let workflow = self.catalog.workflow(name, &record.version).await?;
        let plugins = self.pin_plugins(&workflow).await?;
        let plan = planner::initial(&workflow, &input, now_ms);
        Ok(crate::store::NewExecution {
            id: crate::store::ExecutionId::generate(),
            workflow: name.to_owned(),
            workflow_version: record.version,
            input,
            steps: plan.steps,
            finish: plan.finish,
            plugins,
        })
    }

    /// The registration each plugin reference of `workflow` runs in a new
    /// execution: for `etl`, the newest registered version; for
    /// `etl@0.2`, the one that pin selects.
    async fn pin_plugins(
        &self,
        workflow: &crate::workflow::Workflow,
    ) -> Result<crate::store::PluginPins, RuntimeError> {
        let mut pins = crate::store::PluginPins::new();
        for step in workflow.steps() {
            let reference = step.task.plugin_ref();
            if pins.contains_key(reference) {
                continue;
            }
            let pin = self
                .store
                .resolve_plugin(step.task.plugin(), step.task.version())
                .await?
                .ok_or_else(|| RuntimeError::UnknownPlugin(reference.to_owned()))?;
            pins.insert(reference.to_owned(), pin);
        }
        Ok(pins)
    }

    /// Cancels the attempts of `execution_id` that run here.
    pub(crate) fn cancel_local(&self, execution_id: &str) {
        for entry in self.running.iter() {
            if entry.key().execution_id == execution_id {
                entry.value().cancel();
            }
        }
    }
}
