//! `stats bisect`: one step of `git bisect run`, judging HEAD on one metric against the good
//! commit's results already in the warehouse.
//!
//! A step runs the suite (or the `-E` subset) at HEAD, indexes what it wrote, and compares
//! the good commit (A) with HEAD (B) as `stats compare` would. The exit code is git's
//! protocol: 0 good (no regression of `--metric`), 1 bad (it regressed), 125 skip (HEAD does
//! not build, or its run gave nothing to compare). Anything that is not a verdict on HEAD —
//! outside a repository, an unknown metric, no results for the good commit, a Ctrl-C —
//! exits 128, which makes `git bisect run` stop instead of counting the commit as bad (it
//! takes every code from 1 to 127 but 125 as "bad", which is why this command never uses
//! the usual 2).
//!
//! With `--bad B` and no bisection in progress, the command drives the whole bisection
//! itself: `git bisect start B G`, `git bisect run` of this same step, `git bisect reset`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;

use crate::cli::warehouse::{Location, ingest_quietly};
use crate::cli::{ExitError, interrupt, output, test};
use crate::compare::revspec::CommitResolver;
use crate::compare::{
    self, CompareError, CompareOptions, ComparisonPolicy, Dim, PoolScope, RowSource, SideFilter,
};
use crate::metric::METRICS;
use crate::report;
use crate::warehouse::Warehouse;

/// `git bisect run` exit codes.
const GOOD: u8 = 0;
const BAD: u8 = 1;
const SKIP: u8 = 125;
/// Stops `git bisect run` (any code above 127).
pub const ABORT: u8 = 128;

/// Judge HEAD for `git bisect run`: exit 0 good, 1 bad, 125 skip, 128 abort.
#[derive(Debug, Args)]
pub struct BisectArgs {
    /// The registry metric whose regression marks a commit bad (`stats list-metrics`)
    #[arg(long, value_name = "METRIC")]
    pub metric: String,
    /// The good commit, whose results must already be in the warehouse
    #[arg(long, value_name = "REV")]
    pub good: String,
    /// A bad commit: with it, run the whole bisection (start, run, reset) in one command
    #[arg(long, value_name = "REV")]
    pub bad: Option<String>,
    /// Run only the tests whose name contains STR, and compare only pairs that contain it
    #[arg(short = 'E', long = "filter", value_name = "STR")]
    pub filter: Option<String>,
    /// Relative threshold in percent a change must exceed to count (the absolute gate still
    /// applies) [default: each metric's own]. Steps run at different times, so a machine's
    /// drift between them is part of every difference: raise it above that drift
    #[arg(long, value_name = "PCT")]
    pub threshold: Option<f64>,
    /// SQLite warehouse [default: warehouse.sqlite inside the runs root]
    #[arg(long, env = "KTSTR_DB", value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Arguments passed to `cargo nextest run` unchanged
    #[arg(last = true, value_name = "NEXTEST_ARGS")]
    pub nextest_args: Vec<OsString>,
}

fn abort(message: impl Into<String>) -> anyhow::Error {
    ExitError { code: ABORT, message: message.into(), hint: None }.into()
}

pub fn run(args: BisectArgs) -> anyhow::Result<u8> {
    let outcome = match &args.bad {
        Some(bad) if !bisecting() => drive(&args, bad),
        _ => step(&args),
    };
    // Every error aborts the bisection: a usage error must never read as "bad".
    outcome.map_err(|e| match e.downcast::<ExitError>() {
        Ok(mut e) => {
            e.code = ABORT;
            e.into()
        }
        Err(e) => abort(format!("stats bisect: {e:#}")),
    })
}

/// Whether a `git bisect` is in progress in the current repository.
fn bisecting() -> bool {
    Command::new("git")
        .args(["rev-parse", "-q", "--verify", "refs/bisect/bad"])
        .output()
        .is_ok_and(|o| o.status.success())
        || Command::new("git").args(["bisect", "log"]).output().is_ok_and(|o| o.status.success())
}

