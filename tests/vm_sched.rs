//! The guest's scheduler lifecycle end to end: the `tests/fixtures/sched-vm` crate run by
//! `cargo ktstr test --kernel 7.3`, then `--kernel 6.12`, in real TCG guests, with scx_bpfland from the
//! scheduler cache (scripts/deps/20-scx-bpfland.sh) and both kernels from the kernel cache
//! (scripts/deps/10-vm.sh). A missing dependency fails this test, with the run's output.
//!
//! On 7.3 the four scx_bpfland tests share one boot: the first records the scheduler's ops
//! name, attach time and event deltas; the second kicks it out with sysrq-S and fails with the
//! kernel's reason; the third runs under the restarted scheduler; the fourth asks for a fresh
//! one and, being last, carries the stop. A scheduler that exits at once fails to attach in its
//! own boot, a missing binary fails without one, and the EEVDF test boots alone. On 6.12
//! (no CONFIG_SCHED_CLASS_EXT) every scheduler test is a skip decided without a boot, and the
//! EEVDF test passes. Four boots in all.

use std::path::Path;

use crate::vm_e2e::{cargo_ktstr_test, commit_all, copy_crate, sidecars as read_sidecars};

const SCX_KERNEL: &str = "7.3";
const EEVDF_KERNEL: &str = "6.12";
const BPFLAND_TESTS: [&str; 4] =
    ["sched_a_spin", "sched_b_kicked", "sched_c_after_kick", "sched_d_fresh"];

fn copy_fixture(to: &Path) {
    let files = ["Cargo.toml", "Cargo.lock", "src/lib.rs", "tests/sched.rs"];
    copy_crate("tests/fixtures/sched-vm", "../../..", &files, to);
    commit_all(to);
}

fn on<'a>(sidecars: &'a [serde_json::Value], test: &str, release: &str) -> &'a serde_json::Value {
    sidecars
        .iter()
        .find(|s| {
            s["test_name"] == test && s["kernel_version"].as_str().unwrap().starts_with(release)
        })
        .unwrap_or_else(|| panic!("no sidecar of {test} on {release}"))
}

