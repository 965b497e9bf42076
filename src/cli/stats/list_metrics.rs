//! `stats list-metrics`: the metric registry.

use clap::Args;

#[derive(Debug, Args)]
pub struct ListMetricsArgs {
    /// Print a JSON array instead of a table
    #[arg(long)]
    pub json: bool,
}

pub fn run(_args: ListMetricsArgs) -> anyhow::Result<u8> {
    anyhow::bail!("stats list-metrics: not wired yet")
}
