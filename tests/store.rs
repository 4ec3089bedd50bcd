//! The store test suite: the same tests against SQLite (a temporary file)
//! and PostgreSQL (a fresh schema per test, dropped at the end).
//!
//! PostgreSQL comes from `CORRAL_TEST_POSTGRES_URL`
//! (e.g. `postgres://postgres@127.0.0.1:5432/test`). Unset, the PostgreSQL
//! variants print a note and pass; set, a server that cannot be reached
//! fails them.
//!
//! Times are explicit milliseconds, so nothing here waits for a clock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use corral::sandbox::{PluginInfo, TaskInfo};
use corral::store::{
    self, Added, Applied, AttemptEnd, AttemptResult, Claim, ConnectOptions, ExecutionCursor,
    ExecutionFilter, ExecutionId, ExecutionStatus, NewExecution, NewWorkflow, Object, Plan,
    PostgresStore, RunKey, ScheduleFire, Snapshot, StepChange, Store, StoreError, TaskRunStatus,
    Wakeup, Wakeups, WorkflowOwner,
};
use corral::testing::{self, Finish, Planner};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

const POSTGRES_ENV: &str = "CORRAL_TEST_POSTGRES_URL";

/// A point in time all tests start from.
const T: i64 = 1_700_000_000_000;
const LEASE: i64 = 30_000;

// ---------------------------------------------------------------------------
// Harness

/// One test's database: its store and how to open another one on the same
/// data (another host).
#[derive(Clone)]
struct Db {
    store: Arc<dyn Store>,
    url: String,
    tenant: Option<String>,
    _dir: Option<Arc<tempfile::TempDir>>,
}

impl Db {
    /// Another store on the same database and tenant: what another host sees.
    async fn reopen(&self) -> Arc<dyn Store> {
        let options = ConnectOptions {
            tenant: self.tenant.clone(),
            application_name: "corral-test-store".into(),
            ..Default::default()
        };
        store::connect_with(&self.url, &options)
            .await
            .expect("the database opens again")
    }
}

/// Runs every test function below against both stores.
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::on_sqlite(super::$name).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::on_postgres(stringify!($name), super::$name).await
                }
            )*
        }
    };
}

store_tests!(
    plugins_add_list_lookup_conflict,
    plugin_versions_resolve_and_remove,
    workflows_apply_created_updated_unchanged,
    create_execution_and_read_it_back,
    create_executions_is_all_or_nothing,
    claim_in_batches_respecting_not_before,
    concurrent_claims_never_take_a_run_twice,
    finish_success_replans_until_succeeded,
    finish_attempts_records_a_batch_in_order,
    a_planner_shared_by_ends_runs_once_between_others,
    write_creates_records_then_claims,
    write_keeps_a_failing_part_from_the_others,
    finish_retry_then_failure,
    finish_cancelled,
    finish_interrupted_does_not_count,
    finish_deferred_leaves_the_step_to_others,
    held_claims_show_what_a_runner_still_holds,
    lost_lease_changes_nothing,
    renew_leases_extends_own_and_reports_cancels,
    reap_spares_the_callers_own_runs,
    stale_claim_of_the_same_runner_changes_nothing,
    reap_expired_requeues_as_interrupted,
    cancel_execution_semantics,
    reaping_a_cancelled_execution_cancels_it,
    list_executions_filters_and_order,
    list_executions_pages_from_a_cursor,
    attempts_listing_order_and_filter,
    sibling_finishes_serialize_their_planning,
    hosts_share_work_and_recover_a_dead_hosts_runs,
    guest_text_with_nul_is_stored,
    reopening_sees_the_same_data,
    close_marks_the_store_closed,
    workflow_owners_guard_their_names,
    register_plugin_is_all_or_nothing,
    heartbeats_count_other_live_runners,
    schedules_put_fire_pause_remove,
    wake_ups_reach_other_hosts,
);

const TEST_TIMEOUT: Duration = Duration::from_secs(120);

async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("corral.db").display());
    let store = store::connect(&url).await.expect("SQLite opens");
    let db = Db {
        store: store.clone(),
        url,
        tenant: None,
        _dir: Some(Arc::new(dir)),
    };
    let outcome = tokio::time::timeout(TEST_TIMEOUT, tokio::spawn(test(db))).await;
    store.close().await;
    finish(outcome);
}

fn postgres_url() -> Option<String> {
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("note: {POSTGRES_ENV} is not set: PostgreSQL test skipped");
            None
        }
    }
}

fn fresh_schema() -> String {
    format!("corral_test_{}", uuid::Uuid::new_v4().simple())
}

async fn admin(url: &str) -> PgConnection {
    PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_ENV} is set but PostgreSQL cannot be reached: {e}"))
}

async fn drop_schema(url: &str, schema: &str) {
    let mut conn = admin(url).await;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(&mut conn)
        .await
        .expect("the test schema is dropped");
}

async fn on_postgres<F, Fut>(name: &str, test: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(url) = postgres_url() else { return };
    let schema = fresh_schema();
    let options = ConnectOptions {
        tenant: Some(schema.clone()),
        application_name: format!("corral-test-{name}"),
        ..Default::default()
    };
    let store = store::connect_with(&url, &options)
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_ENV} is set but PostgreSQL is unusable: {e}"));
    let db = Db {
        store: store.clone(),
        url: url.clone(),
        tenant: Some(schema.clone()),
        _dir: None,
    };
    let outcome = tokio::time::timeout(TEST_TIMEOUT, tokio::spawn(test(db))).await;
    store.close().await;
    drop_schema(&url, &schema).await;
    finish(outcome);
}

/// Passes a test's panic on, after the clean-up.
fn finish(outcome: Result<Result<(), tokio::task::JoinError>, tokio::time::error::Elapsed>) {
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(error)) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Ok(Err(error)) => panic!("the test task failed: {error}"),
        Err(_) => panic!("the test did not finish within {TEST_TIMEOUT:?}"),
    }
}

// ---------------------------------------------------------------------------
// Helpers

fn obj(value: Value) -> Object {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn plugin_info(name: &str, version: &str) -> PluginInfo {
    PluginInfo {
        name: name.into(),
        version: version.into(),
        tasks: vec![TaskInfo {
            name: "work".into(),
            description: "does work".into(),
            default_timeout_ms: Some(1000),
            max_attempts: None,
        }],
        workflows: vec![],
    }
}

/// Stores workflow `name` at version `v1`, which executions refer to.
async fn workflow(store: &dyn Store, name: &str) {
    store
        .apply_workflow(name, "v1", &json!({ "name": name, "steps": [] }), T)
        .await
        .expect("workflow applied");
}

fn ready(step: &str, not_before_ms: i64) -> StepChange {
    StepChange::Ready {
        step_id: step.into(),
        input: obj(json!({ "step": step })),
        not_before_ms,
    }
}

fn pending(step: &str) -> StepChange {
    StepChange::Pending {
        step_id: step.into(),
    }
}

fn new_execution(id: &str, workflow: &str, steps: Vec<StepChange>) -> NewExecution {
    NewExecution {
        id: id.into(),
        workflow: workflow.into(),
        workflow_version: "v1".into(),
        input: obj(json!({ "execution": id })),
        steps,
        finish: None,
        plugins: Default::default(),
    }
}

/// Creates workflow `w` (if needed) and an execution of it at time `T`.
async fn execution(store: &dyn Store, id: &str, steps: Vec<StepChange>) {
    workflow(store, "w").await;
    store
        .create_execution(&new_execution(id, "w", steps), T)
        .await
        .expect("execution created");
}

async fn snapshot(store: &dyn Store, id: &str) -> Snapshot {
    store
        .execution(id)
        .await
        .expect("execution read")
        .expect("execution exists")
}

fn run<'a>(snapshot: &'a Snapshot, step: &str) -> &'a corral::store::TaskRunRecord {
    snapshot
        .runs
        .iter()
        .find(|r| r.step_id == step)
        .unwrap_or_else(|| panic!("no step {step}"))
}

fn statuses(snapshot: &Snapshot) -> BTreeMap<String, TaskRunStatus> {
    snapshot
        .runs
        .iter()
        .map(|r| (r.step_id.clone(), r.status))
        .collect()
}

async fn claim(store: &dyn Store, runner: &str, max: u32, now: i64) -> Vec<Claim> {
    store
        .claim(runner, max, now + LEASE, now)
        .await
        .expect("claim")
}

fn end(claim: &Claim, runner: &str, result: AttemptResult) -> AttemptEnd {
    let outcome = match &result {
        AttemptResult::Succeeded(_) => "succeeded",
        AttemptResult::Retry { .. } | AttemptResult::Failed(_) => "failed",
        AttemptResult::Cancelled => "cancelled",
        AttemptResult::Interrupted => "interrupted",
        AttemptResult::Deferred { .. } => "deferred",
    };
    AttemptEnd {
        claim: claim.clone(),
        runner_id: runner.into(),
        outcome: outcome.into(),
        result,
        logs: json!([{ "level": "info", "message": format!("{} ran", claim.step_id) }]),
        stdout: format!("stdout of {}", claim.step_id),
        stderr: format!("stderr of {}", claim.step_id),
    }
}

fn succeeded(claim: &Claim) -> AttemptResult {
    AttemptResult::Succeeded(obj(json!({ claim.step_id.clone(): "done" })))
}

/// A test planner. Steps depend on those listed in `deps`; a pending step
/// whose dependencies all succeeded (or were skipped) becomes ready with
/// the execution's input, one with a failed or cancelled dependency is
/// cancelled; the execution ends when every step has ended. A cancelled
/// execution is planned as by `cancel_only`.
fn dag(deps: &[(&str, &[&str])], now: i64) -> impl Fn(&Snapshot) -> Plan + Send + Sync + 'static {
    let deps: HashMap<String, Vec<String>> = deps
        .iter()
        .map(|(step, on)| (step.to_string(), on.iter().map(|s| s.to_string()).collect()))
        .collect();
    move |snapshot: &Snapshot| {
        if snapshot.execution.cancel_requested {
            return cancel_only(snapshot);
        }
        let mut status: HashMap<&str, TaskRunStatus> = snapshot
            .runs
            .iter()
            .map(|r| (r.step_id.as_str(), r.status))
            .collect();
        let mut steps = Vec::new();
        for run in &snapshot.runs {
            if run.status != TaskRunStatus::Pending {
                continue;
            }
            let on = deps.get(&run.step_id).map(Vec::as_slice).unwrap_or(&[]);
            let state = |d: &String| status.get(d.as_str()).copied();
            if on.iter().all(|d| {
                matches!(
                    state(d),
                    Some(TaskRunStatus::Succeeded | TaskRunStatus::Skipped)
                )
            }) {
                steps.push(StepChange::Ready {
                    step_id: run.step_id.clone(),
                    input: snapshot.execution.input.clone(),
                    not_before_ms: now,
                });
                status.insert(&run.step_id, TaskRunStatus::Ready);
            } else if on.iter().any(|d| {
                matches!(
                    state(d),
                    Some(TaskRunStatus::Failed | TaskRunStatus::Cancelled)
                )
            }) {
                steps.push(StepChange::Cancelled {
                    step_id: run.step_id.clone(),
                });
                status.insert(&run.step_id, TaskRunStatus::Cancelled);
            }
        }
        let finish = status.values().all(|s| s.is_final()).then(|| {
            if status.values().any(|s| *s == TaskRunStatus::Failed) {
                (ExecutionStatus::Failed, Some("a step failed".to_owned()))
            } else if status.values().any(|s| *s == TaskRunStatus::Cancelled) {
                (ExecutionStatus::Cancelled, Some("cancelled".to_owned()))
            } else {
                (ExecutionStatus::Succeeded, None)
            }
        });
        Plan { steps, finish }
    }
}

