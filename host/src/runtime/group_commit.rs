//! Group commit: items that arrive while a transaction is in flight are
//! committed together in the next one.
//!
//! Every commit costs a disk sync (SQLite in WAL mode with
//! `synchronous = FULL`, PostgreSQL by default); with executions submitted,
//! attempts ending and the claim loop asking for work all at once, one
//! commit each would make the sync the bottleneck. There is no background
//! task: the first caller to find the committer idle commits everything
//! queued (its own item among them), and the others wait for their
//! results, so nothing needs shutting down. What the items are and how a
//! batch of them is written is [`super::batch`]'s business.

use std::future::Future;
use std::sync::Mutex;

use tokio::sync::{oneshot, watch};

/// Commits items of type `T` in batches, each caller getting its own `R`.
pub(crate) struct GroupCommit<T, R> {
    queue: Mutex<Vec<(T, oneshot::Sender<R>)>>,
    /// Held while a batch is being committed.
    turn: tokio::sync::Mutex<()>,
    /// How many [`Hold`]s are in place: no new batch starts while any is.
    holds: watch::Sender<usize>,
}

impl<T, R> Default for GroupCommit<T, R> {
    fn default() -> Self {
        Self {
            queue: Mutex::new(Vec::new()),
            turn: tokio::sync::Mutex::new(()),
            holds: watch::Sender::new(0),
        }
    }
}

