//! Loading the rows `stats compare` works on: one query per side, filtered in SQL on the
//! indexed dimension columns, plus the pool facts the zero-match diagnostic needs. This is the
//! warehouse's [`RowSource`], the seam [`crate::compare::run`] reads through.
//!
//! The filter rules are [`crate::compare::SideFilter::matches`]'s, expressed in SQL: values of
//! one dimension are alternatives (`IN`), a null never matches a populated list, a `M.m`
//! kernel also matches `M.m.*` (as an index range), and every listed flag must be present
//! (`EXISTS` per flag on `sidecar_flag`'s primary key). Comparison logic is not here.
//!
//! For the noise gate it also gives a series' history (the newest passing runs of one test
//! identity, through the `(test_name, topology, scheduler, work_type)` index) and the host
//! load runs recorded, which lives only in the stored documents.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, params_from_iter};

use super::Warehouse;
use super::document::Decoder;
use crate::compare::filter::kernel_prefix;
use crate::compare::noise::Series;
use crate::compare::{Dim, PoolFacts, PoolScope, Row, RowSource, SideFilter};
use crate::dimension::ARCHIVE_SOURCE;
use crate::metric::METRICS;
use crate::sidecar::model::HostLoad;

impl RowSource for Warehouse {
    type Error = rusqlite::Error;

    fn select_side(&self, scope: &PoolScope, filter: &SideFilter) -> rusqlite::Result<Vec<Row>> {
        select_side(self, scope, filter)
    }

    fn pool_facts(&self, scope: &PoolScope) -> rusqlite::Result<PoolFacts> {
        pool_facts(self, scope)
    }

    fn series_history(
        &self,
        scope: &PoolScope,
        series: &[Series],
        per_series: usize,
    ) -> rusqlite::Result<Vec<Row>> {
        series_history(self, scope, series, per_series)
    }

    fn host_loads(&self, sidecar_ids: &[i64]) -> rusqlite::Result<HashMap<i64, HostLoad>> {
        host_loads(self, sidecar_ids)
    }
}

/// A resolved scope: the archive root's id when `--dir` was given.
pub(super) struct Scope {
    archive: bool,
    /// `Some(None)`: `--dir` names a root the warehouse has never ingested.
    root_id: Option<Option<i64>>,
}

pub(super) fn resolve_scope(wh: &Warehouse, scope: &PoolScope) -> rusqlite::Result<Scope> {
    let Some(root) = &scope.archive_root else {
        return Ok(Scope { archive: false, root_id: None });
    };
    Ok(Scope { archive: true, root_id: Some(super::runs::root_id(wh, root)?) })
}

/// Build the WHERE clause (over alias `s`) and its parameters for one side. `None` when the
/// filter can match nothing (an archive pool filtered on a run source other than `archive`,
/// or an archive root never ingested).
pub(super) fn where_clause(scope: &Scope, filter: &SideFilter) -> Option<(String, Vec<Value>)> {
    let mut conds: Vec<String> = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    if let Some(root) = scope.root_id {
        params.push(Value::Integer(root?));
        conds.push(super::runs::in_root_sql(params.len()));
    }
    for dim in Dim::ALL {
        let wanted = filter.get(dim);
        if wanted.is_empty() {
            continue;
        }
        match dim {
            Dim::Flags => {
                for flag in wanted {
                    params.push(Value::Text(flag.clone()));
                    conds.push(format!(
                        "EXISTS (SELECT 1 FROM sidecar_flag g WHERE g.sidecar_id = s.sidecar_id \
                         AND g.flag = ?{})",
                        params.len()
                    ));
                }
            }
            Dim::RunSource if scope.archive => {
                // Every archive row reads as `archive`; the filter either keeps all or none.
                if !wanted.iter().any(|w| w == ARCHIVE_SOURCE) {
                    return None;
                }
            }
            Dim::Kernel => {
                let col = dim.column();
                let mut alts = Vec::new();
                for w in wanted {
                    params.push(Value::Text(w.clone()));
                    alts.push(format!("s.{col} = ?{}", params.len()));
                    if let Some(prefix) = kernel_prefix(w) {
                        // `6.1.` <= v < `6.1/` ('/' follows '.'): the `6.1.*` releases, as an
                        // index range rather than a LIKE (which is case-folding and wildcarded).
                        let mut upper = prefix.clone();
                        upper.pop();
                        upper.push('/');
                        params.push(Value::Text(prefix));
                        params.push(Value::Text(upper));
                        alts.push(format!(
                            "(s.{col} >= ?{} AND s.{col} < ?{})",
                            params.len() - 1,
                            params.len()
                        ));
                    }
                }
                conds.push(format!("({})", alts.join(" OR ")));
            }
            _ => {
                let col = dim.column();
                let mut marks = Vec::new();
                for w in wanted {
                    params.push(Value::Text(w.clone()));
                    marks.push(format!("?{}", params.len()));
                }
                conds.push(format!("s.{col} IN ({})", marks.join(", ")));
            }
        }
    }
    let clause = if conds.is_empty() { "1".to_string() } else { conds.join(" AND ") };
    Some((clause, params))
}

