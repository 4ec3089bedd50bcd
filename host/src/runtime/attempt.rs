//! Running one claimed task run: one attempt in the sandbox, then recording
//! its end and what the planner decides next, in one transaction.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tracing::Instrument;

use super::RuntimeError;
use super::batch::{EndPlanner, QueuedEnd, Ready, Write, WriteResult};
use super::{Shared, planner};
use crate::sandbox::{AttemptReport, AttemptRequest, Outcome};
use crate::store::{
    AttemptEnd, AttemptResult, Claim, ExecutionStatus, Plan, RunKey, Snapshot, duration_ms, now_ms,
};
use crate::workflow::{
    FailureKind, NextAttempt, RetryPolicy, StepState, TaskDefaults, Workflow, WorkflowError,
};

/// Runs `claim` and records it; returns whether a halt of the sandbox
/// stopped it. Errors are logged: an attempt whose end could not be
/// recorded keeps its lease until it expires, then the reaper returns it to
/// the queue.
pub(crate) async fn run_claim(shared: Arc<Shared>, claim: Claim) -> Halted {
    let span = tracing::info_span!(
        "task_run",
        execution = %claim.execution_id,
        step = %claim.step_id,
        attempt = claim.number,
    );
    async move {
        let key = RunKey::new(claim.execution_id.clone(), claim.step_id.clone());
        let control = shared.sandbox.control();
        // Held until its end is recorded (or given up): the lease keeper
        // renews exactly these claims.
        shared.claimed.insert(key.clone());
        // In the map from the start: a cancel reaches the attempt however
        // far it got, and a drain waiting for every attempt's end to be
        // queued (see `record`) sees this one.
        shared.running.insert(key.clone(), control.clone());
        let workflow = retrying(&shared, "loading a workflow", || {
            shared
                .catalog
                .workflow(&claim.workflow, &claim.workflow_version)
        })
        .await;
        let (end, planner, halted) = match workflow {
            Ok(workflow) => {
                shared.progress.running(&claim.execution_id, &claim.step_id);
                let ran = attempt(&shared, &workflow, &claim, &control).await;
                let halted = Halted(match &ran {
                    Ok((report, _)) => matches!(report.outcome, Outcome::Halted),
                    Err(_) => shared.sandbox.is_halted(),
                });
                let end = match ran {
                    Ok((report, retry)) => end_of(&shared, &claim, &report, &retry),
                    // Halted while loading the plugin, or the database stayed
                    // away until the halt: not the task's fault either.
                    Err(error) if shared.sandbox.is_halted() || error.is_transient() => {
                        interrupted(&shared, &claim)
                    }
                    // This host cannot load the plugin (its engine settings,
                    // say): leave the step to hosts that can rather than
                    // failing it, within bounds.
                    Err(RuntimeError::Plugin(error)) => {
                        deferred(&shared, &claim, "the plugin", &error).await.0
                    }
                    Err(error) => setup_failure(&shared, &claim, &error),
                };
                (end, EndPlanner::Workflow(workflow), halted)
            }
            Err(error) if shared.sandbox.is_halted() || error.is_transient() => (
                interrupted(&shared, &claim),
                EndPlanner::Custom(Arc::new(planner::cancel_only)),
                Halted(false),
            ),
            // A newer host stored this workflow version: leave its steps to
            // hosts that read it (a rolling upgrade), within bounds.
            Err(error @ RuntimeError::Workflow(WorkflowError::NewerFormat { .. })) => {
                match deferred(&shared, &claim, "the workflow", &error).await {
                    (end, GaveUp(false)) => (
                        end,
                        EndPlanner::Custom(Arc::new(planner::cancel_only)),
                        Halted(false),
                    ),
                    (end, GaveUp(true)) => {
                        let (_, planner) = failed_execution(&shared, &claim, &error);
                        (end, planner, Halted(false))
                    }
                }
            }
            Err(error) => {
                let (end, planner) = failed_execution(&shared, &claim, &error);
                (end, planner, Halted(false))
            }
        };
        tracing::info!(outcome = %end.outcome, "attempt ended");
        record(&shared, &key, end, planner).await;
        shared.claimed.remove(&key);
        halted
    }
    .instrument(span)
    .await
}

