//! `cargo ktstr stats compare` end to end: a temporary git repo with two commits, sidecars
//! written for each, compared by revspec.

use std::path::Path;
use std::process::{Command, Output};

use ktstr::report::compare::JsonReport;
use ktstr::report::host_delta::{JsonHostChange, JsonHostDelta};
use ktstr::sidecar::{HostContext, SidecarResult};
use tempfile::TempDir;

use crate::util::{git, output_into_closed_pipe};

/// A repo with two commits; returns the short ids (older first).
fn repo(dir: &Path) -> [String; 2] {
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join(".gitignore"), "target/\n").unwrap();
    let mut ids = Vec::new();
    for i in 0..2 {
        std::fs::write(dir.join("src.txt"), format!("{i}\n")).unwrap();
        git(dir, &["add", "."]);
        git(dir, &["commit", "-q", "-m", &format!("c{i}")]);
        ids.push(git(dir, &["rev-parse", "--short=7", "HEAD"]));
    }
    [ids[0].clone(), ids[1].clone()]
}

fn sidecar(dir: &Path, commit: &str, name: &str, p99: f64, run: usize) {
    sidecar_on(dir, commit, name, p99, run, None);
}

/// A sidecar that recorded the host it ran on.
fn sidecar_on(
    dir: &Path,
    commit: &str,
    name: &str,
    p99: f64,
    run: usize,
    host: Option<HostContext>,
) {
    let mut s = SidecarResult::empty(name);
    s.host = host;
    s.project_commit = Some(commit.to_string());
    s.kernel_version = Some("6.14.2".into());
    s.stats.worst_p99_wake_latency_us = p99;
    s.stats.total_iterations = 1000;
    s.timestamp = format!("2026-01-0{}T00:00:00Z", run + 1);
    s.run_id = format!("run{run}");
    let d = dir.join("target/ktstr").join(format!("6.14.2-{commit}"));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join(format!("{name}-{run}.ktstr.json")), s.to_json_pretty()).unwrap();
}

fn compare(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-ktstr"))
        .args(["stats", "compare"])
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env("RUST_BACKTRACE", "0")
        .env("NO_COLOR", "1")
        .env_remove("KTSTR_DB")
        .env_remove("KTSTR_KERNEL")
        .output()
        .unwrap()
}

#[test]
fn regression_between_two_commits_exits_1_and_clean_comparison_exits_0() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let [old, new] = repo(dir);
    for run in 0..2 {
        sidecar(dir, &old, "sched_basic", 100.0 + run as f64, run);
        sidecar(dir, &new, "sched_basic", 300.0, run);
        sidecar(dir, &old, "sched_steady", 50.0, run);
        sidecar(dir, &new, "sched_steady", 52.0, run);
    }
    let out = compare(dir, &["--a-project-commit", "HEAD~1", "--b-project-commit", "HEAD"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("slicing dimensions: project-commit\n"), "{stdout}");
    assert!(stdout.contains(&format!("averaged across 4 runs ({old}) and 4 runs ({new})")));
    let regression = stdout.lines().find(|l| l.contains("REGRESSION")).expect(&stdout);
    assert!(
        regression.starts_with(" sched_basic/6.14.2/"),
        "label is the pairing key: {regression}"
    );
    assert!(regression.contains("worst_p99_wake_latency_us"), "{regression}");
    assert!(regression.contains("100.50") && regression.contains("+199.50µs"), "{regression}");
    assert!(stdout.contains("summary: 1 regressions, 0 improvements, "), "{stdout}");

    let json = compare(
        dir,
        &["--a-project-commit", "HEAD~1", "--b-project-commit", "HEAD", "--json", "--no-ingest"],
    );
    assert_eq!(json.status.code(), Some(1));
    let doc: JsonReport = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc.slicing, ["project-commit"]);
    assert_eq!(doc.summary.regressions, 1);
    assert_eq!((doc.samples.a, doc.samples.b), (4, 4));
    let f = &doc.findings[0];
    assert_eq!(
        (f.metric.as_str(), f.verdict.as_str()),
        ("worst_p99_wake_latency_us", "regression")
    );
    assert_eq!((f.a, f.b), (100.5, 300.0));
    assert_eq!((f.a_samples.n, f.a_samples.median), (2, 100.5));

    // Narrowed to the unchanged test: no regression, exit 0.
    let clean =
        compare(dir, &["--a-project-commit", &old, "--b-project-commit", &new, "-E", "steady"]);
    assert_eq!(clean.status.code(), Some(0), "{}", String::from_utf8_lossy(&clean.stdout));
}

