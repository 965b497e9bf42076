//! Write stage: parsed files become rows, one `BEGIN IMMEDIATE` transaction per batch.
//!
//! Each [`ParsedFile`] gets a `source_file` record ([`FileStatus`]); a parsed sidecar whose
//! content is new also gets its `ingested_sidecar` row, its stored document, its flags, its
//! dimension values and its unregistered metrics. The INSERT of the row is generated from the
//! registry, so its metric columns are [`METRICS`] in order. Not here: which files to read
//! ([`super::walk`]) or how they are parsed ([`super::parse`]).

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{ToSql, Transaction, TransactionBehavior, params};

use super::super::file_status::FileStatus;
use super::super::incremental::{FileStat, Plan};
use super::super::open::Warehouse;
use super::parse::{HostKey, Outcome, ParsedDoc, ParsedFile, RowData};
use super::{FileProblem, IN_PROGRESS_GRACE, IngestError, IngestReport};
use crate::dimension::Dim;
use crate::metric::METRICS;
use crate::sidecar::read::{ReadError, ReadErrorKind};
use crate::timefmt;

/// The `ingested_sidecar` columns bound before the registry metrics, in bind order (see
/// [`Writer::insert_row`]).
const ROW_COLUMNS: [&str; 26] = [
    "content_hash",
    "root_id",
    "run_dir",
    "job_dir",
    "path",
    "test_name",
    "topology",
    "scheduler",
    "work_type",
    "flags",
    "payload",
    "kernel_version",
    "kernel_commit",
    "project_commit",
    "run_source",
    "scheduler_commit",
    "project_commit_id",
    "dirty_fingerprint",
    "run_token",
    "backend",
    "passed",
    "skipped",
    "run_id",
    "timestamp",
    "host_id",
    "ingested_at",
];

/// Columns later migrations appended after the metric columns (V6's `repeat`), in table
/// order.
const APPENDED_COLUMNS: [&str; 1] = ["repeat"];

/// `INSERT INTO ingested_sidecar`: [`ROW_COLUMNS`], every registry metric, then
/// [`APPENDED_COLUMNS`], each bound to the parameter at its position; changes no row when the
/// content is known. (No `RETURNING`: SQLite gathers returned rows in a temporary table, which
/// cost the writer thread more than reading `last_insert_rowid`.)
fn insert_sidecar_sql() -> String {
    let columns: Vec<&str> = ROW_COLUMNS
        .into_iter()
        .chain(METRICS.iter().map(|m| m.name))
        .chain(APPENDED_COLUMNS)
        .collect();
    let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO ingested_sidecar ({}) VALUES ({}) ON CONFLICT (content_hash) DO NOTHING",
        columns.join(", "),
        marks.join(", ")
    )
}

static INSERT_SIDECAR: LazyLock<String> = LazyLock::new(insert_sidecar_sql);

/// What one file's `source_file` record says.
struct FileRecord {
    status: FileStatus,
    hash: Option<[u8; 32]>,
    sidecar_id: Option<i64>,
    error: Option<String>,
}

/// Inserts batches; caches ids that repeat across a whole run. The caches are keyed so a
/// lookup borrows the parsed value: the writer thread allocates nothing for a known one.
pub(super) struct Writer {
    root_id: i64,
    /// metric_id by origin, then name.
    metric_ids: HashMap<&'static str, HashMap<String, i64>>,
    host_ids: HashMap<[u8; 32], i64>,
    /// `dimension_value` rows this ingest has already made sure of, by dimension.
    dim_values: HashMap<Dim, KnownValues>,
}

/// The values of one dimension already in `dimension_value`.
#[derive(Default)]
struct KnownValues {
    values: HashSet<String>,
    null: bool,
}

impl KnownValues {
    fn contains(&self, value: Option<&str>) -> bool {
        value.map_or(self.null, |v| self.values.contains(v))
    }

