//! The SQLite warehouse: an index of every sidecar ever ingested, and the only module that
//! writes SQL.
//!
//! - [`open`]: pragmas, migrations, version check ([`Warehouse`], [`OpenError`]).
//! - [`ingest`]: runs root → parsed sidecars → rows, idempotent and incremental.
//! - [`incremental`]: which files changed since the last ingest (stat walk, run digests).
//! - [`file_status`]: what ingest concluded about each file (`source_file.status`).
//! - [`document`]: the original sidecar bytes, compressed with a trained dictionary.
//! - [`values`]: distinct values per filterable dimension (`stats list-values`).
//! - [`runs`]: per-run summaries, host contexts and stored documents (`stats list`,
//!   `show-host`, `explain-sidecar`).
//! - [`compare_rows`]: the per-side row selection `stats compare` runs on.
//! - [`history`]: one metric's passing samples per series, for `stats history`.
//! - [`merge`]: folding other warehouses in (`stats merge`), deduplicated by content.
//! - [`watch`]: re-ingest as sidecars appear (`stats ingest --watch`).
//! - [`sql`]: the locked-down connection behind `stats sql`.
//!
//! # Schema
//! `migrations/V1__initial_schema.sql` documents the tables; later migrations add to them
//! (V3: compression dictionaries, V4: per-run-directory digests for incremental ingest, V5: the
//! `source_file.status` CHECK constraint). Users query the stable views `sidecar` (one row per
//! ingested sidecar) and `sample` (one row per sidecar × metric); tables may change between
//! versions, the views keep their columns. Registered metrics are typed REAL columns of
//! `ingested_sidecar` named exactly as in [`crate::metric::METRICS`], in its order; other
//! metrics (stats `ext_metrics`, payload metrics) are rows of `metric_value`. The views and the
//! `registry_metric` rows are generated from the registry ([`registry_schema`]), not written
//! in a migration.

pub mod commit_ids;
pub mod compare_rows;
pub mod document;
mod file_status;
pub mod history;
mod incremental;
pub mod ingest;
pub mod merge;
pub mod open;
mod registry_schema;
pub mod runs;
pub mod sql;
pub mod values;
pub mod watch;

pub use open::{OpenError, Warehouse};
