-- Registered plugins. The component bytes live in the database so that any
-- host sharing it can load them.
CREATE TABLE plugins (
    name       TEXT    NOT NULL,
    version    TEXT    NOT NULL,
    sha256     TEXT    NOT NULL,
    info       TEXT    NOT NULL, -- PluginInfo as JSON
    size       INTEGER NOT NULL,
    bytes      BLOB    NOT NULL,
    added_at   TEXT    NOT NULL, -- RFC 3339, UTC
    PRIMARY KEY (name, version)
);