struct Repo {
    cwd: PathBuf,
    good: String,
}

fn open_repo(args: &BisectArgs) -> anyhow::Result<Repo> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    if gix::discover(&cwd).is_err() {
        return Err(abort(format!(
            "stats bisect: {} is not inside a git repository; run it, through `git bisect \
             run`, from the repository being bisected",
            cwd.display()
        )));
    }
    if !METRICS.iter().any(|m| m.name == args.metric) {
        return Err(abort(format!(
            "stats bisect: `{}` is not a registered metric; `cargo ktstr stats list-metrics` \
             lists them",
            args.metric
        )));
    }
    let mut warnings = Vec::new();
    let good = CommitResolver::discover(&cwd).resolve_all(
        "good",
        std::slice::from_ref(&args.good),
        &mut warnings,
    );
    match good.as_slice() {
        [one] if warnings.is_empty() => Ok(Repo { cwd, good: one.clone() }),
        _ => Err(abort(format!(
            "stats bisect: --good `{}` does not name one commit of this repository",
            args.good
        ))),
    }
}

/// The good commit's rows, checked before anything runs: without them no step can decide.
fn require_good_results(wh: &Warehouse, good: &str, loc: &Location) -> anyhow::Result<()> {
    let mut filter = SideFilter::default();
    filter.set(Dim::ProjectCommit, vec![good.to_string()]);
    let rows = wh.select_side(&PoolScope::default(), &filter)?;
    if rows.is_empty() {
        return Err(abort(format!(
            "stats bisect: the warehouse {} holds no results for the good commit {good}; run \
             `cargo ktstr test` at it first (git checkout {good} && cargo ktstr test)",
            loc.db.display()
        )));
    }
    Ok(())
}

fn step(args: &BisectArgs) -> anyhow::Result<u8> {
    let repo = open_repo(args)?;
    let loc = Location::resolve(None, args.db.as_deref());
    if !loc.db.exists() {
        return Err(abort(format!(
            "stats bisect: no warehouse at {}; run `cargo ktstr test` at the good commit first",
            loc.db.display()
        )));
    }
    require_good_results(&Warehouse::open(&loc.db)?, &repo.good, &loc)?;
    let head = crate::provenance::git::discover_project_commit(&repo.cwd)
        .map(|c| c.sidecar_commit_string())
        .ok_or_else(|| abort("stats bisect: HEAD is unreadable"))?;
    if head == repo.good {
        eprintln!("ktstr bisect: HEAD is the good commit {head}: good");
        return Ok(GOOD);
    }
    let code = run_suite(args)?;
    if code == NEXTEST_BUILD_FAILED {
        eprintln!("ktstr bisect: {head} does not build: skip (125)");
        return Ok(SKIP);
    }
    let mut wh = Warehouse::open(&loc.db)?;
    if loc.root.is_dir() {
        ingest_quietly(&mut wh, &loc.root)?;
    }
    judge(args, &wh, &repo.good, &head)
}

/// cargo-nextest's exit code when building the tests failed.
const NEXTEST_BUILD_FAILED: u8 = 101;

/// One `cargo nextest run` at HEAD (test failures are fine: failed rows are not compared).
fn run_suite(args: &BisectArgs) -> anyhow::Result<u8> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    test::check_nextest(&cargo)?;
    interrupt::install(&[libc::SIGINT, libc::SIGTERM])?;
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let token = format!("ktstr-bisect-{nanos:x}-{}", std::process::id());
    let mut nextest_args = args.nextest_args.clone();
    if let Some(f) = &args.filter {
        nextest_args.extend(["-E".into(), format!("test(~{f})").into()]);
    }
    let mut cmd = test::nextest_command(&cargo, &nextest_args, &token, None);
    let code = test::status_code(test::spawn_and_wait(&mut cmd)?);
    test::sweep_leftover_cgroups();
    if interrupt::requested() {
        return Err(abort("stats bisect: interrupted; the bisection stops here"));
    }
    Ok(code)
}

