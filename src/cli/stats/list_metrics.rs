//! `stats list-metrics`: the metric registry.

use std::io::Write;

use clap::Args;

use crate::metric::METRICS;
use crate::report::metrics;

#[derive(Debug, Args)]
pub struct ListMetricsArgs {
    /// Print a JSON array instead of a table
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ListMetricsArgs) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    if args.json {
        metrics::write_json(&mut out, &METRICS)?;
    } else {
        metrics::write_text(&mut out, &METRICS)?;
    }
    out.flush()?;
    Ok(crate::exit_code::SUCCESS)
}
