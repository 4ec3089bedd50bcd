//! Halting every in-flight guest at once. In its own test binary: it
//! measures the CPU time of the whole process, which other tests running in
//! parallel would disturb.

mod common;

use std::time::{Duration, Instant};

use common::{artifacts, assert_cpu_idle, load, request, run, sandbox};
use corral::sandbox::Outcome;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halt_all_stops_fifty_spinning_and_fifty_sleeping_guests() {
    let sandbox = sandbox();
    let chaos = load(&sandbox, artifacts::CHAOS).await;
    let mut attempts = Vec::new();
    for i in 0..100 {
        let task = if i % 2 == 0 { "spin" } else { "sleep" };
        let (sandbox, chaos) = (sandbox.clone(), chaos.clone());
        attempts.push(tokio::spawn(async move {
            let report = sandbox
                .run(&chaos, &request(task, json!({})), &sandbox.control())
                .await;
            (report.map(|r| r.outcome), Instant::now())
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while sandbox.in_flight() < 100 {
        assert!(
            Instant::now() < deadline,
            "only {} attempts started",
            sandbox.in_flight()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let every guest get going (instantiated, spinning or parked in sleep).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let halted_at = Instant::now();
    sandbox.halt_all();
    for attempt in attempts {
        let (outcome, ended) = attempt.await.unwrap();
        assert_eq!(outcome.unwrap(), Outcome::Halted);
        assert!(
            ended - halted_at < Duration::from_secs(1),
            "ended {:?} after the halt",
            ended - halted_at
        );
    }
    assert_eq!(sandbox.in_flight(), 0);
    assert_cpu_idle(Duration::from_millis(500)).await;
    // Later attempts do not run at all.
    let report = run(&sandbox, &chaos, &request("noop", json!({}))).await;
    assert_eq!(report.outcome, Outcome::Halted);
}
