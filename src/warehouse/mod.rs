//! The SQLite warehouse: an index of every sidecar ever ingested, and the only module that
//! writes SQL.
//!
//! - [`open`]: pragmas, migrations, version check ([`Warehouse`], [`OpenError`]).
//! - [`ingest`]: runs root → parsed sidecars → rows, idempotent and incremental.
//! - [`incremental`]: which files changed since the last ingest (stat walk, run digests).
//! - [`document`]: the original sidecar bytes, compressed with a trained dictionary.
//! - [`values`]: distinct values per filterable dimension (`stats list-values`).
//! - [`runs`]: per-run summaries, host contexts and stored documents (`stats list`,
//!   `show-host`, `explain-sidecar`).
//! - [`compare_rows`]: the per-side row selection `stats compare` runs on.
//! - [`watch`]: re-ingest as sidecars appear (`stats ingest --watch`).
//! - [`sql`]: the locked-down connection behind `stats sql`.
//!
//! # Schema
//! `migrations/V1__initial_schema.sql` documents the tables; later migrations add to them
//! (V3: compression dictionaries, V4: per-run-directory digests for incremental ingest).
//! Users query the stable views `sidecar` (one row per ingested sidecar) and `sample` (one row
//! per sidecar × metric); tables may change between versions, the views keep their columns. Registered metrics are
//! typed REAL columns of `ingested_sidecar` named exactly as in [`crate::metric::METRICS`];
//! other metrics (stats `ext_metrics`, payload metrics) are rows of `metric_value`.

pub mod compare_rows;
pub mod document;
mod incremental;
pub mod ingest;
pub mod open;
pub mod runs;
pub mod sql;
pub mod values;
pub mod watch;

pub use open::{OpenError, Warehouse};
