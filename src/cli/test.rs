//! `cargo ktstr test`: run the `#[ktstr_test]` suite under nextest as one suite run, then
//! index what it wrote.
//!
//! This command owns the run's shape: one run token (`KTSTR_RUN_TOKEN`) shared by every test
//! process of every repeat, so the sidecar writer pre-clears a run directory exactly once;
//! `KTSTR_JOB=repeat-{i}` per repeat so `--repeat N` keeps N samples. With `--kernel` (or
//! `KTSTR_KERNEL`) it starts the VM backend's coordinator (`vm_run`), which owns the run's
//! guests, and points the test processes at it (`KTSTR_VM_SOCKET`). Running tests and writing sidecars are the test binary's job (`harness`,
//! `sidecar::write`); indexing is the warehouse's.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;

use crate::cli::warehouse::{Location, ingest_quietly};
use crate::cli::{ExitError, interrupt};
use crate::exit_code;
use crate::harness::vm_backend::coordinator::SOCKET_ENV;
use crate::sidecar::write::REPEAT_JOB_PREFIX;
use crate::warehouse::Warehouse;

/// Run the test suite with `cargo nextest run` and ingest its sidecars.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Run the whole suite N times in one run; each repeat keeps its own sidecars
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Run every test in a QEMU guest booted with this kernel (a build tree, a bzImage, or a
    /// version or key in the kernel cache); repeat for several kernels, each test runs once on
    /// each [env: KTSTR_KERNEL]
    #[arg(long, value_name = "KERNEL")]
    pub kernel: Vec<String>,
    /// Accelerator for the guests: auto probes KVM once and falls back to TCG with a warning
    #[arg(long, value_name = "auto|kvm|tcg", default_value = "auto",
          value_parser = parse_accel)]
    pub accel: ktstr_vm::Accel,
    /// What advances a TCG guest's clocks: instructions (-icount: guest measurements do not
    /// depend on the host's load, at the cost of running vCPUs in turns on one host thread) or
    /// host (the wall clock: vCPUs in parallel on QEMU 11+, every host pause measured) [env:
    /// KTSTR_TCG_CLOCK]
    #[arg(long, value_name = "instructions|host", default_value = "instructions",
          env = ktstr_vm::qemu::clock::TCG_CLOCK_ENV, hide_env = true, value_parser = parse_tcg_clock)]
    pub tcg_clock: ktstr_vm::TcgClock,
    /// SQLite warehouse to ingest into [default: warehouse.sqlite inside the runs root]
    #[arg(long, env = "KTSTR_DB", value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Arguments passed to `cargo nextest run` unchanged
    #[arg(last = true, value_name = "NEXTEST_ARGS")]
    pub nextest_args: Vec<OsString>,
}

fn parse_accel(s: &str) -> Result<ktstr_vm::Accel, String> {
    s.parse()
}

fn parse_tcg_clock(s: &str) -> Result<ktstr_vm::TcgClock, String> {
    s.parse()
}

/// The kernels to boot: `--kernel` values, else a non-empty `KTSTR_KERNEL`.
fn kernels(args: &TestArgs) -> Vec<String> {
    if !args.kernel.is_empty() {
        return args.kernel.clone();
    }
    std::env::var("KTSTR_KERNEL").ok().filter(|k| !k.trim().is_empty()).into_iter().collect()
}

