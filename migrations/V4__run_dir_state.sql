-- Why: a no-op ingest read every source_file row of the root into memory and compared it with
-- the walk; on 100,000 sidecars that was a third of the time an unchanged tree cost.

-- What each run directory looked like when ingest last settled it (every file ingested, a
-- duplicate or known corrupt; none pending): a blake3 digest over its files' relative paths,
-- sizes and mtimes in walk order, and how many of them were corrupt. An ingest skips a run
-- directory whose walk hashes to its digest without reading its source_file rows, so a no-op
-- ingest of a large root costs its stat walk. digest is NULL while the run directory is being
-- (or has to be) examined file by file. See src/warehouse/incremental.rs.
CREATE TABLE run_dir_state (
    root_id INTEGER NOT NULL REFERENCES runs_root(root_id),
    run_dir TEXT NOT NULL,
    digest  BLOB,
    corrupt INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (root_id, run_dir)
) WITHOUT ROWID;

-- Run directories ingested before this table existed are examined once more, which is also
-- how the next ingest notices those of them that are gone.
INSERT INTO run_dir_state (root_id, run_dir)
SELECT DISTINCT root_id, substr(rel_path, 1, instr(rel_path, '/') - 1)
FROM source_file
WHERE instr(rel_path, '/') > 1;
