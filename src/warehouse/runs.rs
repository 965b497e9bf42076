//! Run directories as the warehouse remembers them: per-run summaries for `stats list`, the
//! host context for `stats show-host`, and the stored documents `stats explain-sidecar` falls
//! back to when a run's files are gone.
//!
//! Runs are keyed by (runs root, run directory name). A database shared between several
//! roots (`--db`) answers for the root the caller names. Whether a directory still exists on
//! disk is the caller's question; this module only reads the database.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::OptionalExtension;

use super::document::{DecodeError, decode};
use super::open::Warehouse;
use crate::sidecar::HostContext;

/// What the warehouse knows about one run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRun {
    pub run: String,
    /// Sidecars ingested from this run directory (its job subdirectories included).
    pub tests: usize,
    /// Lexicographically smallest non-empty timestamp.
    pub first_timestamp: Option<String>,
    /// Largest timestamp, used to order runs that are no longer on disk.
    pub last_timestamp: Option<String>,
    /// `host.arch` of the first sidecar in walk order that has one.
    pub arch: Option<String>,
    /// Sidecars whose file is in this run directory now (a new run's pre-clear removes the
    /// previous run's files; `tests` still counts them).
    pub on_disk: usize,
    /// Smallest non-empty timestamp among `on_disk`.
    pub on_disk_first_timestamp: Option<String>,
}

/// The database id of `root`, if it was ever ingested. Ingest records canonical paths; a root
/// that no longer exists is resolved as far as it still exists (see [`resolve`]).
pub fn root_id(wh: &Warehouse, root: &Path) -> rusqlite::Result<Option<i64>> {
    let path = resolve(root);
    wh.conn()
        .query_row("SELECT root_id FROM runs_root WHERE path = ?1", [path.to_string_lossy()], |r| {
            r.get(0)
        })
        .optional()
}

/// `root` as ingest recorded it (canonical), also when it is gone: its longest existing
/// ancestor is canonicalized and the missing rest appended.
fn resolve(root: &Path) -> PathBuf {
    if let Ok(path) = std::fs::canonicalize(root) {
        return path;
    }
    let Ok(absolute) = std::path::absolute(root) else {
        return root.to_path_buf();
    };
    let mut missing = Vec::new();
    let mut at = absolute.as_path();
    while let (Some(parent), Some(name)) = (at.parent(), at.file_name()) {
        missing.push(name);
        at = parent;
        if let Ok(base) = std::fs::canonicalize(at) {
            return missing.iter().rev().fold(base, |path, name| path.join(name));
        }
    }
    absolute
}

/// SQL condition (over `ingested_sidecar` alias `s`) for "this sidecar is part of root
/// `?{param}`'s history": first ingested from it, or seen there since (a copy). The first half
/// keeps sidecars whose file a later run overwrote in place: the path's record now points at
/// the newer sidecar, but the older one is still the root's history.
pub(crate) fn in_root_sql(param: usize) -> String {
    format!(
        "(s.root_id = ?{param} OR EXISTS (SELECT 1 FROM source_file f \
         WHERE f.sidecar_id = s.sidecar_id AND f.root_id = ?{param}))"
    )
}

/// One (run directory, sidecar) pair. A sidecar belongs to the run it was first ingested
/// from and to every run directory a file with its content was seen in (a copied run holds
/// the same documents; they are stored once).
struct Link {
    run: String,
    job: Option<String>,
    path: String,
    sidecar_id: i64,
    timestamp: String,
    arch: Option<String>,
    host_id: Option<i64>,
}

