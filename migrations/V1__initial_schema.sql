-- Why: ktstr re-reads every sidecar on every query and loses history on re-runs. This schema
-- indexes each sidecar once, keeps it after its file is deleted, and makes list-values a
-- SELECT DISTINCT and compare a self-join on indexed dimension columns.
--
-- Layout (see src/warehouse/mod.rs, "Schema"):
--   runs_root       every runs root ever ingested into this database
--   source_file     every sidecar *path* seen, with size+mtime so an unchanged tree costs a stat walk
--   ingested_sidecar one row per distinct sidecar *content* (blake3), dimensions as typed columns,
--   sidecar_document the original bytes of each ingested_sidecar (lz4), so nothing is lost and rows
--                   can be re-derived
--   dimension_value  distinct values per filterable dimension (list-values)
--   sidecar_flag    one row per (sidecar, active flag): flags filter with AND, list per flag
--   host_context    host snapshots, deduplicated (they repeat across a whole run)
--   registry_metric the 19 metrics compare gates on (name, polarity, default gates, unit)
--   metric          names of metrics the registry does not know (stats ext_metrics, payload metrics)
--   metric_value    one row per sidecar x unregistered metric
-- Registered metrics are typed REAL columns of ingested_sidecar named exactly as the registry
-- (measured: 3.5-6x faster to insert and 5-10x faster to compare than a long table), NULL when
-- the value was non-finite or not measured. Unregistered metrics go to the long table, so any
-- metric a test reports is kept without a migration.
-- Stable views for users: `sidecar` and `sample`. Tables may change between versions; the
-- views keep their columns.

CREATE TABLE runs_root (
    root_id INTEGER PRIMARY KEY,
    path    TEXT NOT NULL UNIQUE
);

CREATE TABLE host_context (
    host_id        INTEGER PRIMARY KEY,
    content_hash   BLOB NOT NULL UNIQUE,
    arch           TEXT,
    kernel_release TEXT,
    cpu_model      TEXT,
    online_cpus    INTEGER,
    json           TEXT NOT NULL
);

CREATE TABLE ingested_sidecar (
    sidecar_id        INTEGER PRIMARY KEY,
    content_hash      BLOB NOT NULL UNIQUE,
    root_id           INTEGER NOT NULL REFERENCES runs_root(root_id),
    run_dir           TEXT NOT NULL,
    job_dir           TEXT,
    path              TEXT NOT NULL,
    test_name         TEXT NOT NULL,
    topology          TEXT NOT NULL,
    scheduler         TEXT NOT NULL,
    work_type         TEXT NOT NULL,
    flags             TEXT NOT NULL,
    payload           TEXT,
    kernel_version    TEXT,
    kernel_commit     TEXT,
    project_commit    TEXT,
    run_source        TEXT,
    scheduler_commit  TEXT,
    project_commit_id TEXT,
    dirty_fingerprint TEXT,
    run_token         TEXT,
    backend           TEXT,
    passed            INTEGER NOT NULL,
    skipped           INTEGER NOT NULL,
    run_id            TEXT NOT NULL,
    timestamp         TEXT NOT NULL,
    host_id           INTEGER REFERENCES host_context(host_id),
    ingested_at       TEXT NOT NULL,
    worst_spread                      REAL,
    worst_gap_ms                      REAL,
    total_migrations                  REAL,
    worst_migration_ratio             REAL,
    max_imbalance_ratio               REAL,
    max_dsq_depth                     REAL,
    stall_count                       REAL,
    total_fallback                    REAL,
    total_keep_last                   REAL,
    worst_p99_wake_latency_us         REAL,
    worst_median_wake_latency_us      REAL,
    worst_wake_latency_cv             REAL,
    total_iterations                  REAL,
    worst_mean_run_delay_us           REAL,
    worst_run_delay_us                REAL,
    worst_wake_latency_tail_ratio     REAL,
    worst_iterations_per_worker       REAL,
    worst_page_locality               REAL,
    worst_cross_node_migration_ratio  REAL
);

-- Only the indexes a query needs: each one costs every ingested row a B-tree insert at a
-- random position. Project commit and kernel version are served by V2's compare indexes
-- (which lead with them); list-values reads dimension_value instead of one index per column.
CREATE INDEX ingested_sidecar_run_dir        ON ingested_sidecar(root_id, run_dir);
CREATE INDEX ingested_sidecar_test_name      ON ingested_sidecar(test_name, topology, scheduler, work_type);

