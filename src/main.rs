//! `cargo-ktstr`: parse the command line, run it, turn the outcome into an exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    ktstr::cli::main_with_args(std::env::args_os())
}
