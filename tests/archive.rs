//! The archive as a tool: `stats history`, `stats report --html`, `stats merge` and
//! `stats list --dir`, each driven through the real binary on the bundled sample archive
//! (examples/sample-runs) or on sidecars written for the test.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{SidecarSpec, TestDir, git, sidecar_json};

fn sample_runs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample-runs")
}

/// `args` against the sample archive, with a private database in the test dir.
fn on_samples(t: &TestDir, args: &[&str]) -> crate::util::Run {
    let db = t.path().join("samples.sqlite");
    let mut all: Vec<&str> = args.to_vec();
    let dir = sample_runs();
    all.extend(["--dir", dir.to_str().unwrap(), "--db", db.to_str().unwrap()]);
    t.run(&all)
}

const A: &str = "98b2a67";
const B: &str = "6fd7d4d";

#[test]
fn history_of_the_sample_regression_marks_the_step_at_b() {
    let t = TestDir::new();
    let series = ["--test", "spin_gauntlet", "--topology", "1n1l1c1t"];
    let mut args = vec!["stats", "history", "--metric", "worst_run_delay_us"];
    args.extend(series);
    let run = on_samples(&t, &args);
    run.expect_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "history of worst_run_delay_us (µs, lower is better) for spin_gauntlet/1n1l1c1t/eevdf/CpuSpin"
    );
    assert!(lines[1].starts_with("commits by first sample time"), "{}", run.stdout);
    assert!(
        lines[3].starts_with(&format!(" {A}  3")) && !lines[3].contains("STEP"),
        "{}",
        run.stdout
    );
    assert!(lines[4].starts_with(&format!(" {B}  3")), "{}", run.stdout);
    assert!(lines[4].contains("STEP regression"), "{}", run.stdout);
    assert_eq!(lines[5], "trend: ▁█");

    args.push("--json");
    let json: serde_json::Value = serde_json::from_str(&on_samples(&t, &args).stdout).unwrap();
    let commits = json[0]["commits"].as_array().unwrap();
    assert_eq!(commits.len(), 2);
    assert_eq!(commits[1]["step"]["kind"], "regression");
    assert_eq!(commits[0]["n"], 3);
}

#[test]
fn history_refuses_an_unknown_metric_and_an_ambiguous_series() {
    let t = TestDir::new();
    let run = on_samples(&t, &["stats", "history", "--metric", "worst_run_dely_us"]);
    run.expect_code(2);
    assert!(run.stderr.contains("did you mean `worst_run_delay_us`?"), "{}", run.stderr);
    let run = on_samples(&t, &["stats", "history", "--metric", "worst_run_delay_us"]);
    run.expect_code(2);
    assert!(run.stderr.contains("series match"), "{}", run.stderr);
    // `--flag` names the flagged series, no flag and an exact topology the plain one.
    let run = on_samples(
        &t,
        &["stats", "history", "--metric", "total_iterations", "--test", "spin_gauntlet"],
    );
    run.expect_code(2);
    let flagged = [
        "stats",
        "history",
        "--metric",
        "total_iterations",
        "--test",
        "spin_gauntlet",
        "--topology",
        "1n1l2c1t",
        "--flag",
        "llc",
    ];
    let run = on_samples(&t, &flagged);
    run.expect_code(0);
    assert!(run.stdout.lines().next().unwrap().ends_with("CpuSpin/llc"), "{}", run.stdout);
}

