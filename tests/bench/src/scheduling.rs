//! Scheduling latency on SQLite: from a step's dependency having ended (its
//! attempt's end recorded) to the dependent step's attempt starting, read
//! back from the attempts of chain workflows (each step depends on the one
//! before). [`latency`] also serves the PostgreSQL scenario.

use std::collections::{BTreeMap, HashMap};

use corral::Workflow;
use corral::workflow::Step;

use crate::Settings;
use crate::db::{self, Backend};
use crate::report::{Row, Target};

const SCENARIO: &str = "scheduling (SQLite)";

pub async fn run(s: &Settings) -> anyhow::Result<Vec<Row>> {
    let light = latency(&Backend::Sqlite, 1, s, s.scheduling_light_executions, 1).await?;
    let loaded = latency(
        &Backend::Sqlite,
        1,
        s,
        s.scheduling_load_executions,
        s.scheduling_load_parallel,
    )
    .await?;
    let mut out = rows(SCENARIO, "1 execution at a time", &light);
    out.extend(rows(
        SCENARIO,
        &format!("{} executions at a time", s.scheduling_load_parallel),
        &loaded,
    ));
    Ok(out)
}

/// Per-repeat p50 and p99 of the gaps, and how many gaps each repeat had.
pub struct Latency {
    pub p50: Vec<f64>,
    pub p99: Vec<f64>,
    pub max: Vec<f64>,
    pub gaps: usize,
    pub steps: usize,
}

/// The gaps of `executions` chain executions run `parallel` at a time with
/// `hosts` runners, on a fresh database per repeat (`s.repeats`).
pub async fn latency(
    backend: &Backend,
    hosts: usize,
    s: &Settings,
    executions: usize,
    parallel: usize,
) -> anyhow::Result<Latency> {
    let mut latency = Latency {
        p50: Vec::new(),
        p99: Vec::new(),
        max: Vec::new(),
        gaps: 0,
        steps: s.scheduling_chain_steps,
    };
    for _ in 0..s.repeats {
        let fresh = backend.fresh()?;
        let mut gaps = gaps(&fresh, hosts, s, executions, parallel).await?;
        fresh.remove().await?;
        gaps.sort_unstable();
        eprintln!(
            "  {hosts} host(s), {parallel} at a time: gaps (ms: count) {}",
            histogram(&gaps)
        );
        latency.p50.push(percentile(&gaps, 50.0));
        latency.p99.push(percentile(&gaps, 99.0));
        latency
            .max
            .push(gaps.last().copied().unwrap_or_default() as f64);
        latency.gaps = gaps.len();
    }
    Ok(latency)
}

/// The p50 and p99 rows of `latency`, for the case `what`.
pub fn rows(scenario: &'static str, what: &str, latency: &Latency) -> Vec<Row> {
    let max = latency.max.iter().copied().fold(0.0, f64::max);
    let note = format!(
        "chain of {} chaos/noop; {} gaps per repeat, largest {max} ms; \
         DB timestamps are whole ms (resolution 1 ms); started_at is stamped as the \
         claim query is issued, finished_at before the recording transaction \
         begins, so the gap includes that transaction and its commit",
        latency.steps, latency.gaps
    );
    vec![
        Row::new(
            scenario,
            format!("{what}: dependency recorded -> dependent attempt started, p50"),
            "ms",
        )
        .samples(latency.p50.clone())
        .target(Target::AtMost(2.0))
        .note(note.clone()),
        Row::new(
            scenario,
            format!("{what}: dependency recorded -> dependent attempt started, p99"),
            "ms",
        )
        .samples(latency.p99.clone())
        .target(Target::AtMost(10.0))
        .note(note),
    ]
}

/// A chain of `steps` `chaos/noop` steps, each depending on the previous.
pub fn chain(steps: usize) -> anyhow::Result<Workflow> {
    let ids: Vec<String> = (0..steps).map(step_id).collect();
    let mut builder = Workflow::builder("chain").step(Step::new(ids[0].as_str(), "chaos/noop"));
    for pair in ids.windows(2) {
        builder =
            builder.step(Step::new(pair[1].as_str(), "chaos/noop").depends_on([pair[0].as_str()]));
    }
    Ok(builder.build()?)
}

fn step_id(k: usize) -> String {
    format!("s{k:02}")
}

/// started_at(step k+1) − finished_at(step k), in ms, over every step of
/// `executions` chain executions submitted `parallel` at a time (each wave
/// waited for before the next) through the first of `hosts` runners, after
/// one warm-up execution that is not counted.
pub async fn gaps(
    fresh: &db::FreshDb,
    hosts: usize,
    s: &Settings,
    executions: usize,
    parallel: usize,
) -> anyhow::Result<Vec<i64>> {
    let workflow = chain(s.scheduling_chain_steps)?;
    let hosts = fresh
        .hosts(hosts, s, s.runner_concurrency, &workflow)
        .await?;
    let client = &hosts[0];
    let mut ids = Vec::with_capacity(executions + 1);
    let mut waves = vec![1];
    let mut left = executions;
    while left > 0 {
        waves.push(left.min(parallel.max(1)));
        left -= waves[waves.len() - 1];
    }
    for wave in waves {
        let mut handles = Vec::with_capacity(wave);
        for _ in 0..wave {
            handles.push(client.execute("chain", serde_json::json!({})).await?);
        }
        ids.extend(crate::db::wait_succeeded(handles).await?);
    }
    let mut gaps = Vec::with_capacity(executions * s.scheduling_chain_steps);
    // The first execution is the warm-up.
    for id in &ids[1..] {
        let attempts = client.attempts(id, None).await?;
        anyhow::ensure!(
            attempts.len() == s.scheduling_chain_steps,
            "execution {id}: {} attempts for {} steps",
            attempts.len(),
            s.scheduling_chain_steps
        );
        let by_step: HashMap<&str, _> = attempts.iter().map(|a| (a.step_id.as_str(), a)).collect();
        for k in 1..s.scheduling_chain_steps {
            let (before, after) = (
                &by_step[step_id(k - 1).as_str()],
                &by_step[step_id(k).as_str()],
            );
            let finished = before
                .finished_at_ms
                .ok_or_else(|| anyhow::anyhow!("execution {id}: an attempt never finished"))?;
            gaps.push(after.started_at_ms - finished);
        }
    }
    db::shutdown(hosts).await;
    Ok(gaps)
}

/// Nearest-rank percentile `p` of the sorted `values`.
pub fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

/// "0: 12, 1: 300, ..." of sorted gaps (for the log, not the report).
fn histogram(sorted: &[i64]) -> String {
    let mut counts = BTreeMap::new();
    for gap in sorted {
        *counts.entry(*gap).or_insert(0usize) += 1;
    }
    counts
        .iter()
        .map(|(ms, n)| format!("{ms}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