-- The original file bytes, apart from the typed row: an ingested_sidecar row stays a few
-- hundred bytes (no overflow pages), so the scans and lookups of compare and `stats list`
-- read a fraction of the pages they would with the document inline.
CREATE TABLE sidecar_document (
    sidecar_id INTEGER PRIMARY KEY REFERENCES ingested_sidecar(sidecar_id),
    codec      TEXT NOT NULL,
    document   BLOB NOT NULL
);

-- Every distinct value each filterable dimension has taken (`stats list-values`), kept by
-- ingest as rows arrive (sidecars are never deleted, so the set only grows). A NULL value
-- means some sidecar had no value for that dimension; it is stored once per dimension.
-- dim is one of kernel, commit, kernel_commit, source, scheduler, topology, work_type, flags.
CREATE TABLE dimension_value (
    dim   TEXT NOT NULL,
    value TEXT,
    UNIQUE (dim, value)
);

CREATE TABLE sidecar_flag (
    sidecar_id INTEGER NOT NULL REFERENCES ingested_sidecar(sidecar_id),
    flag       TEXT NOT NULL,
    PRIMARY KEY (sidecar_id, flag)
) WITHOUT ROWID;

CREATE TABLE source_file (
    file_id      INTEGER PRIMARY KEY,
    root_id      INTEGER NOT NULL REFERENCES runs_root(root_id),
    rel_path     TEXT NOT NULL,
    size         INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,
    status       TEXT NOT NULL,
    content_hash BLOB,
    sidecar_id   INTEGER REFERENCES ingested_sidecar(sidecar_id),
    error        TEXT,
    present      INTEGER NOT NULL DEFAULT 1,
    last_seen    TEXT NOT NULL,
    UNIQUE (root_id, rel_path)
);
CREATE INDEX source_file_sidecar ON source_file(sidecar_id);

CREATE TABLE registry_metric (
    position    INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    polarity    TEXT NOT NULL,
    default_abs REAL NOT NULL,
    default_rel REAL NOT NULL,
    unit        TEXT NOT NULL
);
INSERT INTO registry_metric (position, name, polarity, default_abs, default_rel, unit) VALUES
    (1, 'worst_spread', 'LowerBetter', 5.0, 0.25, '%'),
    (2, 'worst_gap_ms', 'LowerBetter', 500.0, 0.5, 'ms'),
    (3, 'total_migrations', 'LowerBetter', 10.0, 0.3, ''),
    (4, 'worst_migration_ratio', 'LowerBetter', 0.05, 0.2, ''),
    (5, 'max_imbalance_ratio', 'LowerBetter', 1.0, 0.25, 'x'),
    (6, 'max_dsq_depth', 'LowerBetter', 10.0, 0.5, ''),
    (7, 'stall_count', 'LowerBetter', 1.0, 0.5, ''),
    (8, 'total_fallback', 'LowerBetter', 5.0, 0.3, ''),
    (9, 'total_keep_last', 'LowerBetter', 5.0, 0.3, ''),
    (10, 'worst_p99_wake_latency_us', 'LowerBetter', 50.0, 0.25, 'µs'),
    (11, 'worst_median_wake_latency_us', 'LowerBetter', 20.0, 0.25, 'µs'),
    (12, 'worst_wake_latency_cv', 'LowerBetter', 0.1, 0.25, ''),
    (13, 'total_iterations', 'HigherBetter', 100.0, 0.1, ''),
    (14, 'worst_mean_run_delay_us', 'LowerBetter', 50.0, 0.25, 'µs'),
    (15, 'worst_run_delay_us', 'LowerBetter', 100.0, 0.5, 'µs'),
    (16, 'worst_wake_latency_tail_ratio', 'LowerBetter', 0.5, 0.25, 'x'),
    (17, 'worst_iterations_per_worker', 'HigherBetter', 10.0, 0.1, ''),
    (18, 'worst_page_locality', 'HigherBetter', 0.05, 0.1, ''),
    (19, 'worst_cross_node_migration_ratio', 'LowerBetter', 0.05, 0.2, '');

CREATE TABLE metric (
    metric_id INTEGER PRIMARY KEY,
    origin    TEXT NOT NULL,
    name      TEXT NOT NULL,
    UNIQUE (origin, name)
);

