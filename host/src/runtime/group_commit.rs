//! Group commit: writes that arrive while a transaction is in flight are
//! committed together in the next one.
//!
//! Every commit costs a disk sync (SQLite in WAL mode with
//! `synchronous = FULL`, PostgreSQL by default); with many short attempts
//! ending, or many executions submitted, at once, one commit each would
//! make the sync the bottleneck. There is no background task: the first
//! caller to find the committer idle commits everything queued (its own
//! item among them), and the others wait for their results, so nothing
//! needs shutting down.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::store::{AttemptEnd, Finish, NewExecution, Plan, Snapshot, Store, StoreError};

/// Commits items of type `T` in batches, each caller getting its own `R`.
pub(crate) struct GroupCommit<T, R> {
    queue: Mutex<Vec<(T, oneshot::Sender<R>)>>,
    /// Held while a batch is being committed.
    turn: tokio::sync::Mutex<()>,
}

impl<T, R> Default for GroupCommit<T, R> {
    fn default() -> Self {
        Self {
            queue: Mutex::new(Vec::new()),
            turn: tokio::sync::Mutex::new(()),
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> GroupCommit<T, R> {
    /// Queues `item`; whoever gets the turn first runs `commit` on the
    /// whole queue, which must return one result per item, in order.
    /// Returns `item`'s result; `None` if the batch's commit task was
    /// aborted (its runtime shut down) before it could say.
    ///
    /// A caller that stops waiting (its future dropped: a client gone, a
    /// timeout) while it commits a batch neither cancels the transaction
    /// half way nor leaves the others in its batch without an answer: the
    /// rest of the commit moves to a task of its own. (Spawning every
    /// commit instead would cost a task hop per batch.)
    pub(crate) async fn submit<F, Fut>(&self, item: T, commit: F) -> Option<R>
    where
        F: FnOnce(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<R>> + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        self.lock_queue().push((item, done));
        {
            let _turn = self.turn.lock().await;
            // Empty when the batch before took this item along.
            let batch = std::mem::take(&mut *self.lock_queue());
            if !batch.is_empty() {
                let mut committing = FinishOnDrop(Some(Box::pin(async move {
                    let (items, waiters): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
                    let results = commit(items).await;
                    for (waiter, result) in waiters.into_iter().zip(results) {
                        // The waiter may have stopped waiting.
                        let _ = waiter.send(result);
                    }
                })));
                committing.run().await;
            }
        }
        result.await.ok()
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Vec<(T, oneshot::Sender<R>)>> {
        // The queue holds plain data: a panic elsewhere cannot leave it
        // inconsistent, so a poisoned lock is still usable.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A commit in progress that, if dropped unfinished, finishes in a task of
/// its own (when there is a runtime to run it; else its waiters get no
/// answer, as when the runtime itself shuts down).
struct FinishOnDrop(Option<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>>);

impl FinishOnDrop {
    async fn run(&mut self) {
        if let Some(commit) = self.0.as_mut() {
            commit.await;
            self.0 = None;
        }
    }
}

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        if let Some(commit) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(commit);
        }
    }
}

/// Decides step changes from an execution's snapshot (owned: it may run in
/// another attempt's task).
pub(crate) type OwnedPlanner = Box<dyn Fn(&Snapshot) -> Plan + Send + Sync>;

/// An attempt end waiting to be recorded.
pub(crate) struct QueuedEnd {
    pub(crate) end: AttemptEnd,
    pub(crate) now_ms: i64,
    pub(crate) planner: OwnedPlanner,
}

/// The outcome of recording one attempt end: see [`Store::finish_attempt`].
pub(crate) type Recorded = Result<Option<Snapshot>, StoreError>;

/// Records `batch` in one transaction; if that fails, each end on its own,
/// so one bad end cannot keep the others from being recorded.
pub(crate) async fn record_ends(store: Arc<dyn Store>, batch: Vec<QueuedEnd>) -> Vec<Recorded> {
    let finishes: Vec<Finish<'_>> = batch
        .iter()
        .map(|q| Finish {
            end: &q.end,
            now_ms: q.now_ms,
            planner: &*q.planner,
        })
        .collect();
    match store.finish_attempts(&finishes).await {
        Ok(after) => after.into_iter().map(Ok).collect(),
        Err(error) if finishes.len() == 1 => vec![Err(error)],
        Err(error) => {
            tracing::warn!(%error, ends = finishes.len(), "recording a batch failed; recording its ends one by one");
            let mut results = Vec::with_capacity(finishes.len());
            for f in &finishes {
                results.push(store.finish_attempt(f.end, f.now_ms, f.planner).await);
            }
            results
        }
    }
}

/// Creates `batch` in one transaction at `now_ms`; if that fails, each
/// execution on its own, so one bad execution cannot keep the others out.
pub(crate) async fn create_executions(
    store: Arc<dyn Store>,
    batch: Vec<NewExecution>,
    now_ms: i64,
) -> Vec<Result<(), StoreError>> {
    match store.create_executions(&batch, now_ms).await {
        Ok(()) => batch.iter().map(|_| Ok(())).collect(),
        Err(error) if batch.len() == 1 => vec![Err(error)],
        Err(error) => {
            tracing::warn!(%error, executions = batch.len(), "creating a batch failed; creating its executions one by one");
            let mut results = Vec::with_capacity(batch.len());
            for new in &batch {
                results.push(store.create_execution(new, now_ms).await);
            }
            results
        }
    }
}