    fn insert(&mut self, value: Option<&str>) {
        match value {
            Some(v) => drop(self.values.insert(v.to_string())),
            None => self.null = true,
        }
    }
}

impl Writer {
    pub fn new(root_id: i64) -> Self {
        Writer {
            root_id,
            metric_ids: HashMap::new(),
            host_ids: HashMap::new(),
            dim_values: HashMap::new(),
        }
    }

    /// Record every file of one batch, in one transaction.
    pub fn write_batch(
        &mut self,
        wh: &mut Warehouse,
        batch: Vec<ParsedFile>,
        report: &mut IngestReport,
    ) -> Result<(), IngestError> {
        let now = timefmt::now_iso8601();
        let now_system = SystemTime::now();
        let tx = wh.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for ParsedFile { stat, outcome } in batch {
            let record = match outcome {
                Outcome::Doc(doc) => {
                    let (id, inserted) = self.insert_sidecar(&tx, &doc, &now)?;
                    let status = if inserted {
                        report.new_sidecars += 1;
                        FileStatus::Ingested
                    } else {
                        report.duplicates += 1;
                        FileStatus::Duplicate
                    };
                    FileRecord { status, hash: Some(doc.hash), sidecar_id: Some(id), error: None }
                }
                Outcome::Failed { error, hash } => failed(&stat, error, hash, now_system, report),
            };
            self.record_file(&tx, &stat, &record, &now)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn record_file(
        &self,
        tx: &Transaction<'_>,
        stat: &FileStat,
        record: &FileRecord,
        now: &str,
    ) -> Result<(), IngestError> {
        tx.prepare_cached(
            "INSERT INTO source_file (root_id, rel_path, size, mtime_ns, status, content_hash, \
             sidecar_id, error, present, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9) \
             ON CONFLICT (root_id, rel_path) DO UPDATE SET size = excluded.size, \
             mtime_ns = excluded.mtime_ns, status = excluded.status, \
             content_hash = excluded.content_hash, sidecar_id = excluded.sidecar_id, \
             error = excluded.error, present = 1, last_seen = excluded.last_seen",
        )?
        .execute(params![
            self.root_id,
            stat.rel_path,
            stat.size,
            stat.mtime_ns,
            record.status,
            record.hash.as_ref().map(|h| &h[..]),
            record.sidecar_id,
            record.error,
            now
        ])?;
        Ok(())
    }

    /// Returns the sidecar id and whether this call inserted it.
    fn insert_sidecar(
        &mut self,
        tx: &Transaction<'_>,
        doc: &ParsedDoc,
        now: &str,
    ) -> Result<(i64, bool), IngestError> {
        let Some(id) = self.insert_row(tx, doc, now)? else {
            let id = tx
                .prepare_cached("SELECT sidecar_id FROM ingested_sidecar WHERE content_hash = ?1")?
                .query_row([&doc.hash[..]], |r| r.get(0))?;
            return Ok((id, false));
        };
        let document = &doc.document;
        tx.prepare_cached(
            "INSERT INTO sidecar_document (sidecar_id, codec, dict_id, document) \
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![id, document.codec, document.dict_id, document.bytes])?;
        let mut flag_stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO sidecar_flag (sidecar_id, flag) VALUES (?1, ?2)",
        )?;
        for flag in &doc.row.flags {
            flag_stmt.execute(params![id, flag])?;
        }
        self.dimension_values(tx, &doc.row)?;
        for (origin, name, value) in &doc.row.other_metrics {
            let metric_id = self.metric_id(tx, origin, name)?;
            // An upsert, not `INSERT OR REPLACE` (the same row either way: the last value of
            // a repeated name wins). REPLACE may delete a row first, so SQLite opened a
            // statement journal for each one and copied every page it touched there: a tenth
            // of the writer thread's instructions (callgrind).
            tx.prepare_cached(
                "INSERT INTO metric_value (sidecar_id, metric_id, value) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (sidecar_id, metric_id) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![id, metric_id, value])?;
        }
        Ok((id, true))
    }

    /// The `ingested_sidecar` row; `None` when a sidecar with this content already exists.
    fn insert_row(
        &mut self,
        tx: &Transaction<'_>,
        doc: &ParsedDoc,
        now: &str,
    ) -> Result<Option<i64>, IngestError> {
        let host_id = match &doc.host {
            Some(key) => Some(self.host_id(tx, key)?),
            None => None,
        };
        let (hash, row) = (&doc.hash[..], &doc.row);
        let fixed: [&dyn ToSql; ROW_COLUMNS.len()] = [
            &hash,
            &self.root_id,
            &row.run_dir,
            &row.job_dir,
            &row.path,
            &row.test_name,
            &row.topology,
            &row.scheduler,
            &row.work_type,
            &row.flags_json,
            &row.payload,
            &row.kernel_version,
            &row.kernel_commit,
            &row.project_commit,
            &row.run_source,
            &row.scheduler_commit,
            &row.project_commit_id,
            &row.dirty_fingerprint,
            &row.run_token,
            &row.backend,
            &row.passed,
            &row.skipped,
            &row.run_id,
            &row.timestamp,
            &host_id,
            &now,
        ];
        let metrics = row.metrics.iter().map(|m| m as &dyn ToSql);
        let appended: [&dyn ToSql; APPENDED_COLUMNS.len()] = [&row.repeat];
        let changed = tx.prepare_cached(&INSERT_SIDECAR)?.execute(rusqlite::params_from_iter(
            fixed.into_iter().chain(metrics).chain(appended),
        ))?;
        Ok((changed == 1).then(|| tx.last_insert_rowid()))
    }

    /// Record the sidecar's value of every filterable dimension in `dimension_value`, touching
    /// the database only for values this ingest has not seen yet.
    fn dimension_values(&mut self, tx: &Transaction<'_>, doc: &RowData) -> Result<(), IngestError> {
        let single: [(Dim, Option<&str>); 7] = [
            (Dim::Kernel, doc.kernel_version.as_deref()),
            (Dim::ProjectCommit, doc.project_commit.as_deref()),
            (Dim::KernelCommit, doc.kernel_commit.as_deref()),
            (Dim::RunSource, doc.run_source.as_deref()),
            (Dim::Scheduler, Some(&doc.scheduler)),
            (Dim::Topology, Some(&doc.topology)),
            (Dim::WorkType, Some(&doc.work_type)),
        ];
        let flags = doc.flags.iter().map(|f| (Dim::Flags, Some(f.as_str())));
        for (dim, value) in single.into_iter().chain(flags) {
            let known = self.dim_values.entry(dim).or_default();
            if known.contains(value) {
                continue;
            }
            match value {
                Some(v) => tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO dimension_value (dim, value) VALUES (?1, ?2)",
                    )?
                    .execute(params![dim.label(), v])?,
                // UNIQUE does not merge NULLs; transactions are IMMEDIATE, so this
                // check-then-insert cannot race another ingest.
                None => tx
                    .prepare_cached(
                        "INSERT INTO dimension_value (dim, value) SELECT ?1, NULL WHERE NOT \
                         EXISTS (SELECT 1 FROM dimension_value WHERE dim = ?1 AND value IS NULL)",
                    )?
                    .execute(params![dim.label()])?,
            };
            known.insert(value);
        }
        Ok(())
    }

    fn host_id(&mut self, tx: &Transaction<'_>, key: &HostKey) -> Result<i64, IngestError> {
        let HostKey { hash, json, arch, kernel_release, cpu_model, online_cpus } = key;
        if let Some(id) = self.host_ids.get(hash) {
            return Ok(*id);
        }
        tx.prepare_cached(
            "INSERT OR IGNORE INTO host_context (content_hash, arch, kernel_release, cpu_model, \
             online_cpus, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            &hash[..],
            arch,
            kernel_release,
            cpu_model,
            online_cpus,
            json
        ])?;
        let id = tx
            .prepare_cached("SELECT host_id FROM host_context WHERE content_hash = ?1")?
            .query_row([&hash[..]], |r| r.get(0))?;
        self.host_ids.insert(*hash, id);
        Ok(id)
    }

    fn metric_id(
        &mut self,
        tx: &Transaction<'_>,
        origin: &'static str,
        name: &str,
    ) -> Result<i64, IngestError> {
        if let Some(id) = self.metric_ids.get(origin).and_then(|ids| ids.get(name)) {
            return Ok(*id);
        }
        tx.prepare_cached("INSERT OR IGNORE INTO metric (origin, name) VALUES (?1, ?2)")?
            .execute(params![origin, name])?;
        let id = tx
            .prepare_cached("SELECT metric_id FROM metric WHERE origin = ?1 AND name = ?2")?
            .query_row(params![origin, name], |r| r.get(0))?;
        self.metric_ids.entry(origin).or_default().insert(name.to_string(), id);
        Ok(id)
    }
}

/// A file that could not be used: a problem for the report, and `pending` (read again next
/// time) when it is probably still being written or could not be opened for a reason that
/// says nothing about its content (permission denied), else `corrupt`.
fn failed(
    stat: &FileStat,
    error: ReadError,
    hash: Option<[u8; 32]>,
    now: SystemTime,
    report: &mut IngestReport,
) -> FileRecord {
    let age = UNIX_EPOCH + Duration::from_nanos(stat.mtime_ns.max(0) as u64);
    let young = now.duration_since(age).map_or(true, |d| d < IN_PROGRESS_GRACE);
    let transient = matches!(error.kind, ReadErrorKind::PermissionDenied(_));
    let will_retry = (error.kind.may_be_in_progress() && young) || transient;
    report.problems.push(FileProblem {
        path: stat.path.clone(),
        kind: error.kind.label(),
        reason: error.kind.to_string(),
        will_retry,
    });
    let status = if will_retry { FileStatus::Pending } else { FileStatus::Corrupt };
    FileRecord { status, hash, sidecar_id: None, error: Some(error.kind.to_string()) }
}

/// After the last batch: mark the files the walk no longer found (and those found again), and
/// settle the run directories the plan examined, in one transaction.
pub(super) fn record_presence(
    wh: &mut Warehouse,
    root_id: i64,
    plan: &Plan,
) -> Result<(), IngestError> {
    let tx = wh.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let now = timefmt::now_iso8601();
        let mut gone = tx.prepare_cached(
            "UPDATE source_file SET present = 0, last_seen = ?3 WHERE root_id = ?1 AND rel_path = ?2",
        )?;
        for rel in &plan.vanished {
            gone.execute(params![root_id, rel, now])?;
        }
        let mut back = tx.prepare_cached(
            "UPDATE source_file SET present = 1, last_seen = ?3 WHERE root_id = ?1 AND rel_path = ?2",
        )?;
        for rel in &plan.reappeared {
            back.execute(params![root_id, rel, now])?;
        }
    }
    plan.settle(&tx, root_id)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sidecar::SidecarResult;
    use crate::sidecar::model::{MonitorSummary, ScxEventDeltas};
    use crate::warehouse::registry_schema::ingested_sidecar_columns;

