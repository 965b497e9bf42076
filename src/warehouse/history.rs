//! The rows `stats history` works on: every passing sample of one metric, for the sidecars a
//! filter selects, with the identity of its series and the commit and time it was written at.
//!
//! One indexed query. The test-name equality (when given) and the other identity columns are
//! served by `ingested_sidecar_test_name` (test, topology, scheduler, work type); the filter
//! rules are the same as compare's (`compare_rows::where_clause`). Ordering commits along git
//! history, medians and step detection are not here (`crate::compare::trend`).

use rusqlite::params_from_iter;
use rusqlite::types::Value;

use super::Warehouse;
use super::compare_rows::{resolve_scope, where_clause};
use crate::compare::{PoolScope, SideFilter};
use crate::metric::{METRICS, MetricDef, metric_def};

/// Which stored metric a history reads.
#[derive(Debug, Clone)]
pub enum HistoryMetric {
    /// A registry metric: a typed column of `ingested_sidecar`.
    Registry(&'static MetricDef),
    /// A metric the registry does not know (`stats.ext_metrics`, payload metrics): rows of
    /// `metric_value` under every origin that has this name.
    Other { name: String, metric_ids: Vec<i64> },
}

impl HistoryMetric {
    pub fn name(&self) -> &str {
        match self {
            HistoryMetric::Registry(d) => d.name,
            HistoryMetric::Other { name, .. } => name,
        }
    }
}

/// Why a metric name could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MetricLookupError {
    #[error("unknown metric `{name}`{}; `cargo ktstr stats list-metrics` lists the registry", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    Unknown { name: String, suggestion: Option<String> },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// Resolve `name` to a registry metric, else to a stored unregistered metric; otherwise an
/// error carrying the closest known name (registry first, then stored names).
pub fn lookup_metric(wh: &Warehouse, name: &str) -> Result<HistoryMetric, MetricLookupError> {
    if let Some(def) = metric_def(name) {
        return Ok(HistoryMetric::Registry(def));
    }
    let conn = wh.conn();
    let mut stmt =
        conn.prepare("SELECT metric_id FROM metric WHERE name = ?1 ORDER BY metric_id")?;
    let metric_ids: Vec<i64> =
        stmt.query_map([name], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    if !metric_ids.is_empty() {
        return Ok(HistoryMetric::Other { name: name.to_string(), metric_ids });
    }
    let mut stmt = conn.prepare("SELECT DISTINCT name FROM metric ORDER BY name")?;
    let stored: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    let candidates = METRICS.iter().map(|m| m.name).chain(stored.iter().map(String::as_str));
    let suggestion = crate::sidecar::run_key::suggest(name, candidates).map(str::to_string);
    Err(MetricLookupError::Unknown { name: name.to_string(), suggestion })
}

/// The identity a history follows across commits: one test variant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    pub test_name: String,
    pub topology: String,
    pub scheduler: String,
    pub work_type: String,
    /// The stored flags (a JSON array as written by ingest).
    pub flags: String,
}

impl SeriesKey {
    /// `test/topology/scheduler/work_type[/flags]`, flags as a comma list.
    pub fn label(&self) -> String {
        let flags: Vec<String> = serde_json::from_str(&self.flags).unwrap_or_default();
        let mut s =
            format!("{}/{}/{}/{}", self.test_name, self.topology, self.scheduler, self.work_type);
        if !flags.is_empty() {
            s.push('/');
            s.push_str(&flags.join(","));
        }
        s
    }
}

/// One passing sidecar's value of the metric.
#[derive(Debug, Clone, PartialEq)]
pub struct HistorySample {
    pub series: SeriesKey,
    /// The project commit as recorded (`abc1234`, `abc1234-dirty`), `None` when unknown.
    pub commit: Option<String>,
    pub timestamp: String,
    pub value: f64,
}

/// What a history selects: the metric, an optional test name, and compare's per-side filter
/// (its project-commit list is ignored: a history spans commits).
#[derive(Debug, Clone)]
pub struct HistoryQuery<'a> {
    pub metric: &'a HistoryMetric,
    pub test_name: Option<&'a str>,
    pub filter: &'a SideFilter,
    pub scope: &'a PoolScope,
}

