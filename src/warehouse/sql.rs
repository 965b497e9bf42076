//! Ad-hoc read-only SQL (`stats sql`): a connection that cannot change anything, and a query
//! runner that hands typed cells to a [`RowSink`] row by row, so a ten-million-row result
//! never sits in memory, with an optional deadline enforced through SQLite's progress
//! handler. Rendering (table, JSON, CSV) is `crate::report::sql`'s.
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

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::ValueRef;

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

/// Receives one query's result as SQLite produces it, so no result is ever held whole.
pub trait RowSink {
    /// The column names, once, before any row.
    fn columns(&mut self, names: &[String]) -> io::Result<()>;
    /// One row, cells in column order. `Ok(false)` stops the query: the sink has enough.
    fn row(&mut self, cells: &[ValueRef<'_>]) -> io::Result<bool>;
}

/// How a streamed query ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streamed {
    /// Rows handed to the sink.
    pub rows: u64,
    /// The sink stopped the query before its last row.
    pub stopped_early: bool,
}

/// Why a query did not run, or did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error(
        "the warehouse is read-only through `stats sql` ({reason}); only SELECT queries are \
         allowed"
    )]
    Refused { reason: String },
    #[error("the query is empty; pass one statement, e.g. \"SELECT count(*) FROM sidecar\"")]
    Empty,
    #[error(
        "the query was stopped after {} (--timeout); narrow it with WHERE or LIMIT, or raise \
         --timeout",
        humane(*after)
    )]
    TimedOut { after: Duration },
    #[error("the query failed: {0}")]
    Query(String),
    #[error("cannot open the warehouse {} for querying: {reason}", path.display())]
    Open { path: PathBuf, reason: String },
    /// The sink could not write (a closed pipe, a full disk).
    #[error("writing the query result failed")]
    Output(#[source] io::Error),
}

/// `2s`, `250ms`, `1.500s`: a timeout as the user would write it.
fn humane(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
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

/// SQLite calls the progress handler every this many virtual-machine steps; checking the
/// clock that often costs nothing measurable and stops a runaway query within microseconds.
const PROGRESS_STEPS: i32 = 1000;

/// Run one statement, handing each row to `sink` as it is produced. More than one statement
/// is refused, so a trailing `; DROP …` can never hide behind a SELECT. With `timeout`, the
/// query is interrupted once that much time has passed since it started (time the sink spends
/// writing counts too).
pub fn stream_query(
    conn: &mut Connection,
    sql: &str,
    timeout: Option<Duration>,
    sink: &mut dyn RowSink,
) -> Result<Streamed, SqlError> {
    if is_blank(sql) {
        return Err(SqlError::Empty);
    }
    if let Some(after) = timeout {
        let deadline = Instant::now() + after;
        conn.progress_handler(PROGRESS_STEPS, Some(move || Instant::now() >= deadline))
            .map_err(classify)?;
    }
    let streamed = stream_rows(conn, sql, sink);
    if timeout.is_some() {
        // Clearing a handler cannot fail; a failure would only leave the deadline armed.
        let _ = conn.progress_handler(0, None::<fn() -> bool>);
    }
    streamed.map_err(|stop| match (stop, timeout) {
        (Stop::Sqlite(e), Some(after))
            if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) =>
        {
            SqlError::TimedOut { after }
        }
        (Stop::Sqlite(e), _) => classify(e),
        (Stop::Refused(e), _) => e,
        (Stop::Sink(e), _) => SqlError::Output(e),
    })
}

/// Where [`stream_rows`] stopped, before it becomes what the user sees.
enum Stop {
    Sqlite(rusqlite::Error),
    Refused(SqlError),
    Sink(io::Error),
}

fn stream_rows(conn: &Connection, sql: &str, sink: &mut dyn RowSink) -> Result<Streamed, Stop> {
    let mut stmt = conn.prepare(sql).map_err(Stop::Sqlite)?;
    if !stmt.readonly() {
        let reason = "the statement would write".into();
        return Err(Stop::Refused(SqlError::Refused { reason }));
    }
    let columns: Vec<String> = stmt.column_names().map(str::to_string).collect();
    sink.columns(&columns).map_err(Stop::Sink)?;
    let n = columns.len();
    let mut rows = stmt.query([]).map_err(Stop::Sqlite)?;
    let mut count = 0;
    while let Some(row) = rows.next().map_err(Stop::Sqlite)? {
        let cells = (0..n).map(|i| row.get_ref(i)).collect::<Result<Vec<_>, _>>();
        let more = sink.row(&cells.map_err(Stop::Sqlite)?).map_err(Stop::Sink)?;
        count += 1;
        if !more {
            return Ok(Streamed { rows: count, stopped_early: true });
        }
    }
    Ok(Streamed { rows: count, stopped_early: false })
}

