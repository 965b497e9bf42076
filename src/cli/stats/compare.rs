//! `stats compare`: A/B over the warehouse pool with the dual gate and the noise gate; exit 1
//! on regression, 3 under `--strict` when only low-n regressions remain (see
//! [`crate::exit_code`]).
//!
//! Flags become [`CompareOptions`] (commit revspecs resolved here, against the repository the
//! command runs in), the warehouse is opened, [`compare::run`] does the comparison, and the
//! report is rendered; warnings go to stderr in the order they arose.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::commit_match::{CommitInput, match_pool, resolve_each};
use crate::cli::{ExitError, WarehouseArgs, output, warehouse};
use crate::compare::noise::{DEFAULT_ALPHA, DEFAULT_FDR};
use crate::compare::revspec::CommitResolver;
use crate::compare::{
    self, CompareError, CompareOptions, ComparisonPolicy, Dim, GateMode, NoiseSettings, PoolScope,
    SideFilter, SideFilters,
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
    pub noise: NoiseArgs,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,

    #[arg(long, value_name = "V", help_heading = "Both sides")]
    pub kernel: Vec<String>,
    /// Project commit: a revspec, A..B, or a hex id of any case and length (7-40); repeat for
    /// alternatives, each value that matches no sidecar is warned about
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
    /// As --project-commit, for side A only (repeatable; a value matching nothing warns)
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
    /// As --project-commit, for side B only (repeatable; a value matching nothing warns)
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

/// `--gate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GateArg {
    /// The dual gate, then the noise gate wherever the samples allow it
    Noise,
    /// ktstr's dual gate alone: its verdicts and exit codes exactly
    Dual,
}

/// The noise gate's flags (shared with `stats calibrate`).
#[derive(Debug, Clone, Args)]
pub struct NoiseArgs {
    /// Which gates decide a verdict
    #[arg(long, value_enum, default_value = "noise", help_heading = "Noise gate")]
    pub gate: GateArg,
    /// Two-sided level of the exact rank test per finding, between 0 and 1
    #[arg(long, value_name = "P", default_value_t = DEFAULT_ALPHA, help_heading = "Noise gate")]
    pub alpha: f64,
    /// Benjamini-Hochberg over the noise-tested findings at this FDR level, between 0 and 1
    #[arg(long, value_name = "Q", default_value_t = DEFAULT_FDR, help_heading = "Noise gate")]
    pub fdr: f64,
    /// Judge each finding at --alpha alone, without the Benjamini-Hochberg step
    #[arg(long, conflicts_with = "fdr", help_heading = "Noise gate")]
    pub no_fdr: bool,
    /// Exit 3 instead of 1 when every regression is low-n (the noise gate could not decide)
    #[arg(long, help_heading = "Noise gate")]
    pub strict: bool,
}

impl NoiseArgs {
    /// The settings, with `--alpha`/`--fdr` checked (exit 2 when out of range).
    pub fn settings(&self) -> anyhow::Result<NoiseSettings> {
        let gate = match self.gate {
            GateArg::Noise => GateMode::Noise,
            GateArg::Dual => GateMode::Dual,
        };
        NoiseSettings::new(gate, self.alpha, (!self.no_fdr).then_some(self.fdr)).map_err(usage)
    }
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
fn build_filters(args: &CompareArgs) -> anyhow::Result<(SideFilters, Vec<CommitInput>)> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let project = CommitResolver::discover(&cwd);
    let kernel = std::env::var_os("KTSTR_KERNEL")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .map_or_else(CommitResolver::none, |p| CommitResolver::open(&p));
    let mut warnings = Vec::new();
    let mut empty: Vec<String> = Vec::new();
    let mut inputs = Vec::new();
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
        let resolved = resolve_each(
            &project,
            &pflag,
            Dim::ProjectCommit,
            project_c,
            &mut warnings,
            &mut inputs,
        );
        if !project_c.is_empty() && resolved.is_empty() {
            empty.push(format!("--{pflag} {}", project_c.join(" ")));
        }
        f.set(Dim::ProjectCommit, resolved);
        let kflag = format!("{prefix}kernel-commit");
        let resolved =
            resolve_each(&kernel, &kflag, Dim::KernelCommit, kernel_c, &mut warnings, &mut inputs);
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
    Ok((SideFilters::build(&shared, &a_only, &b_only), inputs))
}

