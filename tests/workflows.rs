//! The workflow engine through the library (`corral::Runner`), with the real
//! plugins and a real SQLite file per test: context flow, concurrency,
//! retries, trigger rules, conditions, cancel, validation, versions.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{artifacts, eventually, runner_builder, setup};
use corral::store::{
    Applied, AttemptRecord, ExecutionFilter, ExecutionStatus, Object, TaskRunStatus,
};
use corral::workflow::{Condition, Defaults, RetryPolicy, Step, TriggerRule};
use corral::{ExecutionHandle, ExecutionReport, Runner, RunnerBuilder, RunnerError, StepReport};
use corral::{Workflow, workflow::WorkflowError};
use serde_json::{Value, json};

/// Hang guard for executions that should end quickly.
const FINISH_WITHIN: Duration = Duration::from_secs(30);

/// A runner on a fresh SQLite file with the test plugins registered and
/// `workflow` applied. Keep the directory alive as long as the runner.
async fn start(workflow: &str) -> (tempfile::TempDir, Runner) {
    start_with(workflow, |b| b).await
}

async fn start_with(
    workflow: &str,
    configure: impl FnOnce(RunnerBuilder) -> RunnerBuilder,
) -> (tempfile::TempDir, Runner) {
    let dir = tempfile::tempdir().unwrap();
    let runner = configure(runner_builder(&dir.path().join("corral.db")))
        .build()
        .await
        .expect("runner builds");
    setup(&runner, workflow).await;
    (dir, runner)
}

async fn apply(runner: &Runner, toml: &str) -> Applied {
    let workflow = Workflow::from_toml(toml, None).expect("workflow parses");
    runner
        .apply_workflow(&workflow)
        .await
        .expect("workflow applies")
}

async fn finish(handle: &ExecutionHandle) -> ExecutionReport {
    tokio::time::timeout(FINISH_WITHIN, handle.wait())
        .await
        .unwrap_or_else(|_| panic!("execution {} did not end within 30 s", handle.id()))
        .expect("wait succeeds")
}

async fn run(runner: &Runner, workflow: &str, input: Value) -> ExecutionReport {
    let handle = runner.execute(workflow, input).await.expect("execute");
    finish(&handle).await
}

fn step<'a>(report: &'a ExecutionReport, id: &str) -> &'a StepReport {
    report
        .steps
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no step `{id}` in {report:#?}"))
}

fn statuses(report: &ExecutionReport) -> BTreeMap<&str, TaskRunStatus> {
    report
        .steps
        .iter()
        .map(|s| (s.id.as_str(), s.status))
        .collect()
}

fn output(report: &ExecutionReport, id: &str) -> Value {
    Value::Object(
        step(report, id)
            .output
            .clone()
            .unwrap_or_else(|| panic!("step `{id}` has no output: {report:#?}")),
    )
}

