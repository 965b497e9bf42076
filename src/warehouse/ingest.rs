//! Ingest: a runs root's sidecar files become warehouse rows.
//!
//! The walk is the reference's pool walk ([`crate::sidecar::read::pool_sidecar_paths`]).
//! Each file is then handled by what the warehouse already knows about its path:
//! - same size and mtime as last time → skipped after a `stat` (an unchanged tree costs a walk);
//! - new or changed → read, hashed (blake3) and parsed in parallel (rayon) while the previous
//!   batch is inserted, one transaction per batch;
//! - its content already stored (same hash: a re-ingest, a copy, a move) → only the path is
//!   recorded, never a second sample;
//! - gone since last time (pre-cleared by a newer run) → marked not present; its rows stay, so
//!   the warehouse keeps history.
//!
//! # Failure handling
//! A file that cannot be read or parsed never stops the batch: it is recorded with its reason
//! in [`IngestReport::problems`]. An empty or truncated file younger than
//! [`IN_PROGRESS_GRACE`] is probably still being written; it is recorded as `pending` and
//! read again by the next ingest instead of being marked corrupt forever. A corrupt file is
//! read again only when its size or mtime changes.
//!
//! # Locking
//! Writes use `BEGIN IMMEDIATE` transactions, so two concurrent ingests serialize per batch
//! (the busy timeout in [`super::open`] makes the second wait); the unique content hash makes
//! the loser's inserts no-ops. A process killed mid-ingest leaves only whole batches behind,
//! and the next ingest picks up the rest because their paths are not recorded yet.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;

use super::document::{Compressor, DocumentEncoder, EncodedDocument};
use super::incremental::{self, FileStat};
use super::open::Warehouse;
use crate::metric::METRICS;
use crate::sidecar::SidecarResult;
use crate::sidecar::read::{ReadError, parse_bytes, read_bytes};
use crate::timefmt;

/// An empty or truncated file modified less than this long ago is assumed to be mid-write.
pub const IN_PROGRESS_GRACE: Duration = Duration::from_secs(60);

/// Files handled per transaction. Large enough to amortize the commit, small enough that a
/// killed ingest loses little work and a concurrent reader is not starved.
const BATCH_SIZE: usize = 2000;

/// Why ingest could not run at all (per-file problems are in the report instead).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(
        "runs root {} does not exist; run `cargo ktstr test` to create results, or pass --dir \
         to point at a sidecar tree",
        path.display()
    )]
    RootMissing { path: PathBuf },
    #[error("cannot resolve runs root {}: {source}", path.display())]
    Root {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing to the warehouse failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// A file ingest could not use.
#[derive(Debug, Clone, Serialize)]
pub struct FileProblem {
    pub path: PathBuf,
    /// Stable label: `truncated`, `not-json`, `missing-field`, …
    pub kind: &'static str,
    pub reason: String,
    /// True when the file will be read again by the next ingest (probably mid-write).
    pub will_retry: bool,
}

/// What one ingest did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    pub root: PathBuf,
    /// Sidecar files found by the walk.
    pub files_seen: usize,
    /// Files skipped because their size and mtime were unchanged.
    pub unchanged: usize,
    /// Files read and parsed this time.
    pub parsed: usize,
    /// New sidecars added to the warehouse.
    pub new_sidecars: usize,
    /// Files whose content the warehouse already had (re-ingest, copy or move).
    pub duplicates: usize,
    /// Files that failed this time.
    pub problems: Vec<FileProblem>,
    /// Unchanged files already known to be corrupt (reported when first seen).
    pub known_corrupt: usize,
    /// Files recorded before that are gone now; their sidecars stay in the warehouse.
    pub vanished: usize,
    pub elapsed_ms: u64,
}

/// Progress callback: (files handled so far, files to handle).
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

enum Outcome {
    Doc { hash: [u8; 32], row: Box<RowData>, document: EncodedDocument, host: Option<HostKey> },
    Failed { error: ReadError, hash: Option<[u8; 32]> },
}

