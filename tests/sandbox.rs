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

// ----- Disk quotas and symlinks on writable grants -----

/// A writable grant of `dir` at `/out` with the given quota.
fn out_grant(dir: &std::path::Path, max_bytes: Option<u64>, max_files: Option<u64>) -> Grants {
    let mut grant = DirGrant::writable(dir, "/out");
    grant.max_bytes = max_bytes;
    grant.max_files = max_files;
    Grants {
        dirs: vec![grant],
        ..Grants::default()
    }
}

/// The guest's own permanent failure (never a trap), with its message.
fn guest_failure(report: &corral::sandbox::AttemptReport) -> &str {
    match &report.outcome {
        Outcome::Failed {
            message,
            retryable: false,
        } => message,
        other => panic!("expected the guest's own failure, got {other:?}"),
    }
}

/// The host's quota line in the attempt's logs.
fn quota_line(report: &corral::sandbox::AttemptReport) -> &str {
    let lines: Vec<_> = report
        .logs
        .iter()
        .filter(|l| l.message.starts_with("[corral host] disk quota"))
        .collect();
    assert_eq!(lines.len(), 1, "logs: {:?}", report.logs);
    assert_eq!(lines[0].level, "warn");
    &lines[0].message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_past_max_bytes_fail_with_enospc_by_every_write_path() {
    const LIMIT: u64 = 1 << 20;
    const CHUNK: u64 = 64 << 10;
    let sandbox = sandbox();
    let chaos = load(&sandbox, artifacts::CHAOS).await;
    for how in ["stream", "pwrite", "append"] {
        let out = tempfile::tempdir().unwrap();
        let mut req = request(
            "fill_disk",
            json!({"path": "/out/big.bin", "bytes": 200u64 << 20, "chunk": CHUNK, "how": how}),
        );
        req.grants = out_grant(out.path(), Some(LIMIT), None);
        let report = run(&sandbox, &chaos, &req).await;
        let message = guest_failure(&report);
        // wasi-libc reports any failed stream write as EIO; pwrite carries
        // the WASI error code through.
        let expected = if how == "pwrite" {
            "No space left on device (os error 51) (kind StorageFull)"
        } else {
            "I/O error (os error 29)"
        };
        assert!(
            message.contains(expected),
            "{how}: the guest did not see {expected}: {message}"
        );
        let on_disk = std::fs::metadata(out.path().join("big.bin")).unwrap().len();
        assert!(on_disk <= LIMIT, "{how}: {on_disk} bytes on disk");
        assert!(
            on_disk > LIMIT - CHUNK,
            "{how}: only {on_disk} bytes written"
        );
        assert!(
            message.contains(&format!("write failed after {on_disk} bytes")),
            "{how}: {message}"
        );
        let usage = &report.fs_usage[0];
        assert_eq!(usage.guest, "/out");
        assert_eq!(usage.bytes_written, on_disk, "{how}");
        assert!(usage.bytes_limit_hit && !usage.files_limit_hit, "{usage:?}");
        assert_eq!(usage.files_created, 1, "{how}");
        let line = quota_line(&report);
        assert!(
            line.contains("grant /out reached max_bytes = 1048576")
                && line.contains(&format!("wrote {on_disk} bytes")),
            "{line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn growing_a_file_without_writing_pays_for_the_growth() {
    const LIMIT: u64 = 1 << 20;
    let sandbox = sandbox();
    let chaos = load(&sandbox, artifacts::CHAOS).await;
    for how in ["set_size", "pwrite", "seek"] {
        let out = tempfile::tempdir().unwrap();
        // A 1 TiB sparse file costs the disk nothing now, but whoever copies
        // or archives the directory later pays for all of it.
        let mut req = request(
            "grow_file",
            json!({"path": "/out/sparse", "bytes": 1u64 << 40, "how": how}),
        );
        req.grants = out_grant(out.path(), Some(LIMIT), None);
        let out_json = output(&run(&sandbox, &chaos, &req).await).clone();
        let result = out_json["result"].as_str().unwrap();
        assert!(
            result.contains("No space left on device"),
            "{how}: {result}"
        );
        assert_eq!(out_json["size"], 0, "{how}");
        assert_eq!(
            std::fs::metadata(out.path().join("sparse")).unwrap().len(),
            0,
            "{how}"
        );
        // Within the limit the same calls work, and are counted.
        let mut req = request(
            "grow_file",
            json!({"path": "/out/sparse", "bytes": 512 << 10, "how": how}),
        );
        req.grants = out_grant(out.path(), Some(LIMIT), None);
        let report = run(&sandbox, &chaos, &req).await;
        assert_eq!(output(&report)["result"], "CREATED", "{how}");
        let size = std::fs::metadata(out.path().join("sparse")).unwrap().len();
        assert!(size >= 512 << 10, "{how}: {size}");
        assert_eq!(report.fs_usage[0].bytes_written, size, "{how}");
        assert!(!report.fs_usage[0].bytes_limit_hit);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_past_max_files_fails_for_every_kind_of_entry() {
    const LIMIT: u64 = 50;
    let sandbox = sandbox();
    let chaos = load(&sandbox, artifacts::CHAOS).await;
    for kind in ["file", "dir", "symlink", "hardlink"] {
        let out = tempfile::tempdir().unwrap();
        let mut req = request(
            "create_files",
            json!({"dir": "/out", "count": 1000, "kind": kind}),
        );
        req.grants = out_grant(out.path(), None, Some(LIMIT));
        let report = run(&sandbox, &chaos, &req).await;
        let message = guest_failure(&report);
        // The hard link source is one of the entries.
        let made = if kind == "hardlink" { LIMIT - 1 } else { LIMIT };
        assert!(
            message.contains(&format!("create failed after {made} entries"))
                && message.contains("No space left on device"),
            "{kind}: {message}"
        );
        let entries = std::fs::read_dir(out.path()).unwrap().count() as u64;
        assert_eq!(entries, LIMIT, "{kind}: entries on disk");
        let usage = &report.fs_usage[0];
        assert_eq!(usage.files_created, LIMIT, "{kind}");
        assert!(usage.files_limit_hit && !usage.bytes_limit_hit, "{usage:?}");
        assert!(
            quota_line(&report).contains("reached max_files = 50"),
            "{kind}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_quota_stops_the_file_flood_at_ten_thousand() {
    let sandbox = sandbox();
    let chaos = load(&sandbox, artifacts::CHAOS).await;
    let out = tempfile::tempdir().unwrap();
    let mut req = request("create_files", json!({"dir": "/out", "count": 20_000}));
    req.grants = out_grant(out.path(), None, None);
    let report = run(&sandbox, &chaos, &req).await;
    let message = guest_failure(&report);
    assert!(
        message.contains("create failed after 10000 entries"),
        "{message}"
    );
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 10_000);
    let usage = &report.fs_usage[0];
    assert_eq!(
        (usage.max_bytes, usage.max_files),
        (
            corral::sandbox::DEFAULT_MAX_BYTES,
            corral::sandbox::DEFAULT_MAX_FILES
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_count_per_attempt_and_overwriting_is_free() {
    let sandbox = sandbox();
    let chaos = load(&sandbox, artifacts::CHAOS).await;
    let out = tempfile::tempdir().unwrap();
    // Three attempts each write 600 KiB under a 1 MiB quota: each starts
    // afresh. The file is re-created (truncated) each time.
    for _ in 0..3 {
        let mut req = request(
            "fill_disk",
            json!({"path": "/out/f", "bytes": 600 << 10, "how": "stream"}),
        );
        req.grants = out_grant(out.path(), Some(1 << 20), Some(1));
        let report = run(&sandbox, &chaos, &req).await;
        assert_eq!(output(&report)["written"], 600 << 10);
        // `File::create` of an existing file creates no entry.
        assert!(report.logs.is_empty(), "{:?}", report.logs);
    }
    // Overwriting in place grows nothing, so costs nothing, even with no
    // byte quota at all.
    for how in ["pwrite", "stream"] {
        let mut req = request(
            "fill_disk",
            json!({"path": "/out/f", "bytes": 600 << 10, "how": how, "keep": true}),
        );
        req.grants = out_grant(out.path(), Some(0), Some(0));
        let report = run(&sandbox, &chaos, &req).await;
        assert_eq!(output(&report)["written"], 600 << 10, "{how}");
        assert_eq!(report.fs_usage[0].bytes_written, 0, "{how}");
    }
    assert_eq!(
        std::fs::metadata(out.path().join("f")).unwrap().len(),
        600 << 10
    );
}

/// The outside review's finding: a `..` link the operator left in a
/// writable grant, harmless where it is, pointed outside once the guest
/// moved it higher up (by rename, or by hard-linking the link itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_cannot_move_a_dotdot_link_to_where_it_escapes() {
    let sandbox = sandbox();
    let chaos = load(&sandbox, artifacts::CHAOS).await;
    let parent = tempfile::tempdir().unwrap();
    let out = parent.path().join("out");
    std::fs::create_dir_all(out.join("a/b")).unwrap();
    std::fs::write(parent.path().join("x"), "secret").unwrap();
    // out/a/b/l -> ../x is out/a/x: inside. Moved to out/l it is ../x: outside.
    std::os::unix::fs::symlink("../x", out.join("a/b/l")).unwrap();
    for hard_link in [false, true] {
        let mut req = request(
            "rename",
            json!({"from": "/out/a/b/l", "to": "/out/l", "hard_link": hard_link}),
        );
        req.grants = out_grant(&out, None, None);
        let report = run(&sandbox, &chaos, &req).await;
        let result = output(&report)["result"].as_str().unwrap().to_owned();
        assert!(
            result.starts_with("denied"),
            "hard_link = {hard_link}: {result}"
        );
        assert!(
            std::fs::symlink_metadata(out.join("l")).is_err(),
            "hard_link = {hard_link}: the link was moved"
        );
    }
    // An ordinary file still moves.
    std::fs::write(out.join("a/b/f"), "data").unwrap();
    let mut req = request("rename", json!({"from": "/out/a/b/f", "to": "/out/f"}));
    req.grants = out_grant(&out, None, None);
    let report = run(&sandbox, &chaos, &req).await;
    assert_eq!(output(&report)["result"], "CREATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_symlink_in_a_writable_grant_points_outside_it() {
    let sandbox = sandbox();
    let chaos = load(&sandbox, artifacts::CHAOS).await;
    let parent = tempfile::tempdir().unwrap();
    let out = parent.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(parent.path().join("outside"), "secret").unwrap();
    let mut req = request("plant_symlinks", json!({"dir": "/out"}));
    req.grants = out_grant(&out, None, None);
    let report = run(&sandbox, &chaos, &req).await;
    let result = output(&report);
    for escaping in ["dotdot", "deep_dotdot", "absolute"] {
        let r = result[escaping].as_str().unwrap();
        assert!(r.starts_with("denied"), "{escaping}: {r}");
    }
    assert_eq!(result["inside"], "CREATED");
    // On disk: every link's target is relative without `..`, and resolves
    // (if at all) inside the grant.
    let out = out.canonicalize().unwrap();
    let mut links = 0;
    let mut stack = vec![out.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_symlink() {
                links += 1;
                let target = std::fs::read_link(&path).unwrap();
                assert!(
                    target.is_relative()
                        && !target
                            .components()
                            .any(|c| c == std::path::Component::ParentDir),
                    "{} -> {}",
                    path.display(),
                    target.display()
                );
                if let Ok(resolved) = path.canonicalize() {
                    assert!(resolved.starts_with(&out), "{}", resolved.display());
                }
            } else if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    assert_eq!(links, 1, "only the harmless link exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_cannot_move_between_writable_grants() {
    let sandbox = sandbox();
    let chaos = load(&sandbox, artifacts::CHAOS).await;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(a.path().join("f"), vec![b'x'; 4096]).unwrap();
    let grants = Grants {
        dirs: vec![
            DirGrant::writable(a.path(), "/a"),
            DirGrant::writable(b.path(), "/b").with_max_bytes(0),
        ],
        ..Grants::default()
    };
    // A rename would carry bytes past /b's meter (its quota is 0).
    let mut req = request("rename", json!({"from": "/a/f", "to": "/b/f"}));
    req.grants = grants.clone();
    let result = output(&run(&sandbox, &chaos, &req).await)["result"].clone();
    assert!(
        result.as_str().unwrap().contains("CrossesDevices"),
        "{result}"
    );
    assert!(!b.path().join("f").exists());
    // Within one grant, renaming is free and allowed.
    let mut req = request("rename", json!({"from": "/a/f", "to": "/a/g"}));
    req.grants = grants;
    let report = run(&sandbox, &chaos, &req).await;
    assert_eq!(output(&report)["result"], "CREATED");
    assert!(a.path().join("g").exists());
    assert_eq!(report.fs_usage.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_that_do_not_write_report_no_usage() {
    let sandbox = sandbox();
    let chaos = load(&sandbox, artifacts::CHAOS).await;
    let report = run(&sandbox, &chaos, &request("noop", json!({}))).await;
    assert!(report.fs_usage.is_empty());
    let out = tempfile::tempdir().unwrap();
    let mut req = request("noop", json!({}));
    req.grants = out_grant(out.path(), Some(10), Some(0));
    let report = run(&sandbox, &chaos, &req).await;
    output(&report);
    let usage = &report.fs_usage[0];
    assert_eq!((usage.bytes_written, usage.files_created), (0, 0));
    assert!(report.logs.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_on_a_read_only_grant_is_refused() {
    let sandbox = sandbox();
    let chaos = load(&sandbox, artifacts::CHAOS).await;
    let data = tempfile::tempdir().unwrap();
    let mut req = request("noop", json!({}));
    req.grants.dirs = vec![DirGrant::read_only(data.path(), "/data").with_max_files(10)];
    let err = sandbox
        .run(&chaos, &req, &sandbox.control())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("read-only but has a quota"),
        "{err}"
    );
}
