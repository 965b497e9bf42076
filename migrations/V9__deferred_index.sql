-- Why: a cold ingest of a large archive into an empty warehouse spent much of its single
-- writer thread inserting into secondary indexes, one B-tree insert per row and index at a
-- position that jumps around the index. Such a bulk load now drops the non-unique indexes of
-- ingested_sidecar and source_file first and builds each once at the end, which is one sort
-- (src/warehouse/ingest/bulk.rs).

-- The indexes a bulk load dropped and has not rebuilt yet, with the exact text that created
-- them. Empty except while a bulk load runs, or after one was killed: the next ingest that
-- writes rebuilds them from here before anything else.
CREATE TABLE deferred_index (
    name TEXT PRIMARY KEY,
    sql  TEXT NOT NULL
) WITHOUT ROWID;
