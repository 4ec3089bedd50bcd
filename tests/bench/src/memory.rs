//! Scenario 5: process RSS before and with many concurrent sleeping
//! attempts (chaos/sleep), per attempt.

use std::sync::Arc;
use std::time::Duration;

use corral::sandbox::{AttemptRequest, Limits, Sandbox, SandboxConfig};
use serde_json::json;

use crate::Settings;
use crate::halt::wait_in_flight;
use crate::report::{Row, Target, rss_bytes};

const SCENARIO: &str = "memory";

pub async fn run(s: &Settings) -> anyhow::Result<Vec<Row>> {
    let mut per_attempt = Vec::new();
    for _ in 0..s.memory_repeats {
        per_attempt.push(once(s).await? / 1024.0);
    }
    Ok(vec![
        Row::new(
            SCENARIO,
            format!(
                "RSS per concurrent sleeping attempt ({})",
                s.memory_attempts
            ),
            "KiB",
        )
        .samples(per_attempt)
        .target(Target::AtMost(2048.0)),
    ])
}

/// Bytes of RSS added per sleeping attempt.
async fn once(s: &Settings) -> anyhow::Result<f64> {
    let sandbox = Sandbox::new(SandboxConfig::default())?;
    let plugin = Arc::new(
        sandbox
            .load_plugin_file(corral_test_artifacts::CHAOS)
            .await?,
    );
    let request = AttemptRequest {
        task: "sleep".into(),
        input: json!({ "seconds": 60 })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        limits: Limits {
            timeout: Duration::from_secs(120),
            ..Limits::default()
        },
        ..AttemptRequest::default()
    };
    let noop = AttemptRequest {
        task: "noop".into(),
        ..AttemptRequest::default()
    };
    sandbox.run(&plugin, &noop, &sandbox.control()).await?;
    let before = rss_bytes()?;
    let mut tasks = Vec::new();
    for _ in 0..s.memory_attempts {
        let (sandbox, plugin, request) = (sandbox.clone(), plugin.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            sandbox.run(&plugin, &request, &sandbox.control()).await
        }));
    }
    wait_in_flight(&sandbox, s.memory_attempts).await?;
    // In flight counts from the call's start: give every guest time to be
    // instantiated and parked in its sleep.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = rss_bytes()?;
    sandbox.halt_all();
    for task in tasks {
        task.await??;
    }
    Ok(during.saturating_sub(before) as f64 / s.memory_attempts as f64)
}