/// A host context's canonical JSON, its hash and its indexed fields, computed on the parse
/// threads so the single writer thread only looks it up.
struct HostKey {
    hash: [u8; 32],
    json: String,
    arch: Option<String>,
    kernel_release: Option<String>,
    cpu_model: Option<String>,
    online_cpus: Option<i64>,
}

/// Everything the writer binds for one sidecar, extracted on the parse threads: the single
/// writer thread is the bottleneck of a cold ingest, so it neither walks nor frees the
/// parsed document.
struct RowData {
    test_name: String,
    topology: String,
    scheduler: String,
    work_type: String,
    flags_json: String,
    flags: Vec<String>,
    payload: Option<String>,
    kernel_version: Option<String>,
    kernel_commit: Option<String>,
    project_commit: Option<String>,
    run_source: Option<String>,
    scheduler_commit: Option<String>,
    project_commit_id: Option<String>,
    dirty_fingerprint: Option<String>,
    run_token: Option<String>,
    backend: Option<String>,
    passed: bool,
    skipped: bool,
    run_id: String,
    timestamp: String,
    metrics: [Option<f64>; METRICS.len()],
    other_metrics: Vec<(&'static str, String, Option<f64>)>,
}

impl RowData {
    fn of(mut doc: SidecarResult) -> RowData {
        use std::mem::take;
        let mut metrics = [None; METRICS.len()];
        for (slot, def) in metrics.iter_mut().zip(METRICS.iter()) {
            *slot = registry_value(&doc, def);
        }
        let other_metrics = other_metrics(&doc);
        let flags_json = serde_json::to_string(&doc.active_flags).unwrap_or_else(|_| "[]".into());
        let p = &mut doc.provenance;
        RowData {
            project_commit_id: take(&mut p.project_commit_id),
            dirty_fingerprint: take(&mut p.dirty_fingerprint),
            run_token: take(&mut p.run_token),
            backend: take(&mut p.backend),
            test_name: take(&mut doc.test_name),
            topology: take(&mut doc.topology),
            scheduler: take(&mut doc.scheduler),
            work_type: take(&mut doc.work_type),
            flags_json,
            flags: take(&mut doc.active_flags),
            payload: take(&mut doc.payload),
            kernel_version: take(&mut doc.kernel_version),
            kernel_commit: take(&mut doc.kernel_commit),
            project_commit: take(&mut doc.project_commit),
            run_source: take(&mut doc.run_source),
            scheduler_commit: take(&mut doc.scheduler_commit),
            passed: doc.passed,
            skipped: doc.skipped,
            run_id: take(&mut doc.run_id),
            timestamp: take(&mut doc.timestamp),
            metrics,
            other_metrics,
        }
    }
}

struct Parsed {
    stat: FileStat,
    outcome: Outcome,
}

/// Ingest every sidecar under `root` into `wh`.
pub fn ingest_root(
    wh: &mut Warehouse,
    root: &Path,
    progress: Option<Progress<'_>>,
) -> Result<IngestReport, IngestError> {
    let started = std::time::Instant::now();
    if !root.is_dir() {
        return Err(IngestError::RootMissing { path: root.to_path_buf() });
    }
    let root = fs::canonicalize(root)
        .map_err(|source| IngestError::Root { path: root.to_path_buf(), source })?;
    let mut report = IngestReport { root: root.clone(), ..Default::default() };

    let root_id = root_id(wh, &root)?;
    let mut plan = incremental::plan(&wh.conn, &root, root_id)?;
    report.files_seen = plan.files_seen;
    report.unchanged = plan.unchanged;
    report.known_corrupt = plan.known_corrupt;
    report.vanished = plan.vanished.len();
    report.problems.extend(plan.bad_names.iter().map(|path| {
        FileProblem {
            path: path.clone(),
            kind: "non-utf8-path",
            reason: "its path is not valid UTF-8, which the warehouse cannot record; rename the \
                 file or its run directory"
                .into(),
            will_retry: false,
        }
    }));
    if plan.is_no_op() {
        // No write transaction at all: the common case of a read command's ingest.
        return finish(wh, report, 0, started);
    }
    let todo = std::mem::take(&mut plan.todo);

    // Training reads samples and takes ~50 ms: done before taking the write lock.
    let existing = DocumentEncoder::newest(&wh.conn)?;
    let trained = match existing.dict_id() {
        Some(_) => None,
        None => {
            let candidates: Vec<&Path> = todo.iter().map(|s| s.path.as_path()).collect();
            DocumentEncoder::train(&wh.conn, &candidates)?
        }
    };
    let tx = wh.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    plan.unsettle(&tx, root_id)?;
    let encoder = match trained {
        Some(trained) => DocumentEncoder::store(&tx, trained)?,
        None => existing,
    };
    tx.commit()?;
    let total = todo.len();
    let mut done = 0usize;
    let mut writer = Writer::new(root_id);
    // Every commit would otherwise copy the WAL back into the database once it passed 1000
    // pages (each batch does): index pages dirtied by every batch were copied every time.
    // The pages are checkpointed once, after the last batch.
    wh.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // Parse batch k+1 on the rayon pool while this thread inserts batch k.
    let written = std::thread::scope(|scope| -> Result<(), IngestError> {
        let (tx, rx) = mpsc::sync_channel::<Vec<Parsed>>(1);
        let mut batches: Vec<Vec<FileStat>> = Vec::new();
        let mut it = todo.into_iter().peekable();
        while it.peek().is_some() {
            batches.push(it.by_ref().take(BATCH_SIZE).collect());
        }
        scope.spawn(move || {
            for batch in batches {
                let parsed: Vec<Parsed> = batch
                    .into_par_iter()
                    .map_init(|| encoder.compressor(), |c, stat| parse_file(stat, c))
                    .collect();
                if tx.send(parsed).is_err() {
                    break; // the writer failed and stopped listening
                }
            }
        });
        for batch in rx {
            done += batch.len();
            report.parsed += batch.len();
            writer.write_batch(wh, batch, &mut report)?;
            if let Some(p) = progress {
                p(done, total);
            }
        }
        Ok(())
    });
    // Restore the default even when a batch failed: the connection may live on (watch mode).
    wh.conn.pragma_update(None, "wal_autocheckpoint", 1000)?;
    written?;

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
    finish(wh, report, total, started)
}

fn finish(
    wh: &mut Warehouse,
    mut report: IngestReport,
    written: usize,
    started: std::time::Instant,
) -> Result<IngestReport, IngestError> {
    // PASSIVE: never waits for readers; what a reader still needs stays in the WAL.
    if written > 0 {
        wh.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

fn root_id(wh: &mut Warehouse, root: &Path) -> Result<i64, IngestError> {
    // A known root costs no write transaction (the common, incremental case).
    if let Some(id) = super::runs::root_id(wh, root)? {
        return Ok(id);
    }
    let path = root.to_string_lossy();
    let tx = wh.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute("INSERT OR IGNORE INTO runs_root (path) VALUES (?1)", [&path])?;
    let id =
        tx.query_row("SELECT root_id FROM runs_root WHERE path = ?1", [&path], |r| r.get(0))?;
    tx.commit()?;
    Ok(id)
}

fn parse_file(stat: FileStat, compressor: &mut Compressor<'_>) -> Parsed {
    let outcome = match read_bytes(&stat.path) {
        Err(error) => Outcome::Failed { error, hash: None },
        Ok(bytes) => {
            let hash = *blake3::hash(&bytes).as_bytes();
            match parse_bytes(&stat.path, &bytes) {
                Ok(doc) => {
                    let host = doc.host.as_ref().map(|h| {
                        let json = serde_json::to_string(h).unwrap_or_else(|_| "{}".into());
                        HostKey {
                            hash: *blake3::hash(json.as_bytes()).as_bytes(),
                            json,
                            arch: h.arch.clone(),
                            kernel_release: h.kernel_release.clone(),
                            cpu_model: h.cpu_model.clone(),
                            online_cpus: h.online_cpus.map(|n| n as i64),
                        }
                    });
                    Outcome::Doc {
                        hash,
                        row: Box::new(RowData::of(doc)),
                        document: compressor.encode(&bytes),
                        host,
                    }
                }
                Err(error) => Outcome::Failed { error, hash: Some(hash) },
            }
        }
    };
    Parsed { stat, outcome }
}

/// Inserts batches; caches ids that repeat across a whole run.
struct Writer {
    root_id: i64,
    metric_ids: HashMap<(&'static str, String), i64>,
    host_ids: HashMap<[u8; 32], i64>,
    /// `dimension_value` rows this ingest has already made sure of.
    dim_values: HashSet<(&'static str, Option<String>)>,
}

const INSERT_SIDECAR: &str = concat!(
    "INSERT INTO ingested_sidecar (content_hash, root_id, run_dir, job_dir, path, test_name, ",
    "topology, scheduler, work_type, flags, payload, kernel_version, kernel_commit, ",
    "project_commit, run_source, scheduler_commit, project_commit_id, dirty_fingerprint, ",
    "run_token, backend, passed, skipped, run_id, timestamp, host_id, ingested_at, ",
    "worst_spread, worst_gap_ms, total_migrations, worst_migration_ratio, max_imbalance_ratio, ",
    "max_dsq_depth, stall_count, total_fallback, total_keep_last, worst_p99_wake_latency_us, ",
    "worst_median_wake_latency_us, worst_wake_latency_cv, total_iterations, ",
    "worst_mean_run_delay_us, worst_run_delay_us, worst_wake_latency_tail_ratio, ",
    "worst_iterations_per_worker, worst_page_locality, worst_cross_node_migration_ratio) ",
    "VALUES (",
    "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ",
    "?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35, ?36, ?37, ?38, ",
    "?39, ?40, ?41, ?42, ?43, ?44, ?45) ",
    "ON CONFLICT (content_hash) DO NOTHING RETURNING sidecar_id"
);

impl Writer {
    fn new(root_id: i64) -> Self {
        Writer {
            root_id,
            metric_ids: HashMap::new(),
            host_ids: HashMap::new(),
            dim_values: HashSet::new(),
        }
    }

    fn write_batch(
        &mut self,
        wh: &mut Warehouse,
        batch: Vec<Parsed>,
        report: &mut IngestReport,
    ) -> Result<(), IngestError> {
        let now = timefmt::now_iso8601();
        let now_system = SystemTime::now();
        let tx = wh.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for parsed in batch {
            let Parsed { stat, outcome } = parsed;
            let (status, hash, sidecar_id, error) = match outcome {
                Outcome::Doc { hash, row, document, host } => {
                    let (id, inserted) = self.insert_sidecar(
                        &tx,
                        &stat,
                        &hash,
                        &row,
                        host.as_ref(),
                        &document,
                        &now,
                    )?;
                    if inserted {
                        report.new_sidecars += 1;
                        ("ingested", Some(hash), Some(id), None)
                    } else {
                        report.duplicates += 1;
                        ("duplicate", Some(hash), Some(id), None)
                    }
                }
                Outcome::Failed { error, hash } => {
                    let age = UNIX_EPOCH + Duration::from_nanos(stat.mtime_ns.max(0) as u64);
                    let young =
                        now_system.duration_since(age).map_or(true, |d| d < IN_PROGRESS_GRACE);
                    let will_retry = error.kind.may_be_in_progress() && young;
                    report.problems.push(FileProblem {
                        path: stat.path.clone(),
                        kind: error.kind.label(),
                        reason: error.kind.to_string(),
                        will_retry,
                    });
                    let status = if will_retry { "pending" } else { "corrupt" };
                    (status, hash, None, Some(error.kind.to_string()))
                }
            };
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
                status,
                hash.as_ref().map(|h| &h[..]),
                sidecar_id,
                error,
                now
            ])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Returns the sidecar id and whether this call inserted it.
    #[expect(clippy::too_many_arguments, reason = "the parts of one parsed file, kept unboxed")]
    fn insert_sidecar(
        &mut self,
        tx: &Transaction<'_>,
        stat: &FileStat,
        hash: &[u8; 32],
        doc: &RowData,
        host: Option<&HostKey>,
        document: &EncodedDocument,
        now: &str,
    ) -> Result<(i64, bool), IngestError> {
        let mut parts = stat.rel_path.split('/');
        let run_dir = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        let job_dir = if rest.len() > 1 { Some(rest[0]) } else { None };
        let host_id = match host {
            Some(key) => Some(self.host_id(tx, key)?),
            None => None,
        };
        let m = &doc.metrics;
        let inserted: Option<i64> = tx
            .prepare_cached(INSERT_SIDECAR)?
            .query_row(
                params![
                    &hash[..],
                    self.root_id,
                    run_dir,
                    job_dir,
                    stat.path.to_string_lossy(),
                    doc.test_name,
                    doc.topology,
                    doc.scheduler,
                    doc.work_type,
                    doc.flags_json,
                    doc.payload,
                    doc.kernel_version,
                    doc.kernel_commit,
                    doc.project_commit,
                    doc.run_source,
                    doc.scheduler_commit,
                    doc.project_commit_id,
                    doc.dirty_fingerprint,
                    doc.run_token,
                    doc.backend,
                    doc.passed,
                    doc.skipped,
                    doc.run_id,
                    doc.timestamp,
                    host_id,
                    now,
                    m[0],
                    m[1],
                    m[2],
                    m[3],
                    m[4],
                    m[5],
                    m[6],
                    m[7],
                    m[8],
                    m[9],
                    m[10],
                    m[11],
                    m[12],
                    m[13],
                    m[14],
                    m[15],
                    m[16],
                    m[17],
                    m[18],
                ],
                |r| r.get(0),
            )
            .optional()?;
        let Some(id) = inserted else {
            let id = tx
                .prepare_cached("SELECT sidecar_id FROM ingested_sidecar WHERE content_hash = ?1")?
                .query_row([&hash[..]], |r| r.get(0))?;
            return Ok((id, false));
        };
        tx.prepare_cached(
            "INSERT INTO sidecar_document (sidecar_id, codec, dict_id, document) \
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![id, document.codec, document.dict_id, document.bytes])?;
        let mut flag_stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO sidecar_flag (sidecar_id, flag) VALUES (?1, ?2)",
        )?;
        for flag in &doc.flags {
            flag_stmt.execute(params![id, flag])?;
        }
        self.dimension_values(tx, doc)?;
        for (origin, name, value) in &doc.other_metrics {
            let metric_id = self.metric_id(tx, origin, name)?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO metric_value (sidecar_id, metric_id, value) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![id, metric_id, value])?;
        }
        Ok((id, true))
    }

    /// Record the sidecar's value of every filterable dimension in `dimension_value`, touching
    /// the database only for values this ingest has not seen yet.
    fn dimension_values(&mut self, tx: &Transaction<'_>, doc: &RowData) -> Result<(), IngestError> {
        let single: [(&'static str, Option<&str>); 7] = [
            ("kernel", doc.kernel_version.as_deref()),
            ("commit", doc.project_commit.as_deref()),
            ("kernel_commit", doc.kernel_commit.as_deref()),
            ("source", doc.run_source.as_deref()),
            ("scheduler", Some(&doc.scheduler)),
            ("topology", Some(&doc.topology)),
            ("work_type", Some(&doc.work_type)),
        ];
        let flags = doc.flags.iter().map(|f| ("flags", Some(f.as_str())));
        for (dim, value) in single.into_iter().chain(flags) {
            let key = (dim, value.map(str::to_string));
            if self.dim_values.contains(&key) {
                continue;
            }
            match value {
                Some(v) => tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO dimension_value (dim, value) VALUES (?1, ?2)",
                    )?
                    .execute(params![dim, v])?,
                // UNIQUE does not merge NULLs; transactions are IMMEDIATE, so this
                // check-then-insert cannot race another ingest.
                None => tx
                    .prepare_cached(
                        "INSERT INTO dimension_value (dim, value) SELECT ?1, NULL WHERE NOT \
                         EXISTS (SELECT 1 FROM dimension_value WHERE dim = ?1 AND value IS NULL)",
                    )?
                    .execute(params![dim])?,
            };
            self.dim_values.insert(key);
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
        if let Some(id) = self.metric_ids.get(&(origin, name.to_string())) {
            return Ok(*id);
        }
        tx.prepare_cached("INSERT OR IGNORE INTO metric (origin, name) VALUES (?1, ?2)")?
            .execute(params![origin, name])?;
        let id = tx
            .prepare_cached("SELECT metric_id FROM metric WHERE origin = ?1 AND name = ?2")?
            .query_row(params![origin, name], |r| r.get(0))?;
        self.metric_ids.insert((origin, name.to_string()), id);
        Ok(id)
    }
}

/// A registry metric's stored value: `None` when it was not finite or the writer recorded
/// that it had to replace a non-finite value (so a made-up 0.0 never becomes a sample).
fn registry_value(doc: &SidecarResult, def: &crate::metric::MetricDef) -> Option<f64> {
    let v = (def.extract)(doc);
    let replaced =
        doc.provenance.non_finite_fields.iter().any(|p| {
            p.strip_prefix("stats.").or_else(|| p.strip_prefix("monitor.")) == Some(def.name)
        });
    (v.is_finite() && !replaced).then_some(v)
}

/// Metrics the registry does not know: scenario `ext_metrics` (origin `ext`) and payload
/// metrics (origin `payload`; `name@i` for the i-th payload invocation when i > 0).
fn other_metrics(doc: &SidecarResult) -> Vec<(&'static str, String, Option<f64>)> {
    let mut out: Vec<(&'static str, String, Option<f64>)> = doc
        .stats
        .ext_metrics
        .iter()
        .map(|(k, v)| ("ext", k.clone(), v.is_finite().then_some(*v)))
        .collect();
    for pm in &doc.metrics {
        for m in &pm.metrics {
            let name = if pm.payload_index == 0 {
                m.name.clone()
            } else {
                format!("{}@{}", m.name, pm.payload_index)
            };
            out.push(("payload", name, m.value.is_finite().then_some(m.value)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sidecar(test: &str, commit: &str, iterations: u64) -> String {
        let mut s = SidecarResult::empty(test);
        s.project_commit = Some(commit.into());
        s.kernel_version = Some("6.14.2".into());
        s.active_flags = vec!["llc".into(), "steal".into()];
        s.stats.total_iterations = iterations;
        s.stats.worst_spread = 3.5;
        s.stats.ext_metrics.insert("custom_rate".into(), 42.0);
        s.timestamp = "2026-04-27T09:15:02Z".into();
        s.run_id = "20260427T091455Z-0".into();
        s.to_json_pretty()
    }

    fn write(root: &Path, rel: &str, body: &str) -> PathBuf {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, body).unwrap();
        path
    }

    fn count(wh: &Warehouse, sql: &str) -> i64 {
        wh.conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn ingest_is_idempotent_and_incremental() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "6.14.2-abc1234/a-1.ktstr.json", &sidecar("a", "abc1234", 1000));
        write(root, "6.14.2-abc1234/b-2.ktstr.json", &sidecar("b", "abc1234", 2000));
        write(root, "6.14.2-abc1234/job-1/c-3.ktstr.json", &sidecar("c", "abc1234", 3000));
        write(root, "6.14.2-abc1234/job-1/deep/d-4.ktstr.json", &sidecar("d", "abc1234", 1));
        write(root, "6.14.2-abc1234/notes.json", "{}");
        write(root, "top-level.ktstr.json", &sidecar("e", "abc1234", 1));
        let mut wh = Warehouse::open_in_memory().unwrap();

        let first = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!((first.files_seen, first.new_sidecars, first.unchanged), (3, 3, 0));
        assert!(first.problems.is_empty());
        assert_eq!(count(&wh, "SELECT count(*) FROM sidecar"), 3);
        assert_eq!(count(&wh, "SELECT count(*) FROM sidecar_flag"), 6);
        assert_eq!(
            count(
                &wh,
                "SELECT CAST(total_iterations AS INTEGER) FROM ingested_sidecar WHERE test_name = 'c'"
            ),
            3000
        );
        assert_eq!(
            count(&wh, "SELECT count(*) FROM sample WHERE metric = 'custom_rate' AND value = 42"),
            3
        );

        let second = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!((second.new_sidecars, second.unchanged, second.parsed), (0, 3, 0));
        assert_eq!(count(&wh, "SELECT count(*) FROM ingested_sidecar"), 3);
    }

    #[test]
    fn a_copied_or_moved_file_is_not_a_second_sample() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let body = sidecar("a", "abc1234", 1000);
        let original = write(root, "run-a/a-1.ktstr.json", &body);
        let mut wh = Warehouse::open_in_memory().unwrap();
        ingest_root(&mut wh, root, None).unwrap();
        write(root, "run-b/renamed.ktstr.json", &body);
        fs::remove_file(original).unwrap();
        let report = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!((report.new_sidecars, report.duplicates, report.vanished), (0, 1, 1));
        assert_eq!(count(&wh, "SELECT count(*) FROM ingested_sidecar"), 1);
    }

    #[test]
    fn pre_cleared_files_keep_their_rows_as_history() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let path = write(root, "6.14-abc1234/a-1.ktstr.json", &sidecar("a", "abc1234", 1000));
        let mut wh = Warehouse::open_in_memory().unwrap();
        ingest_root(&mut wh, root, None).unwrap();
        // A new run at the same commit overwrites the same file name with new results.
        fs::write(&path, sidecar("a", "abc1234", 1200)).unwrap();
        let later = SystemTime::now() + Duration::from_secs(5);
        fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
        let report = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!(report.new_sidecars, 1);
        assert_eq!(count(&wh, "SELECT count(*) FROM sidecar WHERE test_name = 'a'"), 2);
        fs::remove_file(&path).unwrap();
        let report = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!(report.vanished, 1);
        assert_eq!(count(&wh, "SELECT count(*) FROM sidecar"), 2);
        assert_eq!(count(&wh, "SELECT count(*) FROM sidecar WHERE present"), 0);
    }

    #[test]
    fn corrupt_files_are_reported_and_skipped_and_young_truncated_ones_retried() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "run/good-1.ktstr.json", &sidecar("good", "abc1234", 1000));
        write(root, "run/junk-2.ktstr.json", "this is not json");
        let body = sidecar("late", "abc1234", 1000);
        let partial = write(root, "run/late-3.ktstr.json", &body[..body.len() / 2]);
        let mut wh = Warehouse::open_in_memory().unwrap();
        let report = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!(report.new_sidecars, 1);
        let kinds: Vec<_> = report.problems.iter().map(|p| (p.kind, p.will_retry)).collect();
        assert_eq!(kinds, [("not-json", false), ("truncated", true)]);

        // The writer finishes; the next ingest picks the file up even though it was seen before.
        fs::write(&partial, &body).unwrap();
        let report = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!(report.new_sidecars, 1);
        assert_eq!(report.known_corrupt, 1);
        assert!(report.problems.is_empty());
    }

    /// (codec, dict_id, original bytes) of every stored document, in ingest order.
    fn stored(wh: &Warehouse) -> Vec<(String, Option<i64>, Vec<u8>)> {
        let mut stmt = wh
            .conn
            .prepare("SELECT codec, dict_id, document FROM sidecar_document ORDER BY sidecar_id")
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get::<_, Vec<u8>>(2)?)))
            .unwrap();
        rows.map(|r| {
            let (codec, dict_id, doc) = r.unwrap();
            let bytes = super::super::document::decode(&wh.conn, &codec, dict_id, &doc).unwrap();
            (codec, dict_id, bytes)
        })
        .collect()
    }

    #[test]
    fn the_original_bytes_are_kept_and_decode_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let body = sidecar("a", "abc1234", 1000);
        write(dir.path(), "run/a-1.ktstr.json", &body);
        let mut wh = Warehouse::open_in_memory().unwrap();
        ingest_root(&mut wh, dir.path(), None).unwrap();
        // One file is too few to train a dictionary on.
        assert_eq!(stored(&wh), [("zstd".to_string(), None, body.into_bytes())]);
    }