/// The columns [`row_from`] reads, `host` standing for the host id column.
fn row_columns(host: &str) -> String {
    let metric_cols: Vec<String> = METRICS.iter().map(|m| format!("s.{}", m.name)).collect();
    format!(
        "s.sidecar_id, s.test_name, s.topology, s.scheduler, s.work_type, s.flags, \
         s.kernel_version, s.kernel_commit, s.project_commit, s.run_source, s.passed, s.skipped, \
         s.timestamp, s.dirty_fingerprint, s.run_token, s.repeat, {host}, {}",
        metric_cols.join(", ")
    )
}

/// The position of the host id in [`row_columns`].
const HOST_ID_COLUMN: usize = 16;

/// The side-selection statement (exposed for the query-plan test). The host context is not
/// joined: a side's runs share a few hosts, so each host's JSON is read once
/// ([`attach_hosts`]) rather than copied out of SQLite for every row.
fn side_sql(clause: &str) -> String {
    format!(
        "SELECT {} \
         FROM ingested_sidecar s \
         WHERE {clause} \
         ORDER BY s.test_name, s.topology, s.scheduler, s.work_type, s.timestamp, s.sidecar_id",
        row_columns("s.host_id")
    )
}

/// One row of [`row_columns`], host and ext metrics left empty.
fn row_from(r: &rusqlite::Row) -> rusqlite::Result<Row> {
    let mut metrics = [None; METRICS.len()];
    for (i, slot) in metrics.iter_mut().enumerate() {
        *slot = r.get::<_, Option<f64>>(17 + i)?;
    }
    Ok(Row {
        sidecar_id: r.get(0)?,
        scenario: r.get(1)?,
        topology: r.get(2)?,
        scheduler: r.get(3)?,
        work_type: r.get(4)?,
        flags: parse_flags(r.get_ref(5)?.as_str()?),
        kernel_version: r.get(6)?,
        kernel_commit: r.get(7)?,
        project_commit: r.get(8)?,
        run_source: r.get(9)?,
        passed: r.get(10)?,
        skipped: r.get(11)?,
        timestamp: r.get(12)?,
        dirty_fingerprint: r.get(13)?,
        run_token: r.get(14)?,
        repeat: r.get(15)?,
        host_json: None,
        metrics,
        ext: BTreeMap::new(),
    })
}

/// One host's recorded context, by id.
const HOST_SQL: &str = "SELECT json FROM host_context WHERE host_id = ?1";

