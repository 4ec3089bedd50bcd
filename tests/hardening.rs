//! Hostile guests and hostile plugins, written as an attacker would: huge
//! failure, panic and log messages, absurd plugin metadata, shipped
//! workflows that smuggle grants or take over an operator's workflow,
//! components that impersonate the contract, plugins that stop loading.
//! The hostile components are the variants of `plugins/rogue`.

mod common;

use std::time::Duration;

use common::{artifacts, eventually, load, request, run, runner_builder, sandbox};
use corral::sandbox::{
    MAX_ERROR_BYTES, MAX_LOG_LINE_BYTES, MAX_PROGRESS_NOTE_BYTES, Outcome, PluginError, Sandbox,
    SandboxConfig,
};
use corral::store::{StoreError, TaskRunStatus, WorkflowOwner};
use corral::{DeferPolicy, Runner, RunnerError, Workflow};
use serde_json::json;

/// What a cut text may add to its cap: the marker saying how much was cut.
const MARKER: usize = 40;

/// A runner on a SQLite file of its own; keep the directory as long.
async fn fresh_runner() -> (tempfile::TempDir, Runner) {
    let dir = tempfile::tempdir().unwrap();
    let runner = runner_builder(&dir.path().join("corral.db"))
        .build()
        .await
        .expect("runner builds");
    (dir, runner)
}

/// Waits (at most 30 s) for execution `id` to end.
async fn finished(runner: &Runner, id: &str) -> corral::ExecutionReport {
    let handle = runner.handle(id.to_owned()).await.expect("handle");
    tokio::time::timeout(Duration::from_secs(30), handle.wait())
        .await
        .expect("the execution ends within 30 s")
        .expect("wait")
}

#[tokio::test]
async fn failure_and_panic_messages_are_capped() {
    let sandbox = sandbox();
    let rogue = load(&sandbox, artifacts::ROGUE).await;
    for task in ["fail-huge", "panic-huge"] {
        let report = run(&sandbox, &rogue, &request(task, json!({}))).await;
        let Outcome::Failed { message, .. } = &report.outcome else {
            panic!(
                "{task}: expected a failure, got {:?}",
                report.outcome.kind()
            );
        };
        assert!(
            message.len() <= MAX_ERROR_BYTES + MARKER,
            "{task}: a {} byte message was kept",
            message.len()
        );
        assert!(
            message.ends_with(&format!("of {} bytes cut]", 10 << 20)),
            "{task}: the cut is not said: {}",
            &message[message.len() - 60..]
        );
    }
}

#[tokio::test]
async fn log_lines_and_progress_notes_are_capped() {
    let sandbox = sandbox();
    let rogue = load(&sandbox, artifacts::ROGUE).await;
    let report = run(&sandbox, &rogue, &request("log-huge", json!({}))).await;
    assert!(report.outcome.is_success(), "{:?}", report.outcome);
    let [line] = report.logs.as_slice() else {
        panic!("one log line expected, got {}", report.logs.len());
    };
    assert!(line.message.len() <= MAX_LOG_LINE_BYTES + MARKER);
    assert!(line.message.ends_with("bytes cut]"));

    let report = run(&sandbox, &rogue, &request("note-huge", json!({}))).await;
    let (_, note) = report.progress.expect("progress was reported");
    assert!(
        note.len() <= MAX_PROGRESS_NOTE_BYTES + MARKER,
        "{}",
        note.len()
    );
}

/// The outside review's finding: one 10 MiB failure grew the database by
/// 30 MiB, and again for every retry.
#[tokio::test]
async fn retried_huge_failures_keep_the_database_small() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corral.db");
    let runner = runner_builder(&db).build().await.expect("runner");
    runner
        .register_plugin_file(artifacts::ROGUE)
        .await
        .expect("rogue registers");
    let workflow = r#"
        name = "flood"
        [[steps]]
        id = "fail"
        task = "rogue/fail-huge"
        retry = { max_attempts = 3, delay = "10ms" }
    "#;
    runner
        .apply_workflow(&Workflow::from_toml(workflow, None).unwrap())
        .await
        .unwrap();
    let handle = runner.execute("flood", json!({})).await.unwrap();
    let report = finished(&runner, handle.id()).await;
    assert_eq!(report.steps[0].status, TaskRunStatus::Failed);
    assert_eq!(report.steps[0].attempts, 3);
    runner.shutdown(Duration::ZERO).await;
    let size: u64 = ["corral.db", "corral.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.path().join(f)).ok())
        .map(|m| m.len())
        .sum();
    assert!(
        size < 4 << 20,
        "the database holds {size} bytes after 3 failures"
    );
}

