//! `stats list-values`: distinct values of every filterable dimension; exit 2 when there is
//! neither a runs root nor a warehouse to read them from.

use std::path::PathBuf;

use clap::Args;

use super::no_data::{nothing_to_read, root_not_in_warehouse};
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
    // An existing root with nothing in it is an empty pool, listed as such (as in ktstr); no
    // root and no database at all is a typo or a wrong directory, and says so (exit 2).
    let Some((wh, loc, _)) = open_for_read(args.dir.as_deref(), &args.warehouse)? else {
        return Err(nothing_to_read(args.dir.as_deref(), &args.warehouse));
    };
    let mut dims = if args.dir.is_some() {
        // `--dir` is that root's pool, as in compare, even in an archive shared with others.
        match root_id(&wh, &loc.root)? {
            Some(id) => root_dimension_values(&wh, id)?,
            None if !loc.root.is_dir() => return Err(root_not_in_warehouse(&loc)),
            None => DimensionValues::default(),
        }
    } else {
        dimension_values(&wh)?
    };
    if args.dir.is_some() {
        dims.relabel_sources_as_archive();
    }
    output::emit(args.json, |o| values::write_json(o, &dims), |o| values::write_text(o, &dims))?;
    Ok(crate::exit_code::SUCCESS)
}
