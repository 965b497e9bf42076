//! `cargo ktstr ab` and `cargo ktstr stats bisect` on the demo suite, in a temporary
//! repository (set up as `harness_e2e` does, its host-fairness checks off).
//!
//! - `ab` at two commits, B being the demo's regression (the spinners hold a tenth of the
//!   step; see `harness_e2e` for why not `SPIN_CPUS`, which no host load can be relied on to
//!   show): it exits 1 with `spin_steady`'s `total_iterations` regressed, the sidecars'
//!   timestamps show A0 < B0 < A1 < B1, every sidecar carries the session's run token and its
//!   repeat, and the worktrees are gone.
//! - `git bisect run cargo-ktstr stats bisect` over six commits finds the one that introduced
//!   the regression. Each step is one run at its own time, compared with the good commit's
//!   run at another, so how loaded the host was in each moves `total_iterations` too (a
//!   neutral commit measured 55 % below the good one here at load 20): `--threshold 70`
//!   separates that drift (a neutral commit would have to run at under 0.3× the good one's
//!   throughput to cross it) from the regression's 90 % (it would have to run at over 3×).
//!
//! Both run only `spin_steady` (`-E`), one second per run, to keep CI time down; the builds
//! dominate.

use std::collections::BTreeMap;
use std::path::Path;

use crate::harness_e2e::{Suite, bin, outer_target_dir, text};
use crate::util::git;

const ONLY_SPIN_STEADY: &str = "test(spin_steady)";

/// A commit that changes nothing the suite builds from.
fn neutral_commit(repo: &Path, n: usize) {
    std::fs::write(repo.join("NOTES.md"), format!("note {n}\n")).unwrap();
    git(repo, &["add", "NOTES.md"]);
    git(repo, &["commit", "-qm", &format!("notes {n}")]);
}

fn sql_rows(s: &Suite, query: &str) -> Vec<serde_json::Value> {
    let out = s.ktstr(&["stats", "sql", "--no-ingest", "--json", query]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

#[test]
fn ab_interleaves_the_repeats_pairs_them_and_removes_its_worktrees() {
    let s = Suite::new();
    let a = s.commit_head();
    s.commit_the_regression();
    let b = s.commit_head();
    let target = outer_target_dir();
    let out = s.ktstr(&[
        "ab",
        "HEAD~1",
        "HEAD",
        "--repeat",
        "2",
        "--json",
        "--target-dir",
        target.to_str().unwrap(),
        "--",
        "-E",
        ONLY_SPIN_STEADY,
    ]);
    assert_eq!(out.status.code(), Some(1), "B regressed: {}", text(&out));
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert!(
        json["findings"].as_array().unwrap().iter().any(|f| f["metric"] == "total_iterations"
            && f["verdict"] == "regression"
            && f["label"].as_str().unwrap().starts_with("spin_steady/")),
        "{json:#}"
    );

    let rows = sql_rows(
        &s,
        "SELECT project_commit AS c, repeat AS r, run_token AS t, min(timestamp) AS first, \
         max(timestamp) AS last, count(*) AS n FROM sidecar GROUP BY 1, 2, 3",
    );
    assert_eq!(rows.len(), 4, "A and B, two repeats each, one session: {rows:#?}");
    let token = rows[0]["t"].as_str().unwrap().to_string();
    assert!(token.starts_with("ktstr-ab-"), "{token}");
    assert!(rows.iter().all(|r| r["t"] == token.as_str()), "one run token: {rows:#?}");
    let by: BTreeMap<(String, i64), &serde_json::Value> = rows
        .iter()
        .map(|r| ((r["c"].as_str().unwrap().to_string(), r["r"].as_i64().unwrap()), r))
        .collect();
    let order = [(a.clone(), 0), (b.clone(), 0), (a.clone(), 1), (b.clone(), 1)];
    let runs: Vec<&serde_json::Value> =
        order.iter().map(|k| *by.get(k).unwrap_or_else(|| panic!("{k:?}: {rows:#?}"))).collect();
    for pair in runs.windows(2) {
        let (earlier, later) = (pair[0]["last"].as_str(), pair[1]["first"].as_str());
        assert!(earlier <= later, "runs interleave A0 B0 A1 B1: {rows:#?}");
    }
    assert!(runs[0]["last"].as_str() < runs[3]["first"].as_str(), "{rows:#?}");

    let worktrees = git(&s.repo, &["worktree", "list", "--porcelain"]);
    assert_eq!(worktrees.matches("worktree ").count(), 1, "only the main one: {worktrees}");
    assert!(!std::env::temp_dir().join(&token).exists(), "the worktrees' directory is gone");
    let record = target.join("ktstr/.ab").join(format!("{token}.json"));
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(record["status"], "complete", "{record:#}");
    assert_eq!(record["runs"].as_array().unwrap().len(), 4, "{record:#}");
}

#[test]
fn git_bisect_run_with_stats_bisect_finds_the_commit_that_regressed() {
    let s = Suite::new();
    let good = s.commit_head();
    let out = s.ktstr(&["test", "--", "-E", ONLY_SPIN_STEADY]);
    assert_eq!(out.status.code(), Some(0), "the good commit's results: {}", text(&out));
    neutral_commit(&s.repo, 1);
    neutral_commit(&s.repo, 2);
    s.commit_the_regression();
    let culprit = git(&s.repo, &["rev-parse", "HEAD"]);
    neutral_commit(&s.repo, 3);
    neutral_commit(&s.repo, 4);
    assert_eq!(git(&s.repo, &["rev-list", "--count", "HEAD"]), "6");

    git(&s.repo, &["bisect", "start", "HEAD", &good]);
    let out = s
        .command("git")
        .args(["bisect", "run", bin(), "stats", "bisect", "--metric", "total_iterations"])
        .args(["--good", &good, "-E", "spin_steady", "--threshold", "70"])
        .output()
        .unwrap();
    let log = git(&s.repo, &["bisect", "log"]);
    git(&s.repo, &["bisect", "reset"]);
    assert!(out.status.success(), "{}\n{log}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{culprit} is the first bad commit")),
        "{}\n{log}",
        text(&out)
    );
}
