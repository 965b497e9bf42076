//! The errors of a read command that found nothing to read (exit 2): no database and no runs
//! root, or a `--dir` root that neither exists nor was ever ingested. Shared by `stats sql`
//! and `stats list-values`, so both say it the same way.

use std::path::Path;

use crate::cli::warehouse::Location;
use crate::cli::{ExitError, WarehouseArgs};
use crate::exit_code;

/// "no warehouse at DB and no runs root at ROOT", with the hint on what to pass.
pub fn nothing_to_read(dir: Option<&Path>, warehouse: &WarehouseArgs) -> anyhow::Error {
    let loc = Location::resolve(dir, warehouse.db.as_deref());
    ExitError {
        code: exit_code::USAGE_OR_DATA_ERROR,
        message: format!(
            "no warehouse at {} and no runs root at {}",
            loc.db.display(),
            loc.root.display()
        ),
        hint: Some("pass --dir ROOT or --db FILE, or run `cargo ktstr test` first".into()),
    }
    .into()
}

/// `--dir ROOT` names no directory, and the warehouse (an archive `--db`) has never ingested
/// it either.
pub fn root_not_in_warehouse(loc: &Location) -> anyhow::Error {
    ExitError {
        code: exit_code::USAGE_OR_DATA_ERROR,
        message: format!(
            "no runs root at {}, and the warehouse {} holds no runs from it",
            loc.root.display(),
            loc.db.display()
        ),
        hint: Some("check the --dir path; `stats list --db FILE` shows the runs it holds".into()),
    }
    .into()
}
