//! Group commit: writes that arrive while a transaction is in flight are
//! committed together in the next one.
//!
//! Every commit costs a disk sync (SQLite in WAL mode with
//! `synchronous = FULL`, PostgreSQL by default); with executions submitted,
//! attempts ending and the claim loop asking for work all at once, one
//! commit each would make the sync the bottleneck. On a store with one
//! writer (SQLite) all three kinds share one queue, so one transaction
//! carries a whole pipeline's writes (see [`Store::write`]); elsewhere each
//! kind has a queue of its own (see `Shared::write`). There is no
//! background task: the first caller to find the committer idle commits
//! everything queued (its own item among them), and the others wait for
//! their results, so nothing needs shutting down.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

use super::planner;
use crate::store::{
    AttemptEnd, Claim, ClaimRequest, Finish, NewExecution, Plan, Snapshot, Store, StoreError,
    WriteBatch, now_ms,
};
use crate::workflow::Workflow;

/// Commits items of type `T` in batches, each caller getting its own `R`.
pub(crate) struct GroupCommit<T, R> {
    queue: Mutex<Vec<(T, oneshot::Sender<R>)>>,
    /// Held while a batch is being committed.
    turn: tokio::sync::Mutex<()>,
    /// [`Hold`]s in place: no new batch starts while there are any.
    holds: AtomicUsize,
    /// Rung when a hold ends.
    released: Notify,
}

