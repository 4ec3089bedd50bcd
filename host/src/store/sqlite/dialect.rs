//! SQLite's own statements for the shared registry and schedules (see
//! `store/registry_sql.rs`, which holds the ones both databases share).

/// Workflow `$1` at version `$2`, or its latest version (ties broken by
/// insertion order).
pub(super) const WORKFLOW: &str = "SELECT name, version, definition, applied_at, owner \
     FROM workflows WHERE name = $1 AND ($2 IS NULL OR version = $2) \
     ORDER BY applied_at DESC, rowid DESC LIMIT 1";

/// The latest version of every workflow, by name.
pub(super) const LATEST_WORKFLOWS: &str = "SELECT name, version, definition, applied_at, owner \
     FROM workflows w WHERE rowid = (SELECT rowid FROM workflows x WHERE x.name = w.name \
                                     ORDER BY applied_at DESC, rowid DESC LIMIT 1) \
     ORDER BY name";

/// The latest version of workflow `$1` and its owner.
pub(super) const LATEST_WORKFLOW_OWNER: &str = "SELECT version, owner FROM workflows \
     WHERE name = $1 ORDER BY applied_at DESC, rowid DESC LIMIT 1";

/// None: SQLite's one writer already serialises two applies of one name.
pub(super) const LOCK_WORKFLOW_NAME: Option<&str> = None;

/// How many executions in state `$3` pin `$1@$2` (through a reference to
/// `$1` or `$1@...`), and one of them.
pub(super) const PLUGIN_IN_USE: &str = "SELECT COUNT(*), MIN(e.id) FROM executions e \
     WHERE e.status = $3 AND EXISTS ( \
         SELECT 1 FROM json_each(e.plugins) j \
         WHERE (j.key = $1 OR substr(j.key, 1, length($1) + 1) = $1 || '@') \
           AND json_extract(j.value, '$.version') = $2)";

/// Executions newest first, filtered by workflow `$1`, status `$2` and
/// schedule `$4`, older than the cursor (`$5`, `$6`) if given, at most `$3`.
pub(super) const LIST_EXECUTIONS: &str = "SELECT * FROM executions \
     WHERE ($1 IS NULL OR workflow = $1) AND ($2 IS NULL OR status = $2) \
       AND ($4 IS NULL OR schedule = $4) \
       AND ($5 IS NULL OR created_at < $5 OR (created_at = $5 AND id < $6)) \
     ORDER BY created_at DESC, id DESC LIMIT $3";

/// The definition of schedule `$1` (the write lock is already held).
pub(super) const SCHEDULE_DEFINITION: &str = "SELECT definition FROM schedules WHERE name = $1";

/// Pauses (`$1`) or resumes schedule `$3` at `$2`; resuming moves the
/// anchor to now.
pub(super) const PAUSE_SCHEDULE: &str = "UPDATE schedules SET paused = $1, updated_at = $2, \
     anchor = CASE WHEN $1 THEN anchor ELSE MAX(anchor, $2) END WHERE name = $3";

/// Moves schedule `$2`'s anchor to fire time `$1` unless it is later.
pub(super) const ADVANCE_ANCHOR: &str =
    "UPDATE schedules SET anchor = MAX(anchor, $1) WHERE name = $2";
