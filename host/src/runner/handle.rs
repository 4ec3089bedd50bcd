//! [`ExecutionHandle`]: one submitted execution, followed to its end.

use tokio::sync::watch;

use super::ExecutionReport;
use crate::error::RunnerError;
use crate::runtime::RuntimeLink;
use crate::runtime::progress::ExecutionProgress;
use crate::store::ExecutionId;

/// A submitted execution: its id, its live progress, its result.
#[derive(Clone)]
pub struct ExecutionHandle {
    id: ExecutionId,
    progress: watch::Receiver<ExecutionProgress>,
    runtime: RuntimeLink,
}

impl std::fmt::Debug for ExecutionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutionHandle")
            .field("id", &self.id)
            .finish()
    }
}

impl ExecutionHandle {
    pub(super) fn new(
        id: ExecutionId,
        progress: watch::Receiver<ExecutionProgress>,
        runtime: RuntimeLink,
    ) -> Self {
        Self {
            id,
            progress,
            runtime,
        }
    }

    /// The execution's id.
    pub fn id(&self) -> &ExecutionId {
        &self.id
    }

    /// A watch of the execution's state and its steps' states, updated as
    /// this runner records changes.
    pub fn progress(&self) -> watch::Receiver<ExecutionProgress> {
        self.progress.clone()
    }

    /// Waits until the execution ends and returns its report. Works for
    /// executions run by other processes too (it polls the database).
    pub async fn wait(&self) -> Result<ExecutionReport, RunnerError> {
        let mut progress = self.progress.clone();
        loop {
            let snapshot = self
                .runtime
                .store()
                .execution(&self.id)
                .await?
                .ok_or_else(|| RunnerError::UnknownExecution(self.id.to_string()))?;
            if snapshot.execution.status.is_final() {
                return Ok(ExecutionReport::of(snapshot, &self.runtime).await);
            }
            tokio::select! {
                _ = progress.changed() => {}
                () = tokio::time::sleep(self.runtime.poll_interval()) => {}
            }
        }
    }

    /// Cancels the execution (see [`Runner::cancel`](crate::Runner::cancel)).
    pub async fn cancel(&self) -> Result<(), RunnerError> {
        self.runtime.cancel(&self.id).await?;
        Ok(())
    }
}
