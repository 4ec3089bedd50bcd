//! Scenario 3: end-to-end throughput on SQLite (a temp file): many
//! executions of a 1-step workflow, and of a 100-step fan-out/fan-in one
//! (root, 98 parallel steps, join), from the first submit to all done.
//! The 1-step run is done twice: submitted by one client, one execution
//! after another, and by several clients at once (as a service receiving
//! concurrent requests would).
//! [`run_once`] also serves the PostgreSQL scenario (several hosts).

use std::time::Instant;

use corral::Workflow;
use corral::workflow::Step;

use crate::Settings;
use crate::db::{self, Backend};
use crate::report::{Row, Target};

const SCENARIO: &str = "throughput (SQLite)";
const TASK: &str = "chaos/noop";

pub async fn run(s: &Settings) -> anyhow::Result<Vec<Row>> {
    let [one, fan] = workflows()?;
    let mut rows = Vec::new();
    for (workflow, executions, clients) in [
        (&one, s.one_step_executions, 1),
        (&one, s.one_step_executions, s.submit_clients),
        (&fan, s.fan_executions, 1),
    ] {
        let rates = rates(&Backend::Sqlite, 1, clients, s, workflow, executions).await?;
        let what = format!(
            "{executions} x {}-step, {}",
            workflow.steps().len(),
            clients_text(clients)
        );
        rows.push(
            Row::new(SCENARIO, format!("{what}: steps/s"), "1/s")
                .samples(rates.steps)
                .target(Target::AtLeast(3_000.0)),
        );
        rows.push(
            Row::new(SCENARIO, format!("{what}: executions/s"), "1/s").samples(rates.executions),
        );
        rows.push(cpu_row(SCENARIO, &what, rates.cpu_ms_per_step));
    }
    Ok(rows)
}

/// The row of CPU time per step: what the process (every host in it, the
/// database driver, the submitters) used, over the steps run.
pub fn cpu_row(scenario: &'static str, what: &str, samples: Vec<f64>) -> Row {
    Row::new(scenario, format!("{what}: CPU ms/step"), "ms")
        .samples(samples)
        .note("user + system time of the process / steps")
}

/// CPU time (user + system) this process has used so far, in seconds.
fn process_cpu_secs() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the whole struct it is given a pointer to;
    // on failure (it cannot fail for RUSAGE_SELF) the zeroed value stays.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// The figures of [`rates`]: one sample per run.
pub struct Rates {
    /// Executions per second.
    pub executions: Vec<f64>,
    /// Steps per second.
    pub steps: Vec<f64>,
    /// Milliseconds of process CPU time per step.
    pub cpu_ms_per_step: Vec<f64>,
}

/// The 1-step workflow and the 100-step fan-out/fan-in.
pub fn workflows() -> anyhow::Result<[Workflow; 2]> {
    let one = Workflow::builder("one")
        .step(Step::new("noop", TASK))
        .build()?;
    let middle: Vec<String> = (1..=98).map(|i| format!("s{i:02}")).collect();
    let fan = Workflow::builder("fan")
        .step(Step::new("root", TASK))
        .steps(
            middle
                .iter()
                .map(|id| Step::new(id.as_str(), TASK).depends_on(["root"])),
        )
        .step(Step::new("join", TASK).depends_on(middle.iter().map(String::as_str)))
        .build()?;
    Ok([one, fan])
}

/// How the executions were submitted, for row labels.
pub fn clients_text(clients: usize) -> String {
    match clients {
        1 => "1 client".into(),
        n => format!("{n} concurrent clients"),
    }
}

/// Executions/s, steps/s and CPU ms/step of each of `s.repeats` runs, each
/// on a fresh database.
pub async fn rates(
    backend: &Backend,
    hosts: usize,
    clients: usize,
    s: &Settings,
    workflow: &Workflow,
    executions: usize,
) -> anyhow::Result<Rates> {
    let steps = (executions * workflow.steps().len()) as f64;
    let mut rates = Rates {
        executions: Vec::new(),
        steps: Vec::new(),
        cpu_ms_per_step: Vec::new(),
    };
    for _ in 0..s.repeats {
        let fresh = backend.fresh()?;
        let (secs, cpu_secs) = run_once(&fresh, hosts, clients, s, workflow, executions).await?;
        fresh.remove().await?;
        rates.executions.push(executions as f64 / secs);
        rates.steps.push(steps / secs);
        rates.cpu_ms_per_step.push(cpu_secs * 1e3 / steps);
    }
    Ok(rates)
}

/// Seconds from the first submit until every execution has succeeded, and
/// the process CPU seconds used meanwhile, with
/// `hosts` runners on the fresh database `fresh`; everything is submitted
/// through the first host by `clients` concurrent submitters (each one
/// execution after another), then waited for in order.
pub async fn run_once(
    fresh: &db::FreshDb,
    hosts: usize,
    clients: usize,
    s: &Settings,
    workflow: &Workflow,
    executions: usize,
) -> anyhow::Result<(f64, f64)> {
    let hosts = fresh
        .hosts(hosts, s, s.runner_concurrency, workflow)
        .await?;
    let client = &hosts[0];
    let started = Instant::now();
    let cpu_before = process_cpu_secs();
    let clients = clients.clamp(1, executions.max(1));
    let submitter = |share: usize| async move {
        let mut handles = Vec::with_capacity(share);
        for _ in 0..share {
            handles.push(
                client
                    .execute(workflow.name(), serde_json::json!({}))
                    .await?,
            );
        }
        anyhow::Ok(handles)
    };
    let shares = (0..clients).map(|c| executions / clients + usize::from(c < executions % clients));
    let handles: Vec<_> = futures::future::try_join_all(shares.map(submitter))
        .await?
        .into_iter()
        .flatten()
        .collect();
    let submitted = started.elapsed().as_secs_f64();
    db::wait_succeeded(handles).await?;
    let secs = started.elapsed().as_secs_f64();
    let cpu_secs = process_cpu_secs() - cpu_before;
    eprintln!(
        "  {executions} x {}: all submitted after {submitted:.2} s, all done after {secs:.2} s",
        workflow.name()
    );
    db::shutdown(hosts).await;
    Ok((secs, cpu_secs))
}
