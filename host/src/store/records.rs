//! The rows the store keeps, as Rust values.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ExecutionId, StoreError};
use crate::workflow::StepState;

/// JSON object, the shape of every input and output.
pub type Object = Map<String, Value>;

/// The exact registration of a plugin that an execution runs: fixed when
/// the execution is created, so every host runs the same code for it
/// however many versions are registered later.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PluginPin {
    /// The registered version.
    pub version: String,
    /// Hex SHA-256 of its component: a host runs exactly these bytes.
    pub sha256: String,
}

/// An execution's plugins, by the plugin reference its steps use (`etl`,
/// or `etl@0.2` for a step pinned to a version: see
/// [`TaskRef::plugin_ref`](crate::workflow::TaskRef::plugin_ref)). Empty
/// for an execution created before plugins were pinned: its steps run the
/// newest registration.
pub type PluginPins = std::collections::BTreeMap<String, PluginPin>;

macro_rules! status_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vdoc])* $variant,)* }

        impl $name {
            /// The name stored in the database and printed by the CLI.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = StoreError;
            fn from_str(s: &str) -> Result<Self, StoreError> {
                match s {
                    $($text => Ok($name::$variant),)*
                    other => Err(StoreError::Corrupt {
                        what: stringify!($name),
                        reason: format!("unknown value `{other}`"),
                    }),
                }
            }
        }
    };
}

status_enum! {
    /// The state of an execution.
    ExecutionStatus {
        /// Some step has not ended yet.
        Running = "running",
        /// Every step succeeded or was skipped by its trigger rule.
        Succeeded = "succeeded",
        /// Some step failed.
        Failed = "failed",
        /// The execution was cancelled.
        Cancelled = "cancelled",
    }
}

/// A step state as stored, decoded.
pub(crate) fn stored_step_state(text: &str) -> Result<StepState, StoreError> {
    text.parse().map_err(|_| StoreError::Corrupt {
        what: "TaskRunStatus",
        reason: format!("unknown value `{text}`"),
    })
}

impl ExecutionStatus {
    /// Whether the execution has ended.
    pub fn is_final(self) -> bool {
        self != ExecutionStatus::Running
    }
}

/// An execution as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    /// Its id.
    pub id: ExecutionId,
    /// The workflow's name.
    pub workflow: String,
    /// The workflow version it runs (fixed at start).
    pub workflow_version: String,
    /// Its state.
    pub status: ExecutionStatus,
    /// The input it was started with.
    pub input: Object,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Whether a cancel was asked for.
    pub cancel_requested: bool,
    /// When it was created (ms since the Unix epoch).
    pub created_at_ms: i64,
    /// When it ended (ms since the Unix epoch).
    pub finished_at_ms: Option<i64>,
    /// The schedule that started it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// The fire time (ms since the Unix epoch) it was started for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fire_time_ms: Option<i64>,
    /// The plugin registration its steps run (see [`PluginPins`]).
    #[serde(default)]
    pub plugins: PluginPins,
}

/// One step of an execution as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRunRecord {
    /// The step's id.
    pub step_id: String,
    /// Its state.
    pub status: StepState,
    /// Attempts that counted against the retry policy.
    pub attempts: u32,
    /// Not claimable before this time (ms since the Unix epoch): backoff.
    pub not_before_ms: i64,
    /// The merged input, once it became ready.
    pub input: Option<Object>,
    /// The output, once it succeeded.
    pub output: Option<Object>,
    /// The last error.
    pub error: Option<String>,
    /// The runner holding the claim, while running.
    pub claimed_by: Option<String>,
    /// Until when the claim holds (ms since the Unix epoch).
    pub lease_until_ms: Option<i64>,
}

/// One attempt as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// The step's id.
    pub step_id: String,
    /// 1-based number among all starts of this step.
    pub number: u32,
    /// The runner that ran it.
    pub runner_id: String,
    /// Start time (ms since the Unix epoch).
    pub started_at_ms: i64,
    /// End time, once ended.
    pub finished_at_ms: Option<i64>,
    /// Outcome kind (`succeeded`, `timed_out`, ..., or `interrupted`).
    pub outcome: Option<String>,
    /// Error message, for failures.
    pub error: Option<String>,
    /// Captured log lines (JSON array).
    pub logs: Option<Value>,
    /// Captured stdout.
    pub stdout: Option<String>,
    /// Captured stderr.
    pub stderr: Option<String>,
}

/// A new execution with its task runs, created in one transaction.
#[derive(Debug, Clone)]
pub struct NewExecution {
    /// Its id.
    pub id: ExecutionId,
    /// The workflow's name.
    pub workflow: String,
    /// The workflow version.
    pub workflow_version: String,
    /// The input.
    pub input: Object,
    /// Every step, with its initial state (`Pending`, or `Ready` with an input,
    /// or `Skipped`).
    pub steps: Vec<StepChange>,
    /// Set when the execution ends at once (every step skipped).
    pub finish: Option<(ExecutionStatus, Option<String>)>,
    /// The plugin registration each of its steps runs (see [`PluginPins`]).
    pub plugins: PluginPins,
}

