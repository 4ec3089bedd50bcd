//! `corral invoke PLUGIN TASK`: one attempt, printed.
//!
//! Exit codes (also in the README):
//! 0 succeeded, 1 usage or host error, 10 failed (permanent), 11 failed
//! (retryable), 12 timed out, 13 cancelled, 14 halted, 15 memory limit
//! exceeded, 16 trapped, 17 invalid output, 18 plugin error, 19 out of fuel.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::Cli;
use super::input::read_input;
use crate::sandbox::{AttemptReport, AttemptRequest, DirGrant, Grants, Limits, Outcome};

/// Arguments of `corral invoke`.
#[derive(Debug, Args)]
pub struct InvokeArgs {
    /// A registered plugin (`name` or `name@version`) or a path to a .wasm file.
    pub plugin: String,
    /// The task to run.
    pub task: String,
    /// The task's input, a JSON object.
    #[arg(long, conflicts_with = "input_file")]
    pub input: Option<String>,
    /// Read the input JSON object from a file (`-` for stdin).
    #[arg(long)]
    pub input_file: Option<PathBuf>,
    /// Grant a directory: HOST:GUEST[:rw], read-only unless `:rw`. A
    /// writable grant may take a disk quota after a comma:
    /// `HOST:GUEST:rw,max_bytes=1GiB,max_files=10000` (these are the
    /// defaults, per attempt); past it the guest's writes fail with
    /// "no space left on device".
    #[arg(
        long = "dir",
        value_name = "HOST:GUEST[:rw][,max_bytes=SIZE][,max_files=N]"
    )]
    pub dirs: Vec<DirGrant>,
    /// Set an environment variable in the guest (nothing is inherited).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Wall-clock timeout, e.g. 500ms, 30s, 2m (more than zero). With a
    /// .wasm file it also bounds loading the plugin (its `describe`).
    #[arg(long, value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
    /// Memory limit, e.g. 64MiB, 1GiB.
    #[arg(long, value_parser = parse_size)]
    pub memory: Option<u64>,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

/// A duration such as `500ms` or `2m`, more than zero.
pub(super) fn parse_timeout(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => Err(format!("`{s}`: a timeout must be more than zero")),
        Ok(d) => Ok(d),
        Err(e) => Err(format!(
            "`{s}` is not a duration like 500ms, 30s or 2m: {e}"
        )),
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    crate::sandbox::parse_size(s).map_err(|e| format!("`{s}`: {e}"))
}

/// The exit code of each outcome kind.
pub fn exit_code(outcome: &Outcome) -> u8 {
    match outcome {
        Outcome::Succeeded { .. } => 0,
        Outcome::Failed {
            retryable: false, ..
        } => 10,
        Outcome::Failed {
            retryable: true, ..
        } => 11,
        Outcome::TimedOut { .. } => 12,
        Outcome::Cancelled => 13,
        Outcome::Halted => 14,
        Outcome::MemoryLimitExceeded { .. } => 15,
        Outcome::Trapped { .. } => 16,
        Outcome::InvalidOutput { .. } => 17,
        Outcome::PluginError { .. } => 18,
        Outcome::OutOfFuel => 19,
    }
}

pub(super) async fn run(cli: &Cli, args: &InvokeArgs) -> anyhow::Result<ExitCode> {
    let input = read_input(args.input.as_deref(), args.input_file.as_deref())?;
    let sandbox = cli.sandbox(args.timeout)?;
    let plugin = if looks_like_file(&args.plugin) {
        sandbox.load_plugin_file(&args.plugin).await?
    } else {
        let (_, bytes) = cli
            .with_reader(async |r| r.plugin_component(&args.plugin).await)
            .await?;
        sandbox.load_plugin(bytes).await?
    };
    let mut limits = Limits::default();
    if let Some(ms) = plugin
        .info()
        .task(&args.task)
        .and_then(|t| t.default_timeout_ms)
    {
        limits.timeout = Duration::from_millis(ms);
    }
    if let Some(timeout) = args.timeout {
        limits.timeout = timeout;
    }
    if let Some(memory) = args.memory {
        limits.memory_bytes = memory;
    }
    let request = AttemptRequest {
        task: args.task.clone(),
        input,
        grants: Grants {
            dirs: args.dirs.clone(),
            env: args.env.iter().cloned().collect(),
        },
        limits,
    };
    let control = sandbox.control();
    // Ctrl-C cancels the attempt instead of killing the process mid-write.
    let ctrl_c = {
        let control = control.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                control.cancel();
            }
        })
    };
    let report = sandbox.run(&plugin, &request, &control).await;
    ctrl_c.abort();
    let report = report?;
    print_report(cli, &report)?;
    Ok(ExitCode::from(exit_code(&report.outcome)))
}

/// Guest output as printed before the host's own lines: with a final
/// newline, so the next line does not run into it.
fn ended_line(text: &str) -> std::borrow::Cow<'_, str> {
    if text.is_empty() || text.ends_with('\n') {
        text.into()
    } else {
        format!("{text}\n").into()
    }
}

fn looks_like_file(reference: &str) -> bool {
    reference.ends_with(".wasm") || reference.contains('/') || Path::new(reference).is_file()
}

fn print_report(cli: &Cli, report: &AttemptReport) -> anyhow::Result<()> {
    if cli.json {
        let value = serde_json::json!({
            "outcome": report.outcome,
            "logs": report.logs,
            "logs_dropped": report.logs_dropped,
            "stdout": report.stdout,
            "stderr": report.stderr,
            "duration_ms": report.duration.as_millis() as u64,
            "fs_usage": report.fs_usage,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        if !report.outcome.is_success() {
            eprintln!("error: {}", report.outcome);
        }
        return Ok(());
    }
    for captured in [&report.stdout, &report.stderr] {
        eprint!("{}", ended_line(&captured.text));
    }
    for line in &report.logs {
        eprintln!("[{}] {}", line.level, line.message);
    }
    if report.logs_dropped > 0 {
        eprintln!(
            "[corral] {} log lines dropped past the cap",
            report.logs_dropped
        );
    }
    for (name, captured) in [("stdout", &report.stdout), ("stderr", &report.stderr)] {
        if captured.dropped_bytes > 0 {
            eprintln!(
                "[corral] {} bytes of {name} dropped past the cap",
                captured.dropped_bytes
            );
        }
    }
    match &report.outcome {
        Outcome::Succeeded { output } => println!("{}", serde_json::to_string_pretty(output)?),
        other => eprintln!("error: {other}"),
    }
    Ok(())
}
