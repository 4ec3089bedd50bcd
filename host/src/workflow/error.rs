//! Everything that can be wrong with a workflow definition.

use std::path::PathBuf;

/// Why a workflow definition was rejected. Every message names the culprit
/// (the step, the field and the offending value) so that an operator can fix
/// the file without reading Corral's source.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// The workflow file could not be read.
    #[error("cannot read workflow file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not TOML, or does not match the workflow format (unknown
    /// key, wrong type, missing field).
    #[error("invalid workflow TOML at line {line}, column {column}: {message}")]
    Toml {
        /// 1-based line of the offending text.
        line: usize,
        /// 1-based column (in characters) of the offending text.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// A definition was stored or written with a `version`: the version is
    /// computed from the content, never written by hand.
    #[error("`version` cannot be set: it is computed from the workflow's content (remove the key)")]
    VersionGiven,
    /// A stored definition is in a format newer than this host reads: a
    /// newer host stored it. Not a defect of the workflow: hosts that read
    /// it run its steps.
    #[error(
        "stored workflow is in format {found}, newer than this host reads (up to {supported}): a newer Corral stored it; upgrade this host"
    )]
    NewerFormat {
        /// The format of the stored definition.
        found: u64,
        /// The newest format this host reads.
        supported: u64,
    },
    /// A stored workflow's JSON does not have the document's shape.
    #[error("stored workflow is not a valid definition: {0}")]
    Stored(String),
    /// A stored workflow's recorded version does not match its content.
    #[error("stored workflow `{name}` has version {stored} but its content hashes to {computed}")]
    VersionMismatch {
        /// The workflow's name.
        name: String,
        /// The version recorded with it.
        stored: String,
        /// The version its content hashes to.
        computed: String,
    },
    /// The workflow could not be written out (e.g. a JSON `null` in an input,
    /// which TOML cannot express, or a host path that is not UTF-8).
    #[error("cannot serialize workflow `{name}`: {reason}")]
    Serialize {
        /// The workflow's name.
        name: String,
        /// What the serializer reported.
        reason: String,
    },
    /// The workflow's name is not an identifier.
    #[error(
        "invalid workflow name `{0}`: use lowercase letters, digits, `-` and `_`, starting with a letter (at most 64)"
    )]
    InvalidName(String),
    /// The workflow has no steps.
    #[error("workflow `{0}` has no steps")]
    Empty(String),
    /// A step id is not an identifier.
    #[error(
        "invalid step id `{0}`: use lowercase letters, digits, `-` and `_`, starting with a letter (at most 64)"
    )]
    InvalidStepId(String),
    /// Two steps share an id.
    #[error("step id `{0}` is used by more than one step")]
    DuplicateStep(String),
    /// A step's `task` is not `plugin/task`.
    #[error("step `{step}`: invalid task reference `{task}`: {reason}")]
    InvalidTaskRef {
        /// The step.
        step: String,
        /// The reference as written.
        task: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A step depends on itself.
    #[error("step `{0}` depends on itself")]
    SelfDependency(String),
    /// A step lists the same dependency twice.
    #[error("step `{step}` lists dependency `{dependency}` more than once")]
    DuplicateDependency {
        /// The step.
        step: String,
        /// The repeated dependency.
        dependency: String,
    },
    /// A step depends on a step that does not exist.
    #[error("step `{step}` depends on unknown step `{dependency}`{hint}")]
    UnknownDependency {
        /// The step.
        step: String,
        /// The missing dependency.
        dependency: String,
        /// ` (did you mean `x`?)` when a step id is close, else empty.
        hint: String,
    },
    /// The steps' dependencies form a cycle. The cycle is listed in
    /// `depends_on` direction, starting and ending at its smallest step id.
    #[error("dependency cycle: {} (`a -> b` means `a` depends on `b`)", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// An `any_failed`/`any_succeeded` step without upstream steps could never
    /// run.
    #[error("step `{step}`: trigger `{trigger}` needs at least one upstream step (`depends_on`)")]
    TriggerWithoutUpstream {
        /// The step.
        step: String,
        /// The trigger rule as written.
        trigger: String,
    },
    /// A duration that does not parse or is out of range.
    #[error("{scope}: invalid {field} `{value}`: {reason}")]
    InvalidDuration {
        /// `step `x`` or `defaults`.
        scope: String,
        /// Which setting (`timeout`, `retry.initial`, ...).
        field: &'static str,
        /// The value as written.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A memory size that does not parse or is out of range.
    #[error("{scope}: invalid memory `{value}`: {reason}")]
    InvalidMemory {
        /// `step `x`` or `defaults`.
        scope: String,
        /// The value as written.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A retry policy that cannot be honoured.
    #[error("{scope}: invalid retry policy: {reason}")]
    InvalidRetry {
        /// `step `x`` or `defaults`.
        scope: String,
        /// What is wrong (zero attempts, jitter out of range, ...).
        reason: String,
    },
    /// A directory or environment grant that cannot be honoured.
    #[error("{scope}: invalid grant: {reason}")]
    InvalidGrant {
        /// `step `x`` or `defaults`.
        scope: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A relative host path where there is no directory to resolve it against.
    #[error(
        "{scope}: host path `{}` is relative; use an absolute path (or a workflow file, whose directory relative paths are resolved against)",
        path.display()
    )]
    RelativeHostPath {
        /// `step `x`` or `defaults`.
        scope: String,
        /// The path as written.
        path: PathBuf,
    },
    /// A plugin-shipped workflow that sets capabilities, which only the
    /// operator may grant.
    #[error(
        "{scope}: a workflow shipped by a plugin cannot set `{field}`: grants and memory are for the operator to give"
    )]
    PluginGrants {
        /// `step `x`` or `defaults`.
        scope: String,
        /// The forbidden setting.
        field: &'static str,
    },
    /// A condition that cannot be evaluated.
    #[error("step `{step}`: invalid condition: {reason}")]
    InvalidCondition {
        /// The step.
        step: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A step names a plugin that is not registered.
    #[error("step `{step}`: unknown plugin `{plugin}` (registered: {})", list(.available))]
    UnknownPlugin {
        /// The step.
        step: String,
        /// The missing plugin.
        plugin: String,
        /// The registered plugins.
        available: Vec<String>,
    },
    /// A step pins its plugin to a version that is not registered.
    #[error(
        "step `{step}`: no version of plugin `{plugin}` matches `{version}` (registered: {})",
        list(.available)
    )]
    UnknownPluginVersion {
        /// The step.
        step: String,
        /// The plugin.
        plugin: String,
        /// The version it asks for.
        version: String,
        /// The registered versions.
        available: Vec<String>,
    },
    /// A step names a task its plugin does not offer.
    #[error("step `{step}`: plugin `{plugin}` has no task `{task}` (available: {})", list(.available))]
    UnknownTask {
        /// The step.
        step: String,
        /// The plugin.
        plugin: String,
        /// The missing task.
        task: String,
        /// The plugin's tasks.
        available: Vec<String>,
    },
}

/// `a, b, c`, or `none` for an empty list.
fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

/// How errors name where a setting was written: `step `x`` or `defaults`.
pub(crate) fn step_scope(step: &str) -> String {
    format!("step `{step}`")
}

/// The scope of a workflow-wide `[defaults]` setting.
pub(crate) const DEFAULTS_SCOPE: &str = "defaults";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_culprit() {
        let err = WorkflowError::Cycle(vec!["a".into(), "b".into(), "c".into(), "a".into()]);
        assert!(
            err.to_string()
                .starts_with("dependency cycle: a -> b -> c -> a")
        );
        let err = WorkflowError::UnknownTask {
            step: "load".into(),
            plugin: "etl".into(),
            task: "lod".into(),
            available: vec!["extract".into(), "load".into()],
        };
        assert_eq!(
            err.to_string(),
            "step `load`: plugin `etl` has no task `lod` (available: extract, load)"
        );
        let err = WorkflowError::UnknownPlugin {
            step: "x".into(),
            plugin: "p".into(),
            available: vec![],
        };
        assert_eq!(
            err.to_string(),
            "step `x`: unknown plugin `p` (registered: none)"
        );
    }
}