/// Nothing but whitespace, semicolons and comments: SQLite would compile no statement and
/// answer with a baffling "bad parameter or other API misuse".
fn is_blank(sql: &str) -> bool {
    let mut rest = sql;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
        if let Some(comment) = rest.strip_prefix("--") {
            rest = comment.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(comment) = rest.strip_prefix("/*") {
            // An unterminated block comment runs to the end of the input, as in SQLite.
            rest = comment.split_once("*/").map_or("", |(_, after)| after);
        } else {
            return rest.is_empty();
        }
    }
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
    use rusqlite::types::Value;

    fn query_db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("w.sqlite");
        drop(Warehouse::open(&db).unwrap());
        let conn = open_query_connection(&db).unwrap();
        (dir, conn)
    }

    /// Collects everything, or stops after `cap` rows.
    #[derive(Default)]
    struct Collect {
        columns: Vec<String>,
        rows: Vec<Vec<Value>>,
        cap: Option<usize>,
    }

    impl RowSink for Collect {
        fn columns(&mut self, names: &[String]) -> io::Result<()> {
            self.columns = names.to_vec();
            Ok(())
        }

        fn row(&mut self, cells: &[ValueRef<'_>]) -> io::Result<bool> {
            self.rows.push(cells.iter().map(|&c| Value::try_from(c).unwrap()).collect());
            Ok(self.cap.is_none_or(|cap| self.rows.len() < cap))
        }
    }

    fn run(conn: &mut Connection, sql: &str) -> Result<Collect, SqlError> {
        let mut sink = Collect::default();
        stream_query(conn, sql, None, &mut sink)?;
        Ok(sink)
    }

    #[test]
    fn selects_run_and_return_typed_cells() {
        let (_dir, mut conn) = query_db();
        let r =
            run(&mut conn, "SELECT 1 AS i, 2.5 AS r, 'x' AS t, NULL AS n, x'00ff' AS b").unwrap();
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
        let r = run(&mut conn, "SELECT count(*) FROM sidecar").unwrap();
        assert_eq!(r.rows, [vec![Value::Integer(0)]]);
        run(&mut conn, "PRAGMA table_info(sidecar)").unwrap();
        run(&mut conn, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<3) SELECT * FROM c").unwrap();
    }

    #[test]
    fn every_kind_of_write_is_refused() {
        let (dir, mut conn) = query_db();
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
            let err = run(&mut conn, sql).err().unwrap();
            assert!(matches!(err, SqlError::Refused { .. }), "{sql}: {err}");
            assert!(err.to_string().contains("read-only through `stats sql`"), "{err}");
        }
        assert!(!dir.path().join("new.sqlite").exists());
    }

    #[test]
    fn a_bad_query_is_a_query_error_not_a_refusal() {
        let (_dir, mut conn) = query_db();
        let err = run(&mut conn, "SELECT nope FROM sidecar").err().unwrap();
        assert!(matches!(err, SqlError::Query(_)), "{err}");
    }

    #[test]
    fn blank_text_is_the_empty_query_error() {
        let (_dir, mut conn) = query_db();
        for sql in ["", "  \n\t", ";", " ; ;", "-- nothing", "/* a */ -- b\n;", "/* open"] {
            let err = run(&mut conn, sql).err().unwrap();
            assert!(matches!(err, SqlError::Empty), "{sql:?}: {err}");
        }
        for sql in ["-- c\nSELECT 1", "/* c */ SELECT 1;", "SELECT '--'"] {
            assert_eq!(run(&mut conn, sql).unwrap().rows.len(), 1, "{sql:?}");
        }
    }

    #[test]
    fn a_sink_can_stop_the_query_early() {
        let (_dir, mut conn) = query_db();
        let endless =
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c";
        let mut sink = Collect { cap: Some(3), ..Default::default() };
        let done = stream_query(&mut conn, endless, None, &mut sink).unwrap();
        assert_eq!(done, Streamed { rows: 3, stopped_early: true });
        assert_eq!(sink.rows.len(), 3);
    }

    #[test]
    fn the_timeout_interrupts_a_runaway_query_and_is_then_disarmed() {
        let (_dir, mut conn) = query_db();
        let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) \
                       SELECT count(*) FROM c";
        let started = Instant::now();
        let err = stream_query(
            &mut conn,
            endless,
            Some(Duration::from_millis(200)),
            &mut Collect::default(),
        )
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(20), "interrupted promptly");
        assert!(matches!(err, SqlError::TimedOut { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "the query was stopped after 200ms (--timeout); narrow it with WHERE or LIMIT, or \
             raise --timeout"
        );
        // The next query on the connection runs without the old deadline.
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(run(&mut conn, "SELECT 1").unwrap().rows.len(), 1);
    }
}
