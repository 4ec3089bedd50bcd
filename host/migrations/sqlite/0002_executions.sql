-- Workflows: every applied version is kept, so running executions keep
-- theirs when a changed definition is applied.
CREATE TABLE workflows (
    name        TEXT    NOT NULL,
    version     TEXT    NOT NULL, -- content hash of the definition
    definition  TEXT    NOT NULL, -- the validated workflow as JSON
    applied_at  INTEGER NOT NULL, -- ms since the Unix epoch
    PRIMARY KEY (name, version)
);

-- One run of a workflow version with an input.
CREATE TABLE executions (
    id               TEXT    PRIMARY KEY,
    workflow         TEXT    NOT NULL,
    workflow_version TEXT    NOT NULL,
    input            TEXT    NOT NULL, -- JSON object
    status           TEXT    NOT NULL, -- running | succeeded | failed | cancelled
    error            TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    FOREIGN KEY (workflow, workflow_version) REFERENCES workflows (name, version)
);
CREATE INDEX executions_by_workflow ON executions (workflow, created_at);
CREATE INDEX executions_by_status ON executions (status, created_at);

-- One step of an execution.
--   pending: waiting for its dependencies; ready: claimable once now >= not_before;
--   running: claimed by `claimed_by` until `lease_until`;
--   succeeded | failed | skipped | cancelled: final.
CREATE TABLE task_runs (
    execution_id TEXT    NOT NULL REFERENCES executions (id),
    step_id      TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0, -- attempts that counted (interrupted ones do not)
    not_before   INTEGER NOT NULL DEFAULT 0,
    input        TEXT,   -- merged input, set when it became ready
    output       TEXT,   -- JSON object, once succeeded
    error        TEXT,   -- last error
    claimed_by   TEXT,
    lease_until  INTEGER,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (execution_id, step_id)
);
CREATE INDEX task_runs_claimable ON task_runs (status, not_before);

-- Every attempt of a task run, with what it produced (capped).
CREATE TABLE attempts (
    execution_id TEXT    NOT NULL,
    step_id      TEXT    NOT NULL,
    number       INTEGER NOT NULL, -- 1-based, counts every start, interrupted ones included
    runner_id    TEXT    NOT NULL,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    outcome      TEXT,   -- Outcome kind, or `interrupted`
    error        TEXT,
    logs         TEXT,   -- JSON array of {level, message}
    stdout       TEXT,
    stderr       TEXT,
    PRIMARY KEY (execution_id, step_id, number),
    FOREIGN KEY (execution_id, step_id) REFERENCES task_runs (execution_id, step_id)
);