#[tokio::test]
async fn absurd_plugin_metadata_is_refused() {
    let sandbox = sandbox();
    for (path, needle) in [
        (
            artifacts::ROGUE_HUGE_DESCRIPTION,
            "more than the limit of 1024",
        ),
        (
            artifacts::ROGUE_MANY_TASKS,
            "tasks, more than the limit of 1000",
        ),
        (artifacts::ROGUE_MULTILINE_DESCRIPTION, "more than one line"),
    ] {
        let error = sandbox
            .load_plugin_file(path)
            .await
            .expect_err("the plugin is refused");
        assert!(matches!(error, PluginError::InvalidInfo(_)), "{error:?}");
        let text = error.to_string();
        assert!(text.contains(needle), "{text}");
        assert!(
            text.len() < 512,
            "the error echoes the guest: {} bytes",
            text.len()
        );
    }
}

#[tokio::test]
async fn a_component_with_the_contracts_names_and_other_types_targets_another_world() {
    let error = sandbox()
        .load_plugin_file(artifacts::ROGUE_IMPOSTOR)
        .await
        .expect_err("the impostor is refused");
    assert!(
        matches!(error, PluginError::WorldMismatch(_)),
        "expected a world mismatch, got: {error}"
    );
}

#[tokio::test]
async fn the_describe_timeout_is_the_operators() {
    let tight = Sandbox::new(SandboxConfig {
        describe_timeout: Duration::from_millis(50),
        max_concurrent_attempts: 8,
        ..SandboxConfig::default()
    })
    .unwrap();
    let error = tight
        .load_plugin_file(artifacts::ROGUE_SLOW_DESCRIBE)
        .await
        .expect_err("a 300 ms describe exceeds 50 ms");
    assert!(
        error.to_string().contains("timed out after 50ms"),
        "{error}"
    );
    // The default (10 s) lets it load.
    load(&sandbox(), artifacts::ROGUE_SLOW_DESCRIBE).await;
}

#[tokio::test]
async fn a_plugin_whose_shipped_workflow_is_rejected_is_not_registered() {
    let (_dir, runner) = fresh_runner().await;
    let error = runner
        .register_plugin_file(artifacts::ROGUE_SHIPS_GRANTS)
        .await
        .expect_err("grants in a shipped workflow are refused");
    assert!(
        matches!(&error, RunnerError::ShippedWorkflow { workflow, .. } if workflow == "rogue-greedy"),
        "{error}"
    );
    assert!(error.to_string().contains("cannot set `grants`"), "{error}");
    let store = runner.store();
    assert!(
        store.list_plugins().await.unwrap().is_empty(),
        "the plugin stayed"
    );
    assert!(
        store.list_workflows().await.unwrap().is_empty(),
        "its valid workflow was stored"
    );
    runner.shutdown(Duration::ZERO).await;
}

const VICTIM: &str = r#"
    name = "victim"
    [[steps]]
    id = "greet"
    task = "hello/greet"
"#;

