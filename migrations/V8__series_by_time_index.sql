-- Why: the noise gate reads the newest runs of one test identity (`WHERE test_name, topology,
-- scheduler, work_type = ... ORDER BY timestamp DESC LIMIT n`). With V1's identity-only index
-- SQLite reads every run of the series and sorts them in a temporary B-tree, so the cost grew
-- with the archive (about 5,000 runs per series in a 1M-sidecar archive); with the write time
-- as the index's last column it reads the newest n entries and stops. The wider index serves
-- every query the old one did (the old columns are its prefix), so it replaces it under the
-- same name: ingest still maintains one B-tree for test identity, not two.

DROP INDEX ingested_sidecar_test_name;
CREATE INDEX ingested_sidecar_test_name
    ON ingested_sidecar(test_name, topology, scheduler, work_type, timestamp);
