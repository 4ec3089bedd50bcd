//! Live progress of executions, for handles that watch them.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use dashmap::DashMap;
use serde::Serialize;
use tokio::sync::watch;

use crate::store::{ExecutionId, ExecutionStatus, Snapshot};
use crate::workflow::StepState;

/// A view of an execution: its state and each step's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecutionProgress {
    /// The execution's state.
    pub status: ExecutionStatus,
    /// Each step's state, by step id.
    pub steps: BTreeMap<String, StepState>,
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
    senders: DashMap<ExecutionId, Watched>,
}

/// The channel of one watched execution.
struct Watched {
    sender: watch::Sender<ExecutionProgress>,
    /// The shared snapshot published last: the ends of one batch share
    /// their execution's snapshot, which is published once, not per end.
    last: Weak<Snapshot>,
}

impl Progress {
    pub(crate) fn subscribe(&self, snapshot: &Snapshot) -> watch::Receiver<ExecutionProgress> {
        let id = snapshot.execution.id.clone();
        let entry = self.senders.entry(id).or_insert_with(|| Watched {
            sender: watch::Sender::new(ExecutionProgress::from(snapshot)),
            last: Weak::new(),
        });
        entry.sender.subscribe()
    }

    /// Marks one step as running in the watched view (claims are not
    /// re-read from the store just to show them).
    pub(crate) fn running(&self, execution_id: &str, step_id: &str) {
        if let Some(watched) = self.senders.get(execution_id) {
            watched.sender.send_modify(|p| {
                p.steps.insert(step_id.to_owned(), StepState::Running);
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
        if let Some(watched) = self.senders.get(id) {
            watched
                .sender
                .send_replace(ExecutionProgress::from(snapshot));
        }
        self.forget_if_over(snapshot);
    }

    /// [`publish`](Self::publish) a snapshot several attempt ends share,
    /// once: publishing it again would only repeat it (or undo a step
    /// marked running since).
    pub(crate) fn publish_shared(&self, snapshot: &Arc<Snapshot>) {
        let id = &snapshot.execution.id;
        if let Some(mut watched) = self.senders.get_mut(id) {
            if std::ptr::eq(watched.last.as_ptr(), Arc::as_ptr(snapshot)) {
                return;
            }
            watched.last = Arc::downgrade(snapshot);
            watched
                .sender
                .send_replace(ExecutionProgress::from(&**snapshot));
        }
        self.forget_if_over(snapshot);
    }

    fn forget_if_over(&self, snapshot: &Snapshot) {
        let id = &snapshot.execution.id;
        if snapshot.execution.status.is_final() {
            // Receivers keep the last value; the entry is no longer needed.
            self.senders.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewExecution, StepChange};

    fn snapshot(a: StepState, b: StepState) -> Arc<Snapshot> {
        let pending = |step: &str| StepChange::Pending {
            step_id: step.into(),
        };
        let new = NewExecution {
            id: "e1".into(),
            workflow: "w".into(),
            workflow_version: "1".into(),
            input: Default::default(),
            steps: vec![pending("a"), pending("b")],
            finish: None,
            plugins: Default::default(),
        };
        let mut snapshot = new.snapshot(0);
        snapshot.runs[0].status = a;
        snapshot.runs[1].status = b;
        Arc::new(snapshot)
    }

    fn step(progress: &watch::Receiver<ExecutionProgress>, id: &str) -> StepState {
        progress.borrow().steps[id]
    }

    /// The ends of a batch share one snapshot: publishing it once per end
    /// would undo a step marked running in between.
    #[test]
    fn a_shared_snapshot_is_published_once() {
        let progress = Progress::default();
        let first = snapshot(StepState::Succeeded, StepState::Ready);
        let watch = progress.subscribe(&first);
        progress.publish_shared(&first);
        progress.running("e1", "b");
        progress.publish_shared(&first);
        assert_eq!(step(&watch, "b"), StepState::Running);
        let next = snapshot(StepState::Succeeded, StepState::Succeeded);
        progress.publish_shared(&next);
        assert_eq!(step(&watch, "b"), StepState::Succeeded);
    }
}
