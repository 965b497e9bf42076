//! `cargo ktstr stats …`: one file per subcommand.

pub mod bisect;
pub mod calibrate;
mod commit_match;
pub mod compare;
pub mod explain_sidecar;
pub mod history;
pub mod ingest;
pub mod list;
pub mod list_metrics;
pub mod list_values;
pub mod merge;
mod no_data;
pub mod report;
mod run_lookup;
pub mod show_host;
pub mod sql;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(subcommand)]
    pub command: StatsCommand,
}

#[derive(Debug, Subcommand)]
pub enum StatsCommand {
    /// Index sidecars from a runs root into the SQLite warehouse
    Ingest(ingest::IngestArgs),
    /// List run directories with their test counts, dates and architectures
    List(list::ListArgs),
    /// List the registered metrics compare gates on
    ListMetrics(list_metrics::ListMetricsArgs),
    /// List the distinct values of every filterable dimension
    ListValues(list_values::ListValuesArgs),
    /// Show the host context recorded for a run
    ShowHost(show_host::ShowHostArgs),
    /// Explain which optional sidecar fields are null in a run, and why
    ExplainSidecar(explain_sidecar::ExplainSidecarArgs),
    /// Compare two sides of the pool; exits 1 on any regression
    Compare(Box<compare::CompareArgs>),
    /// Run a read-only SQL query against the warehouse
    Sql(sql::SqlArgs),
    /// One metric of one series across commits, in git order, with steps marked
    History(Box<history::HistoryArgs>),
    /// Write a self-contained HTML report: compare table, sample plots, trends
    Report(Box<report::ReportArgs>),
    /// Fold other hosts' warehouses into this one, deduplicated by content
    Merge(merge::MergeArgs),
    /// Judge HEAD on one metric for `git bisect run` (exit 0 good, 1 bad, 125 skip)
    Bisect(bisect::BisectArgs),
    /// A/A calibration of the noise gate on one commit's repeated runs
    Calibrate(Box<calibrate::CalibrateArgs>),
}

pub fn run(args: StatsArgs) -> anyhow::Result<u8> {
    match args.command {
        StatsCommand::Ingest(a) => ingest::run(a),
        StatsCommand::List(a) => list::run(a),
        StatsCommand::ListMetrics(a) => list_metrics::run(a),
        StatsCommand::ListValues(a) => list_values::run(a),
        StatsCommand::ShowHost(a) => show_host::run(a),
        StatsCommand::ExplainSidecar(a) => explain_sidecar::run(a),
        StatsCommand::Compare(a) => compare::run(*a),
        StatsCommand::Sql(a) => sql::run(a),
        StatsCommand::History(a) => history::run(*a),
        StatsCommand::Report(a) => report::run(*a),
        StatsCommand::Merge(a) => merge::run(a),
        StatsCommand::Bisect(a) => bisect::run(a),
        StatsCommand::Calibrate(a) => calibrate::run(*a),
    }
}
