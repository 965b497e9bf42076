//! The schema objects generated from the metric registry ([`crate::metric::METRICS`]): the
//! stable views `sidecar` and `sample`, and the rows of `registry_metric`.
//!
//! # Why these are not in a migration
//! Their metric lists must follow `METRICS`, and a migration's text may never change once a
//! database has applied it (refinery refuses a database whose applied migration differs from
//! the embedded one). So the versioned migrations own every table, column and index; this
//! module owns what is derived from the registry, and [`reconcile`] brings a database's copy
//! up to date on every writable open, after the migrations. A metric cannot be added without
//! a migration anyway: its `ingested_sidecar` column is one, and a test pins those columns to
//! `METRICS` in order. Migrations/V5 dropped the views V1 had written by hand; from then on
//! they are created here.
//!
//! Not here: the INSERT that fills the metric columns (ingest's write stage generates it from
//! the same registry).

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::metric::{METRICS, MetricDef, Polarity};

/// The columns both views start with (from `ingested_sidecar s`): a sidecar's identity and
/// outcome.
const IDENTITY: [&str; 15] = [
    "sidecar_id",
    "test_name",
    "topology",
    "scheduler",
    "work_type",
    "flags",
    "kernel_version",
    "kernel_commit",
    "project_commit",
    "run_source",
    "passed",
    "skipped",
    "run_id",
    "timestamp",
    "path",
];

/// The `sidecar` view's columns between the identity and the metrics.
const SIDECAR_DETAILS: [&str; 10] = [
    "s.run_dir",
    "s.payload",
    "s.project_commit_id",
    "s.dirty_fingerprint",
    "s.run_token",
    "s.repeat",
    "s.backend",
    "h.arch AS host_arch",
    "s.ingested_at",
    "EXISTS (SELECT 1 FROM source_file f WHERE f.sidecar_id = s.sidecar_id AND f.present = 1) \
     AS present",
];

/// `s.{column}` per identity column, one per line.
fn identity_columns() -> String {
    IDENTITY.map(|c| format!("s.{c}")).join(",\n    ")
}

/// `CREATE VIEW sidecar`: one row per ingested sidecar, registry metrics as columns.
pub(super) fn sidecar_view_sql() -> String {
    let details = SIDECAR_DETAILS.join(",\n    ");
    let metrics: Vec<String> = METRICS.iter().map(|m| format!("s.{}", m.name)).collect();
    format!(
        "CREATE VIEW sidecar AS\nSELECT\n    {},\n    {details},\n    {}\nFROM ingested_sidecar s\n\
         LEFT JOIN host_context h ON h.host_id = s.host_id",
        identity_columns(),
        metrics.join(",\n    ")
    )
}

/// `CREATE VIEW sample`: one row per sidecar x metric, registry metrics (one per
/// `registry_metric` row, its column picked by name) then the long table's.
pub(super) fn sample_view_sql() -> String {
    let identity = identity_columns();
    let cases: Vec<String> =
        METRICS.iter().map(|m| format!("        WHEN '{0}' THEN s.{0}", m.name)).collect();
    format!(
        "CREATE VIEW sample AS\nSELECT\n    {identity},\n    'registry' AS metric_origin,\n    \
         r.name AS metric,\n    CASE r.name\n{}\n    END AS value\nFROM ingested_sidecar s\n\
         CROSS JOIN registry_metric r\nUNION ALL\nSELECT\n    {identity},\n    \
         m.origin AS metric_origin,\n    m.name AS metric,\n    v.value\nFROM metric_value v\n\
         JOIN ingested_sidecar s ON s.sidecar_id = v.sidecar_id\n\
         JOIN metric m ON m.metric_id = v.metric_id",
        cases.join("\n")
    )
}

/// One `registry_metric` row: (position, name, polarity, default_abs, default_rel, unit).
type RegistryRow = (i64, String, String, f64, f64, String);

fn polarity_name(p: Polarity) -> &'static str {
    match p {
        Polarity::HigherBetter => "HigherBetter",
        Polarity::LowerBetter => "LowerBetter",
    }
}

fn registry_row(position: usize, m: &MetricDef) -> RegistryRow {
    let polarity = polarity_name(m.polarity).to_string();
    let (name, unit) = (m.name.to_string(), m.display_unit.to_string());
    (position as i64 + 1, name, polarity, m.default_abs, m.default_rel, unit)
}

fn stored_registry(conn: &Connection) -> rusqlite::Result<Vec<RegistryRow>> {
    let mut stmt = conn.prepare(
        "SELECT position, name, polarity, default_abs, default_rel, unit FROM registry_metric \
         ORDER BY position",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
    })?;
    rows.collect()
}

fn stored_view(conn: &Connection, name: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT sql FROM sqlite_master WHERE type = 'view' AND name = ?1", [name], |r| {
        r.get(0)
    })
    .optional()
}

