//! `stats calibrate`: A/A calibration of the noise gate on one commit's runs; see
//! [`crate::compare::calibrate`] for what is measured. Flags become a filter over the pool,
//! the rows are read through the warehouse's `RowSource`, and the report is rendered by
//! `report::calibrate`.

use std::path::PathBuf;

use clap::Args;

use super::compare::NoiseArgs;
use crate::cli::{ExitError, WarehouseArgs, output, warehouse};
use crate::compare::calibrate::calibrate;
use crate::compare::pairing::filter_haystack;
use crate::compare::revspec::CommitResolver;
use crate::compare::{ComparisonPolicy, Dim, PoolScope, RowSource, SideFilter, sanitize_rows};
use crate::exit_code;
use crate::report;

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Only tests whose "scenario topology scheduler work_type flags" contains this substring
    #[arg(short = 'E', long = "filter", value_name = "STR")]
    pub filter: Option<String>,
    /// Uniform relative threshold in percent (the absolute gate still applies)
    #[arg(long, value_name = "PCT")]
    pub threshold: Option<f64>,
    /// Random A/A halves to draw
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub splits: usize,
    /// Seed of the random halves (the same seed repeats the figures)
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Pool root to read instead of the default runs root
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Print one JSON object instead of the table
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub noise: NoiseArgs,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    #[arg(long, value_name = "V")]
    pub kernel: Vec<String>,
    /// The commit whose runs are split (a revspec); required unless the pool holds one
    #[arg(long, value_name = "REV")]
    pub project_commit: Vec<String>,
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

fn usage(message: impl Into<String>) -> anyhow::Error {
    ExitError { code: exit_code::USAGE_OR_DATA_ERROR, message: message.into(), hint: None }.into()
}

fn filter(args: &CalibrateArgs) -> SideFilter {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let mut warnings = Vec::new();
    let commits = CommitResolver::discover(&cwd).resolve_all(
        "project-commit",
        &args.project_commit,
        &mut warnings,
    );
    for w in warnings {
        eprintln!("{w}");
    }
    let mut f = SideFilter::default();
    f.set(Dim::Kernel, args.kernel.clone());
    f.set(Dim::ProjectCommit, commits);
    f.set(Dim::RunSource, args.run_source.clone());
    f.set(Dim::Scheduler, args.scheduler.clone());
    f.set(Dim::Topology, args.topology.clone());
    f.set(Dim::WorkType, args.work_type.clone());
    f.set(Dim::Flags, args.flag.clone());
    f
}

pub fn run(args: CalibrateArgs) -> anyhow::Result<u8> {
    let settings = args.noise.settings()?;
    let policy = match args.threshold {
        Some(t) => ComparisonPolicy::from_threshold(t).map_err(usage)?,
        None => ComparisonPolicy::default(),
    };
    if args.splits == 0 {
        return Err(usage("stats calibrate: --splits must be at least 1"));
    }
    let side = filter(&args);
    let Some((wh, _, _)) = warehouse::open_for_read(args.dir.as_deref(), &args.warehouse)? else {
        return Err(usage(
            "stats calibrate: no sidecar data found. Run `cargo ktstr test --repeat 10` first",
        ));
    };
    let scope = PoolScope { archive_root: args.dir.clone() };
    let mut rows = wh.select_side(&scope, &side)?;
    if let Some(e) = &args.filter {
        rows.retain(|r| filter_haystack(r).contains(e.as_str()));
    }
    sanitize_rows(&mut rows);
    let commits: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r.project_commit.as_deref().unwrap_or("(none)")).collect();
    if commits.len() > 1 {
        let list: Vec<&str> = commits.into_iter().collect();
        return Err(usage(format!(
            "stats calibrate: the runs span {} project commits ({}); calibration splits one \
             commit's runs, so pick one with --project-commit",
            list.len(),
            list.join(", ")
        )));
    }
    let c = calibrate(&rows, &policy, &settings, args.splits, args.seed);
    if c.keys == 0 {
        return Err(usage(
            "stats calibrate: no test has 2 or more passing runs here; run `cargo ktstr test \
             --repeat 10` at one commit first",
        ));
    }
    output::emit(
        args.json,
        |out| report::calibrate::write_json(out, &c, &settings),
        |out| report::calibrate::write_text(out, &c, &settings),
    )?;
    Ok(exit_code::SUCCESS)
}