/// Sidecars at commits of a real repository, written in an order unlike git's.
#[test]
fn history_follows_the_first_parent_chain_of_head() {
    let t = TestDir::new();
    let repo = t.path();
    git(repo, &["init", "-q", "-b", "main"]);
    let mut chain = Vec::new();
    for i in 0..4 {
        git(repo, &["commit", "-q", "--allow-empty", "-m", &format!("c{i}")]);
        chain.push(git(repo, &["rev-parse", "--short=7", "HEAD"]));
    }
    git(repo, &["checkout", "-q", "-b", "side", &chain[1]]);
    git(repo, &["commit", "-q", "--allow-empty", "-m", "side"]);
    let side = git(repo, &["rev-parse", "--short=7", "HEAD"]);
    git(repo, &["checkout", "-q", "main"]);
    // Write times run backwards along the chain; the side commit gets a sidecar too.
    let mut commits: Vec<&str> = chain.iter().map(String::as_str).collect();
    commits.push(&side);
    for (i, c) in commits.iter().enumerate() {
        let spec =
            SidecarSpec { project_commit: c, spread: 10.0 * (i + 1) as f64, ..Default::default() };
        let mut doc: serde_json::Value = serde_json::from_str(&sidecar_json(&spec)).unwrap();
        doc["timestamp"] = format!("2026-04-{:02}T00:00:00Z", 20 - i).into();
        t.write(&format!("run-{c}/cgroup_steady.ktstr.json"), &doc.to_string());
    }
    let run = t.run(&["stats", "history", "--metric", "worst_spread", "--json"]);
    run.expect_code(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json[0]["order"], "first-parent");
    assert_eq!(json[0]["off_history"], 1);
    let got: Vec<&str> = json[0]["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["commit"].as_str().unwrap())
        .collect();
    assert_eq!(got, chain.iter().map(String::as_str).collect::<Vec<_>>());
}

/// What headless Chromium made of a page: its DOM after layout, and a screenshot.
fn render_in_chromium(page: &Path, out: &Path) -> (String, Vec<u8>) {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect(
            "chromium is not installed; the HTML report test needs it (run \
             scripts/deps/30-chromium.sh, or ./scripts/setup.sh --deps-only)",
        );
    let url = format!("file://{}", page.display());
    let profile = out.join("chromium-profile");
    let base = |c: &mut Command| {
        c.args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
            .arg(format!("--user-data-dir={}", profile.display()))
            // No network: a page that needed anything remote would show it missing.
            .arg("--proxy-server=127.0.0.1:9")
            .arg("--window-size=1200,2000");
    };
    let mut dump = Command::new(chromium);
    base(&mut dump);
    let dom = dump.arg("--dump-dom").arg(&url).output().expect("run chromium --dump-dom");
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    let shot = out.join("report.png");
    let mut screenshot = Command::new(chromium);
    base(&mut screenshot);
    let s = screenshot.arg(format!("--screenshot={}", shot.display())).arg(&url).output().unwrap();
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    (
        String::from_utf8(dom.stdout).unwrap(),
        fs::read(&shot).expect("chromium wrote the screenshot"),
    )
}

#[test]
fn the_html_report_renders_findings_plots_and_trends_in_chromium() {
    let t = TestDir::new();
    let page = t.path().join("report.html");
    let run = on_samples(
        &t,
        &[
            "stats",
            "report",
            "--html",
            page.to_str().unwrap(),
            "--a-project-commit",
            A,
            "--b-project-commit",
            B,
        ],
    );
    run.expect_code(1);
    let html = fs::read_to_string(&page).unwrap();
    assert!(!html.contains("src=") && !html.contains("href=\"http"), "nothing is loaded");
    assert!(!html.contains("<script"), "the report runs no script");
    let (dom, png) = render_in_chromium(&page, t.path());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 10_000, "a screenshot of a rendered page, {} bytes", png.len());
    let compare = run_compare_json(&t);
    let findings = compare["findings"].as_array().unwrap();
    let regressions = findings.iter().filter(|f| f["verdict"] == "regression").count();
    assert_eq!(dom.matches("<tr class=\"finding regression\">").count(), regressions);
    assert_eq!(dom.matches("<tr class=\"finding ").count(), findings.len());
    assert_eq!(dom.matches("<figure class=\"distribution\"").count(), findings.len());
    assert!(dom.matches("<figure class=\"trend\"").count() >= 1, "changed metrics have trends");
    // Every finding's plot holds both sides' samples: 3 + 3 dots in the sample archive.
    let first = dom.split("<figure class=\"distribution\"").nth(1).unwrap();
    let first = &first[..first.find("</figure>").unwrap()];
    assert_eq!(first.matches("<circle").count(), 6, "{first}");
    assert!(dom.contains("spin_gauntlet"), "findings are named");
}

