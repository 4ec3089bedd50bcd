//! Procedural macros of [`corral-guest`](https://docs.rs/corral-guest):
//! `#[task]` and `plugin!`.
//!
//! Depend on `corral-guest` and use them from there (`corral_guest::task`,
//! `corral_guest::plugin!`); their expansions refer to `::corral_guest`.
#![warn(missing_docs)]

use proc_macro::TokenStream;

mod duration;
mod names;
mod plugin;
mod task;

/// Marks `fn name(ctx: &mut Context) -> Result<(), TaskError>` as a task.
///
/// Options: `name = "..."`, `description = "..."` (defaults to the first
/// paragraph of the doc comment), `timeout = "30s"` (`ms`, `s`, `m`, `h`,
/// combinable as `1m30s`) and `max_attempts = 3`. The function is kept as
/// is; a hidden descriptor `__corral_task_<fn>` is emitted next to it for
/// `plugin!` to pick up.
///
/// ```text
/// #[task(description = "Greets someone", timeout = "30s", max_attempts = 3)]
/// fn greet(ctx: &mut Context) -> Result<(), TaskError> { ... }
/// ```
#[proc_macro_attribute]
pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    task::expand(args.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Exports the plugin: `plugin!(name = "...", version = "...", tasks = [...])`,
/// optionally with `workflows = [("name", include_str!("wf.toml")), ...]`.
///
/// Each entry of `tasks` is the path of a `#[task]` function. The expansion
/// implements the component's `plugin` interface (`describe`, `run`) and
/// exports it.
///
/// ```text
/// plugin!(name = "hello", version = "0.1.0", tasks = [greet]);
/// ```
#[proc_macro]
pub fn plugin(input: TokenStream) -> TokenStream {
    plugin::expand(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