/// Compare good (A) with HEAD (B) and read the verdict on `--metric`.
fn judge(args: &BisectArgs, wh: &Warehouse, good: &str, head: &str) -> anyhow::Result<u8> {
    let mut a = SideFilter::default();
    a.set(Dim::ProjectCommit, vec![good.to_string()]);
    let mut b = SideFilter::default();
    b.set(Dim::ProjectCommit, vec![head.to_string()]);
    let policy = match args.threshold {
        Some(t) => ComparisonPolicy::from_threshold(t).map_err(abort)?,
        None => ComparisonPolicy::default(),
    };
    let options = CompareOptions {
        filters: compare::SideFilters::build(&SideFilter::default(), &a, &b),
        name_filter: args.filter.clone(),
        policy,
        ..Default::default()
    };
    let outcome = match compare::run(wh, &options) {
        Ok(o) => o,
        Err(CompareError::EmptyPool | CompareError::Usage { .. }) => {
            eprintln!("ktstr bisect: {head}'s run left nothing to compare with {good}: skip (125)");
            return Ok(SKIP);
        }
        Err(e) => return Err(e.into()),
    };
    for w in &outcome.warnings {
        eprintln!("{w}");
    }
    let r = &outcome.report;
    output::emit(
        false,
        |out| report::compare::write_json(out, r),
        |out| report::compare::write_text(out, r, output::stdout_styles()),
    )?;
    let s = &r.comparison.summary;
    if s.unchanged + s.regressions + s.improvements == 0 {
        eprintln!("ktstr bisect: no pair of {good} and {head} was compared: skip (125)");
        return Ok(SKIP);
    }
    let regressed =
        r.comparison.findings.iter().any(|f| f.is_regression && f.metric == args.metric);
    let verdict = if regressed { "bad (regressed)" } else { "good" };
    eprintln!("ktstr bisect: {head} vs {good} on {}: {verdict}", args.metric);
    Ok(if regressed { BAD } else { GOOD })
}

/// `git bisect start BAD GOOD`, `git bisect run` this step, `git bisect reset`.
fn drive(args: &BisectArgs, bad: &str) -> anyhow::Result<u8> {
    let repo = open_repo(args)?;
    let loc = Location::resolve(None, args.db.as_deref());
    if !loc.db.exists() {
        return Err(abort(format!("stats bisect: no warehouse at {}", loc.db.display())));
    }
    require_good_results(&Warehouse::open(&loc.db)?, &repo.good, &loc)?;
    let exe = std::env::current_exe().context("locating the cargo-ktstr binary")?;
    git(&repo.cwd, &["bisect".into(), "start".into(), bad.into(), args.good.clone().into()])?;
    let mut step: Vec<OsString> = vec!["bisect".into(), "run".into(), exe.into()];
    step.extend(["stats", "bisect", "--metric"].map(OsString::from));
    step.extend([args.metric.clone().into(), "--good".into(), repo.good.clone().into()]);
    if let Some(f) = &args.filter {
        step.extend(["-E".into(), f.into()]);
    }
    if let Some(t) = args.threshold {
        step.extend(["--threshold".into(), t.to_string().into()]);
    }
    if let Some(db) = &args.db {
        step.extend(["--db".into(), std::path::absolute(db)?.into_os_string()]);
    }
    if !args.nextest_args.is_empty() {
        step.push("--".into());
        step.extend(args.nextest_args.iter().cloned());
    }
    let ran = git(&repo.cwd, &step);
    let reset = git(&repo.cwd, &["bisect".into(), "reset".into()]);
    ran?;
    reset?;
    Ok(GOOD)
}

fn git(dir: &Path, args: &[OsString]) -> anyhow::Result<()> {
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .status()
        .context("running git (is it installed?)")?;
    if !status.success() {
        anyhow::bail!(
            "`git {}` failed",
            args[..2].iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
        );
    }
    Ok(())
}
