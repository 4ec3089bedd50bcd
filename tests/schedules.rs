//! Schedules: catch-up after an outage, per-second fires, pause/resume,
//! overlap, exactly one execution per fire time across runners and hosts,
//! and the CLI around them.

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use common::{artifacts, corral, corral_command, runner_builder};
use corral::schedule::{CatchUp, ManualClock, Overlap, Schedule};
use corral::store::ExecutionFilter;
use corral::{Runner, Workflow};

const GREET: &str = "name = \"greet\"\n[[steps]]\nid = \"greet\"\ntask = \"hello/greet\"\ninput = { name = \"cron\" }\n";
const NAP: &str =
    "name = \"nap\"\n[[steps]]\nid = \"nap\"\ntask = \"chaos/sleep\"\ninput = { seconds = 60 }\n";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("a valid instant")
        .with_timezone(&Utc)
}

/// A runner that executes nothing and fires only when told, on `clock`.
async fn runner(db: &std::path::Path, clock: &Arc<ManualClock>) -> Runner {
    let runner = runner_builder(db)
        .execute(false)
        .clock(clock.clone())
        .build()
        .await
        .unwrap();
    runner.register_plugin_file(artifacts::HELLO).await.unwrap();
    runner.register_plugin_file(artifacts::CHAOS).await.unwrap();
    for toml in [GREET, NAP] {
        runner
            .apply_workflow(&Workflow::from_toml(toml, None).unwrap())
            .await
            .unwrap();
    }
    runner
}

