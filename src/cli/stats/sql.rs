//! `stats sql`: ad-hoc read-only SQL against the warehouse.
//!
//! The warehouse is refreshed through the normal ingest connection (unless `--no-ingest`);
//! the user's query then runs on a separate locked-down connection
//! ([`crate::warehouse::sql::open_query_connection`]) and is rendered by [`crate::report::sql`].

use std::path::PathBuf;

use clap::Args;

use crate::cli::warehouse::open_for_read;
use crate::cli::{ExitError, WarehouseArgs, output};
use crate::exit_code;
use crate::report::sql::{write_csv, write_json, write_table};
use crate::warehouse::sql::{SqlError, open_query_connection, run_query};

#[derive(Debug, Args)]
#[command(after_help = "\
The connection is read-only: INSERT, UPDATE, DELETE, DDL, ATTACH, transactions, writable \
pragmas and extension loading are refused (exit 2). One statement per call.

Stable views (their columns survive upgrades; the tables behind them may change):
  sidecar   one row per ingested sidecar: sidecar_id, test_name, topology, scheduler,
            work_type, flags (JSON array), kernel_version, kernel_commit, project_commit,
            run_source, passed, skipped, run_id, timestamp, path, run_dir, payload,
            project_commit_id, dirty_fingerprint, run_token, backend, host_arch,
            ingested_at, present (1 while the file is still on disk), then one column
            per registered metric (`stats list-metrics`), e.g. total_iterations
  sample    one row per sidecar x metric: sidecar_id, the sidecar's dimensions (test_name
            .. path as above), metric_origin (registry, ext or payload), metric, value
            (NULL when the sidecar had no finite value)
Use `stats sql \"PRAGMA table_info(sidecar)\"` for the exact columns. Active flags are also
in the table sidecar_flag (sidecar_id, flag).

Output: an aligned table by default (NULL shown as NULL); --json prints an array of
objects keyed by column name (NULL -> null, integers and reals -> numbers, non-finite
reals -> null); --csv prints RFC 4180 CSV with a header row and CRLF line ends (NULL ->
empty field). BLOB values are printed as lowercase hex strings in every format.")]
pub struct SqlArgs {
    /// The query, e.g. "SELECT test_name, count(*) FROM sidecar GROUP BY 1"
    pub query: String,
    /// Print a JSON array of objects, one per row
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV with a header row
    #[arg(long)]
    pub csv: bool,
    /// Runs root to ingest before querying
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
}

pub fn run(args: SqlArgs) -> anyhow::Result<u8> {
    let Some((wh, loc, _refresh)) = open_for_read(args.dir.as_deref(), &args.warehouse)? else {
        let loc = crate::cli::warehouse::Location::resolve(
            args.dir.as_deref(),
            args.warehouse.db.as_deref(),
        );
        return Err(ExitError {
            code: exit_code::USAGE_OR_DATA_ERROR,
            message: format!(
                "no warehouse at {} and no runs root at {}",
                loc.db.display(),
                loc.root.display()
            ),
            hint: Some("pass --dir ROOT or --db FILE, or run `cargo ktstr test` first".into()),
        }
        .into());
    };
    // The ingest connection can write; the user's query never runs on it.
    drop(wh);
    let conn = open_query_connection(&loc.db)?;
    let result = run_query(&conn, &args.query).map_err(|e| match e {
        SqlError::Refused { .. } => anyhow::Error::new(ExitError {
            code: exit_code::USAGE_OR_DATA_ERROR,
            message: e.to_string(),
            hint: None,
        }),
        other => other.into(),
    })?;
    output::write_stdout(|o| {
        if args.json {
            write_json(o, &result)
        } else if args.csv {
            write_csv(o, &result)
        } else {
            write_table(o, &result)
        }
    })?;
    Ok(exit_code::SUCCESS)
}
