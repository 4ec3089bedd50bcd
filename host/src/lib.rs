//! Corral runs workflow tasks as sandboxed WebAssembly components.
//!
//! - [`sandbox`]: one attempt of one task in an isolated, limited, haltable
//!   wasmtime store.
//! - [`workflow`]: the workflow model (DAG, TOML format, validation,
//!   trigger rules, retries).
//! - [`store`]: durable state on SQLite or PostgreSQL.
//! - [`Runner`]: the engine that ties them together; embed it, or use the
//!   `corral` binary.
//!
//! # Example
//!
//! Register a plugin, define a one-step workflow in Rust, run it, stop:
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let database_url = format!("sqlite://{}", dir.path().join("corral.db").display());
//! # let hello_wasm = corral_test_artifacts::HELLO;
//! use std::time::Duration;
//! use corral::{Runner, Workflow, workflow::Step};
//!
//! let runner = Runner::builder().database_url(database_url).build().await?;
//! runner.register_plugin_file(hello_wasm).await?;
//! let workflow = Workflow::builder("greeting").step(Step::new("greet", "hello/greet")).build()?;
//! runner.apply_workflow(&workflow).await?;
//!
//! let execution = runner.execute("greeting", serde_json::json!({ "name": "Ada" })).await?;
//! let report = execution.wait().await?;
//! assert_eq!(report.output["greeting"], "hello, Ada");
//!
//! // Always stop a runner with `shutdown`: in-flight attempts get a grace
//! // period, the rest are recorded as interrupted, the pool is closed.
//! runner.shutdown(Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod error;
mod runner;
mod runtime;
pub mod sandbox;
pub mod schedule;
pub mod store;
pub mod workflow;

#[doc(hidden)]
pub mod cli;
#[doc(hidden)]
pub mod testing;

pub use error::RunnerError;
pub use runner::{
    DeferPolicy, ExecutionHandle, ExecutionPage, ExecutionReport, MAX_EXECUTIONS_PAGE, Runner,
    RunnerBuilder, ShutdownReport, StepReport,
};
pub use runtime::progress::ExecutionProgress;
pub use workflow::Workflow;
