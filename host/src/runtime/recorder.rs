//! Group commit of attempt ends: attempts that end while a recording
//! transaction is in flight are recorded together in the next one.
//!
//! Every commit costs a disk sync (SQLite in WAL mode with
//! `synchronous = FULL`, PostgreSQL by default); with many short attempts
//! ending at once, one commit for each would make the sync the bottleneck.
//! There is no background task: the first attempt to find the recorder idle
//! records everything queued (its own end among them), and the others wait
//! for their results, so a recorder needs no shutting down.

use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::store::{AttemptEnd, Finish, Plan, Snapshot, Store, StoreError};

/// Decides step changes from an execution's snapshot (owned: it may run in
/// another attempt's task).
pub(crate) type OwnedPlanner = Box<dyn Fn(&Snapshot) -> Plan + Send + Sync>;

/// The outcome of recording one attempt end: see [`Store::finish_attempt`].
pub(crate) type Recorded = Result<Option<Snapshot>, StoreError>;

/// One attempt end waiting to be recorded.
struct Queued {
    end: AttemptEnd,
    now_ms: i64,
    planner: OwnedPlanner,
    done: oneshot::Sender<Recorded>,
}

/// Records attempt ends in batches; see the module docs.
#[derive(Default)]
pub(crate) struct Recorder {
    queue: Mutex<Vec<Queued>>,
    /// Held while a batch is being recorded.
    turn: tokio::sync::Mutex<()>,
}

impl Recorder {
    /// Records `end`, with whatever other ends are queued, and returns its
    /// own result; `None` if the task recording its batch was stopped (its
    /// runner was dropped) before it could say.
    pub(crate) async fn record(
        &self,
        store: &dyn Store,
        end: AttemptEnd,
        now_ms: i64,
        planner: OwnedPlanner,
    ) -> Option<Recorded> {
        let (done, result) = oneshot::channel();
        self.lock_queue().push(Queued {
            end,
            now_ms,
            planner,
            done,
        });
        {
            let _turn = self.turn.lock().await;
            // Empty when the batch before took this end along.
            let batch = std::mem::take(&mut *self.lock_queue());
            if !batch.is_empty() {
                record_batch(store, batch).await;
            }
        }
        result.await.ok()
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Vec<Queued>> {
        // The queue holds plain data: a panic elsewhere cannot leave it
        // inconsistent, so a poisoned lock is still usable.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Records `batch` in one transaction; if that fails, each end on its own,
/// so one bad end cannot keep the others from being recorded.
async fn record_batch(store: &dyn Store, batch: Vec<Queued>) {
    let finishes: Vec<Finish<'_>> = batch
        .iter()
        .map(|q| Finish {
            end: &q.end,
            now_ms: q.now_ms,
            planner: &*q.planner,
        })
        .collect();
    let results: Vec<Recorded> = match store.finish_attempts(&finishes).await {
        Ok(after) => after.into_iter().map(Ok).collect(),
        Err(error) if finishes.len() == 1 => vec![Err(error)],
        Err(error) => {
            tracing::warn!(%error, ends = finishes.len(), "recording a batch failed; recording its ends one by one");
            let mut results = Vec::with_capacity(finishes.len());
            for finish in &finishes {
                results.push(
                    store
                        .finish_attempt(finish.end, finish.now_ms, finish.planner)
                        .await,
                );
            }
            results
        }
    };
    drop(finishes);
    for (queued, result) in batch.into_iter().zip(results) {
        // The waiter may be gone (its runner was dropped): nothing to tell.
        let _ = queued.done.send(result);
    }
}
