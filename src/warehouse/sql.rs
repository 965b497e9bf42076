//! Ad-hoc read-only SQL (`stats sql`): a connection that cannot change anything, and a query
//! runner that returns typed cells. Rendering (table, JSON, CSV) is the CLI's.
//!
//! # Why three locks
//! The user's text is arbitrary SQL, so it gets its own connection, never the ingest one:
//! - the file is opened `SQLITE_OPEN_READ_ONLY`, so SQLite itself refuses writes;
//! - `PRAGMA query_only = ON` also covers in-memory and temp objects;
//! - an authorizer allows only reads, `SELECT`, functions, recursive CTEs and a few
//!   introspection pragmas, so `ATTACH` (which could create a file), `PRAGMA query_only = OFF`,
//!   `BEGIN`, temp tables and `load_extension` are all refused while the statement compiles.
//!
//! Extension loading stays disabled (rusqlite's default; the `load_extension` feature is off).

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::Value;

/// Pragmas that only describe the schema; anything else (notably `query_only`) is refused.
const READ_ONLY_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "collation_list",
    "function_list",
    "schema_version",
    "user_version",
    "integrity_check",
    "quick_check",
];

/// The result of one query: column names and rows of SQLite values, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// Why a query did not run.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error(
        "the warehouse is read-only through `stats sql` ({reason}); only SELECT queries are \
         allowed"
    )]
    Refused { reason: String },
    #[error("the query failed: {0}")]
    Query(String),
    #[error("cannot open the warehouse {} for querying: {reason}", path.display())]
    Open { path: PathBuf, reason: String },
}

/// Open `db` for user queries: read-only file, `query_only`, and the authorizer.
pub fn open_query_connection(db: &Path) -> Result<Connection, SqlError> {
    let open_err =
        |e: rusqlite::Error| SqlError::Open { path: db.to_path_buf(), reason: e.to_string() };
    // Read-only also for a warehouse this user cannot write (see `open::read_only_connection`).
    let mut conn = crate::warehouse::open::read_only_connection(db)
        .map_err(|e| SqlError::Open { path: db.to_path_buf(), reason: e.to_string() })?;
    conn.pragma_update(None, "query_only", "ON").map_err(open_err)?;
    lock_down(&mut conn).map_err(open_err)?;
    Ok(conn)
}

/// Install the authorizer on an already open connection.
pub fn lock_down(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.authorizer(Some(authorize))
}

fn authorize(ctx: AuthContext<'_>) -> Authorization {
    match ctx.action {
        AuthAction::Select | AuthAction::Read { .. } | AuthAction::Recursive => {
            Authorization::Allow
        }
        AuthAction::Function { function_name } => {
            if function_name.eq_ignore_ascii_case("load_extension") {
                Authorization::Deny
            } else {
                Authorization::Allow
            }
        }
        AuthAction::Pragma { pragma_name, pragma_value } => {
            let name = pragma_name.to_ascii_lowercase();
            let introspection = READ_ONLY_PRAGMAS.contains(&name.as_str());
            // `user_version = 5` would write; the introspection pragmas take a table name.
            let writes = matches!(name.as_str(), "schema_version" | "user_version")
                && pragma_value.is_some();
            if introspection && !writes { Authorization::Allow } else { Authorization::Deny }
        }
        _ => Authorization::Deny,
    }
}

/// Run one statement and collect every row. More than one statement is refused, so a
/// trailing `; DROP …` can never hide behind a SELECT.
pub fn run_query(conn: &Connection, sql: &str) -> Result<QueryResult, SqlError> {
    let mut stmt = conn.prepare(sql).map_err(classify)?;
    if !stmt.readonly() {
        return Err(SqlError::Refused { reason: "the statement would write".into() });
    }
    let columns: Vec<String> = stmt.column_names().map(str::to_string).collect();
    let n = columns.len();
    let rows = stmt
        .query_map([], |row| (0..n).map(|i| row.get::<_, Value>(i)).collect::<Result<Vec<_>, _>>())
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(classify)?;
    Ok(QueryResult { columns, rows })
}

fn classify(e: rusqlite::Error) -> SqlError {
    use rusqlite::ErrorCode;
    match &e {
        rusqlite::Error::MultipleStatement => {
            SqlError::Refused { reason: "one statement per query".into() }
        }
        _ => match e.sqlite_error_code() {
            Some(ErrorCode::AuthorizationForStatementDenied)
            | Some(ErrorCode::ReadOnly)
            | Some(ErrorCode::PermissionDenied) => SqlError::Refused { reason: one_line(&e) },
            // A denied function surfaces as a plain SQLITE_ERROR with this text.
            _ if e.to_string().contains("not authorized") => {
                SqlError::Refused { reason: one_line(&e) }
            }
            _ => SqlError::Query(one_line(&e)),
        },
    }
}

fn one_line(e: &rusqlite::Error) -> String {
    e.to_string().lines().map(str::trim).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::Warehouse;

    fn query_db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("w.sqlite");
        drop(Warehouse::open(&db).unwrap());
        let conn = open_query_connection(&db).unwrap();
        (dir, conn)
    }

    #[test]
    fn selects_run_and_return_typed_cells() {
        let (_dir, conn) = query_db();
        let r =
            run_query(&conn, "SELECT 1 AS i, 2.5 AS r, 'x' AS t, NULL AS n, x'00ff' AS b").unwrap();
        assert_eq!(r.columns, ["i", "r", "t", "n", "b"]);
        assert_eq!(
            r.rows,
            [vec![
                Value::Integer(1),
                Value::Real(2.5),
                Value::Text("x".into()),
                Value::Null,
                Value::Blob(vec![0, 255])
            ]]
        );
        let r = run_query(&conn, "SELECT count(*) FROM sidecar").unwrap();
        assert_eq!(r.rows, [vec![Value::Integer(0)]]);
        run_query(&conn, "PRAGMA table_info(sidecar)").unwrap();
        run_query(&conn, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<3) SELECT * FROM c").unwrap();
    }

    #[test]
    fn every_kind_of_write_is_refused() {
        let (dir, conn) = query_db();
        let attach = format!("ATTACH '{}' AS x", dir.path().join("new.sqlite").display());
        for sql in [
            "INSERT INTO runs_root (path) VALUES ('x')",
            "UPDATE runs_root SET path = 'y'",
            "DELETE FROM ingested_sidecar",
            "DROP TABLE ingested_sidecar",
            "DROP VIEW sidecar",
            "CREATE TABLE t (x)",
            "CREATE TEMP TABLE t (x)",
            "PRAGMA query_only = OFF",
            "PRAGMA user_version = 7",
            "PRAGMA journal_mode = DELETE",
            "BEGIN",
            "VACUUM",
            "SELECT load_extension('x')",
            "SELECT 1; DELETE FROM runs_root",
            attach.as_str(),
        ] {
            let err = run_query(&conn, sql).unwrap_err();
            assert!(matches!(err, SqlError::Refused { .. }), "{sql}: {err}");
            assert!(err.to_string().contains("read-only through `stats sql`"), "{err}");
        }
        assert!(!dir.path().join("new.sqlite").exists());
    }

    #[test]
    fn a_bad_query_is_a_query_error_not_a_refusal() {
        let (_dir, conn) = query_db();
        let err = run_query(&conn, "SELECT nope FROM sidecar").unwrap_err();
        assert!(matches!(err, SqlError::Query(_)), "{err}");
    }
}