fn obj(value: Value) -> Object {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

async fn attempts_of(runner: &Runner, id: &str, step: &str) -> Vec<AttemptRecord> {
    runner.attempts(id, Some(step)).await.expect("attempts")
}

async fn workflow_versions(runner: &Runner) -> Vec<(String, String)> {
    runner
        .store()
        .list_workflows()
        .await
        .unwrap()
        .into_iter()
        .map(|w| (w.name, w.version))
        .collect()
}

// ---------------------------------------------------------------------------
// 1. Context flow

/// `alpha` sorts before `zed` by id but comes after it topologically (it
/// depends on it): the join must see `alpha`'s values win over `zed`'s.
const FAN: &str = r#"
name = "fan"

[[steps]]
id = "root"
task = "chaos/echo"
input = { k = "root", from_root = true }

[[steps]]
id = "b"
task = "chaos/echo"
depends_on = ["root"]
input = { k = "b", bc = "b", s = "b", only_b = true }

[[steps]]
id = "c"
task = "chaos/echo"
depends_on = ["root"]
input = { k = "c", bc = "c", only_c = true }

[[steps]]
id = "zed"
task = "chaos/echo"
depends_on = ["root"]
input = { k = "zed", t = "zed" }

[[steps]]
id = "alpha"
task = "chaos/echo"
depends_on = ["zed"]
input = { k = "alpha", t = "alpha" }

[[steps]]
id = "join"
task = "chaos/echo"
depends_on = ["zed", "c", "alpha", "b"]
input = { s = "static", joined = true }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_submissions_each_run_once_with_their_own_input() {
    // Submissions arriving together are stored in shared transactions;
    // each must still be its own execution with its own input and result.
    let (_dir, runner) = start(FAN).await;
    let runner = std::sync::Arc::new(runner);
    let mut submits = tokio::task::JoinSet::new();
    for i in 0..40 {
        let runner = runner.clone();
        submits.spawn(async move {
            let input = json!({"k": i, "s": "x", "e": "x", "t": "x"});
            let handle = runner.execute("fan", input).await.expect("execute");
            (i, finish(&handle).await)
        });
    }
    let mut ids = std::collections::BTreeSet::new();
    while let Some(joined) = submits.join_next().await {
        let (i, report) = joined.expect("submit task");
        assert_eq!(report.status, ExecutionStatus::Succeeded, "{report:#?}");
        let stored = runner.store().execution(&report.id).await.unwrap();
        let input = stored.expect("stored").execution.input;
        assert_eq!(input.get("k"), Some(&json!(i)), "{input:?}");
        ids.insert(report.id);
    }
    assert_eq!(ids.len(), 40, "40 distinct executions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fan_out_and_fan_in_merge_inputs_in_the_documented_order() {
    let (_dir, runner) = start(FAN).await;
    let input = json!({"k": "exec", "s": "exec", "e": "exec", "t": "exec"});
    let handle = runner.execute("fan", input).await.unwrap();
    let report = finish(&handle).await;
    assert_eq!(report.status, ExecutionStatus::Succeeded, "{report:#?}");
    assert!(
        report
            .steps
            .iter()
            .all(|s| s.status == TaskRunStatus::Succeeded && s.attempts == 1),
        "{report:#?}"
    );

    // A fanned-out step: execution input, then root's output, then its own
    // static input.
    assert_eq!(
        output(&report, "b"),
        json!({"k": "b", "s": "b", "e": "exec", "t": "exec", "from_root": true,
               "bc": "b", "only_b": true})
    );
    // The join: execution input, then b, c, zed, alpha (topological order,
    // ties by id), then its static input. Later layers win.
    let expected_join = json!({
        "k": "alpha",        // alpha is the last upstream step
        "bc": "c",           // c after b (same depth, by id)
        "t": "alpha",        // alpha after zed, although "alpha" < "zed"
        "s": "static",       // the static input beats every upstream output
        "e": "exec",         // only the execution input had it (forwarded)
        "from_root": true,   // forwarded by the echo steps
        "only_b": true,
        "only_c": true,
        "joined": true,
    });
    assert_eq!(output(&report, "join"), expected_join);

    // The stored input of the join is what it was given.
    let snapshot = runner
        .store()
        .execution(handle.id())
        .await
        .unwrap()
        .unwrap();
    let join = snapshot.runs.iter().find(|r| r.step_id == "join").unwrap();
    assert_eq!(join.input.clone().map(Value::Object), Some(expected_join));
    let alpha = snapshot.runs.iter().find(|r| r.step_id == "alpha").unwrap();
    // Only direct upstream outputs are merged: alpha sees zed (which
    // forwarded root's values), then its static input.
    assert_eq!(
        alpha.input.clone().map(Value::Object),
        Some(json!({"k": "alpha", "s": "exec", "e": "exec", "t": "alpha", "from_root": true}))
    );

    // The execution's result is the output of its only sink, the join.
    assert_eq!(
        Value::Object(report.output.clone()),
        output(&report, "join")
    );
    // The progress watch ends with the final states.
    let progress = handle.progress().borrow().clone();
    assert_eq!(progress.status, ExecutionStatus::Succeeded);
    assert!(
        progress
            .steps
            .values()
            .all(|s| *s == TaskRunStatus::Succeeded),
        "{progress:?}"
    );

    // With several sinks, the result merges their outputs in topological
    // order: `a_sink` (after `c_mid`) wins over `b_sink` despite its id.
    apply(&runner, SINKS).await;
    let report = run(&runner, "sinks", json!({"r": "exec"})).await;
    assert_eq!(report.status, ExecutionStatus::Succeeded, "{report:#?}");
    assert_eq!(report.output["r"], "a");
    assert_eq!(report.output["only_b"], true);
    assert_eq!(report.output.get("only_mid"), Some(&json!(true)));
    runner.shutdown(Duration::from_secs(5)).await;
}

const SINKS: &str = r#"
name = "sinks"
[[steps]]
id = "root"
task = "chaos/echo"
[[steps]]
id = "b_sink"
task = "chaos/echo"
depends_on = ["root"]
input = { r = "b", only_b = true }
[[steps]]
id = "c_mid"
task = "chaos/echo"
depends_on = ["root"]
input = { r = "mid", only_mid = true }
[[steps]]
id = "a_sink"
task = "chaos/echo"
depends_on = ["c_mid"]
input = { r = "a" }
"#;

// ---------------------------------------------------------------------------
// 2. Concurrency

const SIX_BURNS: &str = r#"
name = "six_burns"
[defaults]
timeout = "30s"
[[steps]]
id = "burn1"
task = "chaos/burn"
input = { ms = 300 }
[[steps]]
id = "burn2"
task = "chaos/burn"
input = { ms = 300 }
[[steps]]
id = "burn3"
task = "chaos/burn"
input = { ms = 300 }
[[steps]]
id = "burn4"
task = "chaos/burn"
input = { ms = 300 }
[[steps]]
id = "burn5"
task = "chaos/burn"
input = { ms = 300 }
[[steps]]
id = "burn6"
task = "chaos/burn"
input = { ms = 300 }
"#;

/// The most intervals `[start, end)` that overlap at any instant.
fn max_overlap(intervals: &[(i64, i64)]) -> usize {
    let mut events: Vec<(i64, i32)> = intervals
        .iter()
        .flat_map(|&(start, end)| [(start, 1), (end, -1)])
        .collect();
    // Ends before starts at the same instant: half-open intervals.
    events.sort();
    let (mut now, mut max) = (0i32, 0i32);
    for (_, delta) in events {
        now += delta;
        max = max.max(now);
    }
    usize::try_from(max).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_submitter_that_stops_waiting_does_not_fail_the_others() {
    // Submissions share transactions; one whose caller gives up (its
    // future dropped mid-commit) must not take the others' answers along.
    let (_dir, runner) = start(FAN).await;
    let runner = std::sync::Arc::new(runner);
    for round in 0..30 {
        let (mut kept, mut abandoned) = (tokio::task::JoinSet::new(), tokio::task::JoinSet::new());
        for i in 0..20 {
            let runner = runner.clone();
            let submit = async move {
                let input = json!({"k": i, "s": "x", "e": "x", "t": "x"});
                runner
                    .execute("fan", input)
                    .await
                    .map(|h| h.id().to_owned())
            };
            if i % 2 == 0 {
                kept.spawn(submit);
            } else {
                abandoned.spawn(submit);
            }
        }
        tokio::time::sleep(Duration::from_micros(100 * round)).await;
        abandoned.abort_all();
        while let Some(joined) = kept.join_next().await {
            joined
                .expect("submit task")
                .expect("a kept submission is stored");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_free_slot_is_filled_when_long_attempts_hold_the_others() {
    // Claims batch up while the queue has more than the runner can take;
    // the last few ready steps must still be claimed although the long
    // attempts in flight never free a batch's worth of slots.
    let toml: String = (0..10)
        .map(|i| {
            format!(
                "[[steps]]\nid = \"s{i}\"\ntask = \"chaos/sleep\"\ninput = {{ seconds = 60 }}\n"
            )
        })
        .collect();
    let toml = format!("name = \"ten_sleeps\"\n{toml}");
    let (_dir, runner) = start_with(&toml, |b| b.concurrency(10).claim_batch(4)).await;
    let handle = runner.execute("ten_sleeps", json!({})).await.unwrap();
    eventually(
        Duration::from_secs(10),
        "all 10 steps running",
        async || runner.attempts_in_flight() == 10,
    )
    .await;
    handle.cancel().await.unwrap();
    runner.shutdown(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_limit_bounds_the_attempts_in_flight() {
    let (_dir, runner) = start_with(SIX_BURNS, |b| b.concurrency(2)).await;
    let handle = runner.execute("six_burns", json!({})).await.unwrap();
    let mut most_in_flight = 0;
    let wait = handle.wait();
    tokio::pin!(wait);
    let report = tokio::time::timeout(FINISH_WITHIN, async {
        loop {
            tokio::select! {
                report = &mut wait => break report.unwrap(),
                () = tokio::time::sleep(Duration::from_millis(5)) => {
                    most_in_flight = most_in_flight.max(runner.attempts_in_flight());
                }
            }
        }
    })
    .await
    .expect("six burns end within 30 s");

    assert_eq!(report.status, ExecutionStatus::Succeeded, "{report:#?}");
    assert!(
        report
            .steps
            .iter()
            .all(|s| s.status == TaskRunStatus::Succeeded && s.attempts == 1),
        "{report:#?}"
    );
    assert!(
        most_in_flight <= 2,
        "{most_in_flight} attempts in flight with concurrency 2"
    );
    assert_eq!(most_in_flight, 2, "the two slots were never used at once");

    let attempts = runner.attempts(handle.id(), None).await.unwrap();
    assert_eq!(attempts.len(), 6, "{attempts:#?}");
    let intervals: Vec<(i64, i64)> = attempts
        .iter()
        .map(|a| (a.started_at_ms, a.finished_at_ms.expect("attempt finished")))
        .collect();
    assert!(
        intervals.iter().all(|(start, end)| start <= end),
        "{intervals:?}"
    );
    let overlap = max_overlap(&intervals);
    assert!(
        overlap <= 2,
        "{overlap} attempts overlapped with concurrency 2: {intervals:?}"
    );
    runner.shutdown(Duration::from_secs(5)).await;
}

// ---------------------------------------------------------------------------
// 3. Retries and timeouts

const RETRYABLE: &str = r#"
name = "retryable"
[[steps]]
id = "flaky"
task = "chaos/fail_retryable"
retry = { max_attempts = 3, delay = "10ms" }
[[steps]]
id = "after"
task = "chaos/echo"
depends_on = ["flaky"]
"#;

const PERMANENT: &str = r#"
name = "permanent"
[[steps]]
id = "broken"
task = "chaos/fail_permanent"
retry = { max_attempts = 3, delay = "10ms" }
"#;

const SLOW: &str = r#"
name = "slow"
[[steps]]
id = "nap"
task = "chaos/sleep"
input = { seconds = 5 }
timeout = "100ms"
retry = { max_attempts = 2, delay = "10ms" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_follow_the_policy_and_the_failure_kind() {
    let (_dir, runner) = start(RETRYABLE).await;
    apply(&runner, PERMANENT).await;
    apply(&runner, SLOW).await;
    let retryable = runner.execute("retryable", json!({})).await.unwrap();
    let permanent = runner.execute("permanent", json!({})).await.unwrap();
    let slow = runner.execute("slow", json!({})).await.unwrap();

    // A retryable error: every attempt of the policy is used.
    let report = finish(&retryable).await;
    assert_eq!(report.status, ExecutionStatus::Failed, "{report:#?}");
    let flaky = step(&report, "flaky");
    assert_eq!(flaky.status, TaskRunStatus::Failed);
    assert_eq!(flaky.attempts, 3);
    assert!(
        flaky
            .error
            .as_deref()
            .is_some_and(|e| e.contains("chaos: transient failure")),
        "{flaky:?}"
    );
    let attempts = attempts_of(&runner, retryable.id(), "flaky").await;
    assert_eq!(
        attempts.iter().map(|a| a.number).collect::<Vec<_>>(),
        [1, 2, 3],
        "{attempts:#?}"
    );
    assert!(
        attempts
            .iter()
            .all(|a| a.outcome.as_deref() == Some("failed")
                && a.error.as_deref().is_some_and(|e| e.contains("transient"))
                && a.finished_at_ms.is_some()),
        "{attempts:#?}"
    );
    // Retries waited for their backoff after the previous attempt ended.
    for pair in attempts.windows(2) {
        assert!(
            pair[1].started_at_ms >= pair[0].finished_at_ms.unwrap() + 10,
            "retry before its 10 ms backoff: {attempts:#?}"
        );
    }
    assert_eq!(step(&report, "after").status, TaskRunStatus::Skipped);
    let error = report.error.as_deref().unwrap_or_default();
    assert!(error.contains("`flaky`"), "{error}");

    // A permanent error is not retried.
    let report = finish(&permanent).await;
    assert_eq!(report.status, ExecutionStatus::Failed, "{report:#?}");
    let broken = step(&report, "broken");
    assert_eq!((broken.status, broken.attempts), (TaskRunStatus::Failed, 1));
    let attempts = attempts_of(&runner, permanent.id(), "broken").await;
    assert_eq!(attempts.len(), 1, "{attempts:#?}");
    assert_eq!(attempts[0].outcome.as_deref(), Some("failed"));
    let error = report.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("`broken`") && error.contains("chaos: permanent failure"),
        "{error}"
    );

    // Timeouts are retryable: both attempts used, both timed out.
    let report = finish(&slow).await;
    assert_eq!(report.status, ExecutionStatus::Failed, "{report:#?}");
    let nap = step(&report, "nap");
    assert_eq!((nap.status, nap.attempts), (TaskRunStatus::Failed, 2));
    let attempts = attempts_of(&runner, slow.id(), "nap").await;
    assert_eq!(
        attempts
            .iter()
            .map(|a| a.outcome.as_deref())
            .collect::<Vec<_>>(),
        [Some("timed_out"), Some("timed_out")],
        "{attempts:#?}"
    );
    let error = report.error.as_deref().unwrap_or_default();
    assert!(error.contains("`nap`"), "{error}");
    assert_eq!(runner.attempts_in_flight(), 0);
    runner.shutdown(Duration::from_secs(5)).await;
}

// ---------------------------------------------------------------------------
// 4. Trigger rules and conditions

const RULES: &str = r#"
name = "rules"

[[steps]]
id = "boom"
task = "chaos/fail_permanent"

[[steps]]
id = "on_failure"
task = "chaos/echo"
depends_on = ["boom"]
trigger = "any_failed"
input = { handled = true }

[[steps]]
id = "after_ok"
task = "chaos/echo"
depends_on = ["boom"]

[[steps]]
id = "chained"
task = "chaos/echo"
depends_on = ["after_ok"]

[[steps]]
id = "chained_done"
task = "chaos/echo"
depends_on = ["chained"]
trigger = "all_done"
input = { finally = true }

[[steps]]
id = "cleanup"
task = "chaos/echo"
depends_on = ["boom"]
trigger = "all_done"
input = { cleaned = true }

[[steps]]
id = "any_ok"
task = "chaos/echo"
depends_on = ["boom", "cleanup"]
trigger = "any_succeeded"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trigger_rules_decide_and_skips_propagate() {
    let (_dir, runner) = start(RULES).await;
    let handle = runner.execute("rules", json!({})).await.unwrap();
    let report = finish(&handle).await;

    use TaskRunStatus::{Failed, Skipped, Succeeded};
    assert_eq!(
        statuses(&report),
        BTreeMap::from([
            ("boom", Failed),
            ("on_failure", Succeeded),
            ("after_ok", Skipped),
            ("chained", Skipped),
            ("chained_done", Succeeded),
            ("cleanup", Succeeded),
            ("any_ok", Succeeded),
        ]),
        "{report:#?}"
    );
    // The handler succeeded, yet a step failed: the execution failed, and
    // says which step.
    assert_eq!(report.status, ExecutionStatus::Failed);
    let error = report.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("`boom`") && error.contains("chaos: permanent failure"),
        "{error}"
    );
    // Skipped steps never ran.
    for skipped in ["after_ok", "chained"] {
        assert_eq!(step(&report, skipped).attempts, 0);
        assert!(attempts_of(&runner, handle.id(), skipped).await.is_empty());
    }
    assert_eq!(output(&report, "on_failure")["handled"], true);
    assert_eq!(output(&report, "any_ok")["cleaned"], true);
    // The result merges the succeeded sinks.
    assert_eq!(report.output.get("handled"), Some(&json!(true)));
    assert_eq!(report.output.get("finally"), Some(&json!(true)));
    assert_eq!(report.output.get("cleaned"), Some(&json!(true)));
    runner.shutdown(Duration::from_secs(5)).await;
}

const CONDITIONS: &str = r#"
name = "conditions"

[[steps]]
id = "gated_root"
task = "chaos/echo"
condition = { key = "flag", equals = true }

[[steps]]
id = "first"
task = "chaos/echo"
input = { nested = { deep = 1 } }

[[steps]]
id = "gated"
task = "chaos/echo"
depends_on = ["first"]
condition = { key = "flag", equals = true }

[[steps]]
id = "after_gated"
task = "chaos/echo"
depends_on = ["gated"]

[[steps]]
id = "present"
task = "chaos/echo"
depends_on = ["first"]
condition = { key = "flag", exists = true }

[[steps]]
id = "absent"
task = "chaos/echo"
depends_on = ["first"]
condition = { key = "no_such_key", exists = true }

[[steps]]
id = "pointer"
task = "chaos/echo"
depends_on = ["first"]
condition = { key = "/nested/deep", equals = 1 }

[[steps]]
id = "not_flag"
task = "chaos/echo"
depends_on = ["first"]
condition = { key = "flag", not_equals = true }

[[steps]]
id = "missing"
task = "chaos/echo"
depends_on = ["first"]
condition = { key = "no_such_key", exists = false }
"#;

const NOTHING_TO_DO: &str = r#"
name = "nothing_to_do"
[[steps]]
id = "only"
task = "chaos/echo"
condition = { key = "flag", equals = true }
[[steps]]
id = "below"
task = "chaos/echo"
depends_on = ["only"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conditions_skip_steps_and_skips_alone_still_succeed() {
    let (_dir, runner) = start(CONDITIONS).await;
    apply(&runner, NOTHING_TO_DO).await;

    use TaskRunStatus::{Skipped, Succeeded};
    let report = run(&runner, "conditions", json!({"flag": false})).await;
    assert_eq!(
        statuses(&report),
        BTreeMap::from([
            ("gated_root", Skipped),
            ("first", Succeeded),
            ("gated", Skipped),
            ("after_gated", Skipped),
            ("present", Succeeded),
            ("absent", Skipped),
            ("pointer", Succeeded),
            ("not_flag", Succeeded),
            ("missing", Succeeded),
        ]),
        "{report:#?}"
    );
    // Only skips besides successes: the execution succeeded.
    assert_eq!(report.status, ExecutionStatus::Succeeded, "{report:#?}");
    assert_eq!(report.error, None);

    let report = run(&runner, "conditions", json!({"flag": true})).await;
    assert_eq!(report.status, ExecutionStatus::Succeeded, "{report:#?}");
    for id in ["gated_root", "gated", "after_gated", "present", "pointer"] {
        assert_eq!(step(&report, id).status, Succeeded, "{report:#?}");
    }
    assert_eq!(step(&report, "absent").status, Skipped);
    assert_eq!(step(&report, "not_flag").status, Skipped);

    // Every step skipped: the execution succeeds at once, nothing ran.
    let handle = runner
        .execute("nothing_to_do", json!({"flag": false}))
        .await
        .unwrap();
    let report = finish(&handle).await;
    assert_eq!(report.status, ExecutionStatus::Succeeded, "{report:#?}");
    assert_eq!(
        statuses(&report),
        BTreeMap::from([("only", Skipped), ("below", Skipped)])
    );
    assert!(runner.attempts(handle.id(), None).await.unwrap().is_empty());
    assert!(report.output.is_empty(), "{report:#?}");
    runner.shutdown(Duration::from_secs(5)).await;
}

// ---------------------------------------------------------------------------
// 5. Cancel

const SPIN_THEN_ECHO: &str = r#"
name = "spin_then_echo"
[[steps]]
id = "spin"
task = "chaos/spin"
timeout = "60s"
[[steps]]
id = "after"
task = "chaos/echo"
depends_on = ["spin"]
[[steps]]
id = "finally"
task = "chaos/echo"
depends_on = ["after"]
trigger = "all_done"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_halts_the_running_attempt_and_cancels_the_rest() {
    let (_dir, runner) = start(SPIN_THEN_ECHO).await;
    let handle = runner.execute("spin_then_echo", json!({})).await.unwrap();
    eventually(
        Duration::from_secs(20),
        "the spin attempt runs",
        async || runner.attempts_in_flight() == 1,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    handle.cancel().await.expect("cancel");

    let report = tokio::time::timeout(Duration::from_secs(2), handle.wait())
        .await
        .expect("cancelled within 2 s")
        .unwrap();
    assert_eq!(report.status, ExecutionStatus::Cancelled, "{report:#?}");
    use TaskRunStatus::Cancelled;
    assert_eq!(
        statuses(&report),
        BTreeMap::from([
            ("spin", Cancelled),
            ("after", Cancelled),
            ("finally", Cancelled)
        ]),
        "cancellation travels down the graph, even under all_done: {report:#?}"
    );
    eventually(Duration::from_secs(1), "no guest in flight", async || {
        runner.attempts_in_flight() == 0
    })
    .await;
    let attempts = runner.attempts(handle.id(), None).await.unwrap();
    assert_eq!(attempts.len(), 1, "{attempts:#?}");
    assert_eq!(attempts[0].step_id, "spin");
    assert_eq!(attempts[0].outcome.as_deref(), Some("cancelled"));
    assert!(attempts[0].finished_at_ms.is_some());
    // The progress watch saw the end too.
    let mut progress = handle.progress();
    eventually(
        Duration::from_secs(1),
        "progress shows cancelled",
        async || progress.borrow_and_update().status == ExecutionStatus::Cancelled,
    )
    .await;
    // The record agrees.
    let records = runner
        .list_executions(&ExecutionFilter::default())
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, ExecutionStatus::Cancelled);
    assert!(records[0].cancel_requested);
    assert!(records[0].finished_at_ms.is_some());
    runner.shutdown(Duration::from_secs(5)).await;
}

const ECHO: &str = r#"
name = "echo"
[[steps]]
id = "echo"
task = "chaos/echo"
input = { said = "hi" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn executions_come_in_pages_that_say_where_the_next_starts() {
    let (_dir, runner) = start(ECHO).await;
    let mut submitted = Vec::new();
    for _ in 0..5 {
        let handle = runner.execute("echo", json!({})).await.unwrap();
        submitted.push(handle.id().to_owned());
    }
    let mut seen = Vec::new();
    let mut filter = ExecutionFilter {
        limit: Some(2),
        ..Default::default()
    };
    let mut pages = 0;
    loop {
        let page = runner.executions(&filter).await.unwrap();
        pages += 1;
        assert!(page.executions.len() <= 2);
        seen.extend(page.executions.iter().map(|e| e.id.clone()));
        match page.next {
            Some(next) => filter.before = Some(next),
            None => break,
        }
    }
    // Ids are time-ordered (UUIDv7): newest first is the reverse.
    submitted.reverse();
    assert_eq!(seen, submitted);
    assert_eq!(pages, 3, "2 + 2 + 1, and no empty page after a full one");
    // A page exactly full has no next when nothing older exists.
    filter.before = None;
    filter.limit = Some(5);
    assert_eq!(runner.executions(&filter).await.unwrap().next, None);
    // Limits beyond the maximum are cut, not refused.
    filter.limit = Some(u32::MAX);
    assert_eq!(
        runner.executions(&filter).await.unwrap().executions.len(),
        5
    );
    runner.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_of_a_finished_or_unknown_execution() {
    let (_dir, runner) = start(ECHO).await;
    let handle = runner.execute("echo", json!({})).await.unwrap();
    let done = finish(&handle).await;
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    let before = runner
        .list_executions(&ExecutionFilter::default())
        .await
        .unwrap();

    let after_cancel = runner.cancel(handle.id()).await.expect("cancel succeeds");
    assert_eq!(after_cancel, done, "cancel changed a finished execution");
    assert_eq!(runner.status(handle.id()).await.unwrap(), done);
    assert_eq!(
        runner
            .list_executions(&ExecutionFilter::default())
            .await
            .unwrap(),
        before,
        "the record of a finished execution changed"
    );

    match runner.cancel("no-such-execution").await {
        Err(RunnerError::UnknownExecution(id)) => assert_eq!(id, "no-such-execution"),
        other => panic!("expected UnknownExecution, got {other:?}"),
    }
    assert!(matches!(
        runner.status("no-such-execution").await,
        Err(RunnerError::UnknownExecution(_))
    ));
    assert!(matches!(
        runner.attempts("no-such-execution", None).await,
        Err(RunnerError::UnknownExecution(_))
    ));
    // The runner keeps working.
    let again = run(&runner, "echo", json!({})).await;
    assert_eq!(again.status, ExecutionStatus::Succeeded);
    assert_eq!(again.output["said"], "hi");
    runner.shutdown(Duration::from_secs(5)).await;
}

// ---------------------------------------------------------------------------
// 6. Validation and versions

/// Parses and applies `toml`; the error text if either fails.
async fn try_apply(runner: &Runner, toml: &str) -> Result<Applied, String> {
    let workflow = Workflow::from_toml(toml, None).map_err(|e| e.to_string())?;
    runner
        .apply_workflow(&workflow)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_workflows_store_nothing_and_name_the_culprit() {
    let (_dir, runner) = start(ECHO).await;
    let stored = workflow_versions(&runner).await;
    assert_eq!(stored.len(), 1);

    let cases: &[(&str, &str, &[&str])] = &[
        (
            "cycle",
            r#"
            name = "echo"
            [[steps]]
            id = "a"
            task = "chaos/echo"
            depends_on = ["c"]
            [[steps]]
            id = "b"
            task = "chaos/echo"
            depends_on = ["a"]
            [[steps]]
            id = "c"
            task = "chaos/echo"
            depends_on = ["b"]
            [[steps]]
            id = "outside"
            task = "chaos/echo"
            "#,
            &["cycle", "a -> c -> b -> a"],
        ),
        (
            "unknown task",
            r#"
            name = "echo"
            [[steps]]
            id = "greet"
            task = "hello/nope"
            "#,
            &["`greet`", "`nope`", "greet"],
        ),
        (
            "unknown task, new workflow",
            r#"
            name = "fresh"
            [[steps]]
            id = "fine"
            task = "chaos/echo"
            [[steps]]
            id = "bad"
            task = "chaos/no_such_task"
            depends_on = ["fine"]
            "#,
            &["`bad`", "`no_such_task`"],
        ),
        (
            "unknown plugin",
            r#"
            name = "fresh"
            [[steps]]
            id = "greet"
            task = "nope/greet"
            "#,
            &["`greet`", "`nope`"],
        ),
        (
            "unknown dependency",
            r#"
            name = "echo"
            [[steps]]
            id = "a"
            task = "chaos/echo"
            depends_on = ["ghost"]
            "#,
            &["`a`", "`ghost`"],
        ),
        (
            "duplicate ids",
            r#"
            name = "echo"
            [[steps]]
            id = "twice"
            task = "chaos/echo"
            [[steps]]
            id = "twice"
            task = "chaos/noop"
            "#,
            &["`twice`"],
        ),
        (
            "empty",
            r#"
            name = "empty"
            steps = []
            "#,
            &["`empty`", "no steps"],
        ),
        (
            "bad duration",
            r#"
            name = "echo"
            [[steps]]
            id = "slow"
            task = "chaos/echo"
            timeout = "soon"
            "#,
            &["`slow`", "soon"],
        ),
        (
            "bad memory",
            r#"
            name = "echo"
            [[steps]]
            id = "hungry"
            task = "chaos/echo"
            memory = "lots"
            "#,
            &["`hungry`", "lots"],
        ),
        (
            "self dependency",
            r#"
            name = "echo"
            [[steps]]
            id = "narcissus"
            task = "chaos/echo"
            depends_on = ["narcissus"]
            "#,
            &["`narcissus`"],
        ),
        (
            "any_failed without upstream",
            r#"
            name = "echo"
            [[steps]]
            id = "lonely"
            task = "chaos/echo"
            trigger = "any_failed"
            "#,
            &["`lonely`", "any_failed"],
        ),
        (
            "zero attempts",
            r#"
            name = "echo"
            [[steps]]
            id = "never"
            task = "chaos/echo"
            retry = { max_attempts = 0 }
            "#,
            &["`never`", "max_attempts"],
        ),
        (
            "unknown key",
            r#"
            name = "echo"
            [[steps]]
            id = "typo"
            task = "chaos/echo"
            depend_on = ["x"]
            "#,
            &["depend_on", "line"],
        ),
    ];
    for (what, toml, needles) in cases {
        let error = try_apply(&runner, toml)
            .await
            .expect_err(&format!("{what}: accepted"));
        for needle in *needles {
            assert!(
                error.contains(needle),
                "{what}: `{error}` does not name `{needle}`"
            );
        }
        assert_eq!(
            workflow_versions(&runner).await,
            stored,
            "{what}: something was stored"
        );
    }

    // The same checks hold for workflows built in Rust.
    let cycle = Workflow::builder("echo")
        .step(Step::new("x", "chaos/echo").depends_on(["y"]))
        .step(Step::new("y", "chaos/echo").depends_on(["x"]))
        .build();
    match cycle {
        Err(WorkflowError::Cycle(steps)) => assert_eq!(steps, ["x", "y", "x"]),
        other => panic!("expected a cycle error, got {other:?}"),
    }
    let unknown = Workflow::builder("built")
        .step(Step::new("greet", "hello/nope"))
        .build()
        .expect("the structure is fine");
    match runner.apply_workflow(&unknown).await {
        Err(RunnerError::Workflow(WorkflowError::UnknownTask {
            step, plugin, task, ..
        })) => assert_eq!((&*step, &*plugin, &*task), ("greet", "hello", "nope")),
        other => panic!("expected UnknownTask, got {other:?}"),
    }
    assert_eq!(workflow_versions(&runner).await, stored);
    assert!(
        runner
            .store()
            .workflow("fresh", None)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        runner
            .store()
            .workflow("built", None)
            .await
            .unwrap()
            .is_none()
    );
    runner.shutdown(Duration::from_secs(5)).await;
}

const VERSIONED_V1: &str = r#"
name = "versioned"
[[steps]]
id = "nap"
task = "chaos/sleep"
input = { seconds = 1 }
timeout = "10s"
"#;

/// The same content as v1, written differently.
const VERSIONED_V1_REFORMATTED: &str = r#"
# Same workflow, other spelling.
name    = "versioned"

[[steps]]
timeout = "10000ms"   # = 10s
input.seconds = 1
task = "chaos/sleep"
id = "nap"
trigger = "all_succeeded"
"#;

const VERSIONED_V2: &str = r#"
name = "versioned"
[[steps]]
id = "nap"
task = "chaos/sleep"
input = { seconds = 0 }
timeout = "10s"
[[steps]]
id = "extra"
task = "chaos/echo"
depends_on = ["nap"]
input = { v2 = true }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reapplying_is_a_no_op_and_running_executions_keep_their_version() {
    let (_dir, runner) = start(VERSIONED_V1).await;
    let v1 = Workflow::from_toml(VERSIONED_V1, None).unwrap();
    let v1 = v1.version().to_owned();
    assert_eq!(apply(&runner, VERSIONED_V1).await, Applied::Unchanged);
    assert_eq!(
        apply(&runner, VERSIONED_V1_REFORMATTED).await,
        Applied::Unchanged
    );

    let first = runner.execute("versioned", json!({})).await.unwrap();
    eventually(Duration::from_secs(20), "the v1 nap runs", async || {
        runner.attempts_in_flight() == 1
    })
    .await;

    let v2 = Workflow::from_toml(VERSIONED_V2, None).unwrap();
    let v2 = v2.version().to_owned();
    assert_ne!(v1, v2);
    assert_eq!(
        apply(&runner, VERSIONED_V2).await,
        Applied::Updated {
            previous: v1.clone()
        }
    );
    assert_eq!(apply(&runner, VERSIONED_V2).await, Applied::Unchanged);
    let latest = runner.store().workflow("versioned", None).await.unwrap();
    assert_eq!(latest.map(|w| w.version), Some(v2.clone()));
    assert!(
        runner
            .store()
            .workflow("versioned", Some(&v1))
            .await
            .unwrap()
            .is_some(),
        "v1 stays for the execution running it"
    );

    // The execution started on v1 finishes on v1.
    let report = finish(&first).await;
    assert_eq!(report.status, ExecutionStatus::Succeeded, "{report:#?}");
    assert_eq!(report.workflow_version, v1);
    assert_eq!(statuses(&report).into_keys().collect::<Vec<_>>(), ["nap"]);
    let slept = output(&report, "nap")["slept_ms"].as_u64().unwrap();
    assert!(
        slept >= 900,
        "the v1 input (1 s) was used: slept {slept} ms"
    );

    // A new execution runs v2.
    let report = run(&runner, "versioned", json!({})).await;
    assert_eq!(report.status, ExecutionStatus::Succeeded, "{report:#?}");
    assert_eq!(report.workflow_version, v2);
    assert_eq!(
        statuses(&report).into_keys().collect::<Vec<_>>(),
        ["extra", "nap"]
    );
    assert_eq!(report.output["v2"], true);

    // Going back to v1's content is a change again.
    assert_eq!(
        apply(&runner, VERSIONED_V1).await,
        Applied::Updated { previous: v2 }
    );
    runner.shutdown(Duration::from_secs(5)).await;
}

// ---------------------------------------------------------------------------
// 7. Bad executions

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn execute_rejects_unknown_workflows_and_non_object_input() {
    let (_dir, runner) = start(ECHO).await;
    match runner.execute("no_such_workflow", json!({})).await {
        Err(RunnerError::UnknownWorkflow(name)) => assert_eq!(name, "no_such_workflow"),
        other => panic!("expected UnknownWorkflow, got {other:?}"),
    }
    for input in [json!([1, 2]), json!("text"), json!(42), json!(null)] {
        match runner.execute("echo", input.clone()).await {
            Err(RunnerError::InvalidInput(message)) => {
                assert!(message.contains("object"), "{message}")
            }
            other => panic!("input {input}: expected InvalidInput, got {other:?}"),
        }
    }
    assert!(
        runner
            .list_executions(&ExecutionFilter::default())
            .await
            .unwrap()
            .is_empty(),
        "a rejected execution was created"
    );
    runner.shutdown(Duration::from_secs(5)).await;
}

// ---------------------------------------------------------------------------
// 8. The etl workflow

/// Rows and total amount in cents of the sample CSV, computed here.
fn sales_totals(csv: &str) -> (u64, i64) {
    let mut rows = 0;
    let mut cents = 0;
    for line in csv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let amount = line.rsplit(',').next().unwrap().trim();
        let (units, fraction) = amount.split_once('.').unwrap_or((amount, "0"));
        let fraction = format!("{fraction:0<2}");
        cents += units.parse::<i64>().unwrap() * 100 + fraction[..2].parse::<i64>().unwrap();
        rows += 1;
    }
    (rows, cents)
}

/// The repository's etl workflow, copied next to a copy of its data and
/// an empty `out/`, so that its relative grants resolve there.
fn etl_copy(dir: &Path) -> std::path::PathBuf {
    let source = Path::new(artifacts::PLUGINS_DIR).join("etl");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::create_dir_all(dir.join("out")).unwrap();
    std::fs::copy(source.join("data/sales.csv"), dir.join("data/sales.csv")).unwrap();
    let file = dir.join("workflow.toml");
    std::fs::copy(source.join("workflow.toml"), &file).unwrap();
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etl_workflow_runs_end_to_end() {
    let (dir, runner) = start(ECHO).await;
    let work = dir.path().join("etl");
    let file = etl_copy(&work);
    let workflow = Workflow::from_toml_file(&file).unwrap();
    assert_eq!(workflow.name(), "etl");
    assert_eq!(
        runner.apply_workflow(&workflow).await.unwrap(),
        Applied::Created
    );

    let report = run(&runner, "etl", json!({})).await;
    assert_eq!(report.status, ExecutionStatus::Succeeded, "{report:#?}");
    assert_eq!(
        statuses(&report),
        BTreeMap::from([
            ("extract", TaskRunStatus::Succeeded),
            ("transform", TaskRunStatus::Succeeded),
            ("load", TaskRunStatus::Succeeded),
        ])
    );
    let (rows, cents) =
        sales_totals(&std::fs::read_to_string(work.join("data/sales.csv")).unwrap());
    let grand_total = &report.output["grand_total"];
    assert_eq!(grand_total["count"], rows, "{grand_total}");
    let amount = grand_total["amount"].as_f64().unwrap();
    assert_eq!((amount * 100.0).round() as i64, cents, "{grand_total}");
    assert_eq!(report.output["report_path"], "/out/report.json");

    let written = work.join("out/report.json");
    assert!(written.is_file(), "no report at {}", written.display());
    let written: Value = serde_json::from_str(&std::fs::read_to_string(written).unwrap()).unwrap();
    assert_eq!(&written["grand_total"], grand_total);
    assert_eq!(written["totals"], report.output["totals"]);
    runner.shutdown(Duration::from_secs(5)).await;
}

// ---------------------------------------------------------------------------
// 9. Builder and TOML

const BUILT_TOML: &str = r#"
name = "built"
description = "greet, then look at the environment"

[defaults]
timeout = "1m"

[[steps]]
id = "hello"
task = "hello/greet"
input = { name = "Ada" }
retry = { max_attempts = 2, delay = "10ms" }

[[steps]]
id = "env"
task = "chaos/env"
depends_on = ["hello"]
trigger = "all_succeeded"
condition = { key = "greeting", exists = true }
grants.env = { GREETING_SOURCE = "workflow" }
"#;

fn built_in_rust() -> Workflow {
    Workflow::builder("built")
        .description("greet, then look at the environment")
        .defaults(Defaults {
            timeout: Some(Duration::from_secs(60)),
            ..Defaults::default()
        })
        .step(
            Step::new("env", "chaos/env")
                .depends_on(["hello"])
                .trigger(TriggerRule::AllSucceeded)
                .condition(Condition::exists("greeting"))
                .env("GREETING_SOURCE", "workflow"),
        )
        .step(
            Step::new("hello", "hello/greet")
                .input("name", "Ada")
                .retry(RetryPolicy::fixed(2, Duration::from_millis(10))),
        )
        .build()
        .expect("the builder validates")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn builder_and_toml_define_the_same_workflow() {
    let (_dir, runner) = start(ECHO).await;
    let built = built_in_rust();
    let parsed = Workflow::from_toml(BUILT_TOML, None).unwrap();
    assert_eq!(built.version(), parsed.version());
    assert_eq!(built, parsed);
    assert_eq!(built.to_stored(), parsed.to_stored());

    assert_eq!(
        runner.apply_workflow(&built).await.unwrap(),
        Applied::Created
    );
    let from_builder = run(&runner, "built", json!({})).await;
    assert_eq!(
        runner.apply_workflow(&parsed).await.unwrap(),
        Applied::Unchanged
    );
    let from_toml = run(&runner, "built", json!({})).await;

    for report in [&from_builder, &from_toml] {
        assert_eq!(report.status, ExecutionStatus::Succeeded, "{report:#?}");
        assert_eq!(report.workflow_version, built.version());
        assert_eq!(output(report, "hello")["greeting"], "hello, Ada");
        // Only what was granted: nothing is inherited from the host.
        assert_eq!(
            report.output.get("env"),
            Some(&json!({"GREETING_SOURCE": "workflow"})),
            "{report:#?}"
        );
    }
    assert_eq!(from_builder.output, from_toml.output);

    // A different step changes the version.
    let other = Workflow::builder("built")
        .step(Step::new("hello", "hello/greet").input("name", "Bob"))
        .build()
        .unwrap();
    assert_ne!(other.version(), built.version());
    assert_eq!(
        obj(json!({"name": "Bob"})),
        other.step("hello").unwrap().input
    );
    runner.shutdown(Duration::from_secs(5)).await;
}

// ---------------------------------------------------------------------------
// More: cancel in other states, failure kinds, backoff, settings precedence

const BACKING_OFF: &str = r#"
name = "backing_off"
[[steps]]
id = "flaky"
task = "chaos/fail_retryable"
retry = { max_attempts = 5, delay = "30s" }
"#;

const ASLEEP: &str = r#"
name = "asleep"
[[steps]]
id = "nap"
task = "chaos/sleep"
input = { seconds = 60 }
timeout = "90s"
[[steps]]
id = "after"
task = "chaos/echo"
depends_on = ["nap"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_ends_executions_waiting_for_a_retry_or_asleep_in_a_host_call() {
    let (_dir, runner) = start(BACKING_OFF).await;
    apply(&runner, ASLEEP).await;
    let backing_off = runner.execute("backing_off", json!({})).await.unwrap();
    let asleep = runner.execute("asleep", json!({})).await.unwrap();
    eventually(
        Duration::from_secs(20),
        "the first attempt failed and the nap runs",
        async || {
            let failed_once = runner
                .attempts(backing_off.id(), None)
                .await
                .unwrap()
                .iter()
                .any(|a| a.finished_at_ms.is_some());
            failed_once && runner.attempts_in_flight() == 1
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting = runner.status(backing_off.id()).await.unwrap();
    assert_eq!(step(&waiting, "flaky").status, TaskRunStatus::Ready);
    assert_eq!(step(&waiting, "flaky").attempts, 1);

    // Waiting for its backoff: cancelled at once, no new attempt.
    let report = runner.cancel(backing_off.id()).await.unwrap();
    assert_eq!(report.status, ExecutionStatus::Cancelled, "{report:#?}");
    assert_eq!(step(&report, "flaky").status, TaskRunStatus::Cancelled);

    // Parked in a WASI sleep that ignores cancellation: stopped anyway.
    asleep.cancel().await.unwrap();
    let report = tokio::time::timeout(Duration::from_secs(2), asleep.wait())
        .await
        .expect("the sleeping guest is cancelled within 2 s")
        .unwrap();
    assert_eq!(report.status, ExecutionStatus::Cancelled, "{report:#?}");
    assert_eq!(step(&report, "nap").status, TaskRunStatus::Cancelled);
    assert_eq!(step(&report, "after").status, TaskRunStatus::Cancelled);
    let attempts = attempts_of(&runner, asleep.id(), "nap").await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome.as_deref(), Some("cancelled"));
    assert_eq!(runner.attempts_in_flight(), 0);
    assert_eq!(
        runner.attempts(backing_off.id(), None).await.unwrap().len(),
        1,
        "no attempt after the cancel"
    );
    runner.shutdown(Duration::from_secs(5)).await;
}

const DOOMED: &str = r#"
name = "doomed"
[defaults]
retry = { max_attempts = 3, delay = "10ms" }
timeout = "20s"

[[steps]]
id = "memory"
task = "chaos/alloc"
input = { mib = 64 }
memory = "16MiB"

[[steps]]
id = "panics"
task = "chaos/panic"

[[steps]]
id = "overflows"
task = "chaos/stack_overflow"

[[steps]]
id = "too_big"
task = "chaos/huge_output"
input = { mib = 2 }
memory = "256MiB"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failures_that_would_repeat_are_not_retried() {
    let (_dir, runner) = start(DOOMED).await;
    let handle = runner.execute("doomed", json!({})).await.unwrap();
    let report = finish(&handle).await;
    assert_eq!(report.status, ExecutionStatus::Failed, "{report:#?}");
    for (id, outcome) in [
        ("memory", "memory_limit_exceeded"),
        ("panics", "failed"),
        ("overflows", "trapped"),
        ("too_big", "invalid_output"),
    ] {
        let s = step(&report, id);
        assert_eq!(
            (s.status, s.attempts),
            (TaskRunStatus::Failed, 1),
            "{id}: {report:#?}"
        );
        let attempts = attempts_of(&runner, handle.id(), id).await;
        assert_eq!(attempts.len(), 1, "{id}: {attempts:#?}");
        assert_eq!(attempts[0].outcome.as_deref(), Some(outcome), "{id}");
    }
    assert!(
        step(&report, "panics")
            .error
            .as_deref()
            .is_some_and(|e| e.contains("chaos: deliberate panic")),
        "{report:#?}"
    );
    runner.shutdown(Duration::from_secs(5)).await;
}

const BACKOFF: &str = r#"
name = "backoff"
[[steps]]
id = "fixed"
task = "chaos/fail_retryable"
retry = { max_attempts = 3, delay = "150ms" }
[[steps]]
id = "exponential"
task = "chaos/fail_retryable"
retry = { max_attempts = 3, backoff = "exponential", initial = "100ms", max = "1s", factor = 3.0 }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_wait_for_their_backoff() {
    let (_dir, runner) = start(BACKOFF).await;
    let handle = runner.execute("backoff", json!({})).await.unwrap();
    let report = finish(&handle).await;
    assert_eq!(report.status, ExecutionStatus::Failed, "{report:#?}");
    for (id, delays) in [("fixed", [150, 150]), ("exponential", [100, 300])] {
        let attempts = attempts_of(&runner, handle.id(), id).await;
        assert_eq!(attempts.len(), 3, "{id}: {attempts:#?}");
        for (pair, delay) in attempts.windows(2).zip(delays) {
            let waited = pair[1].started_at_ms - pair[0].finished_at_ms.unwrap();
            assert!(
                waited >= delay,
                "{id}: attempt {} started {waited} ms after the previous one ended, before its {delay} ms backoff",
                pair[1].number
            );
        }
    }
    runner.shutdown(Duration::from_secs(5)).await;
}

const SETTINGS: &str = r#"
name = "settings"

[defaults]
grants.env = { FROM_WORKFLOW = "workflow", OVERRIDDEN = "workflow", STEP_WINS = "workflow" }

[[steps]]
id = "env"
task = "chaos/env"
grants.env = { STEP_WINS = "step" }

[[steps]]
id = "sleepy"
task = "chaos/sleep"
input = { seconds = 5 }

[[steps]]
id = "patient"
task = "chaos/sleep"
input = { seconds = 0.3 }
timeout = "10s"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn step_settings_beat_workflow_defaults_beat_the_runners() {
    let (_dir, runner) = start_with(SETTINGS, |b| {
        b.default_limits(corral::sandbox::Limits {
            timeout: Duration::from_millis(200),
            ..corral::sandbox::Limits::default()
        })
        .default_grants(corral::sandbox::Grants {
            env: [("FROM_RUNNER", "runner"), ("OVERRIDDEN", "runner")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            ..corral::sandbox::Grants::default()
        })
    })
    .await;
    let handle = runner.execute("settings", json!({})).await.unwrap();
    let report = finish(&handle).await;
    assert_eq!(
        output(&report, "env")["env"],
        json!({
            "FROM_RUNNER": "runner",
            "FROM_WORKFLOW": "workflow",
            "OVERRIDDEN": "workflow",
            "STEP_WINS": "step",
        })
    );
    // No timeout on the step, the workflow or the task: the runner's. And
    // no retry policy anywhere (chaos suggests none): one attempt.
    let sleepy = attempts_of(&runner, handle.id(), "sleepy").await;
    assert_eq!(sleepy.len(), 1, "{sleepy:#?}");
    assert_eq!(sleepy[0].outcome.as_deref(), Some("timed_out"));
    assert_eq!(step(&report, "sleepy").status, TaskRunStatus::Failed);
    // The step's own timeout beats the runner's.
    assert_eq!(step(&report, "patient").status, TaskRunStatus::Succeeded);
    assert_eq!(report.status, ExecutionStatus::Failed);
    runner.shutdown(Duration::from_secs(5)).await;
}

/// `etl/extract` suggests `max_attempts = 3` (with the default 1 s, 2 s
/// backoff) and nobody else sets a retry policy, so its timeouts are
/// retried. (A task that suggests nothing gets one attempt: `sleepy` above.)
fn suggestions(data_dir: &Path) -> String {
    format!(
        r#"
name = "suggestions"

[[steps]]
id = "suggested"
task = "etl/extract"
timeout = "5ms"
input = {{ file = "big.csv" }}
grants.dirs = [{{ host = "{}", guest = "/data" }}]
"#,
        data_dir.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tasks_suggested_attempts_apply_when_nobody_sets_a_policy() {
    let (dir, runner) = start(ECHO).await;
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    // More than extract can read in 5 ms.
    let mut csv = String::from("date,category,item,amount\n");
    for i in 0..100_000 {
        csv.push_str(&format!("2024-03-01,books,item {i},1.00\n"));
    }
    std::fs::write(data.join("big.csv"), csv).unwrap();
    apply(&runner, &suggestions(&data)).await;
    let handle = runner.execute("suggestions", json!({})).await.unwrap();
    let report = finish(&handle).await;
    assert_eq!(report.status, ExecutionStatus::Failed, "{report:#?}");
    let records = attempts_of(&runner, handle.id(), "suggested").await;
    let outcomes: Vec<_> = records.iter().map(|a| a.outcome.as_deref()).collect();
    assert_eq!(outcomes, [Some("timed_out"); 3], "{records:#?}");
    assert_eq!(step(&report, "suggested").attempts, 3);
    runner.shutdown(Duration::from_secs(5)).await;
}

// ---------------------------------------------------------------------------
// Writers wait for each other

/// Another connection (another `corral` process, or this runner's own
/// claim loop and lease keeper) holds the write lock while a plugin is
/// registered: the registration waits for it (the store's busy timeout)
/// instead of failing with "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registering_a_plugin_waits_for_a_concurrent_writer() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corral.db");
    let runner = runner_builder(&db).execute(false).build().await.unwrap();

    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&db);
    let mut writer = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut writer)
        .await
        .unwrap();
    let registering = runner.register_plugin_file(artifacts::HELLO);
    let release = async {
        // Long enough for the plugin to compile and reach the database.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        sqlx::query("COMMIT").execute(&mut writer).await.unwrap();
    };
    let (registered, ()) = tokio::join!(registering, release);
    let (info, _, added) = registered.expect("the registration waits for the other writer");
    assert_eq!(info.name, "hello");
    assert_eq!(added, corral::store::Added::New);
    writer.close().await.unwrap();
    runner.shutdown(Duration::from_secs(5)).await;
}

// ---------------------------------------------------------------------------
// Races: cancel at any moment, two runners on one database

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_at_any_moment_ends_the_execution() {
    let (_dir, runner) = start(SPIN_THEN_ECHO).await;
    for delay_ms in [0, 1, 5, 20, 50, 150] {
        let handle = runner.execute("spin_then_echo", json!({})).await.unwrap();
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        handle.cancel().await.unwrap();
        let report = tokio::time::timeout(Duration::from_secs(3), handle.wait())
            .await
            .unwrap_or_else(|_| panic!("cancel after {delay_ms} ms: still running after 3 s"))
            .unwrap();
        assert_eq!(
            report.status,
            ExecutionStatus::Cancelled,
            "cancel after {delay_ms} ms: {report:#?}"
        );
        assert!(
            report
                .steps
                .iter()
                .all(|s| s.status == TaskRunStatus::Cancelled),
            "cancel after {delay_ms} ms: {report:#?}"
        );
    }
    eventually(Duration::from_secs(2), "no guest in flight", async || {
        runner.attempts_in_flight() == 0
    })
    .await;
    runner.shutdown(Duration::from_secs(5)).await;
}

const WIDE: &str = r#"
name = "wide"
[defaults]
timeout = "30s"
[[steps]]
id = "s1"
task = "chaos/burn"
input = { ms = 150 }
[[steps]]
id = "s2"
task = "chaos/burn"
input = { ms = 150 }
[[steps]]
id = "s3"
task = "chaos/burn"
input = { ms = 150 }
[[steps]]
id = "s4"
task = "chaos/burn"
input = { ms = 150 }
[[steps]]
id = "s5"
task = "chaos/burn"
input = { ms = 150 }
[[steps]]
id = "s6"
task = "chaos/burn"
input = { ms = 150 }
[[steps]]
id = "join"
task = "chaos/echo"
depends_on = ["s1", "s2", "s3", "s4", "s5", "s6"]
input = { joined = true }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_runners_on_one_database_run_each_step_once() {
    let (dir, first) = start_with(WIDE, |b| b.concurrency(2)).await;
    let second = runner_builder(&dir.path().join("corral.db"))
        .concurrency(2)
        .build()
        .await
        .unwrap();
    let handles = [
        first.execute("wide", json!({})).await.unwrap(),
        second.execute("wide", json!({})).await.unwrap(),
        first.execute("wide", json!({})).await.unwrap(),
    ];
    for handle in &handles {
        let report = finish(handle).await;
        assert_eq!(report.status, ExecutionStatus::Succeeded, "{report:#?}");
        assert_eq!(report.output["joined"], true);
        let attempts = first.attempts(handle.id(), None).await.unwrap();
        assert_eq!(attempts.len(), 7, "each step ran once: {attempts:#?}");
        assert!(
            attempts
                .iter()
                .all(|a| a.outcome.as_deref() == Some("succeeded")),
            "{attempts:#?}"
        );
    }
    let mut runners: Vec<String> = Vec::new();
    for handle in &handles {
        for a in first.attempts(handle.id(), None).await.unwrap() {
            if !runners.contains(&a.runner_id) {
                runners.push(a.runner_id);
            }
        }
    }
    runners.sort();
    let mut both = vec![first.id().to_owned(), second.id().to_owned()];
    both.sort();
    assert_eq!(runners, both, "both runners took work");
    second.shutdown(Duration::from_secs(5)).await;
    first.shutdown(Duration::from_secs(5)).await;
}

const NAP: &str = r#"
name = "nap"
[[steps]]
id = "nap"
task = "chaos/sleep"
input = { seconds = 2.5 }
timeout = "30s"
"#;

/// What happened when the database was locked by another process for
/// longer than the runner's lease (1 s) while an attempt ran.
struct OutlivedLease {
    attempts: Vec<AttemptRecord>,
    most_in_flight: usize,
}

impl OutlivedLease {
    fn summary(&self) -> String {
        let rows: Vec<_> = self
            .attempts
            .iter()
            .map(|a| {
                format!(
                    "#{} {}..{:?} {:?} {:?}",
                    a.number, a.started_at_ms, a.finished_at_ms, a.outcome, a.error
                )
            })
            .collect();
        rows.join("\n")
    }
}

async fn outlive_the_lease() -> OutlivedLease {
    use sqlx::Connection;
    let (dir, runner) = start(NAP).await;
    let handle = runner.execute("nap", json!({})).await.unwrap();
    eventually(Duration::from_secs(20), "the nap runs", async || {
        runner.attempts_in_flight() == 1
    })
    .await;

    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("corral.db"));
    let mut writer = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut writer)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sqlx::query("COMMIT").execute(&mut writer).await.unwrap();
    writer.close().await.unwrap();

    let mut most_in_flight = 1;
    let wait = handle.wait();
    tokio::pin!(wait);
    let report = tokio::time::timeout(FINISH_WITHIN, async {
        loop {
            tokio::select! {
                report = &mut wait => break report.unwrap(),
                () = tokio::time::sleep(Duration::from_millis(5)) => {
                    most_in_flight = most_in_flight.max(runner.attempts_in_flight());
                }
            }
        }
    })
    .await
    .expect("the execution ends");
    assert_eq!(report.status, ExecutionStatus::Succeeded, "{report:#?}");
    eventually(Duration::from_secs(5), "no guest in flight", async || {
        most_in_flight = most_in_flight.max(runner.attempts_in_flight());
        runner.attempts_in_flight() == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let attempts = runner.attempts(handle.id(), None).await.unwrap();
    runner.shutdown(Duration::from_secs(5)).await;
    OutlivedLease {
        attempts,
        most_in_flight,
    }
}

/// Whatever the runner does with a claim whose lease ran out while its
/// attempt ran, the record stays consistent: every attempt ends with an
/// outcome, exactly one succeeded, and an attempt recorded as interrupted
/// is not overwritten by its late result (a lost claim changes nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_result_of_a_lost_claim_changes_nothing() {
    let outlived = outlive_the_lease().await;
    let attempts = &outlived.attempts;
    assert!(
        attempts
            .iter()
            .all(|a| a.finished_at_ms.is_some() && a.outcome.is_some()),
        "an attempt never ended:\n{}",
        outlived.summary()
    );
    assert_eq!(
        attempts
            .iter()
            .filter(|a| a.outcome.as_deref() == Some("succeeded"))
            .count(),
        1,
        "{}",
        outlived.summary()
    );
    // A re-run exists only if the first attempt lost its claim; then the
    // first one stays interrupted.
    if attempts.len() > 1 {
        assert_eq!(
            attempts[0].outcome.as_deref(),
            Some("interrupted"),
            "{}",
            outlived.summary()
        );
    }
}

/// A runner knows its own attempts are alive: a lease that ran out while
/// the database was busy does not make it start the same step a second
/// time while the first attempt still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_runner_never_runs_its_live_attempt_twice() {
    let outlived = outlive_the_lease().await;
    assert!(
        outlived.most_in_flight <= 1,
        "the runner ran the step {} times at once:\n{}",
        outlived.most_in_flight,
        outlived.summary()
    );
}

// ---------------------------------------------------------------------------
// Disk quotas

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_is_held_to_the_disk_quota_of_its_toml_grant() {
    let out = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
name = "quota"

[[steps]]
id = "fill"
task = "chaos/fill_disk"
input = {{ path = "/out/big.bin", bytes = 10485760, how = "pwrite" }}
grants.dirs = [{{ host = "{}", guest = "/out", writable = true, max_bytes = "256KiB", max_files = 3 }}]
"#,
        out.path().display()
    );
    // The runner runs the stored form of the workflow: the quota must
    // survive it, or the 10 MiB would fit in the default 1 GiB.
    let (_dir, runner) = start(&toml).await;
    let report = run(&runner, "quota", json!({})).await;
    assert_eq!(report.status, ExecutionStatus::Failed, "{report:#?}");
    let size = std::fs::metadata(out.path().join("big.bin")).unwrap().len();
    assert!(size <= 256 << 10 && size > 192 << 10, "{size}");
    let attempts = attempts_of(&runner, &report.id, "fill").await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome.as_deref(), Some("failed"));
    let error = attempts[0].error.clone().unwrap_or_default();
    assert!(error.contains("No space left on device"), "{error}");
    let logs = attempts[0].logs.clone().unwrap_or_default().to_string();
    assert!(
        logs.contains("[corral host] disk quota: grant /out reached max_bytes = 262144"),
        "{logs}"
    );
    runner.shutdown(Duration::from_secs(5)).await;
}
