//! `cargo ktstr test` without a usable nextest: one clear error, exit 2, nothing installed.

use std::process::Command;

#[test]
fn missing_nextest_is_a_clear_usage_error() {
    let dir = tempfile::TempDir::new().unwrap();
    // A `cargo` whose every subcommand fails stands in for one without cargo-nextest.
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-ktstr"))
        .args(["test", "--repeat", "2"])
        .current_dir(dir.path())
        .env("CARGO", "false")
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cargo-nextest is not installed"), "{err}");
    assert!(err.contains("cargo install cargo-nextest --locked"), "{err}");
    assert!(!dir.path().join("target").exists(), "nothing ran, nothing was written");
}

#[test]
fn repeat_zero_is_rejected_by_the_parser() {
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-ktstr"))
        .args(["test", "--repeat", "0"])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--repeat"));
}
