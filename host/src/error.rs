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
    /// A workflow a plugin ships is invalid; nothing of the plugin was stored.
    #[error(
        "plugin {plugin} ships an invalid workflow `{workflow}`: {reason}; nothing was registered"
    )]
    ShippedWorkflow {
        /// `name@version` of the plugin.
        plugin: String,
        /// The workflow's name.
        workflow: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No plugin of that name is registered.
    #[error("no plugin `{0}` is registered (see `corral plugin list`)")]
    UnknownPlugin(String),
    /// The plugin registration an execution was pinned to when it was
    /// created is no longer registered (or no longer has those bytes).
    #[error(
        "plugin {plugin} (sha256 {sha256}), which this execution was started with, is no longer registered"
    )]
    PinnedPluginGone {
        /// `name@version`.
        plugin: String,
        /// The digest the execution runs.
        sha256: String,
    },
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

impl RunnerError {
    /// Whether the same call may succeed when tried again: a transient
    /// database error (see [`StoreError::is_transient`]).
    pub fn is_transient(&self) -> bool {
        matches!(self, RunnerError::Store(error) if error.is_transient())
    }
}
