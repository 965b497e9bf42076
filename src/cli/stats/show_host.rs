//! `stats show-host`: the host context a run recorded.

use std::path::PathBuf;

use clap::Args;

use crate::cli::WarehouseArgs;

#[derive(Debug, Args)]
pub struct ShowHostArgs {
    /// Run directory name (see `cargo ktstr stats list`)
    #[arg(long, value_name = "ID")]
    pub run: String,
    /// Runs root to look in instead of the default
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
}

pub fn run(_args: ShowHostArgs) -> anyhow::Result<u8> {
    anyhow::bail!("stats show-host: not wired yet")
}
