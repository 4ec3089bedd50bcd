//! The `corral` binary's commands: parse, call the library, print.

mod executions;
mod input;
mod invoke;
mod plugin;
mod run;
mod schedule;
mod serve;
mod workflow;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::sandbox::{Sandbox, SandboxConfig};
use crate::store::DEFAULT_DATABASE_URL;
use crate::{Runner, RunnerBuilder};

/// Corral runs workflow tasks as sandboxed WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "corral", version, about, propagate_version = true)]
pub struct Cli {
    /// Database to use: sqlite://PATH or postgres://USER@HOST/DATABASE.
    #[arg(long, global = true, env = "CORRAL_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,

    /// Directory of compiled plugin artifacts [default: $XDG_CACHE_HOME/corral
    /// or ~/.cache/corral].
    #[arg(long, global = true, env = "CORRAL_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Tenant: on PostgreSQL, the schema that holds everything (created if
    /// missing).
    #[arg(long, global = true, env = "CORRAL_TENANT")]
    pub tenant: Option<String>,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// More log output (repeat for more); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Less log output: errors only.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register and inspect plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Run one task once in the sandbox and print its output.
    Invoke(invoke::InvokeArgs),
    /// Store and inspect workflows.
    #[command(subcommand)]
    Workflow(workflow::WorkflowCommand),
    /// Run a workflow: prints its result, exit 0 only if it succeeded.
    Run(run::RunArgs),
    /// Show an execution and its steps.
    Status {
        /// The execution id.
        id: String,
    },
    /// List executions, newest first.
    Executions(executions::ExecutionsArgs),
    /// Show the attempts of an execution with their captured output.
    Logs {
        /// The execution id.
        id: String,
        /// Only this step.
        step: Option<String>,
    },
    /// Cancel an execution.
    Cancel {
        /// The execution id.
        id: String,
    },
    /// Fire workflows on cron expressions.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCommand),
    /// Run executions (started with `run --detach`, or interrupted) until
    /// SIGINT/SIGTERM.
    Serve(serve::ServeArgs),
}

impl Cli {
    /// The default `tracing` filter for the chosen verbosity.
    pub fn log_filter(&self) -> &'static str {
        match (self.quiet, self.verbose) {
            (true, _) => "error",
            (false, 0) => "warn",
            (false, 1) => "info,corral=info",
            (false, 2) => "info,corral=debug",
            _ => "debug,corral=trace",
        }
    }

    fn cache_dir(&self) -> Option<PathBuf> {
        self.cache_dir.clone().or_else(|| {
            let base = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache"))
                })?;
            Some(base.join("corral"))
        })
    }

    /// A sandbox for one attempt; `describe_timeout` bounds loading a
    /// plugin (default [`SandboxConfig::default`]'s).
    fn sandbox(&self, describe_timeout: Option<std::time::Duration>) -> anyhow::Result<Sandbox> {
        let defaults = SandboxConfig::default();
        // The CLI runs one attempt at a time: a small pool starts faster.
        let config = SandboxConfig {
            cache_dir: self.cache_dir(),
            max_concurrent_attempts: 16,
            describe_timeout: describe_timeout.unwrap_or(defaults.describe_timeout),
            ..defaults
        };
        Ok(Sandbox::new(config)?)
    }

    fn runner_builder(&self) -> RunnerBuilder {
        let mut builder = Runner::builder().database_url(&self.database_url);
        if let Some(tenant) = &self.tenant {
            builder = builder.tenant(tenant);
        }
        if let Some(dir) = self.cache_dir() {
            builder = builder.cache_dir(dir);
        }
        builder
    }

    /// A runner that executes nothing: for commands that only submit or
    /// change what is stored (creating the database if needed).
    async fn client(&self) -> anyhow::Result<Runner> {
        self.client_with(true).await
    }

    /// A runner that executes nothing, on a database that must exist
    /// already: for commands that only read (`status`, `executions`, ...).
    async fn reader(&self) -> anyhow::Result<Runner> {
        self.client_with(false).await
    }

    /// Runs `f` with a [`reader`](Self::reader), then shuts it down.
    async fn with_reader<T>(
        &self,
        f: impl AsyncFnOnce(&Runner) -> Result<T, crate::RunnerError>,
    ) -> anyhow::Result<T> {
        let runner = self.reader().await?;
        let result = f(&runner).await;
        runner.shutdown(std::time::Duration::ZERO).await;
        Ok(result?)
    }

    async fn client_with(&self, create: bool) -> anyhow::Result<Runner> {
        let config = SandboxConfig {
            cache_dir: self.cache_dir(),
            max_concurrent_attempts: 8,
            ..SandboxConfig::default()
        };
        Ok(self
            .runner_builder()
            .create_database(create)
            .sandbox_config(config)
            .concurrency(1)
            .execute(false)
            .build()
            .await?)
    }
}

/// Runs the parsed command. Errors are for the caller to print on one line;
/// the exit code of a finished command is returned.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Plugin(command) => plugin::run(&cli, command).await,
        Command::Invoke(args) => invoke::run(&cli, args).await,
        Command::Workflow(command) => workflow::run(&cli, command).await,
        Command::Run(args) => run::run(&cli, args).await,
        Command::Status { id } => executions::status(&cli, id).await,
        Command::Executions(args) => executions::list(&cli, args).await,
        Command::Logs { id, step } => executions::logs(&cli, id, step.as_deref()).await,
        Command::Cancel { id } => executions::cancel(&cli, id).await,
        Command::Schedule(command) => schedule::run(&cli, command).await,
        Command::Serve(args) => serve::run(&cli, args).await,
    }
}

/// `NAME` or `NAME@VERSION`, as plugin and workflow commands take them.
fn split_reference(reference: &str) -> (&str, Option<&str>) {
    match reference.split_once('@') {
        Some((name, version)) => (name, Some(version)),
        None => (reference, None),
    }
}
