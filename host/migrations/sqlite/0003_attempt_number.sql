-- The number of the attempt that holds a running task run's claim. Recording
-- an attempt's end is guarded by it: a runner whose claim was reaped and
-- claimed again (even by itself) can never record a stale attempt over the
-- live one.
ALTER TABLE task_runs ADD COLUMN attempt_number INTEGER NOT NULL DEFAULT 0;
