//! `stats sql`: ad-hoc read-only SQL against the warehouse.
//!
//! The warehouse is refreshed through the normal ingest connection (unless `--no-ingest`);
//! the user's query then runs on a separate locked-down connection
//! ([`crate::warehouse::sql::open_query_connection`]) and streams, row by row, into one of
//! [`crate::report::sql`]'s sinks.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::no_data::nothing_to_read;
use crate::cli::warehouse::open_for_read;
use crate::cli::{ExitError, WarehouseArgs, output};
use crate::exit_code;
use crate::report::sql::{CsvSink, JsonSink, TABLE_ROW_CAP, TableSink};
use crate::warehouse::sql::{SqlError, open_query_connection, stream_query};

#[derive(Debug, Args)]
#[command(after_help = "\
The connection is read-only: INSERT, UPDATE, DELETE, DDL, ATTACH, transactions, writable \
pragmas and extension loading are refused (exit 2). One statement per call.

Stable views (their columns survive upgrades; the tables behind them may change):
  sidecar   one row per ingested sidecar: sidecar_id, test_name, topology, scheduler,
            work_type, flags (JSON array), kernel_version, kernel_commit, project_commit,
            run_source, passed, skipped, run_id, timestamp, path, run_dir, payload,
            project_commit_id, dirty_fingerprint, run_token, repeat, backend, host_arch,
            ingested_at, present (1 while the file is still on disk), then one column
            per registered metric (`stats list-metrics`), e.g. total_iterations
  sample    one row per sidecar x metric: sidecar_id, the sidecar's dimensions (test_name
            .. path as above), metric_origin (registry, ext or payload), metric, value
            (NULL when the sidecar had no finite value)
Use `stats sql \"PRAGMA table_info(sidecar)\"` for the exact columns. Active flags are also
in the table sidecar_flag (sidecar_id, flag).

Output: an aligned table by default (NULL shown as NULL; at most the first 1000 rows, with a
note on stderr when there were more); --json prints an array of
objects keyed by column name (NULL -> null, integers and reals -> numbers, non-finite
reals -> null); --csv prints RFC 4180 CSV with a header row and CRLF line ends (NULL ->
empty field). BLOB values are printed as lowercase hex strings in every format. --json and
--csv stream: rows are written as SQLite produces them, so memory stays flat for any
result size.

--timeout stops a query that runs longer than DURATION (e.g. 500ms, 30s, 5m, 1h; a bare
number is seconds) with exit 2; rows already written stay written. Off by default.")]
pub struct SqlArgs {
    /// The query, e.g. "SELECT test_name, count(*) FROM sidecar GROUP BY 1"
    pub query: String,
    /// Print a JSON array of objects, one per row
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV with a header row
    #[arg(long)]
    pub csv: bool,
    /// Stop the query after this long (500ms, 30s, 5m, 1h) [default: no limit]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Runs root to ingest before querying
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
}

pub fn run(args: SqlArgs) -> anyhow::Result<u8> {
    let Some((wh, loc, _refresh)) = open_for_read(args.dir.as_deref(), &args.warehouse)? else {
        return Err(nothing_to_read(args.dir.as_deref(), &args.warehouse));
    };
    // The ingest connection can write; the user's query never runs on it.
    drop(wh);
    let mut conn = open_query_connection(&loc.db)?;
    // A query error after rows were written ends the output there; it is reported after the
    // output is flushed, so stderr's line comes last.
    let mut failure = None;
    let mut truncated = false;
    output::write_stdout(|o| {
        let mut out = BufWriter::new(o);
        let streamed = if args.json {
            let mut sink = JsonSink::new(&mut out);
            stream_query(&mut conn, &args.query, args.timeout, &mut sink).map(|_| sink.finish())
        } else if args.csv {
            let mut sink = CsvSink::new(&mut out);
            stream_query(&mut conn, &args.query, args.timeout, &mut sink).map(|_| sink.finish())
        } else {
            let mut sink = TableSink::new(TABLE_ROW_CAP);
            let streamed = stream_query(&mut conn, &args.query, args.timeout, &mut sink);
            truncated = sink.truncated();
            streamed.map(|_| sink.finish(&mut out))
        };
        match streamed {
            Ok(written) => written,
            Err(SqlError::Output(e)) => Err(e),
            Err(e) => {
                failure = Some(e);
                out.flush()
            }
        }
    })?;
    if let Some(e) = failure {
        return Err(query_error(e));
    }
    if truncated {
        eprintln!(
            "ktstr: showing the first {TABLE_ROW_CAP} rows; the query returned more. Use --csv \
             or --json for every row, or add a LIMIT"
        );
    }
    Ok(exit_code::SUCCESS)
}

/// Refusals, empty queries and timeouts are the user's to fix: exit 2 with the message alone.
fn query_error(e: SqlError) -> anyhow::Error {
    match e {
        SqlError::Refused { .. } | SqlError::Empty | SqlError::TimedOut { .. } => {
            anyhow::Error::new(ExitError {
                code: exit_code::USAGE_OR_DATA_ERROR,
                message: e.to_string(),
                hint: None,
            })
        }
        other => other.into(),
    }
}

/// `250ms`, `30s`, `1.5s`, `5m`, `1h`, or a bare number of seconds; more than zero.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown unit `{other}`; use ms, s, m or h, e.g. 30s")),
    };
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a duration, e.g. 30s"))?;
    Duration::try_from_secs_f64(value * scale)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("`{text}` must be more than zero, e.g. 30s"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_and_bare_seconds() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "0", "0s", "-1s", "1d", "s", "1..2s", "NaN", "inf"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
