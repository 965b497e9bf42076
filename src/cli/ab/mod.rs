//! `cargo ktstr ab A B`: the A/B recipe as one command.
//!
//! Resolves A and B in the current repository (refusing equal commits and a dirty tree),
//! checks each out in a temporary worktree, runs the suite in each from the same directory
//! it was started in, repeats interleaved A, B, A, B (see [`plan`]), all into one runs root
//! under one run token; then indexes the runs, removes the worktrees and compares A with B
//! exactly as `stats compare --a-project-commit A --b-project-commit B` would, exiting with
//! its code.
//!
//! # Where things are built and written
//! Both sides build in one target directory (`--target-dir`, default
//! `{target}/ktstr-ab`), not the repository's own `target/`: cargo judges a workspace
//! crate's artifacts by relative paths and modification times, so building another commit's
//! sources there could leave artifacts the user's own tree later takes as up to date. Before
//! each run the side's tracked files are touched, so cargo rebuilds its crates rather than
//! reusing the other side's (see [`worktrees::touch_tracked_files`]). The runs root is the
//! usual `{target}/ktstr`; the build directory's `ktstr` entry links to it, so the test
//! processes (which put sidecars in `{CARGO_TARGET_DIR}/ktstr`) write there. `KTSTR_SIDECAR_DIR`
//! is ignored (with a warning): it would put both sides in one flat directory.
//!
//! Running one `cargo nextest run` is `cli::test`'s ([`crate::cli::test::nextest_command`]).

mod plan;
mod worktrees;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;

use crate::cli::warehouse::{Location, ingest_quietly};
use crate::cli::{ExitError, interrupt, test};
use crate::compare::Side;
use crate::exit_code;
use crate::harness::vm_backend::coordinator::SOCKET_ENV;
use crate::timefmt;
use crate::warehouse::Warehouse;
use plan::{RunRecord, Session, SideRecord, Status};
use worktrees::{Repository, Resolved, Worktrees};

/// Run the suite at two commits, interleaved, and compare them; exits like `stats compare`.
#[derive(Debug, Args)]
pub struct AbArgs {
    /// The baseline: a commit, branch, tag or revspec such as HEAD~1
    #[arg(value_name = "A")]
    pub a: String,
    /// The change under test
    #[arg(value_name = "B")]
    pub b: String,
    /// Run each side N times, alternating A and B; repeat i of A and of B form pair i
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Kernel for the tests, passed on as `cargo ktstr test --kernel` does; repeatable
    #[arg(long = "kernel", value_name = "KERNEL")]
    pub kernels: Vec<String>,
    /// Leave the two worktrees in place for inspection
    #[arg(long)]
    pub keep: bool,
    /// Cargo target directory both sides build in [default: ktstr-ab inside the target dir]
    #[arg(long, value_name = "DIR")]
    pub target_dir: Option<PathBuf>,
    /// SQLite warehouse to index into [default: warehouse.sqlite inside the runs root]
    #[arg(long, env = "KTSTR_DB", value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Print the verdict as one JSON object (as `stats compare --json`)
    #[arg(long)]
    pub json: bool,
    /// Arguments passed to every `cargo nextest run` unchanged
    #[arg(last = true, value_name = "NEXTEST_ARGS")]
    pub nextest_args: Vec<OsString>,
}

/// A one-line error the user sees, exit 2.
pub(crate) fn ab_error(message: impl Into<String>) -> anyhow::Error {
    ExitError { code: exit_code::USAGE_OR_DATA_ERROR, message: message.into(), hint: None }.into()
}

/// What the user asked for, checked: the repository, both commits, where results go.
struct Setup {
    repo: Repository,
    a: Resolved,
    b: Resolved,
    loc: Location,
    build_dir: PathBuf,
    cargo: OsString,
    token: String,
}

