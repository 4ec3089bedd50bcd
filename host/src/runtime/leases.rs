//! The lease keeper: renews the leases of this runner's attempts, passes on
//! cancels requested through other runners, and returns the work of runners
//! whose leases expired.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::time::{MissedTickBehavior, interval};

use super::{Shared, commit, planner};
use crate::store::{RunKey, now_ms};

pub(crate) async fn run_lease_keeper(shared: Arc<Shared>) {
    // A third of the lease, so two renewals can fail before it expires; at
    // most half a second, which bounds how long a remote cancel takes.
    let period = (shared.config.lease / 3).min(std::time::Duration::from_millis(500));
    let mut ticks = interval(period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shared.stop_background.cancelled() => return,
            _ = ticks.tick() => {}
        }
        // Attempts running before the renewal: their claims must be held.
        let running: Vec<RunKey> = shared.running.iter().map(|e| e.key().clone()).collect();
        // Only what this runner works on: a claim whose end could not be
        // recorded must expire, so that another runner takes the step.
        let claimed: Vec<RunKey> = shared.claimed.iter().map(|k| k.clone()).collect();
        match shared
            .store
            .renew_leases(&shared.runner_id, &claimed, lease_ms(&shared))
            .await
        {
            Ok(cancelled) => cancelled.iter().for_each(|id| shared.cancel_local(id)),
            Err(error) => tracing::warn!(%error, "cannot renew leases"),
        }
        heartbeat(&shared, period).await;
        halt_lost(&shared, running).await;
        match commit::reap(
            &*shared.store,
            now_ms(),
            &shared.runner_id,
            &planner::cancel_only,
        )
        .await
        {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(
                    task_runs = n,
                    "returned task runs with expired leases to the queue"
                );
                shared.wake.notify_one();
            }
            Err(error) => tracing::warn!(%error, "cannot reap expired leases"),
        }
    }
}

/// Says this runner is alive and learns how many others are: those heard
/// from within three periods (at least 2 s).
async fn heartbeat(shared: &Shared, period: std::time::Duration) {
    let now = now_ms();
    let window = crate::store::duration_ms(period.saturating_mul(3)).max(2_000);
    match shared
        .store
        .heartbeat(&shared.runner_id, now, now - window)
        .await
    {
        Ok(others) => shared.others_alive.store(others, Ordering::Release),
        Err(error) => tracing::warn!(%error, "cannot record this runner's heartbeat"),
    }
}

fn lease_ms(shared: &Shared) -> i64 {
    crate::store::duration_ms(shared.config.lease)
}

/// Halts attempts whose claim this runner lost (its lease expired while it
/// could not renew, and another runner took the step): their results would
/// not be recorded anyway, and the step runs elsewhere.
async fn halt_lost(shared: &Shared, running: Vec<RunKey>) {
    if running.is_empty() {
        return;
    }
    let held = match shared.store.held_claims(&shared.runner_id).await {
        Ok(held) => held,
        Err(error) => return tracing::warn!(%error, "cannot check held claims"),
    };
    for key in running.iter().filter(|key| !held.contains(key)) {
        if let Some(control) = shared.running.get(key) {
            tracing::warn!(execution = %key.execution_id, step = %key.step_id, "claim lost to another runner; halting the attempt");
            control.cancel();
        }
    }
}
