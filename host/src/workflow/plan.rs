//! The pure scheduling step: given an execution's step states, which
//! pending steps to start or skip now, and whether the execution is over.
//!
//! The executor calls [`plan`] after every state change, applies the
//! actions, and calls [`Workflow::verdict`] to see whether the execution
//! has ended. Neither touches the clock, the database or randomness, so a
//! crash between two calls loses nothing: calling again with the stored
//! states gives the same answer.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::model::Workflow;
use super::trigger::{Decision, StepState, evaluate};

/// What to do with a pending step.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start it with this input (see [`context`](super::context)).
    Run(Map<String, Value>),
    /// Mark it skipped.
    Skip,
    /// Mark it cancelled: an upstream step was cancelled.
    Cancel,
}

/// How a finished execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every step succeeded or was skipped by its trigger rule or condition.
    Succeeded,
    /// At least one step failed (even if an `any_failed` step handled it).
    Failed,
    /// At least one step was cancelled.
    Cancelled,
}

/// Decides every pending step whose upstream steps are all terminal, in
/// topological order. Steps missing from `states` count as pending;
/// `outputs` holds the outputs of succeeded steps.
///
/// A step this call skips (or cancels) counts as skipped (cancelled) for its
/// downstream steps in the same call, so a skip travels down a whole chain
/// at once; a step this call starts is running for them (they wait). Linear in steps plus edges, plus
/// the size of the inputs it merges (only for steps it starts or whose
/// condition needs them).
pub fn plan(
    workflow: &Workflow,
    states: &HashMap<String, StepState>,
    outputs: &HashMap<String, Map<String, Value>>,
    execution_input: &Map<String, Value>,
) -> Vec<(String, Action)> {
    let graph = &workflow.graph;
    let mut current: Vec<StepState> = workflow
        .steps
        .iter()
        .map(|s| states.get(&s.id).copied().unwrap_or_default())
        .collect();
    let mut actions = Vec::new();
    let mut upstream = Vec::new();
    let no_input = Map::new();
    for &i in &graph.order {
        if current[i] != StepState::Pending {
            continue;
        }
        let step = &workflow.steps[i];
        upstream.clear();
        upstream.extend(graph.upstream[i].iter().map(|&u| current[u]));
        // Decide on the rule alone first: merging inputs is only worth it
        // for a step that may run.
        let action = match evaluate(step.trigger, None, &upstream, &no_input) {
            Decision::Wait => continue,
            // `evaluate` skips below a cancellation; cancelling instead keeps
            // it going past `all_done` steps further down.
            Decision::Skip if upstream.contains(&StepState::Cancelled) => Action::Cancel,
            Decision::Skip => Action::Skip,
            Decision::Run => {
                let input = workflow.input_of(i, execution_input, outputs);
                match &step.condition {
                    Some(condition) if !condition.holds(&input) => Action::Skip,
                    _ => Action::Run(input),
                }
            }
        };
        current[i] = match action {
            Action::Skip => StepState::Skipped,
            Action::Cancel => StepState::Cancelled,
            Action::Run(_) => StepState::Ready,
        };
        actions.push((step.id.clone(), action));
    }
    actions
}

/// The verdict once every step is terminal, `None` before. Cancellation
/// outranks failure, which outranks success; skipped steps do not fail an
/// execution. Pass one state per step.
pub fn execution_state(states: impl IntoIterator<Item = StepState>) -> Option<Verdict> {
    let mut verdict = Verdict::Succeeded;
    for state in states {
        match state {
            StepState::Pending | StepState::Ready | StepState::Running => return None,
            StepState::Cancelled => verdict = Verdict::Cancelled,
            StepState::Failed if verdict == Verdict::Succeeded => verdict = Verdict::Failed,
            StepState::Failed | StepState::Succeeded | StepState::Skipped => {}
        }
    }
    Some(verdict)
}