/// Whether a halt of the sandbox stopped an attempt (rather than the
/// attempt ending by itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Halted(pub(crate) bool);

/// Queues `end` for recording, then takes the attempt out of
/// `shared.running` (in that order: once the map is empty, every end is in
/// the queue) and waits for the commit. A transient database error is
/// retried with backoff (see [`retry_delay`]) for as long as the runner
/// holds the claim and has not been halted, so a burst of killed
/// connections neither loses the end nor leaves the step `running`.
async fn record(shared: &Shared, key: &RunKey, end: AttemptEnd, planner: EndPlanner) {
    let mut queued_end = QueuedEnd {
        end: Arc::new(end),
        now_ms: now_ms(),
        planner,
    };
    let mut queued = shared.enqueue(Write::End(queued_end.clone()));
    shared.running.remove(key);
    shared.left_running.notify_waiters();
    let mut tries = 0u32;
    loop {
        let (recorded, ready) = match shared.written(queued).await {
            Some(WriteResult::Recorded(result, ready)) => (Some(result), ready),
            _ => (None, Ready::MaybeLeft),
        };
        match recorded {
            Some(Ok(Some(snapshot))) => {
                shared.progress.publish_shared(&snapshot);
                // Only new work is worth a claim: an empty one still costs a
                // transaction (on SQLite, one every other write waits for).
                if ready == Ready::MaybeLeft
                    && snapshot
                        .runs
                        .iter()
                        .any(|run| run.status == StepState::Ready)
                {
                    shared.wake.notify_one();
                }
            }
            Some(Ok(None)) => {
                tracing::warn!("lease lost: another runner owns this task run now; result dropped")
            }
            Some(Err(error)) => {
                tries += 1;
                if error.is_transient()
                    && let Some(delay) = retry_delay(shared, tries)
                {
                    tracing::warn!(%error, tries, ?delay, "cannot record the attempt yet; trying again");
                    tokio::time::sleep(delay).await;
                    queued_end.now_ms = now_ms();
                    queued = shared.enqueue(Write::End(queued_end.clone()));
                    continue;
                }
                tracing::error!(
                    %error,
                    "cannot record the attempt; leaving it to the lease: it runs again once the lease expires"
                );
            }
            None => tracing::warn!("the runner stopped before this attempt was recorded"),
        }
        return;
    }
}

/// How long to wait before try number `tries + 1` of work that failed on a
/// transient database error: 10 ms doubling up to 1 s; `None` to give up,
/// once the store is closed or, after a halt (shutdown), after three tries
/// (a halted runner must not hang on a database that went away: its leases
/// expire and other runners take the work).
pub(crate) fn retry_delay(shared: &Shared, tries: u32) -> Option<Duration> {
    if shared.store.is_closed() || (shared.sandbox.is_halted() && tries > 3) {
        return None;
    }
    let delay = Duration::from_millis(10).saturating_mul(1 << tries.min(7));
    Some(delay.min(Duration::from_secs(1)))
}

/// Runs `work` again while it fails with a transient database error, with
/// the backoff of [`retry_delay`].
pub(crate) async fn retrying<T, F, Fut>(
    shared: &Shared,
    doing: &str,
    mut work: F,
) -> Result<T, RuntimeError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, RuntimeError>>,
{
    let mut tries = 0;
    loop {
        match work().await {
            Err(error) if error.is_transient() => {
                tries += 1;
                let Some(delay) = retry_delay(shared, tries) else {
                    return Err(error);
                };
                tracing::warn!(%error, doing, tries, ?delay, "transient database error; trying again");
                tokio::time::sleep(delay).await;
            }
            other => return other,
        }
    }
}

