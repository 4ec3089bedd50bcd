//! The validated workflow and its steps.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

use super::context;
use super::defaults::Defaults;
use super::retry::RetryPolicy;
use super::trigger::{Condition, TriggerRule};
use super::validate::Graph;
use crate::sandbox::{DirGrant, Grants};

/// A named, versioned DAG of steps that passed validation.
///
/// There is no way to build one that skips validation:
/// [`Workflow::from_toml`], [`Workflow::builder`] and deserialization all
/// end in the same check, so every `Workflow` value is acyclic, has unique
/// step ids, known dependencies and well-formed settings. Fields are
/// therefore read-only.
///
/// Steps are kept in canonical order, sorted by id; use
/// [`Workflow::topological_order`] for execution order.
#[derive(Debug, Clone)]
pub struct Workflow {
    pub(super) name: String,
    pub(super) version: String,
    pub(super) description: Option<String>,
    pub(super) defaults: Defaults,
    pub(super) steps: Vec<Step>,
    pub(super) graph: Graph,
    /// The stored JSON form, made once by validation.
    pub(super) stored: Value,
}

/// Two workflows are equal when their definitions are; the version follows
/// from the definition and the graph from the steps.
impl PartialEq for Workflow {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.description == other.description
            && self.defaults == other.defaults
            && self.steps == other.steps
    }
}

impl Workflow {
    /// The workflow's name, an identifier such as `etl`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The content hash: the first 16 hex digits of the SHA-256 of the
    /// canonical JSON form. Whitespace, comments, key order and step order in
    /// the source do not change it; any change of meaning does.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The one-line description, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// Settings that apply to every step that does not set its own.
    pub fn defaults(&self) -> &Defaults {
        &self.defaults
    }

    /// The steps, sorted by id.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The step called `id`.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.graph.index.get(id).map(|&i| &self.steps[i])
    }

    /// The steps in execution order: Kahn's algorithm, ties broken by id, so
    /// the order is the same on every host and every run.
    pub fn topological_order(&self) -> Vec<&Step> {
        self.graph.order.iter().map(|&i| &self.steps[i]).collect()
    }

    /// The steps `id` depends on directly, in topological order; `None` if
    /// there is no step `id`.
    pub fn upstream(&self, id: &str) -> Option<Vec<&Step>> {
        let i = *self.graph.index.get(id)?;
        Some(
            self.graph.upstream[i]
                .iter()
                .map(|&u| &self.steps[u])
                .collect(),
        )
    }

    /// The steps that depend on `id` directly, in topological order; `None`
    /// if there is no step `id`.
    pub fn downstream(&self, id: &str) -> Option<Vec<&Step>> {
        let i = *self.graph.index.get(id)?;
        Some(
            self.graph.downstream[i]
                .iter()
                .map(|&d| &self.steps[d])
                .collect(),
        )
    }

    /// The input of step `id` (see [`context`](super::context) for the merge
    /// rule): the execution input, then the outputs of its direct upstream
    /// steps that have one (in topological order), then the step's static
    /// input. `None` if there is no step `id`.
    pub fn step_input(
        &self,
        id: &str,
        execution_input: &Map<String, Value>,
        outputs: &HashMap<String, Map<String, Value>>,
    ) -> Option<Map<String, Value>> {
        let i = *self.graph.index.get(id)?;
        Some(self.input_of(i, execution_input, outputs))
    }

    /// [`Workflow::step_input`] by index, for the planner.
    pub(super) fn input_of(
        &self,
        i: usize,
        execution_input: &Map<String, Value>,
        outputs: &HashMap<String, Map<String, Value>>,
    ) -> Map<String, Value> {
        let upstream: Vec<(&str, &Map<String, Value>)> = self.graph.upstream[i]
            .iter()
            .filter_map(|&u| {
                let id = self.steps[u].id.as_str();
                outputs.get(id).map(|output| (id, output))
            })
            .collect();
        context::step_input(execution_input, &self.steps[i].input, &upstream)
    }
}

