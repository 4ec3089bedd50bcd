//! Scenario 2: loading each example plugin with a fresh compile vs from the
//! compiled-artifact cache. Both include validation, linking and the
//! `describe` call that every load makes.

use std::time::Instant;

use corral::sandbox::{CompileSource, Sandbox, SandboxConfig};

use crate::Settings;
use crate::report::{Row, Target};

const SCENARIO: &str = "plugin load";

pub async fn run(s: &Settings) -> anyhow::Result<Vec<Row>> {
    let plugins = [
        ("hello", corral_test_artifacts::HELLO),
        ("etl", corral_test_artifacts::ETL),
        ("chaos", corral_test_artifacts::CHAOS),
    ];
    let mut rows = Vec::new();
    for (name, path) in plugins {
        let bytes = std::fs::read(path)?;
        let kib = bytes.len() / 1024;
        let (mut compiled, mut cached) = (Vec::new(), Vec::new());
        for _ in 0..s.load_repeats.max(2) {
            let dir = tempfile::tempdir()?;
            let config = SandboxConfig {
                cache_dir: Some(dir.path().to_owned()),
                ..SandboxConfig::default()
            };
            // First load: a miss (compiles and fills the cache).
            let sandbox = Sandbox::new(config.clone())?;
            let (ms, source) = timed_load(&sandbox, &bytes).await?;
            anyhow::ensure!(
                source == CompileSource::Compiled,
                "{name}: expected a compile"
            );
            compiled.push(ms);
            // A new host on the same cache directory: a hit.
            let sandbox = Sandbox::new(config)?;
            let (ms, source) = timed_load(&sandbox, &bytes).await?;
            anyhow::ensure!(
                source == CompileSource::Cache,
                "{name}: expected a cache hit"
            );
            cached.push(ms);
        }
        let speedup = compiled.iter().zip(&cached).map(|(c, h)| c / h).collect();
        rows.push(
            Row::new(SCENARIO, format!("{name} ({kib} KiB): compile"), "ms").samples(compiled),
        );
        rows.push(Row::new(SCENARIO, format!("{name}: from cache"), "ms").samples(cached));
        rows.push(
            Row::new(SCENARIO, format!("{name}: cache speedup"), "x")
                .samples(speedup)
                .target(Target::AtLeast(20.0)),
        );
    }
    Ok(rows)
}

async fn timed_load(sandbox: &Sandbox, bytes: &[u8]) -> anyhow::Result<(f64, CompileSource)> {
    let started = Instant::now();
    let plugin = sandbox.load_plugin(bytes.to_vec()).await?;
    Ok((
        started.elapsed().as_secs_f64() * 1e3,
        plugin.compile_source(),
    ))
}