pub fn run(args: TestArgs) -> anyhow::Result<u8> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    check_nextest(&cargo)?;
    let kernels = kernels(&args);
    refuse_colliding_override(kernels.len(), args.repeat)?;
    // Kept alive until every repeat is done: it owns the run's VMs.
    let coordinator = if kernels.is_empty() {
        None
    } else {
        Some(crate::cli::vm_run::start(&kernels, args.accel, args.tcg_clock)?)
    };
    let token = run_token();
    let loc = Location::resolve(None, args.db.as_deref());
    // nextest runs in its own process group (below), so no SIGINT reaches it except the one
    // we forward: each SIGINT we get, from a terminal or `kill`, is passed on once. We note it
    // and keep running, to sweep leftovers and ingest what was written.
    interrupt::install(&[libc::SIGINT])?;

    let mut code = exit_code::SUCCESS;
    for i in 0..args.repeat {
        // A Ctrl-C between two repeats must not start the next one.
        if interrupt::requested() {
            break;
        }
        let repeat = (args.repeat > 1).then_some(i);
        if repeat.is_some() {
            eprintln!("ktstr: repeat {} of {}", i + 1, args.repeat);
        }
        let mut cmd = nextest_command(&cargo, &args.nextest_args, &token, repeat);
        if let Some(c) = &coordinator {
            cmd.env(SOCKET_ENV, c.socket()).env("KTSTR_KERNEL", &kernels[0]);
        } else {
            cmd.env_remove(SOCKET_ENV);
        }
        let status = spawn_and_wait(&mut cmd)?;
        let this = status_code(status);
        if this != 0 {
            code = this;
        }
        if interrupt::requested() {
            eprintln!("ktstr: interrupted; sidecars written so far are kept and ingested");
            break;
        }
    }

    drop(coordinator);
    sweep_leftover_cgroups();
    ingest_and_report(&loc);
    // An interrupted run is not a clean one, even if the repeat that was running passed.
    if interrupt::requested() && code == exit_code::SUCCESS {
        code = INTERRUPTED_EXIT;
    }
    Ok(code)
}

/// One `cargo nextest run` of the suite under the run token `token`: what `test` runs per
/// repeat and `ab` per side and repeat. `repeat` (when the run is repeated) becomes the job
/// `repeat-{i}`, which keeps the repeat's sidecars apart and is recorded as
/// `provenance.repeat`.
pub(crate) fn nextest_command(
    cargo: &OsStr,
    nextest_args: &[OsString],
    token: &str,
    repeat: Option<u32>,
) -> Command {
    let mut cmd = Command::new(cargo);
    // nextest gets a process group of its own, so a group-wide SIGINT (a terminal's
    // Ctrl-C, `timeout -s INT`, a CI cancel) reaches it exactly once: through our
    // forwarder. Receiving it twice makes nextest abort tests before they write sidecars.
    cmd.process_group(0);
    cmd.args(["nextest", "run"]).args(nextest_args).env("KTSTR_RUN_TOKEN", token);
    match repeat {
        Some(i) => cmd.env("KTSTR_JOB", format!("{REPEAT_JOB_PREFIX}{i}")),
        None => cmd.env_remove("KTSTR_JOB"),
    };
    cmd
}

/// Exit code of a run stopped by SIGINT, as shells report it (128 + 2).
pub(crate) const INTERRUPTED_EXIT: u8 = 130;

/// Remove cgroup trees (and any task in them) left by test processes that died before their
/// own teardown ran, which is what Ctrl-C does to the test processes nextest is running.
/// No usable hierarchy means no test could have created one: nothing to do.
pub(crate) fn sweep_leftover_cgroups() {
    let Ok(h) = crate::harness::cgroup::Hierarchy::detect() else { return };
    let swept = crate::harness::cgroup::sweep_stale_trees(&h);
    let removed = swept.iter().filter(|s| s.result.is_ok()).count();
    if removed > 0 {
        eprintln!(
            "ktstr: removed {removed} cgroup tree(s) left by test processes that did not finish"
        );
    }
    for s in swept {
        if let Err(e) = s.result {
            eprintln!("ktstr: cannot remove leftover {}: {e}", s.top.display());
        }
    }
}

/// Fails with install instructions when `cargo nextest` is missing; never installs it.
pub(crate) fn check_nextest(cargo: &OsStr) -> anyhow::Result<()> {
    let ok = Command::new(cargo)
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Ok(());
    }
    Err(ExitError {
        code: exit_code::USAGE_OR_DATA_ERROR,
        message: "cargo-nextest is not installed (`cargo nextest --version` failed)".into(),
        hint: Some("install it with `cargo install cargo-nextest --locked`".into()),
    }
    .into())
}

