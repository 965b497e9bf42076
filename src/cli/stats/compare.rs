//! `stats compare`: A/B over the warehouse pool with the dual gate; exit 1 on regression.
//!
//! Flags become [`CompareOptions`] (commit revspecs resolved here, against the repository the
//! command runs in), the warehouse is opened, [`compare::run`] does the comparison, and the
//! report is rendered; warnings go to stderr in the order they arose.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::cli::{ExitError, WarehouseArgs, output, warehouse};
use crate::compare::revspec::CommitResolver;
use crate::compare::{
    self, CompareError, CompareOptions, ComparisonPolicy, Dim, PoolScope, SideFilter, SideFilters,
};
use crate::exit_code;
use crate::report;

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

fn usage(message: impl Into<String>) -> anyhow::Error {
    ExitError { code: exit_code::USAGE_OR_DATA_ERROR, message: message.into(), hint: None }.into()
}

fn resolve_policy(args: &CompareArgs) -> anyhow::Result<ComparisonPolicy> {
    if let Some(t) = args.threshold {
        return ComparisonPolicy::from_threshold(t).map_err(usage);
    }
    let Some(path) = &args.policy else { return Ok(ComparisonPolicy::default()) };
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("read comparison policy from {}: {e}", path.display())))?;
    ComparisonPolicy::from_json(&text, path).map_err(usage)
}

/// Build both sides' filters, resolving commit revspecs first (warnings go to stderr).
///
/// A commit flag that resolves to no commit at all (an empty `A..B` range) is an error:
/// ktstr drops it, leaving that side unconstrained, so B silently becomes the whole pool.
fn build_filters(args: &CompareArgs) -> anyhow::Result<SideFilters> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let project = CommitResolver::discover(&cwd);
    let kernel = std::env::var_os("KTSTR_KERNEL")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .map_or_else(CommitResolver::none, |p| CommitResolver::open(&p));
    let mut warnings = Vec::new();
    let mut empty: Vec<String> = Vec::new();
    let mut side = |prefix: &str,
                    kernel_v: &[String],
                    project_c: &[String],
                    kernel_c: &[String],
                    run_source: &[String],
                    scheduler: &[String],
                    topology: &[String],
                    work_type: &[String],
                    flags: &[String]| {
        let mut f = SideFilter::default();
        f.set(Dim::Kernel, kernel_v.to_vec());
        let pflag = format!("{prefix}project-commit");
        let resolved = project.resolve_all(&pflag, project_c, &mut warnings);
        if !project_c.is_empty() && resolved.is_empty() {
            empty.push(format!("--{pflag} {}", project_c.join(" ")));
        }
        f.set(Dim::ProjectCommit, resolved);
        let kflag = format!("{prefix}kernel-commit");
        let resolved = kernel.resolve_all(&kflag, kernel_c, &mut warnings);
        if !kernel_c.is_empty() && resolved.is_empty() {
            empty.push(format!("--{kflag} {}", kernel_c.join(" ")));
        }
        f.set(Dim::KernelCommit, resolved);
        f.set(Dim::RunSource, run_source.to_vec());
        f.set(Dim::Scheduler, scheduler.to_vec());
        f.set(Dim::Topology, topology.to_vec());
        f.set(Dim::WorkType, work_type.to_vec());
        f.set(Dim::Flags, flags.to_vec());
        f
    };
    let a = &args;
    let shared = side(
        "",
        &a.kernel,
        &a.project_commit,
        &a.kernel_commit,
        &a.run_source,
        &a.scheduler,
        &a.topology,
        &a.work_type,
        &a.flag,
    );
    let a_only = side(
        "a-",
        &a.a_kernel,
        &a.a_project_commit,
        &a.a_kernel_commit,
        &a.a_run_source,
        &a.a_scheduler,
        &a.a_topology,
        &a.a_work_type,
        &a.a_flag,
    );
    let b_only = side(
        "b-",
        &a.b_kernel,
        &a.b_project_commit,
        &a.b_kernel_commit,
        &a.b_run_source,
        &a.b_scheduler,
        &a.b_topology,
        &a.b_work_type,
        &a.b_flag,
    );
    for w in warnings {
        eprintln!("{w}");
    }
    if let Some(first) = empty.first() {
        return Err(usage(format!(
            "stats compare: {first} resolves to no commits (an empty range), so that side \
             could match anything; check the range with `git log`, or name commits directly"
        )));
    }
    Ok(SideFilters::build(&shared, &a_only, &b_only))
}

pub fn run(args: CompareArgs) -> anyhow::Result<u8> {
    let options = CompareOptions {
        policy: resolve_policy(&args)?,
        filters: build_filters(&args)?,
        name_filter: args.filter.clone(),
        no_average: args.no_average,
        scope: PoolScope { archive_root: args.dir.clone() },
    };
    // Checked before the warehouse is opened (and refreshed): identical sides need no data.
    let nothing_at_default =
        || no_data(&warehouse::Location::resolve(args.dir.as_deref(), None).root);
    for w in options.check().map_err(|e| exit_error(e, nothing_at_default))? {
        eprintln!("{w}");
    }
    let Some((wh, loc, _)) = warehouse::open_for_read(args.dir.as_deref(), &args.warehouse)? else {
        return Err(nothing_at_default());
    };
    let outcome = compare::run(&wh, &options).map_err(|e| exit_error(e, || no_data(&loc.root)))?;
    for w in &outcome.warnings {
        eprintln!("{w}");
    }
    let report = &outcome.report;
    let code = if report.comparison.summary.regressions > 0 {
        exit_code::REGRESSION
    } else {
        exit_code::SUCCESS
    };
    output::emit(
        args.json,
        |out| report::compare::write_json(out, report),
        |out| report::compare::write_text(out, report, output::stdout_styles()),
    )?;
    Ok(code)
}

fn no_data(root: &Path) -> anyhow::Error {
    usage(format!(
        "stats compare: no sidecar data found under {}. Run `cargo ktstr test` to generate \
         runs, or pass --dir to point at an archived sidecar tree.",
        root.display()
    ))
}

/// A comparison that produced no report, as the error the user sees (warnings first).
fn exit_error(err: CompareError, no_data: impl FnOnce() -> anyhow::Error) -> anyhow::Error {
    match err {
        CompareError::EmptyPool => no_data(),
        CompareError::Usage { message, warnings } => {
            for w in warnings {
                eprintln!("{w}");
            }
            usage(message)
        }
        source @ CompareError::Source(_) => source.into(),
    }
}
