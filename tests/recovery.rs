//! Crash recovery: a `corral serve` killed with SIGKILL mid-workflow leaves
//! a database from which the next runner finishes every execution, without
//! running a succeeded step again.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{artifacts, corral, corral_command, eventually, runner_builder};
use corral::store::{ExecutionStatus, TaskRunStatus};
use serde_json::Value;

const PIPELINE: &str = r#"
name = "pipeline"
[[steps]]
id = "first"
task = "chaos/echo"
input = { first = true }
[[steps]]
id = "busy"
task = "chaos/burn"
depends_on = ["first"]
input = { ms = 1500 }
[[steps]]
id = "last"
task = "chaos/echo"
depends_on = ["busy"]
input = { last = true }
"#;

fn serve(dir: &Path) -> Child {
    corral_command(dir)
        .args(["serve", "--lease", "1s", "--concurrency", "4"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("corral serve starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_workflow_loses_nothing_and_repeats_no_success() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    assert!(
        corral(dir, &["plugin", "add", artifacts::CHAOS])
            .status
            .success()
    );
    std::fs::write(dir.join("pipeline.toml"), PIPELINE).unwrap();
    assert!(
        corral(dir, &["workflow", "apply", "pipeline.toml"])
            .status
            .success()
    );
    let ids: Vec<String> = (0..3)
        .map(|_| {
            let out = corral(dir, &["run", "pipeline", "--detach"]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        })
        .collect();

    let db = dir.join("corral.db");
    let mut host = serve(dir);
    // Kill it while every execution is in its busy step.
    let observer = runner_builder(&db).execute(false).build().await.unwrap();
    eventually(
        Duration::from_secs(30),
        "every busy step running",
        async || {
            let mut all = true;
            for id in &ids {
                let report = observer.status(id).await.unwrap();
                let busy = report.steps.iter().find(|s| s.id == "busy").unwrap();
                all &= busy.status == TaskRunStatus::Running;
            }
            all
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    host.kill().unwrap(); // SIGKILL
    host.wait().unwrap();
    observer.shutdown(Duration::ZERO).await;

    let runner = runner_builder(&db).build().await.unwrap();
    for id in &ids {
        let handle = runner.handle(id.clone()).await.unwrap();
        let report = tokio::time::timeout(Duration::from_secs(30), handle.wait())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(report.status, ExecutionStatus::Succeeded, "{report:?}");
        assert_eq!(report.output.get("last"), Some(&Value::Bool(true)));
        let attempts = runner.attempts(id, None).await.unwrap();
        let of = |step: &str| {
            attempts
                .iter()
                .filter(|a| a.step_id == step)
                .collect::<Vec<_>>()
        };
        // `first` had succeeded before the kill: it never ran again.
        assert_eq!(of("first").len(), 1, "{attempts:?}");
        // `busy` was running: its attempt is recorded as interrupted, then
        // it ran again and succeeded once, without using up a retry.
        let busy = of("busy");
        let outcomes: Vec<_> = busy
            .iter()
            .map(|a| a.outcome.as_deref().unwrap_or("running"))
            .collect();
        assert_eq!(outcomes, ["interrupted", "succeeded"], "{busy:?}");
        assert_eq!(
            report
                .steps
                .iter()
                .find(|s| s.id == "busy")
                .unwrap()
                .attempts,
            1
        );
        assert_eq!(of("last").len(), 1);
    }
    runner.shutdown(Duration::from_secs(5)).await;
}

#[test]
fn serve_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    assert!(
        corral(dir, &["plugin", "add", artifacts::HELLO])
            .status
            .success()
    );
    let mut host = serve(dir);
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(
        unsafe { libc::kill(host.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = host.try_wait().unwrap() {
            assert!(status.success(), "serve exited with {status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
