//! `corral plugin add | list`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::Cli;
use crate::store::Added;

/// Plugin commands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Validate a component and register it: prints name@version and sha256.
    Add {
        /// The plugin component (.wasm, built for wasm32-wasip2).
        file: PathBuf,
    },
    /// List registered plugins.
    List,
}

pub(super) async fn run(cli: &Cli, command: &PluginCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginCommand::Add { file } => add(cli, file).await,
        PluginCommand::List => list(cli).await,
    }
}

async fn add(cli: &Cli, file: &PathBuf) -> anyhow::Result<ExitCode> {
    let runner = cli.client().await?;
    let added = runner.register_plugin_file(file).await;
    runner.shutdown(std::time::Duration::ZERO).await;
    let (info, sha256, added) = added?;
    if cli.json {
        let value = serde_json::json!({
            "name": info.name,
            "version": info.version,
            "sha256": sha256,
            "tasks": info.tasks,
            "workflows": info.workflows.iter().map(|w| &w.name).collect::<Vec<_>>(),
            "changed": added == Added::New,
        });
        println!("{value}");
    } else {
        let note = match added {
            Added::New => "",
            Added::Unchanged => " (already registered, unchanged)",
        };
        println!("{} sha256:{sha256}{note}", info.id());
        for workflow in &info.workflows {
            println!("  applied its workflow `{}`", workflow.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(cli: &Cli) -> anyhow::Result<ExitCode> {
    let store = cli.existing_store().await?;
    let plugins = store.list_plugins().await;
    store.close().await;
    let plugins = plugins?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&plugins)?);
    } else if plugins.is_empty() {
        println!("no plugins registered (add one with `corral plugin add FILE.wasm`)");
    } else {
        for p in &plugins {
            let tasks: Vec<&str> = p.info.tasks.iter().map(|t| t.name.as_str()).collect();
            println!(
                "{:<24} sha256:{}  {:>8} bytes  tasks: {}",
                p.info.id(),
                &p.sha256[..16.min(p.sha256.len())],
                p.size,
                tasks.join(", ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
