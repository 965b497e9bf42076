//! The example scheduler crate (`examples/sched-crate`) as a user's repository: a fresh git
//! history whose commit A declares scx_bpfland with a 5 ms slice and whose commit B gives it a
//! 40 times longer one.
//!
//! On this host (`cargo ktstr test`): without sched_ext (or not root) every test naming the
//! scheduler must be a skip whose reason says exactly what is missing, and the EEVDF baseline
//! must run; on a sched_ext host as root the scheduler tests must run under scx_bpfland and
//! record its ops name.
//!
//! In TCG guests (`cargo ktstr test --kernel 7.3`): A, B, and A' (B reverted, A's tree at a new
//! commit) each run the crate's two tests under the default flag profile, which share one boot
//! per side. `stats compare` A vs B must exit 1 with `wake_behind_spinners`'s wake-latency
//! tail as a regression, and A vs A' must pair every key and exit 0, both under the crate's
//! compare policy (`ab-policy.json`: the wake-latency tail gated at +100 %, every other metric
//! at +1000 %, since with one run per side on a loaded TCG host some metric clears the
//! registry's default gates in almost every A/A compare; see [`VM_FINDING`]).

use std::path::{Path, PathBuf};
use std::process::Output;

use ktstr::sidecar::SidecarResult;

use crate::harness_e2e::{copy_example, text};
use crate::sched_vm::{
    check_bpfland_guest_sidecar, compare_json, ktstr, ktstr_test_in_guests_repeated,
    require_guest_scheduler_prerequisites, sidecars_of,
};
use crate::util::git;

/// A's declaration and B's change to it.
const SLICE_A: &str = r#"args = ["--slice-us", "5000"]"#;
const SLICE_B: &str = r#"args = ["--slice-us", "200000"]"#;
const SCHEDULER_TESTS: [&str; 3] =
    ["spin_under_bpfland", "wake_behind_spinners", "spin_local_kthreads"];

fn make_repo(tmp: &Path) -> PathBuf {
    let repo = tmp.join("sched-crate");
    copy_example("sched-crate", &repo);
    std::fs::write(repo.join(".gitignore"), "target/\n").unwrap();
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "A: scx_bpfland with a 5 ms slice"]);
    repo
}

fn ktstr_test(repo: &Path, sidecars: &Path) -> Output {
    ktstr(repo, &sidecars.join("warehouse.sqlite"))
        .arg("test")
        .env("KTSTR_SIDECAR_DIR", sidecars)
        .output()
        .unwrap()
}

fn sidecars_in(dir: &Path) -> Vec<SidecarResult> {
    let mut out: Vec<SidecarResult> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            p.to_string_lossy()
                .ends_with(".ktstr.json")
                .then(|| serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.test_name.cmp(&b.test_name));
    out
}

/// What a run of the example crate must leave on this host.
fn check_run(out: &Output, sidecars: &[SidecarResult]) {
    let host_has_scx = Path::new("/sys/kernel/sched_ext").is_dir();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let names: Vec<&str> = sidecars.iter().map(|s| s.test_name.as_str()).collect();
    assert_eq!(names.len(), 4, "one sidecar per test: {names:?}\n{}", text(out));
    let eevdf = sidecars.iter().find(|s| s.test_name == "spin_under_eevdf").unwrap();
    assert_eq!(eevdf.scheduler, "eevdf");
    // It ran and measured work; whether it passed depends on how busy this host is.
    assert!(!eevdf.skipped && eevdf.stats.total_iterations > 0, "{}", text(out));
    for name in SCHEDULER_TESTS {
        let sc = sidecars.iter().find(|s| s.test_name == name).unwrap();
        assert_eq!(sc.scheduler, "scx_bpfland");
        if host_has_scx && root {
            assert!(!sc.skipped, "{name} ran: {}", text(out));
            assert!(sc.provenance.other["scx_ops"].as_str().unwrap().starts_with("bpfland"));
            continue;
        }
        let why = sc.provenance.skip_reason.as_deref().unwrap_or_default();
        assert!(sc.skipped, "{name} is a skip on this host: {}", text(out));
        assert!(
            why.starts_with("scheduler scx_bpfland cannot run on the host backend: it needs "),
            "{why}"
        );
        assert_eq!(why.contains("CONFIG_SCHED_CLASS_EXT=y"), !host_has_scx, "{why}");
        assert_eq!(why.contains("root (running as uid"), !root, "{why}");
    }
}

#[test]
fn the_example_scheduler_crate_at_two_commits_runs_or_skips_what_this_host_cannot() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = make_repo(tmp.path());
    let (sidecars_a, sidecars_b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&sidecars_a).unwrap();
    std::fs::create_dir_all(&sidecars_b).unwrap();
    let out = ktstr_test(&repo, &sidecars_a);
    check_run(&out, &sidecars_in(&sidecars_a));

    let src = repo.join("tests/sched.rs");
    let code = std::fs::read_to_string(&src).unwrap();
    assert!(code.contains(SLICE_A), "the example's declaration moved");
    std::fs::write(&src, code.replace(SLICE_A, SLICE_B)).unwrap();
    git(&repo, &["commit", "-qam", "B: scx_bpfland with a 200 ms slice"]);
    let out = ktstr_test(&repo, &sidecars_b);
    let b = sidecars_in(&sidecars_b);
    check_run(&out, &b);
    let commits: Vec<_> = [&sidecars_in(&sidecars_a)[0], &b[0]]
        .iter()
        .map(|s| s.project_commit.clone().unwrap())
        .collect();
    assert_ne!(commits[0], commits[1], "A and B are recorded as different commits");
}

