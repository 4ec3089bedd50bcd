//! The registry ([`Plugins`](super::Plugins), [`Workflows`](super::Workflows)),
//! [`Schedules`](super::Schedules) and the [`Reads`](super::Reads) of
//! executions, written once for both databases.
//!
//! Their statements are the same on SQLite and PostgreSQL but for dialect,
//! so [`registry_sql!`] expands this one implementation for a backend. The
//! statements both dialects read alike are here (`$N` placeholders, which
//! sqlx's SQLite driver takes as `?N`; `CAST($N AS TEXT) IS NULL` where
//! PostgreSQL must be told the type of a parameter that may be NULL); the
//! backend supplies the rest as a `dialect` module of the same constants
//! (see `sqlite/dialect.rs`, `postgres/dialect.rs`), and:
//!
//! - `self.reads()`: the pool reads go to, and `self.writes()` the one
//!   single-statement writes go to (SQLite's one write connection);
//! - `self.read_execution(id)`: an execution with its task runs, read in
//!   one snapshot;
//! - `self.begin_write(doing)`: a write transaction (on SQLite it takes the
//!   write lock at once, so that a transaction that reads first never meets
//!   `SQLITE_BUSY` when it writes);
//! - `create(conn, executions, now_ms)`: inserts new executions in the
//!   transaction and lets the other hosts know of new work (PostgreSQL's
//!   `NOTIFY`).
//!
//! Concurrent writers need no dialect: SQLite has one writer at a time, and
//! on PostgreSQL each read-then-write below either inserts first and looks
//! second (plugins), deletes first so that the row lock orders two
//! removals (plugins), locks the row or the name it reads (`dialect`'s
//! `SCHEDULE_DEFINITION` and `LOCK_WORKFLOW_NAME`), or is one statement.

/// All registered plugins, by name then registration time.
pub(crate) const LIST_PLUGINS: &str = "SELECT name, version, sha256, info, size, added_at \
     FROM plugins ORDER BY name, added_at";

/// The newest registration of `$1`, or exactly `$1@$2`, with its bytes.
pub(crate) const PLUGIN: &str = "SELECT name, version, sha256, info, size, added_at, bytes \
     FROM plugins WHERE name = $1 AND (CAST($2 AS TEXT) IS NULL OR version = $2) \
     ORDER BY added_at DESC LIMIT 1";

/// The registration a new execution of `$1` runs, pinned by `$2` (exactly
/// that version, else the newest that continues it after a `.`).
pub(crate) const RESOLVE_PLUGIN: &str = "SELECT version, sha256 FROM plugins \
     WHERE name = $1 AND (CAST($2 AS TEXT) IS NULL OR version = $2 \
                          OR substr(version, 1, length($2) + 1) = $2 || '.') \
     ORDER BY version = $2 DESC NULLS LAST, added_at DESC LIMIT 1";

pub(crate) const INSERT_PLUGIN: &str = "INSERT INTO plugins (name, version, sha256, info, size, bytes, added_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name, version) DO NOTHING";

pub(crate) const PLUGIN_SHA256: &str =
    "SELECT sha256 FROM plugins WHERE name = $1 AND version = $2";

pub(crate) const DELETE_PLUGIN: &str = "DELETE FROM plugins WHERE name = $1 AND version = $2";

/// Re-applying an older definition makes that version the latest again;
/// the operator applying a plugin's workflow takes the name over.
pub(crate) const UPSERT_WORKFLOW: &str = "INSERT INTO workflows (name, version, definition, applied_at, owner) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name, version) \
     DO UPDATE SET applied_at = excluded.applied_at, owner = excluded.owner";

/// Keeps a schedule's anchor and paused state.
pub(crate) const UPSERT_SCHEDULE: &str = "INSERT INTO schedules (name, workflow, definition, anchor, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $4, $4) ON CONFLICT (name) DO UPDATE SET \
     workflow = excluded.workflow, definition = excluded.definition, updated_at = excluded.updated_at";

