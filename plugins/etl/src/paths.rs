//! File names that a task's input may name: relative, and inside the grant.

use std::path::{Component, Path};

use corral_guest::TaskError;

/// `dir/name`, provided `name` is a relative path that stays under `dir`
/// (no root, no `..`); anything else is a permanent error.
pub fn join_granted(dir: &str, name: &str) -> Result<String, TaskError> {
    let path = Path::new(name);
    let plain = !name.is_empty()
        && path
            .components()
            .all(|part| matches!(part, Component::Normal(_) | Component::CurDir));
    if !plain {
        return Err(TaskError::permanent(format!(
            "file name `{name}` must be a relative path inside {dir} (no leading `/`, no `..`)"
        )));
    }
    Ok(format!("{dir}/{}", name.trim_start_matches("./")))
}
