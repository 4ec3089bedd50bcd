//! The sandbox against real misbehaving guests (plugins/chaos) and the
//! example plugins: every outcome kind, grants, caps, halting, the cache.

mod common;

use std::time::{Duration, Instant};

use common::{artifacts, load, output, request, run, sandbox, with_timeout};
use corral::sandbox::{
    CompileSource, DirGrant, Grants, Limits, Outcome, RunError, Sandbox, SandboxConfig,
};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_greets() {
    let sandbox = sandbox();
    let hello = load(&sandbox, artifacts::HELLO).await;
    assert_eq!(hello.info().id(), "hello@0.1.0");
    let report = run(&sandbox, &hello, &request("greet", json!({"name": "Ada"}))).await;
    assert_eq!(output(&report)["greeting"], "hello, Ada");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_input_is_a_permanent_failure() {
    let sandbox = sandbox();
    let hello = load(&sandbox, artifacts::HELLO).await;
    let report = run(&sandbox, &hello, &request("greet", json!({}))).await;
    match report.outcome {
        Outcome::Failed {
            message,
            retryable: false,
        } => assert!(message.contains("name"), "{message}"),
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_task_is_refused_before_running() {
    let sandbox = sandbox();
    let hello = load(&sandbox, artifacts::HELLO).await;
    let err = sandbox
        .run(&hello, &request("nope", json!({})), &sandbox.control())
        .await
        .unwrap_err();
    assert!(matches!(err, RunError::UnknownTask { .. }), "{err}");
    assert!(err.to_string().contains("greet"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spin_times_out_within_a_second() {
    let sandbox = sandbox();
    let chaos = load(&sandbox, artifacts::CHAOS).await;
    let started = Instant::now();
    let report = run(
        &sandbox,
        &chaos,
        &with_timeout(request("spin", json!({})), Duration::from_millis(200)),
    )
    .await;
    assert!(
        matches!(report.outcome, Outcome::TimedOut { .. }),
        "{:?}",
        report.outcome
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleep_in_a_host_call_times_out() {
    let sandbox = sandbox();
    let chaos = load(&sandbox, artifacts::CHAOS).await;
    let started = Instant::now();
    let report = run(
        &sandbox,
        &chaos,
        &with_timeout(request("sleep", json!({})), Duration::from_millis(200)),
    )
    .await;
    assert!(
        matches!(report.outcome, Outcome::TimedOut { .. }),
        "{:?}",
        report.outcome
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alloc_hits_the_memory_limit() {
    let sandbox = sandbox();
    let chaos = load(&sandbox, artifacts::CHAOS).await;
    let report = run(&sandbox, &chaos, &request("alloc", json!({}))).await;
    match report.outcome {
        Outcome::MemoryLimitExceeded { limit, requested } => {
            assert_eq!(limit, Limits::default().memory_bytes);
            assert!(requested > limit);
        }
        other => panic!("expected memory limit, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_becomes_a_failure_with_its_message() {
    let sandbox = sandbox();
    let chaos = load(&sandbox, artifacts::CHAOS).await;
    let report = run(&sandbox, &chaos, &request("panic", json!({}))).await;
    match report.outcome {
        Outcome::Failed {
            message,
            retryable: false,
        } => {
            assert!(message.contains("chaos: deliberate panic"), "{message}")
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_overflow_traps() {
    let sandbox = sandbox();
    let chaos = load(&sandbox, artifacts::CHAOS).await;
    let report = run(&sandbox, &chaos, &request("stack_overflow", json!({}))).await;
    match report.outcome {
        // Rust guests keep their shadow stack in linear memory, so unbounded
        // recursion ends as an out-of-bounds access or a native stack
        // overflow, depending on the frame size: both are traps.
        Outcome::Trapped { message } => assert!(!message.is_empty()),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_keep_their_retryable_flag() {
    let sandbox = sandbox();
    let chaos = load(&sandbox, artifacts::CHAOS).await;
    for (task, expected) in [("fail_retryable", true), ("fail_permanent", false)] {
        let report = run(&sandbox, &chaos, &request(task, json!({}))).await;
        match report.outcome {
            Outcome::Failed { retryable, .. } => assert_eq!(retryable, expected, "{task}"),
            other => panic!("{task}: expected a failure, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_is_denied_every_way() {
    let sandbox = sandbox();
    let chaos = load(&sandbox, artifacts::CHAOS).await;
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("inside.txt"), "ok").unwrap();
    let mut req = request("escape", json!({}));
    req.grants = Grants {
        dirs: vec![DirGrant::read_only(data.path(), "/data")],
        ..Grants::default()
    };
    let report = run(&sandbox, &chaos, &req).await;
    let out = output(&report);
    assert!(!out.is_empty());
    for (attempt, result) in out {
        let result = result.as_str().unwrap_or_default();
        assert!(result.starts_with("denied"), "{attempt}: {result}");
    }
    let names: Vec<_> = std::fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec!["inside.txt"],
        "the read-only grant was written to"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_grant_reads_and_writable_grant_writes() {
    let sandbox = sandbox();
    let etl = load(&sandbox, artifacts::ETL).await;
    let data = std::path::Path::new(artifacts::PLUGINS_DIR).join("etl/data");
    let out = tempfile::tempdir().unwrap();
    let grants = Grants {
        dirs: vec![
            DirGrant::read_only(&data, "/data"),
            DirGrant::writable(out.path(), "/out"),
        ],
        ..Grants::default()
    };
    let mut extract = request("extract", json!({}));
    extract.grants = grants.clone();
    let rows = output(&run(&sandbox, &etl, &extract).await).clone();
    let mut transform = request("transform", serde_json::Value::Object(rows));
    transform.grants = grants.clone();
    let totals = output(&run(&sandbox, &etl, &transform).await).clone();
    let mut load_req = request("load", serde_json::Value::Object(totals));
    load_req.grants = grants;
    output(&run(&sandbox, &etl, &load_req).await);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap())
            .unwrap();
    assert!(report.is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_granted_environment_is_visible() {
    let sandbox = sandbox();
    let chaos = load(&sandbox, artifacts::CHAOS).await;
    // SAFETY: set before any other thread of this test reads the environment.
    unsafe { std::env::set_var("CORRAL_TEST_SECRET", "leak") };
    let mut req = request("env", json!({}));
    req.grants.env.insert("GREETING".into(), "hi".into());
    let report = run(&sandbox, &chaos, &req).await;
    let env = output(&report)["env"]
        .as_object()
        .expect("env is an object");
    assert_eq!(env.get("GREETING").and_then(|v| v.as_str()), Some("hi"));
    assert_eq!(env.len(), 1, "unexpected environment: {env:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_output_is_rejected() {
    let sandbox = sandbox();
    let chaos = load(&sandbox, artifacts::CHAOS).await;
    // Enough memory for the guest to build its 100 MiB string.
    let mut req = request("huge_output", json!({}));
    req.limits.memory_bytes = 512 << 20;
    let report = run(&sandbox, &chaos, &req).await;
    match report.outcome {
        Outcome::InvalidOutput { reason } => assert!(reason.contains("limit"), "{reason}"),
        other => panic!("expected invalid output, got {other:?}"),
    }
    // With the default memory limit the guest cannot even build it.
    let report = run(&sandbox, &chaos, &request("huge_output", json!({}))).await;
    assert!(
        matches!(report.outcome, Outcome::MemoryLimitExceeded { .. }),
        "{:?}",
        report.outcome
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_flood_is_capped() {
    let sandbox = sandbox();
    let chaos = load(&sandbox, artifacts::CHAOS).await;
    let report = run(&sandbox, &chaos, &request("log_flood", json!({}))).await;
    let limits = Limits::default();
    assert!(report.outcome.is_success(), "{:?}", report.outcome);
    assert!(report.logs.len() <= limits.max_log_lines);
    assert!(report.logs_dropped > 0);
    assert_eq!(report.logs.len() as u64 + report.logs_dropped, 1_000_000);
    assert!(report.stdout.text.len() <= limits.max_stdio_bytes);
    assert!(report.stdout.dropped_bytes > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_one_attempt() {
    let sandbox = sandbox();
    let chaos = load(&sandbox, artifacts::CHAOS).await;
    let control = sandbox.control();
    let canceller = {
        let control = control.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            control.cancel();
        })
    };
    let report = sandbox
        .run(&chaos, &request("spin", json!({})), &control)
        .await
        .unwrap();
    canceller.await.unwrap();
    assert_eq!(report.outcome, Outcome::Cancelled);
    // Other attempts are unaffected.
    let hello = load(&sandbox, artifacts::HELLO).await;
    output(&run(&sandbox, &hello, &request("greet", json!({"name": "x"}))).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_load_hits_the_artifact_cache() {
    let cache = tempfile::tempdir().unwrap();
    let config = SandboxConfig {
        cache_dir: Some(cache.path().into()),
        ..SandboxConfig::default()
    };
    let first = Sandbox::new(config.clone()).unwrap();
    let plugin = load(&first, artifacts::HELLO).await;
    assert_eq!(plugin.compile_source(), CompileSource::Compiled);
    let again = load(&first, artifacts::HELLO).await;
    assert_eq!(again.compile_source(), CompileSource::Cache);
    drop(first);
    // A new engine with the same settings (a restarted host) also hits it.
    let second = Sandbox::new(config).unwrap();
    let plugin = load(&second, artifacts::HELLO).await;
    assert_eq!(plugin.compile_source(), CompileSource::Cache);
    let report = run(
        &second,
        &plugin,
        &request("greet", json!({"name": "cache"})),
    )
    .await;
    assert_eq!(output(&report)["greeting"], "hello, cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_cache_entries_are_recompiled() {
    let cache = tempfile::tempdir().unwrap();
    let config = SandboxConfig {
        cache_dir: Some(cache.path().into()),
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::new(config).unwrap();
    load(&sandbox, artifacts::HELLO).await;
    for entry in std::fs::read_dir(cache.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let plugin = load(&sandbox, artifacts::HELLO).await;
    assert_eq!(plugin.compile_source(), CompileSource::Compiled);
    output(
        &run(
            &sandbox,
            &plugin,
            &request("greet", json!({"name": "again"})),
        )
        .await,
    );
}
