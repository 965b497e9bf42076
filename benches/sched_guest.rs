//! A sched_ext scheduler in TCG guests, measured (issue 15's performance figures):
//! 1. attach time: median and max `scx_attach_ms` over ten tests that each ask for a fresh
//!    scx_bpfland in one boot, with the detach times beside them;
//! 2. per-test overhead in a boot where the scheduler stays attached: guest time per test
//!    beyond its declared step (target ≤ 1.5 s);
//! 3. measurement overhead: one CpuSpin worker's throughput under the scheduler with the
//!    harness's measurement on vs off (target: within 3 %).
//!
//! It runs `cargo ktstr test --kernel 7.3 --accel tcg -- --features bench --test bench` on the
//! bench suite of `examples/sched-crate` (`tests/bench.rs`, which says what each test does),
//! built in this benchmark's profile, with its sidecars and warehouse in a temporary directory.
//! The per-test guest times are the coordinator's `took … s in the guest` lines. Needs what the
//! VM tests need (`./scripts/setup.sh --deps-only`). Run: `cargo bench --bench sched_guest`.

use std::path::{Path, PathBuf};
use std::process::Command;

use ktstr::sidecar::SidecarResult;

fn main() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let load_before = loadavg();
    let (sidecars, log) = run_suite(tmp.path());
    let load_after = loadavg();
    println!(
        "scheduler scx_bpfland in TCG guests (Debian 7.3 kernel); host load {load_before} before, {load_after} after"
    );
    attach_figures(&sidecars, &log);
    overhead_figures(&sidecars, &log);
    measurement_figures(&sidecars);
}

/// Runs the bench suite; its sidecars by name and the run's stderr (the coordinator's lines).
fn run_suite(tmp: &Path) -> (Vec<SidecarResult>, String) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| manifest.join("target"), PathBuf::from);
    let sidecars = tmp.join("runs");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-ktstr"));
    cmd.args(["test", "--kernel", "7.3", "--accel", "tcg", "--", "--features", "bench"]).args([
        "--test",
        "bench",
        "--no-fail-fast",
    ]);
    if !cfg!(debug_assertions) {
        cmd.args(["--cargo-profile", "release"]);
    }
    let out = cmd
        .current_dir(manifest.join("examples/sched-crate"))
        .env("CARGO_TARGET_DIR", &target)
        .env("KTSTR_SIDECAR_DIR", &sidecars)
        .env("KTSTR_DB", tmp.join("warehouse.sqlite"))
        .env_remove("KTSTR_KERNEL")
        .output()
        .expect("run cargo-ktstr");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the bench suite failed ({}):\n{log}", out.status);
    let mut found: Vec<SidecarResult> = std::fs::read_dir(&sidecars)
        .expect("sidecar dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".ktstr.json"))
        .map(|p| serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).expect("sidecar"))
        .collect();
    found.sort_by(|a, b| a.test_name.cmp(&b.test_name));
    (found, log)
}

fn with_prefix<'a>(all: &'a [SidecarResult], prefix: &str) -> Vec<&'a SidecarResult> {
    all.iter().filter(|s| s.test_name.starts_with(prefix)).collect()
}

fn other_ms(sc: &SidecarResult, key: &str) -> Option<f64> {
    sc.provenance.other.get(key).and_then(serde_json::Value::as_f64)
}

/// `(median, max)` of a non-empty sample.
fn median_max(mut v: Vec<f64>) -> (f64, f64) {
    assert!(!v.is_empty(), "no samples");
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let median = if v.len().is_multiple_of(2) { (v[mid - 1] + v[mid]) / 2.0 } else { v[mid] };
    (median, v[v.len() - 1])
}

