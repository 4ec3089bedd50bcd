//! The firing loop: every tick, each active schedule's due fire times (see
//! [`Schedule::due_fires`]) become executions. Each fire is recorded under
//! the unique key (schedule, fire time) in the transaction that starts its
//! execution, so however many hosts run this loop, and however often one
//! restarts, a fire time produces one execution.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::{MissedTickBehavior, interval};

use super::RuntimeError;
use super::Shared;
use crate::schedule::{Clock, DEFAULT_TOLERANCE, Overlap, Schedule};
use crate::store::{ScheduleFire, ScheduleRecord, now_ms};

/// How often the loop looks for due fires.
pub(crate) const TICK: Duration = Duration::from_millis(250);

pub(crate) async fn run_scheduler(shared: Arc<Shared>, clock: Arc<dyn Clock>) {
    let mut ticks = interval(TICK);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shared.stop_background.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(error) = fire_due(&shared, &*clock).await {
            tracing::warn!(%error, "cannot fire schedules");
        }
    }
}

/// Fires what is due at `clock.now()`; returns how many executions started.
pub(crate) async fn fire_due(shared: &Shared, clock: &dyn Clock) -> Result<usize, RuntimeError> {
    let mut started = 0;
    for record in shared.store.list_schedules().await? {
        if record.paused {
            continue;
        }
        match fire_one(shared, &record, clock.now()).await {
            Ok(n) => started += n,
            Err(error) => {
                tracing::warn!(schedule = %record.name, %error, "cannot fire the schedule")
            }
        }
    }
    if started > 0 {
        shared.wake.notify_one();
    }
    Ok(started)
}

async fn fire_one(
    shared: &Shared,
    record: &ScheduleRecord,
    now: DateTime<Utc>,
) -> Result<usize, RuntimeError> {
    let schedule: Schedule = serde_json::from_value(record.definition.clone()).map_err(|e| {
        RuntimeError::InvalidSchedule {
            name: record.name.clone(),
            reason: e.to_string(),
        }
    })?;
    let anchor = DateTime::from_timestamp_millis(record.anchor_ms).unwrap_or(now);
    let mut started = 0;
    for fire_time in schedule.due_fires(None, anchor, now, DEFAULT_TOLERANCE) {
        let now_ms = now_ms();
        let skip = schedule.overlap() == Overlap::Skip
            && shared.store.schedule_running(schedule.name()).await?;
        let execution = if skip {
            None
        } else {
            let mut input = schedule.input().clone();
            input
                .entry("fire_time")
                .or_insert_with(|| fire_time.to_rfc3339().into());
            Some(
                shared
                    .new_execution(schedule.workflow(), input, now_ms)
                    .await?,
            )
        };
        let fire = ScheduleFire {
            schedule: schedule.name().to_owned(),
            fire_time_ms: fire_time.timestamp_millis(),
            execution,
        };
        let fired = shared.store.fire_schedule(&fire, now_ms).await?;
        if fired {
            let span = tracing::info_span!("schedule", schedule = %schedule.name(), fire_time = %fire_time);
            span.in_scope(|| match &fire.execution {
                Some(e) => tracing::info!(execution = %e.id, "fired"),
                None => {
                    tracing::info!("skipped: the previous execution still runs (overlap = skip)")
                }
            });
            started += usize::from(fire.execution.is_some());
        }
    }
    Ok(started)
}