/// One node of the DAG: a task to run, when, and with what.
///
/// Built with [`Step::new`] and the chained setters; checked when the
/// workflow is built.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Unique within the workflow: lowercase letters, digits, `-`, `_`,
    /// starting with a letter.
    pub id: String,
    /// The task it runs.
    pub task: TaskRef,
    /// Steps that must reach a terminal state first (sorted once validated).
    pub depends_on: Vec<String>,
    /// Retry policy; `None` falls back to the workflow defaults, then to the
    /// task's own suggestion, then to a single attempt.
    pub retry: Option<RetryPolicy>,
    /// Wall-clock timeout of one attempt; `None` falls back like `retry`.
    pub timeout: Option<Duration>,
    /// When the step runs, given its upstream steps' states.
    pub trigger: TriggerRule,
    /// An extra test on the step's merged input; the step is skipped when it
    /// does not hold.
    pub condition: Option<Condition>,
    /// Directories and environment variables added to the workflow defaults'
    /// grants (absolute host paths once validated).
    pub grants: Grants,
    /// Memory limit in bytes; `None` falls back to the defaults.
    pub memory: Option<u64>,
    /// Static input, merged last into the step's input.
    pub input: Map<String, Value>,
}

impl Step {
    /// A step `id` running `task` (`plugin/task`), with no dependencies and
    /// default settings.
    pub fn new(id: impl Into<String>, task: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            task: TaskRef::new(task),
            depends_on: Vec::new(),
            retry: None,
            timeout: None,
            trigger: TriggerRule::default(),
            condition: None,
            grants: Grants::default(),
            memory: None,
            input: Map::new(),
        }
    }

    /// Adds dependencies.
    pub fn depends_on<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.depends_on.extend(ids.into_iter().map(Into::into));
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Sets the timeout of one attempt.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the trigger rule.
    pub fn trigger(mut self, rule: TriggerRule) -> Self {
        self.trigger = rule;
        self
    }

    /// Sets the condition.
    pub fn condition(mut self, condition: Condition) -> Self {
        self.condition = Some(condition);
        self
    }

    /// Grants a directory.
    pub fn dir(mut self, grant: DirGrant) -> Self {
        self.grants.dirs.push(grant);
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.grants.env.insert(name.into(), value.into());
        self
    }

    /// Sets the memory limit in bytes.
    pub fn memory(mut self, bytes: u64) -> Self {
        self.memory = Some(bytes);
        self
    }

    /// Adds one key to the static input.
    pub fn input(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.input.insert(key.into(), value.into());
        self
    }

    /// Resolves relative host paths against `base` (lexically), leaving
    /// absolute ones alone.
    pub(super) fn resolve_paths(&mut self, base: &std::path::Path) {
        resolve_grants(&mut self.grants, base);
    }
}

/// Makes every relative host path of `grants` absolute under `base`.
pub(super) fn resolve_grants(grants: &mut Grants, base: &std::path::Path) {
    for dir in &mut grants.dirs {
        if dir.host.is_relative() {
            dir.host = normalize(&base.join(&dir.host));
        }
    }
}

