//! The runner's lifecycle with real spinning and sleeping guests: `Drop`
//! and `shutdown` leave nothing running, nothing open and nothing lost.
//!
//! The tests measure the whole process (CPU time, tokio tasks, file locks),
//! so they take turns.

mod common;

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use common::{assert_cpu_idle, eventually, process_cpu_time, runner_builder, setup};
use corral::store::{ExecutionStatus, TaskRunStatus};
use corral::{ExecutionHandle, Runner};
use serde_json::json;
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteLockingMode};

static SERIAL: Mutex<()> = Mutex::new(());

/// Four busy guests and four guests parked in a WASI sleep, all
/// independent, then a step that joins them.
const BUSY_AND_ASLEEP: &str = r#"
name = "busy_and_asleep"
[defaults]
timeout = "60s"
[[steps]]
id = "burn1"
task = "chaos/burn"
input = { ms = 2000 }
[[steps]]
id = "burn2"
task = "chaos/burn"
input = { ms = 2000 }
[[steps]]
id = "burn3"
task = "chaos/burn"
input = { ms = 2000 }
[[steps]]
id = "burn4"
task = "chaos/burn"
input = { ms = 2000 }
[[steps]]
id = "nap1"
task = "chaos/sleep"
input = { seconds = 2 }
[[steps]]
id = "nap2"
task = "chaos/sleep"
input = { seconds = 2 }
[[steps]]
id = "nap3"
task = "chaos/sleep"
input = { seconds = 2 }
[[steps]]
id = "nap4"
task = "chaos/sleep"
input = { seconds = 2 }
[[steps]]
id = "join"
task = "chaos/echo"
depends_on = ["burn1", "burn2", "burn3", "burn4", "nap1", "nap2", "nap3", "nap4"]
input = { joined = true }
"#;

/// Runs `body` on a fresh runtime while holding the lock that makes these
/// tests take turns.
fn serial(body: impl AsyncFnOnce()) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    two_worker_runtime().block_on(body());
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Starts the workflow and waits until all eight guests are running.
async fn start_eight_guests(runner: &Runner) -> ExecutionHandle {
    let handle = runner.execute("busy_and_asleep", json!({})).await.unwrap();
    eventually(
        Duration::from_secs(20),
        "eight guests running",
        async || runner.attempts_in_flight() == 8,
    )
    .await;
    // Let every guest get past instantiation into its loop or its sleep.
    tokio::time::sleep(Duration::from_millis(200)).await;
    handle
}

/// A runner of `concurrency` slots on a fresh SQLite file (in the returned
/// directory, as `corral.db`) with the eight guests of one execution
/// running.
async fn eight_guests_running(concurrency: usize) -> (tempfile::TempDir, Runner, ExecutionHandle) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corral.db");
    let runner = runner_builder(&db)
        .concurrency(concurrency)
        .build()
        .await
        .unwrap();
    setup(&runner, BUSY_AND_ASLEEP).await;
    let handle = start_eight_guests(&runner).await;
    (dir, runner, handle)
}

/// The SQLite file can be opened with an exclusive lock: no connection of
/// the old runner is left.
async fn assert_exclusive_lock(db: &Path) {
    let options = SqliteConnectOptions::new()
        .filename(db)
        .locking_mode(SqliteLockingMode::Exclusive)
        .busy_timeout(Duration::ZERO);
    eventually(
        Duration::from_secs(1),
        "an exclusive lock on the database",
        async || {
            let Ok(mut conn) = SqliteConnection::connect_with(&options).await else {
                return false;
            };
            let locked = sqlx::query("BEGIN EXCLUSIVE")
                .execute(&mut conn)
                .await
                .is_ok()
                && sqlx::query("COMMIT").execute(&mut conn).await.is_ok();
            let _ = conn.close().await;
            locked
        },
    )
    .await;
}

/// A second runner finishes the interrupted execution: every step ran to
/// success exactly once, the join step saw its input.
async fn finish_with_second_runner(db: &Path, id: &str) {
    let runner = runner_builder(db).build().await.unwrap();
    let report = tokio::time::timeout(
        Duration::from_secs(30),
        runner.handle(id.to_owned()).await.unwrap().wait(),
    )
    .await
    .expect("the second runner finishes within 30 s")
    .unwrap();
    assert_eq!(report.status, ExecutionStatus::Succeeded, "{report:?}");
    assert_eq!(report.output["joined"], true);
    let attempts = runner.attempts(id, None).await.unwrap();
    for step in &report.steps {
        assert_eq!(step.status, TaskRunStatus::Succeeded);
        let mine: Vec<_> = attempts.iter().filter(|a| a.step_id == step.id).collect();
        let succeeded = mine
            .iter()
            .filter(|a| a.outcome.as_deref() == Some("succeeded"))
            .count();
        assert_eq!(succeeded, 1, "step {} succeeded {succeeded} times", step.id);
        if step.id != "join" {
            assert_eq!(
                mine[0].outcome.as_deref(),
                Some("interrupted"),
                "step {}: {mine:?}",
                step.id
            );
            // Interrupted attempts do not use up the retry budget.
            assert_eq!(step.attempts, 1, "step {}", step.id);
        }
    }
    runner.shutdown(Duration::from_secs(5)).await;
}

