//! The `cargo ktstr` command line: clap types, dispatch, and the one place errors become
//! exit codes.
//!
//! Each subcommand lives in its own file and reads as four steps: build options, open the
//! warehouse, call the library, render. Nothing below `cli` parses arguments or prints.

pub mod ab;
pub mod interrupt;
pub mod kernel;
pub mod output;
pub mod stats;
pub mod test;
pub mod vm_run;
pub mod warehouse;

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::exit_code;

/// Results warehouse and test harness for Linux process schedulers.
#[derive(Debug, Parser)]
#[command(name = "cargo-ktstr", bin_name = "cargo ktstr", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the suite at commits A and B, interleaved, in temporary worktrees; then compare
    Ab(Box<ab::AbArgs>),
    /// Index, list, query and compare test results.
    Stats(stats::StatsArgs),
    /// Run the #[ktstr_test] suite with cargo nextest and index the sidecars it writes.
    #[command(alias = "nextest")]
    Test(test::TestArgs),
    /// Fetch and list the kernels `cargo ktstr test --kernel` boots in VMs.
    Kernel(kernel::KernelArgs),
}

/// Where the warehouse lives and whether to refresh it before reading.
#[derive(Debug, Clone, Args)]
pub struct WarehouseArgs {
    /// SQLite warehouse file [default: warehouse.sqlite inside the runs root]
    #[arg(long, env = "KTSTR_DB", value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Read the database as it is, without ingesting new sidecars from the runs root first
    #[arg(long)]
    pub no_ingest: bool,
}

/// An error that has already been reported in full, or that carries its own exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExitError {
    pub code: u8,
    pub message: String,
    /// A second line telling the user what to do.
    pub hint: Option<String>,
}

/// Entry point used by `main`: accepts both `cargo ktstr …` (cargo passes `ktstr` as the
/// first argument) and `cargo-ktstr …`.
pub fn main_with_args(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let mut args: Vec<OsString> = args.into_iter().collect();
    if args.get(1).is_some_and(|a| a == "ktstr") {
        args.remove(1);
    }
    let bisect_step = is_bisect_step(&args);
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            let mut code = e.exit_code().clamp(0, 255) as u8;
            // `git bisect run` would count a usage error (2) as a bad commit: stop it instead.
            if code == exit_code::USAGE_OR_DATA_ERROR && bisect_step {
                code = stats::bisect::ABORT;
            }
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => report_error(&err),
    }
}

/// Run a parsed command line, returning the exit code on success.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Ab(args) => ab::run(*args),
        Command::Stats(args) => stats::run(args),
        Command::Test(args) => test::run(args),
        Command::Kernel(args) => kernel::run(args),
    }
}

fn is_bisect_step(args: &[OsString]) -> bool {
    args.get(1).is_some_and(|a| a == "stats") && args.get(2).is_some_and(|a| a == "bisect")
}

fn report_error(err: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(err) {
        return ExitCode::from(exit_code::SUCCESS);
    }
    let mut stderr = io::stderr().lock();
    if let Some(e) = err.downcast_ref::<ExitError>() {
        let _ = writeln!(stderr, "error: {}", e.message);
        if let Some(hint) = &e.hint {
            let _ = writeln!(stderr, "hint: {hint}");
        }
        return ExitCode::from(e.code);
    }
    let _ = writeln!(stderr, "error: {err:#}");
    ExitCode::from(exit_code::USAGE_OR_DATA_ERROR)
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
