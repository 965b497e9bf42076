//! `stats report --html FILE`: the compare of `stats compare` (same flags) as one
//! self-contained HTML page, with each finding's samples plotted and the history of every
//! metric that changed; or, with `--metric` and no A/B contrast, one metric's history alone.
//!
//! The comparison is `compare::run` over the warehouse. The samples behind each finding are
//! regrouped from the rows compare read (recorded as they pass through the row source), with
//! compare's own grouping functions; trends come from `stats history`'s code. Rendering is
//! `report::html`. Exits like `stats compare`: 1 when the comparison found a regression.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use clap::Args;

use super::compare::{self as compare_cmd, CompareArgs};
use super::history::{SeriesArgs, commit_order, resolve_metric, series_reports};
use crate::cli::{ExitError, warehouse};
use crate::compare::{
    self, CompareError, CompareOptions, CompareReport, Dim, PoolFacts, PoolScope, Row, RowSource,
    SideFilter, average, metric_index, sanitize_rows, slicing,
};
use crate::exit_code;
use crate::report::history::HistoryReport;
use crate::report::html::{self, FindingSamples, HtmlReport};
use crate::warehouse::Warehouse;
use crate::warehouse::history::HistoryQuery;

/// At most this many (series, metric) trends, in finding order (regressions first).
const MAX_TRENDS: usize = 40;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Write the report to this HTML file
    #[arg(long, value_name = "FILE")]
    pub html: PathBuf,
    /// Also show this metric's history (alone, when the A and B filters do not differ)
    #[arg(long, value_name = "M")]
    pub metric: Option<String>,
    /// Test whose history `--metric` shows
    #[arg(long, value_name = "NAME")]
    pub test: Option<String>,
    #[command(flatten)]
    pub compare: CompareArgs,
}

fn usage(message: impl Into<String>) -> anyhow::Error {
    ExitError { code: exit_code::USAGE_OR_DATA_ERROR, message: message.into(), hint: None }.into()
}

/// The output file, claimed before any work: a temporary sibling created now (so an
/// unwritable path fails at once) and renamed over the target when the page is complete.
struct Output {
    target: PathBuf,
    partial: PathBuf,
}

impl Output {
    fn claim(target: &Path) -> anyhow::Result<Output> {
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let partial = target.with_file_name(format!(".{name}.partial-{}", std::process::id()));
        if target.is_dir() || name.is_empty() {
            return Err(usage(format!(
                "stats report: {} is a directory; name an .html file to write",
                target.display()
            )));
        }
        fs::File::create(&partial).map_err(|e| {
            usage(format!(
                "stats report: cannot write {}: {e}; choose a path in a writable directory",
                target.display()
            ))
        })?;
        Ok(Output { target: target.to_path_buf(), partial })
    }

    fn finish(self, page: &[u8]) -> anyhow::Result<()> {
        let wrote =
            fs::write(&self.partial, page).and_then(|()| fs::rename(&self.partial, &self.target));
        wrote.map_err(|e| {
            usage(format!("stats report: cannot write {}: {e}", self.target.display()))
        })
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.partial);
    }
}

/// The warehouse as compare's row source, keeping a copy of each side's rows as read.
struct Recording<'a> {
    wh: &'a Warehouse,
    sides: RefCell<Vec<Vec<Row>>>,
}

impl RowSource for Recording<'_> {
    type Error = rusqlite::Error;

    fn select_side(&self, scope: &PoolScope, f: &SideFilter) -> rusqlite::Result<Vec<Row>> {
        let rows = self.wh.select_side(scope, f)?;
        self.sides.borrow_mut().push(rows.clone());
        Ok(rows)
    }

    fn pool_facts(&self, scope: &PoolScope) -> rusqlite::Result<PoolFacts> {
        self.wh.pool_facts(scope)
    }
}

