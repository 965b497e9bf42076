//! `stats history`: one metric of one series across commits, in git order.
//!
//! Flags become a filter, the warehouse selects the samples (`warehouse::history`), the
//! repository's first-parent chain orders the commits (`provenance::first_parent`), the trend
//! is computed (`compare::trend`) and rendered (`report::history`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::cli::{ExitError, WarehouseArgs, output, warehouse};
use crate::compare::trend::{TrendSample, build_trend};
use crate::compare::{Dim, PoolScope, SideFilter};
use crate::exit_code;
use crate::provenance::first_parent::first_parent_history;
use crate::report::history::{self, HistoryReport};
use crate::warehouse::Warehouse;
use crate::warehouse::history::{
    HistoryMetric, HistoryQuery, MetricLookupError, SeriesKey, history_samples, lookup_metric,
};

/// How far back the first-parent walk goes; older commits fall back to being left out.
const HISTORY_LIMIT: usize = 100_000;

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The metric to follow (a registry name, or a stored ext/payload metric)
    #[arg(long, value_name = "M")]
    pub metric: String,
    #[command(flatten)]
    pub series: SeriesArgs,
    /// Pool root to read instead of the default runs root
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Print JSON instead of the table
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
}

/// Which series: a test and the dimensions that tell its variants apart.
#[derive(Debug, Clone, Default, Args)]
pub struct SeriesArgs {
    /// Test (scenario) name
    #[arg(long, value_name = "NAME")]
    pub test: Option<String>,
    #[arg(long, value_name = "V")]
    pub kernel: Vec<String>,
    #[arg(long, value_name = "REV")]
    pub kernel_commit: Vec<String>,
    #[arg(long, value_name = "S")]
    pub run_source: Vec<String>,
    #[arg(long, value_name = "NAME")]
    pub scheduler: Vec<String>,
    #[arg(long, value_name = "TOPO")]
    pub topology: Vec<String>,
    #[arg(long, value_name = "T")]
    pub work_type: Vec<String>,
    #[arg(long, value_name = "F")]
    pub flag: Vec<String>,
}

impl SeriesArgs {
    pub fn filter(&self) -> SideFilter {
        let mut f = SideFilter::default();
        f.set(Dim::Kernel, self.kernel.clone());
        f.set(Dim::KernelCommit, self.kernel_commit.clone());
        f.set(Dim::RunSource, self.run_source.clone());
        f.set(Dim::Scheduler, self.scheduler.clone());
        f.set(Dim::Topology, self.topology.clone());
        f.set(Dim::WorkType, self.work_type.clone());
        f.set(Dim::Flags, self.flag.clone());
        f
    }
}

fn usage(message: impl Into<String>) -> anyhow::Error {
    ExitError { code: exit_code::USAGE_OR_DATA_ERROR, message: message.into(), hint: None }.into()
}

/// Resolve a metric name, turning an unknown name into a usage error with its suggestion.
pub fn resolve_metric(wh: &Warehouse, name: &str) -> anyhow::Result<HistoryMetric> {
    lookup_metric(wh, name).map_err(|e| match e {
        e @ MetricLookupError::Unknown { .. } => usage(format!("stats history: {e}")),
        MetricLookupError::Sqlite(e) => e.into(),
    })
}

/// The first-parent order of the repository the command runs in, if any.
pub fn commit_order() -> Option<Vec<String>> {
    let cwd = std::env::current_dir().ok()?;
    first_parent_history(&cwd, HISTORY_LIMIT)
}

/// Every series the query selects, each with its trend, in series order.
pub fn series_reports(
    wh: &Warehouse,
    query: &HistoryQuery<'_>,
    order: Option<&[String]>,
) -> anyhow::Result<Vec<HistoryReport>> {
    let mut by_series: BTreeMap<SeriesKey, Vec<TrendSample>> = BTreeMap::new();
    for s in history_samples(wh, query)? {
        by_series.entry(s.series).or_default().push(TrendSample {
            commit: s.commit,
            timestamp: s.timestamp,
            value: s.value,
        });
    }
    let def = match query.metric {
        HistoryMetric::Registry(d) => Some(*d),
        HistoryMetric::Other { .. } => None,
    };
    Ok(by_series
        .into_iter()
        .map(|(key, samples)| HistoryReport {
            metric: query.metric.name().to_string(),
            unit: def.map_or("", |d| d.display_unit).to_string(),
            polarity: def.map_or(String::new(), |d| format!("{} is better", d.polarity.label())),
            series: key.label(),
            trend: build_trend(&samples, order, def),
        })
        .collect())
}

pub fn run(args: HistoryArgs) -> anyhow::Result<u8> {
    let Some((wh, loc, _)) = warehouse::open_for_read(args.dir.as_deref(), &args.warehouse)? else {
        return Err(no_data(&warehouse::Location::resolve(args.dir.as_deref(), None).root));
    };
    let metric = resolve_metric(&wh, &args.metric)?;
    let filter = args.series.filter();
    let scope = PoolScope { archive_root: args.dir.clone() };
    let query = HistoryQuery {
        metric: &metric,
        test_name: args.series.test.as_deref(),
        filter: &filter,
        scope: &scope,
    };
    let order = commit_order();
    let mut reports = series_reports(&wh, &query, order.as_deref())?;
    // `--flag` filters by "has these flags"; a series with exactly those flags is the one meant.
    if reports.len() > 1 {
        let exact: Vec<HistoryReport> = reports
            .iter()
            .filter(|r| series_flags(&r.series) == sorted(&args.series.flag))
            .cloned()
            .collect();
        if exact.len() == 1 {
            reports = exact;
        }
    }
    match reports.len() {
        0 => return Err(no_samples(&args.metric, &loc.root)),
        1 => {}
        n => {
            let names: Vec<&str> = reports.iter().take(5).map(|r| r.series.as_str()).collect();
            let more = if n > 5 { format!(", … ({} more)", n - 5) } else { String::new() };
            return Err(usage(format!(
                "stats history: {n} series match ({}{more}); narrow to one with --test, \
                 --topology, --scheduler, --work-type or --flag",
                names.join(", ")
            )));
        }
    }
    output::emit(
        args.json,
        |o| history::write_json(o, &reports),
        |o| history::write_text(o, &reports[0]),
    )?;
    Ok(exit_code::SUCCESS)
}

/// The flags part of a series label (`test/topology/scheduler/work_type[/a,b]`), sorted.
fn series_flags(label: &str) -> Vec<String> {
    let flags = label.splitn(5, '/').nth(4).unwrap_or("");
    sorted(&flags.split(',').filter(|f| !f.is_empty()).map(str::to_string).collect::<Vec<_>>())
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

fn no_data(root: &Path) -> anyhow::Error {
    usage(format!(
        "stats history: no sidecar data found under {}. Run `cargo ktstr test` to generate runs, \
         or pass --dir or --db to point at an archive.",
        root.display()
    ))
}

fn no_samples(metric: &str, root: &Path) -> anyhow::Error {
    usage(format!(
        "stats history: no passing sample of {metric} matches these filters in the pool of {}; \
         `cargo ktstr stats list-values` shows the values each filter can take",
        root.display()
    ))
}