fn links(wh: &Warehouse, root_id: i64) -> rusqlite::Result<Vec<Link>> {
    let conn = wh.conn();
    let root: String =
        conn.query_row("SELECT path FROM runs_root WHERE root_id = ?1", [root_id], |r| r.get(0))?;
    let mut out = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT s.run_dir, s.job_dir, s.path, s.sidecar_id, s.timestamp, h.arch, s.host_id \
         FROM ingested_sidecar s LEFT JOIN host_context h ON h.host_id = s.host_id \
         WHERE s.root_id = ?1",
    )?;
    for row in stmt.query_map([root_id], |r| {
        Ok(Link {
            run: r.get(0)?,
            job: r.get(1)?,
            path: r.get(2)?,
            sidecar_id: r.get(3)?,
            timestamp: r.get(4)?,
            arch: r.get(5)?,
            host_id: r.get(6)?,
        })
    })? {
        out.push(row?);
    }
    let mut stmt = conn.prepare(
        "SELECT f.rel_path, s.sidecar_id, s.timestamp, h.arch, s.host_id FROM source_file f \
         JOIN ingested_sidecar s ON s.sidecar_id = f.sidecar_id \
         LEFT JOIN host_context h ON h.host_id = s.host_id WHERE f.root_id = ?1",
    )?;
    for row in stmt.query_map([root_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<i64>>(4)?,
        ))
    })? {
        let (rel, sidecar_id, timestamp, arch, host_id) = row?;
        let parts: Vec<&str> = rel.split('/').collect();
        let job = (parts.len() > 2).then(|| parts[1].to_string());
        let path = format!("{root}/{rel}");
        out.push(Link {
            run: parts[0].to_string(),
            job,
            path,
            sidecar_id,
            timestamp,
            arch,
            host_id,
        });
    }
    // Walk order within a run: its own files before its job directories', each by path.
    out.sort_by(|a, b| (&a.run, a.job.is_some(), &a.path).cmp(&(&b.run, b.job.is_some(), &b.path)));
    let mut seen = std::collections::HashSet::new();
    out.retain(|l| seen.insert((l.run.clone(), l.job.clone(), l.sidecar_id)));
    Ok(out)
}

/// Every run directory of `root` the warehouse holds sidecars for, sorted by name.
pub fn stored_runs(wh: &Warehouse, root: &Path) -> rusqlite::Result<Vec<StoredRun>> {
    let Some(root_id) = root_id(wh, root)? else {
        return Ok(Vec::new());
    };
    let mut runs: BTreeMap<String, StoredRun> = BTreeMap::new();
    let mut counted = std::collections::HashSet::new();
    for Link { run, sidecar_id, timestamp, arch, .. } in links(wh, root_id)? {
        if !counted.insert((run.clone(), sidecar_id)) {
            continue;
        }
        let entry = runs.entry(run.clone()).or_insert_with(|| StoredRun {
            run,
            tests: 0,
            first_timestamp: None,
            last_timestamp: None,
            arch: None,
            on_disk: 0,
            on_disk_first_timestamp: None,
        });
        entry.tests += 1;
        if !timestamp.is_empty() {
            if entry.first_timestamp.as_ref().is_none_or(|t| timestamp < *t) {
                entry.first_timestamp = Some(timestamp.clone());
            }
            if entry.last_timestamp.as_ref().is_none_or(|t| timestamp > *t) {
                entry.last_timestamp = Some(timestamp);
            }
        }
        if entry.arch.is_none() {
            entry.arch = arch;
        }
    }
    // What each run directory holds right now: files still present, one sidecar each.
    let mut stmt = wh.conn().prepare(
        "SELECT f.rel_path, f.sidecar_id, s.timestamp FROM source_file f \
         JOIN ingested_sidecar s ON s.sidecar_id = f.sidecar_id \
         WHERE f.root_id = ?1 AND f.present = 1",
    )?;
    let mut on_disk = std::collections::HashSet::new();
    for row in stmt.query_map([root_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?))
    })? {
        let (rel, sidecar_id, timestamp) = row?;
        let run = rel.split('/').next().unwrap_or_default().to_string();
        if !on_disk.insert((run.clone(), sidecar_id)) {
            continue;
        }
        if let Some(entry) = runs.get_mut(&run) {
            entry.on_disk += 1;
            if !timestamp.is_empty()
                && entry.on_disk_first_timestamp.as_ref().is_none_or(|t| timestamp < *t)
            {
                entry.on_disk_first_timestamp = Some(timestamp);
            }
        }
    }
    Ok(runs.into_values().collect())
}

/// A run's sidecar count and the first host context in ingest order.
#[derive(Debug, Clone, PartialEq)]
pub struct RunHost {
    pub sidecars: usize,
    pub host: Option<HostContext>,
}