fn attach_figures(all: &[SidecarResult], log: &str) {
    let fresh = with_prefix(all, "attach_");
    let attach: Vec<f64> = fresh.iter().filter_map(|s| other_ms(s, "scx_attach_ms")).collect();
    assert_eq!(attach.len(), 10, "ten attaches recorded: {fresh:#?}");
    let (median, max) = median_max(attach);
    println!(
        "attach (launch to sched_ext enabled, guest time): median {median:.0} ms, max {max:.0} ms over 10"
    );
    let detach = detach_times(log);
    assert!(detach.len() >= 10, "the ten fresh restarts stopped a scheduler each: {log}");
    let n = detach.len();
    let (median, max) = median_max(detach);
    println!(
        "detach (SIGINT to sched_ext disabled): median {median:.0} ms, max {max:.0} ms over {n}"
    );
}

/// Every scheduler stop the coordinator logged, in ms: `ktstr: scheduler <name> stopped
/// (<why>): detached in <ms> ms, …`.
fn detach_times(log: &str) -> Vec<f64> {
    log.lines()
        .filter(|l| l.starts_with("ktstr: scheduler ") && l.contains(" stopped ("))
        .filter_map(|l| l.split_once("detached in ")?.1.split_once(" ms")?.0.parse().ok())
        .collect()
}

/// Guest seconds per test beyond its declared steps, from the coordinator's lines
/// `ktstr: <test>[base] took <s> s in the guest (declared steps of <d> s)`.
fn guest_overheads(log: &str, prefix: &str) -> Vec<f64> {
    log.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("ktstr: ")?.strip_prefix(prefix)?;
            let (_, rest) = rest.split_once(" took ")?;
            let (took, rest) = rest.split_once(" s in the guest (declared steps of ")?;
            let declared = rest.strip_suffix(" s)")?;
            Some(took.parse::<f64>().ok()? - declared.parse::<f64>().ok()?)
        })
        .collect()
}

fn overhead_figures(all: &[SidecarResult], log: &str) {
    let over = guest_overheads(log, "batched_");
    assert_eq!(over.len(), 5, "five batched tests reported: {log}");
    let (median, max) = median_max(over);
    println!(
        "per-test overhead, scheduler kept attached: median {median:.2} s, max {max:.2} s beyond the declared 1 s (target <= 1.5 s)"
    );
    let cleanup: Vec<f64> = with_prefix(all, "batched_")
        .iter()
        .filter_map(|s| s.cleanup_duration_ms.map(|ms| ms as f64))
        .collect();
    if !cleanup.is_empty() {
        let (median, max) = median_max(cleanup);
        println!(
            "  of which teardown (cleanup_duration_ms): median {median:.0} ms, max {max:.0} ms"
        );
    }
    let fresh = guest_overheads(log, "attach_");
    if fresh.len() == 10 {
        let (median, max) = median_max(fresh);
        println!(
            "per-test overhead, fresh scheduler per test: median {median:.2} s, max {max:.2} s"
        );
    }
}

/// Iterations per CPU-second of the one worker of `sc` (its step is `duration_s` long).
fn per_cpu_second(sc: &SidecarResult, duration_s: f64) -> f64 {
    let off = sc.stats.cgroups.first().map_or(0.0, |c| c.avg_off_cpu_pct);
    sc.stats.total_iterations as f64 / (duration_s * (1.0 - off / 100.0)).max(1e-9)
}

fn measurement_figures(all: &[SidecarResult]) {
    let rate = |suffix: &str| -> Vec<f64> {
        all.iter()
            .filter(|s| s.test_name.starts_with("throughput_") && s.test_name.ends_with(suffix))
            .map(|s| per_cpu_second(s, 2.0))
            .collect()
    };
    let (on, off) = (rate("_on"), rate("_off"));
    assert_eq!((on.len(), off.len()), (5, 5), "five runs each way");
    // Run i's two halves ran back to back, so their ratio shares the host's load.
    let paired: Vec<f64> = on.iter().zip(&off).map(|(a, b)| a / b).collect();
    let (paired_median, _) = median_max(paired.clone());
    let (on_median, _) = median_max(on.clone());
    let (off_median, _) = median_max(off.clone());
    println!(
        "CpuSpin throughput under scx_bpfland, measured/bare: median of 5 back-to-back pairs {paired_median:.4} (pairs {paired:.3?}; medians {on_median:.0} vs {off_median:.0} steps per CPU-second); target >= 0.97"
    );
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
