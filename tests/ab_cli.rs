//! `cargo ktstr ab` and `stats bisect` on bad input, and `ab`'s Ctrl-C and build-failure
//! paths, in small temporary repositories. A fake `cargo` (via `CARGO`) stands in for nextest
//! where a run is needed, so nothing here builds a suite: it records where it ran and writes
//! one sidecar, then fails or waits to be interrupted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Run, SidecarSpec, TestDir, fake_cargo, git, sidecar_json};

/// A repository with two commits (`HEAD~1`, `HEAD`) in `{temp}/repo`.
fn repo(t: &TestDir) -> PathBuf {
    let repo = t.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    for n in 1..=2 {
        std::fs::write(repo.join("file.txt"), format!("{n}\n")).unwrap();
        git(&repo, &["add", "file.txt"]);
        git(&repo, &["commit", "-qm", &format!("commit {n}")]);
    }
    repo
}

fn run_in(t: &TestDir, dir: &Path, args: &[&str]) -> Run {
    Run::from(t.cmd().current_dir(dir).args(args).output().unwrap())
}

fn worktree_count(repo: &Path) -> usize {
    git(repo, &["worktree", "list", "--porcelain"]).matches("worktree ").count()
}

#[test]
fn ab_refuses_equal_commits_with_the_overwrite_warning() {
    let t = TestDir::new();
    let repo = repo(&t);
    git(&repo, &["tag", "base"]);
    let run = run_in(&t, &repo, &["ab", "base", "HEAD"]);
    run.expect_code(2);
    assert!(run.stderr.contains("are the same commit"), "{}", run.stderr);
    assert!(run.stderr.contains("overwrite the first"), "{}", run.stderr);
    assert_eq!(worktree_count(&repo), 1);
}

#[test]
fn ab_refuses_a_dirty_tree_an_unknown_commit_and_a_directory_outside_git() {
    let t = TestDir::new();
    let repo = repo(&t);
    let run = run_in(&t, &repo, &["ab", "HEAD~1", "no-such-branch"]);
    run.expect_code(2);
    assert!(run.stderr.contains("`no-such-branch` does not name a commit"), "{}", run.stderr);

    std::fs::write(repo.join("file.txt"), "edited\n").unwrap();
    let run = run_in(&t, &repo, &["ab", "HEAD~1", "HEAD"]);
    run.expect_code(2);
    assert!(run.stderr.contains("uncommitted changes to tracked files"), "{}", run.stderr);
    assert_eq!(worktree_count(&repo), 1);

    let run = t.run(&["ab", "HEAD~1", "HEAD"]);
    run.expect_code(2);
    assert!(run.stderr.contains("is not inside a git repository"), "{}", run.stderr);
}

#[test]
fn bisect_stops_the_bisection_outside_a_repository_and_without_good_results() {
    let t = TestDir::new();
    let run = t.run(&["stats", "bisect", "--metric", "total_iterations", "--good", "HEAD"]);
    run.expect_code(128);
    assert!(run.stderr.contains("is not inside a git repository"), "{}", run.stderr);

    let repo = repo(&t);
    let step = ["stats", "bisect", "--metric", "total_iterations", "--good", "HEAD~1"];
    let run = run_in(&t, &repo, &step);
    run.expect_code(128);
    assert!(run.stderr.contains("no warehouse at"), "{}", run.stderr);
    // A warehouse with results of another commit only.
    t.sidecar("6.14.2-abc1234", "other", 1);
    t.run(&["stats", "ingest"]).expect_code(0);
    let run = run_in(&t, &repo, &step);
    run.expect_code(128);
    assert!(run.stderr.contains("holds no results for the good commit"), "{}", run.stderr);

    let run = run_in(&t, &repo, &["stats", "bisect", "--metrc", "x", "--good", "HEAD"]);
    run.expect_code(128);

    let run =
        run_in(&t, &repo, &["stats", "bisect", "--metric", "no_such_metric", "--good", "HEAD"]);
    run.expect_code(128);
    assert!(run.stderr.contains("not a registered metric"), "{}", run.stderr);
}

/// Stands in for cargo: `nextest --version` works; `nextest run` notes its directory and
/// target dir, writes one sidecar into its repeat's job directory, then exits with
/// `$FAKE_EXIT` or, unset, waits to be interrupted.
const FAKE_CARGO: &str = r#"#!/bin/sh
[ "$2" = "--version" ] && exit 0
pwd > "$FAKE_DIR/cwd-$KTSTR_JOB"
dir="$CARGO_TARGET_DIR/ktstr/6.14.2-abc1234/$KTSTR_JOB"
mkdir -p "$dir"
cp "$FAKE_DIR/sidecar.json" "$dir/done-0.ktstr.json"
[ -n "$FAKE_EXIT" ] && exit "$FAKE_EXIT"
trap 'exit 130' INT
touch "$FAKE_DIR/ready"
while :; do sleep 0.05; done
"#;

fn ab_command(t: &TestDir, repo: &Path, fake: &Path) -> Command {
    let mut cmd = t.cmd();
    cmd.current_dir(repo)
        .env("CARGO", fake.join("cargo"))
        .env("FAKE_DIR", fake)
        .args(["ab", "HEAD~1", "HEAD", "--repeat", "2"]);
    cmd
}

