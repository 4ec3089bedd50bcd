-- Workflows: every applied version is kept, so running executions keep
-- theirs when a changed definition is applied.
CREATE TABLE workflows (
    name        TEXT COLLATE "C" NOT NULL,
    version     TEXT COLLATE "C" NOT NULL, -- content hash of the definition
    definition  TEXT    NOT NULL, -- the validated workflow as JSON
    applied_at  BIGINT  NOT NULL, -- ms since the Unix epoch
    -- Insertion order, the tie-break between versions applied in the same
    -- millisecond (SQLite's rowid); re-applying a version keeps its seq.
    seq         BIGINT  GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (name, version)
);
CREATE INDEX workflows_latest ON workflows (name, applied_at DESC, seq DESC);

-- One run of a workflow version with an input.
CREATE TABLE executions (
    id               TEXT COLLATE "C" PRIMARY KEY,
    workflow         TEXT COLLATE "C" NOT NULL,
    workflow_version TEXT COLLATE "C" NOT NULL,
    input            TEXT    NOT NULL, -- JSON object
    status           TEXT COLLATE "C" NOT NULL, -- running | succeeded | failed | cancelled
    error            TEXT,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    created_at       BIGINT  NOT NULL,
    finished_at      BIGINT,
    FOREIGN KEY (workflow, workflow_version) REFERENCES workflows (name, version)
);
CREATE INDEX executions_by_created ON executions (created_at DESC, id DESC);
CREATE INDEX executions_by_workflow ON executions (workflow, created_at);
CREATE INDEX executions_by_status ON executions (status, created_at);

-- One step of an execution.
--   pending: waiting for its dependencies; ready: claimable once now >= not_before;
--   running: claimed by `claimed_by` until `lease_until`;
--   succeeded | failed | skipped | cancelled: final.
CREATE TABLE task_runs (
    execution_id TEXT COLLATE "C" NOT NULL REFERENCES executions (id),
    step_id      TEXT COLLATE "C" NOT NULL,
    status       TEXT COLLATE "C" NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0, -- attempts that counted (interrupted ones do not)
    attempt_number INTEGER NOT NULL DEFAULT 0, -- the attempt holding the claim; guards recording its end
    not_before   BIGINT  NOT NULL DEFAULT 0,
    input        TEXT,   -- merged input, set when it became ready
    output       TEXT,   -- JSON object, once succeeded
    error        TEXT,   -- last error
    claimed_by   TEXT COLLATE "C",
    lease_until  BIGINT,
    updated_at   BIGINT  NOT NULL,
    PRIMARY KEY (execution_id, step_id)
);
-- What `claim` scans, in the order it claims.
CREATE INDEX task_runs_claimable ON task_runs (not_before, execution_id, step_id)
    WHERE status = 'ready';
-- What `renew_leases` and `reap_expired` look for.
CREATE INDEX task_runs_claimed ON task_runs (claimed_by) WHERE status = 'running';
CREATE INDEX task_runs_leases ON task_runs (lease_until) WHERE status = 'running';

-- Every attempt of a task run, with what it produced (capped).
CREATE TABLE attempts (
    execution_id TEXT COLLATE "C" NOT NULL,
    step_id      TEXT COLLATE "C" NOT NULL,
    number       INTEGER NOT NULL, -- 1-based, counts every start, interrupted ones included
    runner_id    TEXT    NOT NULL,
    started_at   BIGINT  NOT NULL,
    finished_at  BIGINT,
    outcome      TEXT,   -- Outcome kind, or `interrupted`
    error        TEXT,
    logs         TEXT,   -- JSON array of {level, message}
    stdout       TEXT,
    stderr       TEXT,
    PRIMARY KEY (execution_id, step_id, number),
    FOREIGN KEY (execution_id, step_id) REFERENCES task_runs (execution_id, step_id)
);
