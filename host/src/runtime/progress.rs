//! Live progress of executions, for handles that watch them.

use std::collections::BTreeMap;

use dashmap::DashMap;
use serde::Serialize;
use tokio::sync::watch;

use crate::store::{ExecutionStatus, Snapshot, TaskRunStatus};

/// A view of an execution: its state and each step's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecutionProgress {
    /// The execution's state.
    pub status: ExecutionStatus,
    /// Each step's state, by step id.
    pub steps: BTreeMap<String, TaskRunStatus>,
}

impl From<&Snapshot> for ExecutionProgress {
    fn from(snapshot: &Snapshot) -> Self {
        Self {
            status: snapshot.execution.status,
            steps: snapshot
                .runs
                .iter()
                .map(|r| (r.step_id.clone(), r.status))
                .collect(),
        }
    }
}

/// Watch channels by execution id. Entries exist only while someone may be
/// watching and the execution runs.
#[derive(Default)]
pub(crate) struct Progress {
    senders: DashMap<String, watch::Sender<ExecutionProgress>>,
}

impl Progress {
    pub(crate) fn subscribe(&self, snapshot: &Snapshot) -> watch::Receiver<ExecutionProgress> {
        let id = snapshot.execution.id.clone();
        let entry = self
            .senders
            .entry(id)
            .or_insert_with(|| watch::Sender::new(ExecutionProgress::from(snapshot)));
        entry.subscribe()
    }

    /// Marks one step as running in the watched view (claims are not
    /// re-read from the store just to show them).
    pub(crate) fn running(&self, execution_id: &str, step_id: &str) {
        if let Some(sender) = self.senders.get(execution_id) {
            sender.send_modify(|p| {
                p.steps.insert(step_id.to_owned(), TaskRunStatus::Running);
            });
        }
    }

    /// Drops the channel of an execution that will never be published
    /// (its creation failed).
    pub(crate) fn forget(&self, execution_id: &str) {
        self.senders.remove(execution_id);
    }

    pub(crate) fn publish(&self, snapshot: &Snapshot) {
        let id = &snapshot.execution.id;
        if let Some(sender) = self.senders.get(id) {
            sender.send_replace(ExecutionProgress::from(snapshot));
        }
        if snapshot.execution.status.is_final() {
            // Receivers keep the last value; the entry is no longer needed.
            self.senders.remove(id);
        }
    }
}
