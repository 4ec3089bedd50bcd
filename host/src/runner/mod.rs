//! The runner: the embeddable engine's API. [`RunnerBuilder`] opens it,
//! [`Runner`] registers plugins and workflows, submits, reads and cancels
//! executions, and stops; [`ExecutionHandle`] follows one execution; the
//! reports are what callers (the CLI, an HTTP front end) print or serve.
//!
//! The runner validates and translates; the work happens in the runtime
//! (`crate::runtime`), which it starts and stops and otherwise reaches only
//! through the runtime's narrow interface.

mod builder;
mod handle;
mod registry;
mod report;
mod schedules;

use std::sync::Arc;
use std::time::Duration;

pub use builder::RunnerBuilder;
pub use handle::ExecutionHandle;
pub use report::{ExecutionPage, ExecutionReport, ShutdownReport, StepReport};

use crate::error::RunnerError;
pub use crate::runtime::DeferPolicy;
use crate::runtime::Runtime;
use crate::schedule::Clock;
use crate::store::{
    AttemptRecord, ExecutionCursor, ExecutionFilter, ExecutionId, ExecutionRecord, Snapshot, Store,
};

/// Most executions one call of [`Runner::executions`] returns (a larger
/// `limit` is cut to it).
pub const MAX_EXECUTIONS_PAGE: u32 = 1000;

/// Runs workflows: submits executions, executes task runs in the sandbox,
/// records everything in the database.
///
/// **Stop it with [`shutdown`](Runner::shutdown)**: that lets in-flight
/// attempts finish within a grace period, records the rest as interrupted
/// and closes the database. Dropping a runner without it still leaves
/// nothing behind — every guest is halted at once, every background task is
/// aborted and the pool is closed — but the attempts it halts keep their
/// claims until their lease expires, and only then run elsewhere.
///
/// ```no_run
/// # async fn demo() -> Result<(), corral::RunnerError> {
/// use std::time::Duration;
/// use corral::{Runner, Workflow};
///
/// let runner = Runner::builder().database_url("sqlite://corral.db").build().await?;
/// runner.register_plugin_file("plugins/target/wasm32-wasip2/release/hello.wasm").await?;
/// runner.apply_workflow(&Workflow::from_toml(r#"
///     name = "greet"
///     [[steps]]
///     id = "greet"
///     task = "hello/greet"
/// "#, None)?).await?;
/// let execution = runner.execute("greet", serde_json::json!({"name": "Ada"})).await?;
/// let report = execution.wait().await?;
/// assert_eq!(report.output["greeting"], "hello, Ada");
/// runner.shutdown(Duration::from_secs(10)).await;
/// # Ok(()) }
/// ```
#[must_use = "a Runner works in the background until `shutdown` is called; dropping it halts every guest at once"]
pub struct Runner {
    clock: Arc<dyn Clock>,
    /// Dropping it halts every guest at once and closes the pool.
    runtime: Runtime,
}

impl Runner {
    /// A builder with the defaults.
    pub fn builder() -> RunnerBuilder {
        RunnerBuilder::default()
    }

    /// This runner's id, as recorded in claims and attempts.
    pub fn id(&self) -> &str {
        self.runtime.id()
    }

    /// How many attempts are running in this runner's sandbox right now.
    pub fn attempts_in_flight(&self) -> usize {
        self.runtime.sandbox().in_flight()
    }

    /// The store this runner uses: for embedders and tests that need a
    /// query the runner does not offer. Writes through it bypass the
    /// runner's checks.
    pub fn store(&self) -> &Arc<dyn Store> {
        self.runtime.store()
    }

    fn check_running(&self) -> Result<(), RunnerError> {
        if self.runtime.is_stopped() {
            Err(RunnerError::ShutDown)
        } else {
            Ok(())
        }
    }

    /// Starts an execution of the latest version of workflow `name`.
    /// `input` must be a JSON object.
    pub async fn execute(
        &self,
        name: &str,
        input: serde_json::Value,
    ) -> Result<ExecutionHandle, RunnerError> {
        self.check_running()?;
        let serde_json::Value::Object(input) = input else {
            return Err(RunnerError::InvalidInput(
                "the execution input must be a JSON object".into(),
            ));
        };
        let submitted = self.runtime.submit(name, input).await?;
        Ok(ExecutionHandle::new(
            submitted.id,
            submitted.progress,
            self.runtime.link(),
        ))
    }

    /// A handle on an existing execution.
    pub async fn handle(&self, id: impl Into<ExecutionId>) -> Result<ExecutionHandle, RunnerError> {
        let id = id.into();
        let snapshot = self.snapshot(&id).await?;
        Ok(ExecutionHandle::new(
            id,
            self.runtime.watch(&snapshot),
            self.runtime.link(),
        ))
    }

