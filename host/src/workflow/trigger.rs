//! Whether a step runs, given how its upstream steps ended.
//!
//! A step is decided only once **all** its upstream steps are terminal
//! (`succeeded`, `failed`, `skipped` or `cancelled`): even `any_failed`
//! waits for the rest, so the decision never depends on timing.
//!
//! | rule | runs when the upstream steps… | otherwise |
//! |---|---|---|
//! | `all_succeeded` (default) | all succeeded | skipped |
//! | `all_done` | all ended, whatever the outcome | — |
//! | `any_failed` | include at least one failure | skipped |
//! | `any_succeeded` | include at least one success | skipped |
//!
//! A **skipped** upstream step is "not succeeded" for `all_succeeded` (so a
//! skip propagates down an `all_succeeded` chain), "done" for `all_done`,
//! and neither failed nor succeeded for `any_*`. A **cancelled** upstream
//! step skips the step whatever the rule. [`plan`](super::plan()) goes
//! further and marks such steps cancelled (not skipped), so cancellation
//! travels down the whole graph and nothing new starts below it, even under
//! `all_done`. A step without upstream steps runs (validation rejects
//! `any_*` rules there, which could never fire).
//!
//! When the rule says run, the step's [`Condition`], if any, is tested on
//! its merged input; if it does not hold the step is skipped.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// When a step runs, given its upstream steps' terminal states.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerRule {
    /// Every upstream step succeeded.
    #[default]
    AllSucceeded,
    /// Every upstream step ended, whatever the outcome.
    AllDone,
    /// At least one upstream step failed.
    AnyFailed,
    /// At least one upstream step succeeded.
    AnySucceeded,
}

impl TriggerRule {
    /// The name used in TOML and JSON (`all_succeeded`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerRule::AllSucceeded => "all_succeeded",
            TriggerRule::AllDone => "all_done",
            TriggerRule::AnyFailed => "any_failed",
            TriggerRule::AnySucceeded => "any_succeeded",
        }
    }
}

impl fmt::Display for TriggerRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of a step's task run within one execution: what the planner
/// decides from, what the store keeps (also as
/// [`store::TaskRunStatus`](crate::store::TaskRunStatus)) and what reports
/// show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Waiting for its dependencies: not decided yet.
    #[default]
    Pending,
    /// Decided to run: claimable by a runner once its backoff
    /// (`not_before`) has passed.
    Ready,
    /// Claimed by a runner; an attempt is in flight.
    Running,
    /// Ended with an output.
    Succeeded,
    /// Ended with an error: retries used up, or the failure is not
    /// retryable.
    Failed,
    /// Not run: its trigger rule or condition was not met.
    Skipped,
    /// Stopped or never started because the execution was cancelled.
    Cancelled,
}

impl StepState {
    /// Every state, in lifecycle order.
    pub const ALL: [StepState; 7] = [
        StepState::Pending,
        StepState::Ready,
        StepState::Running,
        StepState::Succeeded,
        StepState::Failed,
        StepState::Skipped,
        StepState::Cancelled,
    ];

    /// Whether the step is over: `succeeded`, `failed`, `skipped` or
    /// `cancelled`. Such a state never changes again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            StepState::Succeeded | StepState::Failed | StepState::Skipped | StepState::Cancelled
        )
    }

    /// The former name of [`is_final`](Self::is_final).
    #[deprecated(since = "0.2.0", note = "use `is_final`")]
    pub fn is_terminal(self) -> bool {
        self.is_final()
    }

    /// The name stored in the database and printed by the CLI
    /// (`pending`, `ready`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Ready => "ready",
            StepState::Running => "running",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
            StepState::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for StepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StepState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StepState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown step state `{s}`"))
    }
}

/// A test on one value of the step's merged input.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// A top-level key of the input, or a JSON Pointer (RFC 6901) when it
    /// starts with `/`, e.g. `/grand_total/count`.
    pub key: String,
    /// What must hold for it.
    pub op: ConditionOp,
}

