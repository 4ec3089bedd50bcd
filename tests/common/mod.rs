//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::Duration;

use corral::sandbox::{AttemptReport, AttemptRequest, Limits, Plugin, Sandbox, SandboxConfig};
use serde_json::{Map, Value};

pub use corral_test_artifacts as artifacts;

pub mod postgres;

/// A sandbox with a small pool, no artifact cache.
pub fn sandbox() -> Sandbox {
    Sandbox::new(SandboxConfig {
        max_concurrent_attempts: 128,
        ..SandboxConfig::default()
    })
    .expect("sandbox builds")
}

pub async fn load(sandbox: &Sandbox, path: &str) -> Plugin {
    sandbox.load_plugin_file(path).await.expect("plugin loads")
}

/// A request for `task` with `input` (a JSON object literal) and default limits.
pub fn request(task: &str, input: Value) -> AttemptRequest {
    let Value::Object(input) = input else {
        panic!("input must be an object")
    };
    AttemptRequest {
        task: task.into(),
        input,
        ..AttemptRequest::default()
    }
}

pub fn with_timeout(mut request: AttemptRequest, timeout: Duration) -> AttemptRequest {
    request.limits = Limits {
        timeout,
        ..request.limits
    };
    request
}

pub async fn run(sandbox: &Sandbox, plugin: &Plugin, request: &AttemptRequest) -> AttemptReport {
    sandbox
        .run(plugin, request, &sandbox.control())
        .await
        .expect("attempt starts")
}

pub fn output(report: &AttemptReport) -> &Map<String, Value> {
    match &report.outcome {
        corral::sandbox::Outcome::Succeeded { output } => output,
        other => panic!(
            "expected success, got {other:?}; stderr: {}",
            report.stderr.text
        ),
    }
}

/// CPU time (user + system) this process has used so far.
pub fn process_cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a full rusage into the pointer we pass.
    let usage = unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()), 0);
        usage.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Asserts the process stays (nearly) idle for `window`: less than 10% of
/// one core. Guests that kept spinning would burn a full core each.
pub async fn assert_cpu_idle(window: Duration) {
    let before = process_cpu_time();
    tokio::time::sleep(window).await;
    let used = process_cpu_time() - before;
    assert!(
        used < window / 10,
        "the process used {used:?} of CPU in {window:?} after the halt: guests are still running"
    );
}

/// A runner builder on the SQLite file `db`, with a short lease and poll
/// interval so tests of recovery do not wait long.
pub fn runner_builder(db: &std::path::Path) -> corral::RunnerBuilder {
    corral::Runner::builder()
        .database_url(format!("sqlite://{}", db.display()))
        .lease(Duration::from_secs(1))
        .poll_interval(Duration::from_millis(50))
}

/// Registers the test plugins and applies `workflow` (TOML).
pub async fn setup(runner: &corral::Runner, workflow: &str) {
    for plugin in [artifacts::HELLO, artifacts::CHAOS, artifacts::ETL] {
        runner
            .register_plugin_file(plugin)
            .await
            .expect("plugin registers");
    }
    let workflow = corral::Workflow::from_toml(workflow, None).expect("workflow parses");
    runner
        .apply_workflow(&workflow)
        .await
        .expect("workflow applies");
}

/// Polls `check` every 10 ms until it holds or `within` passed.
pub async fn eventually(within: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not within {within:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The `corral` binary, to run in `dir`: the default database `corral.db`
/// and the artifact cache live there, nothing comes from the environment.
pub fn corral_command(dir: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_corral"));
    command
        .current_dir(dir)
        .env_remove("CORRAL_DATABASE_URL")
        .env_remove("CORRAL_TENANT")
        .env("CORRAL_CACHE_DIR", dir.join("cache"));
    command
}

/// Runs `corral ARGS` in `dir` (see [`corral_command`]) to completion.
pub fn corral(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    corral_command(dir)
        .args(args)
        .output()
        .expect("corral runs")
}
