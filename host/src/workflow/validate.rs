//! The one gate every workflow passes: structural validation, normalization,
//! the dependency graph and the content hash; plus the separate check of
//! task references against the registered plugins.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::hash::BuildHasher;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::defaults::Defaults;
use super::error::{DEFAULTS_SCOPE, WorkflowError, step_scope};
use super::model::{Step, Workflow};
use super::trigger::TriggerRule;
use crate::sandbox::Grants;

/// Wasm32 guests address at most 4 GiB of linear memory.
const MAX_MEMORY: u64 = 4 << 30;

/// The DAG as indices into the id-sorted steps, precomputed once so that
/// planning is linear in steps plus edges.
#[derive(Debug, Clone, Default)]
pub(super) struct Graph {
    /// Step id → index.
    pub(super) index: HashMap<String, usize>,
    /// Direct upstream steps of each step, in topological order.
    pub(super) upstream: Vec<Vec<usize>>,
    /// Direct downstream steps of each step, in topological order.
    pub(super) downstream: Vec<Vec<usize>>,
    /// Execution order: Kahn's algorithm, ties broken by id.
    pub(super) order: Vec<usize>,
}

/// A plugin, task or step name: see [`corral_names::is_name`], the rule
/// the guest SDK's macros apply too.
pub(super) fn is_identifier(s: &str) -> bool {
    corral_names::is_name(s)
}

/// Checks and normalizes a definition into a [`Workflow`]: the only way to
/// make one. Relative host paths must already be resolved by the caller.
///
/// Normalization (so that equivalent definitions are equal and share a
/// version): steps sorted by id, `depends_on` sorted, directory grants
/// sorted by guest path, an empty description dropped.
pub(super) fn validate(
    name: String,
    description: Option<String>,
    defaults: Defaults,
    mut steps: Vec<Step>,
) -> Result<Workflow, WorkflowError> {
    if !is_identifier(&name) {
        return Err(WorkflowError::InvalidName(name));
    }
    if steps.is_empty() {
        return Err(WorkflowError::Empty(name));
    }
    if let Some(bad) = steps.iter().find(|s| !is_identifier(&s.id)) {
        return Err(WorkflowError::InvalidStepId(bad.id.clone()));
    }
    steps.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(pair) = steps.windows(2).find(|w| w[0].id == w[1].id) {
        return Err(WorkflowError::DuplicateStep(pair[0].id.clone()));
    }
    let ids: HashSet<&str> = steps.iter().map(|s| s.id.as_str()).collect();
    for step in &steps {
        check_step(step, &ids)?;
    }
    check_settings(
        DEFAULTS_SCOPE,
        &defaults.grants,
        defaults.retry.as_ref(),
        defaults.timeout,
        defaults.memory,
    )?;
    let mut defaults = defaults;
    defaults.grants.dirs.sort_by(|a, b| a.guest.cmp(&b.guest));
    for step in &mut steps {
        step.depends_on.sort();
        step.grants.dirs.sort_by(|a, b| a.guest.cmp(&b.guest));
    }
    let graph = graph(&steps)?;
    let mut workflow = Workflow {
        name,
        version: String::new(),
        description: description.filter(|d| !d.is_empty()),
        defaults,
        steps,
        graph,
        stored: Value::Null,
    };
    let (version, stored) = content_hash(&workflow)?;
    workflow.version = version;
    workflow.stored = stored;
    Ok(workflow)
}

/// Everything about one step that does not need the other steps' graph.
fn check_step(step: &Step, ids: &HashSet<&str>) -> Result<(), WorkflowError> {
    if let Some(reason) = step.task.problem() {
        return Err(WorkflowError::InvalidTaskRef {
            step: step.id.clone(),
            task: step.task.to_string(),
            reason,
        });
    }
    let mut seen = HashSet::new();
    for dep in &step.depends_on {
        if *dep == step.id {
            return Err(WorkflowError::SelfDependency(step.id.clone()));
        }
        if !seen.insert(dep) {
            return Err(WorkflowError::DuplicateDependency {
                step: step.id.clone(),
                dependency: dep.clone(),
            });
        }
        if !ids.contains(dep.as_str()) {
            return Err(WorkflowError::UnknownDependency {
                step: step.id.clone(),
                dependency: dep.clone(),
                hint: suggestion(dep, ids),
            });
        }
    }
    if step.depends_on.is_empty()
        && matches!(
            step.trigger,
            TriggerRule::AnyFailed | TriggerRule::AnySucceeded
        )
    {
        return Err(WorkflowError::TriggerWithoutUpstream {
            step: step.id.clone(),
            trigger: step.trigger.to_string(),
        });
    }
    if let Some(reason) = step.condition.as_ref().and_then(|c| c.problem()) {
        return Err(WorkflowError::InvalidCondition {
            step: step.id.clone(),
            reason,
        });
    }
    check_settings(
        &step_scope(&step.id),
        &step.grants,
        step.retry.as_ref(),
        step.timeout,
        step.memory,
    )
}

