-- Who owns a workflow name: `operator` (applied by hand or through the
-- library) or `plugin:NAME` (shipped by that plugin). A plugin may only
-- create or update the workflows it owns. Rows from before this migration
-- were all applied as the operator's, as far as anyone can tell.
ALTER TABLE workflows ADD COLUMN owner TEXT NOT NULL DEFAULT 'operator';

-- Runners that execute work, with the last time each said it is alive: how
-- a host that cannot load a plugin knows whether any other host could.
CREATE TABLE runners (
    id           TEXT    PRIMARY KEY,
    heartbeat_at INTEGER NOT NULL -- ms since the Unix epoch
);
