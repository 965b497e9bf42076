//! `stats compare`: A/B over the warehouse pool with the dual gate; exit 1 on regression.

use std::path::PathBuf;

use clap::Args;

use crate::cli::WarehouseArgs;

/// Filters for one dimension set. Shared flags pin both sides; `--a-X`/`--b-X` replace the
/// shared value for that side only ("more-specific replaces").
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Only pairs whose "scenario topology scheduler work_type flags" contains this substring
    #[arg(short = 'E', long = "filter", value_name = "STR")]
    pub filter: Option<String>,
    /// Uniform relative threshold in percent (the absolute gate still applies)
    #[arg(long, value_name = "PCT", conflicts_with = "policy")]
    pub threshold: Option<f64>,
    /// JSON comparison policy: {"default_percent": N, "per_metric_percent": {"metric": N}}
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Keep each sidecar distinct instead of averaging per pairing key
    #[arg(long)]
    pub no_average: bool,
    /// Pool root to read instead of the default runs root; reports run_source as `archive`
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Print one JSON object instead of the table
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,

    #[arg(long, value_name = "V", help_heading = "Both sides")]
    pub kernel: Vec<String>,
    #[arg(long, value_name = "REV", help_heading = "Both sides")]
    pub project_commit: Vec<String>,
    #[arg(long, value_name = "REV", help_heading = "Both sides")]
    pub kernel_commit: Vec<String>,
    #[arg(long, value_name = "S", help_heading = "Both sides")]
    pub run_source: Vec<String>,
    #[arg(long, value_name = "NAME", help_heading = "Both sides")]
    pub scheduler: Vec<String>,
    #[arg(long, value_name = "TOPO", help_heading = "Both sides")]
    pub topology: Vec<String>,
    #[arg(long, value_name = "T", help_heading = "Both sides")]
    pub work_type: Vec<String>,
    #[arg(long, value_name = "F", help_heading = "Both sides")]
    pub flag: Vec<String>,

    #[arg(long, value_name = "V", help_heading = "Side A")]
    pub a_kernel: Vec<String>,
    #[arg(long, value_name = "REV", help_heading = "Side A")]
    pub a_project_commit: Vec<String>,
    #[arg(long, value_name = "REV", help_heading = "Side A")]
    pub a_kernel_commit: Vec<String>,
    #[arg(long, value_name = "S", help_heading = "Side A")]
    pub a_run_source: Vec<String>,
    #[arg(long, value_name = "NAME", help_heading = "Side A")]
    pub a_scheduler: Vec<String>,
    #[arg(long, value_name = "TOPO", help_heading = "Side A")]
    pub a_topology: Vec<String>,
    #[arg(long, value_name = "T", help_heading = "Side A")]
    pub a_work_type: Vec<String>,
    #[arg(long, value_name = "F", help_heading = "Side A")]
    pub a_flag: Vec<String>,

    #[arg(long, value_name = "V", help_heading = "Side B")]
    pub b_kernel: Vec<String>,
    #[arg(long, value_name = "REV", help_heading = "Side B")]
    pub b_project_commit: Vec<String>,
    #[arg(long, value_name = "REV", help_heading = "Side B")]
    pub b_kernel_commit: Vec<String>,
    #[arg(long, value_name = "S", help_heading = "Side B")]
    pub b_run_source: Vec<String>,
    #[arg(long, value_name = "NAME", help_heading = "Side B")]
    pub b_scheduler: Vec<String>,
    #[arg(long, value_name = "TOPO", help_heading = "Side B")]
    pub b_topology: Vec<String>,
    #[arg(long, value_name = "T", help_heading = "Side B")]
    pub b_work_type: Vec<String>,
    #[arg(long, value_name = "F", help_heading = "Side B")]
    pub b_flag: Vec<String>,
}

pub fn run(_args: CompareArgs) -> anyhow::Result<u8> {
    anyhow::bail!("stats compare: not wired yet")
}
