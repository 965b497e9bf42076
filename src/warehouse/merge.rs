//! `stats merge`: fold another warehouse (a CI host's, say) into this one, in SQL.
//!
//! The other file is attached read-only and its rows are copied in one transaction:
//! sidecars whose content hash this warehouse lacks, with their documents (and the
//! compression dictionaries those need), flags, unregistered metrics, hosts, runs roots and
//! dimension values. A sidecar both warehouses hold stays one row (one sample). Where each
//! row came from is kept in `sidecar_origin` (V7); `merge_source` remembers how far each file
//! was read, so a re-merge reads only rows added since, and a no-op re-merge costs one lookup.
//!
//! Refused, before anything is written: this database itself, a file that is not an SQLite
//! database, a newer schema and an older one (upgrade it by opening it with this binary).
//! Parsing sidecar JSON, runs roots on disk and what the command prints are not here.

use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, Transaction, params};

use super::Warehouse;
use super::open::{OpenError, known_schema_version};
use crate::timefmt;

/// What one merge did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeReport {
    /// The other warehouse, canonicalized.
    pub source: PathBuf,
    /// Rows of the other warehouse read (newer than the last merge of the same file).
    pub read: usize,
    /// Sidecars this warehouse did not hold before.
    pub new_sidecars: usize,
}

impl MergeReport {
    /// Rows read that this warehouse already held (same content hash).
    pub fn duplicates(&self) -> usize {
        self.read - self.new_sidecars
    }
}

/// Why a merge did not happen. Each message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{} does not exist; name a warehouse file (warehouse.sqlite in a runs root)", .0.display())]
    Missing(PathBuf),
    #[error("{} is this warehouse itself; name another host's warehouse file", .0.display())]
    Itself(PathBuf),
    #[error(
        "{} has schema version {found} and this binary writes {known}; upgrade it first by \
         opening it with this cargo-ktstr (e.g. `cargo ktstr stats list --db {}`)",
        path.display(), path.display()
    )]
    OlderSchema { path: PathBuf, found: i64, known: i64 },
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("merging {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

/// Merge the warehouse at `other` into `wh`; safe to repeat.
pub fn merge_warehouse(wh: &mut Warehouse, other: &Path) -> Result<MergeReport, MergeError> {
    let source = std::fs::canonicalize(other).map_err(|_| MergeError::Missing(other.into()))?;
    if let Some(own) = wh.path()
        && is_same_file(own, &source)
    {
        return Err(MergeError::Itself(other.into()));
    }
    check_schema(&source)?;
    let sql = |e| MergeError::Sqlite { path: source.clone(), source: e };
    wh.conn.execute("ATTACH DATABASE ?1 AS src", [read_only_uri(&source)]).map_err(sql)?;
    let merged = copy_in(wh, &source);
    let detached = wh.conn.execute("DETACH DATABASE src", []);
    let report = merged.map_err(sql)?;
    detached.map_err(sql)?;
    Ok(report)
}

fn is_same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => std::fs::canonicalize(a).is_ok_and(|a| a == b),
    }
}

