//! `stats list`: run directories, newest first, including runs whose files were pre-cleared.

use clap::Args;

use crate::cli::WarehouseArgs;

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

pub fn run(_args: ListArgs) -> anyhow::Result<u8> {
    anyhow::bail!("stats list: not wired yet")
}