pub fn run(args: ReportArgs) -> anyhow::Result<u8> {
    if args.compare.json {
        return Err(usage(
            "stats report writes HTML; drop --json (stats compare --json prints JSON)",
        ));
    }
    let output = Output::claim(&args.html)?;
    let (mut options, commit_inputs) = compare_cmd::options(&args.compare)?;
    let history_only =
        matches!(options.check(), Err(CompareError::Usage { .. })) && args.metric.is_some();
    let dir = args.compare.dir.as_deref();
    let nothing = || compare_cmd::no_data(&warehouse::Location::resolve(dir, None).root);
    if !history_only {
        for w in options.check().map_err(|e| compare_cmd::exit_error(e, nothing))? {
            eprintln!("{w}");
        }
    }
    let Some((wh, loc, _)) = warehouse::open_for_read(dir, &args.compare.warehouse)? else {
        return Err(nothing());
    };
    if !history_only {
        compare_cmd::match_commits(&wh, &mut options, &commit_inputs, nothing)?;
    }
    let order = commit_order();
    let mut page =
        HtmlReport { title: String::new(), compare: None, samples: Vec::new(), trends: Vec::new() };
    let outcome;
    let mut code = exit_code::SUCCESS;
    if history_only {
        page.title = "ktstr history".into();
    } else {
        let source = Recording { wh: &wh, sides: RefCell::new(Vec::new()) };
        outcome = compare::run(&source, &options)
            .map_err(|e| compare_cmd::exit_error(e, || compare_cmd::no_data(&loc.root)))?;
        for w in &outcome.warnings {
            eprintln!("{w}");
        }
        let report = &outcome.report;
        code = compare_cmd::exit_for(report, args.compare.noise.strict);
        let sides = source.sides.into_inner();
        let (a, b) = match <[Vec<Row>; 2]>::try_from(sides) {
            Ok([a, b]) => (a, b),
            Err(_) => unreachable!("compare reads exactly two sides before it reports"),
        };
        let (samples, series) = finding_samples(&options, report, a, b);
        page.samples = samples;
        page.trends = finding_trends(&wh, &options, report, &series, order.as_deref())?;
        page.title = format!("ktstr compare: {} vs {}", report.label_a, report.label_b);
        page.compare = Some(report);
    }
    if let Some(name) = &args.metric {
        let metric = resolve_metric(&wh, name)?;
        let filter = shared_series(&args.compare).filter();
        let query = HistoryQuery {
            metric: &metric,
            test_name: args.test.as_deref(),
            filter: &filter,
            scope: &options.scope,
        };
        page.trends.extend(series_reports(&wh, &query, order.as_deref())?);
        if history_only && page.trends.is_empty() {
            return Err(usage(format!(
                "stats report: no passing sample of {name} matches these filters"
            )));
        }
    }
    let mut bytes = Vec::new();
    html::write_html(&mut bytes, &page)?;
    output.finish(&bytes)?;
    eprintln!("wrote {} ({} bytes)", args.html.display(), bytes.len());
    Ok(code)
}

/// The shared (both-sides) filters of the compare flags, as a history's series filter.
fn shared_series(a: &CompareArgs) -> SeriesArgs {
    SeriesArgs {
        test: None,
        kernel: a.kernel.clone(),
        kernel_commit: a.kernel_commit.clone(),
        run_source: a.run_source.clone(),
        scheduler: a.scheduler.clone(),
        topology: a.topology.clone(),
        work_type: a.work_type.clone(),
        flag: a.flag.clone(),
    }
}

/// Per finding, both sides' samples, regrouped from the rows compare read with compare's own
/// steps (sanitize, drop stale dirty states, group per pairing key); and the first B row of
/// each finding's group, whose test identity names the series its trend follows.
fn finding_samples(
    options: &CompareOptions,
    report: &CompareReport,
    mut a: Vec<Row>,
    mut b: Vec<Row>,
) -> (Vec<FindingSamples>, Vec<Option<Row>>) {
    let pairing = slicing::pairing_dims(&slicing::derive_slicing_dims(&options.filters));
    sanitize_rows(&mut a);
    sanitize_rows(&mut b);
    let group = |rows: Vec<Row>| {
        let (rows, _) = average::drop_stale_dirty_states(rows, &pairing);
        if options.no_average {
            average::singleton_groups(&rows, &pairing)
        } else {
            average::average_side(&rows, &pairing)
        }
    };
    let (ga, gb) = (group(a), group(b));
    report
        .comparison
        .findings
        .iter()
        .map(|f| {
            let i = metric_index(f.metric).expect("findings name registry metrics");
            let side = |g: &[average::Group]| g.iter().find(|g| g.key == f.key).cloned();
            let (a, b) = (side(&ga), side(&gb));
            let samples = FindingSamples {
                a: a.as_ref().map(|g| g.sample_values(i)).unwrap_or_default(),
                b: b.as_ref().map(|g| g.sample_values(i)).unwrap_or_default(),
            };
            (samples, b.map(|g| g.first))
        })
        .unzip()
}

/// The history of each changed metric for the series of its finding (once per series and
/// metric), following side B's filters across commits.
fn finding_trends(
    wh: &Warehouse,
    options: &CompareOptions,
    report: &CompareReport,
    series: &[Option<Row>],
    order: Option<&[String]>,
) -> anyhow::Result<Vec<HistoryReport>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut order_idx: Vec<usize> = (0..report.comparison.findings.len()).collect();
    order_idx.sort_by_key(|&i| !report.comparison.findings[i].is_regression);
    for i in order_idx {
        let (f, Some(row)) = (&report.comparison.findings[i], &series[i]) else { continue };
        let label = series_label(row);
        if out.len() >= MAX_TRENDS || !seen.insert((label.clone(), f.metric)) {
            continue;
        }
        let metric = resolve_metric(wh, f.metric)?;
        let mut filter = options.filters.b.clone();
        filter.set(Dim::Topology, vec![row.topology.clone()]);
        filter.set(Dim::Scheduler, vec![row.scheduler.clone()]);
        filter.set(Dim::WorkType, vec![row.work_type.clone()]);
        filter.set(Dim::Flags, row.flags.clone());
        let query = HistoryQuery {
            metric: &metric,
            test_name: Some(&row.scenario),
            filter: &filter,
            scope: &options.scope,
        };
        out.extend(series_reports(wh, &query, order)?.into_iter().filter(|r| r.series == label));
    }
    Ok(out)
}

/// The label `stats history` gives a row's series.
fn series_label(row: &Row) -> String {
    let mut s = format!("{}/{}/{}/{}", row.scenario, row.topology, row.scheduler, row.work_type);
    if !row.flags.is_empty() {
        s.push('/');
        s.push_str(&row.flags.join(","));
    }
    s
}
