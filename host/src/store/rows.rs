//! Stored rows decoded into records, once for both databases: a backend's
//! row type says how to read one column ([`Columns`]); what the columns
//! mean, and which of them must hold JSON, is written here.

use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use super::pins::pins;
use super::records::stored_step_state;
use super::{
    AttemptRecord, Claim, ExecutionRecord, PluginRecord, ScheduleRecord, StoreError, TaskRunRecord,
    WorkflowOwner, WorkflowRecord,
};

/// How to read a column of one database's rows. Counts are stored as the
/// database's natural integer (`INTEGER` on SQLite, `INT4` on
/// PostgreSQL); everything else has the same type on both.
pub(crate) trait Columns {
    /// A `TEXT NOT NULL` column.
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    /// A nullable `TEXT` column.
    fn text_opt(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
    /// A 64-bit integer column (times in ms, sizes).
    fn int(&self, column: &str) -> Result<i64, sqlx::Error>;
    /// A nullable 64-bit integer column.
    fn int_opt(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
    /// A count (attempts, attempt numbers); a negative one reads as 0.
    fn count(&self, column: &str) -> Result<u32, sqlx::Error>;
    /// A boolean column.
    fn flag(&self, column: &str) -> Result<bool, sqlx::Error>;
}

macro_rules! columns {
    ($row:ty, $count:ty) => {
        impl Columns for $row {
            fn text(&self, column: &str) -> Result<String, sqlx::Error> {
                self.try_get(column)
            }
            fn text_opt(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
                self.try_get(column)
            }
            fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
                self.try_get(column)
            }
            fn int_opt(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(column)
            }
            fn count(&self, column: &str) -> Result<u32, sqlx::Error> {
                let n: $count = self.try_get(column)?;
                Ok(u32::try_from(n).unwrap_or_default())
            }
            fn flag(&self, column: &str) -> Result<bool, sqlx::Error> {
                self.try_get(column)
            }
        }
    };
}

columns!(SqliteRow, i64);
columns!(PgRow, i32);

/// A row read for one purpose: column errors say what was being read.
struct Reading<'r, R> {
    row: &'r R,
    doing: &'static str,
}

impl<R: Columns> Reading<'_, R> {
    fn err(&self) -> impl FnOnce(sqlx::Error) -> StoreError + use<R> {
        super::query_err(self.doing)
    }
    fn text(&self, column: &str) -> Result<String, StoreError> {
        self.row.text(column).map_err(self.err())
    }
    fn text_opt(&self, column: &str) -> Result<Option<String>, StoreError> {
        self.row.text_opt(column).map_err(self.err())
    }
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.row.int(column).map_err(self.err())
    }
    fn int_opt(&self, column: &str) -> Result<Option<i64>, StoreError> {
        self.row.int_opt(column).map_err(self.err())
    }
    fn count(&self, column: &str) -> Result<u32, StoreError> {
        self.row.count(column).map_err(self.err())
    }
    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        self.row.flag(column).map_err(self.err())
    }
    /// A `TEXT` column that holds JSON of type `T`.
    fn json<T: serde::de::DeserializeOwned>(
        &self,
        column: &str,
        what: &'static str,
    ) -> Result<T, StoreError> {
        json(&self.text(column)?, what)
    }
    /// A nullable `TEXT` column that holds JSON of type `T`.
    fn json_opt<T: serde::de::DeserializeOwned>(
        &self,
        column: &str,
        what: &'static str,
    ) -> Result<Option<T>, StoreError> {
        self.text_opt(column)?
            .map(|text| json(&text, what))
            .transpose()
    }
}

fn json<T: serde::de::DeserializeOwned>(text: &str, what: &'static str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what,
        reason: e.to_string(),
    })
}

/// A row of `plugins` (without its bytes).
pub(crate) fn plugin_record(row: &impl Columns) -> Result<PluginRecord, StoreError> {
    let r = Reading {
        row,
        doing: "reading a plugin",
    };
    Ok(PluginRecord {
        info: r.json("info", "plugin info")?,
        sha256: r.text("sha256")?,
        size: u64::try_from(r.int("size")?).unwrap_or_default(),
        added_at: r.text("added_at")?,
    })
}

