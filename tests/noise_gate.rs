//! The noise gate end to end, on the committed corpus of real demo-suite runs
//! (`tests/fixtures/noise-corpus`) and on hand-made sidecars: an A/A compare of real repeated
//! runs is clean, a real regression is caught with its p and interval, `--gate dual` gives
//! ktstr's verdicts, `--strict` exits 3 on a low-n regression, bad settings exit 2, and
//! `stats calibrate` reports on one commit's runs.

use std::path::{Path, PathBuf};

use crate::util::{SidecarSpec, TestDir, sidecar_json};

const BASELINE: &str = "3e45189";
/// The spinners hold a tenth of the step: spin work drops ~90 % under any load.
const TENTH_HOLD: &str = "6965bb7";

fn corpus_dir(commit: &str) -> PathBuf {
    let runs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/noise-corpus/runs");
    std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(commit))
        .unwrap_or_else(|| panic!("the corpus holds no run of {commit}"))
}

/// Copy repeats of a corpus commit into the runs root, with `run_source` set to `source`.
fn copy_repeats(td: &TestDir, commit: &str, repeats: impl Iterator<Item = usize>, source: &str) {
    copy_edited(td, commit, repeats, |doc, _| doc["run_source"] = source.into());
}

/// Copy repeats `0..n` of both commits as one `cargo ktstr ab` session would have written them:
/// one run token, `provenance.repeat` per repeat.
fn copy_as_ab_session(td: &TestDir, commits: [&str; 2], n: usize) {
    for commit in commits {
        copy_edited(td, commit, 0..n, |doc, i| {
            doc["provenance"]["run_token"] = "ktstr-ab-session".into();
            doc["provenance"]["repeat"] = i.into();
        });
    }
}

/// Copy repeats of a corpus commit into the runs root, each sidecar edited by `edit` (which
/// gets the repeat index).
fn copy_edited(
    td: &TestDir,
    commit: &str,
    repeats: impl Iterator<Item = usize>,
    edit: impl Fn(&mut serde_json::Value, usize),
) {
    let from = corpus_dir(commit);
    let leaf = from.file_name().unwrap().to_string_lossy().into_owned();
    for i in repeats {
        for e in std::fs::read_dir(from.join(format!("repeat-{i}"))).unwrap() {
            let path = e.unwrap().path();
            let mut doc: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            edit(&mut doc, i);
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            td.write(&format!("{leaf}/repeat-{i}/{name}"), &doc.to_string());
        }
    }
}

/// The `total_iterations` finding of `spin_steady` in a compare's JSON.
fn spin_steady_iterations(doc: &serde_json::Value) -> &serde_json::Value {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["metric"] == "total_iterations"
                && f["label"].as_str().unwrap().starts_with("spin_steady/")
        })
        .unwrap_or_else(|| panic!("{doc:#}"))
}

fn json(run: &crate::util::Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr))
}

#[test]
fn an_a_a_compare_of_real_repeated_runs_is_clean() {
    // Twenty repeats of one commit on a loaded host; even repeats against odd ones, marked as
    // two run sources so compare can slice them.
    let td = TestDir::new();
    copy_repeats(&td, BASELINE, (0..20).step_by(2), "local");
    copy_repeats(&td, BASELINE, (1..20).step_by(2), "ci");
    let args = ["stats", "compare", "--json", "--a-run-source", "local", "--b-run-source", "ci"];
    let run = td.run(&args);
    run.expect_code(0);
    let doc = json(&run);
    assert_eq!((doc["samples"]["a"].as_u64(), doc["samples"]["b"].as_u64()), (Some(70), Some(70)));
    assert_eq!(doc["summary"]["regressions"], 0, "{doc:#}");
    let findings = doc["findings"].as_array().unwrap();
    assert!(findings.iter().all(|f| f["method"] == "mwu" && f["low_n"] == false), "{doc:#}");
    // The dual gate alone, on the same runs, fires: the noise gate is what keeps this clean.
    let dual = td.run(&[&args[..], &["--gate", "dual"]].concat());
    let dual_doc = json(&dual);
    assert!(dual_doc["summary"]["regressions"].as_u64().unwrap() > 0, "{dual_doc:#}");
    dual.expect_code(1);
    // The host was loaded while these runs ran, and the sidecars say so.
    let text = td.run(&[
        "stats",
        "compare",
        "--no-ingest",
        "--a-run-source",
        "local",
        "--b-run-source",
        "ci",
        "--gate",
        "dual",
    ]);
    assert!(text.stderr.contains("ran on a loaded host"), "{}", text.stderr);
}

