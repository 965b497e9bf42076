//! `stats list-metrics`: the metric registry.

use clap::Args;

use crate::cli::output;
use crate::metric::METRICS;
use crate::report::metrics;

#[derive(Debug, Args)]
pub struct ListMetricsArgs {
    /// Print a JSON array instead of a table
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ListMetricsArgs) -> anyhow::Result<u8> {
    output::emit(
        args.json,
        |o| metrics::write_json(o, &METRICS),
        |o| metrics::write_text(o, &METRICS),
    )?;
    Ok(crate::exit_code::SUCCESS)
}