    /// The generated INSERT names every column of `ingested_sidecar` but its id, each once
    /// and in table order, with one parameter per column.
    #[test]
    fn the_generated_insert_binds_every_column_of_the_table() {
        let wh = Warehouse::open_in_memory().unwrap();
        let sql = insert_sidecar_sql();
        let list = sql.split_once('(').unwrap().1.split_once(')').unwrap().0;
        let named: Vec<&str> = list.split(", ").collect();
        let table = ingested_sidecar_columns(wh.conn());
        assert_eq!(table[0], "sidecar_id");
        assert_eq!(named, table[1..]);
        let stmt = wh.conn().prepare(&sql).unwrap();
        assert_eq!(
            stmt.parameter_count(),
            ROW_COLUMNS.len() + METRICS.len() + APPENDED_COLUMNS.len()
        );
        assert_eq!(stmt.parameter_count(), named.len());
    }

    /// Every registry metric reaches its own column: values chosen pairwise distinct, so a
    /// parameter bound to the wrong column would show.
    #[test]
    fn each_registry_metric_is_stored_in_its_own_column() {
        let mut s = SidecarResult::empty("t");
        let st = &mut s.stats;
        (st.worst_spread, st.worst_gap_ms, st.total_migrations) = (1.5, 2, 3);
        (st.worst_migration_ratio, st.worst_p99_wake_latency_us) = (4.5, 10.5);
        (st.worst_median_wake_latency_us, st.worst_wake_latency_cv) = (11.5, 12.5);
        (st.total_iterations, st.worst_mean_run_delay_us, st.worst_run_delay_us) = (13, 14.5, 15.5);
        (st.worst_wake_latency_tail_ratio, st.worst_iterations_per_worker) = (16.5, 17.5);
        (st.worst_page_locality, st.worst_cross_node_migration_ratio) = (18.5, 19.5);
        let mut deltas = ScxEventDeltas::default();
        (deltas.total_fallback, deltas.total_dispatch_keep_last) = (8, 9);
        let mut monitor = MonitorSummary::default();
        (monitor.max_imbalance_ratio, monitor.max_local_dsq_depth) = (5.5, 6);
        (monitor.stall_detected, monitor.event_deltas) = (true, Some(deltas));
        s.monitor = Some(monitor);
        let want: Vec<f64> = METRICS.iter().map(|m| (m.extract)(&s)).collect();
        let mut distinct = want.clone();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        assert_eq!(distinct.len(), METRICS.len(), "{want:?}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("run")).unwrap();
        std::fs::write(dir.path().join("run/t.ktstr.json"), s.to_json_pretty()).unwrap();
        let mut wh = Warehouse::open_in_memory().unwrap();
        super::super::ingest_root(&mut wh, dir.path(), None).unwrap();
        let names: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
        let got: Vec<f64> = wh
            .conn()
            .query_row(&format!("SELECT {} FROM ingested_sidecar", names.join(", ")), [], |r| {
                (0..names.len()).map(|i| r.get(i)).collect()
            })
            .unwrap();
        assert_eq!(got, want);
    }

    /// A payload that reports one metric name twice stores one value, the last one (what
    /// `INSERT OR REPLACE` stored before the upsert replaced it).
    #[test]
    fn a_repeated_metric_name_keeps_its_last_value() {
        use crate::sidecar::model::{Metric, MetricSource, MetricStream, PayloadMetrics, Polarity};
        let metric = |value| Metric {
            name: "ops".into(),
            value,
            polarity: Polarity::HigherBetter,
            unit: String::new(),
            source: MetricSource::Json,
            stream: MetricStream::Stdout,
        };
        let mut s = SidecarResult::empty("t");
        s.metrics = vec![PayloadMetrics {
            payload_index: 0,
            metrics: vec![metric(1.0), metric(2.0)],
            exit_code: 0,
        }];
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("run")).unwrap();
        std::fs::write(dir.path().join("run/t.ktstr.json"), s.to_json_pretty()).unwrap();
        let mut wh = Warehouse::open_in_memory().unwrap();
        let report = super::super::ingest_root(&mut wh, dir.path(), None).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let values: Vec<f64> = wh
            .conn()
            .prepare("SELECT value FROM sample WHERE metric_origin = 'payload' AND metric = 'ops'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(values, [2.0]);
    }
}