impl NewExecution {
    /// The execution as [`Engine::create_execution`](super::Engine::create_execution)
    /// stores it at `now_ms`, without reading it back.
    pub(crate) fn snapshot(&self, now_ms: i64) -> Snapshot {
        let mut runs: Vec<TaskRunRecord> = self
            .steps
            .iter()
            .map(|step| TaskRunRecord {
                step_id: step.step_id().to_owned(),
                status: StepState::Pending,
                attempts: 0,
                not_before_ms: 0,
                input: None,
                output: None,
                error: None,
                claimed_by: None,
                lease_until_ms: None,
            })
            .collect();
        runs.sort_by(|a, b| a.step_id.cmp(&b.step_id));
        let mut snapshot = Snapshot {
            execution: ExecutionRecord {
                id: self.id.clone(),
                workflow: self.workflow.clone(),
                workflow_version: self.workflow_version.clone(),
                status: ExecutionStatus::Running,
                input: self.input.clone(),
                error: None,
                cancel_requested: false,
                created_at_ms: now_ms,
                finished_at_ms: None,
                schedule: None,
                fire_time_ms: None,
                plugins: self.plugins.clone(),
            },
            runs,
        };
        snapshot.apply(
            &Plan {
                steps: self.steps.clone(),
                finish: self.finish.clone(),
            },
            now_ms,
        );
        snapshot
    }
}

/// A step state change decided by the planner.
#[derive(Debug, Clone, PartialEq)]
pub enum StepChange {
    /// Still waiting for dependencies.
    Pending {
        /// The step.
        step_id: String,
    },
    /// Claimable from `not_before_ms` on, with this input.
    Ready {
        /// The step.
        step_id: String,
        /// Its merged input.
        input: Object,
        /// Backoff: not before this time.
        not_before_ms: i64,
    },
    /// Skipped by its trigger rule.
    Skipped {
        /// The step.
        step_id: String,
    },
    /// Cancelled with its execution.
    Cancelled {
        /// The step.
        step_id: String,
    },
}

impl StepChange {
    /// The task run's row when an execution is created with this change:
    /// its status, its input (JSON text) and its `not_before`.
    pub(crate) fn first_row(&self) -> (StepState, Option<String>, i64) {
        match self {
            StepChange::Pending { .. } => (StepState::Pending, None, 0),
            StepChange::Ready {
                input,
                not_before_ms,
                ..
            } => (
                StepState::Ready,
                Some(Value::Object(input.clone()).to_string()),
                *not_before_ms,
            ),
            StepChange::Skipped { .. } => (StepState::Skipped, None, 0),
            StepChange::Cancelled { .. } => (StepState::Cancelled, None, 0),
        }
    }

    /// The step it changes.
    pub fn step_id(&self) -> &str {
        match self {
            StepChange::Pending { step_id }
            | StepChange::Ready { step_id, .. }
            | StepChange::Skipped { step_id }
            | StepChange::Cancelled { step_id } => step_id,
        }
    }
}

/// A claimed task run: the caller holds its lease and runs one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// The execution.
    pub execution_id: ExecutionId,
    /// The workflow's name.
    pub workflow: String,
    /// The workflow version.
    pub workflow_version: String,
    /// The step.
    pub step_id: String,
    /// Attempts that counted so far, this one included.
    pub attempts: u32,
    /// This attempt's number among all starts.
    pub number: u32,
    /// The merged input.
    pub input: Object,
    /// The execution's plugins (see [`PluginPins`]).
    pub plugins: PluginPins,
}

/// How an attempt's task run ends up, decided by the executor.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptResult {
    /// Succeeded with this output.
    Succeeded(Object),
    /// Failed; will be retried from `not_before_ms` on.
    Retry {
        /// The error.
        error: String,
        /// Backoff.
        not_before_ms: i64,
    },
    /// Failed for good.
    Failed(String),
    /// Stopped because its execution was cancelled.
    Cancelled,
    /// Stopped by the host (shutdown): back to the queue, not counted.
    Interrupted,
    /// Not run: this host cannot load the plugin. Back to the queue, not
    /// counted, not before `not_before_ms`, so other hosts can take it.
    Deferred {
        /// Why this host could not run it.
        error: String,
        /// Not claimable before this time.
        not_before_ms: i64,
    },
}

