//! Parse stage: a sidecar file becomes a [`ParsedFile`], the one value the write stage takes.
//!
//! Runs on the rayon pool. Everything the writer binds is extracted here (dimension values,
//! registry metrics, the host context's canonical JSON and hash, the compressed original):
//! the single writer thread is the bottleneck of a cold ingest, so it neither walks nor frees
//! the parsed document. Not here: which files to read ([`super::walk`]), SQL
//! ([`super::write`]).

use rayon::prelude::*;

use super::super::document::{Compressor, DocumentEncoder, EncodedDocument};
use super::super::incremental::FileStat;
use crate::metric::{METRICS, MetricDef};
use crate::sidecar::SidecarResult;
use crate::sidecar::model::HostContext;
use crate::sidecar::read::{ReadError, parse_bytes, read_bytes};

/// One file after the parse stage: what the walk found and what reading it gave.
pub(super) struct ParsedFile {
    pub stat: FileStat,
    pub outcome: Outcome,
}

pub(super) enum Outcome {
    Doc(Box<ParsedDoc>),
    Failed { error: ReadError, hash: Option<[u8; 32]> },
}

/// A sidecar that parsed: its content hash, its row, its stored document and its host.
pub(super) struct ParsedDoc {
    pub hash: [u8; 32],
    pub row: RowData,
    pub document: EncodedDocument,
    pub host: Option<HostKey>,
}

/// A host context's canonical JSON, its hash and its indexed fields.
#[derive(Clone)]
pub(super) struct HostKey {
    pub hash: [u8; 32],
    pub json: String,
    pub arch: Option<String>,
    pub kernel_release: Option<String>,
    pub cpu_model: Option<String>,
    pub online_cpus: Option<i64>,
}

/// The `ingested_sidecar` values of one sidecar, moved out of the parsed document.
pub(super) struct RowData {
    /// The file's run directory, job directory (`None` for a file directly in its run
    /// directory) and path, as the row stores them.
    pub run_dir: String,
    pub job_dir: Option<String>,
    pub path: String,
    pub test_name: String,
    pub topology: String,
    pub scheduler: String,
    pub work_type: String,
    pub flags_json: String,
    pub flags: Vec<String>,
    pub payload: Option<String>,
    pub kernel_version: Option<String>,
    pub kernel_commit: Option<String>,
    pub project_commit: Option<String>,
    pub run_source: Option<String>,
    pub scheduler_commit: Option<String>,
    pub project_commit_id: Option<String>,
    pub dirty_fingerprint: Option<String>,
    pub run_token: Option<String>,
    /// `provenance.repeat`: which repeat of its run; with `run_token`, an A/B pair.
    pub repeat: Option<u32>,
    pub backend: Option<String>,
    pub passed: bool,
    pub skipped: bool,
    pub run_id: String,
    pub timestamp: String,
    /// Registry metric values in [`METRICS`] order (see [`registry_value`]).
    pub metrics: [Option<f64>; METRICS.len()],
    /// (origin, name, value) of every metric the registry does not know.
    pub other_metrics: Vec<(&'static str, String, Option<f64>)>,
}

impl RowData {
    fn of(stat: &FileStat, mut doc: SidecarResult) -> RowData {
        use std::mem::take;
        let mut metrics = [None; METRICS.len()];
        for (slot, def) in metrics.iter_mut().zip(METRICS.iter()) {
            *slot = registry_value(&doc, def);
        }
        let other_metrics = other_metrics(&doc);
        let flags_json = serde_json::to_string(&doc.active_flags).unwrap_or_else(|_| "[]".into());
        let mut parts = stat.rel_path.split('/');
        let run_dir = parts.next().unwrap_or_default().to_string();
        let rest: Vec<&str> = parts.collect();
        let job_dir = (rest.len() > 1).then(|| rest[0].to_string());
        let p = &mut doc.provenance;
        RowData {
            run_dir,
            job_dir,
            path: stat.path.to_string_lossy().into_owned(),
            project_commit_id: take(&mut p.project_commit_id),
            dirty_fingerprint: take(&mut p.dirty_fingerprint),
            run_token: take(&mut p.run_token),
            repeat: p.repeat,
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

/// Read, hash, parse and compress one batch in parallel, keeping the batch's order.
pub(super) fn parse_batch(batch: Vec<FileStat>, encoder: &DocumentEncoder) -> Vec<ParsedFile> {
    batch
        .into_par_iter()
        .map_init(
            || ParseState { compressor: encoder.compressor(), last_host: None },
            |state, stat| parse_file(stat, state),
        )
        .collect()
}

/// What one rayon thread keeps between the files it parses.
struct ParseState<'a> {
    compressor: Compressor<'a>,
    /// The last host context this thread saw and its key: the files of a run share one host,
    /// and a thread parses neighbouring files, so most keys are this one again.
    last_host: Option<(HostContext, HostKey)>,
}

impl ParseState<'_> {
    /// The host's key, serialized and hashed only when it differs from the previous one (an
    /// equal context serializes to the same bytes).
    fn host_key(&mut self, host: &HostContext) -> HostKey {
        if let Some((last, key)) = &self.last_host
            && last == host
        {
            return key.clone();
        }
        let json = serde_json::to_string(host).unwrap_or_else(|_| "{}".into());
        let key = HostKey {
            hash: *blake3::hash(json.as_bytes()).as_bytes(),
            json,
            arch: host.arch.clone(),
            kernel_release: host.kernel_release.clone(),
            cpu_model: host.cpu_model.clone(),
            online_cpus: host.online_cpus.map(|n| n as i64),
        };
        self.last_host = Some((host.clone(), key.clone()));
        key
    }
}

fn parse_file(stat: FileStat, state: &mut ParseState<'_>) -> ParsedFile {
    let outcome = match read_bytes(&stat.path) {
        Err(error) => Outcome::Failed { error, hash: None },
        Ok(bytes) => {
            let hash = *blake3::hash(&bytes).as_bytes();
            match parse_bytes(&stat.path, &bytes) {
                Ok(doc) => {
                    let host = doc.host.as_ref().map(|h| state.host_key(h));
                    Outcome::Doc(Box::new(ParsedDoc {
                        hash,
                        row: RowData::of(&stat, doc),
                        document: state.compressor.encode(&bytes),
                        host,
                    }))
                }
                Err(error) => Outcome::Failed { error, hash: Some(hash) },
            }
        }
    };
    ParsedFile { stat, outcome }
}

/// A registry metric's stored value: `None` when it was not finite or the writer recorded
/// that it had to replace a non-finite value (so a made-up 0.0 never becomes a sample).
fn registry_value(doc: &SidecarResult, def: &MetricDef) -> Option<f64> {
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
