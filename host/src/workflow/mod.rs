//! The workflow model: a named, versioned DAG of steps, its file format,
//! validation, trigger rules, retry policy, input merging and the pure
//! scheduling step. Nothing here does I/O except reading a workflow file.
//!
//! # Three ways to define a workflow, one validated value
//!
//! - [`Workflow::from_toml`] / [`Workflow::from_toml_file`]: an operator's
//!   TOML file (format below);
//! - [`Workflow::builder`]: Rust code;
//! - [`Workflow::from_plugin_toml`]: a workflow a plugin ships in its
//!   `describe`, same format minus capabilities.
//!
//! All three end in the same validation (and so does deserializing a stored
//! workflow), which checks everything that does not need the database: ids,
//! task reference syntax, dependencies, cycles, durations, sizes, retry
//! policies, conditions and grants. Whether the tasks exist is checked
//! separately by [`Workflow::validate_tasks`] against a [`TaskCatalog`] of
//! the registered plugins.
//!
//! # The TOML format
//!
//! ```toml
//! name = "etl"                     # required: lowercase letters, digits, - and _, starting with a letter
//! description = "Sales report"     # optional
//!
//! [defaults]                       # optional: for every step that does not set its own
//! timeout = "1m"
//! retry = { max_attempts = 2 }
//! memory = "64MiB"
//! grants = { env = { TZ = "UTC" } }   # steps add to these grants
//!
//! [[steps]]
//! id = "extract"                   # required, unique; same rule as `name`
//! task = "etl/extract"             # required: plugin/task
//! timeout = "30s"
//! grants.dirs = [{ host = "data", guest = "/data" }]
//!
//! [[steps]]
//! id = "transform"
//! task = "etl/transform"
//! depends_on = ["extract"]
//! retry = { max_attempts = 3, backoff = "exponential", initial = "100ms", max = "5s", jitter = 0.1 }
//!
//! [[steps]]
//! id = "load"
//! task = "etl/load"
//! depends_on = ["transform"]
//! trigger = "all_succeeded"
//! condition = { key = "grand_total", exists = true }
//! memory = "128MiB"
//! input = { report_file = "report.json" }
//! grants = { dirs = [{ host = "out", guest = "/out", writable = true }], env = { TZ = "UTC" } }
//! ```
//!
//! Unknown keys are errors, reported with their line and column.
//!
//! | step key | type | default | meaning |
//! |---|---|---|---|
//! | `id` | string | required | the step's name within the workflow |
//! | `task` | `"plugin/task"` | required | the task it runs |
//! | `depends_on` | array of step ids | `[]` | steps that must end first |
//! | `trigger` | `all_succeeded`, `all_done`, `any_failed`, `any_succeeded` | `all_succeeded` | when it runs, see [`trigger`] |
//! | `condition` | `{ key, exists = bool }`, `{ key, equals = value }` or `{ key, not_equals = value }` | none | test on the merged input; skipped if false. `key` is a top-level key or a JSON Pointer (`/a/b`) |
//! | `timeout` | duration (`"30s"`, `"1m 30s"`, `"500ms"`) | `[defaults]`, then the task's, then the host's | per attempt |
//! | `retry` | table, below | `[defaults]`, then the task's `max_attempts`, then one attempt | |
//! | `memory` | size (`"128MiB"`, `"1GiB"`, `"100MB"`) or bytes | `[defaults]`, then the host's | at most 4GiB |
//! | `grants.dirs` | array of `{ host, guest, writable = false, max_bytes, max_files }` | `[]` | `host` relative to the file's directory; `guest` absolute; `max_bytes` (size, default `"1GiB"`) and `max_files` (default 10000) are the disk quota per attempt of a writable grant, an error on a read-only one (see [`DirGrant`](crate::sandbox::DirGrant)) |
//! | `grants.env` | table of strings | `{}` | environment variables, nothing is inherited |
//! | `input` | table | `{}` | static input, merged last, see [`context`] |
//!
//! | `retry` key | default | meaning |
//! |---|---|---|
//! | `max_attempts` | 3 | attempts in total, first included; 1 = no retry |
//! | `backoff` | `"fixed"` if `delay` is given, else `"exponential"` | |
//! | `delay` | `"1s"` | fixed backoff only |
//! | `initial`, `max`, `factor` | `"1s"`, `"1m"`, 2.0 | exponential only: `initial × factor^(retry−1)`, capped at `max` |
//! | `jitter` | 0.0 | fraction 0..=1 by which each delay is randomly shortened |
//!
//! Host paths: relative ones are resolved (lexically) against the directory
//! of the workflow file, or the `base_dir` given to [`Workflow::from_toml`];
//! with no base directory they are an error. Whether a directory exists is
//! checked when a step's attempt starts, not here. Workflows shipped by a
//! plugin may not contain `grants` or `memory` at all: capabilities are the
//! operator's to give.
//!
//! # Version
//!
//! [`Workflow::version`] is a content hash of the normalized definition (16
//! hex digits of a SHA-256), not of the text: comments, whitespace, key
//! order, the order of steps, of `depends_on` and of directory grants, and
//! spelling the same value differently (`"60s"` vs `"1m"`, `trigger =
//! "all_succeeded"` vs leaving it out) do not change it. Resolved host paths
//! are part of the content.
//!
//! # Storage
//!
//! `Workflow` serializes (serde) to the same fields as the TOML document plus
//! `version`, durations as humantime strings and memory as a size string.
//! Deserializing re-runs validation (not the task check) and rejects a row
//! whose recorded version no longer matches its content.

mod builder;
pub mod context;
mod defaults;
mod error;
mod model;
pub mod plan;
pub mod retry;
mod toml;
pub mod trigger;
mod validate;

pub use builder::WorkflowBuilder;
pub use context::step_input;
pub use defaults::{Defaults, StepSettings, TaskDefaults};
pub use error::WorkflowError;
pub(crate) use model::pin_selects;
pub use model::{Step, TaskRef, Workflow};
pub use plan::{Action, Verdict, execution_state, plan};
pub use retry::{Backoff, FailureKind, NextAttempt, RetryPolicy};
pub use toml::STORED_FORMAT;
pub use trigger::{Condition, ConditionOp, Decision, StepState, TriggerRule, evaluate};
pub use validate::TaskCatalog;