/// Checks the settings a step shares with `[defaults]`.
fn check_settings(
    scope: &str,
    grants: &Grants,
    retry: Option<&super::retry::RetryPolicy>,
    timeout: Option<Duration>,
    memory: Option<u64>,
) -> Result<(), WorkflowError> {
    if timeout.is_some_and(|t| t.is_zero()) {
        return Err(WorkflowError::InvalidDuration {
            scope: scope.to_owned(),
            field: "timeout",
            value: "0s".to_owned(),
            reason: "a timeout must be greater than zero".to_owned(),
        });
    }
    if let Some(bytes) = memory
        && !(1..=MAX_MEMORY).contains(&bytes)
    {
        return Err(WorkflowError::InvalidMemory {
            scope: scope.to_owned(),
            value: super::toml::format_memory(bytes),
            reason: "must be more than 0 and at most 4GiB (a wasm32 guest's address space)"
                .to_owned(),
        });
    }
    if let Some(reason) = retry.and_then(|r| r.problem()) {
        return Err(WorkflowError::InvalidRetry {
            scope: scope.to_owned(),
            reason,
        });
    }
    check_grants(scope, grants)
}

/// The definition-time half of grant checking. Whether a host directory
/// exists is only checked when an attempt starts (`Grants::validate`): the
/// workflow may be applied on one machine and run on another.
fn check_grants(scope: &str, grants: &Grants) -> Result<(), WorkflowError> {
    let bad = |reason: String| {
        Err(WorkflowError::InvalidGrant {
            scope: scope.to_owned(),
            reason,
        })
    };
    let mut guests = HashSet::new();
    for dir in &grants.dirs {
        // Same rule as `DirGrant::validate`, without its file-system check.
        let clean = dir.guest.starts_with('/')
            && !dir.guest.split('/').any(|part| part == "." || part == "..");
        if !clean {
            return bad(format!(
                "guest path `{}` must be absolute, without `.` or `..` (e.g. /data)",
                dir.guest
            ));
        }
        if !guests.insert(dir.guest.as_str()) {
            return bad(format!("guest path `{}` is granted twice", dir.guest));
        }
        if dir.quota_on_read_only() {
            return bad(format!(
                "`{}` is read-only but has max_bytes or max_files: quotas only apply to writable = true grants",
                dir.guest
            ));
        }
        if dir.host.as_os_str().is_empty() {
            return bad(format!("the host path for `{}` is empty", dir.guest));
        }
        if dir.host.is_relative() {
            return Err(WorkflowError::RelativeHostPath {
                scope: scope.to_owned(),
                path: dir.host.clone(),
            });
        }
    }
    for (name, value) in &grants.env {
        if let Some(problem) = crate::sandbox::env_var_problem(name, value) {
            return bad(problem);
        }
    }
    Ok(())
}

/// ` (did you mean `x`?)` for the closest step id within two edits.
fn suggestion(missing: &str, ids: &HashSet<&str>) -> String {
    ids.iter()
        .map(|id| (edit_distance(missing, id), *id))
        .filter(|&(d, _)| d <= 2)
        .min()
        .map(|(_, id)| format!(" (did you mean `{id}`?)"))
        .unwrap_or_default()
}