#[tokio::test]
async fn a_plugin_cannot_replace_an_operators_workflow() {
    let (_dir, runner) = fresh_runner().await;
    runner.register_plugin_file(artifacts::HELLO).await.unwrap();
    let victim = Workflow::from_toml(VICTIM, None).unwrap();
    runner.apply_workflow(&victim).await.unwrap();

    let error = runner
        .register_plugin_file(artifacts::ROGUE_SHIPS_VICTIM)
        .await
        .expect_err("the takeover is refused");
    assert!(
        matches!(
            &error,
            RunnerError::Store(StoreError::WorkflowOwned { name, owner: WorkflowOwner::Operator, .. })
                if name == "victim"
        ),
        "{error}"
    );
    let store = runner.store();
    let stored = store.workflow("victim", None).await.unwrap().unwrap();
    assert_eq!(stored.version, victim.version(), "the victim was replaced");
    assert_eq!(stored.owner, WorkflowOwner::Operator);
    assert!(
        store.plugin("rogue").await.unwrap().is_none(),
        "the plugin was registered"
    );
    let handle = runner
        .execute("victim", json!({ "name": "Ada" }))
        .await
        .unwrap();
    let report = finished(&runner, handle.id()).await;
    assert_eq!(report.output["greeting"], "hello, Ada");
    runner.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_plugin_owns_the_workflows_it_creates_until_the_operator_takes_them() {
    let (_dir, runner) = fresh_runner().await;
    runner.register_plugin_file(artifacts::HELLO).await.unwrap();
    runner
        .register_plugin_file(artifacts::ROGUE_SHIPS_VICTIM)
        .await
        .expect("a free name may be created");
    let store = runner.store();
    let stored = store.workflow("victim", None).await.unwrap().unwrap();
    assert_eq!(stored.owner, WorkflowOwner::Plugin("rogue".into()));
    // The operator may take it over (say, to grant it what it needs).
    runner
        .apply_workflow(&Workflow::from_toml(VICTIM, None).unwrap())
        .await
        .unwrap();
    let stored = store.workflow("victim", None).await.unwrap().unwrap();
    assert_eq!(stored.owner, WorkflowOwner::Operator);
    runner.shutdown(Duration::ZERO).await;
}

const SLOW: &str = r#"
    name = "slow"
    [[steps]]
    id = "only"
    task = "rogue/ok"
"#;

/// A database with the slow-describe plugin registered (by a runner with
/// the default describe timeout) and a workflow using it, plus one
/// execution of it submitted.
async fn slow_plugin_db(dir: &std::path::Path) -> String {
    let registrar = runner_builder(&dir.join("corral.db"))
        .execute(false)
        .build()
        .await
        .unwrap();
    registrar
        .register_plugin_file(artifacts::ROGUE_SLOW_DESCRIBE)
        .await
        .expect("loads within 10 s");
    registrar
        .apply_workflow(&Workflow::from_toml(SLOW, None).unwrap())
        .await
        .unwrap();
    let id = registrar
        .execute("slow", json!({}))
        .await
        .unwrap()
        .id()
        .to_string();
    registrar.shutdown(Duration::ZERO).await;
    id
}

fn cannot_load(dir: &std::path::Path) -> corral::RunnerBuilder {
    runner_builder(&dir.join("corral.db"))
        .describe_timeout(Duration::from_millis(50))
        .plugin_deferral(DeferPolicy {
            every: Duration::from_millis(50),
            max_deferrals: 3,
            max_time: Duration::from_secs(60),
        })
}

#[tokio::test]
async fn a_step_no_runner_can_load_fails_at_once_when_no_other_runner_is_alive() {
    let dir = tempfile::tempdir().unwrap();
    let id = slow_plugin_db(dir.path()).await;
    let runner = cannot_load(dir.path())
        // No deferral limit: only "nobody else is alive" can end it.
        .plugin_deferral(DeferPolicy {
            every: Duration::from_millis(50),
            max_deferrals: u32::MAX,
            max_time: Duration::from_secs(3600),
        })
        .build()
        .await
        .unwrap();
    let report = finished(&runner, &id).await;
    let step = &report.steps[0];
    assert_eq!(step.status, TaskRunStatus::Failed, "{report:?}");
    let error = step.error.as_deref().unwrap_or_default();
    assert!(error.contains("cannot load the plugin"), "{error}");
    assert!(error.contains("no other runner is alive"), "{error}");
    runner.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_step_deferred_too_often_fails_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let id = slow_plugin_db(dir.path()).await;
    // Two runners, neither able to load the plugin: each sees the other
    // alive, so only the deferral limit ends it.
    let a = cannot_load(dir.path()).build().await.unwrap();
    let b = cannot_load(dir.path()).build().await.unwrap();
    let report = finished(&a, &id).await;
    let step = &report.steps[0];
    assert_eq!(step.status, TaskRunStatus::Failed, "{report:?}");
    let error = step.error.as_deref().unwrap_or_default();
    assert!(error.contains("cannot load the plugin"), "{error}");
    assert!(
        error.contains("deferred 3 times already") || error.contains("no other runner is alive"),
        "{error}"
    );
    let deferred = a
        .attempts(&id, None)
        .await
        .unwrap()
        .iter()
        .filter(|a| a.outcome.as_deref() == Some("deferred"))
        .count();
    assert!(deferred <= 3, "deferred {deferred} times");
    a.shutdown(Duration::ZERO).await;
    b.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn shutdown_counts_only_attempts_that_end_after_it() {
    let dir = tempfile::tempdir().unwrap();
    // A long poll interval: the claim loop would only notice a finished
    // attempt's task much later.
    let runner = runner_builder(&dir.path().join("corral.db"))
        .poll_interval(Duration::from_secs(30))
        .build()
        .await
        .unwrap();
    common::setup(&runner, VICTIM).await;
    let handle = runner
        .execute("victim", json!({ "name": "Ada" }))
        .await
        .unwrap();
    finished(&runner, handle.id()).await;
    eventually(Duration::from_secs(5), "the attempt is over", async || {
        runner.attempts_in_flight() == 0
    })
    .await;
    let report = runner.shutdown(Duration::from_secs(5)).await;
    assert_eq!(
        (report.finished, report.halted),
        (0, 0),
        "an attempt that ended before shutdown was counted"
    );
}