pub fn run(args: AbArgs) -> anyhow::Result<u8> {
    let setup = prepare(&args)?;
    interrupt::install(&[libc::SIGINT, libc::SIGTERM])?;
    let base = std::env::temp_dir().join(&setup.token);
    let trees = Worktrees::create(&setup.repo.root, base, &setup.a, &setup.b, args.keep)?;
    let dirs = [trees.a.join(&setup.repo.subdir), trees.b.join(&setup.repo.subdir)];
    let side_record = |r: &Resolved| SideRecord {
        spec: r.spec.clone(),
        commit: r.id.clone(),
        project_commit: r.short.clone(),
    };
    let steps = plan::schedule(args.repeat, &args.kernels);
    let mut session = Session {
        run_token: setup.token.clone(),
        status: Status::Running,
        a: side_record(&setup.a),
        b: side_record(&setup.b),
        repeats: args.repeat,
        kernels: args.kernels.clone(),
        planned_runs: steps.len(),
        runs: Vec::new(),
    };
    save(&session, &setup.loc.root);
    eprintln!(
        "ktstr ab: A = {} ({}), B = {} ({}); {} run(s), interleaved; run token {}",
        setup.a.spec,
        setup.a.short,
        setup.b.spec,
        setup.b.short,
        steps.len(),
        setup.token
    );
    let failed_build = run_steps(&args, &setup, &dirs, &steps, &mut session)?;
    // The commit strings the sidecars really recorded (a run may have changed tracked files,
    // e.g. a Cargo.lock, and so written `-dirty`), read before the worktrees go.
    for (record, dir) in [(&mut session.a, &dirs[0]), (&mut session.b, &dirs[1])] {
        if let Some(c) = crate::provenance::git::discover_project_commit(dir) {
            record.project_commit = c.sidecar_commit_string();
        }
    }
    test::sweep_leftover_cgroups();
    finish_worktrees(trees);
    let indexed = index(&setup.loc);
    session.status = match (failed_build, interrupt::requested()) {
        (Some(_), _) => Status::BuildFailed,
        (None, true) => Status::Interrupted,
        (None, false) => Status::Complete,
    };
    let record = save(&session, &setup.loc.root);
    if let Some(side) = failed_build {
        let r = if side == Side::A { &setup.a } else { &setup.b };
        return Err(ab_error(format!(
            "ab: {} ({}, side {}) does not build: `cargo nextest run` exited 101; fix the build \
             or pick another commit (sidecars of the runs before it are kept, see {record})",
            r.spec,
            r.short,
            side.letter()
        )));
    }
    if interrupt::requested() {
        eprintln!(
            "ktstr ab: interrupted after {} of {} runs; the sidecars written so far are kept \
             and indexed (run token {}), and {record} marks the session interrupted",
            session.runs.len(),
            session.planned_runs,
            setup.token
        );
        return Ok(test::INTERRUPTED_EXIT);
    }
    indexed?;
    compare(&args, &session)
}

fn prepare(args: &AbArgs) -> anyhow::Result<Setup> {
    let cwd = std::env::current_dir().context("ab: reading the current directory")?;
    let repo = Repository::discover(&cwd)?;
    let a = repo.resolve(&args.a)?;
    let b = repo.resolve(&args.b)?;
    if a.id == b.id {
        return Err(ab_error(format!(
            "ab: A ({}) and B ({}) are the same commit {}; the second run would overwrite the \
             first (last writer wins) and the comparison would set one pool against itself: \
             name two distinct commits",
            a.spec, b.spec, a.short
        )));
    }
    repo.require_clean()?;
    if std::env::var_os("KTSTR_SIDECAR_DIR").is_some_and(|v| !v.is_empty()) {
        eprintln!(
            "ktstr ab: ignoring KTSTR_SIDECAR_DIR: both sides write into the runs root, so \
             each commit gets its own run directory"
        );
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    test::check_nextest(&cargo)?;
    let loc = Location::resolve(None, args.db.as_deref());
    let target = loc.root.parent().map_or_else(|| PathBuf::from("target"), Path::to_path_buf);
    let build_dir = args.target_dir.clone().unwrap_or_else(|| target.join("ktstr-ab"));
    let build_dir = std::path::absolute(&build_dir).unwrap_or(build_dir);
    link_runs_root(&build_dir, &loc.root)?;
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let token = format!("ktstr-ab-{nanos:x}-{}", std::process::id());
    Ok(Setup { repo, a, b, loc, build_dir, cargo, token })
}

/// Make `{build_dir}/ktstr` the runs root: nothing to do when the build directory is the
/// target directory itself, else a symbolic link to it.
fn link_runs_root(build_dir: &Path, runs_root: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(runs_root)
        .with_context(|| format!("ab: creating the runs root {}", runs_root.display()))?;
    std::fs::create_dir_all(build_dir)
        .with_context(|| format!("ab: creating the build directory {}", build_dir.display()))?;
    let link = build_dir.join("ktstr");
    let same =
        |p: &Path| p.canonicalize().ok().is_some_and(|p| runs_root.canonicalize().ok() == Some(p));
    if same(&link) {
        return Ok(());
    }
    if link.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
        std::fs::remove_file(&link).with_context(|| format!("ab: replacing {}", link.display()))?;
    } else if link.exists() {
        return Err(ab_error(format!(
            "ab: {} exists and is not the runs root {}; remove it or pass another --target-dir",
            link.display(),
            runs_root.display()
        )));
    }
    let target = std::path::absolute(runs_root).unwrap_or_else(|_| runs_root.to_path_buf());
    std::os::unix::fs::symlink(&target, &link)
        .with_context(|| format!("ab: linking {} to the runs root", link.display()))
}

