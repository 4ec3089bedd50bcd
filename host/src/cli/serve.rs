//! `corral serve`: a long-running runner.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::Cli;

/// Arguments of `corral serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Attempts run at once on this host.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// How long a claim holds without renewal; a host that dies loses its
    /// work to others after this long.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub lease: Duration,
    /// On SIGINT/SIGTERM, how long in-flight attempts may take to finish
    /// before they are halted and recorded as interrupted.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub grace: Duration,
}

pub(super) async fn run(cli: &Cli, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let runner = cli
        .runner_builder()
        .concurrency(args.concurrency)
        .lease(args.lease)
        .build()
        .await?;
    tracing::info!(runner = runner.id(), "serving; SIGINT or SIGTERM to stop");
    eprintln!(
        "corral serve: runner {} on {} (Ctrl-C to stop)",
        runner.id(),
        cli.database_url
    );
    wait_for_signal().await?;
    eprintln!(
        "shutting down (grace {})",
        humantime::format_duration(args.grace)
    );
    let report = runner.shutdown(args.grace).await;
    if cli.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    eprintln!(
        "stopped: {} attempts finished, {} halted and left for the next runner",
        report.finished, report.halted
    );
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = term.recv() => {}
    }
    Ok(())
}
