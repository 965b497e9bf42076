//! `stats merge OTHER.sqlite…`: fold other hosts' warehouses into this one
//! (`warehouse::merge`), one file at a time, each in its own transaction; print what each
//! brought in.

use std::path::PathBuf;

use clap::Args;

use crate::cli::warehouse::Location;
use crate::cli::{ExitError, output};
use crate::exit_code;
use crate::warehouse::Warehouse;
use crate::warehouse::merge::merge_warehouse;

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Warehouse files to fold in (each another host's warehouse.sqlite)
    #[arg(required = true, value_name = "OTHER.sqlite")]
    pub others: Vec<PathBuf>,
    /// The warehouse to merge into [default: warehouse.sqlite inside the runs root]
    #[arg(long, env = "KTSTR_DB", value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Runs root whose warehouse.sqlite is the target when --db is not given
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn run(args: MergeArgs) -> anyhow::Result<u8> {
    let loc = Location::resolve(args.dir.as_deref(), args.db.as_deref());
    let mut wh = Warehouse::open(&loc.db)?;
    for other in &args.others {
        let report = merge_warehouse(&mut wh, other).map_err(|e| ExitError {
            code: exit_code::USAGE_OR_DATA_ERROR,
            message: format!("stats merge: {e}"),
            hint: None,
        })?;
        output::write_stdout(|out| {
            writeln!(
                out,
                "merged {} into {}: {} new sidecar(s), {} already present",
                report.source.display(),
                loc.db.display(),
                report.new_sidecars,
                report.duplicates()
            )
        })?;
    }
    Ok(exit_code::SUCCESS)
}
