//! `corral schedule add | list | show | pause | resume | remove`.

use std::process::ExitCode;
use std::time::Duration;

use chrono::Utc;
use clap::{Args, Subcommand};

use super::Cli;
use super::input::read_input;
use crate::schedule::{CatchUp, CatchUpKind, Overlap, Schedule};
use crate::store::{Applied, ScheduleRecord};

/// Schedule commands.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Fire a workflow on a cron expression.
    Add(AddArgs),
    /// List schedules with their next fire time.
    List,
    /// Show one schedule and its next fire times.
    Show {
        /// The schedule's name.
        name: String,
    },
    /// Stop firing a schedule (fires that pass while paused are dropped).
    Pause {
        /// The schedule's name.
        name: String,
    },
    /// Fire a paused schedule again.
    Resume {
        /// The schedule's name.
        name: String,
    },
    /// Delete a schedule; its executions stay.
    Remove {
        /// The schedule's name.
        name: String,
    },
}

/// Arguments of `corral schedule add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The workflow to run.
    pub workflow: String,
    /// Cron expression: 5 fields (minutes) or 6 (seconds first), or @daily etc.
    pub cron: String,
    /// The schedule's name [default: the workflow's name].
    #[arg(long)]
    pub name: Option<String>,
    /// IANA time zone the expression is read in.
    #[arg(long, default_value = "UTC")]
    pub tz: String,
    /// Static input of every execution, a JSON object.
    #[arg(long)]
    pub input: Option<String>,
    /// Fires missed while no host ran: skip, latest or all.
    #[arg(long, default_value = "skip")]
    pub catch_up: CatchUpKind,
    /// With --catch-up all: the most missed fires that run.
    #[arg(long)]
    pub catch_up_max: Option<u32>,
    /// Whether a fire may start while the previous execution still runs: allow or skip.
    #[arg(long, default_value = "allow")]
    pub overlap: Overlap,
}

pub(super) async fn run(cli: &Cli, command: &ScheduleCommand) -> anyhow::Result<ExitCode> {
    // Only `add` may start a new database; the rest need one that exists.
    let runner = match command {
        ScheduleCommand::Add(_) => cli.client().await?,
        _ => cli.reader().await?,
    };
    let result = dispatch(cli, &runner, command).await;
    runner.shutdown(Duration::ZERO).await;
    result
}

async fn dispatch(
    cli: &Cli,
    runner: &crate::Runner,
    command: &ScheduleCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        ScheduleCommand::Add(args) => {
            let name = args.name.clone().unwrap_or_else(|| args.workflow.clone());
            let catch_up = CatchUp::from_parts(&name, args.catch_up, args.catch_up_max)?;
            let schedule = Schedule::new(&name, &args.workflow, &args.cron)?
                .with_timezone(&args.tz)?
                .with_input(serde_json::Value::Object(read_input(
                    args.input.as_deref(),
                    None,
                )?))?
                .with_catch_up(catch_up)?
                .with_overlap(args.overlap);
            let applied = runner.add_schedule(&schedule).await?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({ "name": name, "applied": applied })
                );
            } else {
                let next = schedule
                    .next_fire(Utc::now())
                    .map_or("never".into(), |t| t.to_rfc3339());
                let verb = match applied {
                    Applied::Created => "created",
                    Applied::Updated { .. } => "updated",
                    Applied::Unchanged => "unchanged",
                };
                println!(
                    "{verb} schedule {name}: {} `{}` ({}), next fire {next}",
                    args.workflow, args.cron, args.tz
                );
            }
        }
        ScheduleCommand::List => {
            let schedules = runner.schedules().await?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&schedules)?);
            } else if schedules.is_empty() {
                println!("no schedules (add one with `corral schedule add WORKFLOW CRON`)");
            } else {
                for record in &schedules {
                    println!("{}", summary(record));
                }
            }
        }
        ScheduleCommand::Show { name } => {
            let record = runner.schedule(name).await?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&record)?);
            } else {
                println!("{}", summary(&record));
                if let Ok(schedule) = serde_json::from_value::<Schedule>(record.definition.clone())
                {
                    println!(
                        "  catch-up: {}, overlap: {}",
                        schedule.catch_up(),
                        schedule.overlap()
                    );
                    for t in schedule.upcoming(Utc::now(), 5) {
                        println!("  next: {}", t.to_rfc3339());
                    }
                }
            }
        }
        ScheduleCommand::Pause { name } | ScheduleCommand::Resume { name } => {
            let pause = matches!(command, ScheduleCommand::Pause { .. });
            runner.pause_schedule(name, pause).await?;
            let state = if pause { "paused" } else { "resumed" };
            if cli.json {
                println!("{}", serde_json::json!({ "name": name, "state": state }));
            } else {
                println!("{state} schedule {name}");
            }
        }
        ScheduleCommand::Remove { name } => {
            runner.remove_schedule(name).await?;
            if cli.json {
                println!("{}", serde_json::json!({ "name": name, "removed": true }));
            } else {
                println!("removed schedule {name}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn summary(record: &ScheduleRecord) -> String {
    let Ok(schedule) = serde_json::from_value::<Schedule>(record.definition.clone()) else {
        return format!(
            "{:<20} {} (unreadable definition)",
            record.name, record.workflow
        );
    };
    let state = if record.paused { "paused" } else { "active" };
    let next = if record.paused {
        "-".to_owned()
    } else {
        schedule
            .next_fire(Utc::now())
            .map_or("never".into(), |t| t.to_rfc3339())
    };
    format!(
        "{:<20} {:<16} `{}` {} {state}  next: {next}",
        record.name,
        record.workflow,
        schedule.cron(),
        schedule.timezone()
    )
}