/// `KTSTR_SIDECAR_DIR` puts every sidecar into one directory under its variant's name, with
/// no per-kernel run directory and no per-repeat job directory, so several kernels or repeats
/// would overwrite each other's results. Refused before anything runs.
fn refuse_colliding_override(kernels: usize, repeat: u32) -> anyhow::Result<()> {
    let set = std::env::var_os("KTSTR_SIDECAR_DIR").is_some_and(|v| !v.is_empty());
    let what = match (kernels > 1, repeat > 1) {
        _ if !set => return Ok(()),
        (true, true) => format!("{kernels} kernels and {repeat} repeats"),
        (true, false) => format!("{kernels} kernels"),
        (false, true) => format!("{repeat} repeats"),
        (false, false) => return Ok(()),
    };
    Err(ExitError {
        code: exit_code::USAGE_OR_DATA_ERROR,
        message: format!(
            "KTSTR_SIDECAR_DIR puts every sidecar in one directory, so {what} would overwrite \
             each other's sidecars"
        ),
        hint: Some(
            "unset it (sidecars then go to one run directory per kernel and one job per \
             repeat), or run once per kernel and repeat, each with its own KTSTR_SIDECAR_DIR"
                .into(),
        ),
    }
    .into())
}

/// Unique per invocation: wall-clock nanoseconds and our pid.
fn run_token() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("ktstr-test-{nanos:x}-{}", std::process::id())
}

pub(crate) fn spawn_and_wait(cmd: &mut Command) -> anyhow::Result<ExitStatus> {
    let mut child = cmd.spawn().context("starting `cargo nextest run`")?;
    interrupt::forward_to(Some(child.id()));
    let status = child.wait().context("waiting for `cargo nextest run`");
    interrupt::forward_to(None);
    status
}

/// nextest's exit code; a child killed by a signal maps to 128 + signal, as shells do.
pub(crate) fn status_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c.clamp(0, 255) as u8,
        (None, Some(sig)) => (128 + sig).clamp(0, 255) as u8,
        (None, None) => exit_code::USAGE_OR_DATA_ERROR,
    }
}

/// Index the runs root and tell the user where results went and what to run next. A failed
/// ingest is reported but does not change the exit code: the sidecars are on disk and the
/// next `stats` command ingests them.
fn ingest_and_report(loc: &Location) {
    let mut err = std::io::stderr().lock();
    if !loc.root.is_dir() {
        let _ = writeln!(
            err,
            "ktstr: no sidecars were written (no {} directory); nothing to ingest",
            loc.root.display()
        );
        return;
    }
    let ingested = Warehouse::open(&loc.db)
        .map_err(anyhow::Error::from)
        .and_then(|mut wh| ingest_quietly(&mut wh, &loc.root).map_err(anyhow::Error::from));
    match ingested {
        Ok(r) => {
            let _ = writeln!(
                err,
                "ktstr: sidecars in {}; {} new indexed into {}",
                loc.root.display(),
                r.new_sidecars,
                loc.db.display()
            );
        }
        Err(e) => {
            let _ = writeln!(
                err,
                "ktstr: sidecars are in {} but indexing into {} failed: {e:#}",
                loc.root.display(),
                loc.db.display()
            );
        }
    }
    // Name this run's commit, so the compare line can be pasted after a baseline is chosen.
    let this_run = crate::provenance::git::detect_project_commit()
        .map_or_else(|| "<this-commit>".to_string(), |c| c.sidecar_commit_string());
    let _ = writeln!(
        err,
        "next:\n  cargo ktstr stats list\n  cargo ktstr stats list-values\n  cargo ktstr stats \
         compare --a-project-commit <baseline> --b-project-commit {this_run}"
    );
}
