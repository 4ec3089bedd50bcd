//! The claim loop: claims ready task runs while there are free slots, runs
//! each in its own task, and on shutdown drains what is in flight.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until};

use super::Shared;
use super::attempt::{Halted, run_claim};
use super::batch::{Write, WriteResult};
use super::commit::ClaimRequest;
use crate::store::{Wakeup, now_ms};

/// What draining the in-flight attempts came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DrainReport {
    /// Attempts that finished by themselves within the grace period.
    pub finished: usize,
    /// Attempts halted after the grace period (recorded as interrupted).
    pub halted: usize,
    /// When the stop was asked for: attempts that ended before are not
    /// counted.
    since: Option<std::time::Instant>,
}

/// Runs until `stop_claiming` is cancelled, then waits up to `grace` for the
/// attempts in flight, halts the rest and waits for them to be recorded.
/// Dropping this future (when the runner is dropped) aborts every attempt
/// task with it: the `JoinSet` owns them.
pub(crate) async fn run_executor(
    shared: Arc<Shared>,
    grace: tokio::sync::watch::Receiver<Option<Duration>>,
) -> DrainReport {
    let mut attempts = JoinSet::new();
    let _wakeups = listen(&shared).await;
    let capacity = shared.slots.available_permits().max(1);
    // While the queue holds more than this runner can take, claiming for
    // every slot that frees up would cost one transaction (one disk sync)
    // per attempt; claims then wait for a batch's worth of free slots. When
    // the queue is drained, a freed slot claims at once, for latency.
    let batch_threshold = (capacity / 2).clamp(
        1,
        usize::try_from(shared.config.claim_batch).unwrap_or(usize::MAX),
    );
    // Free slots needed before claiming: a batch's worth under backlog
    // (while attempts are in flight to free more), else one.
    let claim_threshold = |backlog: bool, attempts: &JoinSet<Ended>| {
        if backlog && !attempts.is_empty() {
            batch_threshold
        } else {
            1
        }
    };
    let mut backlog = false;
    // Whether to claim at once rather than park the claim: at the start
    // (work may be waiting) and while there is a backlog.
    let mut eager = true;
    loop {
        // Checked first: attempts that end after the stop are the drain's
        // to count.
        if shared.stop_claiming.is_cancelled() {
            break;
        }
        while let Some(result) = attempts.try_join_next() {
            if let Err(error) = result {
                tracing::error!(%error, "an attempt task failed");
            }
        }
        let free = shared.slots.available_permits();
        if free < claim_threshold(backlog, &attempts) {
            tokio::select! {
                biased;
                () = shared.stop_claiming.cancelled() => {}
                Some(_) = attempts.join_next() => {}
                () = sleep(shared.config.poll_interval) => {
                    // No batch's worth of slots freed up within a poll
                    // interval (the attempts left run long): claim for the
                    // free ones.
                    backlog = false;
                }
            }
            eager = backlog;
            continue;
        }
        let want = u32::try_from(free)
            .unwrap_or(u32::MAX)
            .min(shared.config.claim_batch);
        let request = ClaimRequest::new(&shared.runner_id, want, shared.lease_until(), now_ms());
        let mut queued = shared.enqueue(Write::Claim(request));
        if !eager {
            // Parked: the claim rides with the next batch anyone commits (a
            // submit's, an attempt end's) and so takes the steps that batch
            // makes ready in the same transaction, without one of its own.
            // It is committed by itself only when woken (work made ready
            // elsewhere), at the stop, or after a poll interval.
            tokio::select! {
                biased;
                () = queued.answered() => {}
                () = shared.stop_claiming.cancelled() => {}
                () = shared.wake.notified() => {}
                () = sleep(shared.config.poll_interval) => {}
            }
        }
        let claimed = match shared.written(queued).await {
            Some(WriteResult::Claimed(result)) => result,
            // Only when the runtime is shutting down.
            _ => Ok(Vec::new()),
        };
        match claimed {
            Ok(claims) => {
                let claimed = claims.len();
                for claim in claims {
                    let Ok(slot) = shared.slots.clone().try_acquire_owned() else {
                        break;
                    };
                    let shared = shared.clone();
                    attempts.spawn(async move {
                        let halted = run_claim(shared, claim).await;
                        drop(slot);
                        (halted, std::time::Instant::now())
                    });
                }
                // There may be more: claim again at once.
                backlog = claimed as u32 == want;
            }
            Err(error) => {
                tracing::error!(%error, "cannot claim work");
                backlog = false;
            }
        }
        eager = backlog;
    }
    let grace = *grace.borrow();
    drain(&shared, attempts, grace).await
}

/// Aborts a task when dropped: the wake-up listener lives exactly as long
/// as the executor loop, even when that loop is aborted.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Forwards wake-ups from other runners (PostgreSQL's LISTEN/NOTIFY): work
/// wakes the claim loop, a cancel halts the execution's attempts here.
async fn listen(shared: &Arc<Shared>) -> Option<AbortOnDrop> {
    let mut wakeups = match shared.store.listen().await {
        Ok(Some(wakeups)) => wakeups,
        Ok(None) => return None,
        Err(error) => {
            tracing::warn!(%error, "no wake-ups from other runners; polling only");
            return None;
        }
    };
    let shared = shared.clone();
    Some(AbortOnDrop(tokio::spawn(async move {
        while let Some(wakeup) = wakeups.next().await {
            match wakeup {
                Wakeup::Work => shared.wake.notify_one(),
                Wakeup::Cancel(id) => shared.cancel_local(&id),
            }
        }
    })))
}

/// Waits up to `grace` for `attempts`, then halts the rest and waits for
/// them. Each attempt is counted by how it ended (by itself, or halted),
/// not by when its task was joined: with no grace, the halt comes before
/// this runs, and halted attempts may be over by then.
async fn drain(
    shared: &Shared,
    mut attempts: JoinSet<Ended>,
    grace: Option<Duration>,
) -> DrainReport {
    let mut report = DrainReport {
        since: shared.stop_requested.get().copied(),
        ..DrainReport::default()
    };
    let deadline = Instant::now() + grace.unwrap_or_default();
    loop {
        tokio::select! {
            biased;
            () = sleep_until(deadline) => break,
            next = attempts.join_next() => match next {
                Some(joined) => report.count(joined),
                None => return report,
            },
        }
    }
    // Halted attempts end as `halted` and are recorded as interrupted: back
    // to the queue without using up a retry.
    shared.halt_all().await;
    while let Some(joined) = attempts.join_next().await {
        report.count(joined);
    }
    report
}

/// How an attempt task ended, and when.
type Ended = (Halted, std::time::Instant);

impl DrainReport {
    /// Counts an attempt by how it ended; one that ended before the stop
    /// was asked for (it waited in the set to be joined) is not counted.
    fn count(&mut self, joined: Result<Ended, tokio::task::JoinError>) {
        match joined {
            Ok((_, at)) if self.since.is_some_and(|since| at < since) => {}
            Ok((Halted(true), _)) => self.halted += 1,
            Ok((Halted(false), _)) => self.finished += 1,
            Err(error) => tracing::error!(%error, "an attempt task failed"),
        }
    }
}
