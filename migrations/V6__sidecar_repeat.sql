-- Why: a paired A/B test needs to know which runs of A and B ran next to each other.
-- `cargo ktstr test --repeat` and `cargo ktstr ab` record each sidecar's repeat index in
-- `provenance.repeat` (0-based); under `ab` both sides share one run_token, so the rows of A
-- and B with the same (run_token, repeat) are one pair. NULL for a sidecar of an unrepeated
-- run, and for every sidecar ingested before this column existed that had no such field.
ALTER TABLE ingested_sidecar ADD COLUMN repeat INTEGER;
