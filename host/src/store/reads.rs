//! Reading executions and their attempts: what status pages, the CLI and
//! an HTTP front end show.

use super::{AttemptRecord, ExecutionFilter, ExecutionRecord, Snapshot, StoreError};

/// Executions and their attempts, read outside any engine transaction.
#[async_trait::async_trait]
pub trait Reads: Send + Sync {
    /// An execution with its task runs.
    async fn execution(&self, id: &str) -> Result<Option<Snapshot>, StoreError>;

    /// Executions, newest first.
    async fn list_executions(
        &self,
        filter: &ExecutionFilter,
    ) -> Result<Vec<ExecutionRecord>, StoreError>;

    /// The attempts of an execution (of one step if given), in order.
    async fn attempts(
        &self,
        execution_id: &str,
        step_id: Option<&str>,
    ) -> Result<Vec<AttemptRecord>, StoreError>;
}