/// Levenshtein distance, with transpositions counting once so that the
/// common typo `transfrom` is one edit from `transform`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// Builds the graph of id-sorted steps whose dependencies are known to
/// exist, or names a cycle.
fn graph(steps: &[Step]) -> Result<Graph, WorkflowError> {
    let index: HashMap<String, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.clone(), i))
        .collect();
    let mut upstream = vec![Vec::new(); steps.len()];
    let mut downstream = vec![Vec::new(); steps.len()];
    for (i, step) in steps.iter().enumerate() {
        for dep in &step.depends_on {
            if let Some(&u) = index.get(dep) {
                upstream[i].push(u);
                downstream[u].push(i);
            }
        }
    }
    // Kahn's algorithm; steps are sorted by id, so the smallest index is the
    // smallest id and the order is deterministic.
    let mut waiting: Vec<usize> = upstream.iter().map(Vec::len).collect();
    let mut ready: BinaryHeap<Reverse<usize>> = (0..steps.len())
        .filter(|&i| waiting[i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(steps.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &d in &downstream[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push(Reverse(d));
            }
        }
    }
    if order.len() < steps.len() {
        return Err(WorkflowError::Cycle(find_cycle(steps, &upstream, &waiting)));
    }
    let mut rank = vec![0; steps.len()];
    for (position, &i) in order.iter().enumerate() {
        rank[i] = position;
    }
    for list in upstream.iter_mut().chain(downstream.iter_mut()) {
        list.sort_by_key(|&i| rank[i]);
    }
    Ok(Graph {
        index,
        upstream,
        downstream,
        order,
    })
}

/// Names one cycle among the steps Kahn's algorithm could not order.
///
/// Each such step waits on at least one other such step, so following the
/// smallest unordered dependency from any of them must revisit a step; the
/// loop found is rotated to start at its smallest id.
fn find_cycle(steps: &[Step], upstream: &[Vec<usize>], waiting: &[usize]) -> Vec<String> {
    let stuck = |i: usize| waiting[i] > 0;
    let mut seen_at: HashMap<usize, usize> = HashMap::new();
    let mut path = Vec::new();
    let mut current = (0..steps.len()).find(|&i| stuck(i));
    while let Some(i) = current {
        if let Some(&start) = seen_at.get(&i) {
            let mut cycle: Vec<usize> = path[start..].to_vec();
            let min = (0..cycle.len()).min_by_key(|&k| cycle[k]).unwrap_or(0);
            cycle.rotate_left(min);
            let mut names: Vec<String> = cycle.iter().map(|&k| steps[k].id.clone()).collect();
            names.push(names[0].clone());
            return names;
        }
        seen_at.insert(i, path.len());
        path.push(i);
        current = upstream[i].iter().copied().filter(|&u| stuck(u)).min();
    }
    // Unreachable for a graph Kahn could not finish; name the stuck steps.
    (0..steps.len())
        .filter(|&i| stuck(i))
        .map(|i| steps[i].id.clone())
        .collect()
}

/// SHA-256 of the canonical JSON form (object keys sorted at every level,
/// whatever serde_json's `preserve_order` feature says), first 16 hex
/// digits; and that form with the `version` added, for storage. Computing
/// both here means storing a validated workflow cannot fail later.
fn content_hash(workflow: &Workflow) -> Result<(String, Value), WorkflowError> {
    let document = super::toml::Document::from_workflow(workflow, false);
    let value = serde_json::to_value(&document).map_err(|err| WorkflowError::Serialize {
        name: workflow.name.clone(),
        reason: err.to_string(),
    })?;
    let mut value = canonical(value);
    let bytes = serde_json::to_vec(&value).map_err(|err| WorkflowError::Serialize {
        name: workflow.name.clone(),
        reason: err.to_string(),
    })?;
    let version = hex::encode(&Sha256::digest(bytes)[..8]);
    if let Value::Object(map) = &mut value {
        map.insert("version".to_owned(), Value::String(version.clone()));
    }
    Ok((version, value))
}

/// `value` with every object's keys in sorted order.
fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// What the host knows about registered plugins, for
/// [`Workflow::validate_tasks`].
pub trait TaskCatalog {
    /// The task names of plugin `plugin`, or `None` if no such plugin is
    /// registered.
    fn tasks(&self, plugin: &str) -> Option<Vec<String>>;

    /// The task names of plugin `plugin` at the registration a pin to
    /// `version` selects (see [`TaskRef`](super::TaskRef)), or `None` if no
    /// registered version matches. By default versions are not known and
    /// any pin selects [`tasks`](Self::tasks).
    fn tasks_at(&self, plugin: &str, version: &str) -> Option<Vec<String>> {
        let _ = version;
        self.tasks(plugin)
    }

    /// The registered versions of `plugin`, for error messages (none by
    /// default).
    fn versions(&self, plugin: &str) -> Vec<String> {
        let _ = plugin;
        Vec::new()
    }

    /// The names of all registered plugins, for error messages (none by
    /// default).
    fn plugins(&self) -> Vec<String> {
        Vec::new()
    }
}

