//! Host backend honesty, with a real test process: a `#[ktstr_test]` declaring fewer CPUs
//! than the host runs its workers on exactly that many (a cpuset), and a declared shape the
//! host cannot give is named in the sidecar.
//!
//! The fixtures are `#[ignore]`d tests of this binary, started in a child process with
//! `--ignored --exact` and their sidecars sent to a directory of the test's own. Running
//! workers in cgroups needs root; without it the tests say `skipped: needs root` and pass.

use std::path::Path;
use std::process::Command;

use ktstr::harness::cgroup::cpu_list;
use ktstr::harness::host_cpus::HostShape;
use ktstr::prelude::*;
use ktstr::sidecar::model::SidecarResult;
use ktstr::sidecar::read::read_sidecar;

/// `Cpus_allowed_list` of every process in one of this process's `ktstr-{pid}-*` cgroups.
fn allowed_cpus_of_workers() -> Vec<String> {
    let tree = format!("/ktstr-{}-", std::process::id());
    let pids = std::fs::read_dir("/proc").unwrap().flatten().filter_map(|e| {
        let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        cg.contains(&tree).then_some(pid)
    });
    pids.filter_map(|pid| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
        Some(line.trim().to_string())
    })
    .collect()
}

/// Fixture: two spinners on a declared single CPU. Halfway through the step it reads what
/// the kernel allows the workers, and fails unless that is exactly the run's one CPU: how
/// many CPUs the spinners happened to use alone proves nothing on a busy host.
#[ktstr_test(topology = "1n1l1c1t", duration_s = 1, workers_per_cgroup = 2, max_spread_pct = 100.0)]
#[ignore = "a fixture: a_one_cpu_test_runs_on_exactly_one_cpu runs it"]
fn one_cpu_fixture(ctx: &Ctx) -> Result<AssertResult> {
    let probe = std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_millis(500));
        allowed_cpus_of_workers()
    });
    let stats = ctx.run_cgroups(&[CgroupDef::new("cg0", WorkType::CpuSpin)])?;
    let allowed = probe.join().unwrap();
    let mut result = AssertResult::pass(stats);
    let run_cpus = cpu_list(ctx.cpus());
    result
        .check(ctx.cpus().len() == 1, || format!("ctx.cpus() is {run_cpus}, not one CPU"))
        .check(allowed.len() == 2, || format!("found {} workers, not 2", allowed.len()))
        .check(allowed.iter().all(|a| *a == run_cpus), || {
            format!("workers were allowed CPUs {allowed:?}, not only {run_cpus}")
        });
    Ok(result)
}

/// Fixture: one spinner per declared LLC, on two LLCs of one core each.
#[ktstr_test(topology = "1n2l1c1t", duration_s = 1, workers_per_cgroup = 2, max_spread_pct = 100.0)]
#[ignore = "a fixture: a_shape_the_host_lacks_is_named_in_the_sidecar runs it"]
fn two_llc_fixture(ctx: &Ctx) -> Result<AssertResult> {
    steady(ctx, WorkType::CpuSpin)
}

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Run fixture `name` in a child process and return the one sidecar it wrote.
fn run_fixture(name: &str, dir: &Path) -> SidecarResult {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--ignored", "--test-threads=1"])
        .env("KTSTR_SIDECAR_DIR", dir)
        .env("KTSTR_LOCK_DIR", dir)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fixture {name} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".ktstr.json"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    read_sidecar(&files[0]).unwrap()
}

#[test]
fn a_one_cpu_test_runs_on_exactly_one_cpu() {
    if !root() {
        eprintln!("skipped: needs root for cgroups");
        return;
    }
    let host = HostShape::read().cpu_ids();
    assert!(host.len() >= 2, "needs a host with 2 CPUs or more to show confinement");
    let tmp = tempfile::tempdir().unwrap();
    let sc = run_fixture("host_confinement::one_cpu_fixture", tmp.path());
    assert!(sc.passed && !sc.skipped, "{sc:?}");
    assert_eq!(sc.topology, "1n1l1c1t");
    assert_eq!(sc.provenance.topology_ran.as_deref(), Some("1n1l1c1t"));
    let cg = &sc.stats.cgroups[0];
    assert_eq!(cg.num_workers, 2);
    assert_eq!(cg.num_cpus, 1, "two spinners on a declared single CPU used {} CPUs", cg.num_cpus);
    assert_eq!(sc.stats.total_cpus, 1);
    let cpus = sc.provenance.other["host_cpus"].as_str().unwrap();
    let cpu: usize = cpus.parse().expect("one CPU");
    assert!(host.contains(&cpu), "{cpu} is not one of {host:?}");
    assert!(!sc.provenance.other.contains_key("topology_mismatch"), "{:?}", sc.provenance);
}

#[test]
fn a_shape_the_host_lacks_is_named_in_the_sidecar() {
    if !root() {
        eprintln!("skipped: needs root for cgroups");
        return;
    }
    let shape = HostShape::read();
    let declared: Topology = "1n2l1c1t".parse().unwrap();
    let placement = shape.place(declared);
    let tmp = tempfile::tempdir().unwrap();
    let sc = run_fixture("host_confinement::two_llc_fixture", tmp.path());
    assert!(sc.passed && !sc.skipped, "{sc:?}");
    assert_eq!(sc.provenance.topology_ran, Some(placement.ran.to_string()));
    let mismatch = sc.provenance.other.get("topology_mismatch").and_then(|v| v.as_str());
    assert_eq!(mismatch, placement.mismatch.as_deref());
    if shape.topology().llcs == 1 {
        // This host (one LLC) cannot give two: the sidecar must say so.
        let m = mismatch.expect("a one-LLC host cannot give 1n2l1c1t");
        assert!(m.starts_with("declared 1n2l1c1t, but this host ("), "{m}");
        assert!(m.contains("laid out as 1n1l2c1t"), "{m}");
    }
}
