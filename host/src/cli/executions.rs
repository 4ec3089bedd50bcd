//! `corral status | executions | logs | cancel`: inspecting and steering
//! executions without running any.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::Cli;
use crate::store::{ExecutionCursor, ExecutionFilter, ExecutionStatus};
use crate::{ExecutionReport, Runner};

/// Arguments of `corral executions`.
#[derive(Debug, Args)]
pub struct ExecutionsArgs {
    /// Only executions of this workflow.
    #[arg(long)]
    pub workflow: Option<String>,
    /// Only executions in this state (running, succeeded, failed, cancelled).
    #[arg(long, value_parser = parse_status)]
    pub status: Option<ExecutionStatus>,
    /// Only executions started by this schedule.
    #[arg(long)]
    pub schedule: Option<String>,
    /// At most this many, newest first; a page holds 1 to 1000 (a larger
    /// limit is cut to 1000, 0 counts as 1).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Only executions older than this cursor: the one a previous page
    /// printed to continue from.
    #[arg(long, value_parser = parse_cursor)]
    pub before: Option<ExecutionCursor>,
}

fn parse_cursor(s: &str) -> Result<ExecutionCursor, String> {
    s.parse()
        .map_err(|e: crate::store::CursorError| e.to_string())
}

fn parse_status(s: &str) -> Result<ExecutionStatus, String> {
    s.parse()
        .map_err(|_| format!("`{s}` is not one of running, succeeded, failed, cancelled"))
}

/// Every command here needs an execution, so a database that exists.
async fn with_client<T>(
    cli: &Cli,
    f: impl AsyncFnOnce(&Runner) -> Result<T, crate::RunnerError>,
) -> anyhow::Result<T> {
    cli.with_reader(f).await
}

pub(super) fn print_report(cli: &Cli, report: &ExecutionReport) -> anyhow::Result<()> {
    if cli.json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    println!(
        "execution {} ({}@{}): {}",
        report.id, report.workflow, report.workflow_version, report.status
    );
    if let Some(error) = &report.error {
        println!("  error: {error}");
    }
    for step in &report.steps {
        let error = step
            .error
            .as_deref()
            .map(|e| format!("  ({e})"))
            .unwrap_or_default();
        println!(
            "  {:<16} {:<10} attempts: {}{error}",
            step.id,
            step.status.as_str(),
            step.attempts
        );
    }
    Ok(())
}

pub(super) async fn status(cli: &Cli, id: &str) -> anyhow::Result<ExitCode> {
    let report = with_client(cli, async |r| r.status(id).await).await?;
    print_report(cli, &report)?;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn list(cli: &Cli, args: &ExecutionsArgs) -> anyhow::Result<ExitCode> {
    let filter = ExecutionFilter {
        workflow: args.workflow.clone(),
        status: args.status,
        schedule: args.schedule.clone(),
        limit: Some(args.limit),
        before: args.before.clone(),
    };
    let page = with_client(cli, async |r| r.executions(&filter).await).await?;
    let executions = &page.executions;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&executions)?);
    } else if executions.is_empty() {
        println!("no executions");
    } else {
        for e in executions {
            let created = humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH
                    + Duration::from_millis(u64::try_from(e.created_at_ms).unwrap_or_default()),
            );
            println!(
                "{}  {:<10} {:<20} {created}",
                e.id,
                e.status.as_str(),
                e.workflow
            );
        }
    }
    // On stderr, so that stdout stays the list (what `--json` parses).
    if let Some(next) = &page.next {
        eprintln!("more: repeat with --before {next}");
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn logs(cli: &Cli, id: &str, step: Option<&str>) -> anyhow::Result<ExitCode> {
    let attempts = with_client(cli, async |r| r.attempts(id, step).await).await?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&attempts)?);
        return Ok(ExitCode::SUCCESS);
    }
    for a in &attempts {
        let outcome = a.outcome.as_deref().unwrap_or("running");
        println!(
            "== {} attempt {} on {}: {outcome}",
            a.step_id, a.number, a.runner_id
        );
        if let Some(error) = &a.error {
            println!("   error: {error}");
        }
        for line in a
            .logs
            .as_ref()
            .and_then(|l| l.as_array())
            .into_iter()
            .flatten()
        {
            let level = line.get("level").and_then(|v| v.as_str()).unwrap_or("info");
            let message = line
                .get("message")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            println!("   [{level}] {message}");
        }
        for (name, text) in [("stdout", &a.stdout), ("stderr", &a.stderr)] {
            for line in text.as_deref().unwrap_or_default().lines() {
                println!("   {name}: {line}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn cancel(cli: &Cli, id: &str) -> anyhow::Result<ExitCode> {
    let report = with_client(cli, async |r| r.cancel(id).await).await?;
    print_report(cli, &report)?;
    Ok(ExitCode::SUCCESS)
}