fn run_compare_json(t: &TestDir) -> serde_json::Value {
    let run = on_samples(
        t,
        &["stats", "compare", "--json", "--a-project-commit", A, "--b-project-commit", B],
    );
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn the_report_refuses_an_unwritable_path_before_any_work() {
    let t = TestDir::new();
    let missing = t.path().join("no-such-dir").join("r.html");
    let run = on_samples(
        &t,
        &[
            "stats",
            "report",
            "--html",
            missing.to_str().unwrap(),
            "--a-project-commit",
            A,
            "--b-project-commit",
            B,
        ],
    );
    run.expect_code(2);
    assert!(run.stderr.starts_with("error: stats report: cannot write"), "{}", run.stderr);
    assert!(!t.path().join("samples.sqlite").exists(), "refused before the warehouse was opened");
    let run = on_samples(
        &t,
        &["stats", "report", "--html", t.path().to_str().unwrap(), "--metric", "worst_spread"],
    );
    run.expect_code(2);
    assert!(run.stderr.contains("is a directory"), "{}", run.stderr);
}

#[test]
fn list_takes_dir_like_the_other_read_commands() {
    let t = TestDir::new();
    let run = on_samples(&t, &["stats", "list"]);
    run.expect_code(0);
    let runs: Vec<&str> =
        run.stdout.lines().skip(1).map(|l| l.split_whitespace().next().unwrap()).collect();
    let mut runs = runs;
    runs.sort();
    assert_eq!(runs, [format!("6.18.44-fc-v669-{B}"), format!("6.18.44-fc-v669-{A}")]);
}

fn sql(t: &TestDir, db: &Path, q: &str) -> String {
    let run = t.run(&["stats", "sql", "--no-ingest", "--csv", "--db", db.to_str().unwrap(), q]);
    run.expect_code(0);
    run.stdout.lines().nth(1).unwrap_or("").to_string()
}

/// Two hosts' warehouses with one sidecar in common, merged into a third.
#[test]
fn merge_dedupes_overlapping_warehouses_keeps_sources_and_is_safe_to_rerun() {
    let host_a = TestDir::new();
    let host_b = TestDir::new();
    let shared = sidecar_json(&SidecarSpec { test: "shared", ..Default::default() });
    host_a.write("run-a/shared.ktstr.json", &shared);
    host_a.sidecar("run-a", "only_a", 1);
    host_b.write("run-b/shared.ktstr.json", &shared);
    host_b.sidecar("run-b", "only_b", 2);
    host_b.sidecar("run-b", "only_b", 3);
    for h in [&host_a, &host_b] {
        h.run(&["stats", "ingest"]).expect_code(0);
    }
    let (db_a, db_b) = (host_a.default_db(), host_b.default_db());
    let archive = TestDir::new();
    let db = archive.path().join("archive.sqlite");
    let merge = |others: &[&Path]| {
        let mut args = vec!["stats", "merge", "--db", db.to_str().unwrap()];
        args.extend(others.iter().map(|p| p.to_str().unwrap()));
        archive.run(&args)
    };
    let run = merge(&[&db_a, &db_b]);
    run.expect_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].ends_with(": 2 new sidecar(s), 0 already present"), "{}", run.stdout);
    assert!(lines[1].ends_with(": 2 new sidecar(s), 1 already present"), "{}", run.stdout);
    assert_eq!(sql(&archive, &db, "SELECT count(*) FROM sidecar"), "4");
    // The shared sidecar came from both hosts; every other from one.
    let origins = "SELECT group_concat(n, ' ') FROM (SELECT count(*) AS n FROM sidecar_origin \
                   GROUP BY sidecar_id ORDER BY n)";
    assert_eq!(sql(&archive, &db, origins), "1 1 1 2");
    assert_eq!(sql(&archive, &db, "SELECT count(*) FROM merge_source"), "2");
    // Documents decode and compare runs on the merged rows.
    let docs = "SELECT count(*) FROM sidecar_document d JOIN ingested_sidecar s USING (sidecar_id)";
    assert_eq!(sql(&archive, &db, docs), "4");
    let run = merge(&[&db_b, &db_a]);
    run.expect_code(0);
    assert!(
        run.stdout.lines().all(|l| l.ends_with(": 0 new sidecar(s), 0 already present")),
        "{}",
        run.stdout
    );
    assert_eq!(sql(&archive, &db, "SELECT count(*) FROM sidecar_origin"), "5");
    // A host that ingested more since: only its new rows are read.
    host_a.sidecar("run-a2", "later", 4);
    host_a.run(&["stats", "ingest"]).expect_code(0);
    let run = merge(&[&db_a]);
    assert!(run.stdout.ends_with(": 1 new sidecar(s), 0 already present\n"), "{}", run.stdout);
    let explain = archive.run(&["stats", "list", "--no-ingest", "--db", db.to_str().unwrap()]);
    explain.expect_code(0);
}

#[test]
fn merge_refuses_itself_a_non_sqlite_file_and_other_schemas() {
    let t = TestDir::new();
    t.sidecar("run", "a", 1);
    t.run(&["stats", "ingest"]).expect_code(0);
    let db = t.default_db();
    let db_s = db.to_str().unwrap();
    let run = t.run(&["stats", "merge", "--db", db_s, db_s]);
    run.expect_code(2);
    assert!(run.stderr.contains("is this warehouse itself"), "{}", run.stderr);
    let text = t.path().join("notes.sqlite");
    fs::write(&text, "not a database, just text that is long enough to have a header\n".repeat(20))
        .unwrap();
    let run = t.run(&["stats", "merge", "--db", db_s, text.to_str().unwrap()]);
    run.expect_code(2);
    assert!(run.stderr.contains("not an SQLite database"), "{}", run.stderr);
    let run = t.run(&["stats", "merge", "--db", db_s, "/no/such/warehouse.sqlite"]);
    run.expect_code(2);
    assert!(run.stderr.contains("does not exist"), "{}", run.stderr);

    let other = TestDir::new();
    other.sidecar("run", "b", 2);
    other.run(&["stats", "ingest"]).expect_code(0);
    crate::util::mark_newer_schema(&other.default_db());
    let run = t.run(&["stats", "merge", "--db", db_s, other.default_db().to_str().unwrap()]);
    run.expect_code(2);
    assert!(run.stderr.contains("newer ktstr (schema version 999"), "{}", run.stderr);
    assert_eq!(sql(&t, &db, "SELECT count(*) FROM sidecar"), "1", "nothing was merged");
}