    #[test]
    fn small_ingests_train_a_dictionary_once_the_warehouse_holds_enough() {
        let dir = tempfile::tempdir().unwrap();
        let mut wh = Warehouse::open_in_memory().unwrap();
        let mut bodies = Vec::new();
        for round in 0..2 {
            for i in 0..40 {
                let body = sidecar(&format!("t{round}_{i:02}"), "abc1234", i);
                write(dir.path(), &format!("r{round}/t{i:02}-1.ktstr.json"), &body);
                bodies.push(body);
            }
            ingest_root(&mut wh, dir.path(), None).unwrap();
        }
        let docs = stored(&wh);
        // 40 are too few to train on; the second 40 train on themselves and the first 40.
        assert!(docs[..40].iter().all(|(_, dict_id, _)| dict_id.is_none()));
        assert!(docs[40..].iter().all(|(_, dict_id, _)| *dict_id == Some(1)));
        let originals: Vec<&[u8]> = docs.iter().map(|(_, _, b)| b.as_slice()).collect();
        let expected: Vec<&[u8]> = bodies.iter().map(|b| b.as_bytes()).collect();
        assert_eq!(originals, expected);
    }

    #[test]
    fn a_large_first_ingest_trains_the_dictionary_later_ingests_reuse() {
        let dir = tempfile::tempdir().unwrap();
        let bodies: Vec<String> =
            (0..80).map(|i| sidecar(&format!("t{i}"), "abc1234", 1000 + i)).collect();
        for (i, body) in bodies.iter().enumerate() {
            write(dir.path(), &format!("run/t{i}-1.ktstr.json"), body);
        }
        let mut wh = Warehouse::open_in_memory().unwrap();
        ingest_root(&mut wh, dir.path(), None).unwrap();
        let late = sidecar("late", "abc1234", 5000);
        write(dir.path(), "run2/late-1.ktstr.json", &late);
        ingest_root(&mut wh, dir.path(), None).unwrap();

        let docs = stored(&wh);
        assert_eq!(docs.len(), 81);
        assert!(docs.iter().all(|(codec, dict_id, _)| codec == "zstd" && *dict_id == Some(1)));
        let dictionaries: i64 = wh
            .conn
            .query_row("SELECT count(*) FROM document_dictionary", [], |r| r.get(0))
            .unwrap();
        assert_eq!(dictionaries, 1, "the second ingest reuses the first one's dictionary");
        let originals: Vec<&[u8]> = docs.iter().map(|(_, _, b)| b.as_slice()).collect();
        // Walk order: run/ sorted by name, then run2/.
        let mut expected: Vec<(String, &[u8])> =
            bodies.iter().enumerate().map(|(i, b)| (format!("t{i}-1"), b.as_bytes())).collect();
        expected.sort();
        let mut expected: Vec<&[u8]> = expected.into_iter().map(|(_, b)| b).collect();
        expected.push(late.as_bytes());
        assert_eq!(originals, expected);
    }

    #[test]
    fn a_missing_root_is_a_named_error() {
        let mut wh = Warehouse::open_in_memory().unwrap();
        let err = ingest_root(&mut wh, Path::new("/nonexistent/ktstr"), None).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ktstr does not exist"), "{err}");
    }
}
