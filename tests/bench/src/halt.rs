//! Scenario 4: with spinning and sleeping guests in flight, the time from
//! `Sandbox::halt_all` until every attempt has returned.

use std::sync::Arc;
use std::time::{Duration, Instant};

use corral::sandbox::{AttemptRequest, Limits, Outcome, Sandbox, SandboxConfig};
use serde_json::json;

use crate::Settings;
use crate::report::{Row, Target};

const SCENARIO: &str = "halt latency";

pub async fn run(s: &Settings) -> anyhow::Result<Vec<Row>> {
    let cache = tempfile::tempdir()?;
    let config = SandboxConfig {
        cache_dir: Some(cache.path().to_owned()),
        ..SandboxConfig::default()
    };
    let tick_ms = config.epoch_tick.as_secs_f64() * 1e3;
    let mut samples = Vec::new();
    for _ in 0..s.halt_repeats {
        // Halting is irreversible: a new sandbox per repeat.
        samples.push(halt_once(s, config.clone()).await?);
    }
    let p50 = Row::new(
        SCENARIO,
        format!(
            "halt_all -> {}+{} attempts returned, p50 over repeats",
            s.halt_spinning, s.halt_sleeping
        ),
        "ms",
    );
    let spread = p50.clone().samples(samples.clone());
    let max = samples.iter().copied().fold(0.0, f64::max);
    let target = Target::AtMost(2.0 * tick_ms + 5.0);
    Ok(vec![
        spread
            .target(target)
            .note(format!("epoch tick {tick_ms} ms")),
        Row::new(SCENARIO, "halt latency, max over repeats", "ms")
            .samples(vec![max])
            .target(target),
        Row::new(SCENARIO, "epoch tick period (floor)", "ms").samples(vec![tick_ms]),
    ])
}

async fn halt_once(s: &Settings, config: SandboxConfig) -> anyhow::Result<f64> {
    let sandbox = Sandbox::new(config)?;
    let plugin = Arc::new(
        sandbox
            .load_plugin_file(corral_test_artifacts::CHAOS)
            .await?,
    );
    let limits = Limits {
        timeout: Duration::from_secs(120),
        ..Limits::default()
    };
    let spin = AttemptRequest {
        task: "spin".into(),
        limits: limits.clone(),
        ..AttemptRequest::default()
    };
    let sleep = AttemptRequest {
        task: "sleep".into(),
        input: json!({ "seconds": 60 })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        limits,
        ..AttemptRequest::default()
    };
    let requests = std::iter::repeat_n(spin, s.halt_spinning)
        .chain(std::iter::repeat_n(sleep, s.halt_sleeping));
    let mut tasks = Vec::new();
    for request in requests {
        let (sandbox, plugin) = (sandbox.clone(), plugin.clone());
        tasks.push(tokio::spawn(async move {
            sandbox.run(&plugin, &request, &sandbox.control()).await
        }));
    }
    let total = s.halt_spinning + s.halt_sleeping;
    wait_in_flight(&sandbox, total).await?;
    // Let every guest get into its loop or its sleep.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    sandbox.halt_all();
    for task in tasks {
        let report = task.await??;
        anyhow::ensure!(
            matches!(report.outcome, Outcome::Halted),
            "expected halted, got {}",
            report.outcome
        );
    }
    Ok(started.elapsed().as_secs_f64() * 1e3)
}

/// Waits until `n` attempts are in flight (at most 30 s).
pub async fn wait_in_flight(sandbox: &Sandbox, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while sandbox.in_flight() < n {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {n} attempts started",
            sandbox.in_flight()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}
