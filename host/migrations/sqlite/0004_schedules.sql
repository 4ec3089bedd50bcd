-- Schedules: a workflow fired on a cron expression.
CREATE TABLE schedules (
    name        TEXT    PRIMARY KEY,
    workflow    TEXT    NOT NULL,
    definition  TEXT    NOT NULL, -- the validated schedule as JSON
    paused      INTEGER NOT NULL DEFAULT 0,
    anchor      INTEGER NOT NULL, -- fire times after this (ms) are due: creation, then the last fire
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- One row per fire time of a schedule: the unique key makes a fire time
-- produce one execution, however many hosts (or restarts) try.
CREATE TABLE schedule_fires (
    schedule     TEXT    NOT NULL,
    fire_time    INTEGER NOT NULL,
    execution_id TEXT,   -- NULL when the fire was skipped (overlap = skip)
    fired_at     INTEGER NOT NULL,
    PRIMARY KEY (schedule, fire_time)
);

ALTER TABLE executions ADD COLUMN schedule TEXT;
ALTER TABLE executions ADD COLUMN fire_time INTEGER;
CREATE INDEX executions_by_schedule ON executions (schedule, status);