/// Make the views and the `registry_metric` rows what this binary's registry generates. Costs
/// two small reads when they already are (every open but the first after an upgrade).
pub(super) fn reconcile(conn: &mut Connection) -> rusqlite::Result<()> {
    let views = [("sidecar", sidecar_view_sql()), ("sample", sample_view_sql())];
    let mut stale_views = Vec::new();
    for (name, sql) in &views {
        if stored_view(conn, name)?.as_deref() != Some(sql.as_str()) {
            stale_views.push((name, sql));
        }
    }
    let wanted: Vec<RegistryRow> =
        METRICS.iter().enumerate().map(|(i, m)| registry_row(i, m)).collect();
    let stale_registry = stored_registry(conn)? != wanted;
    if stale_views.is_empty() && !stale_registry {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if stale_registry {
        tx.execute("DELETE FROM registry_metric", [])?;
        let mut insert = tx.prepare(
            "INSERT INTO registry_metric (position, name, polarity, default_abs, default_rel, \
             unit) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (position, name, polarity, abs, rel, unit) in &wanted {
            insert.execute(params![position, name, polarity, abs, rel, unit])?;
        }
    }
    for (name, sql) in stale_views {
        tx.execute_batch(&format!("DROP VIEW IF EXISTS {name}; {sql};"))?;
    }
    tx.commit()
}

/// The columns of `ingested_sidecar`, in table order.
#[cfg(test)]
pub(super) fn ingested_sidecar_columns(conn: &Connection) -> Vec<String> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('ingested_sidecar')").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::Warehouse;

    fn columns(conn: &Connection, sql: &str) -> Vec<String> {
        conn.prepare(sql).unwrap().column_names().map(String::from).collect()
    }

    fn names() -> Vec<String> {
        METRICS.iter().map(|m| m.name.to_string()).collect()
    }

    #[test]
    fn metric_names_are_plain_identifiers_safe_to_splice_into_sql() {
        for m in &METRICS {
            assert!(
                m.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                m.name
            );
        }
    }

    /// `ingested_sidecar`'s metric columns (every column after `ingested_at`, but for the
    /// non-metric columns later migrations appended) and the `sidecar` view's (every column
    /// after `present`) are the registry, in order.
    #[test]
    fn table_and_view_metric_columns_are_the_registry_in_order() {
        /// Appended by `ALTER TABLE … ADD COLUMN` after the metric columns: V6's `repeat`.
        const APPENDED_LATER: [&str; 1] = ["repeat"];
        let wh = Warehouse::open_in_memory().unwrap();
        let table = ingested_sidecar_columns(wh.conn());
        let after = |cols: &[String], last: &str| {
            let at = cols.iter().position(|c| c == last).unwrap();
            cols[at + 1..].to_vec()
        };
        let table = after(&table, "ingested_at");
        let (metrics, appended) = table.split_at(names().len().min(table.len()));
        assert_eq!(metrics, names());
        assert_eq!(appended, APPENDED_LATER);
        let view = columns(wh.conn(), "SELECT * FROM sidecar");
        assert_eq!(after(&view, "present"), names());
    }

    /// The `sample` view yields one row per registry metric per sidecar, each carrying its own
    /// column's value: a CASE branch pointing at the wrong column would fail here.
    #[test]
    fn the_sample_view_maps_each_registry_metric_to_its_own_column() {
        let wh = Warehouse::open_in_memory().unwrap();
        let assignments: Vec<String> =
            METRICS.iter().enumerate().map(|(i, m)| format!("{} = {}", m.name, i + 1)).collect();
        wh.conn()
            .execute_batch(&format!(
                "INSERT INTO runs_root (root_id, path) VALUES (1, '/r');
                 INSERT INTO ingested_sidecar (sidecar_id, content_hash, root_id, run_dir, path,
                     test_name, topology, scheduler, work_type, flags, passed, skipped, run_id,
                     timestamp, ingested_at)
                 VALUES (1, x'00', 1, 'r', 'r/t.ktstr.json', 't', '1n1l1c1t', 'eevdf',
                     'SpinWait', '[]', 1, 0, 'x', 't', 't');
                 UPDATE ingested_sidecar SET {};",
                assignments.join(", ")
            ))
            .unwrap();
        let mut stmt = wh
            .conn()
            .prepare("SELECT metric, value FROM sample WHERE metric_origin = 'registry'")
            .unwrap();
        let mut got: Vec<(String, f64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        got.sort_by(|a, b| a.1.total_cmp(&b.1));
        let want: Vec<(String, f64)> =
            names().into_iter().enumerate().map(|(i, n)| (n, (i + 1) as f64)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn reconciling_an_up_to_date_database_writes_nothing() {
        let mut wh = Warehouse::open_in_memory().unwrap();
        let version = |wh: &Warehouse| -> i64 {
            wh.conn().query_row("PRAGMA schema_version", [], |r| r.get(0)).unwrap()
        };
        let before = version(&wh);
        let changes = wh.conn().total_changes();
        reconcile(&mut wh.conn).unwrap();
        assert_eq!((version(&wh), wh.conn().total_changes()), (before, changes));
    }

    #[test]
    fn reconciling_restores_a_dropped_view_and_a_damaged_registry() {
        let mut wh = Warehouse::open_in_memory().unwrap();
        wh.conn()
            .execute_batch(
                "DROP VIEW sample; UPDATE registry_metric SET unit = 'furlongs' WHERE position = 1;
                 DELETE FROM registry_metric WHERE position = 19;",
            )
            .unwrap();
        reconcile(&mut wh.conn).unwrap();
        let rows = stored_registry(wh.conn()).unwrap();
        let wanted: Vec<RegistryRow> =
            METRICS.iter().enumerate().map(|(i, m)| registry_row(i, m)).collect();
        assert_eq!(rows, wanted);
        assert_eq!(stored_view(wh.conn(), "sample").unwrap(), Some(sample_view_sql()));
    }
}
