-- The exact plugin registration each execution runs, fixed when it is
-- created: a JSON object by plugin name, `{"etl": {"version": "0.2.1",
-- "sha256": "..."}}`. NULL for executions from before this migration: their
-- steps run the newest registration, as they did.
ALTER TABLE executions ADD COLUMN plugins TEXT;
