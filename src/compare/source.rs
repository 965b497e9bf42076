//! What compare needs from whoever holds the rows: one side's rows for a filter, and facts
//! about the whole pool for the zero-match diagnostic.
//!
//! [`RowSource`] is the seam between compare and its producers. The warehouse implements it
//! with indexed SQL (`crate::warehouse::compare_rows`); the benchmark implements it over a
//! walk of sidecar files, so both run the same [`super::run`]. How rows are stored or found is
//! the implementer's business; the filter rules are [`SideFilter::matches`]'s.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use super::noise::Series;
use super::{Row, SideFilter};
use crate::sidecar::model::HostLoad;

/// Which sidecars form the pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolScope {
    /// `--dir`: only sidecars ingested from this runs root (canonical path), including those
    /// whose files a later run pre-cleared (the warehouse keeps history), all relabelled
    /// `run_source = "archive"`. `None`: every sidecar in the warehouse, history
    /// included.
    pub archive_root: Option<PathBuf>,
}

/// What the pool holds, for diagnostics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolFacts {
    pub total: usize,
    pub project_commits: BTreeSet<String>,
    pub kernel_commits: BTreeSet<String>,
    pub run_sources: BTreeSet<String>,
    pub null_run_sources: usize,
}

/// A pool of rows compare can read.
pub trait RowSource {
    /// Why reading failed (a database error, say); compare passes it on untouched.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The rows of one side that `filter` selects within `scope`, in pool order: test
    /// identity (scenario, topology, scheduler, work type), then write time, then sidecar id.
    /// Registry metrics stored as non-finite are `None`; non-finite ext values are NaN.
    fn select_side(&self, scope: &PoolScope, filter: &SideFilter) -> Result<Vec<Row>, Self::Error>;

    /// Counts and distinct values of the whole pool within `scope` (not one side). Asked for
    /// only when a side matched nothing, since it may read every row.
    fn pool_facts(&self, scope: &PoolScope) -> Result<PoolFacts, Self::Error>;

    /// The newest passing runs of each series within `scope`, at most `per_series` each and
    /// in any order, whatever their commit: the history the noise model learns replicate
    /// noise from. Ext metrics may be left empty. A source that keeps no history (a walk of
    /// the files present now) has none to give: the default.
    fn series_history(
        &self,
        scope: &PoolScope,
        series: &[Series],
        per_series: usize,
    ) -> Result<Vec<Row>, Self::Error> {
        let _ = (scope, series, per_series);
        Ok(Vec::new())
    }

    /// The host load each of these runs recorded (`provenance.host_load`), by sidecar id;
    /// runs that recorded none are absent. A source that cannot read it returns none: the
    /// default.
    fn host_loads(&self, sidecar_ids: &[i64]) -> Result<HashMap<i64, HostLoad>, Self::Error> {
        let _ = sidecar_ids;
        Ok(HashMap::new())
    }
}
