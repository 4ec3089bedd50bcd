-- Registered plugins. The component bytes live in the database so that any
-- host sharing it can load them.
--
-- Keys and anything listed in order use the "C" collation: byte order, as on
-- SQLite, whatever the database's locale.
CREATE TABLE plugins (
    name       TEXT COLLATE "C" NOT NULL,
    version    TEXT COLLATE "C" NOT NULL,
    sha256     TEXT    NOT NULL,
    info       TEXT    NOT NULL, -- PluginInfo as JSON
    size       BIGINT  NOT NULL,
    bytes      BYTEA   NOT NULL,
    added_at   TEXT COLLATE "C" NOT NULL, -- RFC 3339, UTC
    PRIMARY KEY (name, version)
);
