-- Why: sidecar documents were four fifths of a warehouse's bytes. lz4 compressed them only
-- 1.9x, and a cold ingest writes every byte twice (WAL, then checkpoint). zstd with a
-- dictionary trained on the warehouse's own sidecars compresses them about 6x (see
-- src/warehouse/document.rs). Existing lz4 documents stay as they are and still decode.

-- Compression dictionaries, trained by ingest from a sample of the sidecars it reads. Never
-- changed or deleted once a document uses one.
CREATE TABLE document_dictionary (
    dict_id    INTEGER PRIMARY KEY,
    dictionary BLOB NOT NULL,
    samples    INTEGER NOT NULL,
    created_at TEXT NOT NULL
);

-- The dictionary a `zstd` document was compressed with; NULL for none (and for lz4 rows).
ALTER TABLE sidecar_document ADD COLUMN dict_id INTEGER REFERENCES document_dictionary(dict_id);