/// The host context `show-host` prints for `run`.
pub fn run_host(wh: &Warehouse, root: &Path, run: &str) -> rusqlite::Result<RunHost> {
    let Some(root_id) = root_id(wh, root)? else {
        return Ok(RunHost { sidecars: 0, host: None });
    };
    let mut mine: Vec<Link> = links(wh, root_id)?.into_iter().filter(|l| l.run == run).collect();
    mine.sort_by_key(|l| l.sidecar_id);
    mine.dedup_by_key(|l| l.sidecar_id);
    let Some(host_id) = mine.iter().find_map(|l| l.host_id) else {
        return Ok(RunHost { sidecars: mine.len(), host: None });
    };
    let json: String = wh.conn().query_row(
        "SELECT json FROM host_context WHERE host_id = ?1",
        [host_id],
        |r| r.get(0),
    )?;
    let host = serde_json::from_str(&json).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(RunHost { sidecars: mine.len(), host: Some(host) })
}

/// One sidecar document as the warehouse stored it.
#[derive(Debug, Clone)]
pub struct StoredDocument {
    /// The file it was read from.
    pub path: PathBuf,
    pub codec: String,
    /// The compression dictionary, see [`super::document`].
    pub dict_id: Option<i64>,
    pub document: Vec<u8>,
    /// blake3 of the original bytes, as ingest computed it.
    pub content_hash: Vec<u8>,
}

impl StoredDocument {
    /// The original file bytes, checked against the hash ingest recorded: zstd frames carry
    /// no checksum, so damage could otherwise decode to wrong bytes without an error.
    pub fn original(&self, wh: &Warehouse) -> Result<Vec<u8>, DecodeError> {
        let bytes = decode(wh.conn(), &self.codec, self.dict_id, &self.document)?;
        if blake3::hash(&bytes).as_bytes()[..] != self.content_hash[..] {
            return Err(DecodeError::Damaged("it does not match its recorded hash".into()));
        }
        Ok(bytes)
    }
}