/// The one session record under the runs root.
fn session_record(t: &TestDir) -> (String, serde_json::Value) {
    let dir = t.root().join(".ab");
    let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(entries.len(), 1, "one session record in {}", dir.display());
    let path = entries[0].path();
    let token = path.file_stem().unwrap().to_string_lossy().into_owned();
    (token, serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap())
}

#[test]
fn ctrl_c_during_ab_removes_the_worktrees_and_keeps_and_marks_what_was_written() {
    let t = TestDir::new();
    let repo = repo(&t);
    let fake = fake_cargo(&t, FAKE_CARGO);
    let child =
        ab_command(&t, &repo, &fake).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fake.join("ready").exists() {
        assert!(Instant::now() < deadline, "the fake run never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let run = Run::from(child.wait_with_output().unwrap());
    run.expect_code(130);
    assert!(run.stderr.contains("interrupted after 1 of 4 runs"), "{}", run.stderr);

    let cwd = std::fs::read_to_string(fake.join("cwd-repeat-0")).unwrap();
    let (token, record) = session_record(&t);
    assert!(cwd.trim().ends_with(&format!("{token}/a")), "A ran in its worktree: {cwd}");
    assert_eq!(record["status"], "interrupted", "{record:#}");
    assert_eq!(record["runs"][0]["side"], "A", "{record:#}");
    assert_eq!(worktree_count(&repo), 1, "the worktrees are removed");
    assert!(!std::env::temp_dir().join(&token).exists());
    // Both sides built in {target}/ktstr-ab, whose `ktstr` is the runs root.
    let link = t.path().join("target/ktstr-ab/ktstr");
    assert_eq!(std::fs::read_link(&link).unwrap(), t.root());
    let list = t.run(&["stats", "list", "--no-ingest"]);
    list.expect_code(0);
    assert!(list.stdout.contains("6.14.2-abc1234"), "the sidecar was indexed: {}", list.stdout);
}

#[test]
fn a_commit_that_does_not_build_is_named_and_the_worktrees_are_removed() {
    let t = TestDir::new();
    let repo = repo(&t);
    let fake = fake_cargo(&t, FAKE_CARGO);
    let run = Run::from(ab_command(&t, &repo, &fake).env("FAKE_EXIT", "101").output().unwrap());
    run.expect_code(2);
    assert!(run.stderr.contains("HEAD~1 ("), "{}", run.stderr);
    assert!(run.stderr.contains("side A) does not build"), "{}", run.stderr);
    let (_, record) = session_record(&t);
    assert_eq!(record["status"], "build-failed", "{record:#}");
    assert_eq!(worktree_count(&repo), 1);
}

/// Stands in for cargo in a bisection: `nextest run` writes one sidecar for HEAD whose
/// `total_iterations` is the number in the checked-out `ITER` file.
const FAKE_BISECT_CARGO: &str = r#"#!/bin/sh
[ "$2" = "--version" ] && exit 0
commit=$(git rev-parse --short=7 HEAD)
dir="$CARGO_TARGET_DIR/ktstr/6.14.2-$commit"
mkdir -p "$dir"
sed -e "s/@COMMIT@/$commit/" -e "s/424242/$(cat ITER)/" "$FAKE_DIR/template.json" \
    > "$dir/done-0.ktstr.json"
"#;

#[test]
fn bisect_with_bad_runs_the_whole_bisection_and_names_the_commit_that_regressed() {
    let t = TestDir::new();
    let repo = t.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    let mut commits = Vec::new();
    for (n, iterations) in [1000, 1010, 990, 100, 105, 98].into_iter().enumerate() {
        std::fs::write(repo.join("ITER"), format!("{iterations}\n")).unwrap();
        git(&repo, &["add", "ITER"]);
        git(&repo, &["commit", "-qm", &format!("commit {n}")]);
        commits.push(git(&repo, &["rev-parse", "HEAD"]));
    }
    let fake = fake_cargo(&t, FAKE_BISECT_CARGO);
    let template = SidecarSpec {
        test: "done",
        project_commit: "@COMMIT@",
        iterations: 424242,
        ..Default::default()
    };
    std::fs::write(fake.join("template.json"), sidecar_json(&template)).unwrap();
    let good = &commits[0][..7];
    let spec =
        SidecarSpec { test: "done", project_commit: good, iterations: 1000, ..Default::default() };
    t.write(&format!("6.14.2-{good}/done-0.ktstr.json"), &sidecar_json(&spec));
    t.run(&["stats", "ingest"]).expect_code(0);

    let run = Run::from(
        t.cmd()
            .current_dir(&repo)
            .env("CARGO", fake.join("cargo"))
            .env("FAKE_DIR", &fake)
            .args(["stats", "bisect", "--metric", "total_iterations", "--good", good])
            .args(["--bad", "HEAD"])
            .output()
            .unwrap(),
    );
    run.expect_code(0);
    assert!(
        run.stdout.contains(&format!("{} is the first bad commit", commits[3])),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(git(&repo, &["rev-parse", "HEAD"]), commits[5], "the bisection was reset");
}
