//! `corral run WORKFLOW`: submit an execution and, unless `--detach`, run
//! it here with a live view of its steps.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use super::Cli;
use super::executions::print_report;
use super::input::read_input;
use crate::ExecutionHandle;
use crate::runtime::progress::ExecutionProgress;
use crate::store::ExecutionStatus;
use crate::workflow::StepState;

/// Arguments of `corral run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The workflow to run (its latest version).
    pub workflow: String,
    /// The execution's input, a JSON object.
    #[arg(long, conflicts_with = "input_file")]
    pub input: Option<String>,
    /// Read the input JSON object from a file (`-` for stdin).
    #[arg(long)]
    pub input_file: Option<PathBuf>,
    /// Only submit the execution and print its id; `corral serve` runs it.
    #[arg(long)]
    pub detach: bool,
    /// Attempts run at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// On Ctrl-C, how long running attempts may take to finish before they
    /// are halted (and left to `corral serve`).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub grace: Duration,
}

pub(super) async fn run(cli: &Cli, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let input = Value::Object(read_input(
        args.input.as_deref(),
        args.input_file.as_deref(),
    )?);
    if args.detach {
        let runner = cli.client().await?;
        let handle = runner.execute(&args.workflow, input).await;
        runner.shutdown(Duration::ZERO).await;
        let handle = handle?;
        if cli.json {
            println!("{}", serde_json::json!({ "id": handle.id() }));
        } else {
            println!("{}", handle.id());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let runner = cli
        .runner_builder()
        // A run fires no schedules: that is what `serve` is for.
        .schedules(false)
        .concurrency(args.concurrency)
        .build()
        .await?;
    let handle = match runner.execute(&args.workflow, input).await {
        Ok(handle) => handle,
        Err(error) => {
            runner.shutdown(Duration::ZERO).await;
            return Err(error.into());
        }
    };
    let mut watch = tokio::spawn(show_progress(handle.clone(), cli.json));
    let outcome = tokio::select! {
        result = handle.wait() => Some(result),
        _ = tokio::signal::ctrl_c() => None,
    };
    if outcome.is_some() {
        // The view ends by itself once it has shown the final states (if
        // another host finished the execution, this runner never saw them).
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut watch).await;
    }
    watch.abort();
    let report = runner.shutdown(args.grace).await;
    let Some(result) = outcome else {
        bail!(
            "interrupted: execution {} keeps its state ({} attempts halted); `corral serve` finishes it",
            handle.id(),
            report.halted
        );
    };
    let report = result?;
    if cli.json {
        print_report(cli, &report)?;
    } else {
        println!("{}", serde_json::to_string_pretty(&report.output)?);
    }
    match report.status {
        ExecutionStatus::Succeeded => Ok(ExitCode::SUCCESS),
        status => bail!(
            "execution {} {status}: {}",
            report.id,
            report.error.unwrap_or_default()
        ),
    }
}

/// A bar on a terminal; one line per step change otherwise (on stderr, so
/// stdout stays the result).
async fn show_progress(handle: ExecutionHandle, quiet: bool) {
    if quiet {
        return;
    }
    let mut progress = handle.progress();
    let tty = std::io::stderr().is_terminal();
    let total = progress.borrow().steps.len() as u64;
    let bar = tty.then(|| {
        let bar = ProgressBar::new(total);
        let style =
            ProgressStyle::with_template("{spinner} [{elapsed}] {bar:30} {pos}/{len} steps  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    });
    let mut last = ExecutionProgress {
        status: ExecutionStatus::Running,
        steps: Default::default(),
    };
    loop {
        let now = progress.borrow_and_update().clone();
        for (step, status) in &now.steps {
            if last.steps.get(step) != Some(status) && bar.is_none() {
                eprintln!("step {step}: {status}");
            }
        }
        if let Some(bar) = &bar {
            bar.set_position(now.steps.values().filter(|s| s.is_final()).count() as u64);
            let running: Vec<&str> = now
                .steps
                .iter()
                .filter(|(_, s)| **s == StepState::Running)
                .map(|(id, _)| id.as_str())
                .collect();
            bar.set_message(running.join(", "));
        }
        last = now;
        if last.status.is_final() || progress.changed().await.is_err() {
            break;
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}