/// The planner of a cancelled execution (the runtime's `cancel_only`):
/// cancels what has not started, ends the execution once nothing runs.
fn cancel_only(snapshot: &Snapshot) -> Plan {
    if !snapshot.execution.cancel_requested {
        return Plan::default();
    }
    let steps = snapshot
        .runs
        .iter()
        .filter(|r| matches!(r.status, TaskRunStatus::Pending | TaskRunStatus::Ready))
        .map(|r| StepChange::Cancelled {
            step_id: r.step_id.clone(),
        })
        .collect();
    let running = snapshot
        .runs
        .iter()
        .any(|r| r.status == TaskRunStatus::Running);
    Plan {
        steps,
        finish: (!running).then(|| (ExecutionStatus::Cancelled, Some("cancelled".into()))),
    }
}

// ---------------------------------------------------------------------------
// The suite

async fn plugin_versions_resolve_and_remove(db: Db) {
    let store = &*db.store;
    for (version, sha) in [
        ("0.1.0", "s-010"),
        ("0.2.0", "s-020"),
        ("0.2.7", "s-027"),
        ("0.20.1", "s-201"),
    ] {
        store
            .add_plugin(&plugin_info("etl", version), sha, sha.as_bytes())
            .await
            .unwrap();
        // added_at has millisecond precision: keep registrations apart.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let resolve = |version: Option<&'static str>| async move {
        store
            .resolve_plugin("etl", version)
            .await
            .unwrap()
            .map(|pin| (pin.version, pin.sha256))
    };
    let pin = |v: &str, s: &str| Some((v.to_owned(), s.to_owned()));
    assert_eq!(resolve(None).await, pin("0.20.1", "s-201"), "newest");
    assert_eq!(resolve(Some("0.1.0")).await, pin("0.1.0", "s-010"), "exact");
    // `0.2` continues after a dot: 0.2.x, never 0.20.1.
    assert_eq!(resolve(Some("0.2")).await, pin("0.2.7", "s-027"));
    assert_eq!(resolve(Some("0.3")).await, None);
    assert_eq!(store.resolve_plugin("nope", None).await.unwrap(), None);

    // Removal is refused while an execution that has not ended pins the
    // version, through a plain or a versioned reference.
    workflow(store, "w").await;
    let mut pinned = new_execution("e-pin", "w", vec![ready("a", T)]);
    pinned.plugins.insert(
        "etl@0.2".into(),
        corral::store::PluginPin {
            version: "0.2.7".into(),
            sha256: "s-027".into(),
        },
    );
    store.create_execution(&pinned, T).await.unwrap();
    match store.remove_plugin("etl", "0.2.7").await {
        Err(StoreError::PluginInUse {
            count: 1, example, ..
        }) => assert_eq!(example, "e-pin"),
        other => panic!("expected PluginInUse, got {other:?}"),
    }
    assert_eq!(
        resolve(Some("0.2")).await,
        pin("0.2.7", "s-027"),
        "nothing removed"
    );
    // Another version is free to go; an unknown one is `false`.
    assert!(store.remove_plugin("etl", "0.2.0").await.unwrap());
    assert!(!store.remove_plugin("etl", "0.2.0").await.unwrap());
    assert!(!store.remove_plugin("other", "0.1.0").await.unwrap());
    assert_eq!(store.plugin("etl@0.2.0").await.unwrap(), None);
    // Once its execution ended, the pinned version may go too.
    testing::cancel_execution(store, "e-pin", T + 1, &cancel_only)
        .await
        .unwrap()
        .expect("e-pin");
    assert!(store.remove_plugin("etl", "0.2.7").await.unwrap());
    assert_eq!(resolve(Some("0.2")).await, None);
    assert_eq!(resolve(None).await, pin("0.20.1", "s-201"));
}

async fn plugins_add_list_lookup_conflict(db: Db) {
    let store = &*db.store;
    let bytes = b"\0asm component one".to_vec();
    let info = plugin_info("alpha", "1.0.0");
    assert_eq!(
        store.add_plugin(&info, "sha-1", &bytes).await.unwrap(),
        Added::New
    );
    assert_eq!(
        store.add_plugin(&info, "sha-1", &bytes).await.unwrap(),
        Added::Unchanged
    );
    match store.add_plugin(&info, "sha-other", b"other").await {
        Err(StoreError::PluginConflict {
            name,
            version,
            existing,
        }) => assert_eq!((&*name, &*version, &*existing), ("alpha", "1.0.0", "sha-1")),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // added_at has millisecond precision: keep registrations apart.
    tokio::time::sleep(Duration::from_millis(5)).await;
    store
        .add_plugin(&plugin_info("alpha", "1.1.0"), "sha-2", b"two")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    store
        .add_plugin(&plugin_info("_beta", "0.1.0"), "sha-3", b"three")
        .await
        .unwrap();

    let list = store.list_plugins().await.unwrap();
    let ids: Vec<String> = list.iter().map(|p| p.info.id()).collect();
    assert_eq!(ids, ["_beta@0.1.0", "alpha@1.0.0", "alpha@1.1.0"]);
    assert_eq!(list[1].info, info);
    assert_eq!(list[1].sha256, "sha-1");
    assert_eq!(list[1].size, bytes.len() as u64);
    assert!(list[1].added_at.ends_with('Z'), "{}", list[1].added_at);

    let (record, stored) = store.plugin("alpha").await.unwrap().expect("newest alpha");
    assert_eq!(
        (record.info.version.as_str(), stored.as_slice()),
        ("1.1.0", &b"two"[..])
    );
    let (record, stored) = store.plugin("alpha@1.0.0").await.unwrap().expect("alpha 1");
    assert_eq!(record.sha256, "sha-1");
    assert_eq!(stored, bytes);
    assert!(store.plugin("alpha@9.9.9").await.unwrap().is_none());
    assert!(store.plugin("gamma").await.unwrap().is_none());
}

async fn workflow_owners_guard_their_names(db: Db) {
    let store = &*db.store;
    let def = json!({ "name": "w", "steps": [] });
    let wf = |version| NewWorkflow {
        name: "w",
        version,
        definition: &def,
    };
    let alpha = WorkflowOwner::Plugin("alpha".into());
    let beta = WorkflowOwner::Plugin("beta".into());
    let owner = async |store: &dyn Store| store.workflow("w", None).await.unwrap().unwrap().owner;
    assert_eq!(
        store.apply_workflow_as(&wf("v1"), &alpha, T).await.unwrap(),
        Applied::Created
    );
    assert_eq!(owner(store).await, alpha);
    assert_eq!(
        store
            .apply_workflow_as(&wf("v2"), &alpha, T + 1)
            .await
            .unwrap(),
        Applied::Updated {
            previous: "v1".into()
        }
    );
    match store.apply_workflow_as(&wf("v3"), &beta, T + 2).await {
        Err(StoreError::WorkflowOwned { name, owner, by }) => {
            assert_eq!((name.as_str(), &owner, &by), ("w", &alpha, &beta));
        }
        other => panic!("another plugin replaced the workflow: {other:?}"),
    }
    // The operator takes it over; then no plugin may touch it.
    assert_eq!(
        store.apply_workflow("w", "v2", &def, T + 3).await.unwrap(),
        Applied::Unchanged
    );
    assert_eq!(owner(store).await, WorkflowOwner::Operator);
    assert!(matches!(
        store.apply_workflow_as(&wf("v4"), &alpha, T + 4).await,
        Err(StoreError::WorkflowOwned { .. })
    ));
    let latest = store.workflow("w", None).await.unwrap().unwrap();
    assert_eq!(latest.version, "v2", "a refused apply stored a version");
}

async fn register_plugin_is_all_or_nothing(db: Db) {
    let store = &*db.store;
    let def = json!({ "name": "taken", "steps": [] });
    store.apply_workflow("taken", "op", &def, T).await.unwrap();
    let info = plugin_info("alpha", "1.0.0");
    let fresh = json!({ "name": "fresh", "steps": [] });
    let workflows = [
        NewWorkflow {
            name: "fresh",
            version: "f1",
            definition: &fresh,
        },
        NewWorkflow {
            name: "taken",
            version: "p1",
            definition: &def,
        },
    ];
    match store
        .register_plugin(&info, "sha", b"bytes", &workflows, T + 1)
        .await
    {
        Err(StoreError::WorkflowOwned { name, .. }) => assert_eq!(name, "taken"),
        other => panic!("expected the clash, got {other:?}"),
    }
    assert!(
        store.list_plugins().await.unwrap().is_empty(),
        "plugin stored"
    );
    assert!(store.workflow("fresh", None).await.unwrap().is_none());
    assert_eq!(
        store
            .workflow("taken", None)
            .await
            .unwrap()
            .unwrap()
            .version,
        "op"
    );
    let (added, applied) = store
        .register_plugin(&info, "sha", b"bytes", &workflows[..1], T + 2)
        .await
        .unwrap();
    assert_eq!((added, applied), (Added::New, vec![Applied::Created]));
    assert_eq!(
        store.workflow("fresh", None).await.unwrap().unwrap().owner,
        WorkflowOwner::Plugin("alpha".into())
    );
}

async fn heartbeats_count_other_live_runners(db: Db) {
    let store = &*db.store;
    let now = store::now_ms();
    assert_eq!(store.heartbeat("a", now, now - 1_000).await.unwrap(), 0);
    assert_eq!(store.heartbeat("b", now, now - 1_000).await.unwrap(), 1);
    // Later, only `b` is still beating: `a` is no longer counted.
    assert_eq!(
        store
            .heartbeat("b", now + 5_000, now + 4_000)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .heartbeat("a", now + 5_000, now + 4_000)
            .await
            .unwrap(),
        1
    );
}

async fn workflows_apply_created_updated_unchanged(db: Db) {
    let store = &*db.store;
    let one = json!({ "name": "etl", "steps": [{ "id": "a", "n": 1.5 }] });
    let two = json!({ "name": "etl", "steps": [{ "id": "b" }] });
    assert_eq!(
        store.apply_workflow("etl", "v1", &one, T).await.unwrap(),
        Applied::Created
    );
    assert_eq!(
        store
            .apply_workflow("etl", "v1", &one, T + 1)
            .await
            .unwrap(),
        Applied::Unchanged
    );
    assert_eq!(
        store
            .apply_workflow("etl", "v2", &two, T + 2)
            .await
            .unwrap(),
        Applied::Updated {
            previous: "v1".into()
        }
    );
    store
        .apply_workflow("alpha", "a1", &json!({ "name": "alpha" }), T + 3)
        .await
        .unwrap();

    let latest = store.workflow("etl", None).await.unwrap().expect("latest");
    assert_eq!(
        (
            latest.version.as_str(),
            &latest.definition,
            latest.applied_at_ms
        ),
        ("v2", &two, T + 2)
    );
    let first = store
        .workflow("etl", Some("v1"))
        .await
        .unwrap()
        .expect("v1");
    assert_eq!((first.definition, first.applied_at_ms), (one.clone(), T));
    assert!(store.workflow("etl", Some("v9")).await.unwrap().is_none());
    assert!(store.workflow("nope", None).await.unwrap().is_none());

    let names: Vec<(String, String)> = store
        .list_workflows()
        .await
        .unwrap()
        .into_iter()
        .map(|w| (w.name, w.version))
        .collect();
    assert_eq!(
        names,
        [("alpha".into(), "a1".into()), ("etl".into(), "v2".into())]
    );

    // Re-applying an older version makes it the latest again.
    assert_eq!(
        store
            .apply_workflow("etl", "v1", &one, T + 10)
            .await
            .unwrap(),
        Applied::Updated {
            previous: "v2".into()
        }
    );
    let latest = store.workflow("etl", None).await.unwrap().expect("latest");
    assert_eq!(
        (latest.version.as_str(), latest.applied_at_ms),
        ("v1", T + 10)
    );
    let listed = store.list_workflows().await.unwrap();
    assert_eq!(listed[1].version, "v1");
}

async fn create_executions_is_all_or_nothing(db: Db) {
    let store = &*db.store;
    workflow(store, "w").await;
    let batch = [
        new_execution("e1", "w", vec![ready("a", T)]),
        new_execution("e2", "w", vec![ready("a", T), pending("b")]),
    ];
    store.create_executions(&batch, T).await.unwrap();
    for (id, steps) in [("e1", 1), ("e2", 2)] {
        let s = snapshot(store, id).await;
        assert_eq!((s.execution.created_at_ms, s.runs.len()), (T, steps));
        assert_eq!(run(&s, "a").status, TaskRunStatus::Ready);
    }
    // e2 exists already: the whole batch fails and e3 is not created.
    let batch = [
        new_execution("e3", "w", vec![ready("a", T)]),
        new_execution("e2", "w", vec![ready("a", T)]),
    ];
    assert!(store.create_executions(&batch, T).await.is_err());
    assert!(store.execution("e3").await.unwrap().is_none());
    assert_eq!(snapshot(store, "e2").await.runs.len(), 2, "e2 untouched");
}

async fn create_execution_and_read_it_back(db: Db) {
    let store = &*db.store;
    execution(
        store,
        "e1",
        vec![
            ready("a", T),
            pending("b"),
            StepChange::Skipped {
                step_id: "c".into(),
            },
        ],
    )
    .await;
    let s = snapshot(store, "e1").await;
    assert_eq!(s.execution.id, "e1");
    assert_eq!(s.execution.workflow, "w");
    assert_eq!(s.execution.workflow_version, "v1");
    assert_eq!(s.execution.status, ExecutionStatus::Running);
    assert_eq!(s.execution.input, obj(json!({ "execution": "e1" })));
    assert_eq!(s.execution.created_at_ms, T);
    assert_eq!(s.execution.finished_at_ms, None);
    assert!(!s.execution.cancel_requested);
    let steps: Vec<&str> = s.runs.iter().map(|r| r.step_id.as_str()).collect();
    assert_eq!(steps, ["a", "b", "c"]);
    let a = run(&s, "a");
    assert_eq!(a.status, TaskRunStatus::Ready);
    assert_eq!(a.input, Some(obj(json!({ "step": "a" }))));
    assert_eq!((a.attempts, a.not_before_ms), (0, T));
    assert_eq!(run(&s, "b").status, TaskRunStatus::Pending);
    assert_eq!(run(&s, "b").input, None);
    assert_eq!(run(&s, "c").status, TaskRunStatus::Skipped);

    // An execution that ends at once.
    let mut done = new_execution(
        "e2",
        "w",
        vec![StepChange::Skipped {
            step_id: "only".into(),
        }],
    );
    done.finish = Some((ExecutionStatus::Succeeded, None));
    store.create_execution(&done, T + 5).await.unwrap();
    let s = snapshot(store, "e2").await;
    assert_eq!(s.execution.status, ExecutionStatus::Succeeded);
    assert_eq!(s.execution.finished_at_ms, Some(T + 5));

    assert!(store.execution("nope").await.unwrap().is_none());
    // The same id twice is an error, and changes nothing.
    assert!(
        store
            .create_execution(&new_execution("e1", "w", vec![pending("z")]), T)
            .await
            .is_err()
    );
    assert_eq!(snapshot(store, "e1").await.runs.len(), 3);
}

async fn claim_in_batches_respecting_not_before(db: Db) {
    let store = &*db.store;
    execution(
        store,
        "e1",
        vec![
            ready("d", T + 30),
            ready("b", T + 10),
            ready("a", T + 10),
            ready("c", T + 20),
            ready("late", T + 1000),
            pending("waiting"),
        ],
    )
    .await;
    execution(store, "e0", vec![ready("z", T + 20)]).await;

    assert!(claim(store, "r1", 10, T).await.is_empty(), "nothing is due");
    let first = claim(store, "r1", 2, T + 100).await;
    let mut keys: Vec<(&str, &str)> = first
        .iter()
        .map(|c| (c.execution_id.as_str(), c.step_id.as_str()))
        .collect();
    keys.sort();
    assert_eq!(keys, [("e1", "a"), ("e1", "b")], "oldest not_before first");
    let a = first.iter().find(|c| c.step_id == "a").unwrap();
    assert_eq!(a.workflow, "w");
    assert_eq!(a.workflow_version, "v1");
    assert_eq!((a.attempts, a.number), (1, 1));
    assert_eq!(a.input, obj(json!({ "step": "a" })));

    // Same not_before: by execution id, then step id.
    let second = claim(store, "r2", 2, T + 100).await;
    let mut keys: Vec<(&str, &str)> = second
        .iter()
        .map(|c| (c.execution_id.as_str(), c.step_id.as_str()))
        .collect();
    keys.sort();
    assert_eq!(keys, [("e0", "z"), ("e1", "c")]);

    let third = claim(store, "r1", 10, T + 100).await;
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].step_id, "d");
    assert!(claim(store, "r1", 10, T + 999).await.is_empty());
    let late = claim(store, "r1", 10, T + 1000).await;
    assert_eq!(late.len(), 1, "not_before is inclusive");
    assert!(claim(store, "r1", 10, T + 5000).await.is_empty());

    let s = snapshot(store, "e1").await;
    let b = run(&s, "b");
    assert_eq!(b.status, TaskRunStatus::Running);
    assert_eq!(b.claimed_by.as_deref(), Some("r1"));
    assert_eq!(b.lease_until_ms, Some(T + 100 + LEASE));
    assert_eq!(b.attempts, 1);
    assert_eq!(run(&s, "waiting").status, TaskRunStatus::Pending);
    let attempts = store.attempts("e1", Some("c")).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        (
            attempts[0].number,
            attempts[0].runner_id.as_str(),
            attempts[0].started_at_ms
        ),
        (1, "r2", T + 100)
    );
    assert_eq!(attempts[0].finished_at_ms, None);
    assert_eq!(attempts[0].outcome, None);
}

