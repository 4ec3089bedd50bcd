//! The errors of the runner API.

use crate::sandbox::{PluginError, RunError, SandboxError};
use crate::store::StoreError;
use crate::workflow::WorkflowError;

/// Why a [`Runner`](crate::Runner) call failed.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sandbox could not be built.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// A plugin could not be loaded.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// An attempt could not start.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A workflow is invalid.
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    /// No plugin of that name is registered.
    #[error("no plugin `{0}` is registered (see `corral plugin list`)")]
    UnknownPlugin(String),
    /// No workflow of that name (or version) is stored.
    #[error("no workflow `{0}` (see `corral workflow list`)")]
    UnknownWorkflow(String),
    /// A workflow version names a step it does not have.
    #[error("the workflow has no step `{0}`")]
    UnknownStep(String),
    /// No schedule has that name.
    #[error("no schedule `{0}` (see `corral schedule list`)")]
    UnknownSchedule(String),
    /// A schedule is invalid.
    #[error(transparent)]
    Schedule(#[from] crate::schedule::ScheduleError),
    /// No execution has that id.
    #[error("no execution `{0}` (see `corral executions`)")]
    UnknownExecution(String),
    /// An input is not acceptable.
    #[error("{0}")]
    InvalidInput(String),
    /// The runner was shut down.
    #[error("the runner is shut down")]
    ShutDown,
}
