-- Schedules: a workflow fired on a cron expression.
CREATE TABLE schedules (
    name        TEXT COLLATE "C" PRIMARY KEY,
    workflow    TEXT COLLATE "C" NOT NULL,
    definition  TEXT    NOT NULL, -- the validated schedule as JSON
    paused      BOOLEAN NOT NULL DEFAULT FALSE,
    anchor      BIGINT  NOT NULL, -- fire times after this (ms) are due: creation, then the last fire
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

-- One row per fire time of a schedule: the unique key makes a fire time
-- produce one execution, however many hosts (or restarts) try.
CREATE TABLE schedule_fires (
    schedule     TEXT COLLATE "C" NOT NULL,
    fire_time    BIGINT  NOT NULL,
    execution_id TEXT COLLATE "C",   -- NULL when the fire was skipped (overlap = skip)
    fired_at     BIGINT  NOT NULL,
    PRIMARY KEY (schedule, fire_time)
);

ALTER TABLE executions ADD COLUMN schedule TEXT COLLATE "C";
ALTER TABLE executions ADD COLUMN fire_time BIGINT;
CREATE INDEX executions_by_schedule ON executions (schedule, status);