#[test]
fn vm_sched_lifecycle_records_the_scheduler_and_fails_or_skips_what_cannot_run() {
    let tmp = tempfile::TempDir::new().unwrap();
    let repo = tmp.path().join("sched");
    copy_fixture(&repo);
    // One run per kernel: a sidecar directory given by KTSTR_SIDECAR_DIR holds one sidecar
    // per variant, whatever the kernel.
    let mut text = String::new();
    let mut sidecars = Vec::new();
    for kernel in [SCX_KERNEL, EEVDF_KERNEL] {
        let runs = tmp.path().join(format!("runs-{kernel}"));
        std::fs::create_dir_all(&runs).unwrap();
        let out = cargo_ktstr_test(&repo, &runs, &[kernel], &["--test", "sched"]);
        let run_text = format!(
            "--kernel {kernel}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(100), "nextest fails for the failing tests\n{run_text}");
        text.push_str(&run_text);
        sidecars.extend(read_sidecars(&runs));
    }

    // Batching: one boot per (kernel, scheduler), none for what is decided on the host.
    let boots: Vec<&str> = text.lines().filter(|l| l.contains("ktstr: boot of ")).collect();
    assert_eq!(boots.len(), 4, "{boots:?}\n{text}");
    let bpfland_boot =
        format!("boot of 4 run(s): {}", BPFLAND_TESTS.map(|t| format!("{t}[base]")).join(", "));
    assert!(text.contains(&bpfland_boot), "{text}");
    assert!(text.contains("ktstr: boot of 1 run(s): sched_false_attach[base]"), "{text}");
    let eevdf_boots = text.matches("ktstr: boot of 1 run(s): sched_eevdf_spin[base]").count();
    assert_eq!(eevdf_boots, 2, "one EEVDF boot per kernel\n{text}");
    for why in ["left during sched_b_kicked", "fresh scheduler for sched_d_fresh", "end of boot"] {
        let stop = format!("scheduler scx_bpfland stopped ({why}): detached in ");
        assert!(text.contains(&stop), "{stop}\n{text}");
    }

    // The failures, each with its one-line reason.
    assert!(
        text.contains(
            "scheduler scx_bpfland left mid-test: the kernel kicked it out (state disabled)"
        ),
        "{text}"
    );
    assert!(text.contains("disabled (disabled by sysrq-S)"), "the kernel's reason\n{text}");
    assert!(
        text.contains(
            "scheduler scx_false failed to attach: it exited (exit status: 1) before sched_ext was \
         enabled"
        ),
        "{text}"
    );
    assert!(
        text.contains("scheduler scx_missing: binary /nonexistent/scx_missing cannot be used"),
        "{text}"
    );

    let scx = |t| on(&sidecars, t, SCX_KERNEL);
    for test in BPFLAND_TESTS {
        let sc = scx(test);
        assert_eq!(sc["scheduler"], "scx_bpfland");
        let p = &sc["provenance"];
        assert!(p["scx_ops"].as_str().unwrap().starts_with("bpfland_"), "{test}: {p}");
        let attach = p["scx_attach_ms"].as_u64().unwrap();
        assert!(attach > 0 && attach < 30_000, "{test}: {attach}");
        if test == "sched_b_kicked" {
            // The kernel removed root/events with the scheduler: nothing to subtract, and
            // nothing is made up.
            assert!(p["scx_event_deltas"].is_null(), "{p}");
            assert_eq!(sc["passed"], false);
            continue;
        }
        let deltas = p["scx_event_deltas"].as_object().unwrap();
        assert!(deltas.len() > 10 && deltas.keys().all(|k| k.starts_with("SCX_EV_")), "{p}");
        assert!(deltas.values().all(|v| v.as_i64().is_some()), "{p}");
        assert_eq!(sc["passed"], true, "{test}\n{text}");
    }
    // Only the last test of the boot stops the scheduler, and so records the stop.
    for test in &BPFLAND_TESTS[..3] {
        assert!(scx(test)["provenance"]["scx_detach_ms"].is_null(), "{test}");
    }
    let last = &scx("sched_d_fresh")["provenance"];
    assert!(last["scx_detach_ms"].as_u64().is_some(), "{last}");
    assert_eq!(last["scx_state_after"], "disabled");
    assert_eq!(last["scx_killed_after_grace"], false);
    assert_eq!(scx("sched_false_attach")["passed"], false);
    assert_eq!(scx("sched_missing_binary")["passed"], false);
    let eevdf = scx("sched_eevdf_spin");
    assert_eq!(eevdf["passed"], true);
    assert!(eevdf["provenance"]["scx_ops"].is_null());

    // The EEVDF-only kernel: scheduler tests skip with the kernel and the option named.
    for test in [&BPFLAND_TESTS[..], &["sched_false_attach"]].concat() {
        let sc = on(&sidecars, test, EEVDF_KERNEL);
        assert_eq!(sc["skipped"], true, "{test}: {sc}");
        let why = sc["provenance"]["skip_reason"].as_str().unwrap();
        let release = sc["kernel_version"].as_str().unwrap();
        assert!(why.contains(&format!("kernel {release} does not have")), "{why}");
        assert!(why.contains("CONFIG_SCHED_CLASS_EXT"), "{why}");
    }
    assert_eq!(on(&sidecars, "sched_missing_binary", EEVDF_KERNEL)["passed"], false);
    let eevdf = on(&sidecars, "sched_eevdf_spin", EEVDF_KERNEL);
    assert_eq!(eevdf["passed"], true, "{eevdf}");
    assert_eq!(eevdf["skipped"], false);
    assert_eq!(eevdf["provenance"]["backend"], "qemu-tcg");
}
