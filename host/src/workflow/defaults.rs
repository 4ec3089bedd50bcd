//! Workflow-wide defaults and how a step's effective settings are resolved.
//!
//! | setting | 1st: the step | 2nd: `[defaults]` | 3rd: the task's `describe` | last |
//! |---|---|---|---|---|
//! | retry | `retry` | `retry` | `max_attempts` with [`RetryPolicy::DEFAULT_BACKOFF`] | one attempt |
//! | timeout | `timeout` | `timeout` | default timeout | the operator's [`Limits`] |
//! | memory | `memory` | `memory` | — | the operator's [`Limits`] |
//! | grants | added to the defaults: a step's directory replaces a default one with the same guest path, a step's variable a default one with the same name | | — | nothing |

use std::time::Duration;

use super::model::{Step, Workflow};
use super::retry::RetryPolicy;
use crate::sandbox::{Grants, Limits};

/// Settings for every step that does not set its own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Defaults {
    /// Retry policy.
    pub retry: Option<RetryPolicy>,
    /// Timeout of one attempt.
    pub timeout: Option<Duration>,
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// Grants every step gets (steps add to them).
    pub grants: Grants,
}

impl Defaults {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What a plugin's `describe` suggests for one task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskDefaults {
    /// Suggested timeout of one attempt.
    pub timeout: Option<Duration>,
    /// Suggested number of attempts.
    pub max_attempts: Option<u32>,
}

/// Everything the executor needs to attempt one step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSettings {
    /// The effective retry policy.
    pub retry: RetryPolicy,
    /// The operator's limits with the timeout and memory overridden.
    pub limits: Limits,
    /// Defaults' grants plus the step's.
    pub grants: Grants,
}

impl Workflow {
    /// The effective settings of `step` (see the module table). `operator`
    /// holds the host's limits, used for whatever nobody else set.
    pub fn settings(&self, step: &Step, task: TaskDefaults, operator: &Limits) -> StepSettings {
        let d = &self.defaults;
        let retry = step
            .retry
            .or(d.retry)
            .or(task
                .max_attempts
                .filter(|&n| n > 0)
                .map(RetryPolicy::attempts))
            .unwrap_or_default();
        let mut limits = operator.clone();
        if let Some(timeout) = step.timeout.or(d.timeout).or(task.timeout) {
            limits.timeout = timeout;
        }
        if let Some(memory) = step.memory.or(d.memory) {
            limits.memory_bytes = memory;
        }
        StepSettings {
            retry,
            limits,
            grants: merge_grants(&d.grants, &step.grants),
        }
    }
}

/// `base` overlaid with `over`, keyed by guest path and variable name.
fn merge_grants(base: &Grants, over: &Grants) -> Grants {
    let mut dirs: Vec<_> = base
        .dirs
        .iter()
        .filter(|b| over.dirs.iter().all(|o| o.guest != b.guest))
        .cloned()
        .collect();
    dirs.extend(over.dirs.iter().cloned());
    dirs.sort_by(|a, b| a.guest.cmp(&b.guest));
    let mut env = base.env.clone();
    env.extend(over.env.clone());
    Grants { dirs, env }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::DirGrant;

    #[test]
    fn step_beats_defaults_beats_task_beats_operator() {
        let defaults = Defaults {
            retry: Some(RetryPolicy::attempts(2)),
            timeout: Some(Duration::from_secs(20)),
            memory: Some(32 << 20),
            grants: Grants {
                dirs: vec![
                    DirGrant::read_only("/d/data", "/data"),
                    DirGrant::read_only("/d/out", "/out"),
                ],
                env: [("TZ".into(), "UTC".into()), ("A".into(), "1".into())].into(),
            },
        };
        let wf = Workflow::builder("w")
            .defaults(defaults)
            .step(
                Step::new("a", "p/t")
                    .timeout(Duration::from_secs(5))
                    .dir(DirGrant::writable("/s/out", "/out"))
                    .env("A", "2"),
            )
            .step(Step::new("b", "p/t").retry(RetryPolicy::none()))
            .build()
            .unwrap();
        let task = TaskDefaults {
            timeout: Some(Duration::from_secs(99)),
            max_attempts: Some(7),
        };
        let op = Limits::default();
        let a = wf.settings(wf.step("a").unwrap(), task, &op);
        assert_eq!(a.retry, RetryPolicy::attempts(2));
        assert_eq!(a.limits.timeout, Duration::from_secs(5));
        assert_eq!(a.limits.memory_bytes, 32 << 20);
        assert_eq!(a.limits.max_output_bytes, op.max_output_bytes);
        assert_eq!(
            a.grants.dirs,
            [
                DirGrant::read_only("/d/data", "/data"),
                DirGrant::writable("/s/out", "/out")
            ]
        );
        assert_eq!(a.grants.env["A"], "2");
        assert_eq!(a.grants.env["TZ"], "UTC");
        let b = wf.settings(wf.step("b").unwrap(), task, &op);
        assert_eq!(b.retry, RetryPolicy::none());
        assert_eq!(b.limits.timeout, Duration::from_secs(20));
    }

    #[test]
    fn falls_back_to_task_then_operator() {
        let wf = Workflow::builder("w")
            .step(Step::new("a", "p/t"))
            .build()
            .unwrap();
        let step = wf.step("a").unwrap();
        let op = Limits::default();
        let task = TaskDefaults {
            timeout: Some(Duration::from_secs(30)),
            max_attempts: Some(3),
        };
        let s = wf.settings(step, task, &op);
        assert_eq!(s.retry, RetryPolicy::attempts(3));
        assert_eq!(s.limits.timeout, Duration::from_secs(30));
        let s = wf.settings(step, TaskDefaults::default(), &op);
        assert_eq!(s.retry, RetryPolicy::none());
        assert_eq!(s.limits, op);
        assert_eq!(s.grants, Grants::default());
    }
}
