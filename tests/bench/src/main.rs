//! Corral's benchmark harness: `cargo run --release -p corral-bench -- [--quick] [--json FILE]`.
//! Prints a table and writes every figure, the machine and the settings as
//! JSON. Method and latest figures: BENCHMARKS.md.

mod halt;
mod load;
mod memory;
mod overhead;
mod report;
mod throughput;

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use serde_json::json;

use report::Row;

#[derive(Parser)]
#[command(about = "Benchmarks Corral and prints/writes the figures")]
struct Args {
    /// Tiny sizes and 1-2 repeats: a smoke test of the harness (< 60 s).
    #[arg(long)]
    quick: bool,
    /// Where to write the JSON report.
    #[arg(long, default_value = "target/bench.json")]
    json: PathBuf,
}

/// Sizes and repeats of every scenario.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Settings {
    pub quick: bool,
    pub cores: usize,
    /// Repeats of the throughput-type scenarios.
    pub repeats: usize,
    /// Attempts per overhead measurement.
    pub overhead_attempts: usize,
    /// Repeats of the plugin load (compile vs cache).
    pub load_repeats: usize,
    pub one_step_executions: usize,
    pub fan_executions: usize,
    pub runner_concurrency: usize,
    pub poll_interval_ms: u64,
    pub halt_repeats: usize,
    pub halt_spinning: usize,
    pub halt_sleeping: usize,
    pub memory_attempts: usize,
    pub memory_repeats: usize,
}

impl Settings {
    fn new(quick: bool) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pick = |quick_value: usize, full: usize| if quick { quick_value } else { full };
        Self {
            quick,
            cores,
            repeats: pick(1, 3),
            overhead_attempts: pick(500, 20_000),
            load_repeats: pick(1, 5),
            one_step_executions: pick(200, 10_000),
            fan_executions: pick(3, 100),
            runner_concurrency: 16,
            poll_interval_ms: 10,
            halt_repeats: pick(2, 10),
            halt_spinning: 100,
            halt_sleeping: 100,
            memory_attempts: pick(100, 1_000),
            memory_repeats: pick(1, 3),
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = Settings::new(args.quick);
    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    eprintln!("corral-bench: {settings:?}");
    eprintln!("[1/5] sandbox overhead");
    rows.extend(overhead::run(&settings).await?);
    eprintln!("[2/5] plugin load");
    rows.extend(load::run(&settings).await?);
    eprintln!("[3/5] end-to-end throughput on SQLite");
    rows.extend(throughput::run(&settings).await?);
    rows.push(
        Row::new(
            "scheduling",
            "dependency committed -> dependent attempt started, p50",
            "ms",
        )
        .target(report::Target::AtMost(2.0)),
    );
    rows.push(
        Row::new(
            "scheduling",
            "dependency committed -> dependent attempt started, p99",
            "ms",
        )
        .target(report::Target::AtMost(10.0)),
    );
    eprintln!("[4/5] halt latency");
    rows.extend(halt::run(&settings).await?);
    eprintln!("[5/5] memory");
    rows.extend(memory::run(&settings).await?);
    for hosts in [1, 3] {
        rows.push(Row::new(
            "postgresql",
            format!("throughput and latency, {hosts} host(s)"),
            "-",
        ));
    }
    let elapsed = started.elapsed().as_secs_f64();

    let table = report::table(&rows);
    println!("{table}");
    println!("harness runtime: {elapsed:.1} s");
    let doc = json!({
        "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "commit": report::git_commit(),
        "machine": report::machine(),
        "settings": settings,
        "runtime_s": elapsed,
        "results": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
    });
    if let Some(dir) = args.json.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(&doc)? + "\n")?;
    eprintln!("wrote {}", args.json.display());
    Ok(())
}