async fn concurrent_claims_never_take_a_run_twice(db: Db) {
    let store = db.store.clone();
    workflow(&*store, "w").await;
    for e in 0..20 {
        let steps = (0..10).map(|s| ready(&format!("s{s:02}"), T)).collect();
        store
            .create_execution(&new_execution(&format!("e{e:02}"), "w", steps), T)
            .await
            .unwrap();
    }
    let mut claimers = tokio::task::JoinSet::new();
    for i in 0..4 {
        let store = store.clone();
        claimers.spawn(async move {
            let runner = format!("r{i}");
            let mut mine = Vec::new();
            loop {
                let claims = store
                    .claim(&runner, 7, T + LEASE, T + 1)
                    .await
                    .expect("claim");
                if claims.is_empty() {
                    return mine;
                }
                mine.extend(
                    claims
                        .into_iter()
                        .map(|c| (c.execution_id, c.step_id, runner.clone())),
                );
            }
        });
    }
    let mut all = Vec::new();
    while let Some(claims) = claimers.join_next().await {
        all.extend(claims.expect("claimer"));
    }
    assert_eq!(all.len(), 200, "every run claimed once");
    let unique: BTreeSet<(&ExecutionId, &String)> = all.iter().map(|(e, s, _)| (e, s)).collect();
    assert_eq!(unique.len(), 200, "no run claimed twice");
    let by: HashMap<(&ExecutionId, &String), &String> =
        all.iter().map(|(e, s, r)| ((e, s), r)).collect();
    for e in 0..20 {
        let id = format!("e{e:02}");
        let s = snapshot(&*store, &id).await;
        for r in &s.runs {
            assert_eq!(r.status, TaskRunStatus::Running);
            assert_eq!(r.attempts, 1);
            assert_eq!(
                r.claimed_by.as_ref(),
                Some(by[&(&ExecutionId::from(id.as_str()), &r.step_id)])
            );
        }
        let attempts = store.attempts(&id, None).await.unwrap();
        assert_eq!(attempts.len(), 10, "one attempt per run");
        assert!(attempts.iter().all(|a| a.number == 1));
    }
}

async fn finish_success_replans_until_succeeded(db: Db) {
    let store = &*db.store;
    execution(store, "e1", vec![ready("a", T), pending("b")]).await;
    let planner = dag(&[("b", &["a"])], T + 10);
    let [a] = claim(store, "r1", 5, T)
        .await
        .try_into()
        .expect("one claim");
    let output = obj(json!({ "a": [1, 2, 3], "text": "ünïcode ✓" }));
    let after = testing::finish_attempt(
        store,
        &end(&a, "r1", AttemptResult::Succeeded(output.clone())),
        T + 10,
        &planner,
    )
    .await
    .unwrap()
    .expect("recorded");
    let ra = run(&after, "a");
    assert_eq!(ra.status, TaskRunStatus::Succeeded);
    assert_eq!(ra.output.as_ref(), Some(&output));
    assert_eq!((ra.claimed_by.as_deref(), ra.lease_until_ms), (None, None));
    assert_eq!(ra.attempts, 1);
    let rb = run(&after, "b");
    assert_eq!(
        rb.status,
        TaskRunStatus::Ready,
        "the plan ran in the same call"
    );
    assert_eq!(rb.input.as_ref(), Some(&after.execution.input));
    assert_eq!(rb.not_before_ms, T + 10);
    assert_eq!(after.execution.status, ExecutionStatus::Running);
    assert_eq!(
        statuses(&snapshot(store, "e1").await),
        statuses(&after),
        "what was returned is what is stored"
    );

    let attempt = &store.attempts("e1", Some("a")).await.unwrap()[0];
    assert_eq!(attempt.finished_at_ms, Some(T + 10));
    assert_eq!(attempt.outcome.as_deref(), Some("succeeded"));
    assert_eq!(attempt.error, None);
    assert_eq!(
        attempt.logs,
        Some(json!([{ "level": "info", "message": "a ran" }]))
    );
    assert_eq!(attempt.stdout.as_deref(), Some("stdout of a"));
    assert_eq!(attempt.stderr.as_deref(), Some("stderr of a"));

    let [b] = claim(store, "r2", 5, T + 10).await.try_into().expect("b");
    let planner = dag(&[("b", &["a"])], T + 20);
    let after = testing::finish_attempt(store, &end(&b, "r2", succeeded(&b)), T + 20, &planner)
        .await
        .unwrap()
        .expect("recorded");
    assert_eq!(after.execution.status, ExecutionStatus::Succeeded);
    assert_eq!(after.execution.finished_at_ms, Some(T + 20));
    assert_eq!(after.execution.error, None);
}

async fn finish_attempts_records_a_batch_in_order(db: Db) {
    let store = &*db.store;
    // e1: a, b in parallel, then join; e2: one step; plus a stale claim.
    execution(
        store,
        "e1",
        vec![ready("a", T), ready("b", T), pending("join")],
    )
    .await;
    execution(store, "e2", vec![ready("x", T)]).await;
    let planner = dag(&[("join", &["a", "b"])], T + 10);
    let claims = claim(store, "r1", 5, T).await;
    assert_eq!(claims.len(), 3);
    let by_step = |step: &str| claims.iter().find(|c| c.step_id == step).expect(step);
    let (a, b, x) = (by_step("a"), by_step("b"), by_step("x"));
    let mut stale = x.clone();
    stale.number = 9;
    let ends = [
        end(b, "r1", succeeded(b)),
        end(&stale, "r1", succeeded(&stale)),
        end(x, "r1", succeeded(x)),
        end(a, "r1", succeeded(a)),
    ];
    let batch: Vec<Finish<'_>> = ends
        .iter()
        .map(|end| (end, T + 10, &planner as _))
        .collect();
    let after = testing::finish_attempts(store, &batch).await.unwrap();
    assert_eq!(after.len(), 4, "one result per end, in order");
    let after_b = after[0].as_ref().expect("b recorded");
    assert!(after[1].is_none(), "the stale claim changes nothing");
    let after_x = after[2].as_ref().expect("x recorded");
    assert_eq!(after_x.execution.status, ExecutionStatus::Succeeded);
    let after_a = after[3].as_ref().expect("a recorded");
    // Whichever of a and b was recorded second saw the other one done (a
    // store may report both ends with the state after the whole batch).
    let joins = [run(after_a, "join").status, run(after_b, "join").status];
    assert!(
        joins.contains(&TaskRunStatus::Ready)
            && joins
                .iter()
                .all(|j| [TaskRunStatus::Ready, TaskRunStatus::Pending].contains(j)),
        "{joins:?}"
    );
    let stored = snapshot(store, "e1").await;
    assert_eq!(run(&stored, "join").status, TaskRunStatus::Ready);
    let attempts = store.attempts("e1", None).await.unwrap();
    assert!(
        attempts
            .iter()
            .all(|a| a.outcome.as_deref() == Some("succeeded")),
        "{attempts:?}"
    );
    assert!(
        testing::finish_attempts(store, &[])
            .await
            .unwrap()
            .is_empty()
    );
}