/// Removes `.` and resolves `..` without touching the file system, so the
/// same directory written two ways gives the same definition (and version).
fn normalize(path: &std::path::Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(part);
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// A reference to a task: `plugin/task`, e.g. `etl/extract`, or with the
/// plugin pinned to a version, `plugin@version/task`: `etl@0.2.1/extract`
/// (exactly that version) or `etl@0.2/extract` (the newest registered
/// `0.2.x`). Unpinned, new executions run the newest registered version.
///
/// Kept as written so that an invalid reference can be reported verbatim;
/// validation guarantees exactly one `/` between two identifiers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskRef(String);

impl TaskRef {
    /// A reference from its text form, checked when the workflow is built.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The plugin part before the `/`, with its `@version` if any: `etl`
    /// or `etl@0.2`, the key of the registration it runs in an
    /// execution's [`PluginPins`](crate::store::PluginPins).
    pub fn plugin_ref(&self) -> &str {
        self.0.split_once('/').map_or(self.0.as_str(), |(p, _)| p)
    }

    /// The plugin's name (before the `/` and any `@version`).
    pub fn plugin(&self) -> &str {
        let part = self.plugin_ref();
        part.split_once('@').map_or(part, |(name, _)| name)
    }

    /// The plugin version it is pinned to, if any (after the `@`).
    pub fn version(&self) -> Option<&str> {
        self.plugin_ref().split_once('@').map(|(_, v)| v)
    }

    /// The task part (after the `/`).
    pub fn task(&self) -> &str {
        self.0.split_once('/').map_or("", |(_, t)| t)
    }

    /// The text form, `plugin/task` or `plugin@version/task`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Why this is not a valid `plugin[@version]/task` reference, if it is not.
    pub(super) fn problem(&self) -> Option<String> {
        let Some((_, task)) = self.0.split_once('/') else {
            return Some("expected `plugin/task`, e.g. `etl/extract`".to_owned());
        };
        let plugin = self.plugin();
        if !super::validate::is_identifier(plugin) {
            return Some(format!(
                "plugin name `{plugin}` must be lowercase letters, digits, `-` or `_`, starting with a letter"
            ));
        }
        if let Some(version) = self.version()
            && !is_version_pin(version)
        {
            return Some(format!(
                "plugin version `{version}` must be MAJOR, MAJOR.MINOR or a full version such as 0.2.1"
            ));
        }
        if !super::validate::is_identifier(task) {
            return Some(format!(
                "task name `{task}` must be lowercase letters, digits, `-` or `_`, starting with a letter"
            ));
        }
        None
    }
}

/// Whether a registered `version` is one a pin to `pin` may select:
/// exactly `pin`, or one that continues it after a `.` (`0.2` selects
/// `0.2.0` and `0.2.7`, not `0.20.0`). Of several, an exact match wins,
/// then the newest registration (the store's `resolve_plugin` does the
/// same in SQL).
pub(crate) fn pin_selects(pin: &str, version: &str) -> bool {
    version == pin
        || version
            .strip_prefix(pin)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// `MAJOR`, `MAJOR.MINOR`, or a whole registered version (`MAJOR.MINOR.PATCH`
/// with any `-pre` or `+build`), at most 64 bytes.
fn is_version_pin(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = parts
        .iter()
        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    let extra = &version[core.len()..];
    version.len() <= 64
        && numeric
        && match parts.len() {
            1 | 2 => extra.is_empty(),
            3 => extra
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-+.".contains(c)),
            _ => false,
        }
}

impl fmt::Display for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ref_parts() {
        let t = TaskRef::new("etl/extract");
        assert_eq!((t.plugin(), t.task()), ("etl", "extract"));
        assert_eq!(t.to_string(), "etl/extract");
        assert!(t.problem().is_none());
        assert!(
            TaskRef::new("etl")
                .problem()
                .unwrap()
                .contains("plugin/task")
        );
        assert!(TaskRef::new("etl/a/b").problem().unwrap().contains("a/b"));
        assert!(TaskRef::new("Etl/x").problem().unwrap().contains("Etl"));
        assert!(TaskRef::new("/x").problem().is_some());
    }

    #[test]
    fn task_ref_with_a_version() {
        let t = TaskRef::new("etl@0.2/extract");
        assert_eq!(
            (t.plugin(), t.version(), t.task()),
            ("etl", Some("0.2"), "extract")
        );
        assert_eq!(TaskRef::new("etl/extract").version(), None);
        for good in ["etl@1/x", "etl@0.2/x", "etl@0.2.1/x", "etl@1.0.0-rc.1+b2/x"] {
            assert!(TaskRef::new(good).problem().is_none(), "{good}");
        }
        for bad in [
            "etl@/x",
            "etl@v1/x",
            "etl@1.2.3.4/x",
            "etl@1.x/x",
            "etl@1-rc/x",
            "@1/x",
        ] {
            assert!(TaskRef::new(bad).problem().is_some(), "{bad}");
        }
    }

    #[test]
    fn resolves_relative_host_paths_lexically() {
        let mut step = Step::new("s", "p/t")
            .dir(DirGrant::read_only("./data/../data/", "/data"))
            .dir(DirGrant::writable("/abs/out", "/out"));
        step.resolve_paths(std::path::Path::new("/srv/plugins/etl"));
        assert_eq!(
            step.grants.dirs[0].host,
            PathBuf::from("/srv/plugins/etl/data")
        );
        assert_eq!(step.grants.dirs[1].host, PathBuf::from("/abs/out"));
    }

    #[test]
    fn graph_queries() {
        let wf = Workflow::builder("w")
            .step(Step::new("c", "p/t").depends_on(["a", "b"]))
            .step(Step::new("b", "p/t").depends_on(["a"]))
            .step(Step::new("a", "p/t"))
            .step(Step::new("d", "p/t").depends_on(["a"]))
            .build()
            .unwrap();
        let ids = |steps: Vec<&Step>| steps.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(wf.topological_order()), ["a", "b", "c", "d"]);
        assert_eq!(ids(wf.upstream("c").unwrap()), ["a", "b"]);
        assert_eq!(ids(wf.downstream("a").unwrap()), ["b", "c", "d"]);
        assert!(wf.upstream("zz").is_none());
        assert_eq!(
            wf.steps().iter().map(|s| &s.id).collect::<Vec<_>>(),
            ["a", "b", "c", "d"]
        );
        assert_eq!(wf.step("d").unwrap().task.as_str(), "p/t");
    }
}
