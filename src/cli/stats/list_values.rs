//! `stats list-values`: distinct values of every filterable dimension.

use std::path::PathBuf;

use clap::Args;

use crate::cli::warehouse::open_for_read;
use crate::cli::{WarehouseArgs, output};
use crate::report::values;
use crate::warehouse::runs::root_id;
use crate::warehouse::values::{DimensionValues, dimension_values, root_dimension_values};

#[derive(Debug, Args)]
pub struct ListValuesArgs {
    /// Print one JSON object instead of text
    #[arg(long)]
    pub json: bool,
    /// Pool root to read instead of the default runs root; reports run_source as `archive`
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
}

pub fn run(args: ListValuesArgs) -> anyhow::Result<u8> {
    // Nothing on disk and no database is an empty pool, not an error (as in ktstr).
    let mut dims = match open_for_read(args.dir.as_deref(), &args.warehouse)? {
        // `--dir` is that root's pool, as in compare, even in an archive shared with others.
        Some((wh, loc, _)) if args.dir.is_some() => match root_id(&wh, &loc.root)? {
            Some(id) => root_dimension_values(&wh, id)?,
            None => DimensionValues::default(),
        },
        Some((wh, _, _)) => dimension_values(&wh)?,
        None => DimensionValues::default(),
    };
    if args.dir.is_some() {
        dims.relabel_sources_as_archive();
    }
    output::emit(args.json, |o| values::write_json(o, &dims), |o| values::write_text(o, &dims))?;
    Ok(crate::exit_code::SUCCESS)
}
