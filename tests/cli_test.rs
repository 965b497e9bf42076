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

/// One directory for every sidecar cannot hold two kernels' or two repeats' results of the
/// same variant: the run is refused before anything starts, so nothing is overwritten.
#[test]
fn a_sidecar_dir_override_with_several_kernels_or_repeats_is_refused() {
    let dir = tempfile::TempDir::new().unwrap();
    let sidecars = dir.path().join("sidecars");
    for (args, what) in [
        (&["test", "--repeat", "3"][..], "3 repeats"),
        (&["test", "--kernel", "7.3", "--kernel", "6.12"][..], "2 kernels"),
    ] {
        // `cargo` itself is `true`, so nextest would "pass" if the refusal did not come first.
        let out = Command::new(env!("CARGO_BIN_EXE_cargo-ktstr"))
            .args(args)
            .current_dir(dir.path())
            .env("CARGO", "true")
            .env("KTSTR_SIDECAR_DIR", &sidecars)
            .env("CARGO_TARGET_DIR", dir.path().join("target"))
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(&format!("so {what} would overwrite")), "{err}");
        assert!(err.contains("unset it"), "{err}");
        assert!(!sidecars.exists() && !dir.path().join("target").exists(), "nothing ran");
    }
}
