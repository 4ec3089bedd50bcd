//! Why the runtime could not do something: its own vocabulary, which the
//! runner maps one to one onto [`RunnerError`](crate::RunnerError) at the
//! API's edge (see `From<RuntimeError> for RunnerError`).
//!
//! The texts matter beyond logs: an attempt that cannot start records
//! `to_string()` of its error as the step's error. Where a variant means
//! what one of the runner's does, it says it in the runner's words (one
//! text for both).

use crate::RunnerError as E;
use crate::sandbox::{PluginError, RunError};
use crate::store::StoreError;
use crate::workflow::WorkflowError;

/// Why a runtime operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RuntimeError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A plugin could not be loaded.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// An attempt could not start.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A stored workflow could not be read.
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    /// No plugin of that name (or version) is registered.
    #[error("{}", E::UnknownPlugin(.0.clone()))]
    UnknownPlugin(String),
    /// The registration an execution was pinned to is gone.
    #[error("{}", E::PinnedPluginGone { plugin: plugin.clone(), sha256: sha256.clone() })]
    PinnedPluginGone {
        /// `name@version`.
        plugin: String,
        /// The digest the execution runs.
        sha256: String,
    },
    /// No workflow of that name (or version) is stored.
    #[error("{}", E::UnknownWorkflow(.0.clone()))]
    UnknownWorkflow(String),
    /// A workflow version names a step it does not have.
    #[error("{}", E::UnknownStep(.0.clone()))]
    UnknownStep(String),
    /// No execution has that id.
    #[error("{}", E::UnknownExecution(.0.clone()))]
    UnknownExecution(String),
    /// A stored schedule cannot be decoded.
    #[error("stored schedule `{name}` is invalid: {reason}")]
    InvalidSchedule {
        /// The schedule's name.
        name: String,
        /// Why it cannot be decoded.
        reason: String,
    },
    /// The runtime was shut down (its batches' committer is gone).
    #[error("{}", E::ShutDown)]
    ShutDown,
}

impl RuntimeError {
    /// Whether trying again may succeed: a transient database error.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(self, RuntimeError::Store(error) if error.is_transient())
    }
}

impl From<RuntimeError> for crate::RunnerError {
    fn from(error: RuntimeError) -> Self {
        match error {
            RuntimeError::Store(e) => E::Store(e),
            RuntimeError::Plugin(e) => E::Plugin(e),
            RuntimeError::Run(e) => E::Run(e),
            RuntimeError::Workflow(e) => E::Workflow(e),
            RuntimeError::UnknownPlugin(r) => E::UnknownPlugin(r),
            RuntimeError::PinnedPluginGone { plugin, sha256 } => {
                E::PinnedPluginGone { plugin, sha256 }
            }
            RuntimeError::UnknownWorkflow(r) => E::UnknownWorkflow(r),
            RuntimeError::UnknownStep(s) => E::UnknownStep(s),
            RuntimeError::UnknownExecution(id) => E::UnknownExecution(id),
            error @ RuntimeError::InvalidSchedule { .. } => E::InvalidInput(error.to_string()),
            RuntimeError::ShutDown => E::ShutDown,
        }
    }
}
