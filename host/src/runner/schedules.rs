//! Schedules: storing, pausing, removing and firing them.

use super::Runner;
use crate::error::RunnerError;
use crate::schedule::Schedule;
use crate::store::{Applied, ScheduleRecord};

impl Runner {
    /// Stores a schedule (replacing one of the same name, which keeps its
    /// last fire and paused state). Its workflow must exist.
    pub async fn add_schedule(&self, schedule: &Schedule) -> Result<Applied, RunnerError> {
        self.check_running()?;
        if self
            .runtime
            .store()
            .workflow(schedule.workflow(), None)
            .await?
            .is_none()
        {
            return Err(RunnerError::UnknownWorkflow(schedule.workflow().to_owned()));
        }
        let definition = serde_json::to_value(schedule)
            .map_err(|e| RunnerError::InvalidInput(format!("cannot store schedule: {e}")))?;
        let applied = self
            .runtime
            .store()
            .put_schedule(
                schedule.name(),
                schedule.workflow(),
                &definition,
                self.clock_ms(),
            )
            .await?;
        Ok(applied)
    }

    /// Every schedule, by name.
    pub async fn schedules(&self) -> Result<Vec<ScheduleRecord>, RunnerError> {
        Ok(self.runtime.store().list_schedules().await?)
    }

    /// The schedule `name`.
    pub async fn schedule(&self, name: &str) -> Result<ScheduleRecord, RunnerError> {
        self.runtime
            .store()
            .schedule(name)
            .await?
            .ok_or_else(|| RunnerError::UnknownSchedule(name.to_owned()))
    }

    /// Pauses (`true`) or resumes (`false`) a schedule. Fire times that pass
    /// while it is paused are never fired.
    pub async fn pause_schedule(&self, name: &str, paused: bool) -> Result<(), RunnerError> {
        self.check_running()?;
        match self
            .runtime
            .store()
            .set_schedule_paused(name, paused, self.clock_ms())
            .await?
        {
            true => Ok(()),
            false => Err(RunnerError::UnknownSchedule(name.to_owned())),
        }
    }

    /// Removes a schedule; the executions it started stay.
    pub async fn remove_schedule(&self, name: &str) -> Result<(), RunnerError> {
        self.check_running()?;
        match self.runtime.store().remove_schedule(name).await? {
            true => Ok(()),
            false => Err(RunnerError::UnknownSchedule(name.to_owned())),
        }
    }

    /// Fires the schedules that are due now by this runner's clock, as the
    /// background loop does every 250 ms; returns how many executions
    /// started. For tests and for embedders that drive time themselves.
    pub async fn fire_due_schedules(&self) -> Result<usize, RunnerError> {
        self.check_running()?;
        Ok(self.runtime.fire_due(&*self.clock).await?)
    }

    fn clock_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }
}
