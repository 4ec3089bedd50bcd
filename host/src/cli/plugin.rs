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
    // Validate before touching the database, so bad input changes nothing.
    let bytes = std::fs::read(file)
        .map_err(|e| anyhow::anyhow!("cannot read plugin file {}: {e}", file.display()))?;
    let sandbox = cli.sandbox()?;
    let plugin = sandbox.load_plugin(bytes.clone()).await?;
    let store = cli.store().await?;
    let added = store
        .add_plugin(plugin.info(), plugin.sha256(), &bytes)
        .await;
    store.close().await;
    let added = added?;
    if cli.json {
        let value = serde_json::json!({
            "name": plugin.info().name,
            "version": plugin.info().version,
            "sha256": plugin.sha256(),
            "size": plugin.size(),
            "tasks": plugin.info().tasks,
            "changed": added == Added::New,
        });
        println!("{value}");
    } else {
        let note = match added {
            Added::New => "",
            Added::Unchanged => " (already registered, unchanged)",
        };
        println!("{} sha256:{}{note}", plugin.info().id(), plugin.sha256());
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(cli: &Cli) -> anyhow::Result<ExitCode> {
    let store = cli.store().await?;
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