/// Give each row the JSON of its host (`host_ids[i]` is `rows[i]`'s), read once per distinct
/// host and shared between the rows. An id without a host row leaves the row without one, as
/// the outer join did.
fn attach_hosts(
    wh: &Warehouse,
    rows: &mut [Row],
    host_ids: &[Option<i64>],
) -> rusqlite::Result<()> {
    let mut stmt = wh.conn().prepare_cached(HOST_SQL)?;
    let mut json_of: HashMap<i64, Option<Arc<str>>> = HashMap::new();
    for (row, id) in rows.iter_mut().zip(host_ids) {
        let Some(id) = *id else { continue };
        let json = match json_of.get(&id) {
            Some(json) => json.clone(),
            None => {
                let json: Option<String> = stmt.query_row([id], |r| r.get(0)).optional()?;
                let json: Option<Arc<str>> = json.map(Arc::from);
                json_of.insert(id, json.clone());
                json
            }
        };
        row.host_json = json;
    }
    Ok(())
}

/// One series' newest passing runs: `?1`-`?4` its identity, `?5` how many, `?6` the root
/// when the pool is one root's.
fn history_sql(in_root: bool) -> String {
    let in_root =
        if in_root { format!(" AND {}", super::runs::in_root_sql(6)) } else { String::new() };
    format!(
        "SELECT {} FROM ingested_sidecar s \
         WHERE s.test_name = ?1 AND s.topology = ?2 AND s.scheduler = ?3 AND s.work_type = ?4 \
         AND s.passed = 1 AND s.skipped = 0{in_root} \
         ORDER BY s.timestamp DESC LIMIT ?5",
        row_columns("NULL")
    )
}

/// The newest `per_series` passing runs of each series within `scope` (no host, no ext).
pub fn series_history(
    wh: &Warehouse,
    scope: &PoolScope,
    series: &[Series],
    per_series: usize,
) -> rusqlite::Result<Vec<Row>> {
    let resolved = resolve_scope(wh, scope)?;
    let root = match resolved.root_id {
        Some(None) => return Ok(Vec::new()),
        Some(Some(id)) => Some(id),
        None => None,
    };
    let mut stmt = wh.conn().prepare_cached(&history_sql(root.is_some()))?;
    let mut rows = Vec::new();
    for s in series {
        let mut params: Vec<Value> = vec![
            Value::Text(s.scenario.clone()),
            Value::Text(s.topology.clone()),
            Value::Text(s.scheduler.clone()),
            Value::Text(s.work_type.clone()),
            Value::Integer(per_series as i64),
        ];
        params.extend(root.map(Value::Integer));
        let found = stmt.query_map(params_from_iter(params.iter()), row_from)?;
        for row in found {
            rows.push(row?);
        }
    }
    Ok(rows)
}

/// Only the part of a stored document the load check reads.
#[derive(serde::Deserialize)]
struct LoadOnly {
    #[serde(default)]
    provenance: Option<ProvenanceLoad>,
}

#[derive(serde::Deserialize)]
struct ProvenanceLoad {
    #[serde(default)]
    host_load: Option<HostLoad>,
}

/// One run's stored document, by id.
const HOST_LOAD_SQL: &str =
    "SELECT codec, dict_id, document FROM sidecar_document WHERE sidecar_id = ?1";

/// The host load each run recorded, read from its stored document; a document that cannot
/// be decoded or parsed records nothing (the warning is advisory).
pub fn host_loads(wh: &Warehouse, ids: &[i64]) -> rusqlite::Result<HashMap<i64, HostLoad>> {
    let conn = wh.conn();
    let mut stmt = conn.prepare_cached(HOST_LOAD_SQL)?;
    let mut decoder = Decoder::new(conn);
    let mut out = HashMap::new();
    for &id in ids {
        let mut q = stmt.query([id])?;
        let Some(r) = q.next()? else { continue };
        let (codec, dict_id, doc): (String, Option<i64>, Vec<u8>) =
            (r.get(0)?, r.get(1)?, r.get(2)?);
        let Ok(bytes) = decoder.decode(&codec, dict_id, &doc) else { continue };
        let load = serde_json::from_slice::<LoadOnly>(&bytes)
            .ok()
            .and_then(|d| d.provenance)
            .and_then(|p| p.host_load);
        if let Some(load) = load {
            out.insert(id, load);
        }
    }
    Ok(out)
}

