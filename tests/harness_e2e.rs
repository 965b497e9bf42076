//! End to end: the demo suite in a fresh git repository, run with `cargo ktstr test` at
//! commit A, then at a commit B whose spinners run for a tenth of the step; `stats compare`
//! must gate B (exit 1, `spin_steady`'s `total_iterations` regressed), and a second run of A
//! must pair every key of the first.
//!
//! This checks the tool, not the host: sidecars written, measurements present, pairing,
//! compare's exit code. So the copy turns off the checks that judge how fairly the host
//! scheduled the run (`not_starved`'s spread and gap limits, `max_*` thresholds), which a busy
//! machine trips however correct the tool is; that `not_starved` fires on a starved worker is
//! proven by the harness's own tests. For the same reason B's change is one no host load can
//! hide: confining the spinners to one CPU (the demo's `SPIN_CPUS` knob) halves their work
//! only on an idle host, while on a saturated one the competing load gives the spinners about
//! one CPU's worth either way; a tenth of the hold is a tenth of the work under any load.
//!
//! Builds the demo suite against this checkout with this test binary's own `target/` as
//! `CARGO_TARGET_DIR`, so ktstr's dependency tree is reused rather than compiled again; the
//! runs root is therefore `target/ktstr`, which no other test uses.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::git;

pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cargo-ktstr")
}

/// `target/` that holds this test's binary (`target/debug/cargo-ktstr`).
pub(crate) fn outer_target_dir() -> PathBuf {
    let exe = Path::new(bin());
    // Invariant: cargo places binaries at {target}/{profile}/name.
    exe.parent().and_then(Path::parent).expect("binary lives in target/<profile>/").to_path_buf()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            if e.file_name() != "target" {
                copy_dir(&e.path(), &dest);
            }
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// `examples/{name}` copied to `to`, its ktstr dependency pointed back at this checkout (the
/// copy is outside it).
pub(crate) fn copy_example(name: &str, to: &Path) {
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name), to);
    let manifest = to.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("path = \"../..\"", &format!("path = {:?}", env!("CARGO_MANIFEST_DIR")));
    std::fs::write(&manifest, text).unwrap();
}

pub(crate) struct Suite {
    _tmp: tempfile::TempDir,
    pub(crate) repo: PathBuf,
    pub(crate) runs: PathBuf,
}

impl Suite {
    pub(crate) fn new() -> Suite {
        let tmp = tempfile::TempDir::new().unwrap();
        let repo = tmp.path().join("demo");
        copy_example("demo-suite", &repo);
        let tests = repo.join("tests/demo.rs");
        let code = std::fs::read_to_string(&tests).unwrap();
        std::fs::write(&tests, without_host_fairness_checks(&code)).unwrap();
        std::fs::write(repo.join(".gitignore"), "target/\n").unwrap();
        git(&repo, &["init", "-q"]);
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-qm", "A"]);
        let runs = tmp.path().join("runs");
        // The runs root lives in the shared target dir; drop earlier test runs' sidecars.
        let _ = std::fs::remove_dir_all(outer_target_dir().join("ktstr"));
        Suite { _tmp: tmp, repo, runs }
    }

    pub(crate) fn ktstr(&self, args: &[&str]) -> Output {
        self.ktstr_with(args, &[])
    }

    pub(crate) fn ktstr_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(bin()).args(args).envs(env.iter().copied()).output().unwrap()
    }

    /// `program` in the demo repository with the environment every run here gets.
    pub(crate) fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        // The nextest running this test exports its own settings (NEXTEST_PROFILE=ci in CI);
        // the demo suite's nextest run must not inherit them.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("NEXTEST") {
                cmd.env_remove(name);
            }
        }
        cmd.current_dir(&self.repo)
            .env("CARGO_TARGET_DIR", outer_target_dir())
            .env("KTSTR_DB", self.runs.join("warehouse.sqlite"))
            .env("RUST_BACKTRACE", "0")
            .env_remove("KTSTR_SIDECAR_DIR")
            .env_remove("KTSTR_JOB")
            .env_remove("KTSTR_RUN_TOKEN")
            .env_remove("KTSTR_CI");
        cmd
    }

    /// Commit the demo's regression: the spinners hold for a tenth of the step.
    pub(crate) fn commit_the_regression(&self) {
        let src = self.repo.join("tests/demo.rs");
        let code = std::fs::read_to_string(&src).unwrap();
        let changed = code.replace(SPIN_STEP, SHORT_SPIN_STEP);
        assert_ne!(code, changed, "the demo suite's spinner step moved");
        std::fs::write(&src, changed).unwrap();
        git(&self.repo, &["commit", "-qam", "B: spinners run a tenth of the step"]);
    }

    pub(crate) fn commit_head(&self) -> String {
        git(&self.repo, &["rev-parse", "--short=7", "HEAD"])
    }
}