pub(crate) const SCHEDULE: &str = "SELECT * FROM schedules WHERE name = $1";

pub(crate) const LIST_SCHEDULES: &str = "SELECT * FROM schedules ORDER BY name";

pub(crate) const DELETE_SCHEDULE: &str = "DELETE FROM schedules WHERE name = $1";

/// A fire time is recorded once, whichever host gets there first.
pub(crate) const INSERT_FIRE: &str = "INSERT INTO schedule_fires (schedule, fire_time, execution_id, fired_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (schedule, fire_time) DO NOTHING";

pub(crate) const MARK_SCHEDULED: &str =
    "UPDATE executions SET schedule = $1, fire_time = $2 WHERE id = $3";

/// The attempts of execution `$1` (of step `$2` if given), in order.
pub(crate) const ATTEMPTS: &str = "SELECT * FROM attempts \
     WHERE execution_id = $1 AND (CAST($2 AS TEXT) IS NULL OR step_id = $2) \
     ORDER BY started_at, step_id, number";

pub(crate) const SCHEDULE_RUNNING: &str = "SELECT EXISTS (SELECT 1 FROM executions \
     WHERE schedule = $1 AND status = 'running')";

/// Expands the registry and schedules for one backend: `store` implements
/// `reads` and `begin_write`, `conn` is its connection type, `dialect` the
/// module of its own statements, `create` its insert of new executions
/// (see the module docs).
macro_rules! registry_sql {
    (store: $store:ty, conn: $conn:ty, dialect: $dialect:path, create: $create:path $(,)?) => {
        use sqlx::Row as _;

        use $crate::sandbox::PluginInfo;
        use $crate::store::pins::refuse_if_in_use;
        use $crate::store::query_err;
        use $crate::store::registry_sql as sql;
        use $crate::store::rows::{
            Columns, attempt_record, execution_record, plugin_record, schedule_record,
            workflow_record,
        };
        use $crate::store::{
            Added, Applied, AttemptRecord, ExecutionFilter, ExecutionRecord, ExecutionStatus,
            NewWorkflow, PluginPin, PluginRecord, Plugins, Reads, ScheduleFire, ScheduleRecord,
            Schedules, Snapshot, StoreError, WorkflowOwner, WorkflowRecord, Workflows,
            now_rfc3339,
        };
        use $dialect as dialect;

        #[async_trait::async_trait]
        impl Plugins for $store {
            async fn register_plugin(
                &self,
                info: &PluginInfo,
                sha256: &str,
                bytes: &[u8],
                workflows: &[NewWorkflow<'_>],
                now_ms: i64,
            ) -> Result<(Added, Vec<Applied>), StoreError> {
                let doing = "registering a plugin";
                let mut tx = self.begin_write(doing).await?;
                let added = add_plugin_in(&mut tx, info, sha256, bytes).await?;
                let owner = WorkflowOwner::Plugin(info.name.clone());
                let mut applied = Vec::with_capacity(workflows.len());
                for workflow in workflows {
                    applied.push(apply_workflow_in(&mut tx, workflow, &owner, now_ms).await?);
                }
                tx.commit().await.map_err(query_err(doing))?;
                Ok((added, applied))
            }

            async fn list_plugins(&self) -> Result<Vec<PluginRecord>, StoreError> {
                let rows = sqlx::query(sql::LIST_PLUGINS)
                    .fetch_all(self.reads())
                    .await
                    .map_err(query_err("listing plugins"))?;
                rows.iter().map(plugin_record).collect()
            }

            async fn plugin(
                &self,
                reference: &str,
            ) -> Result<Option<(PluginRecord, Vec<u8>)>, StoreError> {
                let (name, version) = match reference.split_once('@') {
                    Some((name, version)) => (name, Some(version)),
                    None => (reference, None),
                };
                let row = sqlx::query(sql::PLUGIN)
                    .bind(name)
                    .bind(version)
                    .fetch_optional(self.reads())
                    .await
                    .map_err(query_err("looking up a plugin"))?;
                let Some(row) = row else { return Ok(None) };
                let bytes: Vec<u8> = row
                    .try_get("bytes")
                    .map_err(query_err("reading plugin bytes"))?;
                Ok(Some((plugin_record(&row)?, bytes)))
            }

            async fn resolve_plugin(
                &self,
                name: &str,
                version: Option<&str>,
            ) -> Result<Option<PluginPin>, StoreError> {
                let doing = "resolving a plugin version";
                let row = sqlx::query(sql::RESOLVE_PLUGIN)
                    .bind(name)
                    .bind(version)
                    .fetch_optional(self.reads())
                    .await
                    .map_err(query_err(doing))?;
                row.map(|row| {
                    Ok(PluginPin {
                        version: row.text("version").map_err(query_err(doing))?,
                        sha256: row.text("sha256").map_err(query_err(doing))?,
                    })
                })
                .transpose()
            }

            async fn remove_plugin(&self, name: &str, version: &str) -> Result<bool, StoreError> {
                let doing = "removing a plugin";
                let mut tx = self.begin_write(doing).await?;
                let removed = sqlx::query(sql::DELETE_PLUGIN)
                    .bind(name)
                    .bind(version)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err(doing))?
                    .rows_affected();
                // Checked after the delete, whose row lock keeps a second
                // removal of the same version waiting until this one ends;
                // refusing rolls the delete back.
                let in_use: (i64, Option<String>) = sqlx::query_as(dialect::PLUGIN_IN_USE)
                    .bind(name)
                    .bind(version)
                    .bind(ExecutionStatus::Running.as_str())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(query_err(doing))?;
                refuse_if_in_use(name, version, in_use)?;
                tx.commit().await.map_err(query_err(doing))?;
                Ok(removed > 0)
            }
        }

        /// Stores a plugin's bytes in `conn`'s transaction (see
        /// `Plugins::add_plugin`).
        async fn add_plugin_in(
            conn: &mut $conn,
            info: &PluginInfo,
            sha256: &str,
            bytes: &[u8],
        ) -> Result<Added, StoreError> {
            let doing = "registering a plugin";
            let info_json = serde_json::to_string(info).map_err(|e| StoreError::Corrupt {
                what: "plugin info",
                reason: e.to_string(),
            })?;
            // Insert first, look second: two hosts registering the same
            // plugin at once both end up here without a unique-key error.
            let inserted = sqlx::query(sql::INSERT_PLUGIN)
                .bind(&info.name)
                .bind(&info.version)
                .bind(sha256)
                .bind(info_json)
                .bind(i64::try_from(bytes.len()).unwrap_or(i64::MAX))
                .bind(bytes)
                .bind(now_rfc3339())
                .execute(&mut *conn)
                .await
                .map_err(query_err(doing))?;
            if inserted.rows_affected() == 1 {
                return Ok(Added::New);
            }
            let existing: Option<String> = sqlx::query_scalar(sql::PLUGIN_SHA256)
                .bind(&info.name)
                .bind(&info.version)
                .fetch_optional(&mut *conn)
                .await
                .map_err(query_err(doing))?;
            match existing {
                Some(existing) if existing == sha256 => Ok(Added::Unchanged),
                Some(existing) => Err(StoreError::PluginConflict {
                    name: info.name.clone(),
                    version: info.version.clone(),
                    existing,
                }),
                // A removal in between commits after this insert looked:
                // the version is free again, but this transaction cannot
                // see it. Say so rather than store nothing silently.
                None => Err(StoreError::Corrupt {
                    what: "plugin registry",
                    reason: format!(
                        "{}@{} conflicted on insert but cannot be found (removed meanwhile?); register it again",
                        info.name, info.version
                    ),
                }),
            }
        }

        #[async_trait::async_trait]
        impl Workflows for $store {
            async fn apply_workflow_as(
                &self,
                workflow: &NewWorkflow<'_>,
                owner: &WorkflowOwner,
                now_ms: i64,
            ) -> Result<Applied, StoreError> {
                let doing = "applying a workflow";
                let mut tx = self.begin_write(doing).await?;
                let applied = apply_workflow_in(&mut tx, workflow, owner, now_ms).await?;
                tx.commit().await.map_err(query_err(doing))?;
                Ok(applied)
            }

            async fn workflow(
                &self,
                name: &str,
                version: Option<&str>,
            ) -> Result<Option<WorkflowRecord>, StoreError> {
                let row = sqlx::query(dialect::WORKFLOW)
                    .bind(name)
                    .bind(version)
                    .fetch_optional(self.reads())
                    .await
                    .map_err(query_err("looking up a workflow"))?;
                row.as_ref().map(workflow_record).transpose()
            }

            async fn list_workflows(&self) -> Result<Vec<WorkflowRecord>, StoreError> {
                let rows = sqlx::query(dialect::LATEST_WORKFLOWS)
                    .fetch_all(self.reads())
                    .await
                    .map_err(query_err("listing workflows"))?;
                rows.iter().map(workflow_record).collect()
            }
        }

        /// Stores a workflow version in `conn`'s transaction, if `owner`
        /// may (see `Workflows::apply_workflow_as`).
        async fn apply_workflow_in(
            conn: &mut $conn,
            workflow: &NewWorkflow<'_>,
            owner: &WorkflowOwner,
            now_ms: i64,
        ) -> Result<Applied, StoreError> {
            let doing = "applying a workflow";
            if let Some(lock) = dialect::LOCK_WORKFLOW_NAME {
                sqlx::query(lock)
                    .bind(workflow.name)
                    .execute(&mut *conn)
                    .await
                    .map_err(query_err(doing))?;
            }
            let latest: Option<(String, String)> = sqlx::query_as(dialect::LATEST_WORKFLOW_OWNER)
                .bind(workflow.name)
                .fetch_optional(&mut *conn)
                .await
                .map_err(query_err(doing))?;
            let Some(applied) = owner.applying(workflow, latest)? else {
                return Ok(Applied::Unchanged);
            };
            sqlx::query(sql::UPSERT_WORKFLOW)
                .bind(workflow.name)
                .bind(workflow.version)
                .bind(workflow.definition.to_string())
                .bind(now_ms)
                .bind(owner.as_stored())
                .execute(&mut *conn)
                .await
                .map_err(query_err(doing))?;
            Ok(applied)
        }

        #[async_trait::async_trait]
        impl Schedules for $store {
            async fn put_schedule(
                &self,
                name: &str,
                workflow: &str,
                definition: &serde_json::Value,
                now_ms: i64,
            ) -> Result<Applied, StoreError> {
                let doing = "storing a schedule";
                let mut tx = self.begin_write(doing).await?;
                let existing: Option<String> = sqlx::query_scalar(dialect::SCHEDULE_DEFINITION)
                    .bind(name)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(query_err(doing))?;
                let text = definition.to_string();
                let applied = match existing {
                    Some(old) if old == text => return Ok(Applied::Unchanged),
                    Some(_) => Applied::Updated {
                        previous: name.to_owned(),
                    },
                    None => Applied::Created,
                };
                sqlx::query(sql::UPSERT_SCHEDULE)
                    .bind(name)
                    .bind(workflow)
                    .bind(text)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err(doing))?;
                tx.commit().await.map_err(query_err(doing))?;
                Ok(applied)
            }

            async fn schedule(&self, name: &str) -> Result<Option<ScheduleRecord>, StoreError> {
                let row = sqlx::query(sql::SCHEDULE)
                    .bind(name)
                    .fetch_optional(self.reads())
                    .await
                    .map_err(query_err("reading a schedule"))?;
                row.as_ref().map(schedule_record).transpose()
            }

            async fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
                let rows = sqlx::query(sql::LIST_SCHEDULES)
                    .fetch_all(self.reads())
                    .await
                    .map_err(query_err("listing schedules"))?;
                rows.iter().map(schedule_record).collect()
            }

            async fn set_schedule_paused(
                &self,
                name: &str,
                paused: bool,
                now_ms: i64,
            ) -> Result<bool, StoreError> {
                let updated = sqlx::query(dialect::PAUSE_SCHEDULE)
                    .bind(paused)
                    .bind(now_ms)
                    .bind(name)
                    .execute(self.writes())
                    .await
                    .map_err(query_err("pausing or resuming a schedule"))?;
                Ok(updated.rows_affected() > 0)
            }

            async fn remove_schedule(&self, name: &str) -> Result<bool, StoreError> {
                let removed = sqlx::query(sql::DELETE_SCHEDULE)
                    .bind(name)
                    .execute(self.writes())
                    .await
                    .map_err(query_err("removing a schedule"))?;
                Ok(removed.rows_affected() > 0)
            }

            async fn fire_schedule(
                &self,
                fire: &ScheduleFire,
                now_ms: i64,
            ) -> Result<bool, StoreError> {
                let doing = "firing a schedule";
                let mut tx = self.begin_write(doing).await?;
                let inserted = sqlx::query(sql::INSERT_FIRE)
                    .bind(&fire.schedule)
                    .bind(fire.fire_time_ms)
                    .bind(fire.execution.as_ref().map(|e| e.id.as_str()))
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err(doing))?;
                if inserted.rows_affected() == 0 {
                    return Ok(false);
                }
                if let Some(new) = &fire.execution {
                    $create(&mut tx, std::slice::from_ref(new), now_ms).await?;
                    sqlx::query(sql::MARK_SCHEDULED)
                        .bind(&fire.schedule)
                        .bind(fire.fire_time_ms)
                        .bind(&new.id)
                        .execute(&mut *tx)
                        .await
                        .map_err(query_err(doing))?;
                }
                sqlx::query(dialect::ADVANCE_ANCHOR)
                    .bind(fire.fire_time_ms)
                    .bind(&fire.schedule)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err(doing))?;
                tx.commit().await.map_err(query_err(doing))?;
                Ok(true)
            }

            async fn schedule_running(&self, name: &str) -> Result<bool, StoreError> {
                sqlx::query_scalar(sql::SCHEDULE_RUNNING)
                    .bind(name)
                    .fetch_one(self.reads())
                    .await
                    .map_err(query_err("checking a schedule's executions"))
            }
        }

        #[async_trait::async_trait]
        impl Reads for $store {
            async fn execution(&self, id: &str) -> Result<Option<Snapshot>, StoreError> {
                self.read_execution(id).await
            }

            async fn list_executions(
                &self,
                filter: &ExecutionFilter,
            ) -> Result<Vec<ExecutionRecord>, StoreError> {
                let rows = sqlx::query(dialect::LIST_EXECUTIONS)
                    .bind(filter.workflow.as_deref())
                    .bind(filter.status.map(ExecutionStatus::as_str))
                    .bind(i64::from(filter.limit.unwrap_or(100)))
                    .bind(filter.schedule.as_deref())
                    .bind(filter.before.as_ref().map(|c| c.created_at_ms))
                    .bind(filter.before.as_ref().map(|c| c.id.as_str()))
                    .fetch_all(self.reads())
                    .await
                    .map_err(query_err("listing executions"))?;
                rows.iter().map(execution_record).collect()
            }

            async fn attempts(
                &self,
                execution_id: &str,
                step_id: Option<&str>,
            ) -> Result<Vec<AttemptRecord>, StoreError> {
                let rows = sqlx::query(sql::ATTEMPTS)
                    .bind(execution_id)
                    .bind(step_id)
                    .fetch_all(self.reads())
                    .await
                    .map_err(query_err("listing attempts"))?;
                rows.iter().map(attempt_record).collect()
            }
        }
    };
}

pub(crate) use registry_sql;