/// Run every step until one fails to build or an interrupt arrives; returns the side whose
/// commit did not build.
fn run_steps(
    args: &AbArgs,
    setup: &Setup,
    dirs: &[PathBuf; 2],
    steps: &[plan::Step],
    session: &mut Session,
) -> anyhow::Result<Option<Side>> {
    for (n, step) in steps.iter().enumerate() {
        if interrupt::requested() {
            break;
        }
        let (dir, commit) = match step.side {
            Side::A => (&dirs[0], &setup.a),
            Side::B => (&dirs[1], &setup.b),
        };
        let kernel = step.kernel.as_deref().map(|k| format!(", kernel {k}")).unwrap_or_default();
        eprintln!(
            "ktstr ab: run {} of {}: repeat {} of {}, side {} ({}){kernel}",
            n + 1,
            steps.len(),
            step.repeat + 1,
            args.repeat,
            step.side.letter(),
            commit.short
        );
        worktrees::touch_tracked_files(dir)?;
        let mut cmd = test::nextest_command(
            &setup.cargo,
            &args.nextest_args,
            &setup.token,
            Some(step.repeat),
        );
        cmd.current_dir(dir)
            .env("CARGO_TARGET_DIR", &setup.build_dir)
            .env_remove("KTSTR_SIDECAR_DIR");
        // A VM run gets a coordinator of its own: A and B build into the same target dir, so
        // one coordinator kept across sides could describe B's binary from A's.
        let coordinator = match &step.kernel {
            Some(k) => {
                let clock = ktstr_vm::TcgClock::from_env().map_err(anyhow::Error::msg)?;
                let kernel = std::slice::from_ref(k);
                let c = crate::cli::vm_run::start(kernel, ktstr_vm::Accel::Auto, clock)?;
                cmd.env("KTSTR_KERNEL", k).env(SOCKET_ENV, c.socket());
                Some(c)
            }
            None => {
                cmd.env_remove("KTSTR_KERNEL").env_remove(SOCKET_ENV);
                None
            }
        };
        let started = timefmt::now_iso8601();
        let code = test::status_code(test::spawn_and_wait(&mut cmd)?);
        drop(coordinator);
        session.runs.push(RunRecord {
            side: step.side.letter(),
            repeat: step.repeat,
            kernel: step.kernel.clone(),
            exit_code: code,
            started,
            finished: timefmt::now_iso8601(),
        });
        save(session, &setup.loc.root);
        if code == NEXTEST_BUILD_FAILED && !interrupt::requested() {
            return Ok(Some(step.side));
        }
    }
    Ok(None)
}

/// cargo-nextest's exit code when building the tests failed.
const NEXTEST_BUILD_FAILED: u8 = 101;

fn save(session: &Session, runs_root: &Path) -> String {
    match session.save(runs_root) {
        Ok(path) => path.display().to_string(),
        Err(e) => {
            eprintln!(
                "ktstr ab: cannot write the session record under {}: {e}",
                runs_root.display()
            );
            "the session record".to_string()
        }
    }
}

fn finish_worktrees(trees: Worktrees) {
    if trees.keep {
        eprintln!(
            "ktstr ab: worktrees kept (--keep): A at {}, B at {}; remove them with `git worktree \
             remove`",
            trees.a.display(),
            trees.b.display()
        );
        return;
    }
    let problems = trees.remove();
    for p in &problems {
        eprintln!("{p}");
    }
}

fn index(loc: &Location) -> anyhow::Result<()> {
    let mut wh = Warehouse::open(&loc.db)?;
    let r = ingest_quietly(&mut wh, &loc.root).with_context(|| {
        format!("ab: indexing {} into {}", loc.root.display(), loc.db.display())
    })?;
    eprintln!("ktstr ab: {} new sidecar(s) indexed into {}", r.new_sidecars, loc.db.display());
    Ok(())
}

/// The comparison `stats compare` makes of the two commits, with its output and exit code.
fn compare(args: &AbArgs, session: &Session) -> anyhow::Result<u8> {
    let (a, b) = (&session.a.project_commit, &session.b.project_commit);
    eprintln!(
        "ktstr ab: comparing; the same comparison later: cargo ktstr stats compare \
         --a-project-commit {a} --b-project-commit {b}"
    );
    let mut argv: Vec<OsString> = ["cargo-ktstr", "stats", "compare", "--no-ingest"]
        .into_iter()
        .map(OsString::from)
        .collect();
    argv.extend(["--a-project-commit".into(), a.into(), "--b-project-commit".into(), b.into()]);
    if let Some(db) = &args.db {
        argv.extend(["--db".into(), db.clone().into_os_string()]);
    }
    if args.json {
        argv.push("--json".into());
    }
    let cli = <crate::cli::Cli as clap::Parser>::try_parse_from(argv)
        .context("ab: building the compare command line")?;
    crate::cli::run(cli)
}