#[test]
fn drop_halts_every_guest_and_leaves_nothing_behind() {
    serial(async || {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("corral.db");
        let baseline = alive_tasks();
        let runner = runner_builder(&db).concurrency(8).build().await.unwrap();
        setup(&runner, BUSY_AND_ASLEEP).await;
        let handle = start_eight_guests(&runner).await;
        let id = handle.id().to_owned();
        drop(handle);
        let before = process_cpu_time();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            process_cpu_time() - before > Duration::from_millis(100),
            "the guests are not burning CPU"
        );
        let store = runner.store().clone();

        drop(runner);

        assert!(store.is_closed(), "the pool is closed at once");
        eventually(
            Duration::from_secs(1),
            "tokio tasks back to the baseline",
            async || alive_tasks() <= baseline,
        )
        .await;
        assert_cpu_idle(Duration::from_millis(500)).await;
        drop(store);
        assert_exclusive_lock(&db).await;
        finish_with_second_runner(&db, &id).await;
    });
}

#[test]
fn shutdown_halts_what_outlives_the_grace_and_records_it_as_interrupted() {
    serial(async || {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("corral.db");
        let baseline = alive_tasks();
        let runner = runner_builder(&db).concurrency(8).build().await.unwrap();
        setup(&runner, BUSY_AND_ASLEEP).await;
        let handle = start_eight_guests(&runner).await;
        let id = handle.id().to_owned();
        drop(handle);
        let store = runner.store().clone();

        let report = runner.shutdown(Duration::from_millis(100)).await;

        assert_eq!(report.halted, 8, "{report:?}");
        assert_eq!(report.finished, 0, "{report:?}");
        assert!(store.is_closed());
        assert!(
            runner.shutdown(Duration::ZERO).await.already_shut_down,
            "shutdown is idempotent"
        );
        eventually(
            Duration::from_secs(1),
            "tokio tasks back to the baseline",
            async || alive_tasks() <= baseline,
        )
        .await;
        assert_cpu_idle(Duration::from_millis(500)).await;
        drop(runner);
        drop(store);
        assert_exclusive_lock(&db).await;
        finish_with_second_runner(&db, &id).await;
    });
}

/// With slots to spare, the claim loop waits inside a write (its claim
/// parked for the next batch) when the shutdown comes; with no grace, every
/// attempt it stops still counts as halted, none as finished.
#[test]
fn shutdown_without_grace_counts_every_stopped_attempt_as_halted() {
    serial(async || {
        let (_dir, runner, _) = eight_guests_running(12).await;
        let report = runner.shutdown(Duration::ZERO).await;
        assert_eq!((report.finished, report.halted), (0, 8), "{report:?}");
    });
}

#[test]
fn shutdown_lets_attempts_finish_within_the_grace() {
    serial(async || {
        let (dir, runner, handle) = eight_guests_running(8).await;
        let db = dir.path().join("corral.db");
        let report = runner.shutdown(Duration::from_secs(20)).await;
        assert_eq!((report.finished, report.halted), (8, 0), "{report:?}");
        drop(runner);
        // The eight ended within the grace; only the join step is left to run.
        let runner = runner_builder(&db).build().await.unwrap();
        let report = runner
            .handle(handle.id().to_owned())
            .await
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(report.status, ExecutionStatus::Succeeded);
        let attempts = runner.attempts(handle.id(), None).await.unwrap();
        assert!(
            attempts
                .iter()
                .all(|a| a.outcome.as_deref() == Some("succeeded")),
            "{attempts:?}"
        );
        runner.shutdown(Duration::from_secs(5)).await;
    });
}

fn two_worker_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A runner on `db` with the eight guests of [`BUSY_AND_ASLEEP`] running.
async fn eight_guests_on(db: &Path) -> Runner {
    let runner = runner_builder(db).concurrency(8).build().await.unwrap();
    setup(&runner, BUSY_AND_ASLEEP).await;
    start_eight_guests(&runner).await;
    runner
}

#[test]
fn drop_outside_a_runtime_does_not_panic_or_block() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corral.db");
    let rt = two_worker_runtime();
    let runner = rt.block_on(eight_guests_on(&db));
    let store = runner.store().clone();
    let started = std::time::Instant::now();
    drop(runner);
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "drop blocked for {:?}",
        started.elapsed()
    );
    assert!(store.is_closed());
    rt.block_on(async {
        assert_cpu_idle(Duration::from_millis(500)).await;
    });
    drop(store);
    drop(rt);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(assert_exclusive_lock(&db));
}

#[test]
fn drop_while_unwinding_or_in_a_runtime_shutting_down_does_not_panic() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corral.db");
    let rt = two_worker_runtime();
    let runner = rt.block_on(eight_guests_on(&db));
    // Dropped while its thread unwinds: a panic in the destructor would
    // abort the test process.
    let joined = std::thread::spawn(move || {
        let _runner = runner;
        panic!("the thread holding the runner failed");
    })
    .join();
    assert!(joined.is_err());
    // Dropped by a runtime shutting down, inside a task it aborts.
    let runner = rt.block_on(async { runner_builder(&db).build().await.unwrap() });
    rt.spawn(async move {
        let _runner = runner;
        std::future::pending::<()>().await;
    });
    drop(rt);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(assert_exclusive_lock(&db));
}