/// What a [`Condition`] tests.
#[derive(Debug, Clone, PartialEq)]
pub enum ConditionOp {
    /// The key is present (any value, `null` included).
    Exists,
    /// The key is absent.
    Missing,
    /// The key is present and equal to the value. Numbers compare by value
    /// (`1 == 1.0`); everything else as JSON.
    Equals(Value),
    /// The key is absent or not equal to the value.
    NotEquals(Value),
}

impl Condition {
    /// `key` is present.
    pub fn exists(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            op: ConditionOp::Exists,
        }
    }

    /// `key` is absent.
    pub fn missing(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            op: ConditionOp::Missing,
        }
    }

    /// `key` equals `value`.
    pub fn equals(key: impl Into<String>, value: impl Into<Value>) -> Self {
        Self {
            key: key.into(),
            op: ConditionOp::Equals(value.into()),
        }
    }

    /// `key` is absent or differs from `value`.
    pub fn not_equals(key: impl Into<String>, value: impl Into<Value>) -> Self {
        Self {
            key: key.into(),
            op: ConditionOp::NotEquals(value.into()),
        }
    }

    /// Whether the condition holds for `input`.
    pub fn holds(&self, input: &Map<String, Value>) -> bool {
        let value = match self.key.strip_prefix('/') {
            Some(_) => pointer(input, &self.key),
            None => input.get(&self.key),
        };
        match (&self.op, value) {
            (ConditionOp::Exists, found) => found.is_some(),
            (ConditionOp::Missing, found) => found.is_none(),
            (ConditionOp::Equals(want), Some(got)) => json_eq(want, got),
            (ConditionOp::Equals(_), None) => false,
            (ConditionOp::NotEquals(want), Some(got)) => !json_eq(want, got),
            (ConditionOp::NotEquals(_), None) => true,
        }
    }

    /// Why this condition cannot be evaluated, if it cannot.
    pub(super) fn problem(&self) -> Option<String> {
        if self.key.is_empty() {
            Some("`key` must not be empty".to_owned())
        } else if self.key == "/" {
            Some("`key` `/` points at no value; name a key such as `/total`".to_owned())
        } else {
            None
        }
    }
}

/// Resolves a JSON Pointer on an object without cloning it.
fn pointer<'a>(input: &'a Map<String, Value>, pointer: &str) -> Option<&'a Value> {
    let mut tokens = pointer.split('/').skip(1);
    let first = unescape(tokens.next()?);
    let rest: String = tokens.map(|t| format!("/{t}")).collect();
    let value = input.get(&first)?;
    if rest.is_empty() {
        Some(value)
    } else {
        value.pointer(&rest)
    }
}

/// Undoes RFC 6901 escaping of one pointer token.
fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// JSON equality, except that numbers compare by value: `1` from a TOML
/// integer and `1.0` from a guest's float are the same number to an operator.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
                (Some(x), Some(y), _, _) => x == y,
                (_, _, Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// What to do with a pending step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Some upstream step is not terminal yet.
    Wait,
    /// Run it.
    Run,
    /// Skip it: its rule or condition says no, or an upstream step was
    /// cancelled.
    Skip,
}

