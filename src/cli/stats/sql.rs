//! `stats sql`: ad-hoc read-only SQL against the warehouse.

use std::path::PathBuf;

use clap::Args;

use crate::cli::WarehouseArgs;

#[derive(Debug, Args)]
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

pub fn run(_args: SqlArgs) -> anyhow::Result<u8> {
    anyhow::bail!("stats sql: not wired yet")
}