/// Refuse a file that is not a warehouse of exactly this binary's schema version.
fn check_schema(source: &Path) -> Result<(), MergeError> {
    match Warehouse::open_read_only(source) {
        Ok(_) => Ok(()),
        Err(OpenError::Migration { .. }) => {
            let found = older_version(source)?;
            Err(MergeError::OlderSchema {
                path: source.to_path_buf(),
                found,
                known: known_schema_version(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The schema version of a warehouse `open_read_only` found too old.
fn older_version(source: &Path) -> Result<i64, MergeError> {
    let sql = |e| MergeError::Sqlite { path: source.to_path_buf(), source: e };
    let conn =
        rusqlite::Connection::open_with_flags(source, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(sql)?;
    conn.query_row("SELECT coalesce(max(version), 0) FROM refinery_schema_history", [], |r| {
        r.get(0)
    })
    .or(Ok(0))
}

/// An SQLite URI opening `path` read-only (`?`, `#` and `%` escaped).
fn read_only_uri(path: &Path) -> String {
    let mut s = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => s.push_str("%25"),
            '?' => s.push_str("%3f"),
            '#' => s.push_str("%23"),
            c => s.push(c),
        }
    }
    s.push_str("?mode=ro");
    s
}

fn copy_in(wh: &mut Warehouse, source: &Path) -> rusqlite::Result<MergeReport> {
    let tx = wh.conn.transaction()?;
    let path = source.to_string_lossy();
    tx.execute(
        "INSERT OR IGNORE INTO merge_source (path, merged_at) VALUES (?1, ?2)",
        params![path, timefmt::now_iso8601()],
    )?;
    let (source_id, last_id, last_hash): (i64, i64, Option<Vec<u8>>) = tx.query_row(
        "SELECT source_id, last_sidecar_id, last_content_hash FROM merge_source WHERE path = ?1",
        [&path],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let since = resume_point(&tx, last_id, last_hash.as_deref())?;
    let newest: Option<(i64, Vec<u8>)> = tx
        .query_row(
            "SELECT sidecar_id, content_hash FROM src.ingested_sidecar \
             ORDER BY sidecar_id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let read: i64 = tx.query_row(
        "SELECT count(*) FROM src.ingested_sidecar WHERE sidecar_id > ?1",
        [since],
        |r| r.get(0),
    )?;
    let read = read as usize;
    let new_sidecars = if read == 0 { 0 } else { copy_rows(&tx, since, source_id)? };
    if let Some((id, hash)) = newest {
        tx.execute(
            "UPDATE merge_source SET last_sidecar_id = ?1, last_content_hash = ?2, merged_at = ?3 \
             WHERE source_id = ?4",
            params![id, hash, timefmt::now_iso8601(), source_id],
        )?;
    }
    tx.commit()?;
    Ok(MergeReport { source: source.to_path_buf(), read, new_sidecars })
}

/// The id after which the other file has rows this warehouse has not seen: the last merge's
/// newest row when that row is still there unchanged, else 0 (read everything again).
fn resume_point(
    tx: &Transaction<'_>,
    last_id: i64,
    last_hash: Option<&[u8]>,
) -> rusqlite::Result<i64> {
    let Some(last_hash) = last_hash else { return Ok(0) };
    let hash: Option<Vec<u8>> = tx
        .query_row(
            "SELECT content_hash FROM src.ingested_sidecar WHERE sidecar_id = ?1",
            [last_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(if hash.as_deref() == Some(last_hash) { last_id } else { 0 })
}

/// Copy every row after `since` this warehouse lacks; returns how many sidecars were new.
fn copy_rows(tx: &Transaction<'_>, since: i64, source_id: i64) -> rusqlite::Result<usize> {
    tx.execute_batch(
        "DROP TABLE IF EXISTS temp.merge_map; DROP TABLE IF EXISTS temp.dict_map;
         CREATE TEMP TABLE merge_map (src_id INTEGER PRIMARY KEY, dst_id INTEGER);
         CREATE TEMP TABLE dict_map (src_dict INTEGER PRIMARY KEY, dst_dict INTEGER NOT NULL);",
    )?;
    tx.execute(
        "INSERT INTO temp.merge_map (src_id) SELECT s.sidecar_id FROM src.ingested_sidecar s \
         WHERE s.sidecar_id > ?1 AND NOT EXISTS \
         (SELECT 1 FROM main.ingested_sidecar m WHERE m.content_hash = s.content_hash)",
        [since],
    )?;
    let new =
        tx.query_row("SELECT count(*) FROM temp.merge_map", [], |r| r.get::<_, i64>(0))? as usize;
    if new > 0 {
        copy_dependencies(tx)?;
        copy_sidecars(tx)?;
        copy_details(tx)?;
    }
    tx.execute(
        "INSERT OR IGNORE INTO main.sidecar_origin (sidecar_id, source_id) \
         SELECT m.sidecar_id, ?2 FROM src.ingested_sidecar s \
         JOIN main.ingested_sidecar m ON m.content_hash = s.content_hash \
         WHERE s.sidecar_id > ?1",
        params![since, source_id],
    )?;
    tx.execute_batch("DROP TABLE temp.merge_map; DROP TABLE temp.dict_map;")?;
    Ok(new)
}

/// Hosts, runs roots, metric names and dictionaries the new sidecars refer to.
fn copy_dependencies(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "INSERT OR IGNORE INTO main.host_context (content_hash, arch, kernel_release, cpu_model, \
             online_cpus, json) \
         SELECT h.content_hash, h.arch, h.kernel_release, h.cpu_model, h.online_cpus, h.json \
         FROM src.host_context h \
         WHERE h.host_id IN (SELECT s.host_id FROM temp.merge_map n \
             JOIN src.ingested_sidecar s ON s.sidecar_id = n.src_id);
         INSERT OR IGNORE INTO main.runs_root (path) \
         SELECT r.path FROM src.runs_root r \
         WHERE r.root_id IN (SELECT s.root_id FROM temp.merge_map n \
             JOIN src.ingested_sidecar s ON s.sidecar_id = n.src_id);
         INSERT OR IGNORE INTO main.metric (origin, name) SELECT origin, name FROM src.metric;",
    )?;
    let mut used = tx.prepare(
        "SELECT DISTINCT d.dict_id FROM temp.merge_map n \
         JOIN src.sidecar_document d ON d.sidecar_id = n.src_id WHERE d.dict_id IS NOT NULL",
    )?;
    let dicts: Vec<i64> = used.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    for src_dict in dicts {
        let existing: Option<i64> = tx
            .query_row(
                "SELECT m.dict_id FROM main.document_dictionary m, src.document_dictionary s \
                 WHERE s.dict_id = ?1 AND m.dictionary = s.dictionary LIMIT 1",
                [src_dict],
                |r| r.get(0),
            )
            .optional()?;
        let dst = match existing {
            Some(id) => id,
            None => {
                tx.execute(
                    "INSERT INTO main.document_dictionary (dictionary, samples, created_at) \
                     SELECT dictionary, samples, created_at FROM src.document_dictionary \
                     WHERE dict_id = ?1",
                    [src_dict],
                )?;
                tx.last_insert_rowid()
            }
        };
        tx.execute("INSERT INTO temp.dict_map VALUES (?1, ?2)", [src_dict, dst])?;
    }
    Ok(())
}

/// The `ingested_sidecar` rows themselves, every column but the three ids (sidecar, root,
/// host), which are mapped to this warehouse's.
fn copy_sidecars(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let mut info = tx.prepare("SELECT name FROM pragma_table_info('ingested_sidecar', 'main')")?;
    let columns: Vec<String> = info
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .filter(|c| !matches!(c.as_str(), "sidecar_id" | "root_id" | "host_id"))
        .collect();
    let plain: Vec<String> = columns.iter().map(|c| format!("s.{c}")).collect();
    tx.execute(
        &format!(
            "INSERT INTO main.ingested_sidecar (root_id, host_id, {}) \
             SELECT r2.root_id, h2.host_id, {} FROM temp.merge_map n \
             JOIN src.ingested_sidecar s ON s.sidecar_id = n.src_id \
             JOIN src.runs_root r ON r.root_id = s.root_id \
             JOIN main.runs_root r2 ON r2.path = r.path \
             LEFT JOIN src.host_context h ON h.host_id = s.host_id \
             LEFT JOIN main.host_context h2 ON h2.content_hash = h.content_hash \
             ORDER BY n.src_id",
            columns.join(", "),
            plain.join(", ")
        ),
        [],
    )?;
    tx.execute(
        "UPDATE temp.merge_map SET dst_id = (SELECT m.sidecar_id FROM src.ingested_sidecar s \
         JOIN main.ingested_sidecar m ON m.content_hash = s.content_hash \
         WHERE s.sidecar_id = merge_map.src_id)",
        [],
    )?;
    Ok(())
}

/// Documents, flags, unregistered metric values and dimension values of the new sidecars.
fn copy_details(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "INSERT INTO main.sidecar_document (sidecar_id, codec, document, dict_id) \
         SELECT n.dst_id, d.codec, d.document, dm.dst_dict FROM temp.merge_map n \
         JOIN src.sidecar_document d ON d.sidecar_id = n.src_id \
         LEFT JOIN temp.dict_map dm ON dm.src_dict = d.dict_id;
         INSERT INTO main.sidecar_flag (sidecar_id, flag) \
         SELECT n.dst_id, f.flag FROM temp.merge_map n \
         JOIN src.sidecar_flag f ON f.sidecar_id = n.src_id;
         INSERT INTO main.metric_value (sidecar_id, metric_id, value) \
         SELECT n.dst_id, m2.metric_id, v.value FROM temp.merge_map n \
         JOIN src.metric_value v ON v.sidecar_id = n.src_id \
         JOIN src.metric m ON m.metric_id = v.metric_id \
         JOIN main.metric m2 ON m2.origin = m.origin AND m2.name = m.name;
         INSERT OR IGNORE INTO main.dimension_value (dim, value) \
         SELECT dim, value FROM src.dimension_value WHERE value IS NOT NULL;
         INSERT INTO main.dimension_value (dim, value) \
         SELECT DISTINCT d.dim, NULL FROM src.dimension_value d WHERE d.value IS NULL \
         AND NOT EXISTS (SELECT 1 FROM main.dimension_value m \
             WHERE m.dim = d.dim AND m.value IS NULL);",
    )
}
