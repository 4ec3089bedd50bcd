//! Scenario 3: end-to-end throughput on SQLite (a temp file): many
//! executions of a 1-step workflow, and of a 100-step fan-out/fan-in one
//! (root, 98 parallel steps, join), from the first submit to all done.

use std::time::{Duration, Instant};

use corral::store::ExecutionStatus;
use corral::workflow::Step;
use corral::{Runner, Workflow};

use crate::Settings;
use crate::report::{Row, Target};

const SCENARIO: &str = "throughput (SQLite)";
const TASK: &str = "chaos/noop";

pub async fn run(s: &Settings) -> anyhow::Result<Vec<Row>> {
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
    let mut rows = Vec::new();
    for (workflow, executions) in [(&one, s.one_step_executions), (&fan, s.fan_executions)] {
        let steps = workflow.steps().len();
        let (mut exec_rate, mut step_rate) = (Vec::new(), Vec::new());
        for _ in 0..s.repeats {
            let secs = run_once(s, workflow, executions).await?;
            exec_rate.push(executions as f64 / secs);
            step_rate.push((executions * steps) as f64 / secs);
        }
        let what = format!("{executions} x {steps}-step");
        rows.push(
            Row::new(SCENARIO, format!("{what}: steps/s"), "1/s")
                .samples(step_rate)
                .target(Target::AtLeast(3_000.0)),
        );
        rows.push(Row::new(SCENARIO, format!("{what}: executions/s"), "1/s").samples(exec_rate));
    }
    Ok(rows)
}

/// Seconds from the first submit until every execution has succeeded, on a
/// fresh database.
async fn run_once(s: &Settings, workflow: &Workflow, executions: usize) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let runner = Runner::builder()
        .database_url(format!(
            "sqlite://{}",
            dir.path().join("corral.db").display()
        ))
        .concurrency(s.runner_concurrency)
        .poll_interval(Duration::from_millis(s.poll_interval_ms))
        .execute(true)
        .schedules(false)
        .build()
        .await?;
    runner
        .register_plugin_file(corral_test_artifacts::CHAOS)
        .await?;
    runner.apply_workflow(workflow).await?;
    let started = Instant::now();
    let mut handles = Vec::with_capacity(executions);
    for _ in 0..executions {
        handles.push(
            runner
                .execute(workflow.name(), serde_json::json!({}))
                .await?,
        );
    }
    for handle in handles {
        let report = handle.wait().await?;
        anyhow::ensure!(
            report.status == ExecutionStatus::Succeeded,
            "execution {} ended {:?}: {:?}",
            report.id,
            report.status,
            report.error
        );
    }
    let secs = started.elapsed().as_secs_f64();
    runner.shutdown(Duration::from_secs(5)).await;
    Ok(secs)
}