/// What one attempt produced, to be recorded.
#[derive(Debug, Clone)]
pub struct AttemptEnd {
    /// The claim it ran under.
    pub claim: Claim,
    /// The runner recording it (must still hold the claim).
    pub runner_id: String,
    /// Outcome kind, or `interrupted`.
    pub outcome: String,
    /// The result for the task run.
    pub result: AttemptResult,
    /// Captured log lines (JSON array).
    pub logs: Value,
    /// Captured stdout.
    pub stdout: String,
    /// Captured stderr.
    pub stderr: String,
}

impl AttemptEnd {
    /// How this end changes its task run, the same in every store.
    pub(crate) fn run_after(&self, now_ms: i64) -> RunAfterEnd<'_> {
        let (status, output, error, not_before_ms, uncounted) = match &self.result {
            AttemptResult::Succeeded(output) => (
                StepState::Succeeded,
                Some(Value::Object(output.clone()).to_string()),
                None,
                0,
                false,
            ),
            AttemptResult::Retry {
                error,
                not_before_ms,
            } => (
                StepState::Ready,
                None,
                Some(error.as_str()),
                *not_before_ms,
                false,
            ),
            AttemptResult::Failed(error) => {
                (StepState::Failed, None, Some(error.as_str()), 0, false)
            }
            AttemptResult::Cancelled => (StepState::Cancelled, None, Some("cancelled"), 0, false),
            AttemptResult::Interrupted => (StepState::Ready, None, None, now_ms, true),
            AttemptResult::Deferred {
                error,
                not_before_ms,
            } => (
                StepState::Ready,
                None,
                Some(error.as_str()),
                *not_before_ms,
                true,
            ),
        };
        RunAfterEnd {
            status,
            output,
            error,
            not_before_ms,
            uncounted,
        }
    }

    /// The attempt's own error, recorded with it (a cancel or an
    /// interruption is not one).
    pub(crate) fn attempt_error(&self) -> Option<&str> {
        match &self.result {
            AttemptResult::Retry { error, .. }
            | AttemptResult::Failed(error)
            | AttemptResult::Deferred { error, .. } => Some(error.as_str()),
            _ => None,
        }
    }
}

/// A task run's row after an attempt end: see [`AttemptEnd::run_after`].
pub(crate) struct RunAfterEnd<'a> {
    pub(crate) status: StepState,
    /// The output (JSON text), once succeeded.
    pub(crate) output: Option<String>,
    /// The task run's error, `None` to keep the one it had.
    pub(crate) error: Option<&'a str>,
    pub(crate) not_before_ms: i64,
    /// The attempt does not count against the retry policy.
    pub(crate) uncounted: bool,
}

/// An execution with all its task runs: what the planner looks at.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The execution.
    pub execution: ExecutionRecord,
    /// Its task runs.
    pub runs: Vec<TaskRunRecord>,
}

impl Snapshot {
    /// Applies `plan` to this in-memory view exactly as the stores apply it
    /// to their rows (each change guarded by the state it expects), so a
    /// store need not read the execution back after re-planning.
    pub(crate) fn apply(&mut self, plan: &Plan, now_ms: i64) {
        for change in &plan.steps {
            let (step_id, from, to): (&str, &[StepState], StepState) = match change {
                StepChange::Pending { .. } => continue,
                StepChange::Ready { step_id, .. } => {
                    (step_id, &[StepState::Pending], StepState::Ready)
                }
                StepChange::Skipped { step_id } => {
                    (step_id, &[StepState::Pending], StepState::Skipped)
                }
                StepChange::Cancelled { step_id } => (
                    step_id,
                    &[StepState::Pending, StepState::Ready],
                    StepState::Cancelled,
                ),
            };
            let Some(run) = self
                .runs
                .iter_mut()
                .find(|r| r.step_id == step_id && from.contains(&r.status))
            else {
                continue;
            };
            run.status = to;
            match change {
                StepChange::Ready {
                    input,
                    not_before_ms,
                    ..
                } => {
                    run.input = Some(input.clone());
                    run.not_before_ms = *not_before_ms;
                }
                StepChange::Skipped { .. } => {
                    run.input = None;
                    run.not_before_ms = 0;
                }
                _ => run.not_before_ms = 0,
            }
        }
        if let Some((status, error)) = &plan.finish
            && self.execution.status == ExecutionStatus::Running
        {
            self.execution.status = *status;
            self.execution.error = error.clone();
            self.execution.finished_at_ms = Some(now_ms);
        }
    }
}

/// What the planner decided after a change: step changes and, if the
/// execution is over, its final state.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Step state changes.
    pub steps: Vec<StepChange>,
    /// The execution's final state and error, if it ended.
    pub finish: Option<(ExecutionStatus, Option<String>)>,
}