impl<T: Send + 'static, R: Send + 'static> GroupCommit<T, R> {
    /// [`enqueue`](Self::enqueue) and [`committed`](Self::committed) in
    /// one call.
    #[cfg(test)]
    pub(crate) async fn submit<F, Fut>(&self, item: T, commit: F) -> Option<R>
    where
        F: FnOnce(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<R>> + Send + 'static,
    {
        let queued = self.enqueue(item);
        self.committed(queued, commit).await
    }

    /// Queues `item` for the next batch, without waiting (its result comes
    /// through [`committed`](Self::committed)).
    pub(crate) fn enqueue(&self, item: T) -> Queued<R> {
        let (done, result) = oneshot::channel();
        self.lock_queue().push((item, done));
        Queued {
            result,
            answer: None,
        }
    }

    /// Waits for the item `queued` to be committed; whoever gets the turn
    /// first runs `commit` on the whole queue, which must return one result
    /// per item, in order. Returns the item's result; `None` if the batch's
    /// commit task was aborted (its runtime shut down) before it could say.
    ///
    /// A caller that stops waiting (its future dropped: a client gone, a
    /// timeout) while it commits a batch neither cancels the transaction
    /// half way nor leaves the others in its batch without an answer: the
    /// rest of the commit moves to a task of its own. (Spawning every
    /// commit instead would cost a task hop per batch.)
    pub(crate) async fn committed<F, Fut>(&self, queued: Queued<R>, commit: F) -> Option<R>
    where
        F: FnOnce(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<R>> + Send + 'static,
    {
        let Queued { mut result, answer } = queued;
        if let Some(answer) = answer {
            return answer;
        }
        let mut commit = Some(commit);
        loop {
            // A caller whose item went out in someone else's batch returns
            // as soon as that batch has committed, without queueing for
            // the turn behind the next batch.
            let turn = tokio::select! {
                biased;
                answer = &mut result => return answer.ok(),
                turn = self.open_turn() => turn,
            };
            // Empty when the batch before took this item along.
            let batch = std::mem::take(&mut *self.lock_queue());
            let Some(commit) = commit.take().filter(|_| !batch.is_empty()) else {
                drop(turn);
                return result.await.ok();
            };
            let mut committing = FinishOnDrop(Some(Box::pin(async move {
                let (items, waiters): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
                let results = commit(items).await;
                for (waiter, result) in waiters.into_iter().zip(results) {
                    // The waiter may have stopped waiting.
                    let _ = waiter.send(result);
                }
            })));
            committing.run().await;
            drop(turn);
        }
    }

    /// Holds back every new batch until the guard is dropped (a batch in
    /// flight finishes): items queued meanwhile all go out in the first
    /// batch after, as one transaction. Takes effect at once, without
    /// waiting.
    pub(crate) fn hold(&self) -> Hold<'_> {
        self.holds.send_modify(|holds| *holds += 1);
        Hold { holds: &self.holds }
    }

    /// The turn to commit, once no hold is in place.
    async fn open_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        let mut holds = self.holds.subscribe();
        loop {
            // Err only if the sender is gone, and `self` owns it.
            let _ = holds.wait_for(|holds| *holds == 0).await;
            let turn = self.turn.lock().await;
            // A hold may have begun while this caller waited for the turn.
            if *self.holds.borrow() == 0 {
                return turn;
            }
        }
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Vec<(T, oneshot::Sender<R>)>> {
        // The queue holds plain data: a panic elsewhere cannot leave it
        // inconsistent, so a poisoned lock is still usable.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Keeps a [`GroupCommit`] from starting new batches while it lives (see
/// [`GroupCommit::hold`]).
pub(crate) struct Hold<'a> {
    holds: &'a watch::Sender<usize>,
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        self.holds.send_modify(|holds| *holds -= 1);
    }
}

/// An item in a [`GroupCommit`] queue, waiting for its result.
pub(crate) struct Queued<R> {
    result: oneshot::Receiver<R>,
    /// Set by [`answered`](Self::answered) once the result came.
    answer: Option<Option<R>>,
}

impl<R> Queued<R> {
    /// Resolves once the item has gone out in a batch someone else
    /// committed, without ever committing one itself (so it may wait for
    /// ever: race it against a reason to commit). Cancel-safe; the result
    /// is kept for [`GroupCommit::committed`].
    pub(crate) async fn answered(&mut self) {
        if self.answer.is_none() {
            self.answer = Some((&mut self.result).await.ok());
        }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// Waits (polling, no timing asserted) until `n` items are queued.
    async fn queued(group: &GroupCommit<u32, u32>, n: usize) {
        while group.lock_queue().len() != n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Submits `item` from a task of its own with a commit that says when
    /// it started and then waits to be let go: (the task, started, let go).
    fn gated(
        group: &Arc<GroupCommit<u32, u32>>,
        item: u32,
    ) -> (
        tokio::task::JoinHandle<Option<u32>>,
        oneshot::Receiver<()>,
        oneshot::Sender<()>,
    ) {
        let (started_tx, started) = oneshot::channel::<()>();
        let (open, opened) = oneshot::channel::<()>();
        let group = group.clone();
        let task = tokio::spawn(async move {
            group
                .submit(item, |items| async move {
                    let _ = started_tx.send(());
                    let _ = opened.await;
                    items
                })
                .await
        });
        (task, started, open)
    }

    /// Items queued while the commits are held go out together, in the
    /// first batch after the hold, whoever queued them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn items_queued_during_a_hold_commit_as_one_batch() {
        // A guard against a hang, not a timing assertion.
        let batches = tokio::time::timeout(Duration::from_secs(30), async {
            let group = Arc::new(GroupCommit::<u32, u32>::default());
            let batches = Arc::new(Mutex::new(Vec::<Vec<u32>>::new()));
            let hold = group.hold();
            let tasks: Vec<_> = (1..=5)
                .map(|item| {
                    let (group, batches) = (group.clone(), batches.clone());
                    tokio::spawn(async move {
                        group
                            .submit(item, move |items| async move {
                                if let Ok(mut batches) = batches.lock() {
                                    batches.push(items.clone());
                                }
                                items
                            })
                            .await
                    })
                })
                .collect();
            queued(&group, 5).await;
            drop(hold);
            for (task, item) in tasks.into_iter().zip(1..) {
                assert_eq!(task.await.ok().flatten(), Some(item));
            }
            let mut batches = std::mem::take(&mut *batches.lock().expect("not poisoned"));
            batches.iter_mut().for_each(|batch| batch.sort_unstable());
            batches
        })
        .await
        .expect("every caller is answered");
        assert_eq!(batches, vec![vec![1, 2, 3, 4, 5]]);
    }

    /// A caller whose item went out in another caller's batch gets its
    /// answer when that batch commits: it is not made to lead the next
    /// batch (and wait for its commit) first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_committed_caller_returns_without_leading_the_next_batch() {
        // A guard against a hang, not a timing assertion.
        let answers = tokio::time::timeout(Duration::from_secs(30), async {
            let group = Arc::new(GroupCommit::<u32, u32>::default());
            // `lead` commits [1] and holds the turn until `open_first`.
            let (lead, lead_started, open_first) = gated(&group, 1);
            let _ = lead_started.await;
            // 2 and 3 queue behind it; 2 will commit them both.
            let (two, started, open_second) = gated(&group, 2);
            queued(&group, 1).await;
            let g = group.clone();
            // Were 3 made to lead a batch, it would never answer.
            let three =
                tokio::spawn(
                    async move { g.submit(3, |_| std::future::pending::<Vec<u32>>()).await },
                );
            queued(&group, 2).await;
            let _ = open_first.send(());
            let _ = started.await;
            // 4 arrives while [2, 3] commits, so it waits for the next batch.
            let g = group.clone();
            let four = tokio::spawn(async move { g.submit(4, |items| async move { items }).await });
            queued(&group, 1).await;
            let _ = open_second.send(());
            (
                lead.await.ok().flatten(),
                two.await.ok().flatten(),
                three.await.ok().flatten(),
                four.await.ok().flatten(),
            )
        })
        .await
        .expect("every caller is answered");
        assert_eq!(answers, (Some(1), Some(2), Some(3), Some(4)));
    }
}
