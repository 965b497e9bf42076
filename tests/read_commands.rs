//! `stats list`, `list-metrics`, `list-values`, `show-host` and `explain-sidecar` driven
//! through the real binary on sidecar trees built per test.

use std::path::{Path, PathBuf};
use std::process::Command;

use ktstr::sidecar::{HostContext, SidecarResult};
use tempfile::TempDir;

use crate::util::output_into_closed_pipe;

/// A temporary `CARGO_TARGET_DIR` whose default runs root is `{tmp}/ktstr`.
struct Env {
    tmp: TempDir,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Env {
    /// Run with stdout closed before the command writes, as `| head -0` would.
    fn run_into_closed_pipe(&self, args: &[&str]) -> Out {
        let out = output_into_closed_pipe(
            Command::new(env!("CARGO_BIN_EXE_cargo-ktstr"))
                .args(args)
                .env("CARGO_TARGET_DIR", self.tmp.path())
                .env("RUST_BACKTRACE", "0")
                .env_remove("KTSTR_DB"),
        );
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::new(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    fn new() -> Env {
        Env { tmp: TempDir::new().unwrap() }
    }

    fn root(&self) -> PathBuf {
        self.tmp.path().join("ktstr")
    }

    fn write(&self, rel: &str, doc: &SidecarResult) -> PathBuf {
        write_at(&self.root(), rel, doc)
    }

    fn run(&self, args: &[&str]) -> Out {
        let out = Command::new(env!("CARGO_BIN_EXE_cargo-ktstr"))
            .args(args)
            .env("CARGO_TARGET_DIR", self.tmp.path())
            .env("RUST_BACKTRACE", "0")
            .env("NO_COLOR", "1")
            .env_remove("KTSTR_DB")
            .env_remove("KTSTR_SIDECAR_DIR")
            .output()
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }
}

fn write_at(root: &Path, rel: &str, doc: &SidecarResult) -> PathBuf {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, doc.to_json_pretty()).unwrap();
    path
}

fn sidecar(test: &str, kernel: Option<&str>, flags: &[&str]) -> SidecarResult {
    let mut s = SidecarResult::empty(test);
    s.kernel_version = kernel.map(Into::into);
    s.project_commit = Some("abc1234".into());
    s.run_source = Some("local".into());
    s.active_flags = flags.iter().map(|f| f.to_string()).collect();
    s.timestamp = "2026-04-27T09:15:02Z".into();
    s.run_id = format!("{test}-0");
    s
}

fn with_host(mut s: SidecarResult) -> SidecarResult {
    s.host = Some(HostContext {
        kernel_name: Some("Linux".into()),
        arch: Some("x86_64".into()),
        online_cpus: Some(4),
        ..Default::default()
    });
    s
}

#[test]
fn list_metrics_text_and_json() {
    let env = Env::new();
    let out = env.run(&["stats", "list-metrics"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 20);
    assert_eq!(
        lines[0],
        " NAME                              POLARITY  DEFAULT_ABS  DEFAULT_REL  UNIT"
    );
    assert_eq!(
        lines[1],
        " worst_spread                      lower     5            0.25         %"
    );
    assert_eq!(
        lines[10],
        " worst_p99_wake_latency_us         lower     50           0.25         µs"
    );
    assert_eq!(lines[13], " total_iterations                  higher    100          0.1");
    assert!(out.stdout.ends_with('\n'));

    let out = env.run(&["stats", "list-metrics", "--json"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.starts_with(
        "[\n  {\n    \"name\": \"worst_spread\",\n    \"polarity\": \"LowerBetter\",\n    \
         \"default_abs\": 5.0,\n    \"default_rel\": 0.25,\n    \"display_unit\": \"%\"\n  },\n"
    ));
    assert!(out.stdout.ends_with("}\n]"));
    assert!(out.stdout.contains("\"display_unit\": \"µs\""));

    let out = env.run(&["stats", "list-metrics", "extra"]);
    assert_eq!(out.code, 2);
}

#[test]
fn list_values_text_json_and_archive_relabel() {
    let env = Env::new();
    env.write("r1/a.ktstr.json", &sidecar("a", Some("6.14.2"), &["llc", "borrow"]));
    env.write("r1/b.ktstr.json", &sidecar("b", None, &[]));
    let out = env.run(&["stats", "list-values"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "kernel:\n  unknown\n  6.14.2\n\ncommit:\n  abc1234\n\nkernel_commit:\n  unknown\n\n\
         source:\n  local\n\nscheduler:\n  eevdf\n\ntopology:\n  1n1l1c1t\n\n\
         work_type:\n  CpuSpin\n\nflags:\n  borrow\n  llc\n\n"
    );
    let out = env.run(&["stats", "list-values", "--json"]);
    assert_eq!(
        out.stdout,
        "{\n  \"commit\": [\n    \"abc1234\"\n  ],\n  \"flags\": [\n    \"borrow\",\n    \"llc\"\n  \
         ],\n  \"kernel\": [\n    null,\n    \"6.14.2\"\n  ],\n  \"kernel_commit\": [\n    null\n  \
         ],\n  \"scheduler\": [\n    \"eevdf\"\n  ],\n  \"source\": [\n    \"local\"\n  ],\n  \
         \"topology\": [\n    \"1n1l1c1t\"\n  ],\n  \"work_type\": [\n    \"CpuSpin\"\n  ]\n}\n"
    );

    let archive = env.tmp.path().join("archive");
    write_at(&archive, "old/x.ktstr.json", &sidecar("x", Some("6.13"), &[]));
    let dir = archive.to_str().unwrap();
    let out = env.run(&["stats", "list-values", "--dir", dir]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("source:\n  archive\n\n"), "{}", out.stdout);
    assert!(out.stdout.contains("kernel:\n  6.13\n\n"), "{}", out.stdout);
    assert!(out.stdout.contains("flags:\n  (no sidecars in pool)\n\n"));

    // Both roots in one archive database: `--dir` still lists that root's values only.
    let shared = env.tmp.path().join("shared.sqlite");
    let db = shared.to_str().unwrap();
    assert_eq!(env.run(&["stats", "ingest", "--db", db]).code, 0);
    let out = env.run(&["stats", "list-values", "--dir", dir, "--db", db]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("kernel:\n  6.13\n\n"), "{}", out.stdout);
    assert!(out.stdout.contains("flags:\n  (no sidecars in pool)\n\n"), "{}", out.stdout);
    let out = env.run(&["stats", "list-values", "--db", db]);
    assert!(out.stdout.contains("kernel:\n  unknown\n  6.13\n  6.14.2\n\n"), "{}", out.stdout);
}

#[test]
fn list_values_of_an_empty_pool_is_not_an_error() {
    let env = Env::new();
    std::fs::create_dir_all(env.root()).unwrap();
    let out = env.run(&["stats", "list-values"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.matches("  (no sidecars in pool)\n").count(), 8);
}

#[test]
fn list_values_on_a_missing_root_is_a_data_error() {
    let env = Env::new();
    let out = env.run(&["stats", "list-values"]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert_eq!(
        out.stderr,
        format!(
            "error: no warehouse at {} and no runs root at {}\nhint: pass --dir ROOT or --db \
             FILE, or run `cargo ktstr test` first\n",
            env.root().join("warehouse.sqlite").display(),
            env.root().display()
        )
    );
    assert_eq!(out.stdout, "");
    let missing = env.tmp.path().join("no-such-archive");
    let out = env.run(&["stats", "list-values", "--json", "--dir", missing.to_str().unwrap()]);
    assert_eq!((out.code, out.stdout.as_str()), (2, ""), "{}", out.stderr);

    // An archive database that never ingested the missing root: the root is still missing.
    env.write("r1/a.ktstr.json", &sidecar("a", Some("6.14.2"), &[]));
    let db = env.tmp.path().join("shared.sqlite");
    let db = db.to_str().unwrap();
    assert_eq!(env.run(&["stats", "ingest", "--db", db]).code, 0);
    let out = env.run(&["stats", "list-values", "--dir", missing.to_str().unwrap(), "--db", db]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(
        out.stderr.starts_with(&format!(
            "error: no runs root at {}, and the warehouse {db} holds no runs from it\n",
            missing.display()
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn list_shows_pre_cleared_runs_as_archived() {
    let env = Env::new();
    let out = env.run(&["stats", "list"]);
    assert_eq!(out.code, 0);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        format!(
            "no runs found at {}. Run `cargo ktstr test` to generate sidecar data.\n",
            env.root().display()
        )
    );

    env.write("6.14-abc1234/a.ktstr.json", &with_host(sidecar("a", Some("6.14"), &[])));
    env.write("6.14-abc1234/b.ktstr.json", &sidecar("b", Some("6.14"), &[]));
    let out = env.run(&["stats", "list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        " RUN           TESTS  DATE                  ARCH    STATE\n \
         6.14-abc1234  2      2026-04-27T09:15:02Z  x86_64  present\n"
    );

    // A newer run pre-clears this one's files: the warehouse still lists it.
    for entry in std::fs::read_dir(env.root().join("6.14-abc1234")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    std::fs::remove_dir(env.root().join("6.14-abc1234")).unwrap();
    let out = env.run(&["stats", "list", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        rows,
        serde_json::json!([{"run": "6.14-abc1234", "tests": 2, "date": "2026-04-27T09:15:02Z",
                            "arch": "x86_64", "state": "archived"}])
    );
}

#[test]
fn list_counts_what_a_rerun_directory_holds_now() {
    let env = Env::new();
    env.write("6.14-abc1234/a.ktstr.json", &with_host(sidecar("a", Some("6.14"), &[])));
    env.write("6.14-abc1234/b.ktstr.json", &sidecar("b", Some("6.14"), &[]));
    assert_eq!(env.run(&["stats", "ingest"]).code, 0);
    // A second run at the same (kernel, commit) pre-clears the directory and writes one test
    // with new results: the warehouse keeps three sidecars, the directory holds one.
    for name in ["a.ktstr.json", "b.ktstr.json"] {
        std::fs::remove_file(env.root().join("6.14-abc1234").join(name)).unwrap();
    }
    let mut rerun = with_host(sidecar("a", Some("6.14"), &[]));
    rerun.stats.total_iterations = 4321;
    rerun.timestamp = "2026-05-01T10:00:00Z".into();
    env.write("6.14-abc1234/a.ktstr.json", &rerun);
    let out = env.run(&["stats", "list", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows[0]["tests"], 1, "{rows}");
    assert_eq!(rows[0]["date"], "2026-05-01T10:00:00Z", "{rows}");
    let stored = env.run(&["stats", "sql", "--csv", "SELECT count(*) AS n FROM sidecar"]);
    assert!(stored.stdout.contains('3'), "history kept: {}", stored.stdout);
}

#[test]
fn no_ingest_reads_the_database_as_it_is() {
    let env = Env::new();
    env.write("r1/a.ktstr.json", &sidecar("a", None, &[]));
    assert_eq!(env.run(&["stats", "list"]).code, 0);
    env.write("r2/b.ktstr.json", &sidecar("b", None, &[]));
    let out = env.run(&["stats", "list", "--no-ingest"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains(" r1 "), "{}", out.stdout);
    assert!(!out.stdout.contains(" r2 "), "{}", out.stdout);
    let out = env.run(&["stats", "list"]);
    assert!(out.stdout.contains(" r2 "), "{}", out.stdout);
}

#[test]
fn show_host_prints_the_first_host_and_suggests_near_misses() {
    let env = Env::new();
    env.write("6.14-abc1234/a.ktstr.json", &sidecar("a", None, &[]));
    env.write("6.14-abc1234/b.ktstr.json", &with_host(sidecar("b", None, &[])));
    env.write("6.14-nohost/a.ktstr.json", &sidecar("a", None, &[]));
    std::fs::create_dir_all(env.root().join("empty-run")).unwrap();

    let out = env.run(&["stats", "show-host", "--run", "6.14-abc1234"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "kernel_name: Linux\nkernel_release: (unknown)\narch: x86_64\ncpu_model: (unknown)\n\
         cpu_vendor: (unknown)\ntotal_memory_kb: (unknown)\nhugepages_total: (unknown)\n\
         hugepages_free: (unknown)\nhugepages_size_kb: (unknown)\nonline_cpus: 4\n\
         numa_nodes: (unknown)\nthp_enabled: (unknown)\nthp_defrag: (unknown)\n\
         kernel_cmdline: (unknown)\ncpufreq_governor: (empty)\nsched_tunables: (unknown)\n\
         heap_state: (unknown)\n"
    );

    let out = env.run(&["stats", "show-host", "--run", "6.14-abc1243"]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        format!(
            "error: run '6.14-abc1243' not found under {}. Did you mean `6.14-abc1234`? Run \
             `cargo ktstr stats list` to enumerate available run keys.\n",
            env.root().display()
        )
    );
    let out = env.run(&["stats", "show-host", "--run", "zzzzzzzzzzzzzzzzzzzzzzz"]);
    assert!(!out.stderr.contains("Did you mean"), "{}", out.stderr);

    let out = env.run(&["stats", "show-host", "--run", "6.14-nohost"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.starts_with(
        "error: run '6.14-nohost' has 1 sidecar(s) but none carries a populated host context;"
    ));
    let out = env.run(&["stats", "show-host", "--run", "empty-run"]);
    assert_eq!(out.stderr, "error: run 'empty-run' has no sidecar data\n");

    for bad in ["../ktstr", "/etc", ""] {
        let out = env.run(&["stats", "show-host", "--run", bad]);
        assert_eq!(out.code, 2, "{bad}");
        assert!(out.stderr.starts_with("error: --run"), "{bad}: {}", out.stderr);
    }
}

#[test]
fn explain_sidecar_reports_nulls_and_corrupt_files() {
    let env = Env::new();
    env.write("r1/b.ktstr.json", &with_host(sidecar("b", Some("6.14"), &[])));
    env.write("r1/job-1/a.ktstr.json", &sidecar("a", None, &[]));
    std::fs::write(env.root().join("r1/bad.ktstr.json"), "{\"test_name\": ").unwrap();

    let out = env.run(&["stats", "explain-sidecar", "--run", "r1", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stdout.ends_with('\n'));
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["_schema_version"], "1");
    assert_eq!((v["_walk"]["walked"].as_u64(), v["_walk"]["valid"].as_u64()), (Some(3), Some(2)));
    let errors = v["_walk"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert!(errors[0]["path"].as_str().unwrap().ends_with("bad.ktstr.json"));
    assert_eq!(v["fields"]["host"]["none_count"], 1);
    assert_eq!(v["fields"]["host"]["some_count"], 1);
    assert_eq!(v["fields"]["kernel_version"]["none_count"], 1);
    let keys: Vec<&String> = v["fields"].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 10);

    let out = env.run(&["stats", "explain-sidecar", "--run", "r1/job-1"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("walked 1 sidecar file(s), parsed 1 valid\n\ntest: a\n"));
    assert!(out.stdout.contains("  populated optional fields (2): project_commit, run_source\n"));
    assert!(out.stdout.contains("    host [actionable]\n"));

    let out = env.run(&["stats", "explain-sidecar", "--run", "r1/../r1"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.starts_with("error: --run `r1/../r1`"), "{}", out.stderr);

    std::fs::create_dir_all(env.root().join("r-empty")).unwrap();
    let out = env.run(&["stats", "explain-sidecar", "--run", "r-empty"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.starts_with("error: run 'r-empty' has no sidecar data (searched "));
}

#[test]
fn explain_sidecar_falls_back_to_stored_documents_for_a_gone_run() {
    let env = Env::new();
    env.write("r1/a.ktstr.json", &sidecar("a", None, &[]));
    assert_eq!(env.run(&["stats", "list"]).code, 0);
    std::fs::remove_dir_all(env.root().join("r1")).unwrap();
    let out = env.run(&["stats", "explain-sidecar", "--run", "r1"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("no longer exists"), "{}", out.stderr);
    assert!(out.stdout.starts_with("walked 1 sidecar file(s), parsed 1 valid\n\ntest: a\n"));

    let out = env.run(&["stats", "explain-sidecar", "--run", "r2"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("Did you mean `r1`?"), "{}", out.stderr);
}

#[test]
fn documents_compressed_with_a_trained_dictionary_come_back_exactly() {
    // Enough files for ingest to train a compression dictionary on them.
    let env = Env::new();
    for i in 0..80 {
        env.write(&format!("big/t{i:02}.ktstr.json"), &sidecar(&format!("t{i:02}"), None, &[]));
    }
    assert_eq!(env.run(&["stats", "ingest"]).code, 0);
    let dictionaries =
        env.run(&["stats", "sql", "--csv", "SELECT count(*) AS n FROM document_dictionary"]);
    let lines: Vec<&str> = dictionaries.stdout.lines().collect();
    assert_eq!(lines, ["n", "1"], "{}", dictionaries.stderr);
    std::fs::remove_dir_all(env.root().join("big")).unwrap();
    let out = env.run(&["stats", "explain-sidecar", "--run", "big", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["_walk"]["valid"], 80, "{}", out.stdout);
    assert_eq!(json["_walk"]["errors"], serde_json::json!([]), "{}", out.stdout);
}

#[test]
fn a_closed_stdout_ends_the_output_quietly() {
    let env = Env::new();
    env.write("6.14.2-abc1234/t.ktstr.json", &with_host(sidecar("t", Some("6.14.2"), &[])));
    assert_eq!(env.run(&["stats", "list"]).code, 0, "ingest first, so reads only write");
    for args in [
        &["stats", "list-metrics"][..],
        &["stats", "list-metrics", "--json"],
        &["stats", "list", "--no-ingest"],
        &["stats", "list-values", "--json", "--no-ingest"],
        &["stats", "show-host", "--run", "6.14.2-abc1234", "--no-ingest"],
        &["stats", "sql", "--no-ingest", "SELECT test_name FROM sidecar"],
    ] {
        let out = env.run_into_closed_pipe(args);
        assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{args:?}");
    }
}