#[test]
fn a_real_regression_is_caught_with_its_p_and_interval() {
    let td = TestDir::new();
    copy_repeats(&td, BASELINE, 0..5, "local");
    copy_repeats(&td, TENTH_HOLD, 0..5, "local");
    let run = td.run(&[
        "stats",
        "compare",
        "--json",
        "--a-project-commit",
        BASELINE,
        "--b-project-commit",
        TENTH_HOLD,
    ]);
    run.expect_code(1);
    let doc = json(&run);
    assert_eq!(doc["schema_version"], 2);
    assert_eq!(doc["gate"]["mode"], "noise");
    let f = spin_steady_iterations(&doc);
    assert_eq!(
        (f["verdict"].as_str(), f["method"].as_str()),
        (Some("regression"), Some("mwu")),
        "{f:#}"
    );
    let p = f["p_value"].as_f64().unwrap();
    assert!((p - 2.0 / 252.0).abs() < 1e-9, "5 vs 5, fully separated: {f:#}");
    let (lo, hi, pct) = (
        f["ci_low"].as_f64().unwrap(),
        f["ci_high"].as_f64().unwrap(),
        f["change_pct"].as_f64().unwrap(),
    );
    assert!(lo <= pct && pct <= hi && hi < -50.0, "{f:#}");
    assert_eq!(f["low_n"], false);
    // The text table carries the same figures, and the family size.
    let text = td.run(&[
        "stats",
        "compare",
        "--no-ingest",
        "--a-project-commit",
        BASELINE,
        "--b-project-commit",
        TENTH_HOLD,
    ]);
    text.expect_code(1);
    assert!(
        text.stdout.contains("\ngate: dual and noise (α = 0.05, BH FDR q = 0.05); family: "),
        "{}",
        text.stdout
    );
    let row = text
        .stdout
        .lines()
        .find(|l| l.starts_with(" spin_steady/") && l.contains("total_iterations"))
        .unwrap();
    assert!(
        row.contains(" REGRESSION ")
            && row.contains(" 5/5 ")
            && row.contains(" 0.0079 ")
            && row.contains(" mwu"),
        "{row}"
    );
    assert!(text.stderr.contains("every A run came before every B run"), "{}", text.stderr);
}

fn one_run_per_side(td: &TestDir) {
    for (commit, spread) in [("aaaaaaa", 10.0), ("bbbbbbb", 40.0)] {
        let spec = SidecarSpec { project_commit: commit, spread, ..Default::default() };
        td.write(&format!("6.14.2-{commit}/cgroup_steady.ktstr.json"), &sidecar_json(&spec));
    }
}

#[test]
fn strict_exits_3_on_a_low_n_regression_and_lists_it() {
    let td = TestDir::new();
    one_run_per_side(&td);
    let sides =
        ["stats", "compare", "--a-project-commit", "aaaaaaa", "--b-project-commit", "bbbbbbb"];
    let default = td.run(&sides);
    default.expect_code(1);
    assert!(default.stdout.contains(" REGRESSION (low-n) "), "{}", default.stdout);
    assert!(default.stdout.contains("need >= 4 runs per side (have 1)"), "{}", default.stdout);
    let strict = td.run(&[&sides[..], &["--strict"]].concat());
    strict.expect_code(3);
    assert!(
        strict.stderr.contains("1 regression(s) only the dual gate decided (low-n)"),
        "{}",
        strict.stderr
    );
    assert!(
        strict.stderr.contains("  cgroup_steady/6.14.2/scx_rusty/1n2l4c1t/"),
        "{}",
        strict.stderr
    );
    assert!(strict.stderr.contains(" worst_spread (n 1/1)"), "{}", strict.stderr);
    // ktstr's verdict and exit code, one sample per side, under either gate.
    let dual = td.run(&[&sides[..], &["--gate", "dual", "--json"]].concat());
    dual.expect_code(1);
    let doc = json(&dual);
    assert_eq!(doc["findings"][0]["verdict"], "regression");
    assert_eq!(doc["findings"][0]["method"], "dual-gate-only");
}

