//! `corral workflow apply | list | show`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::Cli;
use crate::Workflow;
use crate::schedule::Schedule;
use crate::store::Applied;

/// Workflow commands.
#[derive(Debug, Subcommand)]
pub enum WorkflowCommand {
    /// Validate a workflow file against the registered plugins and store it.
    Apply {
        /// The workflow definition (TOML).
        file: PathBuf,
    },
    /// List workflows (latest version of each).
    List,
    /// Show a workflow's latest (or given) version.
    Show {
        /// `name` or `name@version`.
        name: String,
    },
}

pub(super) async fn run(cli: &Cli, command: &WorkflowCommand) -> anyhow::Result<ExitCode> {
    match command {
        WorkflowCommand::Apply { file } => {
            let text = std::fs::read_to_string(file).map_err(|e| {
                anyhow::anyhow!("cannot read workflow file {}: {e}", file.display())
            })?;
            let dir = file.parent().filter(|p| !p.as_os_str().is_empty());
            let (workflow, tables) = Workflow::from_toml_with_schedules(
                &text,
                Some(dir.unwrap_or(std::path::Path::new("."))),
            )?;
            // Every schedule is checked before anything is stored.
            let schedules = tables
                .into_iter()
                .map(|table| Schedule::from_toml_table(table, workflow.name()))
                .collect::<Result<Vec<_>, _>>()?;
            let runner = cli.client().await?;
            let applied = apply(&runner, &workflow, &schedules).await;
            runner.shutdown(std::time::Duration::ZERO).await;
            let (applied, scheduled) = applied?;
            if cli.json {
                let value = serde_json::json!({
                    "name": workflow.name(), "version": workflow.version(), "applied": applied,
                    "schedules": scheduled.iter().map(|(name, applied)| serde_json::json!({"name": name, "applied": applied})).collect::<Vec<_>>(),
                });
                println!("{value}");
            } else {
                let (name, version) = (workflow.name(), workflow.version());
                match applied {
                    Applied::Created => println!("created {name}@{version}"),
                    Applied::Updated { previous } => {
                        println!("updated {name}: {previous} -> {version}")
                    }
                    Applied::Unchanged => println!("unchanged {name}@{version}"),
                }
                for (schedule, applied) in &scheduled {
                    let verb = match applied {
                        Applied::Created => "created",
                        Applied::Updated { .. } => "updated",
                        Applied::Unchanged => "unchanged",
                    };
                    println!("{verb} schedule {schedule}");
                }
            }
        }
        WorkflowCommand::List => {
            let workflows = cli.with_reader(async |r| r.workflows().await).await?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&workflows)?);
            } else if workflows.is_empty() {
                println!("no workflows (store one with `corral workflow apply FILE.toml`)");
            } else {
                for w in &workflows {
                    let steps = w
                        .definition
                        .get("steps")
                        .and_then(|s| s.as_array())
                        .map_or(0, Vec::len);
                    println!("{:<24} {}  {steps} steps", w.name, w.version);
                }
            }
        }
        WorkflowCommand::Show { name } => {
            let (name, version) = super::split_reference(name);
            let record = cli
                .with_reader(async |r| r.workflow(name, version).await)
                .await?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&record)?);
            } else {
                let owner = record.owner.to_string();
                let workflow = Workflow::from_stored(record.definition)?;
                println!(
                    "{}@{}  (owned by {owner})",
                    workflow.name(),
                    workflow.version()
                );
                if let Some(description) = workflow.description() {
                    println!("  {description}");
                }
                for step in workflow.topological_order() {
                    let deps = if step.depends_on.is_empty() {
                        String::new()
                    } else {
                        format!("  after {}", step.depends_on.join(", "))
                    };
                    println!("  {:<16} {}{deps}", step.id, step.task.as_str());
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn apply(
    runner: &crate::Runner,
    workflow: &Workflow,
    schedules: &[Schedule],
) -> Result<(Applied, Vec<(String, Applied)>), crate::RunnerError> {
    let applied = runner.apply_workflow(workflow).await?;
    let mut scheduled = Vec::new();
    for schedule in schedules {
        scheduled.push((
            schedule.name().to_owned(),
            runner.add_schedule(schedule).await?,
        ));
    }
    Ok((applied, scheduled))
}