/// Filter of [`Reads::list_executions`](super::Reads::list_executions).
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    /// Only this workflow.
    pub workflow: Option<String>,
    /// Only in this state.
    pub status: Option<ExecutionStatus>,
    /// Only started by this schedule.
    pub schedule: Option<String>,
    /// At most this many, newest first (default 100).
    pub limit: Option<u32>,
    /// Only executions older than this cursor: the page after the one it
    /// was taken from (see [`ExecutionCursor`](super::ExecutionCursor)).
    pub before: Option<super::ExecutionCursor>,
}

/// A stored workflow version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowRecord {
    /// Name.
    pub name: String,
    /// Version (content hash).
    pub version: String,
    /// The definition as JSON.
    pub definition: Value,
    /// When it was applied (ms since the Unix epoch).
    pub applied_at_ms: i64,
    /// Who owns the name: may update it.
    pub owner: WorkflowOwner,
}

/// Who owns a workflow name. The operator (a workflow applied by hand or
/// through the library) may apply any name, taking it over; a plugin may
/// only create names that are free and update the ones it owns, so a
/// plugin can never replace an operator's workflow or another plugin's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "plugin", rename_all = "snake_case")]
pub enum WorkflowOwner {
    /// Applied by the operator.
    Operator,
    /// Shipped by the plugin of this name.
    Plugin(String),
}

impl WorkflowOwner {
    /// As stored: `operator` or `plugin:NAME`.
    pub fn as_stored(&self) -> String {
        match self {
            WorkflowOwner::Operator => "operator".to_owned(),
            WorkflowOwner::Plugin(name) => format!("plugin:{name}"),
        }
    }

    /// From its stored form; anything unknown is the operator's (the
    /// stricter reading: no plugin may update it).
    pub fn from_stored(text: &str) -> Self {
        match text.strip_prefix("plugin:") {
            Some(name) => WorkflowOwner::Plugin(name.to_owned()),
            None => WorkflowOwner::Operator,
        }
    }

    /// Whether `self` may apply a version of a name owned by `current`.
    pub fn may_update(&self, current: &WorkflowOwner) -> bool {
        matches!(self, WorkflowOwner::Operator) || self == current
    }

    /// What applying `workflow` as `self` does, given the latest stored
    /// version of its name and that version's stored owner: `Ok(None)` when
    /// nothing needs writing (same version, same owner), `Ok(Some(applied))`
    /// when the version is to be written, an error when `self` may not.
    pub(crate) fn applying(
        &self,
        workflow: &NewWorkflow<'_>,
        latest: Option<(String, String)>,
    ) -> Result<Option<Applied>, super::StoreError> {
        let Some((version, owner)) = latest else {
            return Ok(Some(Applied::Created));
        };
        let current = WorkflowOwner::from_stored(&owner);
        if !self.may_update(&current) {
            return Err(super::StoreError::WorkflowOwned {
                name: workflow.name.to_owned(),
                owner: current,
                by: self.clone(),
            });
        }
        Ok(match (version == workflow.version, current == *self) {
            (true, true) => None,
            // The operator taking a plugin's workflow over, unchanged.
            (true, false) => Some(Applied::Unchanged),
            (false, _) => Some(Applied::Updated { previous: version }),
        })
    }
}

impl std::fmt::Display for WorkflowOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkflowOwner::Operator => write!(f, "the operator"),
            WorkflowOwner::Plugin(name) => write!(f, "plugin `{name}`"),
        }
    }
}

/// A workflow version to store: see [`Plugins::register_plugin`](super::Plugins::register_plugin).
#[derive(Debug, Clone, Copy)]
pub struct NewWorkflow<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its version (content hash).
    pub version: &'a str,
    /// Its stored definition.
    pub definition: &'a Value,
}

/// What [`Workflows::apply_workflow`](super::Workflows::apply_workflow) did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Applied {
    /// First version of this name.
    Created,
    /// A new version; the previous one stays for running executions.
    Updated {
        /// The version it replaces as the latest.
        previous: String,
    },
    /// Same content as the latest version: nothing changed.
    Unchanged,
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleRecord {
    /// Its name.
    pub name: String,
    /// The workflow it starts.
    pub workflow: String,
    /// The validated schedule, as JSON.
    pub definition: Value,
    /// Whether it is paused.
    pub paused: bool,
    /// Fire times after this instant (ms since the Unix epoch) are due: its
    /// creation, then its last fire.
    pub anchor_ms: i64,
    /// When it was created (ms since the Unix epoch).
    pub created_at_ms: i64,
}

/// One fire of a schedule, recorded with [`Schedules::fire_schedule`](super::Schedules::fire_schedule).
#[derive(Debug, Clone)]
pub struct ScheduleFire {
    /// The schedule.
    pub schedule: String,
    /// The fire time (ms since the Unix epoch): with the schedule, the
    /// fire's unique key.
    pub fire_time_ms: i64,
    /// The execution to start, or `None` to record the fire as skipped.
    pub execution: Option<NewExecution>,
}