/// The stored documents of a run (or, with `job`, of one job subdirectory), in ingest order.
pub fn stored_documents(
    wh: &Warehouse,
    root: &Path,
    run: &str,
    job: Option<&str>,
) -> rusqlite::Result<Vec<StoredDocument>> {
    let Some(root_id) = root_id(wh, root)? else {
        return Ok(Vec::new());
    };
    let mut mine: Vec<Link> = links(wh, root_id)?
        .into_iter()
        .filter(|l| l.run == run && (job.is_none() || l.job.as_deref() == job))
        .collect();
    mine.sort_by_key(|l| l.sidecar_id);
    mine.dedup_by_key(|l| l.sidecar_id);
    let mut stmt = wh.conn().prepare(
        "SELECT d.codec, d.dict_id, d.document, s.content_hash FROM sidecar_document d \
         JOIN ingested_sidecar s ON s.sidecar_id = d.sidecar_id WHERE d.sidecar_id = ?1",
    )?;
    mine.into_iter()
        .map(|l| {
            stmt.query_row([l.sidecar_id], |r| {
                Ok(StoredDocument {
                    path: PathBuf::from(l.path),
                    codec: r.get(0)?,
                    dict_id: r.get(1)?,
                    document: r.get(2)?,
                    content_hash: r.get(3)?,
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sidecar::SidecarResult;
    use crate::warehouse::ingest::ingest_root;

    fn write(root: &Path, rel: &str, doc: &SidecarResult) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, doc.to_json_pretty()).unwrap();
    }

    fn host(arch: &str) -> HostContext {
        HostContext { arch: Some(arch.into()), ..Default::default() }
    }

    #[test]
    fn runs_are_summarized_and_kept_after_their_files_go() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut a = SidecarResult::empty("a");
        a.timestamp = "2026-01-02T00:00:00Z".into();
        let mut b = SidecarResult::empty("b");
        b.timestamp = "2026-01-01T00:00:00Z".into();
        b.host = Some(host("aarch64"));
        let mut c = SidecarResult::empty("c");
        c.host = Some(host("x86_64"));
        write(root, "r1/job/c.ktstr.json", &c);
        write(root, "r1/a.ktstr.json", &a);
        write(root, "r1/b.ktstr.json", &b);
        write(root, "r2/a.ktstr.json", &SidecarResult::empty("z"));
        let mut wh = Warehouse::open_in_memory().unwrap();
        ingest_root(&mut wh, root, None).unwrap();
        std::fs::remove_dir_all(root.join("r2")).unwrap();
        ingest_root(&mut wh, root, None).unwrap();

        let runs = stored_runs(&wh, root).unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].run, "r1");
        assert_eq!(runs[0].tests, 3);
        assert_eq!(runs[0].first_timestamp.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(runs[0].last_timestamp.as_deref(), Some("2026-01-02T00:00:00Z"));
        // The run's own files come before its job directory's in walk order.
        assert_eq!(runs[0].arch.as_deref(), Some("aarch64"));
        assert_eq!((runs[1].run.as_str(), runs[1].tests), ("r2", 1));
        assert_eq!(runs[1].first_timestamp, None);

        let rh = run_host(&wh, root, "r1").unwrap();
        assert_eq!(rh.sidecars, 3);
        assert!(rh.host.is_some());
        assert_eq!(run_host(&wh, root, "r2").unwrap(), RunHost { sidecars: 1, host: None });

        let docs = stored_documents(&wh, root, "r2", None).unwrap();
        assert_eq!(docs.len(), 1);
        let bytes = docs[0].original(&wh).unwrap();
        assert!(String::from_utf8(bytes).unwrap().contains("\"z\""));
        assert_eq!(stored_documents(&wh, root, "r1", Some("job")).unwrap().len(), 1);
    }

    #[test]
    fn a_copied_run_counts_the_documents_it_shares() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let doc = SidecarResult::empty("same");
        write(root, "orig/a.ktstr.json", &doc);
        write(root, "copy/a.ktstr.json", &doc);
        let mut wh = Warehouse::open_in_memory().unwrap();
        ingest_root(&mut wh, root, None).unwrap();
        let runs = stored_runs(&wh, root).unwrap();
        let counts: Vec<(&str, usize)> = runs.iter().map(|r| (r.run.as_str(), r.tests)).collect();
        assert_eq!(counts, [("copy", 1), ("orig", 1)]);
        assert_eq!(run_host(&wh, root, "copy").unwrap().sidecars, 1);
        let docs = stored_documents(&wh, root, "orig", None).unwrap();
        assert_eq!(docs.len(), 1);
    }

    #[test]
    fn a_damaged_stored_document_is_an_error_not_wrong_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "r1/a.ktstr.json", &SidecarResult::empty("a"));
        let mut wh = Warehouse::open_in_memory().unwrap();
        ingest_root(&mut wh, root, None).unwrap();
        let tampered = SidecarResult::empty("b").to_json_pretty();
        wh.conn()
            .execute(
                "UPDATE sidecar_document SET codec = 'raw', dict_id = NULL, document = ?1",
                [tampered.as_bytes()],
            )
            .unwrap();
        let docs = stored_documents(&wh, root, "r1", None).unwrap();
        let err = docs[0].original(&wh).unwrap_err();
        assert!(err.to_string().contains("does not match its recorded hash"), "{err}");
    }

    #[test]
    fn a_gone_root_is_found_by_a_relative_path_too() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("runs");
        write(&root, "r1/a.ktstr.json", &SidecarResult::empty("a"));
        let mut wh = Warehouse::open_in_memory().unwrap();
        ingest_root(&mut wh, &root, None).unwrap();
        let id = root_id(&wh, &root).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        // The same directory spelled relative to the working directory.
        let cwd = std::env::current_dir().unwrap();
        let mut relative = PathBuf::new();
        for _ in cwd.components().skip(1) {
            relative.push("..");
        }
        relative.push(std::fs::canonicalize(dir.path()).unwrap().strip_prefix("/").unwrap());
        relative.push("runs");
        assert!(id.is_some());
        assert_eq!(root_id(&wh, &relative).unwrap(), id);
    }

    #[test]
    fn an_unknown_root_has_no_runs() {
        let wh = Warehouse::open_in_memory().unwrap();
        let dir = tempfile::tempdir().unwrap();
        assert!(stored_runs(&wh, dir.path()).unwrap().is_empty());
        assert_eq!(run_host(&wh, dir.path(), "x").unwrap().sidecars, 0);
    }
}