/// The statement for one query (exposed for the query-plan test).
fn history_sql(
    metric: &HistoryMetric,
    clause: &str,
    test_param: Option<usize>,
    first_id: usize,
) -> String {
    let test = test_param.map(|p| format!(" AND s.test_name = ?{p}")).unwrap_or_default();
    let (value, join) = match metric {
        HistoryMetric::Registry(def) => (format!("s.{}", def.name), String::new()),
        HistoryMetric::Other { metric_ids, .. } => {
            let marks: Vec<String> =
                (0..metric_ids.len()).map(|i| format!("?{}", first_id + i)).collect();
            (
                "v.value".to_string(),
                format!(
                    " JOIN metric_value v ON v.sidecar_id = s.sidecar_id AND v.metric_id IN ({})",
                    marks.join(", ")
                ),
            )
        }
    };
    format!(
        "SELECT s.test_name, s.topology, s.scheduler, s.work_type, s.flags, s.project_commit, \
         s.timestamp, {value} FROM ingested_sidecar s{join} \
         WHERE {clause}{test} AND s.passed = 1 AND s.skipped = 0 AND {value} IS NOT NULL \
         ORDER BY s.timestamp, s.sidecar_id"
    )
}

/// Every passing, non-skipped sample the query selects whose value was measured (a value
/// stored as NULL, non-finite when written, is left out rather than read as 0), oldest first.
pub fn history_samples(
    wh: &Warehouse,
    q: &HistoryQuery<'_>,
) -> rusqlite::Result<Vec<HistorySample>> {
    let (sql, params) = match statement(wh, q)? {
        Some(s) => s,
        None => return Ok(Vec::new()),
    };
    let mut stmt = wh.conn().prepare(&sql)?;
    stmt.query_map(params_from_iter(params.iter()), |r| {
        Ok(HistorySample {
            series: SeriesKey {
                test_name: r.get(0)?,
                topology: r.get(1)?,
                scheduler: r.get(2)?,
                work_type: r.get(3)?,
                flags: r.get(4)?,
            },
            commit: r.get(5)?,
            timestamp: r.get(6)?,
            value: r.get(7)?,
        })
    })?
    .collect()
}

fn statement(
    wh: &Warehouse,
    q: &HistoryQuery<'_>,
) -> rusqlite::Result<Option<(String, Vec<Value>)>> {
    let scope = resolve_scope(wh, q.scope)?;
    let mut filter = q.filter.clone();
    filter.set(crate::compare::Dim::ProjectCommit, Vec::new());
    let Some((clause, mut params)) = where_clause(&scope, &filter) else {
        return Ok(None);
    };
    let test_param = q.test_name.map(|t| {
        params.push(Value::Text(t.to_string()));
        params.len()
    });
    let first_id = params.len() + 1;
    if let HistoryMetric::Other { metric_ids, .. } = q.metric {
        params.extend(metric_ids.iter().map(|&id| Value::Integer(id)));
    }
    Ok(Some((history_sql(q.metric, &clause, test_param, first_id), params)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_history_is_served_by_the_test_identity_index() {
        let wh = Warehouse::open_in_memory().unwrap();
        let metric = HistoryMetric::Registry(metric_def("worst_spread").unwrap());
        let filter = SideFilter::default().with(crate::compare::Dim::Scheduler, &["eevdf"]);
        let q = HistoryQuery {
            metric: &metric,
            test_name: Some("t"),
            filter: &filter,
            scope: &PoolScope::default(),
        };
        let (sql, params) = statement(&wh, &q).unwrap().unwrap();
        let mut stmt = wh.conn().prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let plan: Vec<String> = stmt
            .query_map(params_from_iter(params.iter()), |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            plan.iter().any(|l| l.contains("USING INDEX ingested_sidecar_test_name")),
            "{plan:?}"
        );
    }

    #[test]
    fn an_unknown_metric_suggests_the_closest_registry_name() {
        let wh = Warehouse::open_in_memory().unwrap();
        let err = lookup_metric(&wh, "worst_sprad").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown metric `worst_sprad` (did you mean `worst_spread`?); `cargo ktstr stats \
             list-metrics` lists the registry"
        );
        assert!(matches!(
            lookup_metric(&wh, "zzzzzzzzzzzzzzzzzzzzzz"),
            Err(MetricLookupError::Unknown { suggestion: None, .. })
        ));
    }
}
