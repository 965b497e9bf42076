//! `stats ingest`: index a runs root into the warehouse, once or continuously (`--watch`).

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Runs root to ingest [default: {CARGO_TARGET_DIR or target}/ktstr]
    #[arg(long, value_name = "ROOT")]
    pub dir: Option<PathBuf>,
    /// SQLite warehouse file [default: warehouse.sqlite inside the runs root]
    #[arg(long, env = "KTSTR_DB", value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Keep running and ingest sidecars as they appear, until interrupted
    #[arg(long)]
    pub watch: bool,
    /// Print the ingest report as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(_args: IngestArgs) -> anyhow::Result<u8> {
    anyhow::bail!("stats ingest: not wired yet")
}
