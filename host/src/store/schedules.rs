//! Schedules as stored: definitions, paused state, and the fires that
//! started executions.

use serde_json::Value;

use super::{Applied, ScheduleFire, ScheduleRecord, StoreError};

/// Stored schedules. Every method commits before it returns.
#[async_trait::async_trait]
pub trait Schedules: Send + Sync {
    /// Stores a schedule by name (replacing one of the same name, keeping
    /// its anchor and paused state); `Unchanged` if the definition is the same.
    async fn put_schedule(
        &self,
        name: &str,
        workflow: &str,
        definition: &Value,
        now_ms: i64,
    ) -> Result<Applied, StoreError>;

    /// The schedule `name`.
    async fn schedule(&self, name: &str) -> Result<Option<ScheduleRecord>, StoreError>;

    /// Every schedule, by name.
    async fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError>;

    /// Pauses or resumes a schedule; `false` if there is no such schedule.
    /// Resuming moves its anchor to `now_ms`: fire times that passed while
    /// it was paused are not due (pausing is deliberate, not an outage).
    async fn set_schedule_paused(
        &self,
        name: &str,
        paused: bool,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Removes a schedule (its executions stay); `false` if there was none.
    async fn remove_schedule(&self, name: &str) -> Result<bool, StoreError>;

    /// Records one fire of a schedule and starts its execution, in one
    /// transaction, unless that fire time was recorded already (by another
    /// host, or before a restart): then nothing changes and it returns
    /// `false`. Advances the schedule's anchor to the fire time.
    async fn fire_schedule(&self, fire: &ScheduleFire, now_ms: i64) -> Result<bool, StoreError>;

    /// Whether an execution started by the schedule is still running.
    async fn schedule_running(&self, name: &str) -> Result<bool, StoreError>;
}