/// The rows of one side, in a stable order (test identity, then write time), each with its
/// registry metrics (NULL stays `None`) and ext metrics.
pub fn select_side(
    wh: &Warehouse,
    scope: &PoolScope,
    filter: &SideFilter,
) -> rusqlite::Result<Vec<Row>> {
    let scope = resolve_scope(wh, scope)?;
    let Some((clause, params)) = where_clause(&scope, filter) else {
        return Ok(Vec::new());
    };
    let conn = wh.conn();
    let mut stmt = conn.prepare(&side_sql(&clause))?;
    let mut rows: Vec<Row> = Vec::new();
    let mut host_ids: Vec<Option<i64>> = Vec::new();
    let mut q = stmt.query(params_from_iter(params.iter()))?;
    while let Some(r) = q.next()? {
        rows.push(row_from(r)?);
        host_ids.push(r.get(HOST_ID_COLUMN)?);
    }
    attach_hosts(wh, &mut rows, &host_ids)?;
    if scope.archive {
        for row in &mut rows {
            row.run_source = Some(ARCHIVE_SOURCE.to_string());
        }
    }
    attach_ext(wh, &clause, &params, &mut rows)?;
    Ok(rows)
}

/// Flags are stored as a JSON array; anything else (an older writer) is read as a
/// comma-separated list so no row is lost.
fn parse_flags(text: &str) -> Vec<String> {
    if let Some(flags) = plain_string_array(text) {
        return flags;
    }
    serde_json::from_str(text).unwrap_or_else(|_| {
        text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
    })
}

/// The array the writer stores for flags, `[]` or `["a","b"]` (no spaces, no escapes), read
/// without a JSON parser: every row of a compare has one. `None` for any other text, which
/// the full parser then reads.
fn plain_string_array(text: &str) -> Option<Vec<String>> {
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    if inner.is_empty() {
        return Some(Vec::new());
    }
    inner
        .split(',')
        .map(|item| {
            let flag = item.strip_prefix('"')?.strip_suffix('"')?;
            (!flag.contains(['"', '\\'])).then(|| flag.to_string())
        })
        .collect()
}

/// The ext metrics of every row one side's WHERE clause selects, in one statement: the same
/// clause as the side query, joined to `metric_value` on its primary key (one query per side
/// rather than one per row). `CROSS JOIN` fixes the join order: driving from the side reads
/// each row's values in one primary-key range. Which values are ext metrics, and their names,
/// come from [`EXT_NAMES_SQL`], read once: a join to `metric` would look up the name of every
/// value.
fn ext_sql(clause: &str) -> String {
    format!(
        "SELECT v.sidecar_id, v.metric_id, v.value \
         FROM ingested_sidecar s \
         CROSS JOIN metric_value v ON v.sidecar_id = s.sidecar_id \
         WHERE {clause}"
    )
}

/// The metrics of origin `ext` (`stats.ext_metrics`): id and name.
const EXT_NAMES_SQL: &str = "SELECT metric_id, name FROM metric WHERE origin = 'ext'";