/// Planners given with several ends of an execution all run, each once
/// per end, after every end is recorded; the result is as if each ran
/// after its own end.
async fn a_planner_shared_by_ends_runs_once_between_others(db: Db) {
    let store = &*db.store;
    let steps = ["a", "b", "c", "d"];
    let mut runs: Vec<StepChange> = steps.iter().map(|s| ready(s, T)).collect();
    runs.push(pending("join"));
    execution(store, "e1", runs).await;
    let claims = claim(store, "r1", 5, T).await;
    assert_eq!(claims.len(), 4);
    let dag = dag(&[("join", &steps)], T + 10);
    let (shared_runs, other_runs) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let shared = |snapshot: &Snapshot| {
        shared_runs.fetch_add(1, Ordering::Relaxed);
        dag(snapshot)
    };
    let other = |_: &Snapshot| {
        other_runs.fetch_add(1, Ordering::Relaxed);
        Plan::default()
    };
    let ends: Vec<AttemptEnd> = claims.iter().map(|c| end(c, "r1", succeeded(c))).collect();
    let planners: [Planner<'_>; 4] = [&shared, &shared, &other, &shared];
    let batch: Vec<Finish<'_>> = ends
        .iter()
        .zip(planners)
        .map(|(end, planner)| (end, T + 10, planner))
        .collect();
    let after = testing::finish_attempts(store, &batch).await.unwrap();
    assert!(after.iter().all(Option::is_some), "every end recorded");
    let stored = snapshot(store, "e1").await;
    assert_eq!(run(&stored, "join").status, TaskRunStatus::Ready);
    assert_eq!(other_runs.load(Ordering::Relaxed), 1);
    // Every end is recorded first, then each planner runs once per end,
    // on the execution after all of them (on every database alike).
    assert_eq!(shared_runs.load(Ordering::Relaxed), 3);
}

/// Execution e1 (a, then b) with a claimed by r1 and its successful end,
/// not yet recorded, and the planner of e1.
async fn a_then_b_with_a_done(
    store: &dyn Store,
) -> (
    AttemptEnd,
    impl Fn(&Snapshot) -> Plan + Send + Sync + 'static,
) {
    execution(store, "e1", vec![ready("a", T), pending("b")]).await;
    let [a] = claim(store, "r1", 5, T).await.try_into().expect("a");
    (end(&a, "r1", succeeded(&a)), dag(&[("b", &["a"])], T + 10))
}

async fn write_creates_records_then_claims(db: Db) {
    let store = &*db.store;
    // e1: a then b. a is running; e2 is submitted as a ends.
    let (ended, planner) = a_then_b_with_a_done(store).await;
    let finishes: [Finish<'_>; 1] = [(&ended, T + 10, &planner)];
    let creates = [new_execution("e2", "w", vec![ready("x", T + 10)])];
    let request = ("r1", 5, T + 10 + LEASE, T + 10);
    let written = testing::write(store, &creates, T + 10, &finishes, Some(request)).await;
    let [created] = written.created.try_into().expect("one");
    created.expect("e2 created");
    let [after] = written.finished.try_into().expect("one");
    assert_eq!(
        run(&after.expect("a recorded").expect("a recorded"), "b").status,
        TaskRunStatus::Ready
    );
    // The claim comes last: it takes the new execution's step and the step
    // that a's end made ready.
    let mut claimed: Vec<(String, String)> = written
        .claimed
        .expect("claimed")
        .into_iter()
        .map(|c| (c.execution_id.into(), c.step_id))
        .collect();
    claimed.sort();
    assert_eq!(
        claimed,
        [("e1".into(), "b".into()), ("e2".into(), "x".into())]
    );
    assert_eq!(snapshot(store, "e2").await.execution.created_at_ms, T + 10);
    let empty = testing::write(store, &[], T + 10, &[], None).await;
    assert!(empty.created.is_empty());
    assert!(empty.finished.is_empty());
    assert!(empty.claimed.expect("nothing to claim").is_empty());
}

async fn write_keeps_a_failing_part_from_the_others(db: Db) {
    let store = &*db.store;
    let (ended, planner) = a_then_b_with_a_done(store).await;
    let finishes: [Finish<'_>; 1] = [(&ended, T + 10, &planner)];
    // e1 exists already: creating it again fails, and only that item.
    let creates = [new_execution("e1", "w", vec![ready("x", T)])];
    let written = testing::write(store, &creates, T + 10, &finishes, None).await;
    let [created] = written.created.try_into().expect("one");
    assert!(created.is_err(), "{created:?}");
    let [after] = written.finished.try_into().expect("one");
    assert_eq!(
        run(&after.expect("a recorded").expect("a recorded"), "a").status,
        TaskRunStatus::Succeeded
    );
    let stored = snapshot(store, "e1").await;
    assert_eq!(
        statuses(&stored),
        BTreeMap::from([
            ("a".to_owned(), TaskRunStatus::Succeeded),
            ("b".to_owned(), TaskRunStatus::Ready),
        ])
    );
    assert!(written.claimed.expect("no claim asked").is_empty());
}

async fn finish_retry_then_failure(db: Db) {
    let store = &*db.store;
    execution(store, "e1", vec![ready("a", T), pending("b")]).await;
    let planner = dag(&[("b", &["a"])], T);
    let [first] = claim(store, "r1", 5, T).await.try_into().expect("a");
    let retry = AttemptResult::Retry {
        error: "flaky".into(),
        not_before_ms: T + 1000,
    };
    let after = testing::finish_attempt(store, &end(&first, "r1", retry), T + 5, &planner)
        .await
        .unwrap()
        .expect("recorded");
    let a = run(&after, "a");
    assert_eq!(a.status, TaskRunStatus::Ready);
    assert_eq!((a.attempts, a.not_before_ms), (1, T + 1000));
    assert_eq!(a.error.as_deref(), Some("flaky"));
    assert_eq!(a.claimed_by, None);
    let attempt = &store.attempts("e1", Some("a")).await.unwrap()[0];
    assert_eq!(
        (attempt.outcome.as_deref(), attempt.error.as_deref()),
        (Some("failed"), Some("flaky"))
    );

    assert!(claim(store, "r1", 5, T + 999).await.is_empty(), "backoff");
    let [second] = claim(store, "r2", 5, T + 1000)
        .await
        .try_into()
        .expect("again");
    assert_eq!((second.attempts, second.number), (2, 2));
    let after = testing::finish_attempt(
        store,
        &end(&second, "r2", AttemptResult::Failed("broken".into())),
        T + 1001,
        &planner,
    )
    .await
    .unwrap()
    .expect("recorded");
    let a = run(&after, "a");
    assert_eq!(
        (a.status, a.attempts, a.error.as_deref()),
        (TaskRunStatus::Failed, 2, Some("broken"))
    );
    assert_eq!(run(&after, "b").status, TaskRunStatus::Cancelled);
    assert_eq!(after.execution.status, ExecutionStatus::Failed);
    assert_eq!(after.execution.error.as_deref(), Some("a step failed"));
    assert_eq!(after.execution.finished_at_ms, Some(T + 1001));
    let numbers: Vec<u32> = store
        .attempts("e1", None)
        .await
        .unwrap()
        .iter()
        .map(|a| a.number)
        .collect();
    assert_eq!(numbers, [1, 2]);
}

async fn finish_cancelled(db: Db) {
    let store = &*db.store;
    execution(store, "e1", vec![ready("a", T)]).await;
    let [a] = claim(store, "r1", 5, T).await.try_into().expect("a");
    let after = testing::finish_attempt(
        store,
        &end(&a, "r1", AttemptResult::Cancelled),
        T + 1,
        &dag(&[], T),
    )
    .await
    .unwrap()
    .expect("recorded");
    let ra = run(&after, "a");
    assert_eq!(ra.status, TaskRunStatus::Cancelled);
    assert_eq!(ra.error.as_deref(), Some("cancelled"));
    assert_eq!(ra.attempts, 1);
    assert_eq!(after.execution.status, ExecutionStatus::Cancelled);
    let attempt = &store.attempts("e1", None).await.unwrap()[0];
    assert_eq!(attempt.outcome.as_deref(), Some("cancelled"));
    assert_eq!(attempt.error, None);
}

async fn finish_interrupted_does_not_count(db: Db) {
    let store = &*db.store;
    execution(store, "e1", vec![ready("a", T)]).await;
    let planner = dag(&[], T);
    // A failure first, so there is an error to keep.
    let [first] = claim(store, "r1", 5, T).await.try_into().expect("a");
    let retry = AttemptResult::Retry {
        error: "first error".into(),
        not_before_ms: T + 10,
    };
    testing::finish_attempt(store, &end(&first, "r1", retry), T + 1, &planner)
        .await
        .unwrap()
        .expect("recorded");
    let [second] = claim(store, "r1", 5, T + 10).await.try_into().expect("a");
    assert_eq!(second.attempts, 2);
    let after = testing::finish_attempt(
        store,
        &end(&second, "r1", AttemptResult::Interrupted),
        T + 20,
        &planner,
    )
    .await
    .unwrap()
    .expect("recorded");
    let a = run(&after, "a");
    assert_eq!(a.status, TaskRunStatus::Ready);
    assert_eq!(a.attempts, 1, "an interrupted attempt does not count");
    assert_eq!(a.not_before_ms, T + 20, "claimable at once");
    assert_eq!(a.error.as_deref(), Some("first error"), "last error kept");
    assert_eq!(a.claimed_by, None);
    let attempts = store.attempts("e1", None).await.unwrap();
    assert_eq!(attempts[1].outcome.as_deref(), Some("interrupted"));
    assert_eq!(attempts[1].error, None);

    let [third] = claim(store, "r2", 5, T + 20).await.try_into().expect("a");
    assert_eq!((third.attempts, third.number), (2, 3));
}

async fn finish_deferred_leaves_the_step_to_others(db: Db) {
    let store = &*db.store;
    execution(store, "e1", vec![ready("a", T)]).await;
    let planner = dag(&[], T);
    let [first] = claim(store, "r1", 5, T).await.try_into().expect("a");
    let deferred = AttemptResult::Deferred {
        error: "cannot load the plugin".into(),
        not_before_ms: T + 100,
    };
    let after = testing::finish_attempt(store, &end(&first, "r1", deferred), T + 1, &planner)
        .await
        .unwrap()
        .expect("recorded");
    let a = run(&after, "a");
    assert_eq!(a.status, TaskRunStatus::Ready);
    assert_eq!(a.attempts, 0, "a deferred attempt does not count");
    assert_eq!(a.not_before_ms, T + 100);
    assert_eq!(a.error.as_deref(), Some("cannot load the plugin"));
    assert!(
        claim(store, "r2", 5, T + 50).await.is_empty(),
        "claimable before its time"
    );
    let [second] = claim(store, "r2", 5, T + 100).await.try_into().expect("a");
    assert_eq!((second.attempts, second.number), (1, 2));
}

async fn held_claims_show_what_a_runner_still_holds(db: Db) {
    let store = &*db.store;
    execution(store, "e1", vec![ready("a", T), ready("b", T)]).await;
    let claims = claim(store, "r1", 5, T).await;
    assert_eq!(claims.len(), 2);
    let mut held = store.held_claims("r1").await.unwrap();
    held.sort();
    assert_eq!(held, [RunKey::new("e1", "a"), RunKey::new("e1", "b")]);
    assert!(store.held_claims("r2").await.unwrap().is_empty());
    // r1's leases expire; r2 reaps and takes both: r1 holds nothing.
    let reaped = testing::reap_expired(store, T + LEASE + 1, "r2", &dag(&[], T))
        .await
        .unwrap();
    assert_eq!(reaped, 2);
    claim(store, "r2", 5, T + LEASE + 1).await;
    assert!(store.held_claims("r1").await.unwrap().is_empty());
    assert_eq!(store.held_claims("r2").await.unwrap().len(), 2);
}

async fn lost_lease_changes_nothing(db: Db) {
    let store = &*db.store;
    execution(store, "e1", vec![ready("a", T), pending("b")]).await;
    let planner = dag(&[("b", &["a"])], T);
    let [claim1] = claim(store, "r1", 5, T).await.try_into().expect("a");
    let before = snapshot(store, "e1").await;

    // Another runner cannot record over the holder's claim.
    let stolen = testing::finish_attempt(
        store,
        &end(&claim1, "r2", succeeded(&claim1)),
        T + 1,
        &planner,
    )
    .await
    .unwrap();
    assert!(stolen.is_none());
    // Neither can the holder with another attempt's number.
    let mut stale = claim1.clone();
    stale.number = 7;
    assert!(
        testing::finish_attempt(
            store,
            &end(&stale, "r1", succeeded(&stale)),
            T + 1,
            &planner
        )
        .await
        .unwrap()
        .is_none()
    );
    assert_eq!(statuses(&snapshot(store, "e1").await), statuses(&before));
    assert_eq!(run(&snapshot(store, "e1").await, "a"), run(&before, "a"));
    let attempts = store.attempts("e1", None).await.unwrap();
    assert!(
        attempts.iter().all(|a| a.outcome.is_none()),
        "the attempt is not recorded either: {attempts:?}"
    );

    // The lease expires, the run goes to r2; r1's late result is dropped.
    let reaped = testing::reap_expired(store, T + LEASE + 1, "reaper", &planner)
        .await
        .unwrap();
    assert_eq!(reaped, 1);
    let [claim2] = claim(store, "r2", 5, T + LEASE + 1)
        .await
        .try_into()
        .expect("a again");
    assert_eq!((claim2.attempts, claim2.number), (1, 2));
    let attempts_before = store.attempts("e1", None).await.unwrap();
    let late = testing::finish_attempt(
        store,
        &end(&claim1, "r1", AttemptResult::Failed("late".into())),
        T + LEASE + 2,
        &planner,
    )
    .await
    .unwrap();
    assert!(late.is_none(), "r1 lost its claim");
    assert_eq!(store.attempts("e1", None).await.unwrap(), attempts_before);
    let s = snapshot(store, "e1").await;
    let a = run(&s, "a");
    assert_eq!(
        (a.status, a.claimed_by.as_deref(), a.error.as_deref()),
        (TaskRunStatus::Running, Some("r2"), None)
    );
    let attempts = store.attempts("e1", None).await.unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[1].finished_at_ms, None, "r2's attempt untouched");
    assert_eq!(attempts[0].outcome.as_deref(), Some("interrupted"));
    assert_eq!(
        attempts[0].error.as_deref(),
        Some("lease expired: its runner stopped renewing it")
    );

    // And the new holder records normally.
    let after = testing::finish_attempt(
        store,
        &end(&claim2, "r2", succeeded(&claim2)),
        T + LEASE + 3,
        &planner,
    )
    .await
    .unwrap()
    .expect("recorded");
    assert_eq!(run(&after, "b").status, TaskRunStatus::Ready);
}

/// Asserts that `lease_until` is `lease_ms` past a moment between `before`
/// and `after` (wall clock; the store uses the database's clock).
fn renewed(lease_until: Option<i64>, lease_ms: i64, before: i64, after: i64) {
    let lease_until = lease_until.expect("a lease");
    // The database's clock may be a little off the test's.
    let slack = 1_000;
    assert!(
        (before + lease_ms - slack..=after + lease_ms + slack).contains(&lease_until),
        "lease until {lease_until}, renewed for {lease_ms} ms between {before} and {after}"
    );
}

async fn renew_leases_extends_own_and_reports_cancels(db: Db) {
    let store = &*db.store;
    execution(store, "e1", vec![ready("a", T), ready("b", T)]).await;
    execution(store, "e2", vec![ready("c", T), ready("d", T + 5)]).await;
    let claims = claim(store, "r1", 2, T).await;
    assert_eq!(claims.len(), 2);
    let [other] = claim(store, "r2", 1, T).await.try_into().expect("one");
    assert_eq!(other.step_id, "c");

    let keys = |claims: &[Claim]| -> Vec<RunKey> {
        claims
            .iter()
            .map(|c| RunKey::new(c.execution_id.clone(), c.step_id.clone()))
            .collect()
    };
    // Only the runs named are renewed: one r1 holds but no longer works on
    // keeps its lease, so that it expires.
    let (first, rest) = claims.split_at(1);
    let before = store::now_ms();
    let cancels = store
        .renew_leases("r1", &keys(first), 99_999)
        .await
        .unwrap();
    let after = store::now_ms();
    assert!(cancels.is_empty());
    let s = snapshot(store, &first[0].execution_id).await;
    renewed(
        run(&s, &first[0].step_id).lease_until_ms,
        99_999,
        before,
        after,
    );
    assert_eq!(
        run(&s, &rest[0].step_id).lease_until_ms,
        Some(T + LEASE),
        "not named, not renewed"
    );
    // All of r1's named; r2's run named too, which r1 may not renew.
    let mut named = keys(&claims);
    named.extend(keys(std::slice::from_ref(&other)));
    let before = store::now_ms();
    store.renew_leases("r1", &named, 99_999).await.unwrap();
    let after = store::now_ms();
    let s = snapshot(store, "e1").await;
    for r in &s.runs {
        renewed(r.lease_until_ms, 99_999, before, after);
    }
    let s2 = snapshot(store, "e2").await;
    assert_eq!(run(&s2, "c").lease_until_ms, Some(T + LEASE), "not r1's");
    assert_eq!(run(&s2, "d").lease_until_ms, None);

    testing::cancel_execution(store, "e2", T + 1, &cancel_only)
        .await
        .unwrap()
        .expect("e2");
    assert!(
        store
            .renew_leases("r1", &keys(&claims), 99_999)
            .await
            .unwrap()
            .is_empty()
    );
    let before = store::now_ms();
    assert_eq!(
        store
            .renew_leases("r2", &keys(std::slice::from_ref(&other)), 50_000)
            .await
            .unwrap(),
        ["e2".to_owned()]
    );
    let after = store::now_ms();
    renewed(
        run(&snapshot(store, "e2").await, "c").lease_until_ms,
        50_000,
        before,
        after,
    );
    assert!(
        store
            .renew_leases("nobody", &keys(&claims), 1)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn reap_spares_the_callers_own_runs(db: Db) {
    let store = &*db.store;
    execution(store, "e1", vec![ready("a", T), ready("b", T)]).await;
    let planner = dag(&[], T);
    assert_eq!(store.claim("r1", 1, T + 100, T).await.unwrap().len(), 1);
    assert_eq!(store.claim("r2", 1, T + 100, T).await.unwrap().len(), 1);
    // r1 knows its own attempt is alive: it reaps only r2's.
    assert_eq!(
        testing::reap_expired(store, T + 200, "r1", &planner)
            .await
            .unwrap(),
        1
    );
    let s = snapshot(store, "e1").await;
    let held: Vec<(&str, Option<&str>)> = s
        .runs
        .iter()
        .map(|r| (r.step_id.as_str(), r.claimed_by.as_deref()))
        .collect();
    assert_eq!(held, [("a", Some("r1")), ("b", None)]);
    assert_eq!(
        testing::reap_expired(store, T + 200, "r2", &planner)
            .await
            .unwrap(),
        1
    );
    assert!(
        snapshot(store, "e1")
            .await
            .runs
            .iter()
            .all(|r| r.status == TaskRunStatus::Ready)
    );
}

async fn stale_claim_of_the_same_runner_changes_nothing(db: Db) {
    let store = &*db.store;
    execution(store, "e1", vec![ready("a", T)]).await;
    let planner = dag(&[], T);
    // r1's lease runs out (say it was paused); the run is reaped, and r1
    // claims it again: same runner, same attempt count, a new attempt.
    let [stale] = store
        .claim("r1", 1, T + 100, T)
        .await
        .unwrap()
        .try_into()
        .expect("a");
    assert_eq!(
        testing::reap_expired(store, T + 200, "reaper", &planner)
            .await
            .unwrap(),
        1
    );
    let [live] = claim(store, "r1", 1, T + 200).await.try_into().expect("a");
    assert_eq!((stale.attempts, live.attempts), (1, 1));
    assert_eq!((stale.number, live.number), (1, 2));
    // The old attempt's late end is not recorded over the live one.
    let late = testing::finish_attempt(
        store,
        &end(&stale, "r1", succeeded(&stale)),
        T + 300,
        &planner,
    )
    .await
    .unwrap();
    assert!(late.is_none());
    let a = run(&snapshot(store, "e1").await, "a").clone();
    assert_eq!(
        (a.status, a.claimed_by.as_deref()),
        (TaskRunStatus::Running, Some("r1"))
    );
    let attempts = store.attempts("e1", None).await.unwrap();
    assert_eq!(attempts[0].outcome.as_deref(), Some("interrupted"));
    assert_eq!(attempts[1].finished_at_ms, None);
    let after = testing::finish_attempt(
        store,
        &end(&live, "r1", succeeded(&live)),
        T + 300,
        &planner,
    )
    .await
    .unwrap()
    .expect("the live attempt records");
    assert_eq!(after.execution.status, ExecutionStatus::Succeeded);
}

async fn reap_expired_requeues_as_interrupted(db: Db) {
    let store = &*db.store;
    execution(
        store,
        "e1",
        vec![ready("a", T), ready("b", T), pending("c")],
    )
    .await;
    execution(store, "e2", vec![ready("x", T)]).await;
    let planner = dag(&[("c", &["a", "b"])], T);
    // a and x expire at T + 100, b is renewed.
    let short = store.claim("r1", 1, T + 100, T).await.unwrap();
    assert_eq!(short[0].step_id, "a");
    let long = store.claim("r2", 1, T + 100_000, T).await.unwrap();
    assert_eq!(long[0].step_id, "b");
    let other = store.claim("r3", 1, T + 100, T).await.unwrap();
    assert_eq!(other[0].execution_id, "e2");

    assert_eq!(
        testing::reap_expired(store, T + 100, "reaper", &planner)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        testing::reap_expired(store, T + 101, "reaper", &planner)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        testing::reap_expired(store, T + 102, "reaper", &planner)
            .await
            .unwrap(),
        0
    );

    let s = snapshot(store, "e1").await;
    let a = run(&s, "a");
    assert_eq!(a.status, TaskRunStatus::Ready);
    assert_eq!(a.attempts, 0, "the reaped attempt does not count");
    assert_eq!((a.claimed_by.as_deref(), a.lease_until_ms), (None, None));
    assert_eq!(a.not_before_ms, T + 101);
    assert_eq!(run(&s, "b").status, TaskRunStatus::Running);
    assert_eq!(run(&s, "c").status, TaskRunStatus::Pending);
    assert_eq!(s.execution.status, ExecutionStatus::Running);
    let attempt = &store.attempts("e1", Some("a")).await.unwrap()[0];
    assert_eq!(attempt.finished_at_ms, Some(T + 101));
    assert_eq!(attempt.outcome.as_deref(), Some("interrupted"));
    assert!(
        attempt
            .error
            .as_deref()
            .unwrap_or("")
            .contains("lease expired")
    );
    assert!(
        store.attempts("e1", Some("b")).await.unwrap()[0]
            .outcome
            .is_none()
    );
    assert_eq!(
        run(&snapshot(store, "e2").await, "x").status,
        TaskRunStatus::Ready
    );

    let again = claim(store, "r4", 5, T + 101).await;
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|c| c.attempts == 1 && c.number == 2));
}

async fn cancel_execution_semantics(db: Db) {
    let store = &*db.store;
    execution(
        store,
        "e1",
        vec![ready("a", T), ready("b", T), pending("c")],
    )
    .await;
    let [a] = claim(store, "r1", 1, T).await.try_into().expect("a");
    let after = testing::cancel_execution(store, "e1", T + 5, &cancel_only)
        .await
        .unwrap()
        .expect("e1");
    assert!(after.execution.cancel_requested);
    assert_eq!(
        after.execution.status,
        ExecutionStatus::Running,
        "a step still runs"
    );
    assert_eq!(run(&after, "a").status, TaskRunStatus::Running);
    assert_eq!(run(&after, "b").status, TaskRunStatus::Cancelled);
    assert_eq!(run(&after, "b").input, Some(obj(json!({ "step": "b" }))));
    assert_eq!(run(&after, "c").status, TaskRunStatus::Cancelled);
    assert!(claim(store, "r2", 5, T + 5).await.is_empty());

    // Asking again changes nothing more.
    let again = testing::cancel_execution(store, "e1", T + 6, &cancel_only)
        .await
        .unwrap()
        .expect("e1");
    assert_eq!(statuses(&again), statuses(&after));

    // The running step ends (its runner stopped it): the execution is over.
    let done = testing::finish_attempt(
        store,
        &end(&a, "r1", AttemptResult::Cancelled),
        T + 7,
        &cancel_only,
    )
    .await
    .unwrap()
    .expect("recorded");
    assert_eq!(done.execution.status, ExecutionStatus::Cancelled);
    assert_eq!(done.execution.error.as_deref(), Some("cancelled"));
    assert_eq!(done.execution.finished_at_ms, Some(T + 7));

    // Cancelling a finished execution returns it unchanged.
    let finished = testing::cancel_execution(store, "e1", T + 8, &cancel_only)
        .await
        .unwrap()
        .expect("e1");
    assert_eq!(finished.execution, done.execution);
    assert!(
        testing::cancel_execution(store, "nope", T, &cancel_only)
            .await
            .unwrap()
            .is_none()
    );

    // Nothing running: cancelled at once.
    execution(store, "e2", vec![ready("a", T), pending("b")]).await;
    let after = testing::cancel_execution(store, "e2", T + 9, &cancel_only)
        .await
        .unwrap()
        .expect("e2");
    assert_eq!(after.execution.status, ExecutionStatus::Cancelled);
    assert_eq!(after.execution.finished_at_ms, Some(T + 9));
    assert!(
        after
            .runs
            .iter()
            .all(|r| r.status == TaskRunStatus::Cancelled)
    );

    // A succeeded execution stays succeeded.
    execution(store, "e3", vec![ready("a", T)]).await;
    let [a] = claim(store, "r1", 1, T).await.try_into().expect("a");
    testing::finish_attempt(store, &end(&a, "r1", succeeded(&a)), T + 1, &dag(&[], T))
        .await
        .unwrap()
        .expect("recorded");
    let after = testing::cancel_execution(store, "e3", T + 2, &cancel_only)
        .await
        .unwrap()
        .expect("e3");
    assert_eq!(after.execution.status, ExecutionStatus::Succeeded);
    assert!(!after.execution.cancel_requested);
}

async fn reaping_a_cancelled_execution_cancels_it(db: Db) {
    let store = &*db.store;
    execution(store, "e1", vec![ready("a", T), pending("b")]).await;
    let claims = store.claim("dead", 1, T + 100, T).await.unwrap();
    assert_eq!(claims.len(), 1);
    let after = testing::cancel_execution(store, "e1", T + 1, &cancel_only)
        .await
        .unwrap()
        .expect("e1");
    assert_eq!(after.execution.status, ExecutionStatus::Running);
    // The runner died: its step comes back only to be cancelled.
    assert_eq!(
        testing::reap_expired(store, T + 200, "reaper", &cancel_only)
            .await
            .unwrap(),
        1
    );
    let s = snapshot(store, "e1").await;
    assert_eq!(s.execution.status, ExecutionStatus::Cancelled);
    assert_eq!(run(&s, "a").status, TaskRunStatus::Cancelled);
    assert!(claim(store, "r2", 5, T + 200).await.is_empty());
    let attempt = &store.attempts("e1", None).await.unwrap()[0];
    assert_eq!(attempt.outcome.as_deref(), Some("interrupted"));
}

async fn list_executions_filters_and_order(db: Db) {
    let store = &*db.store;
    workflow(store, "w").await;
    workflow(store, "other").await;
    let create = |id: &'static str, wf: &'static str, at: i64| async move {
        store
            .create_execution(&new_execution(id, wf, vec![ready("a", at)]), at)
            .await
            .unwrap();
    };
    create("e-b", "w", T + 10).await;
    create("e-a", "w", T + 10).await;
    create("e-c", "other", T + 5).await;
    create("e-d", "w", T + 20).await;
    create("E-e", "other", T + 1).await;
    // e-d succeeds.
    let mut claimed = claim(store, "r1", 10, T + 20).await;
    claimed.retain(|c| c.execution_id == "e-d");
    let [d] = claimed.try_into().expect("e-d");
    testing::finish_attempt(store, &end(&d, "r1", succeeded(&d)), T + 30, &dag(&[], T))
        .await
        .unwrap()
        .expect("recorded");

    let ids = |list: Vec<corral::store::ExecutionRecord>| -> Vec<String> {
        list.into_iter().map(|e| e.id.into()).collect()
    };
    let all = store
        .list_executions(&ExecutionFilter::default())
        .await
        .unwrap();
    assert_eq!(ids(all), ["e-d", "e-b", "e-a", "e-c", "E-e"]);
    let w = store
        .list_executions(&ExecutionFilter {
            workflow: Some("w".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(w), ["e-d", "e-b", "e-a"]);
    let running = store
        .list_executions(&ExecutionFilter {
            status: Some(ExecutionStatus::Running),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(running), ["e-b", "e-a", "e-c", "E-e"]);
    let both = store
        .list_executions(&ExecutionFilter {
            workflow: Some("w".into()),
            status: Some(ExecutionStatus::Succeeded),
            schedule: None,
            limit: None,
            before: None,
        })
        .await
        .unwrap();
    assert_eq!(both.len(), 1);
    assert_eq!(both[0].status, ExecutionStatus::Succeeded);
    assert_eq!(both[0].finished_at_ms, Some(T + 30));
    let limited = store
        .list_executions(&ExecutionFilter {
            limit: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(limited), ["e-d", "e-b"]);
    let none = store
        .list_executions(&ExecutionFilter {
            workflow: Some("nope".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
}

async fn list_executions_pages_from_a_cursor(db: Db) {
    let store = &*db.store;
    workflow(store, "w").await;
    workflow(store, "other").await;
    // Ties on the creation time (b, c and d) must not split badly across
    // page boundaries: the id breaks them.
    for (id, wf, at) in [
        ("a", "w", T + 1),
        ("b", "w", T + 5),
        ("c", "other", T + 5),
        ("d", "w", T + 5),
        ("e", "w", T + 9),
    ] {
        store
            .create_execution(&new_execution(id, wf, vec![ready("s", at)]), at)
            .await
            .unwrap();
    }
    let page = |before: Option<ExecutionCursor>, workflow: Option<&str>| {
        let filter = ExecutionFilter {
            workflow: workflow.map(str::to_owned),
            limit: Some(2),
            before,
            ..Default::default()
        };
        async move { store.list_executions(&filter).await.unwrap() }
    };
    for (workflow, expected) in [
        (None, &["e", "d", "c", "b", "a"][..]),
        (Some("w"), &["e", "d", "b", "a"]),
    ] {
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let executions = page(before.clone(), workflow).await;
            assert!(executions.len() <= 2);
            let Some(last) = executions.last() else { break };
            before = Some(ExecutionCursor::after(last));
            seen.extend(executions.into_iter().map(|e| e.id));
        }
        assert_eq!(seen, expected, "paging {workflow:?}");
    }
    // Executions created after a cursor was taken sort before it: the
    // next page is unchanged by them.
    let first = page(None, None).await;
    let cursor = ExecutionCursor::after(first.last().expect("a page"));
    store
        .create_execution(&new_execution("z", "w", vec![ready("s", T + 50)]), T + 50)
        .await
        .unwrap();
    let next: Vec<String> = page(Some(cursor), None)
        .await
        .into_iter()
        .map(|e| e.id.into())
        .collect();
    assert_eq!(next, ["c", "b"]);
    // A cursor older than everything gives an empty page.
    let past = ExecutionCursor {
        created_at_ms: 0,
        id: "".into(),
    };
    assert!(page(Some(past), None).await.is_empty());
}

async fn attempts_listing_order_and_filter(db: Db) {
    let store = &*db.store;
    execution(store, "e1", vec![ready("b", T), ready("a", T)]).await;
    execution(store, "e2", vec![ready("a", T)]).await;
    let planner = dag(&[], T);
    // Both steps start at T, then a restarts at T + 10.
    let first = claim(store, "r1", 2, T).await;
    for c in &first {
        if c.execution_id == "e1" && c.step_id == "a" {
            let retry = AttemptResult::Retry {
                error: "again".into(),
                not_before_ms: T + 10,
            };
            testing::finish_attempt(store, &end(c, "r1", retry), T + 5, &planner)
                .await
                .unwrap()
                .expect("recorded");
        }
    }
    let second = claim(store, "r2", 5, T + 10).await;
    assert_eq!(second.len(), 2, "e1/a again and e2/a");
    let listed: Vec<(String, u32, i64)> = store
        .attempts("e1", None)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.step_id, a.number, a.started_at_ms))
        .collect();
    assert_eq!(
        listed,
        [
            ("a".to_owned(), 1, T),
            ("b".to_owned(), 1, T),
            ("a".to_owned(), 2, T + 10)
        ]
    );
    let only_a: Vec<u32> = store
        .attempts("e1", Some("a"))
        .await
        .unwrap()
        .iter()
        .map(|a| a.number)
        .collect();
    assert_eq!(only_a, [1, 2]);
    assert_eq!(store.attempts("e2", None).await.unwrap().len(), 1);
    assert!(store.attempts("e1", Some("zz")).await.unwrap().is_empty());
    assert!(store.attempts("nope", None).await.unwrap().is_empty());
}

async fn sibling_finishes_serialize_their_planning(db: Db) {
    // Fan-in: a and b run on two hosts and finish at the same moment; c
    // needs both. Whichever records last must see the other's success, so
    // c becomes ready in every execution.
    let one = db.store.clone();
    let two = db.reopen().await;
    workflow(&*one, "w").await;
    let n = 40;
    for e in 0..n {
        let steps = vec![ready("a", T), ready("b", T), pending("c")];
        one.create_execution(&new_execution(&format!("e{e:02}"), "w", steps), T)
            .await
            .unwrap();
    }
    let claims = claim(&*one, "r1", 1000, T).await;
    assert_eq!(claims.len(), 2 * n);
    let mut by_execution: BTreeMap<String, Vec<Claim>> = BTreeMap::new();
    for c in claims {
        by_execution
            .entry(c.execution_id.to_string())
            .or_default()
            .push(c);
    }
    let finish = |store: Arc<dyn Store>, c: Claim| {
        tokio::spawn(async move {
            let planner = dag(&[("c", &["a", "b"])], T + 1);
            testing::finish_attempt(&*store, &end(&c, "r1", succeeded(&c)), T + 1, &planner)
                .await
                .expect("finish")
                .expect("recorded");
        })
    };
    for (_, pair) in by_execution {
        let [a, b] = pair.try_into().expect("a and b");
        // Both hosts record at the same moment.
        let (x, y) = tokio::join!(finish(one.clone(), a), finish(two.clone(), b));
        x.expect("host one");
        y.expect("host two");
    }
    for e in 0..n {
        let s = snapshot(&*one, &format!("e{e:02}")).await;
        assert_eq!(
            statuses(&s),
            BTreeMap::from([
                ("a".to_owned(), TaskRunStatus::Succeeded),
                ("b".to_owned(), TaskRunStatus::Succeeded),
                ("c".to_owned(), TaskRunStatus::Ready),
            ]),
            "execution e{e:02}"
        );
    }
    let cs = claim(&*two, "r2", 1000, T + 1).await;
    assert_eq!(cs.len(), n);
    two.close().await;
}

async fn hosts_share_work_and_recover_a_dead_hosts_runs(db: Db) {
    // Three hosts claim, finish (sometimes interrupted), renew and reap on
    // the same executions at once; a fourth host claimed some runs and died.
    // Every execution must succeed with each step succeeding exactly once,
    // and no call may fail (a deadlock would).
    const EXECUTIONS: usize = 30;
    const NOW: i64 = T + 100;
    const B: [&str; 5] = ["b0", "b1", "b2", "b3", "b4"];
    const FAN_OUT_IN: &[(&str, &[&str])] = &[
        ("b0", &["a"]),
        ("b1", &["a"]),
        ("b2", &["a"]),
        ("b3", &["a"]),
        ("b4", &["a"]),
        ("c", &B),
    ];
    let store = db.store.clone();
    workflow(&*store, "w").await;
    for e in 0..EXECUTIONS {
        let mut steps = vec![ready("a", T)];
        steps.extend(B.iter().map(|b| pending(b)));
        steps.push(pending("c"));
        store
            .create_execution(&new_execution(&format!("e{e:02}"), "w", steps), T)
            .await
            .unwrap();
    }
    let dead = store.claim("dead", 5, T + 50, T).await.unwrap();
    assert_eq!(dead.len(), 5);

    let mut hosts = tokio::task::JoinSet::new();
    for h in 0..3 {
        let store = if h == 0 {
            store.clone()
        } else {
            db.reopen().await
        };
        hosts.spawn(async move {
            let host = format!("host{h}");
            let planner = dag(FAN_OUT_IN, NOW);
            let mut finished = 0_usize;
            for round in 0.. {
                assert!(round < 10_000, "{host} made no progress");
                let claims = store
                    .claim(&host, 4, T + 1_000_000, NOW)
                    .await
                    .expect("claim");
                for c in &claims {
                    finished += 1;
                    let result = if finished.is_multiple_of(7) {
                        AttemptResult::Interrupted
                    } else {
                        succeeded(c)
                    };
                    testing::finish_attempt(&*store, &end(c, &host, result), NOW, &planner)
                        .await
                        .expect("finish")
                        .expect("the claim holds");
                }
                store
                    .renew_leases(&host, &[], 1_000_000)
                    .await
                    .expect("renew");
                testing::reap_expired(&*store, NOW, &host, &planner)
                    .await
                    .expect("reap");
                if claims.is_empty() {
                    let running = store
                        .list_executions(&ExecutionFilter {
                            status: Some(ExecutionStatus::Running),
                            limit: Some(1),
                            ..Default::default()
                        })
                        .await
                        .expect("list");
                    if running.is_empty() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            if h != 0 {
                store.close().await;
            }
        });
    }
    while let Some(host) = hosts.join_next().await {
        host.expect("host");
    }
    for e in 0..EXECUTIONS {
        let id = format!("e{e:02}");
        let s = snapshot(&*store, &id).await;
        assert_eq!(s.execution.status, ExecutionStatus::Succeeded, "{id}");
        let attempts = store.attempts(&id, None).await.unwrap();
        let mut successes: BTreeMap<&str, usize> = BTreeMap::new();
        for a in &attempts {
            assert!(a.finished_at_ms.is_some(), "{id}/{} still open", a.step_id);
            if a.outcome.as_deref() == Some("succeeded") {
                *successes.entry(a.step_id.as_str()).or_default() += 1;
            }
            if a.runner_id == "dead" {
                assert_eq!(a.outcome.as_deref(), Some("interrupted"));
            }
        }
        assert_eq!(successes.len(), 7, "{id}: every step succeeded");
        assert!(successes.values().all(|n| *n == 1), "{id}: {successes:?}");
        assert!(
            s.runs.iter().all(|r| r.attempts == 1),
            "{id}: interruptions do not count"
        );
    }
}

async fn guest_text_with_nul_is_stored(db: Db) {
    let store = &*db.store;
    execution(store, "e1", vec![ready("a", T)]).await;
    let [a] = claim(store, "r1", 1, T).await.try_into().expect("a");
    let mut record = end(&a, "r1", AttemptResult::Failed("bad\0error".into()));
    record.stdout = "out\0put".into();
    record.stderr = "\0".into();
    record.logs = json!([{ "level": "info", "message": "nul \u{0} inside" }]);
    let after = testing::finish_attempt(store, &record, T + 1, &dag(&[], T))
        .await
        .expect("text with NUL is stored")
        .expect("recorded");
    // SQLite keeps NUL; PostgreSQL TEXT cannot and stores U+FFFD instead.
    let same = |stored: Option<&str>, given: &str| {
        assert_eq!(
            stored.map(|s| s.replace('\0', "\u{FFFD}")).as_deref(),
            Some(given.replace('\0', "\u{FFFD}").as_str())
        )
    };
    same(run(&after, "a").error.as_deref(), "bad\0error");
    let attempt = &store.attempts("e1", None).await.unwrap()[0];
    same(attempt.error.as_deref(), "bad\0error");
    same(attempt.stdout.as_deref(), "out\0put");
    same(attempt.stderr.as_deref(), "\0");
    assert_eq!(attempt.logs.as_ref(), Some(&record.logs), "JSON keeps it");
}

async fn reopening_sees_the_same_data(db: Db) {
    let store = &*db.store;
    store
        .add_plugin(&plugin_info("alpha", "1.0.0"), "sha", b"bytes")
        .await
        .unwrap();
    execution(store, "e1", vec![ready("a", T)]).await;
    // Opening again migrates nothing and sees everything.
    let other = db.reopen().await;
    assert_eq!(other.list_plugins().await.unwrap().len(), 1);
    assert_eq!(other.list_workflows().await.unwrap().len(), 1);
    assert_eq!(snapshot(&*other, "e1").await.runs.len(), 1);
    let [a] = claim(&*other, "r2", 5, T).await.try_into().expect("a");
    assert!(claim(store, "r1", 5, T).await.is_empty());
    assert_eq!(a.step_id, "a");
    other.close().await;
}

async fn close_marks_the_store_closed(db: Db) {
    let store = db.reopen().await;
    assert!(!store.is_closed());
    store.list_plugins().await.unwrap();
    let closing = store.close();
    assert!(store.is_closed(), "closed before the future is awaited");
    closing.await;
    assert!(store.is_closed());
    assert!(
        store.list_plugins().await.is_err(),
        "a closed store refuses work"
    );
    store.close().await;
    assert!(
        db.store.list_plugins().await.is_ok(),
        "other stores unaffected"
    );
}

// ---------------------------------------------------------------------------
// Connecting, tenants and what is specific to one database

#[tokio::test]
async fn unsupported_urls_are_rejected() {
    for url in ["mysql://x/y", "corral.db", ""] {
        assert!(
            matches!(
                store::connect(url).await,
                Err(StoreError::UnsupportedUrl(_))
            ),
            "{url}"
        );
    }
}

#[tokio::test]
async fn sqlite_rejects_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("corral.db").display());
    let options = ConnectOptions {
        tenant: Some("acme".into()),
        ..ConnectOptions::default()
    };
    match store::connect_with(&url, &options).await {
        Err(error @ StoreError::TenantsUnsupported { .. }) => {
            assert!(error.to_string().contains("acme"), "{error}")
        }
        Err(other) => panic!("expected TenantsUnsupported, got {other}"),
        Ok(_) => panic!("expected TenantsUnsupported, got a store"),
    }
    assert!(
        !dir.path().join("corral.db").exists(),
        "nothing was created"
    );
}

#[tokio::test]
async fn unreachable_postgres_is_a_connect_error() {
    // Port 1 on loopback: nothing listens there.
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        PostgresStore::connect("postgres://u:secret@127.0.0.1:1/db", None, "corral"),
    )
    .await
    .expect("fails without hanging");
    match result {
        Err(error @ StoreError::Connect { .. }) => {
            let text = error.to_string();
            assert!(!text.contains("secret"), "password shown: {text}");
        }
        Err(other) => panic!("expected a connect error, got {other}"),
        Ok(_) => panic!("connected to nothing"),
    }
}

/// Runs `test` with the PostgreSQL URL and the schema names `schemas`,
/// then drops those schemas, whatever the test did. Skipped without
/// PostgreSQL.
async fn with_schemas<F, Fut>(schemas: Vec<String>, test: F)
where
    F: FnOnce(String, Vec<String>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(url) = postgres_url() else { return };
    let outcome = tokio::time::timeout(
        TEST_TIMEOUT,
        tokio::spawn(test(url.clone(), schemas.clone())),
    )
    .await;
    for schema in &schemas {
        drop_schema(&url, schema).await;
    }
    finish(outcome);
}

async fn open_tenant(url: &str, tenant: &str, application_name: &str) -> Arc<dyn Store> {
    let options = ConnectOptions {
        tenant: Some(tenant.to_owned()),
        application_name: application_name.to_owned(),
        ..Default::default()
    };
    store::connect_with(url, &options)
        .await
        .expect("tenant opens")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tenants_are_isolated() {
    with_schemas(
        vec![fresh_schema(), fresh_schema()],
        |url, schemas| async move {
            let a = open_tenant(&url, &schemas[0], "corral-test-tenants").await;
            let b = open_tenant(&url, &schemas[1], "corral-test-tenants").await;
            a.add_plugin(&plugin_info("alpha", "1.0.0"), "sha-a", b"a")
                .await
                .unwrap();
            // The same name@version with other bytes is no conflict elsewhere.
            assert_eq!(
                b.add_plugin(&plugin_info("alpha", "1.0.0"), "sha-b", b"b")
                    .await
                    .unwrap(),
                Added::New
            );
            execution(&*a, "e1", vec![ready("a", T)]).await;
            assert_eq!(
                b.plugin("alpha").await.unwrap().expect("b's").0.sha256,
                "sha-b"
            );
            assert!(b.workflow("w", None).await.unwrap().is_none());
            assert!(b.list_workflows().await.unwrap().is_empty());
            assert!(b.execution("e1").await.unwrap().is_none());
            assert!(
                b.list_executions(&Default::default())
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert!(
                claim(&*b, "rb", 10, T).await.is_empty(),
                "b cannot claim a's work"
            );
            assert_eq!(
                testing::reap_expired(&*b, i64::MAX, "rb", &cancel_only)
                    .await
                    .unwrap(),
                0
            );
            // The same execution id in the other tenant is independent.
            execution(&*b, "e1", vec![ready("z", T)]).await;
            let [z] = claim(&*b, "rb", 10, T).await.try_into().expect("z");
            assert_eq!(z.step_id, "z");
            let [a1] = claim(&*a, "ra", 10, T).await.try_into().expect("a");
            assert_eq!(a1.step_id, "a");
            assert_eq!(a.list_plugins().await.unwrap()[0].sha256, "sha-a");
            // A second host on tenant a sees a's data only.
            let a2 = open_tenant(&url, &schemas[0], "corral-test-tenants").await;
            assert_eq!(snapshot(&*a2, "e1").await.runs[0].step_id, "a");

            // Everything lives in the tenant's schema.
            let mut conn = admin(&url).await;
            for schema in &schemas {
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = $1 ORDER BY 1",
                )
                .bind(schema)
                .fetch_all(&mut conn)
                .await
                .unwrap();
                assert_eq!(
                    tables,
                    [
                        "_sqlx_migrations",
                        "attempts",
                        "executions",
                        "plugins",
                        "runners",
                        "schedule_fires",
                        "schedules",
                        "task_runs",
                        "workflows"
                    ]
                );
            }
            for store in [a, a2, b] {
                store.close().await;
            }
        },
    )
    .await;
}

/// Schemas named like one of `names`, or like the canary but longer.
async fn count_schemas(conn: &mut PgConnection, names: &[String], canary: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_namespace
         WHERE nspname = ANY($1) OR (starts_with(nspname, $2) AND nspname <> $2)",
    )
    .bind(names)
    .bind(canary)
    .fetch_one(conn)
    .await
    .expect("schemas counted")
}

async fn connections_named(conn: &mut PgConnection, name: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
        .bind(name)
        .fetch_one(conn)
        .await
        .expect("connections counted")
}

#[tokio::test]
async fn postgres_tenant_names_are_validated() {
    // A canary: a schema with a table that an injection would drop; and the
    // longest valid name.
    let canary = fresh_schema();
    let longest = format!("{}{}", fresh_schema(), "x".repeat(63 - canary.len()));
    with_schemas(vec![canary, longest], |url, schemas| async move {
        let [canary, longest] = &schemas[..] else {
            unreachable!("two schemas")
        };
        let mut conn = admin(&url).await;
        for sql in [
            format!("CREATE SCHEMA \"{canary}\""),
            format!("CREATE TABLE \"{canary}\".x (id INT)"),
        ] {
            sqlx::query(&sql).execute(&mut conn).await.unwrap();
        }
        let bad = [
            format!("{canary}; DROP TABLE {canary}.x"),
            format!("{canary}\"; DROP TABLE \"{canary}\".x; --"),
            format!("public,{canary}"),
            "public; DROP TABLE x".to_owned(),
            "a-b".to_owned(),
            "Acme".to_owned(),
            "ACME".to_owned(),
            "1acme".to_owned(),
            "acme corp".to_owned(),
            "ａcme".to_owned(),
            format!("{longest}x"),
            String::new(),
            "pg_temp".to_owned(),
            "pg_catalog".to_owned(),
            "information_schema".to_owned(),
        ];
        let before = count_schemas(&mut conn, &bad, canary).await;
        for name in &bad {
            let options = ConnectOptions {
                tenant: Some(name.clone()),
                application_name: "corral-test-bad-tenant".into(),
                ..Default::default()
            };
            match store::connect_with(&url, &options).await {
                Err(StoreError::InvalidTenant { name: n, .. }) => assert_eq!(&n, name),
                Err(other) => panic!("{name:?}: expected InvalidTenant, got {other}"),
                Ok(_) => panic!("{name:?}: accepted"),
            }
            assert!(
                matches!(
                    PostgresStore::connect(&url, Some(name), "corral-test-bad-tenant").await,
                    Err(StoreError::InvalidTenant { .. })
                ),
                "{name:?}"
            );
        }
        let survived: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM information_schema.tables
                            WHERE table_schema = $1 AND table_name = 'x')",
        )
        .bind(canary)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert!(survived, "the canary table survived");
        let after = count_schemas(&mut conn, &bad, canary).await;
        assert_eq!(before, after, "no schema was created");

        // The longest valid name works.
        assert_eq!(longest.len(), 63);
        let store = PostgresStore::connect(&url, Some(longest), "corral-test-long-tenant")
            .await
            .expect("a 63-character tenant");
        assert_eq!(store.schema(), longest);
        store.pool().close().await;
    })
    .await;
}

#[tokio::test]
async fn postgres_connections_carry_the_application_name_and_close() {
    with_schemas(vec![fresh_schema()], |url, schemas| async move {
        let name = format!(
            "corral-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let store = open_tenant(&url, &schemas[0], &name).await;
        store.list_plugins().await.unwrap();
        let mut conn = admin(&url).await;
        assert!(
            connections_named(&mut conn, &name).await >= 1,
            "its connections are named"
        );
        // Close while queries are in flight: connections being returned to
        // the pool as it closes must be closed too.
        let mut busy = tokio::task::JoinSet::new();
        for _ in 0..12 {
            let store = store.clone();
            busy.spawn(async move { while store.list_plugins().await.is_ok() {} });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let closing = store.close();
        assert!(store.is_closed(), "closed before the future is awaited");
        closing.await;
        while busy.join_next().await.is_some() {}
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        loop {
            let open = connections_named(&mut conn, &name).await;
            if open == 0 {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                let rows: Vec<(Option<String>, Option<String>, String, i32)> = sqlx::query_as(
                    "SELECT state, query, backend_start::text, pid FROM pg_stat_activity WHERE application_name = $1",
                )
                .bind(&name)
                .fetch_all(&mut conn)
                .await
                .unwrap();
                panic!("{open} connections still open 1 s after close: {rows:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let query = tail.find('?').map(|i| &tail[i..]).unwrap_or("");
    format!("{scheme}://{authority}/{database}{query}")
}

#[tokio::test]
async fn postgres_without_tenant_uses_public() {
    let Some(url) = postgres_url() else { return };
    // A database of its own, so the test owns its `public` schema.
    let database = fresh_schema();
    let mut conn = admin(&url).await;
    sqlx::query(&format!("CREATE DATABASE \"{database}\""))
        .execute(&mut conn)
        .await
        .expect("the test database is created");
    let own = with_database(&url, &database);
    let outcome = tokio::spawn({
        let own = own.clone();
        async move {
            // Both URL schemes, through the plain `connect`.
            let store = store::connect(&own).await.expect("opens");
            let again = store::connect(&own.replacen("postgres://", "postgresql://", 1))
                .await
                .expect("opens again");
            store
                .add_plugin(&plugin_info("alpha", "1.0.0"), "sha", b"x")
                .await
                .unwrap();
            assert_eq!(again.list_plugins().await.unwrap().len(), 1);
            let mut conn = admin(&own).await;
            let public: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM information_schema.tables
                 WHERE table_schema = 'public' AND table_name IN ('plugins', 'task_runs')",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap();
            assert_eq!(public, 2);
            store.close().await;
            again.close().await;
        }
    })
    .await;
    sqlx::query(&format!("DROP DATABASE \"{database}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .expect("the test database is dropped");
    finish(Ok(outcome));
}

/// A schedule's life in the store: stored, replaced (keeping its anchor),
/// each fire time fired once (a second host's try changes nothing),
/// paused and resumed (resuming moves the anchor), removed (its
/// executions stay).
async fn schedules_put_fire_pause_remove(db: Db) {
    let store = &*db.store;
    workflow(store, "w").await;
    let every_minute = json!({ "name": "nightly", "workflow": "w", "cron": "* * * * *" });
    assert_eq!(
        store
            .put_schedule("nightly", "w", &every_minute, T)
            .await
            .unwrap(),
        Applied::Created
    );
    assert_eq!(
        store
            .put_schedule("nightly", "w", &every_minute, T + 1)
            .await
            .unwrap(),
        Applied::Unchanged
    );
    let hourly = json!({ "name": "nightly", "workflow": "w", "cron": "0 * * * *" });
    assert!(matches!(
        store
            .put_schedule("nightly", "w", &hourly, T + 2)
            .await
            .unwrap(),
        Applied::Updated { .. }
    ));
    let stored = store.schedule("nightly").await.unwrap().expect("stored");
    assert_eq!(
        (stored.definition, stored.paused, stored.anchor_ms),
        (hourly, false, T),
        "a replaced schedule keeps its anchor"
    );
    assert!(store.schedule("none").await.unwrap().is_none());

    let fire = ScheduleFire {
        schedule: "nightly".into(),
        fire_time_ms: T + 60_000,
        execution: Some(new_execution("s1", "w", vec![ready("a", T + 60_000)])),
    };
    assert!(store.fire_schedule(&fire, T + 60_001).await.unwrap());
    let again = db.reopen().await;
    assert!(
        !again.fire_schedule(&fire, T + 60_002).await.unwrap(),
        "one execution per fire time, whoever tries"
    );
    let started = snapshot(store, "s1").await.execution;
    assert_eq!(
        (started.schedule.as_deref(), started.fire_time_ms),
        (Some("nightly"), Some(T + 60_000))
    );
    assert!(store.schedule_running("nightly").await.unwrap());
    let skipped = ScheduleFire {
        schedule: "nightly".into(),
        fire_time_ms: T + 120_000,
        execution: None,
    };
    assert!(store.fire_schedule(&skipped, T + 120_001).await.unwrap());
    let anchor = store.schedule("nightly").await.unwrap().expect("stored");
    assert_eq!(anchor.anchor_ms, T + 120_000, "a fire advances the anchor");

    assert!(
        store
            .set_schedule_paused("nightly", true, T + 130_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .schedule("nightly")
            .await
            .unwrap()
            .expect("stored")
            .paused
    );
    assert!(
        store
            .set_schedule_paused("nightly", false, T + 500_000)
            .await
            .unwrap()
    );
    let resumed = store.schedule("nightly").await.unwrap().expect("stored");
    assert_eq!(
        (resumed.paused, resumed.anchor_ms),
        (false, T + 500_000),
        "resuming skips what passed while paused"
    );
    assert!(!store.set_schedule_paused("none", true, T).await.unwrap());
    let names: Vec<String> = store
        .list_schedules()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["nightly"]);

    assert!(store.remove_schedule("nightly").await.unwrap());
    assert!(!store.remove_schedule("nightly").await.unwrap());
    assert!(store.list_schedules().await.unwrap().is_empty());
    assert!(
        store.execution("s1").await.unwrap().is_some(),
        "its executions stay"
    );
}

/// The next wake-up, failing the test after 10 s.
async fn next_wakeup(wakeups: &mut Box<dyn Wakeups>) -> Option<Wakeup> {
    tokio::time::timeout(Duration::from_secs(10), wakeups.next())
        .await
        .expect("a wake-up within 10 s")
}

/// Writes that make work claimable or ask for a cancel wake the other
/// hosts (PostgreSQL's LISTEN/NOTIFY), a schedule's fire included. SQLite
/// has none: its runners poll.
async fn wake_ups_reach_other_hosts(db: Db) {
    let store = &*db.store;
    let other = db.reopen().await;
    let Some(mut wakeups) = other.listen().await.unwrap() else {
        assert!(db.url.starts_with("sqlite"), "only SQLite has no wake-ups");
        return;
    };
    execution(store, "e1", vec![ready("a", T)]).await;
    assert_eq!(next_wakeup(&mut wakeups).await, Some(Wakeup::Work));

    store
        .put_schedule("nightly", "w", &json!({ "name": "nightly" }), T)
        .await
        .unwrap();
    let fire = ScheduleFire {
        schedule: "nightly".into(),
        fire_time_ms: T + 60_000,
        execution: Some(new_execution("s1", "w", vec![ready("x", T + 60_000)])),
    };
    assert!(store.fire_schedule(&fire, T + 60_000).await.unwrap());
    assert_eq!(
        next_wakeup(&mut wakeups).await,
        Some(Wakeup::Work),
        "a schedule's fire wakes the other hosts"
    );

    let cancelled = testing::cancel_execution(store, "e1", T + 70_000, &cancel_only)
        .await
        .unwrap()
        .expect("e1 exists");
    assert_eq!(cancelled.execution.status, ExecutionStatus::Cancelled);
    assert_eq!(
        next_wakeup(&mut wakeups).await,
        Some(Wakeup::Cancel("e1".into()))
    );
}
