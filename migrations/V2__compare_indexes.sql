-- Why: `stats compare` almost always slices on project commit (the A/B-branch workflow) and
-- reads each side ordered by test identity so groups come out in a stable order. With only
-- the single-column project_commit index SQLite finds the rows but must sort them in a
-- temporary B-tree; this composite index serves the equality lookup and the ORDER BY in one
-- pass. Same for kernel version (the second most common slicing axis, also used for the
-- `M.m` prefix range).
-- (V2 is reserved for the warehouse schema; this file only adds indexes.)

CREATE INDEX ingested_sidecar_compare_by_project_commit
    ON ingested_sidecar(project_commit, test_name, topology, scheduler, work_type, timestamp);
CREATE INDEX ingested_sidecar_compare_by_kernel_version
    ON ingested_sidecar(kernel_version, test_name, topology, scheduler, work_type, timestamp);
