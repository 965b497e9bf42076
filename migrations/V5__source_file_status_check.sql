-- Why: source_file.status was free text, so a misspelt status would have been stored without
-- complaint and then read as "neither pending nor corrupt", i.e. settled. A CHECK constraint
-- now admits only the four statuses ingest writes (src/warehouse/file_status.rs, whose test
-- pins the two lists together).
--
-- SQLite cannot add a CHECK constraint to an existing column, so the table is rebuilt the way
-- https://sqlite.org/lang_altertable.html#otheralter describes: create the new table, copy the
-- rows (file_id included, so nothing that refers to a file changes), drop the old table, rename
-- the new one into its place, recreate its index. No table refers to source_file, so its
-- foreign keys (to runs_root and ingested_sidecar) are the only ones involved, and they are
-- declared again below.
--
-- The stable views are dropped first (`sidecar` reads source_file, and a rename re-checks every
-- view). From this version on they are not recreated by a migration: the binary generates them
-- from its metric registry after every migration run (src/warehouse/registry_schema.rs), since
-- their metric columns must follow the registry and a migration's text may never change.

DROP VIEW sidecar;
DROP VIEW sample;

CREATE TABLE source_file_checked (
    file_id      INTEGER PRIMARY KEY,
    root_id      INTEGER NOT NULL REFERENCES runs_root(root_id),
    rel_path     TEXT NOT NULL,
    size         INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('ingested', 'duplicate', 'pending', 'corrupt')),
    content_hash BLOB,
    sidecar_id   INTEGER REFERENCES ingested_sidecar(sidecar_id),
    error        TEXT,
    present      INTEGER NOT NULL DEFAULT 1,
    last_seen    TEXT NOT NULL,
    UNIQUE (root_id, rel_path)
);

INSERT INTO source_file_checked (file_id, root_id, rel_path, size, mtime_ns, status,
    content_hash, sidecar_id, error, present, last_seen)
SELECT file_id, root_id, rel_path, size, mtime_ns, status, content_hash, sidecar_id, error,
    present, last_seen
FROM source_file;

DROP TABLE source_file;
ALTER TABLE source_file_checked RENAME TO source_file;
CREATE INDEX source_file_sidecar ON source_file(sidecar_id);
