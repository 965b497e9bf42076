//! End to end on the VM backend: the demo suite's `vm` tests run by `cargo ktstr test --kernel`
//! in real TCG guests with the cached Debian 7.3 kernel (installed by scripts/deps/10-vm.sh;
//! without it this test fails and says so).
//!
//! The copy gains one test that panics the guest kernel. Checked: every other test gets
//! exactly one sidecar, with the guest's `uname -r` as `kernel_version` (not the host's),
//! `qemu-tcg` as backend and the declared topology read back in the guest; the panicking test
//! fails alone, with the console's panic line, and writes no sidecar; the tests after it in
//! its group run in a fresh boot; the two 1n1l2c1t tests share a boot.

use std::path::Path;
use std::process::Output;

use crate::sched_vm::ktstr;
use crate::util::git;

const KERNEL: &str = "7.3";

/// A test that brings the guest kernel down (sysrq `c`), in the same group as `vm_pipe` and
/// `vm_spin` and, by name, the group's first run.
const PANICKING_TEST: &str = r#"
#[ktstr_test(duration_s = 1, workers_per_cgroup = 1, cores = 2, not_starved = false)]
fn vm_crash_guest(ctx: &Ctx) -> Result<AssertResult> {
    let _ = ctx;
    if std::process::id() == 1 {
        std::fs::write("/proc/sysrq-trigger", "c")?;
    }
    anyhow::bail!("this test only makes sense in a VM guest")
}
"#;

fn copy_suite(to: &Path) {
    let files = ["Cargo.toml", "Cargo.lock", "src/lib.rs", "tests/demo.rs", "tests/vm.rs"];
    copy_crate("examples/demo-suite", "../..", &files, to);
    let manifest = to.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        // Its own package name, so its test binaries never share artifacts (same name, same
        // hash) with a build of the demo suite itself in the shared target dir.
        .replace("name = \"ktstr-demo-suite\"", "name = \"ktstr-demo-suite-vm-e2e\"");
    std::fs::write(&manifest, text).unwrap();
    let vm = to.join("tests/vm.rs");
    let code = std::fs::read_to_string(&vm).unwrap() + PANICKING_TEST;
    std::fs::write(&vm, code).unwrap();
    commit_all(to);
}

/// Copies `files` of the crate at `from` (relative to ktstr's root) to `to`, its dependency
/// on ktstr (`path = "<ktstr_path>"`) pointed at this checkout.
pub(crate) fn copy_crate(from: &str, ktstr_path: &str, files: &[&str], to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join(from);
    for rel in files {
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(from.join(rel), &dest).unwrap();
    }
    let manifest = to.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap().replace(
        &format!("path = {ktstr_path:?}"),
        &format!("path = {:?}", env!("CARGO_MANIFEST_DIR")),
    );
    std::fs::write(&manifest, text).unwrap();
}

/// Makes `repo` a git repository with everything in one commit (sidecars record it).
pub(crate) fn commit_all(repo: &Path) {
    std::fs::write(repo.join(".gitignore"), "target/\n").unwrap();
    git(repo, &["init", "-q"]);
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-qm", "A"]);
}

fn run(repo: &Path, runs: &Path) -> Output {
    cargo_ktstr_test(repo, runs, &[KERNEL], &["--features", "vm", "--test", "vm"])
}

/// `cargo ktstr test --kernel K… --accel tcg -- <nextest args> --no-fail-fast` in `repo`,
/// sidecars and warehouse under `runs`, builds in ktstr's own target dir.
pub(crate) fn cargo_ktstr_test(
    repo: &Path,
    runs: &Path,
    kernels: &[&str],
    nextest: &[&str],
) -> Output {
    let mut cmd = ktstr(repo, &runs.join("warehouse.sqlite"));
    cmd.arg("test");
    for kernel in kernels {
        cmd.args(["--kernel", kernel]);
    }
    cmd.args(["--accel", "tcg", "--"])
        .args(nextest)
        .args(["--no-fail-fast"])
        .env("KTSTR_SIDECAR_DIR", runs)
        .output()
        .unwrap()
}

pub(crate) fn sidecars(dir: &Path) -> Vec<serde_json::Value> {
    let mut out: Vec<serde_json::Value> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".ktstr.json"))
        .map(|e| serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap())
        .collect();
    out.sort_by_key(|s| s["test_name"].as_str().unwrap().to_string());
    out
}

#[test]
fn vm_backend_runs_the_demo_suite_in_guests_and_a_guest_panic_fails_alone() {
    let tmp = tempfile::TempDir::new().unwrap();
    let (repo, runs) = (tmp.path().join("demo"), tmp.path().join("runs"));
    std::fs::create_dir_all(&runs).unwrap();
    copy_suite(&repo);
    let out = run(&repo, &runs);
    let text = format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(100), "nextest fails for the one failed test\n{text}");
    assert!(text.contains("FAIL") && text.contains("vm_crash_guest"), "{text}");
    assert!(text.contains("Kernel panic"), "the failure carries the console tail\n{text}");
    assert!(text.contains("not a test verdict"), "{text}");
    for passed in ["vm_numa_2n2l", "vm_pipe", "vm_spin"] {
        let line = |l: &str| l.contains("PASS") && l.ends_with(passed);
        assert!(text.lines().any(line), "{passed} passes\n{text}");
    }
    // One boot for the three 1n1l2c1t runs, which the panic ends; the two left re-run together.
    assert!(
        text.contains("boot of 3 run(s): vm_crash_guest[base], vm_pipe[base], vm_spin[base]"),
        "{text}"
    );
    assert!(text.contains("boot of 2 run(s): vm_pipe[base], vm_spin[base]"), "{text}");

    let sidecars = sidecars(&runs);
    let names: Vec<&str> = sidecars.iter().map(|s| s["test_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["vm_numa_2n2l", "vm_pipe", "vm_spin"], "{text}");
    let host_release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    for sc in &sidecars {
        let release = sc["kernel_version"].as_str().unwrap();
        assert!(release.starts_with("7.3."), "the guest's uname -r: {release}");
        assert_ne!(release, host_release.trim());
        assert_eq!(sc["provenance"]["backend"], "qemu-tcg");
        assert_eq!(sc["provenance"]["tcg_clock"], "instructions");
        assert_eq!(sc["provenance"]["topology_ran"], sc["topology"]);
        assert_eq!(sc["passed"], true);
        assert!(sc["stats"]["total_workers"].as_u64().unwrap() > 0, "{sc}");
        assert!(sc["provenance"]["host_load"]["loadavg_1m_start"].is_number(), "{sc}");
    }
    assert_eq!(sidecars[0]["topology"], "2n2l2c1t");
    assert_eq!(sidecars[0]["stats"]["total_cpus"], 4);
    let host_cpus = std::thread::available_parallelism().unwrap().get();
    let overcommit = &sidecars[0]["provenance"]["vcpus_overcommitted"];
    if host_cpus < 4 {
        assert_eq!(overcommit, 4, "4 vCPUs on {host_cpus} host CPUs are overcommitted");
    } else {
        assert!(overcommit.is_null(), "{overcommit}");
    }
}
