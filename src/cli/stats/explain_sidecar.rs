//! `stats explain-sidecar`: which optional fields are null in a run's sidecars, and why.

use std::path::PathBuf;

use clap::Args;

use crate::cli::WarehouseArgs;

#[derive(Debug, Args)]
pub struct ExplainSidecarArgs {
    /// Run directory name, or `run/job` for a job subdirectory
    #[arg(long, value_name = "ID")]
    pub run: String,
    /// Runs root to look in instead of the default
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
}

pub fn run(_args: ExplainSidecarArgs) -> anyhow::Result<u8> {
    anyhow::bail!("stats explain-sidecar: not wired yet")
}