/// Fill each row's ext metrics (origin `ext`); a NULL value (non-finite when written) is
/// recorded as NaN so compare's sanitizer counts and drops it.
fn attach_ext(
    wh: &Warehouse,
    clause: &str,
    params: &[Value],
    rows: &mut [Row],
) -> rusqlite::Result<()> {
    let conn = wh.conn();
    let mut names = conn.prepare_cached(EXT_NAMES_SQL)?;
    let names: HashMap<i64, String> =
        names.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
    if names.is_empty() {
        return Ok(());
    }
    let position: HashMap<i64, usize> =
        rows.iter().enumerate().map(|(i, r)| (r.sidecar_id, i)).collect();
    let mut stmt = conn.prepare(&ext_sql(clause))?;
    let mut q = stmt.query(params_from_iter(params.iter()))?;
    // A row's values come together (one primary-key range), so its position is looked up once.
    let mut current: Option<(i64, usize)> = None;
    while let Some(r) = q.next()? {
        let Some(name) = names.get(&r.get::<_, i64>(1)?) else { continue };
        let sidecar_id: i64 = r.get(0)?;
        let at = match current {
            Some((id, at)) if id == sidecar_id => at,
            _ => {
                let Some(&at) = position.get(&sidecar_id) else { continue };
                current = Some((sidecar_id, at));
                at
            }
        };
        let value = r.get::<_, Option<f64>>(2)?.unwrap_or(f64::NAN);
        rows[at].ext.insert(name.clone(), value);
    }
    Ok(())
}

/// `EXPLAIN QUERY PLAN` of the statements one side runs (the side selection, its ext metrics,
/// the names of ext metrics, then one host's context), each as its plan's detail lines; empty when the filter can match
/// nothing. The query-plan test pins with it which indexes a compare relies on.
pub fn side_query_plans(
    wh: &Warehouse,
    scope: &PoolScope,
    filter: &SideFilter,
) -> rusqlite::Result<Vec<Vec<String>>> {
    let scope = resolve_scope(wh, scope)?;
    let Some((clause, params)) = where_clause(&scope, filter) else {
        return Ok(Vec::new());
    };
    let mut plans: Vec<Vec<String>> = [side_sql(&clause), ext_sql(&clause)]
        .iter()
        .map(|sql| explain(wh, sql, &params))
        .collect::<rusqlite::Result<_>>()?;
    plans.push(explain(wh, EXT_NAMES_SQL, &[])?);
    plans.push(explain(wh, HOST_SQL, &[Value::Integer(1)])?);
    Ok(plans)
}

/// `EXPLAIN QUERY PLAN` of the noise gate's reads: a series' history (whole pool, then one
/// root's) and one run's stored document (for its host load).
pub fn history_query_plans(wh: &Warehouse) -> rusqlite::Result<Vec<Vec<String>>> {
    let series = ["t", "1n1l1c1t", "eevdf", "CpuSpin"].map(|v| Value::Text(v.into()));
    let mut params: Vec<Value> = series.into();
    params.push(Value::Integer(8));
    let whole = explain(wh, &history_sql(false), &params)?;
    params.push(Value::Integer(1));
    let rooted = explain(wh, &history_sql(true), &params)?;
    Ok(vec![whole, rooted, explain(wh, HOST_LOAD_SQL, &[Value::Integer(1)])?])
}

/// The detail lines of `EXPLAIN QUERY PLAN sql` bound to `params`.
pub(super) fn explain(
    wh: &Warehouse,
    sql: &str,
    params: &[Value],
) -> rusqlite::Result<Vec<String>> {
    let mut stmt = wh.conn().prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    stmt.query_map(params_from_iter(params.iter()), |r| r.get::<_, String>(3))?.collect()
}