/// A row of `workflows`.
pub(crate) fn workflow_record(row: &impl Columns) -> Result<WorkflowRecord, StoreError> {
    let r = Reading {
        row,
        doing: "reading a workflow",
    };
    Ok(WorkflowRecord {
        name: r.text("name")?,
        version: r.text("version")?,
        definition: r.json("definition", "workflow definition")?,
        applied_at_ms: r.int("applied_at")?,
        owner: WorkflowOwner::from_stored(&r.text("owner")?),
    })
}

/// A row of `schedules`.
pub(crate) fn schedule_record(row: &impl Columns) -> Result<ScheduleRecord, StoreError> {
    let r = Reading {
        row,
        doing: "reading a schedule",
    };
    Ok(ScheduleRecord {
        name: r.text("name")?,
        workflow: r.text("workflow")?,
        definition: r.json("definition", "schedule definition")?,
        paused: r.flag("paused")?,
        anchor_ms: r.int("anchor")?,
        created_at_ms: r.int("created_at")?,
    })
}

/// A row of `executions`.
pub(crate) fn execution_record(row: &impl Columns) -> Result<ExecutionRecord, StoreError> {
    let r = Reading {
        row,
        doing: "reading an execution",
    };
    Ok(ExecutionRecord {
        id: r.text("id")?.into(),
        workflow: r.text("workflow")?,
        workflow_version: r.text("workflow_version")?,
        status: r.text("status")?.parse()?,
        input: r.json("input", "execution input")?,
        error: r.text_opt("error")?,
        cancel_requested: r.flag("cancel_requested")?,
        created_at_ms: r.int("created_at")?,
        finished_at_ms: r.int_opt("finished_at")?,
        schedule: r.text_opt("schedule")?,
        fire_time_ms: r.int_opt("fire_time")?,
        plugins: pins(r.text_opt("plugins")?)?,
    })
}

/// A row of `task_runs`.
pub(crate) fn task_run_record(row: &impl Columns) -> Result<TaskRunRecord, StoreError> {
    let r = Reading {
        row,
        doing: "reading a task run",
    };
    Ok(TaskRunRecord {
        step_id: r.text("step_id")?,
        status: stored_step_state(&r.text("status")?)?,
        attempts: r.count("attempts")?,
        not_before_ms: r.int("not_before")?,
        input: r.json_opt("input", "task run input")?,
        output: r.json_opt("output", "task run output")?,
        error: r.text_opt("error")?,
        claimed_by: r.text_opt("claimed_by")?,
        lease_until_ms: r.int_opt("lease_until")?,
    })
}

/// A row of `attempts`.
pub(crate) fn attempt_record(row: &impl Columns) -> Result<AttemptRecord, StoreError> {
    let r = Reading {
        row,
        doing: "reading an attempt",
    };
    Ok(AttemptRecord {
        step_id: r.text("step_id")?,
        number: r.count("number")?,
        runner_id: r.text("runner_id")?,
        started_at_ms: r.int("started_at")?,
        finished_at_ms: r.int_opt("finished_at")?,
        outcome: r.text_opt("outcome")?,
        error: r.text_opt("error")?,
        logs: r.json_opt("logs", "attempt logs")?,
        stdout: r.text_opt("stdout")?,
        stderr: r.text_opt("stderr")?,
    })
}

/// A claimed task run as a claim statement returns it: the run's
/// `execution_id`, `step_id`, `attempts`, `input`, the new attempt's
/// `number`, and the execution's `workflow`, `workflow_version` and
/// `plugins`.
pub(crate) fn claim_record(row: &impl Columns, doing: &'static str) -> Result<Claim, StoreError> {
    let r = Reading { row, doing };
    Ok(Claim {
        execution_id: r.text("execution_id")?.into(),
        workflow: r.text("workflow")?,
        workflow_version: r.text("workflow_version")?,
        step_id: r.text("step_id")?,
        attempts: r.count("attempts")?,
        number: r.count("number")?,
        input: r.json_opt("input", "task run input")?.unwrap_or_default(),
        plugins: pins(r.text_opt("plugins")?)?,
    })
}