/// The example's tests that share a guest boot: scx_bpfland under its default flag profile.
/// (`spin_local_kthreads` and `spin_under_eevdf` would each need a boot of their own.)
const ONE_BOOT: [&str; 2] = ["spin_under_bpfland", "wake_behind_spinners"];

/// What B's 40 times longer slice regresses, far beyond run-to-run noise: the tail of the pipe
/// tasks' wake latency behind the spinners (p99 / median), which the crate's policy gates at
/// +100 %. Measured in the 1-CPU guest these tests declare, under the default instruction clock
/// (`--tcg-clock`), one run per side: A 8.2-9.6 over eight runs, B 45.5-53.8 over six, the
/// same with two busy loops on the host's 2 cores as idle. With the host's clock A was 3.8-18.6
/// and B 8.7-27.4 and the two overlapped under load: a run of this test once found no
/// regression. (test, metric)
const VM_FINDING: (&str, &str) = ("wake_behind_spinners", "worst_wake_latency_tail_ratio");

/// Repeats per side: two samples per key halve the variance a single TCG run has, and each
/// repeat must boot (and measure) again rather than reuse the first repeat's guest results.
const REPEATS: u32 = 2;

/// One side of the A/B: `cargo ktstr test --kernel 7.3 --repeat 2` on [`ONE_BOOT`] at `repo`'s
/// HEAD; its short commit, after checking the run and its sidecars.
fn run_in_guests(repo: &Path, db: &Path) -> String {
    let commit = git(repo, &["rev-parse", "--short=7", "HEAD"]);
    let filter = ONE_BOOT.map(|t| format!("test(={t})")).join(" | ");
    let out = ktstr_test_in_guests_repeated(repo, db, REPEATS, &["-E", &filter]);
    assert_eq!(out.status.code(), Some(0), "the run at {commit} passed: {}", text(&out));
    let boots = text(&out).matches("ktstr: boot of ").count();
    assert_eq!(boots, REPEATS as usize, "one boot per repeat: {}", text(&out));
    let sidecars = sidecars_of(&commit);
    let names: Vec<&str> = sidecars.iter().map(|s| s.test_name.as_str()).collect();
    let expected: Vec<&str> = ONE_BOOT.iter().flat_map(|t| [*t; REPEATS as usize]).collect();
    assert_eq!(names, expected, "one sidecar per test and repeat at {commit}: {}", text(&out));
    for sc in &sidecars {
        check_bpfland_guest_sidecar(sc, &text(&out));
    }
    for pair in sidecars.chunks(REPEATS as usize) {
        let repeats: Vec<Option<u32>> = pair.iter().map(|s| s.provenance.repeat).collect();
        assert_eq!(repeats, [Some(0), Some(1)], "{}", pair[0].test_name);
        assert_ne!(
            (pair[0].timestamp.as_str(), pair[0].stats.total_iterations),
            (pair[1].timestamp.as_str(), pair[1].stats.total_iterations),
            "{}: each repeat is its own measurement, not a copy of the first",
            pair[0].test_name
        );
    }
    commit
}

#[test]
fn the_example_scheduler_crate_a_b_in_tcg_guests_gates_the_longer_slice() {
    require_guest_scheduler_prerequisites();
    let tmp = tempfile::tempdir().unwrap();
    let repo = make_repo(tmp.path());
    let db = tmp.path().join("warehouse.sqlite");
    let a = run_in_guests(&repo, &db);

    let src = repo.join("tests/sched.rs");
    let code = std::fs::read_to_string(&src).unwrap();
    std::fs::write(&src, code.replace(SLICE_A, SLICE_B)).unwrap();
    git(&repo, &["commit", "-qam", "B: scx_bpfland with a 200 ms slice"]);
    let b = run_in_guests(&repo, &db);
    let (code, json) = compare_commits(&repo, &db, &a, &b);
    assert_eq!(code, 1, "B regressed: {json:#}");
    let (test, metric) = VM_FINDING;
    let found = json["findings"].as_array().unwrap().iter().any(|f| {
        f["metric"] == metric
            && f["verdict"] == "regression"
            && f["label"].as_str().unwrap().starts_with(&format!("{test}/"))
    });
    assert!(found, "{test}'s {metric} regressed under the longer slice: {json:#}");
    check_every_key_paired(&json);

    git(&repo, &["revert", "--no-edit", "HEAD"]);
    let a_again = run_in_guests(&repo, &db);
    let (code, json) = compare_commits(&repo, &db, &a, &a_again);
    assert_eq!(code, 0, "A against A at another commit: {json:#}");
    assert_eq!(json["summary"]["regressions"], 0, "{json:#}");
    check_every_key_paired(&json);
}

/// `stats compare --json` of commit `a` against `b` under the crate's `ab-policy.json`.
fn compare_commits(repo: &Path, db: &Path, a: &str, b: &str) -> (i32, serde_json::Value) {
    let policy = repo.join("ab-policy.json");
    let args = ["--a-project-commit", a, "--b-project-commit", b, "--policy"];
    compare_json(repo, db, &[&args[..], &[policy.to_str().unwrap()]].concat())
}

/// Both sides have [`REPEATS`] sidecars of each of [`ONE_BOOT`], and every key found its
/// partner.
fn check_every_key_paired(json: &serde_json::Value) {
    assert_eq!(json["slicing"], serde_json::json!(["project-commit"]), "{json:#}");
    let n = ONE_BOOT.len() * REPEATS as usize;
    assert_eq!(
        (json["samples"]["a"].as_u64(), json["samples"]["b"].as_u64()),
        (Some(n as u64), Some(n as u64)),
        "{json:#}"
    );
    assert_eq!(json["summary"]["new_in_b"], 0, "{json:#}");
    assert_eq!(json["summary"]["removed_from_a"], 0, "{json:#}");
}