impl<S: BuildHasher> TaskCatalog for HashMap<String, Vec<String>, S> {
    fn tasks(&self, plugin: &str) -> Option<Vec<String>> {
        self.get(plugin).cloned()
    }

    fn plugins(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }
}

impl TaskCatalog for BTreeMap<String, Vec<String>> {
    fn tasks(&self, plugin: &str) -> Option<Vec<String>> {
        self.get(plugin).cloned()
    }

    fn plugins(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }
}

impl Workflow {
    /// Checks that every step's task exists in `catalog`: the second
    /// validation stage, run once the registered plugins are known (parsing
    /// does not need the database). Steps are checked in id order; the error
    /// names the step and lists what is available.
    pub fn validate_tasks(&self, catalog: &dyn TaskCatalog) -> Result<(), WorkflowError> {
        for step in &self.steps {
            let (plugin, task) = (step.task.plugin(), step.task.task());
            let Some(mut tasks) = catalog.tasks(plugin) else {
                let mut available = catalog.plugins();
                available.sort();
                return Err(WorkflowError::UnknownPlugin {
                    step: step.id.clone(),
                    plugin: plugin.to_owned(),
                    available,
                });
            };
            if let Some(version) = step.task.version() {
                let Some(pinned) = catalog.tasks_at(plugin, version) else {
                    return Err(WorkflowError::UnknownPluginVersion {
                        step: step.id.clone(),
                        plugin: plugin.to_owned(),
                        version: version.to_owned(),
                        available: catalog.versions(plugin),
                    });
                };
                tasks = pinned;
            }
            if !tasks.iter().any(|t| t == task) {
                tasks.sort();
                return Err(WorkflowError::UnknownTask {
                    step: step.id.clone(),
                    plugin: plugin.to_owned(),
                    task: task.to_owned(),
                    available: tasks,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::DirGrant;
    use crate::workflow::{Condition, RetryPolicy};

    fn build(steps: Vec<Step>) -> Result<Workflow, WorkflowError> {
        Workflow::builder("w").steps(steps).build()
    }

    fn err(steps: Vec<Step>) -> String {
        build(steps).unwrap_err().to_string()
    }

    fn s(id: &str) -> Step {
        Step::new(id, "p/t")
    }

    #[test]
    fn names_a_three_step_cycle() {
        let e = build(vec![
            s("a").depends_on(["c"]),
            s("b").depends_on(["a"]),
            s("c").depends_on(["b"]),
            s("root"),
        ])
        .unwrap_err();
        let WorkflowError::Cycle(cycle) = &e else {
            panic!("{e}")
        };
        assert_eq!(cycle, &["a", "c", "b", "a"]);
        assert!(
            e.to_string()
                .starts_with("dependency cycle: a -> c -> b -> a")
        );
    }

    #[test]
    fn names_the_cycle_not_the_steps_below_it() {
        // `z` waits on the cycle but is not part of it.
        let e = build(vec![
            s("a").depends_on(["z"]),
            s("z").depends_on(["x"]),
            s("x").depends_on(["y"]),
            s("y").depends_on(["x"]),
        ])
        .unwrap_err();
        let WorkflowError::Cycle(cycle) = e else {
            panic!()
        };
        assert_eq!(cycle, ["x", "y", "x"]);
    }

    #[test]
    fn rejects_self_and_unknown_dependencies() {
        assert_eq!(
            err(vec![s("a").depends_on(["a"])]),
            "step `a` depends on itself"
        );
        assert_eq!(
            err(vec![s("transform"), s("load").depends_on(["transfrom"])]),
            "step `load` depends on unknown step `transfrom` (did you mean `transform`?)"
        );
        assert_eq!(
            err(vec![s("a"), s("b").depends_on(["zzzz"])]),
            "step `b` depends on unknown step `zzzz`"
        );
        assert_eq!(
            err(vec![s("a"), s("b").depends_on(["a", "a"])]),
            "step `b` lists dependency `a` more than once"
        );
    }

    #[test]
    fn rejects_bad_ids_names_and_shapes() {
        assert_eq!(
            err(vec![s("a"), s("a")]),
            "step id `a` is used by more than one step"
        );
        assert!(err(vec![s("Extract")]).contains("invalid step id `Extract`"));
        assert!(err(vec![s("1st")]).contains("invalid step id `1st`"));
        assert!(err(vec![s(&"a".repeat(65))]).contains("invalid step id"));
        assert_eq!(err(vec![]), "workflow `w` has no steps");
        let e = Workflow::builder("My Flow")
            .step(s("a"))
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("invalid workflow name `My Flow`"));
        assert_eq!(
            err(vec![Step::new("a", "etl.extract")]),
            "step `a`: invalid task reference `etl.extract`: expected `plugin/task`, e.g. `etl/extract`"
        );
    }

    #[test]
    fn rejects_bad_settings() {
        let e = err(vec![s("a").retry(RetryPolicy::attempts(0))]);
        assert!(
            e.starts_with("step `a`: invalid retry policy: max_attempts"),
            "{e}"
        );
        let e = err(vec![
            s("a").retry(RetryPolicy::attempts(2).with_jitter(1.1)),
        ]);
        assert!(e.contains("jitter 1.1"), "{e}");
        let e = err(vec![s("a").timeout(Duration::ZERO)]);
        assert!(e.starts_with("step `a`: invalid timeout `0s`"), "{e}");
        let e = err(vec![s("a").memory(0)]);
        assert!(e.starts_with("step `a`: invalid memory `0`"), "{e}");
        let e = err(vec![s("a").memory(8 << 30)]);
        assert!(e.starts_with("step `a`: invalid memory `8GiB`"), "{e}");
        let e = err(vec![s("a").condition(Condition::exists(""))]);
        assert!(e.starts_with("step `a`: invalid condition"), "{e}");
        let e = err(vec![s("a").trigger(TriggerRule::AnyFailed)]);
        assert!(
            e.contains("trigger `any_failed` needs at least one upstream"),
            "{e}"
        );
    }

    #[test]
    fn rejects_bad_grants() {
        let e = err(vec![s("a").dir(DirGrant::read_only("/d", "data"))]);
        assert!(e.contains("guest path `data` must be absolute"), "{e}");
        let e = err(vec![s("a").dir(DirGrant::read_only("/d", "/x/../etc"))]);
        assert!(e.contains("/x/../etc"), "{e}");
        let e = err(vec![
            s("a")
                .dir(DirGrant::read_only("/d", "/d"))
                .dir(DirGrant::read_only("/e", "/d")),
        ]);
        assert!(e.contains("guest path `/d` is granted twice"), "{e}");
        let e = err(vec![s("a").dir(DirGrant::read_only("data", "/data"))]);
        assert!(
            e.starts_with("step `a`: host path `data` is relative"),
            "{e}"
        );
        let e = err(vec![s("a").env("A=B", "1")]);
        assert!(e.contains("`A=B`"), "{e}");
        let e = Workflow::builder("w")
            .defaults(Defaults {
                timeout: Some(Duration::ZERO),
                ..Defaults::default()
            })
            .step(s("a"))
            .build()
            .unwrap_err();
        assert!(
            e.to_string().starts_with("defaults: invalid timeout"),
            "{e}"
        );
    }

    #[test]
    fn validates_tasks_against_a_catalog() {
        let wf = build(vec![
            Step::new("x", "etl/extract"),
            Step::new("l", "etl/lod").depends_on(["x"]),
        ])
        .unwrap();
        let mut catalog: HashMap<String, Vec<String>> = HashMap::new();
        catalog.insert(
            "etl".into(),
            vec!["transform".into(), "load".into(), "extract".into()],
        );
        assert_eq!(
            wf.validate_tasks(&catalog).unwrap_err().to_string(),
            "step `l`: plugin `etl` has no task `lod` (available: extract, load, transform)"
        );
        let wf = build(vec![Step::new("a", "hello/greet")]).unwrap();
        assert_eq!(
            wf.validate_tasks(&catalog).unwrap_err().to_string(),
            "step `a`: unknown plugin `hello` (registered: etl)"
        );
        catalog.insert("hello".into(), vec!["greet".into()]);
        wf.validate_tasks(&catalog).unwrap();
    }

    #[test]
    fn edit_distance_counts_transpositions_once() {
        assert_eq!(edit_distance("transfrom", "transform"), 1);
        assert_eq!(edit_distance("load", "lod"), 1);
        assert_eq!(edit_distance("abc", "xyz"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
    }

    #[test]
    fn identifiers() {
        for ok in ["a", "etl", "a-b_c9"] {
            assert!(is_identifier(ok), "{ok}");
        }
        for bad in ["", "A", "9a", "-a", "a b", "é"] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }
}
