//! What the runner reports: the shapes the CLI prints with `--json` and
//! an HTTP front end would serve.

use serde::Serialize;

use crate::runtime::RuntimeLink;
use crate::store::{
    ExecutionCursor, ExecutionId, ExecutionRecord, ExecutionStatus, Object, PluginPins, Snapshot,
};
use crate::workflow::StepState;
use crate::workflow::Workflow;

/// What [`Runner::shutdown`](crate::Runner::shutdown) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ShutdownReport {
    /// Attempts that finished within the grace period.
    pub finished: usize,
    /// Attempts halted when the grace period ran out; recorded as
    /// interrupted, they run again on the next runner.
    pub halted: usize,
    /// Whether the runner had already been shut down (nothing was done).
    pub already_shut_down: bool,
}

/// One step of an execution, as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReport {
    /// The step's id.
    pub id: String,
    /// Its state.
    pub status: StepState,
    /// Attempts that counted.
    pub attempts: u32,
    /// Its last error.
    pub error: Option<String>,
    /// Its output, once succeeded.
    pub output: Option<Object>,
}

/// An execution, as reported by [`Runner::status`](crate::Runner::status) and [`ExecutionHandle::wait`](crate::ExecutionHandle::wait).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionReport {
    /// Its id.
    pub id: ExecutionId,
    /// The workflow.
    pub workflow: String,
    /// The workflow version it ran.
    pub workflow_version: String,
    /// Its state.
    pub status: ExecutionStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// The result: the outputs of the succeeded steps that no other step
    /// depends on, merged in step order (later steps win on conflicts).
    pub output: Object,
    /// Every step.
    pub steps: Vec<StepReport>,
    /// The plugin registration its steps run, fixed when it was created
    /// (see [`PluginPins`]).
    pub plugins: PluginPins,
}

impl ExecutionReport {
    /// The report of `snapshot`, with the workflow version it runs (from
    /// the runtime's catalog while it lives, else from the store).
    pub(super) async fn of(snapshot: Snapshot, runtime: &RuntimeLink) -> Self {
        let workflow = runtime.workflow_of(&snapshot).await;
        Self::new(snapshot, workflow.as_deref())
    }

    fn new(snapshot: Snapshot, workflow: Option<&Workflow>) -> Self {
        let is_sink = |id: &str| {
            workflow.is_none_or(|w| {
                w.downstream(id)
                    .is_none_or(|downstream| downstream.is_empty())
            })
        };
        let mut output = Object::new();
        let order: Vec<String> = match workflow {
            Some(w) => w.topological_order().iter().map(|s| s.id.clone()).collect(),
            None => snapshot.runs.iter().map(|r| r.step_id.clone()).collect(),
        };
        for id in &order {
            let run = snapshot.runs.iter().find(|r| &r.step_id == id);
            if let Some(out) = run.and_then(|r| r.output.as_ref()).filter(|_| is_sink(id)) {
                output.extend(out.clone());
            }
        }
        let mut runs = snapshot.runs;
        runs.sort_by_key(|r| order.iter().position(|id| *id == r.step_id));
        let execution = snapshot.execution;
        Self {
            id: execution.id,
            workflow: execution.workflow,
            workflow_version: execution.workflow_version,
            status: execution.status,
            error: execution.error,
            output,
            steps: runs
                .into_iter()
                .map(|r| StepReport {
                    id: r.step_id,
                    status: r.status,
                    attempts: r.attempts,
                    error: r.error,
                    output: r.output,
                })
                .collect(),
            plugins: execution.plugins,
        }
    }
}

/// One page of [`Runner::executions`](super::Runner::executions).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionPage {
    /// The executions, newest first.
    pub executions: Vec<ExecutionRecord>,
    /// Where the next page starts (pass it as
    /// [`ExecutionFilter::before`](crate::store::ExecutionFilter::before));
    /// `None` on the last page.
    pub next: Option<ExecutionCursor>,
}
