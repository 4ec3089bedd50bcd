//! `corral plugin add | list | show | remove`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::{Cli, split_reference};
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
    /// Show every registered version of a plugin (or one: NAME@VERSION).
    Show {
        /// The plugin's name, or NAME@VERSION.
        plugin: String,
    },
    /// Remove one registered version; refused while an execution that has
    /// not ended runs it.
    Remove {
        /// NAME@VERSION.
        plugin: String,
    },
}

pub(super) async fn run(cli: &Cli, command: &PluginCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginCommand::Add { file } => add(cli, file).await,
        PluginCommand::List => list(cli).await,
        PluginCommand::Show { plugin } => show(cli, plugin).await,
        PluginCommand::Remove { plugin } => remove(cli, plugin).await,
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
    let plugins = cli.with_reader(async |r| r.plugins().await).await?;
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

async fn show(cli: &Cli, reference: &str) -> anyhow::Result<ExitCode> {
    let (name, version) = split_reference(reference);
    let versions = cli
        .with_reader(async |r| r.plugin(name, version).await)
        .await?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&versions)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{name}: {} version(s), oldest first; new executions run the last",
        versions.len()
    );
    for p in &versions {
        println!(
            "  {:<16} sha256:{}  {} bytes  added {}",
            p.info.version, p.sha256, p.size, p.added_at
        );
        for task in &p.info.tasks {
            println!("    {:<20} {}", task.name, task.description);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn remove(cli: &Cli, reference: &str) -> anyhow::Result<ExitCode> {
    let (name, Some(version)) = split_reference(reference) else {
        anyhow::bail!(
            "name the version to remove: `corral plugin remove {reference}@VERSION` (see `corral plugin show {reference}`)"
        );
    };
    cli.with_reader(async |r| r.remove_plugin(name, version).await)
        .await?;
    if cli.json {
        println!("{}", serde_json::json!({ "removed": reference }));
    } else {
        println!("removed {reference}");
    }
    Ok(ExitCode::SUCCESS)
}
