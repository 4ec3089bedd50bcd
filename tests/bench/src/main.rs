//! Corral's benchmark harness: `cargo run --release -p corral-bench -- [--quick] [--json FILE]`.
//! Prints a table and writes every figure, the machine and the settings as
//! JSON. Method and latest figures: BENCHMARKS.md.

mod db;
mod halt;
mod load;
mod memory;
mod overhead;
mod postgres;
mod report;
mod scheduling;
mod shutdown;
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
    /// Run only these scenarios (repeatable); all of them by default.
    #[arg(long, value_enum)]
    only: Vec<Scenario>,
}

/// The scenarios, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    Overhead,
    Load,
    Throughput,
    Scheduling,
    Halt,
    Shutdown,
    Memory,
    Postgres,
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
    /// Concurrent submitters in the second 1-step throughput run.
    pub submit_clients: usize,
    pub poll_interval_ms: u64,
    /// Steps of the chain workflow of the scheduling-latency scenarios.
    pub scheduling_chain_steps: usize,
    /// Chain executions run one at a time (after one warm-up).
    pub scheduling_light_executions: usize,
    /// Chain executions run under load, `scheduling_load_parallel` at a time.
    pub scheduling_load_executions: usize,
    pub scheduling_load_parallel: usize,
    pub halt_repeats: usize,
    /// Spinning and sleeping guests of the halt and shutdown scenarios.
    pub halt_spinning: usize,
    pub halt_sleeping: usize,
    /// Repeats of each of shutdown(0) and drop in the shutdown scenario.
    pub shutdown_repeats: usize,
    /// Concurrency of the shutdown scenario's runner: every guest plus one
    /// claim batch (see shutdown.rs).
    pub shutdown_concurrency: usize,
    pub memory_attempts: usize,
    pub memory_repeats: usize,
    /// Hosts (runners sharing one tenant) of the PostgreSQL rows.
    pub postgres_hosts: Vec<usize>,
    pub postgres_one_step_executions: usize,
    pub postgres_fan_executions: usize,
    /// Chain executions, one at a time, of the PostgreSQL scheduling latency.
    pub postgres_scheduling_executions: usize,
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
            submit_clients: 16,
            poll_interval_ms: 10,
            scheduling_chain_steps: 10,
            scheduling_light_executions: pick(5, 200),
            scheduling_load_executions: pick(16, 320),
            scheduling_load_parallel: 16,
            halt_repeats: pick(2, 10),
            halt_spinning: 100,
            halt_sleeping: 100,
            shutdown_repeats: pick(1, 10),
            shutdown_concurrency: 100 + 100 + 32,
            memory_attempts: pick(100, 1_000),
            memory_repeats: pick(1, 3),
            postgres_hosts: vec![1, 3],
            postgres_one_step_executions: pick(50, 2_000),
            postgres_fan_executions: pick(2, 30),
            postgres_scheduling_executions: pick(5, 100),
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Off unless asked for: `RUST_LOG=corral=debug` shows, among others,
    // every group-commit batch with its size and duration.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let settings = Settings::new(args.quick);
    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    eprintln!("corral-bench: {settings:?}");
    let wanted = |scenario: Scenario| args.only.is_empty() || args.only.contains(&scenario);
    if wanted(Scenario::Overhead) {
        eprintln!("[1/8] sandbox overhead");
        rows.extend(overhead::run(&settings).await?);
    }
    if wanted(Scenario::Load) {
        eprintln!("[2/8] plugin load");
        rows.extend(load::run(&settings).await?);
    }
    if wanted(Scenario::Throughput) {
        eprintln!("[3/8] end-to-end throughput on SQLite");
        rows.extend(throughput::run(&settings).await?);
    }
    if wanted(Scenario::Scheduling) {
        eprintln!("[4/8] scheduling latency on SQLite");
        rows.extend(scheduling::run(&settings).await?);
    }
    if wanted(Scenario::Halt) {
        eprintln!("[5/8] halt latency");
        rows.extend(halt::run(&settings).await?);
    }
    if wanted(Scenario::Shutdown) {
        eprintln!("[6/8] shutdown and drop of a busy runner");
        rows.extend(shutdown::run(&settings).await?);
    }
    if wanted(Scenario::Memory) {
        eprintln!("[7/8] memory");
        rows.extend(memory::run(&settings).await?);
    }
    if wanted(Scenario::Postgres) {
        eprintln!("[8/8] PostgreSQL, 1 and 3 hosts");
        rows.extend(postgres::run(&settings).await?);
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