#[test]
fn usage_errors_exit_2() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let [old, new] = repo(dir);
    sidecar(dir, &old, "t", 1.0, 0);
    sidecar(dir, &new, "t", 1.0, 0);

    let same = compare(dir, &["--project-commit", "HEAD"]);
    assert_eq!(same.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&same.stderr).contains("A and B select identical rows"));

    let none = compare(dir, &["--a-project-commit", "deadbee", "--b-project-commit", &new]);
    assert_eq!(none.status.code(), Some(2));
    let err = String::from_utf8_lossy(&none.stderr);
    assert!(err.contains("A side filter matched 0 sidecars in pool (2 pooled)"), "{err}");

    std::fs::write(dir.join("p.json"), r#"{"per_metric_percent": {"nope": 1}}"#).unwrap();
    let bad = compare(
        dir,
        &["--a-project-commit", &old, "--b-project-commit", &new, "--policy", "p.json"],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown metric `nope`"));

    let both = compare(dir, &["--threshold", "5", "--policy", "p.json"]);
    assert_eq!(both.status.code(), Some(2));
}

#[test]
fn wip_pattern_compares_commit_against_its_dirty_tree() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let [_, head] = repo(dir);
    std::fs::write(dir.join("src.txt"), "work in progress\n").unwrap();
    let dirty = format!("{head}-dirty");
    sidecar(dir, &head, "t", 100.0, 0);
    sidecar(dir, &dirty, "t", 400.0, 1);
    let out = compare(dir, &["--a-project-commit", &head, "--b-project-commit", &dirty]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("REGRESSION"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("warning: comparison includes dirty builds:"), "{stderr}");
}

#[test]
fn a_reader_that_stops_early_does_not_turn_a_regression_into_success() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let [old, new] = repo(dir);
    sidecar(dir, &old, "sched_basic", 100.0, 0);
    sidecar(dir, &new, "sched_basic", 300.0, 0);
    // Ingest first, so the run below does nothing but write its report.
    let warm = compare(dir, &["--a-project-commit", &old, "--b-project-commit", &new]);
    assert_eq!(warm.status.code(), Some(1));
    // Close the read end before the report is written, as `| head -0` would.
    let out = output_into_closed_pipe(
        Command::new(env!("CARGO_BIN_EXE_cargo-ktstr"))
            .args(["stats", "compare", "--no-ingest", "--a-project-commit", &old])
            .args(["--b-project-commit", &new])
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", dir.join("target"))
            .env("RUST_BACKTRACE", "0")
            .env_remove("KTSTR_DB")
            .env_remove("KTSTR_KERNEL"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn an_empty_commit_range_is_an_error_not_an_unconstrained_side() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let [old, new] = repo(dir);
    sidecar(dir, &old, "sched_basic", 100.0, 0);
    sidecar(dir, &new, "sched_basic", 100.0, 0);
    let out = compare(dir, &["--a-project-commit", &old, "--b-project-commit", "HEAD..HEAD"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--b-project-commit HEAD..HEAD resolves to no commits"), "{stderr}");
}

#[test]
fn json_carries_the_host_delta_when_hosts_differ() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let [old, new] = repo(dir);
    let host = |cpu: &str, cpus: usize| HostContext {
        arch: Some("x86_64".into()),
        cpu_model: Some(cpu.into()),
        online_cpus: Some(cpus),
        ..Default::default()
    };
    sidecar_on(dir, &old, "sched_basic", 100.0, 0, Some(host("AMD EPYC 9654", 16)));
    sidecar_on(dir, &new, "sched_basic", 100.0, 0, Some(host("Intel Xeon 8480", 16)));
    sidecar_on(dir, &new, "sched_steady", 100.0, 1, Some(host("Intel Xeon 8480", 8)));

    let text = compare(dir, &["--a-project-commit", &old, "--b-project-commit", &new]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&text.stderr));
    let want = format!(
        "\nhost delta ('{old}' → '{new}'):\n  cpu_model: AMD EPYC 9654 → Intel Xeon 8480\n"
    );
    assert!(stdout.ends_with(&want), "{stdout}");

    let json = compare(
        dir,
        &["--a-project-commit", &old, "--b-project-commit", &new, "--json", "--no-ingest"],
    );
    assert_eq!(json.status.code(), Some(0));
    let doc: JsonReport = serde_json::from_slice(&json.stdout).unwrap();
    let change = JsonHostChange {
        field: "cpu_model".into(),
        a: "AMD EPYC 9654".into(),
        b: "Intel Xeon 8480".into(),
    };
    assert_eq!(doc.host_delta, Some(JsonHostDelta::Differs { changes: vec![change] }));
    let raw: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(raw["host_delta"]["state"], "differs", "{raw}");
    assert_eq!(raw["host_delta"]["changes"][0]["field"], "cpu_model");
}
