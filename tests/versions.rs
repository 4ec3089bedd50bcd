//! Versions across hosts: an execution runs the plugin registrations it was
//! created with, whatever is registered later and whichever host runs it
//! (SQLite with two runners on one file, PostgreSQL with two hosts); a step
//! may pin a version; a version in use cannot be removed; and a workflow
//! stored by a newer host in a format this one cannot read is left to other
//! hosts, within bounds, instead of failing the execution at once.

mod common;

use std::time::Duration;

use common::postgres::{Tenant, postgres_url};
use common::{artifacts, eventually};
use corral::store::{ExecutionStatus, NewExecution, StepChange, StoreError, TaskRunStatus};
use corral::{DeferPolicy, ExecutionReport, Runner, RunnerBuilder, RunnerError, Workflow};
use serde_json::{Value, json};

const FINISH_WITHIN: Duration = Duration::from_secs(60);

/// One step reporting the version of `rogue` it ran.
const LATEST: &str = r#"
name = "latest"
[[steps]]
id = "only"
task = "rogue/version"
"#;

/// `first` and `second` report the version they ran; `gate` holds the
/// execution between them for `seconds`.
const GATED: &str = r#"
name = "gated"
[[steps]]
id = "first"
task = "rogue/version"
[[steps]]
id = "gate"
task = "chaos/sleep"
depends_on = ["first"]
[[steps]]
id = "second"
task = "rogue/version"
depends_on = ["gate"]
"#;

async fn apply(runner: &Runner, toml: &str) {
    let workflow = Workflow::from_toml(toml, None).expect("workflow parses");
    runner.apply_workflow(&workflow).await.expect("applies");
}

async fn finished(runner: &Runner, id: &str) -> ExecutionReport {
    let handle = runner.handle(id.to_owned()).await.expect("known execution");
    tokio::time::timeout(FINISH_WITHIN, handle.wait())
        .await
        .expect("execution finishes in time")
        .expect("execution report")
}

fn version_of(report: &ExecutionReport, step: &str) -> Value {
    let step = report
        .steps
        .iter()
        .find(|s| s.id == step)
        .unwrap_or_else(|| panic!("no step {step} in {report:?}"));
    assert_eq!(step.status, TaskRunStatus::Succeeded, "{report:?}");
    step.output.as_ref().expect("an output")["version"].clone()
}

async fn step_status(runner: &Runner, id: &str, step: &str) -> TaskRunStatus {
    let report = runner.status(id).await.expect("status");
    report
        .steps
        .iter()
        .find(|s| s.id == step)
        .map(|s| s.status)
        .expect("the step exists")
}

/// The bug: a host cached a plugin by name, so a running host kept the
/// version it loaded first after a newer one was registered, and a host
/// that started later ran the newest one for executions created before it.
/// Host `a` runs `first` of an execution with 0.1.0 (and holds 0.1.0 in its
/// cache); 0.2.0 is registered; a new execution on `a` runs 0.2.0; `a`
/// stops mid-execution and a fresh host `b` runs `second` of the first
/// execution: still 0.1.0.
async fn executions_keep_the_version_they_started_with(host: impl Fn() -> RunnerBuilder) {
    let client = host().execute(false).build().await.unwrap();
    for plugin in [artifacts::ROGUE, artifacts::CHAOS] {
        client.register_plugin_file(plugin).await.unwrap();
    }
    apply(&client, LATEST).await;
    apply(&client, GATED).await;

    let a = host().build().await.unwrap();
    let gated = client
        .execute("gated", json!({ "seconds": 8 }))
        .await
        .unwrap()
        .id()
        .to_owned();
    eventually(FINISH_WITHIN, "`first` succeeded on host a", async || {
        step_status(&client, &gated, "first").await == TaskRunStatus::Succeeded
    })
    .await;

    let (info, _, _) = client
        .register_plugin_file(artifacts::ROGUE_V2)
        .await
        .unwrap();
    assert_eq!(info.version, "0.2.0");
    let latest = client.execute("latest", json!({})).await.unwrap();
    let report = finished(&a, latest.id()).await;
    assert_eq!(
        version_of(&report, "only"),
        "0.2.0",
        "a host that ran 0.1.0 before ran it again for a new execution"
    );
    assert_eq!(
        step_status(&client, &gated, "gate").await,
        TaskRunStatus::Running,
        "the gate ended before host a stopped: this machine is too slow for the test"
    );
    a.shutdown(Duration::ZERO).await;

    let b = host().build().await.unwrap();
    let report = finished(&b, &gated).await;
    assert_eq!(report.status, ExecutionStatus::Succeeded, "{report:?}");
    assert_eq!(version_of(&report, "first"), "0.1.0");
    assert_eq!(
        version_of(&report, "second"),
        "0.1.0",
        "the execution ran 0.2.0 after 0.1.0 on another host"
    );
    let runners: std::collections::BTreeMap<String, String> = b
        .attempts(&gated, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.outcome.as_deref() == Some("succeeded"))
        .map(|a| (a.step_id, a.runner_id))
        .collect();
    assert_eq!(runners["first"], a.id());
    assert_eq!(runners["second"], b.id());

    let shown = client.status(&gated).await.unwrap();
    assert_eq!(shown.plugins["rogue"].version, "0.1.0");
    let pins = client
        .list_executions(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.id == gated)
        .expect("listed")
        .plugins;
    assert_eq!(pins["rogue"].version, "0.1.0");
    assert_eq!(pins["chaos"].version, "0.1.0");
    b.shutdown(Duration::ZERO).await;
    client.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn executions_keep_their_plugin_version_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corral.db");
    executions_keep_the_version_they_started_with(|| common::runner_builder(&db)).await;
}

