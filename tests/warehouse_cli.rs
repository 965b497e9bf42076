//! `stats ingest` and `stats sql` driven through the real binary: counts, idempotence,
//! incremental re-ingest, corrupt and oversized files, history, concurrency, a kill in the
//! middle of an ingest, unusable databases, and the read-only SQL surface.

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use crate::util::{SidecarSpec, TestDir, sidecar_json};

fn ingest_json(t: &TestDir) -> serde_json::Value {
    let run = t.run(&["stats", "ingest", "--json"]);
    run.expect_code(0);
    serde_json::from_str(run.stdout.trim()).expect("ingest --json prints one JSON object")
}

fn sql(t: &TestDir, query: &str) -> String {
    let run = t.run(&["stats", "sql", "--no-ingest", "--csv", query]);
    run.expect_code(0);
    run.stdout.trim_end().to_string()
}

#[test]
fn ingest_counts_then_is_idempotent_and_stat_only() {
    let t = TestDir::new();
    for n in 0..3 {
        t.sidecar("6.14.2-abc1234", &format!("t{n}"), n);
    }
    t.sidecar("6.14.2-abc1234/job-1", "nested", 9);
    let first = t.run(&["stats", "ingest"]);
    first.expect_code(0);
    assert!(first.stdout.contains("4 sidecar files seen, 4 new sidecars"), "{}", first.stdout);
    let again = ingest_json(&t);
    assert_eq!(again["files_seen"], 4);
    assert_eq!(again["new_sidecars"], 0);
    assert_eq!(again["parsed"], 0, "an unchanged tree is stat-only");
    assert_eq!(again["unchanged"], 4);
    assert_eq!(sql(&t, "SELECT count(*) AS n FROM sidecar"), "n\r\n4");
}

#[test]
fn corrupt_files_are_reported_on_stderr_and_the_run_goes_on() {
    let t = TestDir::new();
    t.sidecar("run", "good", 1);
    let junk = t.write("run/junk-2.ktstr.json", "{ this is not json");
    let deep = t.write("run/deep-3.ktstr.json", &"[".repeat(100_000));
    let big = t.write("run/big-4.ktstr.json", "");
    fs::File::options().write(true).open(&big).unwrap().set_len(17 * 1024 * 1024).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    for p in [&junk, &deep, &big] {
        fs::File::options().write(true).open(p).unwrap().set_modified(old).unwrap();
    }
    let run = t.run(&["stats", "ingest"]);
    run.expect_code(0);
    assert!(run.stdout.contains("1 new sidecar,"), "{}", run.stdout);
    assert!(run.stdout.contains("3 problems"), "{}", run.stdout);
    for p in [&junk, &deep, &big] {
        assert!(run.stderr.contains(&p.display().to_string()), "{p:?} in {}", run.stderr);
    }
    assert!(run.stderr.contains("16777216-byte sidecar limit"), "{}", run.stderr);
    let json = ingest_json(&t);
    assert_eq!(json["known_corrupt"], 3);
}

#[test]
fn deleted_files_stay_as_history() {
    let t = TestDir::new();
    let a = t.sidecar("run", "a", 1);
    t.sidecar("run", "b", 2);
    ingest_json(&t);
    fs::remove_file(a).unwrap();
    let report = ingest_json(&t);
    assert_eq!(report["vanished"], 1);
    assert_eq!(sql(&t, "SELECT count(*) AS n, sum(present) AS p FROM sidecar"), "n,p\r\n2,1");
}