/// The workflow version of a claim cannot be loaded (a corrupt definition
/// or a database fault): nothing can be decided for the execution, so it
/// fails with the reason rather than holding its lease for ever.
fn failed_execution(
    shared: &Shared,
    claim: &Claim,
    error: &RuntimeError,
) -> (AttemptEnd, EndPlanner) {
    tracing::error!(%error, "cannot load the workflow of a claimed task run");
    let end = setup_failure(shared, claim, error);
    let reason = format!(
        "cannot load workflow {}@{}: {error}",
        claim.workflow, claim.workflow_version
    );
    let planner = move |snapshot: &Snapshot| {
        let steps = planner::cancel_waiting(snapshot);
        Plan {
            steps,
            finish: Some((ExecutionStatus::Failed, Some(reason.clone()))),
        }
    };
    (end, EndPlanner::Custom(Arc::new(planner)))
}

async fn attempt(
    shared: &Shared,
    workflow: &Workflow,
    claim: &Claim,
    control: &crate::sandbox::AttemptControl,
) -> Result<(AttemptReport, RetryPolicy), RuntimeError> {
    let step = workflow
        .step(&claim.step_id)
        .ok_or_else(|| RuntimeError::UnknownStep(claim.step_id.clone()))?;
    let plugin = retrying(shared, "loading a plugin", || {
        shared.catalog.plugin(
            step.task.plugin(),
            claim.plugins.get(step.task.plugin_ref()),
        )
    })
    .await?;
    let hints = plugin.info().task(step.task.task());
    let task = TaskDefaults {
        timeout: hints
            .and_then(|t| t.default_timeout_ms)
            .map(Duration::from_millis),
        max_attempts: hints.and_then(|t| t.max_attempts),
    };
    let mut settings = workflow.settings(step, task, &shared.config.default_limits);
    let mut grants = shared.config.default_grants.clone();
    grants
        .dirs
        .retain(|d| !settings.grants.dirs.iter().any(|s| s.guest == d.guest));
    grants.dirs.append(&mut settings.grants.dirs);
    grants.env.append(&mut settings.grants.env);
    let request = AttemptRequest {
        task: step.task.task().to_owned(),
        input: claim.input.clone(),
        grants,
        limits: settings.limits,
    };
    let report = shared.sandbox.run(&plugin, &request, control).await?;
    Ok((report, settings.retry))
}

fn failure_kind(outcome: &Outcome) -> Option<FailureKind> {
    Some(match outcome {
        Outcome::Succeeded { .. } => return None,
        Outcome::Failed { retryable, .. } => FailureKind::Error {
            retryable: *retryable,
        },
        Outcome::TimedOut { .. } => FailureKind::Timeout,
        Outcome::Cancelled => FailureKind::Cancelled,
        Outcome::Halted => FailureKind::Interrupted,
        Outcome::MemoryLimitExceeded { .. } => FailureKind::MemoryLimit,
        Outcome::OutOfFuel => FailureKind::OutOfFuel,
        Outcome::Trapped { .. } => FailureKind::Trap,
        Outcome::InvalidOutput { .. } => FailureKind::InvalidOutput,
        Outcome::PluginError { .. } => FailureKind::PluginError,
    })
}

fn end_of(
    shared: &Shared,
    claim: &Claim,
    report: &AttemptReport,
    retry: &RetryPolicy,
) -> AttemptEnd {
    let outcome = &report.outcome;
    let result = match (outcome, failure_kind(outcome)) {
        (Outcome::Succeeded { output }, _) => AttemptResult::Succeeded(output.clone()),
        (_, Some(FailureKind::Cancelled)) => AttemptResult::Cancelled,
        (_, Some(kind)) => after_failure(retry, claim.attempts, kind, outcome.to_string()),
        (_, None) => AttemptResult::Failed(outcome.to_string()),
    };
    let outcome_name = match result {
        AttemptResult::Interrupted => "interrupted".to_owned(),
        _ => outcome.kind().to_owned(),
    };
    AttemptEnd {
        claim: claim.clone(),
        runner_id: shared.runner_id.clone(),
        outcome: outcome_name,
        result,
        logs: json!(report.logs),
        stdout: report.stdout.text.clone(),
        stderr: report.stderr.text.clone(),
    }
}