#[tokio::test]
async fn executions_keep_their_plugin_version_on_postgres_with_two_hosts() {
    let Some(url) = postgres_url() else { return };
    let tenant = Tenant::new(&url);
    executions_keep_the_version_they_started_with(|| {
        tenant
            .runner()
            .lease(Duration::from_secs(1))
            .poll_interval(Duration::from_millis(50))
    })
    .await;
}

#[tokio::test]
async fn a_step_may_pin_a_plugin_version_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    a_step_may_pin_a_plugin_version(common::runner_builder(&dir.path().join("corral.db"))).await;
}

#[tokio::test]
async fn a_step_may_pin_a_plugin_version_on_postgres() {
    let Some(url) = postgres_url() else { return };
    let tenant = Tenant::new(&url);
    a_step_may_pin_a_plugin_version(tenant.runner().poll_interval(Duration::from_millis(50))).await;
}

async fn a_step_may_pin_a_plugin_version(builder: RunnerBuilder) {
    let runner = builder.build().await.unwrap();
    for plugin in [artifacts::ROGUE, artifacts::ROGUE_V2] {
        runner.register_plugin_file(plugin).await.unwrap();
    }
    let pinned = r#"
name = "pinned"
[[steps]]
id = "old"
task = "rogue@0.1/version"
[[steps]]
id = "exact"
task = "rogue@0.1.0/version"
[[steps]]
id = "new"
task = "rogue/version"
"#;
    apply(&runner, pinned).await;
    let id = runner
        .execute("pinned", json!({}))
        .await
        .unwrap()
        .id()
        .to_owned();
    let report = finished(&runner, &id).await;
    assert_eq!(version_of(&report, "old"), "0.1.0");
    assert_eq!(version_of(&report, "exact"), "0.1.0");
    assert_eq!(version_of(&report, "new"), "0.2.0");

    // A pin nothing matches is refused when the workflow is applied.
    let missing = pinned.replace("rogue@0.1/version", "rogue@0.3/version");
    let error = runner
        .apply_workflow(&Workflow::from_toml(&missing, None).unwrap())
        .await
        .expect_err("no 0.3 is registered");
    assert!(
        error
            .to_string()
            .contains("no version of plugin `rogue` matches `0.3` (registered: 0.1.0, 0.2.0)"),
        "{error}"
    );
    for bad in [
        "rogue@v1/version",
        "rogue@1.2.3.4/version",
        "rogue@/version",
    ] {
        let toml = pinned.replace("rogue@0.1/version", bad);
        let error = Workflow::from_toml(&toml, None).expect_err(bad).to_string();
        assert!(error.contains("plugin version"), "{bad}: {error}");
    }
    runner.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_plugin_version_in_use_cannot_be_removed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corral.db");
    let client = common::runner_builder(&db)
        .execute(false)
        .build()
        .await
        .unwrap();
    for plugin in [artifacts::ROGUE, artifacts::ROGUE_V2] {
        client.register_plugin_file(plugin).await.unwrap();
    }
    apply(&client, LATEST).await;
    // Nothing executes here: the execution stays running, pinned to 0.2.0.
    let id = client
        .execute("latest", json!({}))
        .await
        .unwrap()
        .id()
        .to_owned();
    let error = client
        .remove_plugin("rogue", "0.2.0")
        .await
        .expect_err("0.2.0 is in use");
    assert!(
        matches!(
            &error,
            RunnerError::Store(StoreError::PluginInUse { count: 1, example, .. }) if *example == id
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("rogue@0.2.0 is in use"),
        "{error}"
    );
    assert_eq!(client.plugin("rogue", None).await.unwrap().len(), 2);
    // Another version is free to go, and an unknown one is an error.
    client.remove_plugin("rogue", "0.1.0").await.unwrap();
    let error = client.remove_plugin("rogue", "0.1.0").await.unwrap_err();
    assert!(
        matches!(&error, RunnerError::UnknownPlugin(r) if r == "rogue@0.1.0"),
        "{error:?}"
    );
    // Once the execution ended, its version may go.
    client.cancel(&id).await.unwrap();
    client.remove_plugin("rogue", "0.2.0").await.unwrap();
    assert!(matches!(
        client.plugin("rogue", None).await,
        Err(RunnerError::UnknownPlugin(_))
    ));
    client.shutdown(Duration::ZERO).await;
}

#[test]
fn plugin_show_lists_versions_and_remove_refuses_one_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let corral = |args: &[&str]| common::corral(dir.path(), args);
    for plugin in [artifacts::ROGUE, artifacts::ROGUE_V2] {
        assert!(corral(&["plugin", "add", plugin]).status.success());
    }
    let shown = corral(&["plugin", "show", "rogue"]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success(), "{text}");
    assert!(text.contains("rogue: 2 version(s)"), "{text}");
    assert!(text.find("0.1.0") < text.find("0.2.0"), "{text}");
    let shown = corral(&["--json", "plugin", "show", "rogue@0.2.0"]);
    let json: Value = serde_json::from_slice(&shown.stdout).expect("JSON");
    assert_eq!(json.as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(json[0]["info"]["version"], "0.2.0");

    let missing = corral(&["plugin", "show", "nope"]);
    assert!(!missing.status.success());
    let bare = corral(&["plugin", "remove", "rogue"]);
    assert!(!bare.status.success());
    assert!(
        String::from_utf8_lossy(&bare.stderr).contains("name the version to remove"),
        "{}",
        String::from_utf8_lossy(&bare.stderr)
    );
    let removed = corral(&["plugin", "remove", "rogue@0.1.0"]);
    assert!(removed.status.success());
    assert_eq!(
        String::from_utf8_lossy(&removed.stdout).trim(),
        "removed rogue@0.1.0"
    );
    let again = corral(&["plugin", "remove", "rogue@0.1.0"]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("no plugin `rogue@0.1.0`"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

/// A workflow as a newer host would store it: its format number says so.
async fn store_future_workflow(db: &std::path::Path) -> String {
    let store = corral::store::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let definition = json!({
        "format": corral::workflow::STORED_FORMAT + 1,
        "name": "future",
        "steps": [{ "id": "only", "task": "rogue/version", "retries_in_new_ways": true }],
    });
    store
        .apply_workflow("future", "f2", &definition, 0)
        .await
        .unwrap();
    let id = "0199a000-0000-7000-8000-000000000001".to_owned();
    let new = NewExecution {
        id: id.clone().into(),
        workflow: "future".into(),
        workflow_version: "f2".into(),
        input: Default::default(),
        steps: vec![StepChange::Ready {
            step_id: "only".into(),
            input: Default::default(),
            not_before_ms: 0,
        }],
        finish: None,
        plugins: Default::default(),
    };
    store
        .create_execution(&new, corral::store::now_ms())
        .await
        .unwrap();
    store.close().await;
    id
}

fn older_host(db: &std::path::Path) -> RunnerBuilder {
    common::runner_builder(db).plugin_deferral(DeferPolicy {
        every: Duration::from_millis(50),
        max_deferrals: 3,
        max_time: Duration::from_secs(60),
    })
}

/// The bug: the stored workflow was read with the TOML document's strict
/// shape, so an older host that met a field a newer host wrote failed the
/// whole execution. Now the stored format says what it is; an older host
/// defers the step to others (two older hosts here, so each sees another
/// alive) and only once the bounds are used up does the step fail, saying
/// why. Alone, a host fails it at once: nobody else could take it.
#[tokio::test]
async fn a_workflow_in_a_newer_format_is_left_to_other_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corral.db");
    let a = older_host(&db).build().await.unwrap();
    let b = older_host(&db).build().await.unwrap();
    // Past a lease renewal of each, so each knows the other is alive.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let id = store_future_workflow(&db).await;
    let report = finished(&a, &id).await;
    assert_eq!(report.status, ExecutionStatus::Failed, "{report:?}");
    let error = report.steps[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("cannot load the workflow"), "{error}");
    assert!(
        error.contains("format 2, newer than this host reads"),
        "{error}"
    );
    let attempts = a.attempts(&id, None).await.unwrap();
    let deferred = attempts
        .iter()
        .filter(|a| a.outcome.as_deref() == Some("deferred"))
        .count();
    // Each host says it is alive when it starts: one that claims before
    // the other said so fails the step at once, as it should.
    let alone = error.contains("no other runner is alive");
    assert!(
        deferred <= 3 && (alone || deferred >= 1),
        "deferred {deferred} times: {attempts:?}"
    );
    assert!(
        alone || error.contains("deferred 3 times already"),
        "{error}"
    );
    a.shutdown(Duration::ZERO).await;
    b.shutdown(Duration::ZERO).await;
}