/// Fire times of the executions `schedule` started, oldest first.
async fn fired(runner: &Runner, schedule: &str) -> Vec<DateTime<Utc>> {
    let filter = ExecutionFilter {
        schedule: Some(schedule.into()),
        limit: Some(10_000),
        ..Default::default()
    };
    let mut times: Vec<DateTime<Utc>> = runner
        .list_executions(&filter)
        .await
        .unwrap()
        .iter()
        .map(|e| DateTime::from_timestamp_millis(e.fire_time_ms.expect("a fire time")).unwrap())
        .collect();
    times.sort();
    times
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_after_a_three_day_outage_follows_the_policy() {
    for (catch_up, expected) in [
        (CatchUp::Skip, vec![]),
        (CatchUp::Latest, vec!["2026-03-04T02:00:00Z"]),
        (
            CatchUp::all(),
            vec![
                "2026-03-02T02:00:00Z",
                "2026-03-03T02:00:00Z",
                "2026-03-04T02:00:00Z",
            ],
        ),
        (
            CatchUp::All { max: 2 },
            vec!["2026-03-03T02:00:00Z", "2026-03-04T02:00:00Z"],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(at("2026-03-01T12:00:00Z")));
        let runner = runner(&dir.path().join("corral.db"), &clock).await;
        let nightly = Schedule::new("nightly", "greet", "0 2 * * *")
            .unwrap()
            .with_catch_up(catch_up)
            .unwrap();
        runner.add_schedule(&nightly).await.unwrap();
        // No host runs for three days; one comes back at noon.
        clock.set(at("2026-03-04T12:00:00Z"));
        runner.fire_due_schedules().await.unwrap();
        let expected: Vec<_> = expected.into_iter().map(at).collect();
        assert_eq!(fired(&runner, "nightly").await, expected, "{catch_up}");
        // Firing again changes nothing.
        assert_eq!(runner.fire_due_schedules().await.unwrap(), 0);
        runner.shutdown(Duration::ZERO).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_second_schedule_fires_every_second_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let start = at("2026-06-01T00:00:00.200Z");
    let clock = Arc::new(ManualClock::new(start));
    let runner = runner(&dir.path().join("corral.db"), &clock).await;
    runner
        .add_schedule(&Schedule::new("tick", "greet", "* * * * * *").unwrap())
        .await
        .unwrap();
    // The firing loop's ticks, every half second, for ten seconds.
    for _ in 0..20 {
        clock.advance(Duration::from_millis(500));
        runner.fire_due_schedules().await.unwrap();
    }
    let times = fired(&runner, "tick").await;
    let expected: Vec<_> = (1..=10)
        .map(|s| at("2026-06-01T00:00:00Z") + TimeDelta::seconds(s))
        .collect();
    assert_eq!(times, expected);
    runner.shutdown(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_schedule_drops_what_passes_and_fires_again_after_resume() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-03-01T12:00:00Z")));
    let runner = runner(&dir.path().join("corral.db"), &clock).await;
    let nightly = Schedule::new("nightly", "greet", "0 2 * * *")
        .unwrap()
        .with_catch_up(CatchUp::all())
        .unwrap();
    runner.add_schedule(&nightly).await.unwrap();
    runner.pause_schedule("nightly", true).await.unwrap();
    clock.set(at("2026-03-03T12:00:00Z"));
    assert_eq!(
        runner.fire_due_schedules().await.unwrap(),
        0,
        "a paused schedule fires"
    );
    runner.pause_schedule("nightly", false).await.unwrap();
    assert_eq!(
        runner.fire_due_schedules().await.unwrap(),
        0,
        "fires due while paused ran on resume"
    );
    clock.set(at("2026-03-04T02:00:01Z"));
    runner.fire_due_schedules().await.unwrap();
    assert_eq!(
        fired(&runner, "nightly").await,
        [at("2026-03-04T02:00:00Z")]
    );
    assert!(matches!(
        runner.pause_schedule("nope", true).await,
        Err(corral::RunnerError::UnknownSchedule(_))
    ));
    runner.shutdown(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_skip_starts_nothing_while_the_previous_execution_runs() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-03-01T00:00:00Z")));
    let runner = runner(&dir.path().join("corral.db"), &clock).await;
    let minutely = Schedule::new("minutely", "nap", "* * * * *")
        .unwrap()
        .with_overlap(Overlap::Skip);
    runner.add_schedule(&minutely).await.unwrap();
    clock.set(at("2026-03-01T00:01:00Z"));
    assert_eq!(runner.fire_due_schedules().await.unwrap(), 1);
    // Nothing executes here, so the first execution still runs.
    clock.set(at("2026-03-01T00:02:00Z"));
    assert_eq!(runner.fire_due_schedules().await.unwrap(), 0);
    assert_eq!(
        fired(&runner, "minutely").await,
        [at("2026-03-01T00:01:00Z")]
    );
    runner.shutdown(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_firing_the_same_schedule_start_one_execution_per_fire_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corral.db");
    let clock = Arc::new(ManualClock::new(at("2026-03-01T00:00:00.100Z")));
    let first = runner(&db, &clock).await;
    let second = runner(&db, &clock).await;
    first
        .add_schedule(&Schedule::new("tick", "greet", "* * * * * *").unwrap())
        .await
        .unwrap();
    for _ in 0..10 {
        clock.advance(Duration::from_millis(500));
        let (a, b) = tokio::join!(first.fire_due_schedules(), second.fire_due_schedules());
        a.unwrap();
        b.unwrap();
    }
    let times = fired(&first, "tick").await;
    let mut unique = times.clone();
    unique.dedup();
    assert_eq!(times, unique, "a fire time started two executions");
    assert_eq!(times.len(), 5);
    first.shutdown(Duration::ZERO).await;
    second.shutdown(Duration::ZERO).await;
}

#[test]
fn the_cli_rejects_bad_schedules_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    assert!(
        corral(dir, &["plugin", "add", artifacts::HELLO])
            .status
            .success()
    );
    std::fs::write(dir.join("greet.toml"), GREET).unwrap();
    assert!(
        corral(dir, &["workflow", "apply", "greet.toml"])
            .status
            .success()
    );
    for (args, needle) in [
        (
            vec!["schedule", "add", "greet", "not a cron"],
            "invalid cron expression",
        ),
        (
            vec![
                "schedule",
                "add",
                "greet",
                "* * * * *",
                "--tz",
                "Mars/Olympus",
            ],
            "unknown time zone",
        ),
        (
            vec!["schedule", "add", "nope", "* * * * *"],
            "no workflow `nope`",
        ),
        (vec!["schedule", "pause", "nope"], "no schedule `nope`"),
    ] {
        let out = corral(dir, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: ") && last.contains(needle),
            "{args:?}: {err}"
        );
    }
    let list = corral(dir, &["schedule", "list", "--json"]);
    assert_eq!(String::from_utf8_lossy(&list.stdout).trim(), "[]");
    // A bad [[schedules]] entry stores neither the schedule nor the workflow change.
    let bad =
        format!("{GREET}description = \"x\"\n[[schedules]]\nname = \"n\"\ncron = \"61 * * * *\"\n");
    std::fs::write(
        dir.join("bad.toml"),
        bad.replace("description = \"x\"\n", ""),
    )
    .unwrap();
    assert!(
        !corral(dir, &["workflow", "apply", "bad.toml"])
            .status
            .success()
    );
    assert_eq!(
        String::from_utf8_lossy(&corral(dir, &["schedule", "list", "--json"]).stdout).trim(),
        "[]"
    );
}

#[test]
fn serve_fires_a_per_second_schedule_in_real_time() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    assert!(
        corral(dir, &["plugin", "add", artifacts::HELLO])
            .status
            .success()
    );
    let file = format!("{GREET}[[schedules]]\nname = \"tick\"\ncron = \"* * * * * *\"\n");
    std::fs::write(dir.join("greet.toml"), file).unwrap();
    let applied = corral(dir, &["workflow", "apply", "greet.toml"]);
    assert!(String::from_utf8_lossy(&applied.stdout).contains("created schedule tick"));
    let mut serve = corral_command(dir)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(serve.id() as libc::pid_t, libc::SIGTERM) };
    assert!(serve.wait().unwrap().success());
    let out = corral(dir, &["executions", "--schedule", "tick", "--json"]);
    let executions: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut times: Vec<i64> = executions
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["fire_time_ms"].as_i64().expect("a fire time"))
        .collect();
    times.sort();
    assert!(
        (2..=6).contains(&times.len()),
        "{} fires in 4 s",
        times.len()
    );
    for pair in times.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            1000,
            "fire times are consecutive seconds: {times:?}"
        );
    }
    assert!(
        executions
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["status"] == "succeeded" || e["status"] == "running")
    );
}