impl Workflow {
    /// [`execution_state`] over this workflow's steps; a step missing from
    /// `states` is pending.
    pub fn verdict(&self, states: &HashMap<String, StepState>) -> Option<Verdict> {
        execution_state(
            self.steps
                .iter()
                .map(|s| states.get(&s.id).copied().unwrap_or_default()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::{Condition, Step, TriggerRule};
    use StepState::*;
    use serde_json::json;

    fn obj(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn states(pairs: &[(&str, StepState)]) -> HashMap<String, StepState> {
        pairs.iter().map(|(id, s)| ((*id).to_owned(), *s)).collect()
    }

    fn kinds(actions: &[(String, Action)]) -> Vec<(&str, &str)> {
        actions
            .iter()
            .map(|(id, a)| {
                let kind = match a {
                    Action::Run(_) => "run",
                    Action::Skip => "skip",
                    Action::Cancel => "cancel",
                };
                (id.as_str(), kind)
            })
            .collect()
    }

    /// `src` fans out to `left` and `right`, which fan in to `join`.
    fn diamond(join_rule: TriggerRule) -> Workflow {
        Workflow::builder("d")
            .step(Step::new("src", "p/t"))
            .step(Step::new("left", "p/t").depends_on(["src"]))
            .step(
                Step::new("right", "p/t")
                    .depends_on(["src"])
                    .input("side", "right"),
            )
            .step(
                Step::new("join", "p/t")
                    .depends_on(["left", "right"])
                    .trigger(join_rule),
            )
            .build()
            .unwrap()
    }

    #[test]
    fn fan_out_then_fan_in() {
        let wf = diamond(TriggerRule::AllSucceeded);
        let input = obj(json!({"run": 1}));
        let mut outputs = HashMap::new();
        let first = plan(&wf, &HashMap::new(), &outputs, &input);
        assert_eq!(first, [("src".to_owned(), Action::Run(input.clone()))]);

        outputs.insert("src".to_owned(), obj(json!({"rows": 3})));
        let second = plan(&wf, &states(&[("src", Succeeded)]), &outputs, &input);
        assert_eq!(kinds(&second), [("left", "run"), ("right", "run")]);
        assert_eq!(
            second[1].1,
            Action::Run(obj(json!({"run": 1, "rows": 3, "side": "right"})))
        );

        // One branch done: the join still waits for the other.
        outputs.insert("left".to_owned(), obj(json!({"l": true, "rows": 4})));
        let s = states(&[("src", Succeeded), ("left", Succeeded), ("right", Running)]);
        assert!(plan(&wf, &s, &outputs, &input).is_empty());

        outputs.insert("right".to_owned(), obj(json!({"r": true, "rows": 5})));
        let s = states(&[
            ("src", Succeeded),
            ("left", Succeeded),
            ("right", Succeeded),
        ]);
        let last = plan(&wf, &s, &outputs, &input);
        // Upstream outputs merge in topological order: `left` before `right`.
        assert_eq!(
            last,
            [(
                "join".to_owned(),
                Action::Run(obj(json!({"run": 1, "l": true, "r": true, "rows": 5})))
            )]
        );
        let mut done = s.clone();
        done.insert("join".to_owned(), Succeeded);
        assert_eq!(wf.verdict(&done), Some(Verdict::Succeeded));
        assert_eq!(wf.verdict(&s), None);
    }

    #[test]
    fn skip_propagates_down_a_chain_in_one_call() {
        let wf = Workflow::builder("c")
            .step(Step::new("a", "p/t"))
            .step(Step::new("b", "p/t").depends_on(["a"]))
            .step(Step::new("c", "p/t").depends_on(["b"]))
            .step(
                Step::new("cleanup", "p/t")
                    .depends_on(["c"])
                    .trigger(TriggerRule::AllDone),
            )
            .step(
                Step::new("alert", "p/t")
                    .depends_on(["b"])
                    .trigger(TriggerRule::AnyFailed),
            )
            .build()
            .unwrap();
        let s = states(&[("a", Failed)]);
        let actions = plan(&wf, &s, &HashMap::new(), &Map::new());
        assert_eq!(
            kinds(&actions),
            [
                ("b", "skip"),
                ("alert", "skip"),
                ("c", "skip"),
                ("cleanup", "run")
            ]
        );
        let all = states(&[
            ("a", Failed),
            ("b", Skipped),
            ("c", Skipped),
            ("alert", Skipped),
            ("cleanup", Succeeded),
        ]);
        assert_eq!(wf.verdict(&all), Some(Verdict::Failed));
    }

    #[test]
    fn any_failed_handler_runs_but_the_execution_still_fails() {
        let wf = diamond(TriggerRule::AnyFailed);
        let s = states(&[("src", Succeeded), ("left", Failed), ("right", Succeeded)]);
        assert_eq!(
            kinds(&plan(&wf, &s, &HashMap::new(), &Map::new())),
            [("join", "run")]
        );
        let mut done = s;
        done.insert("join".to_owned(), Succeeded);
        assert_eq!(wf.verdict(&done), Some(Verdict::Failed));
    }

    #[test]
    fn condition_skips_on_the_merged_input() {
        let wf = Workflow::builder("w")
            .step(Step::new("t", "etl/transform"))
            .step(
                Step::new("load", "etl/load")
                    .depends_on(["t"])
                    .condition(Condition::exists("grand_total")),
            )
            .build()
            .unwrap();
        let s = states(&[("t", Succeeded)]);
        let mut outputs = HashMap::new();
        outputs.insert("t".to_owned(), obj(json!({"totals": {}})));
        assert_eq!(
            kinds(&plan(&wf, &s, &outputs, &Map::new())),
            [("load", "skip")]
        );
        // The execution input counts too.
        let input = obj(json!({"grand_total": 0}));
        assert_eq!(kinds(&plan(&wf, &s, &outputs, &input)), [("load", "run")]);
    }

    #[test]
    fn only_pending_steps_are_planned() {
        let wf = diamond(TriggerRule::AllSucceeded);
        let s = states(&[("src", Succeeded), ("left", Ready), ("right", Running)]);
        assert!(plan(&wf, &s, &HashMap::new(), &Map::new()).is_empty());
    }

    #[test]
    fn verdicts() {
        assert_eq!(
            execution_state([Succeeded, Skipped]),
            Some(Verdict::Succeeded)
        );
        assert_eq!(
            execution_state([Succeeded, Failed, Skipped]),
            Some(Verdict::Failed)
        );
        assert_eq!(
            execution_state([Failed, Cancelled]),
            Some(Verdict::Cancelled)
        );
        assert_eq!(
            execution_state([Cancelled, Failed]),
            Some(Verdict::Cancelled)
        );
        assert_eq!(execution_state([Succeeded, Running]), None);
        assert_eq!(execution_state([Pending]), None);
    }

    #[test]
    fn cancellation_travels_down_the_graph() {
        let wf = diamond(TriggerRule::AllDone);
        let s = states(&[("src", Cancelled)]);
        let actions = plan(&wf, &s, &HashMap::new(), &Map::new());
        assert_eq!(
            kinds(&actions),
            [("left", "cancel"), ("right", "cancel"), ("join", "cancel")]
        );
    }
}