/// Counts and distinct values of the whole pool (not one side).
pub fn pool_facts(wh: &Warehouse, scope: &PoolScope) -> rusqlite::Result<PoolFacts> {
    let resolved = resolve_scope(wh, scope)?;
    let Some((clause, params)) = where_clause(&resolved, &SideFilter::default()) else {
        return Ok(PoolFacts::default());
    };
    let sql = format!(
        "SELECT s.project_commit, s.kernel_commit, s.run_source FROM ingested_sidecar s \
         WHERE {clause}"
    );
    let conn = wh.conn();
    let mut stmt = conn.prepare(&sql)?;
    let mut facts = PoolFacts::default();
    let mut q = stmt.query(params_from_iter(params.iter()))?;
    while let Some(r) = q.next()? {
        facts.total += 1;
        if let Some(c) = r.get::<_, Option<String>>(0)? {
            facts.project_commits.insert(c);
        }
        if let Some(c) = r.get::<_, Option<String>>(1)? {
            facts.kernel_commits.insert(c);
        }
        let source = if resolved.archive {
            Some(ARCHIVE_SOURCE.to_string())
        } else {
            r.get::<_, Option<String>>(2)?
        };
        match source {
            Some(s) => {
                facts.run_sources.insert(s);
            }
            None => facts.null_run_sources += 1,
        }
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::sidecar::SidecarResult;

    fn write(root: &Path, dir: &str, name: &str, doc: &SidecarResult) {
        let d = root.join(dir);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("{name}.ktstr.json")), doc.to_json_pretty()).unwrap();
    }

    fn doc(test: &str, commit: &str, kernel: &str, flags: &[&str]) -> SidecarResult {
        let mut s = SidecarResult::empty(test);
        s.project_commit = Some(commit.into());
        s.kernel_version = Some(kernel.into());
        s.active_flags = flags.iter().map(|f| f.to_string()).collect();
        s.stats.worst_spread = 12.5;
        s.stats.ext_metrics.insert("custom".into(), 3.0);
        s.run_source = Some("local".into());
        s
    }

    fn warehouse() -> (tempfile::TempDir, Warehouse) {
        let tmp = tempfile::TempDir::new().unwrap();
        let root = tmp.path().join("runs");
        write(&root, "6.1.5-aaaaaaa", "t1", &doc("t1", "aaaaaaa", "6.1.5", &["llc"]));
        write(&root, "6.10.0-aaaaaaa", "t1", &doc("t1", "aaaaaaa", "6.10.0", &["llc", "steal"]));
        write(&root, "6.1-bbbbbbb", "t2", &doc("t2", "bbbbbbb", "6.1", &[]));
        let mut wh = Warehouse::open_in_memory().unwrap();
        super::super::ingest::ingest_root(&mut wh, &root, None).unwrap();
        (tmp, wh)
    }

    #[test]
    fn sql_filters_agree_with_the_in_memory_matcher() {
        let (_tmp, wh) = warehouse();
        let all = select_side(&wh, &PoolScope::default(), &SideFilter::default()).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].ext["custom"], 3.0);
        assert_eq!(all[0].metrics[0], Some(12.5));
        let filters = [
            SideFilter::default().with(Dim::Kernel, &["6.1"]),
            SideFilter::default().with(Dim::Kernel, &["6.10"]),
            SideFilter::default().with(Dim::Kernel, &["6.1.5", "6.10.0"]),
            SideFilter::default().with(Dim::Flags, &["llc", "steal"]),
            SideFilter::default().with(Dim::Flags, &["llc"]),
            SideFilter::default()
                .with(Dim::ProjectCommit, &["aaaaaaa"])
                .with(Dim::Kernel, &["6.1"]),
            SideFilter::default().with(Dim::KernelCommit, &["x"]),
            SideFilter::default().with(Dim::RunSource, &["local"]),
        ];
        for f in filters {
            let sql: Vec<i64> = select_side(&wh, &PoolScope::default(), &f)
                .unwrap()
                .iter()
                .map(|r| r.sidecar_id)
                .collect();
            let mem: Vec<i64> = all.iter().filter(|r| f.matches(r)).map(|r| r.sidecar_id).collect();
            assert_eq!(sql, mem, "{f:?}");
        }
        let k61 = SideFilter::default().with(Dim::Kernel, &["6.1"]);
        assert_eq!(select_side(&wh, &PoolScope::default(), &k61).unwrap().len(), 2);
    }

    #[test]
    fn archive_scope_relabels_run_source() {
        let (tmp, wh) = warehouse();
        let scope = PoolScope { archive_root: Some(tmp.path().join("runs")) };
        let rows = select_side(&wh, &scope, &SideFilter::default()).unwrap();
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| r.run_source.as_deref() == Some("archive")));
        let local = SideFilter::default().with(Dim::RunSource, &["local"]);
        assert!(select_side(&wh, &scope, &local).unwrap().is_empty());
        let facts = pool_facts(&wh, &scope).unwrap();
        assert_eq!(facts.total, 3);
        assert_eq!(facts.run_sources.iter().collect::<Vec<_>>(), ["archive"]);
        let elsewhere = PoolScope { archive_root: Some(tmp.path().join("nowhere")) };
        assert!(select_side(&wh, &elsewhere, &SideFilter::default()).unwrap().is_empty());
    }

    #[test]
    fn archive_scope_keeps_history_of_pre_cleared_files() {
        let (tmp, mut wh) = warehouse();
        let root = tmp.path().join("runs");
        std::fs::remove_dir_all(root.join("6.1-bbbbbbb")).unwrap();
        super::super::ingest::ingest_root(&mut wh, &root, None).unwrap();
        let scope = PoolScope { archive_root: Some(root.clone()) };
        assert_eq!(select_side(&wh, &scope, &SideFilter::default()).unwrap().len(), 3);

        // A new run at the same commit overwrites a file in place: both runs stay in scope.
        let path = root.join("6.1.5-aaaaaaa/t1.ktstr.json");
        let mut rerun = doc("t1", "aaaaaaa", "6.1.5", &["llc"]);
        rerun.stats.worst_spread = 20.0;
        std::fs::write(&path, rerun.to_json_pretty()).unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
        super::super::ingest::ingest_root(&mut wh, &root, None).unwrap();
        assert_eq!(select_side(&wh, &scope, &SideFilter::default()).unwrap().len(), 4);
    }

    #[test]
    fn flags_read_without_the_parser_agree_with_it() {
        for text in [r#"[]"#, r#"["llc"]"#, r#"["llc","steal"]"#, r#"[""]"#] {
            let parsed: Vec<String> = serde_json::from_str(text).unwrap();
            assert_eq!(plain_string_array(text), Some(parsed.clone()), "{text}");
            assert_eq!(parse_flags(text), parsed);
        }
        // Anything but the writer's own form goes to the parser, or to the comma fallback.
        for (text, want) in [
            (r#"["a,b"]"#, vec!["a,b"]),
            (r#"[ "llc", "steal" ]"#, vec!["llc", "steal"]),
            (r#"["q\"x"]"#, vec!["q\"x"]),
            ("llc, steal", vec!["llc", "steal"]),
        ] {
            assert_eq!(plain_string_array(text), None, "{text}");
            assert_eq!(parse_flags(text), want, "{text}");
        }
    }

    #[test]
    fn side_selection_query_plan_uses_an_index() {
        let (_tmp, wh) = warehouse();
        let scope = Scope { archive: false, root_id: None };
        let mut first_plan = None;
        for f in [
            SideFilter::default().with(Dim::ProjectCommit, &["aaaaaaa"]),
            SideFilter::default().with(Dim::Kernel, &["6.1"]),
            SideFilter::default(),
        ] {
            let (clause, params) = where_clause(&scope, &f).unwrap();
            let sql = format!("EXPLAIN QUERY PLAN {}", side_sql(&clause));
            let mut stmt = wh.conn().prepare(&sql).unwrap();
            let plan: Vec<String> = stmt
                .query_map(params_from_iter(params.iter()), |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let main: Vec<&String> = plan
                .iter()
                .filter(|l| l.starts_with("SCAN s") || l.starts_with("SEARCH s"))
                .collect();
            assert!(!main.is_empty(), "{plan:?}");
            for line in main {
                assert!(
                    line.contains("USING INDEX") || line.contains("USING COVERING INDEX"),
                    "{f:?}: {plan:?}"
                );
            }
            first_plan.get_or_insert(plan);
        }
        // The common A/B-branch query is served by V2's composite index.
        assert!(first_plan.unwrap()[0].contains("ingested_sidecar_compare_by_project_commit"));
    }
}
