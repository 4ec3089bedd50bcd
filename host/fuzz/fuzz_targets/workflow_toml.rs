//! The workflow TOML parser and validator, and the round trips a valid
//! workflow goes through: TOML text (`to_toml`) and the stored JSON text
//! (`to_stored`, written as text by the store and parsed back before
//! `from_stored`). Also the `[[schedules]]` tables of the same file.
//!
//! Properties: nothing panics (or overflows the stack); a workflow that
//! parses comes back equal, with the same version, from both round trips;
//! `validate_tasks` accepts a catalog of exactly its tasks and rejects one
//! that lacks a task; the plugin form never accepts grants or memory.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use corral::Workflow;
use corral::schedule::{CatchUp, Schedule};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // An absolute base: resolving relative host paths touches no file system.
    let parsed = Workflow::from_toml_with_schedules(text, Some(Path::new("/srv/corral")));
    if let Ok(plugin) = Workflow::from_plugin_toml(text) {
        for step in plugin.steps() {
            assert!(step.grants.dirs.is_empty() && step.grants.env.is_empty());
            assert!(step.memory.is_none());
        }
        assert!(plugin.defaults().memory.is_none());
        assert!(plugin.defaults().grants == Default::default());
    }
    let _ = Workflow::from_toml(text, None);
    // A stored row is trusted no more than a file.
    if let Ok(value) = serde_json::from_str(text) {
        let _ = Workflow::from_stored(value);
    }
    let Ok((workflow, schedules)) = parsed else {
        return;
    };
    round_trips(&workflow);
    tasks(&workflow);
    for table in schedules {
        if let Ok(schedule) = Schedule::from_toml_table(table, workflow.name()) {
            schedule_round_trip(&schedule);
        }
    }
});

fn round_trips(workflow: &Workflow) {
    // TOML cannot express a JSON null: then `to_toml` fails, cleanly.
    if let Ok(toml) = workflow.to_toml() {
        let back = Workflow::from_toml(&toml, None)
            .unwrap_or_else(|e| panic!("to_toml output does not parse: {e}\n{toml}"));
        assert_eq!(&back, workflow, "{toml}");
        assert_eq!(back.version(), workflow.version(), "{toml}");
    }
    // What the store does: JSON text in, JSON text out.
    let stored = serde_json::to_string(&workflow.to_stored()).expect("stored form serializes");
    let value = serde_json::from_str(&stored)
        .unwrap_or_else(|e| panic!("stored text does not parse back: {e}\n{stored}"));
    let back = Workflow::from_stored(value)
        .unwrap_or_else(|e| panic!("stored form does not load: {e}\n{stored}"));
    assert_eq!(&back, workflow);
    assert_eq!(back.version(), workflow.version());
}

fn tasks(workflow: &Workflow) {
    let mut catalog: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for step in workflow.steps() {
        catalog
            .entry(step.task.plugin().to_owned())
            .or_default()
            .push(step.task.task().to_owned());
    }
    workflow
        .validate_tasks(&catalog)
        .expect("a catalog of the workflow's own tasks");
    if let Some(step) = workflow.steps().first() {
        let tasks = catalog.get_mut(step.task.plugin()).expect("listed above");
        tasks.retain(|t| t != step.task.task());
        assert!(workflow.validate_tasks(&catalog).is_err());
    }
}

fn schedule_round_trip(schedule: &Schedule) {
    let value = serde_json::to_value(schedule).expect("a schedule serializes");
    let back: Schedule = serde_json::from_value(value).expect("a stored schedule loads");
    assert_eq!(&back, schedule);
    // A bounded look ahead and back: must terminate and stay in the window.
    let now = schedule
        .start()
        .unwrap_or_else(|| DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap());
    for t in schedule.upcoming(now, 3) {
        assert!(t > now);
        assert!(schedule.end().is_none_or(|end| t <= end));
    }
    let later = now.checked_add_signed(TimeDelta::days(2)).unwrap_or(now);
    let s = schedule
        .clone()
        .with_catch_up(CatchUp::All { max: 5 })
        .unwrap();
    let due = s.due_fires(None, now, later, std::time::Duration::from_secs(5));
    assert!(due.len() <= 5 + corral::schedule::MAX_ON_TIME_FIRES);
}
