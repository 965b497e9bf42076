//! The demo suite's VM tests under EEVDF and scx_bpfland on one commit, in TCG guests:
//! `tests/vm.rs` and `tests/vm_bpfland.rs` stamp the same tests (`ktstr_demo_suite::vm_tests!`)
//! under each scheduler, and `stats compare --a-scheduler eevdf --b-scheduler scx_bpfland
//! --kernel 7.3` must pair each test with itself under the other scheduler and print the
//! table. Only the two 1n1l2c1t tests run (one boot per scheduler); whether bpfland wins or
//! loses a metric under TCG is not this test's business, so compare's exit may be 0 or 1.

use crate::harness_e2e::{copy_example, text};
use crate::sched_vm::{
    KERNEL, check_bpfland_guest_sidecar, compare_json, ktstr, ktstr_test_in_guests,
    require_guest_scheduler_prerequisites, sidecars_of,
};
use crate::util::git;

const TESTS: [&str; 2] = ["vm_pipe", "vm_spin"];

#[test]
fn demo_suite_under_eevdf_and_scx_bpfland_in_tcg_guests_pairs_by_scheduler() {
    require_guest_scheduler_prerequisites();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("demo");
    copy_example("demo-suite", &repo);
    std::fs::write(repo.join(".gitignore"), "target/\n").unwrap();
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "demo"]);
    let commit = git(&repo, &["rev-parse", "--short=7", "HEAD"]);
    let db = tmp.path().join("warehouse.sqlite");

    let filter = TESTS.map(|t| format!("test(={t})")).join(" | ");
    let out = ktstr_test_in_guests(&repo, &db, &["--features", "vm", "-E", &filter]);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert_eq!(
        log.matches("ktstr: boot of 2 run(s): vm_pipe[base], vm_spin[base]").count(),
        2,
        "{log}"
    );

    let sidecars = sidecars_of(&commit);
    let keys: Vec<(&str, &str)> =
        sidecars.iter().map(|s| (s.test_name.as_str(), s.scheduler.as_str())).collect();
    assert_eq!(
        keys,
        [
            ("vm_pipe", "eevdf"),
            ("vm_pipe", "scx_bpfland"),
            ("vm_spin", "eevdf"),
            ("vm_spin", "scx_bpfland")
        ],
        "{log}"
    );
    for sc in &sidecars {
        if sc.scheduler == "eevdf" {
            assert!(sc.passed && !sc.provenance.other.contains_key("scx_ops"), "{sc:?}");
        } else {
            check_bpfland_guest_sidecar(sc, &log);
        }
    }

    let sides = ["--a-scheduler", "eevdf", "--b-scheduler", "scx_bpfland", "--kernel", KERNEL];
    let pinned = [&sides[..], &["--project-commit", &commit]].concat();
    let (code, json) = compare_json(&repo, &db, &pinned);
    assert!(code == 0 || code == 1, "compare ran: {json:#}");
    assert_eq!(json["slicing"], serde_json::json!(["scheduler"]), "{json:#}");
    assert_eq!((json["samples"]["a"].as_u64(), json["samples"]["b"].as_u64()), (Some(2), Some(2)));
    assert_eq!(json["summary"]["new_in_b"], 0, "{json:#}");
    assert_eq!(json["summary"]["removed_from_a"], 0, "{json:#}");

    let table = ktstr(&repo, &db).args(["stats", "compare"]).args(&pinned).output().unwrap();
    let shown = String::from_utf8_lossy(&table.stdout);
    for (test, work) in TESTS.iter().zip(["PipeIo", "CpuSpin"]) {
        let row = format!("  {test}/1n1l2c1t/{work}: eevdf=1/1 scx_bpfland=1/1");
        assert!(shown.lines().any(|l| l == row), "the table pairs {test}: {}", text(&table));
    }
    assert_eq!(table.status.code(), Some(code), "{}", text(&table));
}