CREATE TABLE metric_value (
    sidecar_id INTEGER NOT NULL REFERENCES ingested_sidecar(sidecar_id),
    metric_id  INTEGER NOT NULL REFERENCES metric(metric_id),
    value      REAL,
    PRIMARY KEY (sidecar_id, metric_id)
) WITHOUT ROWID;

CREATE VIEW sidecar AS
SELECT
    s.sidecar_id,
    s.test_name,
    s.topology,
    s.scheduler,
    s.work_type,
    s.flags,
    s.kernel_version,
    s.kernel_commit,
    s.project_commit,
    s.run_source,
    s.passed,
    s.skipped,
    s.run_id,
    s.timestamp,
    s.path,
    s.run_dir,
    s.payload,
    s.project_commit_id,
    s.dirty_fingerprint,
    s.run_token,
    s.backend,
    h.arch AS host_arch,
    s.ingested_at,
    EXISTS (SELECT 1 FROM source_file f WHERE f.sidecar_id = s.sidecar_id AND f.present = 1) AS present,
    s.worst_spread,
    s.worst_gap_ms,
    s.total_migrations,
    s.worst_migration_ratio,
    s.max_imbalance_ratio,
    s.max_dsq_depth,
    s.stall_count,
    s.total_fallback,
    s.total_keep_last,
    s.worst_p99_wake_latency_us,
    s.worst_median_wake_latency_us,
    s.worst_wake_latency_cv,
    s.total_iterations,
    s.worst_mean_run_delay_us,
    s.worst_run_delay_us,
    s.worst_wake_latency_tail_ratio,
    s.worst_iterations_per_worker,
    s.worst_page_locality,
    s.worst_cross_node_migration_ratio
FROM ingested_sidecar s
LEFT JOIN host_context h ON h.host_id = s.host_id;

CREATE VIEW sample AS
SELECT
    s.sidecar_id,
    s.test_name,
    s.topology,
    s.scheduler,
    s.work_type,
    s.flags,
    s.kernel_version,
    s.kernel_commit,
    s.project_commit,
    s.run_source,
    s.passed,
    s.skipped,
    s.run_id,
    s.timestamp,
    s.path,
    'registry' AS metric_origin,
    r.name AS metric,
    CASE r.name
        WHEN 'worst_spread' THEN s.worst_spread
        WHEN 'worst_gap_ms' THEN s.worst_gap_ms
        WHEN 'total_migrations' THEN s.total_migrations
        WHEN 'worst_migration_ratio' THEN s.worst_migration_ratio
        WHEN 'max_imbalance_ratio' THEN s.max_imbalance_ratio
        WHEN 'max_dsq_depth' THEN s.max_dsq_depth
        WHEN 'stall_count' THEN s.stall_count
        WHEN 'total_fallback' THEN s.total_fallback
        WHEN 'total_keep_last' THEN s.total_keep_last
        WHEN 'worst_p99_wake_latency_us' THEN s.worst_p99_wake_latency_us
        WHEN 'worst_median_wake_latency_us' THEN s.worst_median_wake_latency_us
        WHEN 'worst_wake_latency_cv' THEN s.worst_wake_latency_cv
        WHEN 'total_iterations' THEN s.total_iterations
        WHEN 'worst_mean_run_delay_us' THEN s.worst_mean_run_delay_us
        WHEN 'worst_run_delay_us' THEN s.worst_run_delay_us
        WHEN 'worst_wake_latency_tail_ratio' THEN s.worst_wake_latency_tail_ratio
        WHEN 'worst_iterations_per_worker' THEN s.worst_iterations_per_worker
        WHEN 'worst_page_locality' THEN s.worst_page_locality
        WHEN 'worst_cross_node_migration_ratio' THEN s.worst_cross_node_migration_ratio
    END AS value
FROM ingested_sidecar s
CROSS JOIN registry_metric r
UNION ALL
SELECT
    s.sidecar_id,
    s.test_name,
    s.topology,
    s.scheduler,
    s.work_type,
    s.flags,
    s.kernel_version,
    s.kernel_commit,
    s.project_commit,
    s.run_source,
    s.passed,
    s.skipped,
    s.run_id,
    s.timestamp,
    s.path,
    m.origin AS metric_origin,
    m.name AS metric,
    v.value
FROM metric_value v
JOIN ingested_sidecar s ON s.sidecar_id = v.sidecar_id
JOIN metric m ON m.metric_id = v.metric_id;