impl<T, R> Default for GroupCommit<T, R> {
    fn default() -> Self {
        Self {
            queue: Mutex::new(Vec::new()),
            turn: tokio::sync::Mutex::new(()),
            holds: AtomicUsize::new(0),
            released: Notify::new(),
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
        self.holds.fetch_add(1, Ordering::AcqRel);
        Hold {
            holds: &self.holds,
            released: &self.released,
        }
    }

    /// The turn to commit, once no hold is in place.
    async fn open_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        loop {
            loop {
                let released = self.released.notified();
                tokio::pin!(released);
                // Registered before the check, so a release in between
                // still wakes this caller.
                released.as_mut().enable();
                if self.holds.load(Ordering::Acquire) == 0 {
                    break;
                }
                released.await;
            }
            let turn = self.turn.lock().await;
            // A hold may have begun while this caller waited for the turn.
            if self.holds.load(Ordering::Acquire) == 0 {
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
    holds: &'a AtomicUsize,
    released: &'a Notify,
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        self.holds.fetch_sub(1, Ordering::AcqRel);
        self.released.notify_waiters();
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

/// Decides step changes from an execution's snapshot (owned: it may run in
/// another attempt's task).
pub(crate) type OwnedPlanner = Box<dyn Fn(&Snapshot) -> Plan + Send + Sync>;

/// What decides the steps that follow an attempt end.
pub(crate) enum EndPlanner {
    /// The workflow's own rules ([`planner::plan`]). The ends of one
    /// execution in a batch share one such planner, so a store that
    /// records them all first plans the execution once, not once per end.
    Workflow(Arc<Workflow>),
    /// Anything else, run for this end alone.
    Custom(OwnedPlanner),
}

/// An attempt end waiting to be recorded.
pub(crate) struct QueuedEnd {
    pub(crate) end: AttemptEnd,
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
    /// See [`Store::finish_attempts`]: ends of one execution in a batch
    /// share its snapshot.
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

/// Writes `batch` through [`Store::write`]: every execution, attempt end
/// and (first) claim queued while the last transaction committed, in one
/// transaction. When a part fails, its items are written one by one, so one
/// bad item cannot fail the others. Once `stop_claiming` is cancelled,
/// claims take nothing.
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
    let workflow_planners = workflow_planners(&ends);
    let finishes: Vec<Finish<'_>> = ends
        .iter()
        .map(|q| Finish {
            end: &q.end,
            now_ms: q.now_ms,
            planner: match &q.planner {
                EndPlanner::Workflow(_) => &*workflow_planners[q.end.claim.execution_id.as_str()],
                EndPlanner::Custom(planner) => &**planner,
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
    let written = store
        .write(WriteBatch {
            creates: &creates,
            now_ms: now,
            finishes: &finishes,
            claim: first_claim,
        })
        .await;
    tracing::debug!(
        creates = creates.len(),
        ends = ends.len(),
        claims = claims_asked,
        micros = started.elapsed().as_micros(),
        "batch written"
    );
    let ready = match (&written.claimed, first_claim) {
        (Ok(taken), Some(asked))
            if taken.len() < usize::try_from(asked.max).unwrap_or(usize::MAX) =>
        {
            Ready::Taken
        }
        _ => Ready::MaybeLeft,
    };
    // Items of a part that failed together are written again one by one,
    // after the claim.
    let ready_if = |ok: bool| if ok { ready } else { Ready::MaybeLeft };
    let (created_ready, recorded_ready) = (
        ready_if(written.created.is_ok()),
        ready_if(written.finished.is_ok()),
    );
    let mut created = created_each(&*store, &creates, now, written.created)
        .await
        .into_iter();
    let mut recorded = recorded_each(&*store, &finishes, written.finished)
        .await
        .into_iter();
    let mut claimed = vec![written.claimed];
    // Only the claim loop claims, one claim at a time: a second one in a
    // batch is unexpected, but is served too.
    for claim in claims {
        let alone = WriteBatch {
            claim: Some(claim),
            ..WriteBatch::default()
        };
        claimed.push(store.write(alone).await.claimed);
    }
    let mut claimed = claimed.into_iter();
    kinds
        .into_iter()
        .map(|kind| match kind {
            Kind::Create => WriteResult::Created(
                created.next().unwrap_or_else(|| Err(missing())),
                created_ready,
            ),
            Kind::End => WriteResult::Recorded(
                recorded.next().unwrap_or_else(|| Err(missing())),
                recorded_ready,
            ),
            // A claim after the stop took nothing.
            Kind::Claim => WriteResult::Claimed(claimed.next().unwrap_or_else(|| Ok(Vec::new()))),
        })
        .collect()
}

/// One workflow planner per execution with ends in `ends`, at the time of
/// its last end (the time only stamps the steps it makes ready).
fn workflow_planners(ends: &[QueuedEnd]) -> HashMap<&str, OwnedPlanner> {
    let mut latest: HashMap<&str, (&Arc<Workflow>, i64)> = HashMap::new();
    for queued in ends {
        if let EndPlanner::Workflow(workflow) = &queued.planner {
            let at = latest
                .entry(&queued.end.claim.execution_id)
                .or_insert((workflow, queued.now_ms));
            *at = (workflow, at.1.max(queued.now_ms));
        }
    }
    latest
        .into_iter()
        .map(|(id, (workflow, now_ms))| {
            let workflow = workflow.clone();
            let planner: OwnedPlanner =
                Box::new(move |snapshot: &Snapshot| planner::plan(&workflow, snapshot, now_ms));
            (id, planner)
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Kind {
    Create,
    End,
    Claim,
}

/// A store returned fewer results than items (a bug in the store).
fn missing() -> StoreError {
    StoreError::Corrupt {
        what: "batch result",
        reason: "the store returned fewer results than writes".into(),
    }
}

/// One result per execution of `batch`, created (all or none) with the
/// result `together`; if that failed, each is created on its own.
async fn created_each(
    store: &dyn Store,
    batch: &[NewExecution],
    now_ms: i64,
    together: Result<(), StoreError>,
) -> Vec<Result<(), StoreError>> {
    match together {
        Ok(()) => batch.iter().map(|_| Ok(())).collect(),
        Err(error) if batch.len() == 1 => vec![Err(error)],
        Err(error) => {
            tracing::warn!(%error, executions = batch.len(), "creating a batch failed; creating its executions one by one");
            let mut results = Vec::with_capacity(batch.len());
            for new in batch {
                results.push(store.create_execution(new, now_ms).await);
            }
            results
        }
    }
}

/// One result per end of `batch`, recorded (all or none) with the result
/// `together`; if that failed, each is recorded on its own.
async fn recorded_each(
    store: &dyn Store,
    batch: &[Finish<'_>],
    together: Result<Vec<Option<Arc<Snapshot>>>, StoreError>,
) -> Vec<Result<Option<Arc<Snapshot>>, StoreError>> {
    match together {
        Ok(after) => after.into_iter().map(Ok).collect(),
        Err(error) if batch.len() == 1 => vec![Err(error)],
        Err(error) => {
            tracing::warn!(%error, ends = batch.len(), "recording a batch failed; recording its ends one by one");
            let mut results = Vec::with_capacity(batch.len());
            for f in batch {
                let after = store.finish_attempt(f.end, f.now_ms, f.planner).await;
                results.push(after.map(|after| after.map(Arc::new)));
            }
            results
        }
    }
}

#[cfg(test)]
mod tests {
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
