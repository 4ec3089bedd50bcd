//! Micro-benchmark of one sandboxed attempt: [`Sandbox::run`] of the chaos
//! plugin's `noop` task (empty input, default grants and limits), called
//! directly from the benchmark's thread, one attempt at a time, with
//! wasmtime's pooling allocator on (`sandbox/noop_attempt/pooling`) and off
//! (`sandbox/noop_attempt/on_demand`). Each iteration is a whole attempt: a
//! fresh store and instance, the guest call, the report. The plugin is
//! compiled once, before measuring. For throughput with several workers
//! and the native baseline, see the `overhead` scenario of the harness
//! (`cargo run --release -p corral-bench -- --only overhead`).
//!
//! Run: `cargo bench -p corral-bench --bench sandbox` (the plugins are
//! built for wasm32-wasip2 by `corral-test-artifacts`).

use std::time::Duration;

use corral::sandbox::{AttemptRequest, Sandbox, SandboxConfig};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench_noop(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let request = AttemptRequest {
        task: "noop".into(),
        ..AttemptRequest::default()
    };
    let mut group = c.benchmark_group("sandbox/noop_attempt");
    for (name, pooling) in [("pooling", true), ("on_demand", false)] {
        let (sandbox, plugin) = runtime.block_on(async {
            let sandbox = Sandbox::new(SandboxConfig {
                pooling,
                ..SandboxConfig::default()
            })
            .expect("sandbox");
            let plugin = sandbox
                .load_plugin_file(corral_test_artifacts::CHAOS)
                .await
                .expect("chaos plugin");
            let report = sandbox
                .run(&plugin, &request, &sandbox.control())
                .await
                .expect("noop starts");
            assert!(report.outcome.is_success(), "noop: {}", report.outcome);
            (sandbox, plugin)
        });
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                let report = sandbox
                    .run(&plugin, &request, &sandbox.control())
                    .await
                    .expect("noop starts");
                debug_assert!(report.outcome.is_success());
                report
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_noop
}
criterion_main!(benches);