/// The demo's tests with every threshold that judges the host's fairness turned off:
/// `not_starved` explicitly, and no `max_*` limit left.
fn without_host_fairness_checks(code: &str) -> String {
    let out = code
        .replace("#[ktstr_test(", "#[ktstr_test(not_starved = false, ")
        .replace(", max_spread_pct = 60.0", "");
    let tests = code.matches("#[ktstr_test(").count();
    assert!(tests >= 5, "the demo suite's tests moved");
    assert_eq!(out.matches("not_starved = false").count(), tests);
    assert!(!out.contains("max_"), "a demo threshold this test does not turn off: {out}");
    out
}

/// The demo's spinner step, and B's change to it: the same cgroup for a tenth of the hold.
const SPIN_STEP: &str =
    r#"ctx.run_cgroups(&[CgroupDef::new("spin", WorkType::CpuSpin).cpus(allowed)])?"#;
const SHORT_SPIN_STEP: &str = r#"ctx.run_step(
        &[CgroupDef::new("spin", WorkType::CpuSpin).cpus(allowed)],
        ctx.duration() / 10,
    )?"#;

pub(crate) fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn compare_json(s: &Suite, args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["stats", "compare", "--json"];
    all.extend_from_slice(args);
    let out = s.ktstr(&all);
    let json =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out.status.code().unwrap_or(-1), json)
}

/// `(sidecars, passed, with work measured)` of the runs at `commit`, from the warehouse.
fn sidecar_counts(s: &Suite, commit: &str) -> (u64, u64, u64) {
    let query = format!(
        "SELECT count(*) AS n, sum(passed) AS passed, sum(total_iterations > 0) AS measured \
         FROM sidecar WHERE project_commit = '{commit}'"
    );
    let out = s.ktstr(&["stats", "sql", "--json", &query]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rows: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let count = |name: &str| rows[0][name].as_u64().unwrap_or_else(|| panic!("{name}: {rows}"));
    (count("n"), count("passed"), count("measured"))
}

#[test]
fn demo_suite_a_b_gates_a_regression_and_pairs_a_with_itself() {
    let s = Suite::new();
    let a = s.commit_head();
    let run = s.ktstr(&["test", "--repeat", "2"]);
    assert_eq!(run.status.code(), Some(0), "run A: {}", text(&run));
    assert!(String::from_utf8_lossy(&run.stderr).contains("stats compare"), "{}", text(&run));
    let (sidecars, passed, measured) = sidecar_counts(&s, &a);
    assert!(sidecars >= 14, "7 variants x 2 repeats, got {sidecars} sidecars");
    assert_eq!((passed, measured), (sidecars, sidecars), "every sidecar passed and measured work");

    // B: the spinners run for a tenth of the step, so total_iterations drops about 90 %, far
    // past its 10 % gate and beyond what a change in host load between A and B can cause, while
    // the work type (a pairing dimension) stays CpuSpin.
    s.commit_the_regression();
    let b = s.commit_head();
    let run = s.ktstr(&["test", "--repeat", "2"]);
    assert_eq!(run.status.code(), Some(0), "run B: {}", text(&run));
    let (sidecars, passed, measured) = sidecar_counts(&s, &b);
    assert!(sidecars >= 14 && (passed, measured) == (sidecars, sidecars), "run B's sidecars");

    let (code, json) = compare_json(&s, &["--a-project-commit", &a, "--b-project-commit", &b]);
    assert_eq!(code, 1, "B regressed: {json:#}");
    assert!(json["summary"]["regressions"].as_u64().unwrap_or(0) >= 1, "{json:#}");
    let findings = json["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["metric"] == "total_iterations"
            && f["verdict"] == "regression"
            && f["label"].as_str().unwrap().starts_with("spin_steady/")),
        "spin_steady's total_iterations regressed: {json:#}"
    );
    assert_eq!(json["summary"]["new_in_b"], 0, "A and B pair on every key: {json:#}");

    // A against a second run of A: check out A again and run it as CI would (run_source
    // `ci`), so the two runs of the same commit differ on one dimension to slice on. The
    // warehouse keeps the first run even though the second pre-clears its files.
    git(&s.repo, &["checkout", "-q", &a]);
    let rerun = s.ktstr_with(&["test", "--repeat", "2"], &[("KTSTR_CI", "1")]);
    assert_eq!(rerun.status.code(), Some(0), "rerun A: {}", text(&rerun));
    let (code, json) = compare_json(
        &s,
        &["--project-commit", &a, "--a-run-source", "local", "--b-run-source", "ci"],
    );
    assert!(code == 0 || code == 1, "A vs A ran: {json:#}");
    assert_eq!(json["slicing"], serde_json::json!(["run-source"]), "{json:#}");
    assert_eq!(json["samples"]["a"], json["samples"]["b"], "{json:#}");
    assert!(json["samples"]["a"].as_u64().unwrap() >= 14, "7 variants x 2 repeats: {json:#}");
    assert_eq!(json["summary"]["new_in_b"], 0, "{json:#}");
    assert_eq!(json["summary"]["removed_from_a"], 0, "{json:#}");
}
