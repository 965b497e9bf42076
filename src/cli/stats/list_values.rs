//! `stats list-values`: distinct values of every filterable dimension.

use std::path::PathBuf;

use clap::Args;

use crate::cli::WarehouseArgs;

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

pub fn run(_args: ListValuesArgs) -> anyhow::Result<u8> {
    anyhow::bail!("stats list-values: not wired yet")
}