    async fn snapshot(&self, id: &str) -> Result<Snapshot, RunnerError> {
        self.runtime
            .store()
            .execution(id)
            .await?
            .ok_or_else(|| RunnerError::UnknownExecution(id.to_owned()))
    }

    async fn report(&self, snapshot: Snapshot) -> ExecutionReport {
        ExecutionReport::of(snapshot, &self.runtime.link()).await
    }

    /// The execution `id` and its steps.
    pub async fn status(&self, id: &str) -> Result<ExecutionReport, RunnerError> {
        let snapshot = self.snapshot(id).await?;
        Ok(self.report(snapshot).await)
    }

    /// A page of executions, newest first, that match `filter`: at most
    /// `filter.limit` (default 100; cut to [`MAX_EXECUTIONS_PAGE`], and 0
    /// counts as 1, so that paging always moves on), older than
    /// `filter.before` if given. The page's
    /// [`next`](ExecutionPage::next) is the `before` of the page after it.
    ///
    /// ```no_run
    /// # async fn demo(runner: &corral::Runner) -> Result<(), corral::RunnerError> {
    /// use corral::store::ExecutionFilter;
    ///
    /// let mut filter = ExecutionFilter { limit: Some(50), ..Default::default() };
    /// loop {
    ///     let page = runner.executions(&filter).await?;
    ///     for execution in &page.executions {
    ///         println!("{} {}", execution.id, execution.status);
    ///     }
    ///     match page.next {
    ///         Some(next) => filter.before = Some(next),
    ///         None => break,
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn executions(&self, filter: &ExecutionFilter) -> Result<ExecutionPage, RunnerError> {
        let limit = filter.limit.unwrap_or(100).clamp(1, MAX_EXECUTIONS_PAGE);
        // One more than asked tells whether a next page exists.
        let query = ExecutionFilter {
            limit: Some(limit + 1),
            ..filter.clone()
        };
        let mut executions = self.runtime.store().list_executions(&query).await?;
        let more = executions.len() > limit as usize;
        executions.truncate(limit as usize);
        let next = more
            .then(|| executions.last().map(ExecutionCursor::after))
            .flatten();
        Ok(ExecutionPage { executions, next })
    }

    /// Executions, newest first, that match `filter` (its `limit` is not
    /// capped): [`executions`](Self::executions) without paging.
    pub async fn list_executions(
        &self,
        filter: &ExecutionFilter,
    ) -> Result<Vec<ExecutionRecord>, RunnerError> {
        Ok(self.runtime.store().list_executions(filter).await?)
    }

    /// Attempts of an execution (of one step if given), with captured output.
    pub async fn attempts(
        &self,
        id: &str,
        step: Option<&str>,
    ) -> Result<Vec<AttemptRecord>, RunnerError> {
        let snapshot = self.snapshot(id).await?;
        if let Some(step) = step.filter(|s| !snapshot.runs.iter().any(|r| r.step_id == *s)) {
            return Err(RunnerError::UnknownStep(step.to_owned()));
        }
        Ok(self.runtime.store().attempts(id, step).await?)
    }

    /// Cancels an execution: steps not started are cancelled at once, and
    /// running attempts are halted — here at once, on other runners within
    /// their next lease renewal.
    pub async fn cancel(&self, id: &str) -> Result<ExecutionReport, RunnerError> {
        self.check_running()?;
        let snapshot = self.runtime.cancel(id).await?;
        Ok(self.report(snapshot).await)
    }

    /// Stops the runner gracefully: stops claiming, lets in-flight attempts
    /// finish within `grace`, halts the rest (recorded as interrupted: they
    /// go back to the queue without using up a retry), joins every
    /// background task and closes the database pool. Calling it again does
    /// nothing.
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        let report = match self.runtime.shutdown(grace).await {
            Some(drained) => ShutdownReport {
                finished: drained.finished,
                halted: drained.halted,
                already_shut_down: false,
            },
            None => ShutdownReport {
                already_shut_down: true,
                ..ShutdownReport::default()
            },
        };
        if !report.already_shut_down {
            tracing::info!(runner = %self.id(), ?report, "runner shut down");
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_stops_the_epoch_clock() {
        let runner = Runner::builder()
            .database_url("sqlite::memory:")
            .build()
            .await
            .unwrap();
        assert!(runner.runtime.sandbox().clock_running());
        runner.shutdown(Duration::ZERO).await;
        assert!(
            !runner.runtime.sandbox().clock_running(),
            "the clock ticks on until the Runner is dropped"
        );
    }
}
