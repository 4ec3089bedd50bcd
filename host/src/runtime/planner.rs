//! What happens next in an execution, decided from its stored snapshot.
//!
//! The planner is a pure function of the workflow and the snapshot; the
//! store applies its plan in the same transaction that recorded the change
//! that prompted it, so two runners can never act on the same stale view.

use std::collections::HashMap;

use crate::store::{ExecutionStatus, Object, Plan, Snapshot, StepChange};
use crate::workflow::{Action, StepState, Verdict, Workflow, plan as decide};

/// Decides the pending steps whose upstream steps have all ended, and the
/// execution's verdict once every step has ended.
pub(crate) fn plan(workflow: &Workflow, snapshot: &Snapshot, now_ms: i64) -> Plan {
    if snapshot.execution.cancel_requested {
        return cancel_only(snapshot);
    }
    let states: HashMap<String, StepState> = snapshot
        .runs
        .iter()
        .map(|r| (r.step_id.clone(), r.status))
        .collect();
    let outputs: HashMap<String, Object> = snapshot
        .runs
        .iter()
        .filter_map(|r| r.output.clone().map(|o| (r.step_id.clone(), o)))
        .collect();
    plan_from(
        workflow,
        states,
        &outputs,
        &snapshot.execution.input,
        now_ms,
        |states| failure_reason(snapshot, states),
    )
}

/// The first plan of a new execution: its root steps become ready (or are
/// skipped), every other step starts pending.
pub(crate) fn initial(workflow: &Workflow, input: &Object, now_ms: i64) -> Plan {
    let states: HashMap<String, StepState> = workflow
        .steps()
        .iter()
        .map(|s| (s.id.clone(), StepState::Pending))
        .collect();
    let mut plan = plan_from(workflow, states, &HashMap::new(), input, now_ms, |_| None);
    let decided: std::collections::HashSet<String> = plan
        .steps
        .iter()
        .map(|c| StepChange::step_id(c).to_owned())
        .collect();
    plan.steps.extend(
        workflow
            .steps()
            .iter()
            .filter(|s| !decided.contains(&s.id))
            .map(|s| StepChange::Pending {
                step_id: s.id.clone(),
            }),
    );
    plan
}

fn plan_from(
    workflow: &Workflow,
    mut states: HashMap<String, StepState>,
    outputs: &HashMap<String, Object>,
    input: &Object,
    now_ms: i64,
    failure: impl Fn(&HashMap<String, StepState>) -> Option<String>,
) -> Plan {
    let mut steps = Vec::new();
    for (step_id, action) in decide(workflow, &states, outputs, input) {
        let (change, state) = match action {
            Action::Run(input) => (
                StepChange::Ready {
                    step_id: step_id.clone(),
                    input,
                    not_before_ms: now_ms,
                },
                StepState::Ready,
            ),
            Action::Skip => (
                StepChange::Skipped {
                    step_id: step_id.clone(),
                },
                StepState::Skipped,
            ),
            Action::Cancel => (
                StepChange::Cancelled {
                    step_id: step_id.clone(),
                },
                StepState::Cancelled,
            ),
        };
        states.insert(step_id, state);
        steps.push(change);
    }
    let finish = workflow.verdict(&states).map(|verdict| match verdict {
        Verdict::Succeeded => (ExecutionStatus::Succeeded, None),
        Verdict::Failed => (ExecutionStatus::Failed, failure(&states)),
        Verdict::Cancelled => (ExecutionStatus::Cancelled, Some("cancelled".into())),
    });
    Plan { steps, finish }
}

/// Names the first failed step (by id) and its error.
fn failure_reason(snapshot: &Snapshot, states: &HashMap<String, StepState>) -> Option<String> {
    let run = snapshot
        .runs
        .iter()
        .find(|r| states.get(&r.step_id) == Some(&StepState::Failed))?;
    Some(format!(
        "step `{}` failed: {}",
        run.step_id,
        run.error.as_deref().unwrap_or("unknown error")
    ))
}

/// The plan of a cancelled execution: nothing new starts; steps not yet
/// running are cancelled; once no attempt runs any more, it is cancelled.
/// For executions not being cancelled it decides nothing.
pub(crate) fn cancel_only(snapshot: &Snapshot) -> Plan {
    if !snapshot.execution.cancel_requested {
        return Plan::default();
    }
    let steps = cancel_waiting(snapshot);
    let running = snapshot.runs.iter().any(|r| r.status == StepState::Running);
    let finish = (!running).then(|| (ExecutionStatus::Cancelled, Some("cancelled".into())));
    Plan { steps, finish }
}

/// Cancels every step that has not started: pending or ready.
pub(crate) fn cancel_waiting(snapshot: &Snapshot) -> Vec<StepChange> {
    snapshot
        .runs
        .iter()
        .filter(|r| matches!(r.status, StepState::Pending | StepState::Ready))
        .map(|r| StepChange::Cancelled {
            step_id: r.step_id.clone(),
        })
        .collect()
}
