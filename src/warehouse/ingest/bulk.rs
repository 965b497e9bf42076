//! Cold bulk load: an ingest that fills an empty warehouse with many sidecars builds the
//! secondary indexes once, after the last batch, instead of row by row.
//!
//! Every row inserted into an indexed table costs one B-tree insert per index, at a position
//! that jumps around the index, and every batch rewrites the index pages it touched; building
//! an index over the full table is one sort. When the warehouse holds no sidecar yet and the
//! ingest has at least [`BULK_LOAD_FILES`] files to read, the non-unique indexes of
//! `ingested_sidecar` and `source_file` are dropped in the transaction that starts the write,
//! their definitions kept in `deferred_index` (V9), and rebuilt from there when the batches
//! are written. UNIQUE constraints stay: the inserts' conflict handling is the deduplication.
//!
//! If the process dies in between, the next ingest that writes rebuilds them first
//! ([`restore`]); readers meanwhile get the same rows, only slower. Not here: the rows
//! themselves ([`super::write`]).

use rusqlite::{Connection, Transaction, TransactionBehavior, params};

/// Below this many files a cold ingest keeps its indexes: the rebuild would cost about what
/// it saves.
pub(super) const BULK_LOAD_FILES: usize = 10_000;

/// The indexes a bulk load defers: every index of the two tables a sidecar adds rows to that
/// has a definition (UNIQUE constraints have none) and is not itself unique.
const DEFERRABLE: &str = "SELECT name, sql FROM sqlite_schema WHERE type = 'index' \
     AND tbl_name IN ('ingested_sidecar', 'source_file') AND sql IS NOT NULL \
     AND sql NOT LIKE 'CREATE UNIQUE %' ORDER BY name";

/// Whether this schema has `deferred_index` (a warehouse an older binary migrated, opened
/// without migrating, as a migration test does, has none and defers nothing).
fn can_defer(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'deferred_index')",
        [],
        |r| r.get(0),
    )
}

fn named_sql(conn: &Connection, query: &str) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare(query)?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// In the transaction that starts the write: when this ingest is a bulk load (`files` to read
/// into a warehouse without sidecars), drop the deferrable indexes and keep their definitions.
/// Returns whether it did.
pub(super) fn defer(tx: &Transaction<'_>, files: usize) -> rusqlite::Result<bool> {
    if files < BULK_LOAD_FILES || !can_defer(tx)? {
        return Ok(false);
    }
    let empty: bool =
        tx.query_row("SELECT NOT EXISTS (SELECT 1 FROM ingested_sidecar)", [], |r| r.get(0))?;
    if !empty {
        return Ok(false);
    }
    let indexes = named_sql(tx, DEFERRABLE)?;
    for (name, sql) in &indexes {
        tx.execute(
            "INSERT OR REPLACE INTO deferred_index (name, sql) VALUES (?1, ?2)",
            params![name, sql],
        )?;
        tx.execute_batch(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))?;
    }
    Ok(!indexes.is_empty())
}

/// Rebuild every index a bulk load deferred (this ingest's, or one a killed ingest left), in
/// one transaction. Costs one empty SELECT when there is none.
pub(super) fn restore(conn: &mut Connection) -> rusqlite::Result<()> {
    if !can_defer(conn)? {
        return Ok(());
    }
    let pending = named_sql(conn, "SELECT name, sql FROM deferred_index ORDER BY name")?;
    if pending.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (name, sql) in &pending {
        // IF NOT EXISTS is not in the stored text; a killed rebuild may have committed some.
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = ?1)",
            [name],
            |r| r.get(0),
        )?;
        if !exists {
            tx.execute_batch(sql)?;
        }
        tx.execute("DELETE FROM deferred_index WHERE name = ?1", [name])?;
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::Warehouse;

    fn indexes(conn: &Connection) -> Vec<(String, String)> {
        named_sql(conn, DEFERRABLE).unwrap()
    }

    #[test]
    fn deferred_indexes_come_back_exactly_as_the_migrations_made_them() {
        let mut wh = Warehouse::open_in_memory().unwrap();
        let before = indexes(wh.conn());
        let names: Vec<&str> = before.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"ingested_sidecar_compare_by_project_commit"), "{names:?}");
        assert!(names.contains(&"source_file_sidecar"), "{names:?}");
        let tx = wh.conn.transaction().unwrap();
        assert!(!defer(&tx, BULK_LOAD_FILES - 1).unwrap(), "a small ingest defers nothing");
        assert!(defer(&tx, BULK_LOAD_FILES).unwrap());
        tx.commit().unwrap();
        assert!(indexes(wh.conn()).is_empty());
        // A later ingest (say after this one was killed) puts them back.
        restore(&mut wh.conn).unwrap();
        assert_eq!(indexes(wh.conn()), before);
        let left: i64 =
            wh.conn().query_row("SELECT count(*) FROM deferred_index", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 0);
        restore(&mut wh.conn).unwrap();
        assert_eq!(indexes(wh.conn()), before, "restoring twice changes nothing");
    }

    #[test]
    fn a_warehouse_that_holds_sidecars_keeps_its_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        let doc = crate::sidecar::SidecarResult::empty("t").to_json_pretty();
        std::fs::write(run.join("t.ktstr.json"), doc).unwrap();
        let mut wh = Warehouse::open_in_memory().unwrap();
        super::super::ingest_root(&mut wh, dir.path(), None).unwrap();
        let tx = wh.conn.transaction().unwrap();
        assert!(!defer(&tx, BULK_LOAD_FILES * 10).unwrap());
        assert!(!indexes(&tx).is_empty());
    }
}