#[test]
fn two_concurrent_ingests_neither_fail_nor_duplicate() {
    let t = TestDir::new();
    for n in 0..400 {
        t.sidecar(&format!("run-{}", n % 4), "t", n);
    }
    let spawn = || {
        t.cmd()
            .args(["stats", "ingest"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = crate::util::Run::from(child.wait_with_output().unwrap());
        out.expect_code(0);
        assert!(!out.stderr.contains("locked"), "{}", out.stderr);
    }
    assert_eq!(sql(&t, "SELECT count(*) AS n FROM ingested_sidecar"), "n\r\n400");
    assert_eq!(sql(&t, "SELECT count(*) AS n FROM source_file"), "n\r\n400");
}

#[test]
fn a_killed_ingest_is_completed_by_the_next_one() {
    let t = TestDir::new();
    let total = 6000;
    for n in 0..total {
        let body = sidecar_json(&SidecarSpec { iterations: n, ..Default::default() });
        t.write(&format!("run-{}/job-{}/t-{n}.ktstr.json", n % 10, n % 3), &body);
    }
    let mut child = t.cmd().args(["stats", "ingest"]).stdout(Stdio::null()).spawn().unwrap();
    // Wait for the first committed batch, then kill mid-ingest.
    let db = t.default_db();
    for _ in 0..200 {
        if fs::metadata(db.with_extension("sqlite-wal")).is_ok_and(|m| m.len() > 1 << 20) {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    let report = ingest_json(&t);
    assert!(report["problems"].as_array().unwrap().is_empty(), "{report}");
    assert_eq!(sql(&t, "PRAGMA integrity_check"), "integrity_check\r\nok");
    assert_eq!(sql(&t, "SELECT count(*) AS n FROM ingested_sidecar"), format!("n\r\n{total}"));
    assert_eq!(sql(&t, "SELECT count(*) AS n FROM source_file"), format!("n\r\n{total}"));
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_and_untouched() {
    let t = TestDir::new();
    t.sidecar("run", "a", 1);
    let db = t.path().join("notes.db");
    let junk = "not a database at all, just some text long enough\n".repeat(50);
    fs::write(&db, &junk).unwrap();
    let run = t.run(&["stats", "ingest", "--db", db.to_str().unwrap()]);
    run.expect_code(2);
    assert!(run.stderr.contains("is not a ktstr warehouse"), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert_eq!(fs::read_to_string(&db).unwrap(), junk);
}

#[test]
fn a_newer_schema_asks_for_an_upgrade() {
    let t = TestDir::new();
    t.sidecar("run", "a", 1);
    ingest_json(&t);
    crate::util::mark_newer_schema(&t.default_db());
    let run = t.run(&["stats", "ingest"]);
    run.expect_code(2);
    assert!(run.stderr.contains("upgrade"), "{}", run.stderr);
}

#[test]
fn an_unwritable_database_path_and_a_missing_root_exit_2() {
    let t = TestDir::new();
    t.sidecar("run", "a", 1);
    let file = t.path().join("plain-file");
    fs::write(&file, "x").unwrap();
    let db = file.join("w.sqlite");
    let run = t.run(&["stats", "ingest", "--db", db.to_str().unwrap()]);
    run.expect_code(2);
    assert!(run.stderr.contains("cannot create or write the warehouse"), "{}", run.stderr);

    let missing = t.path().join("nope");
    let run = t.run(&["stats", "ingest", "--dir", missing.to_str().unwrap()]);
    run.expect_code(2);
    assert!(run.stderr.contains("does not exist"), "{}", run.stderr);
    assert!(!missing.exists(), "no database is created for a missing root");
}

#[test]
fn sql_refuses_every_write() {
    let t = TestDir::new();
    t.sidecar("run", "a", 1);
    ingest_json(&t);
    let attach = format!("ATTACH '{}' AS x", t.path().join("x.db").display());
    for q in [
        "INSERT INTO runs_root (path) VALUES ('x')",
        "UPDATE ingested_sidecar SET test_name = 'x'",
        "DELETE FROM ingested_sidecar",
        "DROP TABLE ingested_sidecar",
        "PRAGMA query_only=OFF",
        attach.as_str(),
    ] {
        for no_ingest in [true, false] {
            let mut args = vec!["stats", "sql", q];
            if no_ingest {
                args.push("--no-ingest");
            }
            let run = t.run(&args);
            run.expect_code(2);
            assert!(run.stderr.contains("read-only through `stats sql`"), "{q}: {}", run.stderr);
            assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        }
    }
    assert!(!t.path().join("x.db").exists());
    assert_eq!(sql(&t, "SELECT count(*) AS n FROM sidecar"), "n\r\n1");
}

#[test]
fn sql_output_shapes() {
    let t = TestDir::new();
    t.sidecar("run", "a", 1);
    t.sidecar("run", "b", 2);
    let q = "SELECT test_name, CAST(total_iterations AS INTEGER) AS it, x'0aff' AS raw, \
             NULL AS nada, 'x,\"y\"' AS odd FROM ingested_sidecar ORDER BY test_name";
    let run = t.run(&["stats", "sql", "--json", q]);
    run.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!([
            {"test_name": "a", "it": 1001, "raw": "0aff", "nada": null, "odd": "x,\"y\""},
            {"test_name": "b", "it": 1002, "raw": "0aff", "nada": null, "odd": "x,\"y\""}
        ])
    );
    let run = t.run(&["stats", "sql", "--csv", q]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "test_name,it,raw,nada,odd\r\na,1001,0aff,,\"x,\"\"y\"\"\"\r\nb,1002,0aff,,\"x,\"\"y\"\"\"\r\n"
    );
    let run = t.run(&["stats", "sql", q]);
    run.expect_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(lines[0].contains("test_name") && lines[1].contains("1001"), "{}", run.stdout);
}