/// Decides a step from its rule, its optional condition, the states of its
/// direct upstream steps and its merged input (see the module docs).
pub fn evaluate(
    rule: TriggerRule,
    condition: Option<&Condition>,
    upstream: &[StepState],
    input: &Map<String, Value>,
) -> Decision {
    if !upstream.iter().all(|s| s.is_final()) {
        return Decision::Wait;
    }
    if upstream.contains(&StepState::Cancelled) {
        return Decision::Skip;
    }
    let any = |state| upstream.contains(&state);
    let run = upstream.is_empty()
        || match rule {
            TriggerRule::AllSucceeded => upstream.iter().all(|&s| s == StepState::Succeeded),
            TriggerRule::AllDone => true,
            TriggerRule::AnyFailed => any(StepState::Failed),
            TriggerRule::AnySucceeded => any(StepState::Succeeded),
        };
    if run && condition.is_none_or(|c| c.holds(input)) {
        Decision::Run
    } else {
        Decision::Skip
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StepState::*;
    use TriggerRule::*;
    use serde_json::json;

    fn decide(rule: TriggerRule, upstream: &[StepState]) -> Decision {
        evaluate(rule, None, upstream, &Map::new())
    }

    #[test]
    fn waits_until_every_upstream_is_terminal() {
        for rule in [AllSucceeded, AllDone, AnyFailed, AnySucceeded] {
            for waiting in [Pending, Ready, Running] {
                assert_eq!(decide(rule, &[Failed, Succeeded, waiting]), Decision::Wait);
            }
        }
    }

    #[test]
    fn all_succeeded() {
        assert_eq!(decide(AllSucceeded, &[Succeeded, Succeeded]), Decision::Run);
        assert_eq!(decide(AllSucceeded, &[Succeeded, Failed]), Decision::Skip);
        assert_eq!(decide(AllSucceeded, &[Succeeded, Skipped]), Decision::Skip);
        assert_eq!(decide(AllSucceeded, &[]), Decision::Run);
    }

    #[test]
    fn all_done() {
        assert_eq!(
            decide(AllDone, &[Succeeded, Failed, Skipped]),
            Decision::Run
        );
        assert_eq!(decide(AllDone, &[Skipped]), Decision::Run);
    }

    #[test]
    fn any_failed() {
        assert_eq!(decide(AnyFailed, &[Succeeded, Failed]), Decision::Run);
        assert_eq!(decide(AnyFailed, &[Succeeded, Skipped]), Decision::Skip);
        assert_eq!(decide(AnyFailed, &[Skipped]), Decision::Skip);
    }

    #[test]
    fn any_succeeded() {
        assert_eq!(decide(AnySucceeded, &[Failed, Succeeded]), Decision::Run);
        assert_eq!(decide(AnySucceeded, &[Failed, Skipped]), Decision::Skip);
    }

    #[test]
    fn cancelled_upstream_skips_whatever_the_rule() {
        for rule in [AllSucceeded, AllDone, AnyFailed, AnySucceeded] {
            assert_eq!(
                decide(rule, &[Failed, Succeeded, Cancelled]),
                Decision::Skip
            );
        }
    }

    #[test]
    fn condition_is_tested_only_when_the_rule_says_run() {
        let input = json!({"total": 3}).as_object().cloned().unwrap();
        let yes = Condition::equals("total", 3.0);
        let no = Condition::equals("total", 4);
        assert_eq!(
            evaluate(AllSucceeded, Some(&yes), &[Succeeded], &input),
            Decision::Run
        );
        assert_eq!(
            evaluate(AllSucceeded, Some(&no), &[Succeeded], &input),
            Decision::Skip
        );
        assert_eq!(
            evaluate(AllSucceeded, Some(&yes), &[Failed], &input),
            Decision::Skip
        );
        assert_eq!(
            evaluate(AllSucceeded, Some(&yes), &[Running], &input),
            Decision::Wait
        );
    }

    #[test]
    fn condition_ops() {
        let input = json!({"a": null, "n": {"x/y": [1, 2]}, "s": "on"})
            .as_object()
            .cloned()
            .unwrap();
        assert!(Condition::exists("a").holds(&input));
        assert!(!Condition::exists("b").holds(&input));
        assert!(Condition::missing("b").holds(&input));
        assert!(Condition::equals("s", "on").holds(&input));
        assert!(!Condition::equals("b", Value::Null).holds(&input));
        assert!(Condition::equals("a", Value::Null).holds(&input));
        assert!(Condition::not_equals("s", "off").holds(&input));
        assert!(Condition::not_equals("b", 1).holds(&input));
        assert!(!Condition::not_equals("s", "on").holds(&input));
        assert!(Condition::equals("/n/x~1y/1", 2).holds(&input));
        assert!(Condition::equals("/n", json!({"x/y": [1.0, 2]})).holds(&input));
        assert!(Condition::exists("/n/x~1y").holds(&input));
        assert!(!Condition::exists("/n/zz").holds(&input));
        assert!(Condition::exists("").problem().is_some());
    }

    #[test]
    fn states_round_trip_their_names() {
        for state in StepState::ALL {
            assert_eq!(state.as_str().parse::<StepState>(), Ok(state));
            assert_eq!(serde_json::to_value(state).unwrap(), json!(state.as_str()));
        }
        assert!("done".parse::<StepState>().is_err());
    }
}