#[test]
fn gate_dual_prints_ktstr_text_and_the_same_verdicts() {
    let td = TestDir::new();
    copy_repeats(&td, BASELINE, 0..4, "local");
    copy_repeats(&td, TENTH_HOLD, 0..4, "local");
    let sides =
        ["stats", "compare", "--a-project-commit", BASELINE, "--b-project-commit", TENTH_HOLD];
    let dual = td.run(&[&sides[..], &["--gate", "dual"]].concat());
    dual.expect_code(1);
    assert!(!dual.stdout.contains("gate:") && !dual.stdout.contains("METHOD"), "{}", dual.stdout);
    let header = dual.stdout.lines().find(|l| l.starts_with(" TEST ")).unwrap();
    assert!(
        header.trim_end().ends_with("DELTA       VERDICT")
            || header.trim_end().ends_with(" VERDICT"),
        "{header}"
    );
    // Every dual-gate finding is a finding of the noise gate too, in the same order: the noise
    // gate relabels (noise), it never adds or drops one.
    let dual_doc =
        json(&td.run(&[&sides[..], &["--gate", "dual", "--json", "--no-ingest"]].concat()));
    let noise_doc = json(&td.run(&[&sides[..], &["--json", "--no-ingest"]].concat()));
    let keys = |d: &serde_json::Value| -> Vec<(String, String)> {
        d["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["label"].to_string(), f["metric"].to_string()))
            .collect()
    };
    assert_eq!(keys(&dual_doc), keys(&noise_doc));
    let s = &noise_doc["summary"];
    assert_eq!(
        s["regressions"].as_u64().unwrap()
            + s["improvements"].as_u64().unwrap()
            + s["noise"].as_u64().unwrap(),
        dual_doc["summary"]["regressions"].as_u64().unwrap()
            + dual_doc["summary"]["improvements"].as_u64().unwrap()
    );
    assert_eq!(dual_doc["summary"]["noise"], 0);
}

#[test]
fn alpha_and_fdr_out_of_range_exit_2_with_one_line() {
    let td = TestDir::new();
    one_run_per_side(&td);
    let sides =
        ["stats", "compare", "--a-project-commit", "aaaaaaa", "--b-project-commit", "bbbbbbb"];
    for (flag, value) in
        [("--alpha", "0"), ("--alpha", "2"), ("--fdr", "0"), ("--fdr", "1.5"), ("--alpha", "nan")]
    {
        let run = td.run(&[&sides[..], &[flag, value]].concat());
        run.expect_code(2);
        let name = flag.trim_start_matches("--");
        assert!(
            run.stderr.contains(&format!("--{name} must be between 0 and 1 (exclusive); got ")),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn a_side_with_only_failed_runs_pairs_nothing_and_writes_no_nan() {
    let td = TestDir::new();
    one_run_per_side(&td);
    let path = td.root().join("6.14.2-bbbbbbb/cgroup_steady.ktstr.json");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    doc["passed"] = false.into();
    std::fs::write(&path, doc.to_string()).unwrap();
    let run = td.run(&[
        "stats",
        "compare",
        "--json",
        "--a-project-commit",
        "aaaaaaa",
        "--b-project-commit",
        "bbbbbbb",
    ]);
    run.expect_code(0);
    assert!(
        !run.stdout.contains("NaN") && !run.stdout.contains("null,\n      \"p_value\""),
        "{}",
        run.stdout
    );
    assert_eq!(json(&run)["summary"]["skipped_failed"], 1);
}

#[test]
fn calibrate_reports_false_alarms_detectable_effects_and_repeats() {
    let td = TestDir::new();
    copy_repeats(&td, BASELINE, 0..10, "local");
    let run =
        td.run(&["stats", "calibrate", "--json", "--splits", "20", "--project-commit", BASELINE]);
    run.expect_code(0);
    let doc = json(&run);
    assert_eq!(
        (doc["runs"].as_u64(), doc["keys"].as_u64(), doc["per_side"].as_u64()),
        (Some(70), Some(7), Some(5))
    );
    assert_eq!(doc["splits"], 20);
    let rate = doc["any_regression_rate"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&rate));
    let iters = doc["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == "total_iterations")
        .unwrap();
    assert_eq!(iters["keys"], 7);
    assert!(iters["repeats_needed"].as_u64().unwrap() >= 4, "{iters:#}");
    let text = td.run(&["stats", "calibrate", "--no-ingest", "--splits", "20"]);
    text.expect_code(0);
    assert!(
        text.stdout.starts_with("A/A calibration: 70 runs over 7 tests, split 20 ways"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("\nrun ") && text.stdout.contains("repeats per side"),
        "{}",
        text.stdout
    );
    // Two commits in the pool: calibration needs one.
    copy_repeats(&td, TENTH_HOLD, 0..2, "local");
    let mixed = td.run(&["stats", "calibrate", "--splits", "5"]);
    mixed.expect_code(2);
    assert!(mixed.stderr.contains("the runs span 2 project commits"), "{}", mixed.stderr);
    td.run(&["stats", "calibrate", "--no-ingest", "--alpha", "1"]).expect_code(2);
}

#[test]
fn paired_ab_runs_are_judged_by_the_signed_rank_test() {
    let td = TestDir::new();
    copy_as_ab_session(&td, [BASELINE, TENTH_HOLD], 6);
    let args = [
        "stats",
        "compare",
        "--json",
        "--a-project-commit",
        BASELINE,
        "--b-project-commit",
        TENTH_HOLD,
    ];
    let run = td.run(&args);
    let doc = json(&run);
    let f = spin_steady_iterations(&doc);
    assert_eq!(f["method"], "wilcoxon", "{f:#}");
    let p = f["p_value"].as_f64().unwrap();
    assert!((p - 2.0 / 64.0).abs() < 1e-9, "6 pairs, every ratio below 1: {f:#}");
    // The same runs without their pairing record are judged unpaired.
    let unpaired = TestDir::new();
    copy_repeats(&unpaired, BASELINE, 0..6, "local");
    copy_repeats(&unpaired, TENTH_HOLD, 0..6, "local");
    let doc = json(&unpaired.run(&args));
    let methods: Vec<&str> =
        doc["findings"].as_array().unwrap().iter().filter_map(|f| f["method"].as_str()).collect();
    assert!(!methods.contains(&"wilcoxon"), "{methods:?}");
}
