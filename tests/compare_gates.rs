//! `stats compare` inputs that used to pass a gate silently, driven through the real binary
//! on sidecars written per test, with no git repository at hand: a NaN or infinite
//! threshold, a `-E` that leaves nothing to compare, a repeated commit flag with a value that
//! matches nothing, and full or upper-case commit ids.

use ktstr::sidecar::SidecarResult;

use crate::util::{Run, TestDir};

const A: &str = "aaa1111";
const B: &str = "bbb2222";

/// The full id a sidecar of `short` records (40 hex, starting with the short form).
fn full_id(short: &str) -> String {
    format!("{short}{}", "0".repeat(40 - short.len()))
}

/// Two tests per commit; B's `steady` regresses on p99 wake latency.
fn pool() -> TestDir {
    let t = TestDir::new();
    for (commit, p99) in [(A, 100.0), (B, 400.0)] {
        for test in ["cgroup_steady", "cgroup_burst"] {
            let mut s = SidecarResult::empty(test);
            s.project_commit = Some(commit.into());
            s.provenance.project_commit_id = Some(full_id(commit));
            s.kernel_version = Some("6.14.2".into());
            s.stats.total_iterations = 1000;
            s.stats.worst_p99_wake_latency_us = if test == "cgroup_steady" { p99 } else { 50.0 };
            s.timestamp = "2026-04-27T09:15:02Z".into();
            s.run_id = format!("run-{commit}");
            t.write(&format!("6.14.2-{commit}/{test}-0.ktstr.json"), &s.to_json_pretty());
        }
    }
    t
}

fn compare(t: &TestDir, args: &[&str]) -> Run {
    let mut all = vec!["stats", "compare", "--json"];
    all.extend(args);
    t.run(&all)
}

fn regressions(run: &Run) -> u64 {
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("compare --json");
    v["summary"]["regressions"].as_u64().expect("a regression count")
}

#[test]
fn compare_rejects_non_finite_and_negative_thresholds() {
    let t = pool();
    for (value, reason) in [
        ("NaN", "must be a finite number; got NaN"),
        ("inf", "must be a finite number; got inf"),
        ("-inf", "must be a finite number; got -inf"),
        ("-1", "must be non-negative; got -1"),
    ] {
        let flag = format!("--threshold={value}");
        let run = compare(&t, &["--a-project-commit", A, "--b-project-commit", B, &flag]);
        run.expect_code(2);
        assert!(
            run.stderr.starts_with("error: ComparisonPolicy: default_percent ")
                && run.stderr.contains(reason),
            "{value}: {}",
            run.stderr
        );
        assert_eq!(run.stdout, "", "{value}");
    }
    // An out-of-range number in a policy file is refused too, never read as infinity.
    let policy = t.path().join("policy.json");
    std::fs::write(&policy, r#"{"per_metric_percent": {"worst_spread": 1e999}}"#).unwrap();
    let policy = policy.to_str().unwrap();
    let run = compare(&t, &["--a-project-commit", A, "--b-project-commit", B, "--policy", policy]);
    run.expect_code(2);
    assert!(run.stderr.starts_with("error: parse comparison policy from "), "{}", run.stderr);
    let run = compare(&t, &["--a-project-commit", A, "--b-project-commit", B, "--threshold=10"]);
    run.expect_code(1);
}

#[test]
fn compare_with_a_name_filter_that_leaves_nothing_to_compare_exits_2() {
    let t = pool();
    let run = compare(&t, &["--a-project-commit", A, "--b-project-commit", B, "-E", "nomatch"]);
    run.expect_code(2);
    assert_eq!(
        run.stderr,
        "error: stats compare: -E 'nomatch' matched none of the 2 A and 2 B test(s), so nothing \
         was compared\nhint: -E matches a substring of \"scenario topology scheduler work_type \
         flags\"; check it against `cargo ktstr stats list-values`\n"
    );
    assert_eq!(run.stdout, "");
    // A filter that keeps one pair still compares it, and the regression still counts.
    let run = compare(&t, &["--a-project-commit", A, "--b-project-commit", B, "-E", "steady"]);
    run.expect_code(1);
    assert_eq!(regressions(&run), 1);
}

#[test]
fn compare_warns_about_each_repeated_commit_value_that_matches_nothing() {
    let t = pool();
    let run = compare(
        &t,
        &[
            "--a-project-commit",
            A,
            "--a-project-commit",
            "deadbee",
            "--a-project-commit",
            "no-such-branch",
            "--b-project-commit",
            B,
        ],
    );
    run.expect_code(1);
    assert_eq!(regressions(&run), 1, "the matching value still selects side A");
    let warnings: Vec<&str> =
        run.stderr.lines().filter(|l| l.contains("matches no sidecar")).collect();
    assert_eq!(
        warnings,
        [
            "warning: stats compare: --a-project-commit 'deadbee' matches no sidecar in the \
             pool; the flag's other values still apply",
            "warning: stats compare: --a-project-commit 'no-such-branch' matches no sidecar in \
             the pool; the flag's other values still apply",
        ],
        "{}",
        run.stderr
    );
    // A single value that matches nothing is the zero-match error, as before.
    let run = compare(&t, &["--a-project-commit", "deadbee", "--b-project-commit", B]);
    run.expect_code(2);
    assert!(run.stderr.contains("A side filter matched 0 sidecars"), "{}", run.stderr);
}

#[test]
fn compare_matches_upper_case_and_full_commit_ids_without_a_repository() {
    let t = pool();
    let full_b = full_id(B);
    for (a, b) in [
        (A.to_uppercase(), B.to_string()),
        (A.to_string(), full_b.clone()),
        (full_id(A).to_uppercase(), full_b[..12].to_string()),
    ] {
        let run = compare(&t, &["--a-project-commit", &a, "--b-project-commit", &b]);
        run.expect_code(1);
        assert_eq!(regressions(&run), 1, "{a} vs {b}: {}", run.stderr);
    }
    // A full id that shares the short form but is another commit matches nothing.
    let other = format!("{A}{}", "f".repeat(33));
    let run = compare(&t, &["--a-project-commit", &other, "--b-project-commit", B]);
    run.expect_code(2);
    assert!(run.stderr.contains("A side filter matched 0 sidecars"), "{}", run.stderr);
    // The same commit spelled two ways on both sides is no contrast.
    let run = compare(&t, &["--a-project-commit", A, "--b-project-commit", &full_id(A)]);
    run.expect_code(2);
    assert!(run.stderr.contains("identical"), "{}", run.stderr);
}
