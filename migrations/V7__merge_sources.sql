-- Why: `stats merge` folds other warehouses (one per CI host, say) into this one. A sidecar is
-- stored once however many warehouses held it (deduplicated by content_hash, as ingest does),
-- so where a row came from cannot be a column of ingested_sidecar: these two tables keep it.

-- Every warehouse file ever merged in, by canonical path. last_sidecar_id and
-- last_content_hash are the newest row of that file the last merge saw: sidecars are never
-- deleted and their ids only grow, so the next merge of the same file reads only newer rows
-- (a re-merge of an unchanged file reads none), unless that row's hash no longer matches
-- (a different file now sits at the path), in which case the whole file is read again.
CREATE TABLE merge_source (
    source_id         INTEGER PRIMARY KEY,
    path              TEXT NOT NULL UNIQUE,
    last_sidecar_id   INTEGER NOT NULL DEFAULT 0,
    last_content_hash BLOB,
    merged_at         TEXT NOT NULL
);

-- Which merged warehouses held each sidecar (one row per sidecar and source). A sidecar with
-- no row here was only ever ingested locally; one ingested here and merged from elsewhere has
-- both its runs_root and a row here.
CREATE TABLE sidecar_origin (
    sidecar_id INTEGER NOT NULL REFERENCES ingested_sidecar(sidecar_id),
    source_id  INTEGER NOT NULL REFERENCES merge_source(source_id),
    PRIMARY KEY (sidecar_id, source_id)
) WITHOUT ROWID;
