//! Scenario 1: attempts/s of a no-op guest through `Sandbox::run`, beside a
//! native Rust function called through the same path (a tokio task per
//! call), sequentially and with N = cores workers; pooling on and off.

use std::sync::Arc;
use std::time::Instant;

use corral::sandbox::{AttemptRequest, Plugin, Sandbox, SandboxConfig};
use serde_json::{Map, Value};

use crate::Settings;
use crate::report::{Row, Target};

const SCENARIO: &str = "sandbox overhead";

/// What one call runs: the guest, or the native stand-in.
#[derive(Clone)]
enum Callee {
    Wasm(Sandbox, Arc<Plugin>),
    Native,
}

pub async fn run(s: &Settings) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for workers in [1, s.cores] {
        let label = if workers == 1 {
            "sequential".to_owned()
        } else {
            format!("{workers} concurrent")
        };
        let native = rates(s, &Callee::Native, workers).await?;
        for pooling in [true, false] {
            let sandbox = Sandbox::new(SandboxConfig {
                pooling,
                ..SandboxConfig::default()
            })?;
            let plugin = Arc::new(
                sandbox
                    .load_plugin_file(corral_test_artifacts::CHAOS)
                    .await?,
            );
            let wasm = rates(s, &Callee::Wasm(sandbox, plugin), workers).await?;
            let alloc = if pooling { "pooling" } else { "on-demand" };
            let mut row = Row::new(
                SCENARIO,
                format!("no-op attempts/s, {label}, {alloc}"),
                "1/s",
            )
            .samples(wasm.clone());
            if pooling && workers == 1 {
                row = row
                    .target(Target::AtLeast(20_000.0))
                    .note("per core = 1 worker");
            }
            rows.push(row);
            if pooling {
                let per_core: Vec<f64> = wasm.iter().map(|r| r / workers as f64).collect();
                if workers > 1 {
                    rows.push(
                        Row::new(
                            SCENARIO,
                            format!("no-op attempts/s per core, {label}, pooling"),
                            "1/s",
                        )
                        .samples(per_core)
                        .target(Target::AtLeast(20_000.0)),
                    );
                }
                // Time per wasm attempt / time per native call, repeat by repeat.
                let ratio = native.iter().zip(&wasm).map(|(n, w)| n / w).collect();
                rows.push(
                    Row::new(
                        SCENARIO,
                        format!("wasm / native time per call, {label}, pooling"),
                        "x",
                    )
                    .samples(ratio)
                    .target(Target::AtMost(5.0)),
                );
            }
        }
        rows.push(Row::new(SCENARIO, format!("native calls/s, {label}"), "1/s").samples(native));
    }
    Ok(rows)
}

/// Calls per second over `s.repeats` repeats of `s.overhead_attempts` calls
/// spread over `workers` tasks (after a warm-up).
async fn rates(s: &Settings, callee: &Callee, workers: usize) -> anyhow::Result<Vec<f64>> {
    let request = Arc::new(AttemptRequest {
        task: "noop".into(),
        ..AttemptRequest::default()
    });
    burst(callee, &request, workers, 200.min(s.overhead_attempts)).await?;
    let mut out = Vec::new();
    for _ in 0..s.repeats.max(2) {
        let started = Instant::now();
        let n = burst(callee, &request, workers, s.overhead_attempts).await?;
        out.push(n as f64 / started.elapsed().as_secs_f64());
    }
    Ok(out)
}

/// Runs `total` calls on `workers` tasks; each call is a tokio task of its own.
async fn burst(
    callee: &Callee,
    request: &Arc<AttemptRequest>,
    workers: usize,
    total: usize,
) -> anyhow::Result<usize> {
    let per_worker = total.div_ceil(workers);
    let mut handles = Vec::new();
    for _ in 0..workers {
        let (callee, request) = (callee.clone(), request.clone());
        handles.push(tokio::spawn(async move {
            for _ in 0..per_worker {
                let (callee, request) = (callee.clone(), request.clone());
                tokio::spawn(async move { call(&callee, &request).await }).await??;
            }
            anyhow::Ok(())
        }));
    }
    for h in handles {
        h.await??;
    }
    Ok(per_worker * workers)
}

async fn call(callee: &Callee, request: &AttemptRequest) -> anyhow::Result<()> {
    match callee {
        Callee::Wasm(sandbox, plugin) => {
            let report = sandbox.run(plugin, request, &sandbox.control()).await?;
            anyhow::ensure!(
                report.outcome.is_success(),
                "noop failed: {}",
                report.outcome
            );
        }
        Callee::Native => {
            std::hint::black_box(native_noop(&request.input)?);
        }
    }
    Ok(())
}

/// The same trivial task in Rust: serialise the input as the host does,
/// parse it back as a guest would, and return an empty output object.
fn native_noop(input: &Map<String, Value>) -> anyhow::Result<Map<String, Value>> {
    let text = Value::Object(input.clone()).to_string();
    let _parsed: Map<String, Value> = serde_json::from_str(&text)?;
    Ok(Map::new())
}
