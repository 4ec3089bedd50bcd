//! Write Corral workflow tasks in plain Rust and export them as a
//! WebAssembly component.
//!
//! A plugin is a `cdylib` crate built for `wasm32-wasip2`. Each task is a
//! function marked [`#[task]`](macro@task) that reads its input and sets its
//! output through a [`Context`]; [`plugin!`] exports the tasks. A whole plugin
//! with one task:
//!
//! ```
//! use corral_guest::{task, plugin, Context, TaskError};
//! #[task(description = "Greets someone")]
//! fn greet(ctx: &mut Context) -> Result<(), TaskError> {
//!     let name: String = ctx.get("name")?;          // typed, with a clear error if missing or mistyped
//!     ctx.set("greeting", format!("hello, {name}"))?;
//!     Ok(())
//! }
//! plugin!(name = "hello", version = "0.1.0", tasks = [greet]);
//! # fn main() {
//! #     // Task functions are plain Rust: they can be unit-tested natively.
//! #     let mut ctx = Context::from_json(r#"{"name": "Ada"}"#).unwrap();
//! #     greet(&mut ctx).unwrap();
//! #     assert_eq!(ctx.output()["greeting"], "hello, Ada");
//! #     let mut ctx = Context::from_json("{}").unwrap();
//! #     assert_eq!(greet(&mut ctx).unwrap_err().message(), "missing input `name`");
//! # }
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2`; the
//! `.wasm` file in `target/wasm32-wasip2/release/` is the component to
//! register with `corral plugin add`.
//!
//! # What a task can do
//!
//! - Read typed input and set output: [`Context::get`], [`Context::set`]. The
//!   output holds only what the task set.
//! - Fail: return a [`TaskError`], [permanent](TaskError::permanent) or
//!   [retryable](TaskError::retryable); `?` converts common errors.
//! - Talk to the host: [`log`] lines, [`progress`] reports, and [`cancelled`]
//!   to stop early when asked.
//! - Use the standard library: files under the directories the operator
//!   granted (e.g. `/data`), environment variables the operator set, clocks,
//!   randomness. Nothing else is reachable.
//!
//! A panic fails the attempt (permanently) with the panic message and its
//! location; the host records it.
#![warn(missing_docs)]

// Lets the generated bindings and macro expansions name this crate
// `::corral_guest` from inside it as well as from plugin crates.
extern crate self as corral_guest;

// Public only so that macro expansions can reach it through `__private`.
#[doc(hidden)]
pub mod bindings;
mod context;
mod error;
mod export;
mod host;
pub mod log;

pub use context::Context;
pub use error::TaskError;
pub use host::{cancelled, progress};

/// The JSON library behind [`Context`], re-exported to build and inspect
/// values (`serde_json::json!`, [`serde_json::Value`]).
pub use serde_json;

/// Marks a function as a task of the plugin.
///
/// The function must have the signature
/// `fn(&mut Context) -> Result<(), TaskError>`; it stays an ordinary function
/// (callable, testable). Options, all optional:
///
/// | option | meaning | default |
/// |---|---|---|
/// | `name = "..."` | the task's name, as workflows refer to it | the function's name |
/// | `description = "..."` | one line saying what the task does | first paragraph of the doc comment |
/// | `timeout = "30s"` | default timeout of one attempt: `500ms`, `30s`, `5m`, `1h`, `1m30s` | the operator's default |
/// | `max_attempts = 3` | suggested maximum number of attempts (1 = no retry) | the operator's default |
///
/// ```
/// use corral_guest::{task, Context, TaskError};
///
/// /// Fetches the day's exchange rates.
/// #[task(name = "fetch-rates", timeout = "1m30s", max_attempts = 5)]
/// pub fn fetch(ctx: &mut Context) -> Result<(), TaskError> {
///     let currency: String = ctx.get_or("currency", "EUR".to_owned())?;
///     ctx.set("currency", currency)
/// }
/// # fn main() {}
/// ```
///
/// Misuse is a compile error pointing at the culprit:
///
/// ```compile_fail
/// # use corral_guest::{task, Context, TaskError};
/// #[task(timeout = "soon")] // error: invalid duration
/// fn slow(ctx: &mut Context) -> Result<(), TaskError> { Ok(()) }
/// # fn main() {}
/// ```
///
/// ```compile_fail
/// # use corral_guest::{task, Context, TaskError};
/// #[task]
/// fn wrong(input: String) -> Result<(), TaskError> { Ok(()) } // error: takes `&mut Context`
/// # fn main() {}
/// ```
pub use corral_guest_macros::task;

/// Exports the plugin: its name, version, tasks and shipped workflows.
///
/// Use it exactly once, at the root of the plugin crate:
///
/// ```
/// # use corral_guest::{task, plugin, Context, TaskError};
/// # #[task] fn extract(_: &mut Context) -> Result<(), TaskError> { Ok(()) }
/// # mod steps { use corral_guest::{task, Context, TaskError};
/// #     #[task] pub fn load(_: &mut Context) -> Result<(), TaskError> { Ok(()) } }
/// plugin!(
///     name = "etl",                 // lowercase letters, digits, `-`, `_`
///     version = "0.1.0",            // semver
///     tasks = [extract, steps::load],
///     workflows = [("nightly", "# TOML workflow definition")], // optional
/// );
/// # fn main() {}
/// ```
///
/// In practice `workflows` entries read their TOML with
/// `include_str!("nightly.toml")`. Two tasks with the same name are a compile
/// error. Every entry of `tasks` must be marked `#[task]`; a function that is
/// not fails with ``cannot find value `__corral_task_<name>` ``.
pub use corral_guest_macros::plugin;

/// Not public API: what the macros expand to.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings;
    pub use crate::bindings::corral::task::types::{PluginInfo, TaskError as WitTaskError};
    pub use crate::bindings::exports::corral::task::plugin::Guest;
    pub use crate::export::{PluginDef, TaskDef, TaskFn, check_unique_task_names, describe, run};
    pub use wit_bindgen;
}