/// The comparison the flags ask for (commit revspecs resolved; warnings on stderr), and the
/// commit values still to be matched against the pool once the warehouse is open
/// ([`match_commits`]).
pub(crate) fn options(args: &CompareArgs) -> anyhow::Result<(CompareOptions, Vec<CommitInput>)> {
    let noise = args.noise.settings()?;
    let policy = resolve_policy(args)?;
    let (filters, commit_inputs) = build_filters(args)?;
    let options = CompareOptions {
        noise,
        policy,
        filters,
        name_filter: args.filter.clone(),
        no_average: args.no_average,
        scope: PoolScope { archive_root: args.dir.clone() },
    };
    Ok((options, commit_inputs))
}

/// Matches the commit values against the pool's stored ids (warnings on stderr), then checks
/// again that the sides differ: `abc1234` against its own full id is identical once matched.
pub(crate) fn match_commits(
    wh: &crate::warehouse::Warehouse,
    options: &mut CompareOptions,
    commit_inputs: &[CommitInput],
    nothing: impl Fn() -> anyhow::Error,
) -> anyhow::Result<()> {
    for w in match_pool(wh, &options.scope, &mut options.filters, commit_inputs)? {
        eprintln!("{w}");
    }
    options.check().map_err(|e| exit_error(e, nothing))?;
    Ok(())
}

pub fn run(args: CompareArgs) -> anyhow::Result<u8> {
    let (mut options, commit_inputs) = options(&args)?;
    // Checked before the warehouse is opened (and refreshed): identical sides need no data.
    let nothing_at_default =
        || no_data(&warehouse::Location::resolve(args.dir.as_deref(), None).root);
    for w in options.check().map_err(|e| exit_error(e, nothing_at_default))? {
        eprintln!("{w}");
    }
    let Some((wh, loc, _)) = warehouse::open_for_read(args.dir.as_deref(), &args.warehouse)? else {
        return Err(nothing_at_default());
    };
    match_commits(&wh, &mut options, &commit_inputs, nothing_at_default)?;
    let outcome = compare::run(&wh, &options).map_err(|e| exit_error(e, || no_data(&loc.root)))?;
    for w in &outcome.warnings {
        eprintln!("{w}");
    }
    let report = &outcome.report;
    let code = exit_for(report, args.noise.strict);
    output::emit(
        args.json,
        |out| report::compare::write_json(out, report),
        |out| report::compare::write_text(out, report, output::stdout_styles()),
    )?;
    Ok(code)
}

/// 1 on a regression; under `--strict`, 3 when every regression is low-n (listed on
/// stderr); else 0.
pub(crate) fn exit_for(report: &compare::CompareReport, strict: bool) -> u8 {
    let s = &report.comparison.summary;
    if s.regressions == 0 {
        return exit_code::SUCCESS;
    }
    if !strict || s.regressions > s.low_n_regressions {
        return exit_code::REGRESSION;
    }
    eprintln!(
        "stats compare --strict: {} regression(s) only the dual gate decided (low-n); run more \
         repeats so the noise gate can judge them:",
        s.low_n_regressions
    );
    for f in report.comparison.findings.iter().filter(|f| f.is_low_n_regression()) {
        eprintln!("  {} {} (n {}/{})", f.key.label(), f.metric, f.a_samples.n, f.b_samples.n);
    }
    exit_code::LOW_N_REGRESSION
}

pub(crate) fn no_data(root: &Path) -> anyhow::Error {
    usage(format!(
        "stats compare: no sidecar data found under {}. Run `cargo ktstr test` to generate \
         runs, or pass --dir to point at an archived sidecar tree.",
        root.display()
    ))
}

/// A comparison that produced no report, as the error the user sees (warnings first).
pub(crate) fn exit_error(
    err: CompareError,
    no_data: impl FnOnce() -> anyhow::Error,
) -> anyhow::Error {
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
