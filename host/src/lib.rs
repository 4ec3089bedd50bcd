//! Corral runs workflow tasks as sandboxed WebAssembly components.
//!
//! - [`sandbox`]: one attempt of one task in an isolated, limited, haltable
//!   wasmtime store.
//! - [`workflow`]: the workflow model (DAG, TOML format, validation,
//!   trigger rules, retries).
//! - [`store`]: durable state on SQLite.
//! - [`Runner`]: the engine that ties them together; embed it, or use the
//!   `corral` binary.
#![warn(missing_docs)]

mod error;
mod runner;
mod runtime;
pub mod sandbox;
pub mod store;
pub mod workflow;

#[doc(hidden)]
pub mod cli;

pub use error::RunnerError;
pub use runner::{
    ExecutionHandle, ExecutionReport, Runner, RunnerBuilder, ShutdownReport, StepReport,
};
pub use runtime::progress::ExecutionProgress;
pub use workflow::Workflow;