fn after_failure(
    retry: &RetryPolicy,
    attempts: u32,
    kind: FailureKind,
    error: String,
) -> AttemptResult {
    match retry.after_failure(attempts, kind, rand::random::<f64>()) {
        NextAttempt::Resume { .. } => AttemptResult::Interrupted,
        NextAttempt::Retry { after, .. } => AttemptResult::Retry {
            error,
            not_before_ms: now_ms() + duration_ms(after),
        },
        NextAttempt::GiveUp => AttemptResult::Failed(error),
    }
}

/// The host stopped the attempt before it ran: back to the queue, not counted.
fn interrupted(shared: &Shared, claim: &Claim) -> AttemptEnd {
    not_run(shared, claim, "interrupted", AttemptResult::Interrupted)
}

/// Whether a deferral was refused because its bounds are used up: the
/// step fails instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GaveUp(bool);

/// A host that cannot load `what` (the plugin, the workflow) leaves its
/// step to others, not before [`DeferPolicy::every`] from now; once the
/// step was deferred [`DeferPolicy::max_deferrals`] times, or first
/// deferred longer than [`DeferPolicy::max_time`] ago, or no other runner
/// is alive to take it, the step fails for good with the reason.
async fn deferred(
    shared: &Shared,
    claim: &Claim,
    what: &str,
    error: &(dyn std::fmt::Display + Sync),
) -> (AttemptEnd, GaveUp) {
    let reason = format!("host {} cannot load {what}: {error}", shared.runner_id);
    let policy = &shared.config.defer;
    let now = now_ms();
    let (earlier, since) = earlier_deferrals(shared, claim).await;
    let others = shared.others_alive();
    let over = if others == Some(0) {
        Some("no other runner is alive to take it".to_owned())
    } else if earlier >= policy.max_deferrals {
        Some(format!("deferred {earlier} times already"))
    } else if since.is_some_and(|since| now - since >= duration_ms(policy.max_time)) {
        Some(format!(
            "no runner could load it for {}",
            humantime::format_duration(policy.max_time)
        ))
    } else {
        None
    };
    if let Some(over) = over {
        tracing::error!(%error, over, "cannot load {what} on this host; failing the step");
        let result = AttemptResult::Failed(format!("{reason} ({over})"));
        return (not_run(shared, claim, "plugin_error", result), GaveUp(true));
    }
    tracing::error!(%error, ?others, "cannot load {what} on this host; leaving the step to others");
    let result = AttemptResult::Deferred {
        error: reason,
        not_before_ms: now + duration_ms(policy.every),
    };
    (not_run(shared, claim, "deferred", result), GaveUp(false))
}

/// How often this step was deferred before, and when first. A database
/// fault counts as none (the step is deferred, not failed, on its account).
async fn earlier_deferrals(shared: &Shared, claim: &Claim) -> (u32, Option<i64>) {
    match shared
        .store
        .attempts(&claim.execution_id, Some(&claim.step_id))
        .await
    {
        Ok(attempts) => {
            let deferred = attempts
                .iter()
                .filter(|a| a.outcome.as_deref() == Some("deferred"));
            let count = u32::try_from(deferred.clone().count()).unwrap_or(u32::MAX);
            (count, deferred.map(|a| a.started_at_ms).min())
        }
        Err(error) => {
            tracing::warn!(%error, "cannot count earlier deferrals");
            (0, None)
        }
    }
}

/// The attempt could not even start (plugin missing, bad grant): a
/// permanent failure of the step, with the reason.
fn setup_failure(shared: &Shared, claim: &Claim, error: &RuntimeError) -> AttemptEnd {
    not_run(
        shared,
        claim,
        "plugin_error",
        AttemptResult::Failed(error.to_string()),
    )
}

/// The end of an attempt whose guest never ran: nothing was captured.
fn not_run(shared: &Shared, claim: &Claim, outcome: &str, result: AttemptResult) -> AttemptEnd {
    AttemptEnd {
        claim: claim.clone(),
        runner_id: shared.runner_id.clone(),
        outcome: outcome.into(),
        result,
        logs: json!([]),
        stdout: String::new(),
        stderr: String::new(),
    }
}
